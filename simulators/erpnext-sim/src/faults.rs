//! Fault injection (latency, 500s, 429s, outages) and request counters.
//!
//! Faults are decided per request, before the request reaches the Frappe
//! emulation, in this order: outage, forced 429s (`rate_limit_next`),
//! forced 500s (`error_next`), random 429s (`rate_limit_rate`), random
//! 500s (`error_rate`). Latency is added to every request (faulted or not).
//! The admin endpoints are never faulted and never counted.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::util::Rng;

/// What an outage looks like to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum OutageMode {
    /// The connection is accepted and every request gets `503 Service
    /// Unavailable` (Frappe's maintenance-mode page).
    #[serde(rename = "503")]
    #[value(name = "503")]
    Unavailable,
    /// The connection is accepted, the request read, then the connection is
    /// closed without any response (a crashed backend behind a proxy).
    #[serde(rename = "close")]
    #[value(name = "close")]
    Close,
}

impl OutageMode {
    pub fn as_str(self) -> &'static str {
        match self {
            OutageMode::Unavailable => "503",
            OutageMode::Close => "close",
        }
    }
}

/// Start-up fault settings (from the command line).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    pub latency_ms: u64,
    pub latency_jitter_ms: u64,
    pub error_rate: f64,
    pub rate_limit_rate: f64,
    pub retry_after_s: u64,
    pub outage_s: f64,
    pub outage_mode: OutageMode,
    pub seed: Option<u64>,
}

impl Default for FaultConfig {
    fn default() -> FaultConfig {
        FaultConfig {
            latency_ms: 0,
            latency_jitter_ms: 0,
            error_rate: 0.0,
            rate_limit_rate: 0.0,
            retry_after_s: 1,
            outage_s: 0.0,
            outage_mode: OutageMode::Unavailable,
            seed: None,
        }
    }
}

/// `POST /_admin/faults` body: every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultUpdate {
    /// Reset every fault to "none" before applying the other keys.
    #[serde(default)]
    pub clear: bool,
    pub latency_ms: Option<u64>,
    pub latency_jitter_ms: Option<u64>,
    pub error_rate: Option<f64>,
    pub rate_limit_rate: Option<f64>,
    pub retry_after_s: Option<u64>,
    /// Start an outage lasting this many seconds from now (0 ends one).
    pub outage_s: Option<f64>,
    pub outage_mode: Option<OutageMode>,
    /// The next N API requests get a 500.
    pub error_next: Option<u64>,
    /// The next N API requests get a 429.
    pub rate_limit_next: Option<u64>,
    /// Reseed the random generator (for reproducible random faults).
    pub seed: Option<u64>,
}

/// What to do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Pass,
    Outage(OutageMode),
    RateLimit { retry_after_s: u64 },
    Error,
}

#[derive(Debug)]
pub struct Faults {
    latency_ms: u64,
    latency_jitter_ms: u64,
    error_rate: f64,
    rate_limit_rate: f64,
    retry_after_s: u64,
    outage_until: Option<Instant>,
    outage_mode: OutageMode,
    error_next: u64,
    rate_limit_next: u64,
    seed: Option<u64>,
    rng: Rng,
}

fn check_rate(name: &str, p: f64) -> Result<f64, String> {
    if p.is_finite() && (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!(
            "{name} must be a probability between 0 and 1, got {p}"
        ))
    }
}

fn outage_end(now: Instant, secs: f64) -> Result<Option<Instant>, String> {
    if !secs.is_finite() || !(0.0..=86_400.0 * 365.0).contains(&secs) {
        return Err(format!(
            "outage_s must be between 0 and one year, got {secs}"
        ));
    }
    if secs == 0.0 {
        Ok(None)
    } else {
        Ok(Some(now + Duration::from_secs_f64(secs)))
    }
}

