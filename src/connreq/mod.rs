//! Connection requests (TR-069 §3.2.2): the ACS asks a device to open a
//! session now, by an HTTP GET to its ConnectionRequestURL answered with
//! Digest credentials, or (TR-111, devices behind NAT) by a signed UDP
//! message to the address it learned through STUN.
//!
//! The result is always a [`CrResult`] (sent or not, answered or not, and
//! why), recorded per device and counted, never an error that could carry
//! a credential: the decision logic ([`challenge`], [`limit`]) is pure and
//! this file only does the I/O.

pub mod challenge;
pub mod limit;
pub mod transport;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{StatusCode, Url};
use serde::Serialize;

use crate::config::{ConnectionRequestSettings, Secret};
use crate::store::DeviceRecord;
use challenge::{Challenge, basic_authorization, digest_authorization};
use limit::RateLimiter;

/// How a connection request went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CrResult {
    /// A request went out (false: nothing to send to, or rate-limited).
    pub sent: bool,
    /// The device accepted it (HTTP 200/204; for UDP, which has no answer,
    /// true once the datagrams left).
    pub ok: bool,
    /// `http`, `udp` or `none`.
    pub transport: &'static str,
    /// The device's final HTTP status, if it answered.
    pub status: Option<u16>,
    /// What happened, in words (no credentials, no URL).
    pub detail: String,
    pub at_ms: u64,
}

