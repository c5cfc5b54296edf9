//! Counters and histograms for `/metrics`, and the Prometheus text
//! exposition format (version 0.0.4) they are written in.
//!
//! Lock-free atomics only: they are bumped on every CWMP exchange.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Process-wide counters bumped by the server.
#[derive(Debug, Default)]
pub struct Metrics {
    pub cwmp_requests: AtomicU64,
    /// CWMP requests answered with a 4xx/5xx.
    pub cwmp_rejected: AtomicU64,
    /// CWMP requests being handled right now.
    pub cwmp_in_flight: AtomicI64,
    pub informs: AtomicU64,
    pub sessions_started: AtomicU64,
    pub sessions_ended: AtomicU64,
    /// ACS→CPE requests sent (tasks, provisioning, collector).
    pub rpcs_sent: AtomicU64,
    /// Faults recorded, by source.
    pub faults_cpe: AtomicU64,
    pub faults_acs: AtomicU64,
    pub faults_provisioning: AtomicU64,
    pub provisioned: AtomicU64,
    pub api_requests: AtomicU64,
    /// Exchanges forwarded to the node holding their session.
    pub cwmp_forwarded: AtomicU64,
    /// Informs answered 503 because another node holds the device.
    pub sessions_held_elsewhere: AtomicU64,
    /// File downloads answered (200/206) and their bytes sent.
    pub files_served: AtomicU64,
    pub file_bytes_sent: AtomicU64,
    /// File downloads refused (bad or expired link, unknown file).
    pub files_refused: AtomicU64,
    /// Time a session waited for ERPNext (provisioning lookups).
    pub erpnext_wait: Histogram,
    /// The ACS's own time per completed session: handling its requests
    /// (body, decode, logic, store, durable sync), ERPNext waits excluded.
    pub session_busy: Histogram,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Upper bounds of the latency buckets, seconds.
pub const LATENCY_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// A fixed-bucket latency histogram.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }
}

/// Writes metrics in the Prometheus text format.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    fn header(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.header(name, help, "counter");
        let _ = writeln!(self.out, "{name} {value}");
    }

    /// A counter with one label, one line per value.
    pub fn labelled_counter(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        values: &[(&str, u64)],
    ) {
        self.header(name, help, "counter");
        for (l, v) in values {
            let _ = writeln!(self.out, "{name}{{{label}=\"{l}\"}} {v}");
        }
    }

    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.header(name, help, "gauge");
        let _ = writeln!(self.out, "{name} {value}");
    }

    pub fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        self.header(name, help, "histogram");
        let mut cumulative = 0;
        for (bound, n) in LATENCY_BUCKETS.iter().zip(&h.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            let _ = writeln!(self.out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = h.count.load(Ordering::Relaxed);
        let _ = writeln!(self.out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = h.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(self.out, "{name}_sum {sum}");
        let _ = writeln!(self.out, "{name}_count {count}");
    }

    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_format() {
        let h = Histogram::default();
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_millis(30));
        h.observe(Duration::from_secs(10));
        let mut e = Exposition::new();
        e.counter("acs_informs_total", "Informs accepted.", 7);
        e.labelled_counter(
            "acs_faults_total",
            "Faults.",
            "source",
            &[("cpe", 1), ("acs", 2)],
        );
        e.gauge("acs_sessions_active", "Open sessions.", 3.0);
        e.histogram("acs_erpnext_wait_seconds", "Wait.", &h);
        let text = e.finish();
        assert!(text.contains("# TYPE acs_informs_total counter\nacs_informs_total 7\n"));
        assert!(text.contains("acs_faults_total{source=\"acs\"} 2\n"));
        assert!(text.contains("acs_sessions_active 3\n"));
        assert!(text.contains("acs_erpnext_wait_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(text.contains("acs_erpnext_wait_seconds_bucket{le=\"0.05\"} 2\n"));
        assert!(text.contains("acs_erpnext_wait_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("acs_erpnext_wait_seconds_count 3\n"));
        // Every sample line is `name{labels} value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = line.rsplit_once(' ').unwrap();
            assert!(v.parse::<f64>().is_ok(), "{line}");
        }
    }
}