impl Faults {
    /// No faults at all.
    pub fn none() -> Faults {
        Faults {
            latency_ms: 0,
            latency_jitter_ms: 0,
            error_rate: 0.0,
            rate_limit_rate: 0.0,
            retry_after_s: 1,
            outage_until: None,
            outage_mode: OutageMode::Unavailable,
            error_next: 0,
            rate_limit_next: 0,
            seed: None,
            rng: Rng::from_entropy(),
        }
    }

    pub fn from_config(c: &FaultConfig, now: Instant) -> Result<Faults, String> {
        Ok(Faults {
            latency_ms: c.latency_ms,
            latency_jitter_ms: c.latency_jitter_ms,
            error_rate: check_rate("error rate", c.error_rate)?,
            rate_limit_rate: check_rate("rate-limit rate", c.rate_limit_rate)?,
            retry_after_s: c.retry_after_s,
            outage_until: outage_end(now, c.outage_s)?,
            outage_mode: c.outage_mode,
            error_next: 0,
            rate_limit_next: 0,
            seed: c.seed,
            rng: match c.seed {
                Some(s) => Rng::new(s),
                None => Rng::from_entropy(),
            },
        })
    }

    /// Applies an admin update; all-or-nothing.
    pub fn apply(&mut self, u: &FaultUpdate, now: Instant) -> Result<(), String> {
        let mut next = if u.clear {
            Faults::none()
        } else {
            self.clone_settings()
        };
        if let Some(v) = u.latency_ms {
            next.latency_ms = v;
        }
        if let Some(v) = u.latency_jitter_ms {
            next.latency_jitter_ms = v;
        }
        if let Some(v) = u.error_rate {
            next.error_rate = check_rate("error_rate", v)?;
        }
        if let Some(v) = u.rate_limit_rate {
            next.rate_limit_rate = check_rate("rate_limit_rate", v)?;
        }
        if let Some(v) = u.retry_after_s {
            next.retry_after_s = v;
        }
        if let Some(v) = u.outage_s {
            next.outage_until = outage_end(now, v)?;
        }
        if let Some(v) = u.outage_mode {
            next.outage_mode = v;
        }
        if let Some(v) = u.error_next {
            next.error_next = v;
        }
        if let Some(v) = u.rate_limit_next {
            next.rate_limit_next = v;
        }
        if let Some(s) = u.seed {
            next.seed = Some(s);
            next.rng = Rng::new(s);
        }
        *self = next;
        Ok(())
    }

    fn clone_settings(&self) -> Faults {
        Faults {
            latency_ms: self.latency_ms,
            latency_jitter_ms: self.latency_jitter_ms,
            error_rate: self.error_rate,
            rate_limit_rate: self.rate_limit_rate,
            retry_after_s: self.retry_after_s,
            outage_until: self.outage_until,
            outage_mode: self.outage_mode,
            error_next: self.error_next,
            rate_limit_next: self.rate_limit_next,
            seed: self.seed,
            rng: self.rng.clone(),
        }
    }

    /// The delay to add to this request.
    pub fn latency(&mut self) -> Duration {
        let jitter = if self.latency_jitter_ms > 0 {
            self.rng.next_u64() % (self.latency_jitter_ms + 1)
        } else {
            0
        };
        Duration::from_millis(self.latency_ms.saturating_add(jitter))
    }

    pub fn decide(&mut self, now: Instant) -> Decision {
        if let Some(until) = self.outage_until {
            if now < until {
                return Decision::Outage(self.outage_mode);
            }
            self.outage_until = None;
        }
        if self.rate_limit_next > 0 {
            self.rate_limit_next -= 1;
            return Decision::RateLimit {
                retry_after_s: self.retry_after_s,
            };
        }
        if self.error_next > 0 {
            self.error_next -= 1;
            return Decision::Error;
        }
        if self.rng.chance(self.rate_limit_rate) {
            return Decision::RateLimit {
                retry_after_s: self.retry_after_s,
            };
        }
        if self.rng.chance(self.error_rate) {
            return Decision::Error;
        }
        Decision::Pass
    }