impl CrResult {
    fn not_sent(detail: impl Into<String>, now_ms: u64) -> CrResult {
        CrResult {
            sent: false,
            ok: false,
            transport: "none",
            status: None,
            detail: detail.into(),
            at_ms: now_ms,
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct CrStats {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    pub rate_limited: AtomicU64,
    pub not_sent: AtomicU64,
}

/// Credentials to answer a device's challenge with, tried in order.
#[derive(Clone, Debug)]
pub struct CrCredentials {
    pub username: String,
    pub password: Secret,
}

/// Where and how to reach one device.
#[derive(Clone, Debug)]
pub struct CrTarget {
    pub device_id: String,
    pub url: Option<String>,
    pub credentials: Vec<CrCredentials>,
    /// TR-111: the device's NAT binding, if it reported one.
    pub udp: Option<SocketAddr>,
    /// Try UDP before HTTP ([`transport::udp_first`]).
    pub udp_first: bool,
}

/// Results kept for the API, at most.
const MAX_RECORDED: usize = 1_000_000;

/// Sends connection requests; shared by the API handlers.
pub struct ConnectionRequester {
    http: reqwest::Client,
    settings: ConnectionRequestSettings,
    limiter: Mutex<RateLimiter>,
    last: Mutex<HashMap<String, CrResult>>,
    pub stats: CrStats,
    /// The STUN server's socket (TR-111 messages leave from it, so a NAT
    /// that only lets the STUN server's replies in lets them in too).
    udp: Option<std::sync::Arc<tokio::net::UdpSocket>>,
}

impl ConnectionRequester {
    pub fn new(
        settings: ConnectionRequestSettings,
        udp: Option<std::sync::Arc<tokio::net::UdpSocket>>,
    ) -> Result<ConnectionRequester, String> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::http_client::tls_config(false)?)
            .user_agent(concat!("gigafibre-acs/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(settings.timeout)
            .timeout(settings.timeout)
            // A CPE's answer is final; a redirect is not followed anywhere.
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| format!("connection-request HTTP client: {e}"))?;
        Ok(ConnectionRequester {
            http,
            limiter: Mutex::new(RateLimiter::new(settings.min_interval.as_millis() as u64)),
            settings,
            last: Mutex::new(HashMap::new()),
            stats: CrStats::default(),
            udp,
        })
    }

    /// Where to reach a device and with which credentials: the ones the
    /// ACS gave it at provisioning, then the configured ones.
    /// `udp`: the device's TR-111 address (STUN binding or reported
    /// UDPConnectionRequestAddress); `nat_detected`: its NATDetected.
    pub fn target(
        &self,
        device: &DeviceRecord,
        udp: Option<SocketAddr>,
        nat_detected: bool,
    ) -> CrTarget {
        let mut credentials = Vec::new();
        let p = &device.provisioning;
        if let (Some(u), Some(pw)) = (&p.cr_username, &p.cr_password) {
            credentials.push(CrCredentials {
                username: u.clone(),
                password: Secret::new(pw.clone()),
            });
        }
        if let Some(u) = &self.settings.username {
            if credentials.iter().all(|c| &c.username != u) || credentials.is_empty() {
                credentials.push(CrCredentials {
                    username: u.clone(),
                    password: self.settings.password.clone(),
                });
            }
        }
        let url = device.connection_request_url.clone();
        CrTarget {
            device_id: device.id.clone(),
            udp_first: udp.is_some_and(|a| transport::udp_first(url.as_deref(), a, nat_detected)),
            url,
            credentials,
            udp,
        }
    }

    /// The latest result for a device, if any.
    pub fn last_result(&self, device_id: &str) -> Option<CrResult> {
        self.last
            .lock()
            .ok()
            .and_then(|m| m.get(device_id).cloned())
    }

    /// Sends one connection request (rate-limited per device).
    pub async fn request(&self, target: &CrTarget, now_ms: u64) -> CrResult {
        let limited = self
            .limiter
            .lock()
            .map(|mut l| l.acquire(&target.device_id, now_ms))
            .unwrap_or(Ok(()));
        let result = match limited {
            Err(wait_ms) => {
                self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                return CrResult::not_sent(
                    format!(
                        "rate-limited: one connection request per {} s per device; retry in {} s",
                        self.settings.min_interval.as_secs(),
                        wait_ms.div_ceil(1000)
                    ),
                    now_ms,
                );
            }
            Ok(()) => self.send(target, now_ms).await,
        };
        let counter = match (result.sent, result.ok) {
            (_, true) => &self.stats.ok,
            (true, false) => &self.stats.failed,
            (false, false) => &self.stats.not_sent,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.last.lock() {
            if m.len() >= MAX_RECORDED {
                m.clear();
            }
            m.insert(target.device_id.clone(), result.clone());
        }
        tracing::info!(device = %target.device_id, transport = result.transport, ok = result.ok, detail = %result.detail, "connection request");
        result
    }

    async fn send(&self, target: &CrTarget, now_ms: u64) -> CrResult {
        if let (true, Some(addr)) = (target.udp_first, target.udp) {
            let udp = self.send_udp(addr, &target.credentials, now_ms).await;
            if udp.sent {
                return udp;
            }
            // Not sent (no STUN socket, no credentials): HTTP may still
            // get through.
            if let Some(url) = target.url.as_deref().filter(|u| !u.trim().is_empty()) {
                let http = self
                    .send_http(url.trim(), &target.credentials, now_ms)
                    .await;
                return if http.ok {
                    http
                } else {
                    CrResult {
                        detail: format!("UDP: {}; {}", udp.detail, http.detail),
                        ..http
                    }
                };
            }
            return udp;
        }
        let http = match target
            .url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            Some(url) => Some(self.send_http(url, &target.credentials, now_ms).await),
            None => None,
        };
        if let Some(r) = http.as_ref().filter(|r| r.ok) {
            return r.clone();
        }
        // No URL, or the URL is unreachable (a private address behind
        // NAT): TR-111 UDP is what such a device asked for.
        let unreachable = http.as_ref().is_none_or(|r| r.status.is_none());
        match (http, target.udp) {
            (http, Some(addr)) if unreachable => {
                let udp = self.send_udp(addr, &target.credentials, now_ms).await;
                match http {
                    Some(h) if !udp.ok => CrResult {
                        detail: format!("{}; UDP: {}", h.detail, udp.detail),
                        ..udp
                    },
                    _ => udp,
                }
            }
            (Some(r), _) => r,
            (None, _) => {
                CrResult::not_sent("the device has reported no ConnectionRequestURL", now_ms)
            }
        }
    }

    async fn send_http(&self, url: &str, credentials: &[CrCredentials], now_ms: u64) -> CrResult {
        let failed = |status: Option<u16>, detail: String| CrResult {
            sent: true,
            ok: false,
            transport: "http",
            status,
            detail,
            at_ms: now_ms,
        };
        let parsed = match Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
            _ => {
                return CrResult::not_sent(
                    "the device's ConnectionRequestURL is not an http(s) URL",
                    now_ms,
                );
            }
        };
        let uri = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_owned(),
        };
        let first = match self.http.get(parsed.clone()).send().await {
            Ok(r) => r,
            Err(e) => {
                return failed(
                    None,
                    crate::http_client::transport_reason(&e, self.settings.timeout),
                );
            }
        };
        if first.status() != StatusCode::UNAUTHORIZED {
            return self.http_outcome(first.status(), now_ms);
        }
        let challenges: Vec<String> = first
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        let challenge = match challenge::pick(challenges.iter().map(String::as_str)) {
            Ok(c) => c,
            Err(e) => return failed(Some(401), e.to_string()),
        };
        if challenge == Challenge::Basic && !self.settings.allow_basic {
            return failed(
                Some(401),
                "the device asks for Basic authentication, which is off (ACS_CR_ALLOW_BASIC)"
                    .into(),
            );
        }
        if credentials.is_empty() {
            return failed(
                Some(401),
                "the device asks for credentials and the ACS has none for it (ACS_CR_USERNAME)"
                    .into(),
            );
        }
        let mut last = None;
        for (i, c) in credentials.iter().enumerate() {
            // A fresh challenge per attempt: a nonce may be single-use.
            let challenge = if i == 0 {
                challenge.clone()
            } else {
                match self.http.get(parsed.clone()).send().await {
                    Ok(r) if r.status() == StatusCode::UNAUTHORIZED => {
                        let v: Vec<String> = r
                            .headers()
                            .get_all(WWW_AUTHENTICATE)
                            .iter()
                            .filter_map(|v| v.to_str().ok().map(str::to_owned))
                            .collect();
                        match challenge::pick(v.iter().map(String::as_str)) {
                            Ok(c) => c,
                            Err(e) => return failed(Some(401), e.to_string()),
                        }
                    }
                    Ok(r) => return self.http_outcome(r.status(), now_ms),
                    Err(e) => {
                        return failed(
                            None,
                            crate::http_client::transport_reason(&e, self.settings.timeout),
                        );
                    }
                }
            };
            let value = match &challenge {
                Challenge::Basic => basic_authorization(&c.username, c.password.expose()),
                digest => {
                    let cnonce = random_hex();
                    match digest_authorization(
                        digest,
                        &c.username,
                        c.password.expose(),
                        &uri,
                        &cnonce,
                    ) {
                        Some(v) => v,
                        None => return failed(Some(401), "cannot answer the challenge".into()),
                    }
                }
            };
            let Ok(mut header) = HeaderValue::from_str(&value) else {
                last = Some(failed(
                    Some(401),
                    "a connection-request username has characters not allowed in HTTP".into(),
                ));
                continue;
            };
            header.set_sensitive(true);
            match self
                .http
                .get(parsed.clone())
                .header(AUTHORIZATION, header)
                .send()
                .await
            {
                Ok(r) if r.status() == StatusCode::UNAUTHORIZED => {
                    last = Some(failed(
                        Some(401),
                        format!(
                            "the device refused the credentials ({} of {} tried)",
                            i + 1,
                            credentials.len()
                        ),
                    ));
                }
                Ok(r) => return self.http_outcome(r.status(), now_ms),
                Err(e) => {
                    return failed(
                        None,
                        crate::http_client::transport_reason(&e, self.settings.timeout),
                    );
                }
            }
        }
        last.unwrap_or_else(|| failed(Some(401), "the device refused the credentials".into()))
    }