    pub fn to_json(&self, now: Instant) -> Value {
        let remaining = self
            .outage_until
            .map(|u| u.saturating_duration_since(now).as_millis() as u64)
            .unwrap_or(0);
        json!({
            "latency_ms": self.latency_ms,
            "latency_jitter_ms": self.latency_jitter_ms,
            "error_rate": self.error_rate,
            "rate_limit_rate": self.rate_limit_rate,
            "retry_after_s": self.retry_after_s,
            "outage_mode": self.outage_mode.as_str(),
            "outage_remaining_ms": remaining,
            "error_next": self.error_next,
            "rate_limit_next": self.rate_limit_next,
            "seed": self.seed,
        })
    }
}

#[derive(Debug, Clone, Default, Serialize)]
struct RouteStats {
    total: u64,
    by_status: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
struct RecentRequest {
    seq: u64,
    method: String,
    path: String,
    route: String,
    status: String,
    elapsed_ms: u64,
    fault: Option<&'static str>,
}

const RECENT: usize = 200;

/// Per-request counters for `GET /_admin/stats`.
#[derive(Debug, Default)]
pub struct Stats {
    total: u64,
    by_route: BTreeMap<String, RouteStats>,
    by_status: BTreeMap<String, u64>,
    faults: BTreeMap<String, u64>,
    recent: VecDeque<RecentRequest>,
}

impl Stats {
    /// Records one request; `status` is `None` when the connection was
    /// closed without an answer.
    pub fn record(
        &mut self,
        method: &str,
        path: &str,
        route: &str,
        status: Option<u16>,
        elapsed: Duration,
        fault: Option<&'static str>,
    ) {
        let status = status.map_or_else(|| "closed".to_string(), |s| s.to_string());
        self.total += 1;
        let r = self.by_route.entry(route.to_string()).or_default();
        r.total += 1;
        *r.by_status.entry(status.clone()).or_default() += 1;
        *self.by_status.entry(status.clone()).or_default() += 1;
        if let Some(f) = fault {
            *self.faults.entry(f.to_string()).or_default() += 1;
        }
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(RecentRequest {
            seq: self.total,
            method: method.to_string(),
            path: path.to_string(),
            route: route.to_string(),
            status,
            elapsed_ms: elapsed.as_millis() as u64,
            fault,
        });
    }