    fn http_outcome(&self, status: StatusCode, now_ms: u64) -> CrResult {
        let ok = status == StatusCode::OK || status == StatusCode::NO_CONTENT;
        let detail = if ok {
            format!("accepted ({})", status.as_u16())
        } else if status == StatusCode::SERVICE_UNAVAILABLE {
            "the device is busy (503): a session is probably in progress".into()
        } else {
            format!("the device answered {}", status.as_u16())
        };
        CrResult {
            sent: true,
            ok,
            transport: "http",
            status: Some(status.as_u16()),
            detail,
            at_ms: now_ms,
        }
    }

    async fn send_udp(
        &self,
        addr: SocketAddr,
        credentials: &[CrCredentials],
        now_ms: u64,
    ) -> CrResult {
        let Some(socket) = &self.udp else {
            return CrResult::not_sent(
                "the device is reachable only by UDP (TR-111) and the STUN server is off (ACS_STUN_LISTEN)",
                now_ms,
            );
        };
        let Some(c) = credentials.first() else {
            return CrResult::not_sent(
                "a UDP connection request must be signed and the ACS has no credentials for the device",
                now_ms,
            );
        };
        match crate::stun::server::send_udp_connection_request(
            socket,
            addr,
            &c.username,
            c.password.expose(),
            now_ms / 1000,
        )
        .await
        {
            Ok(()) => CrResult {
                sent: true,
                ok: true,
                transport: "udp",
                status: None,
                detail: "UDP connection request sent (TR-111; no answer expected)".into(),
                at_ms: now_ms,
            },
            Err(e) => CrResult {
                sent: false,
                ok: false,
                transport: "udp",
                status: None,
                detail: format!("UDP connection request could not be sent: {e}"),
                at_ms: now_ms,
            },
        }
    }
}

fn random_hex() -> String {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 12];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    crate::digest::hex(&b)
}

/// How long callers wait for a device's open session to end before the
/// connection request (a CPE ignores one while in session).
pub const WAIT_FOR_SESSION_END: Duration = Duration::from_secs(30);