    pub fn to_json(&self) -> Value {
        json!({
            "total": self.total,
            "by_route": self.by_route,
            "by_status": self.by_status,
            "faults": self.faults,
            "recent": self.recent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(v: Value) -> FaultUpdate {
        serde_json::from_value(v).expect("valid update")
    }

    #[test]
    fn no_faults_pass() {
        let mut f = Faults::none();
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(f.decide(now), Decision::Pass);
        }
        assert_eq!(f.latency(), Duration::ZERO);
    }

    #[test]
    fn forced_counts_come_first_and_run_out() {
        let mut f = Faults::none();
        let now = Instant::now();
        f.apply(
            &update(json!({"error_next": 2, "rate_limit_next": 1, "retry_after_s": 9})),
            now,
        )
        .expect("apply");
        assert_eq!(f.decide(now), Decision::RateLimit { retry_after_s: 9 });
        assert_eq!(f.decide(now), Decision::Error);
        assert_eq!(f.decide(now), Decision::Error);
        assert_eq!(f.decide(now), Decision::Pass);
    }

    #[test]
    fn rates_are_probabilities() {
        let mut f = Faults::none();
        let now = Instant::now();
        f.apply(&update(json!({"error_rate": 1.0})), now)
            .expect("apply");
        assert_eq!(f.decide(now), Decision::Error);
        f.apply(
            &update(json!({"error_rate": 0.0, "rate_limit_rate": 1.0})),
            now,
        )
        .expect("apply");
        assert_eq!(f.decide(now), Decision::RateLimit { retry_after_s: 1 });
        assert!(f.apply(&update(json!({"error_rate": 1.5})), now).is_err());
        assert!(
            f.apply(&update(json!({"rate_limit_rate": -0.1})), now)
                .is_err()
        );
        // a failed update changes nothing
        assert_eq!(f.decide(now), Decision::RateLimit { retry_after_s: 1 });
        // seeded randomness is reproducible
        let mut a = Faults::none();
        let mut b = Faults::none();
        a.apply(&update(json!({"error_rate": 0.5, "seed": 7})), now)
            .expect("apply");
        b.apply(&update(json!({"error_rate": 0.5, "seed": 7})), now)
            .expect("apply");
        let da: Vec<Decision> = (0..50).map(|_| a.decide(now)).collect();
        let db: Vec<Decision> = (0..50).map(|_| b.decide(now)).collect();
        assert_eq!(da, db);
        assert!(da.contains(&Decision::Error) && da.contains(&Decision::Pass));
    }

    #[test]
    fn outage_expires() {
        let mut f = Faults::none();
        let now = Instant::now();
        f.apply(&update(json!({"outage_s": 2, "outage_mode": "close"})), now)
            .expect("apply");
        assert_eq!(f.decide(now), Decision::Outage(OutageMode::Close));
        assert_eq!(f.to_json(now)["outage_remaining_ms"], 2000);
        assert_eq!(f.decide(now + Duration::from_secs(3)), Decision::Pass);
        assert_eq!(f.to_json(now)["outage_remaining_ms"], 0);
        assert!(f.apply(&update(json!({"outage_s": -1})), now).is_err());
    }

    #[test]
    fn clear_and_unknown_keys() {
        let mut f = Faults::none();
        let now = Instant::now();
        f.apply(&update(json!({"latency_ms": 50, "error_rate": 1.0})), now)
            .expect("apply");
        assert_eq!(f.latency(), Duration::from_millis(50));
        f.apply(&update(json!({"clear": true, "latency_ms": 5})), now)
            .expect("apply");
        assert_eq!(f.latency(), Duration::from_millis(5));
        assert_eq!(f.decide(now), Decision::Pass);
        assert!(serde_json::from_value::<FaultUpdate>(json!({"latency": 5})).is_err());
        f.apply(&update(json!({"latency_jitter_ms": 10})), now)
            .expect("apply");
        for _ in 0..20 {
            let l = f.latency();
            assert!(l >= Duration::from_millis(5) && l <= Duration::from_millis(15));
        }
    }

    #[test]
    fn from_config_validates() {
        let now = Instant::now();
        let c = FaultConfig {
            error_rate: 2.0,
            ..FaultConfig::default()
        };
        assert!(Faults::from_config(&c, now).is_err());
        let c = FaultConfig {
            outage_s: 1.0,
            seed: Some(1),
            ..FaultConfig::default()
        };
        let mut f = Faults::from_config(&c, now).expect("valid");
        assert_eq!(f.decide(now), Decision::Outage(OutageMode::Unavailable));
    }

    #[test]
    fn stats_count_by_route_and_status() {
        let mut s = Stats::default();
        let d = Duration::from_millis(3);
        s.record(
            "GET",
            "/api/resource/Customer",
            "GET /api/resource/Customer",
            Some(200),
            d,
            None,
        );
        s.record(
            "GET",
            "/api/resource/Customer",
            "GET /api/resource/Customer",
            Some(429),
            d,
            Some("rate_limit"),
        );
        s.record(
            "PUT",
            "/api/resource/Customer/X",
            "PUT /api/resource/Customer/{name}",
            None,
            d,
            Some("outage"),
        );
        let j = s.to_json();
        assert_eq!(j["total"], 3);
        assert_eq!(j["by_route"]["GET /api/resource/Customer"]["total"], 2);
        assert_eq!(
            j["by_route"]["GET /api/resource/Customer"]["by_status"]["429"],
            1
        );
        assert_eq!(j["by_status"]["closed"], 1);
        assert_eq!(j["faults"]["rate_limit"], 1);
        assert_eq!(j["recent"][2]["status"], "closed");
        for _ in 0..300 {
            s.record("GET", "/", "GET /", Some(404), d, None);
        }
        assert_eq!(s.to_json()["recent"].as_array().map(Vec::len), Some(RECENT));
    }
}
