//! `GET /metrics`: Prometheus text exposition.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use super::{HttpResponse, full};
use crate::app::Acs;
use crate::metrics::Exposition;

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

fn gauge(a: &AtomicI64) -> f64 {
    a.load(Ordering::Relaxed) as f64
}

pub fn render(acs: &Acs) -> HttpResponse {
    let m = &acs.metrics;
    let mut e = Exposition::new();
    e.counter(
        "acs_cwmp_requests_total",
        "HTTP requests on the CWMP listener.",
        get(&m.cwmp_requests),
    );
    e.counter(
        "acs_cwmp_rejected_total",
        "CWMP requests answered with a 4xx or 5xx status.",
        get(&m.cwmp_rejected),
    );
    e.gauge(
        "acs_cwmp_in_flight",
        "CWMP requests being handled now.",
        gauge(&m.cwmp_in_flight),
    );
    e.counter("acs_informs_total", "Informs accepted.", get(&m.informs));
    e.counter(
        "acs_sessions_started_total",
        "CWMP sessions started.",
        get(&m.sessions_started),
    );
    e.counter(
        "acs_sessions_ended_total",
        "CWMP sessions that ended cleanly (204).",
        get(&m.sessions_ended),
    );
    e.gauge(
        "acs_sessions_active",
        "CWMP sessions open now.",
        acs.sessions.len() as f64,
    );
    e.counter(
        "acs_cwmp_forwarded_total",
        "CWMP exchanges forwarded to the ACS node holding their session (several nodes on PostgreSQL).",
        get(&m.cwmp_forwarded),
    );
    e.counter(
        "acs_files_served_total",
        "File downloads (firmware) answered by the CWMP listener's /files/.",
        get(&m.files_served),
    );
    e.counter(
        "acs_file_bytes_sent_total",
        "Bytes of files (firmware) sent to devices.",
        get(&m.file_bytes_sent),
    );
    e.counter(
        "acs_files_refused_total",
        "File downloads refused: a link not valid for that file and device, expired, or an unknown file.",
        get(&m.files_refused),
    );
    e.counter(
        "acs_sessions_held_elsewhere_total",
        "Informs answered 503 because another ACS node holds the device's session.",
        get(&m.sessions_held_elsewhere),
    );
    e.counter(
        "acs_rpcs_sent_total",
        "Requests the ACS sent to CPEs (tasks, provisioning, host-table collection).",
        get(&m.rpcs_sent),
    );
    e.labelled_counter(
        "acs_faults_total",
        "Faults recorded, by source.",
        "source",
        &[
            ("cpe", get(&m.faults_cpe)),
            ("acs", get(&m.faults_acs)),
            ("provisioning", get(&m.faults_provisioning)),
        ],
    );
    e.counter(
        "acs_provisioning_success_total",
        "Devices brought to their ERPNext configuration (first provisioning, or a change pushed); check runs that found nothing to change are not counted.",
        get(&m.provisioned),
    );
    if let Some(client) = &acs.provisioning.erp {
        let s = client.stats();
        e.counter(
            "acs_erpnext_calls_total",
            "ERPNext calls (cache hits excluded).",
            s.calls,
        );
        e.counter(
            "acs_erpnext_requests_total",
            "HTTP requests to ERPNext (first attempts and retries).",
            s.attempts,
        );
        e.counter(
            "acs_erpnext_errors_total",
            "ERPNext calls that failed.",
            s.errors,
        );
        e.counter(
            "acs_erpnext_retries_total",
            "ERPNext attempts after the first.",
            s.retries,
        );
        e.counter(
            "acs_erpnext_cache_hits_total",
            "ERPNext lookups answered from the cache.",
            s.cache_hits,
        );
        e.counter(
            "acs_erpnext_breaker_opens_total",
            "Times the ERPNext circuit breaker opened.",
            s.breaker_opens,
        );
        e.gauge(
            "acs_erpnext_breaker_open",
            "1 while calls to ERPNext are paused by the breaker.",
            if client.breaker_open() { 1.0 } else { 0.0 },
        );
        e.gauge(
            "acs_erpnext_last_latency_seconds",
            "Duration of the last HTTP request to ERPNext.",
            s.last_latency.map_or(0.0, |d| d.as_secs_f64()),
        );
    }
    e.histogram(
        "acs_erpnext_wait_seconds",
        "Time CWMP sessions waited for ERPNext answers.",
        &m.erpnext_wait,
    );
    e.histogram(
        "acs_session_busy_seconds",
        "ACS time per completed CWMP session: handling its requests (body, decode, logic, store, durable sync), ERPNext waits excluded.",
        &m.session_busy,
    );
    let cr = &acs.connreq.stats;
    e.labelled_counter(
        "acs_connection_requests_total",
        "Connection requests, by result.",
        "result",
        &[
            ("ok", get(&cr.ok)),
            ("failed", get(&cr.failed)),
            ("rate_limited", get(&cr.rate_limited)),
            ("not_sent", get(&cr.not_sent)),
        ],
    );
    e.counter(
        "acs_api_requests_total",
        "Requests on the API listener.",
        get(&m.api_requests),
    );
    e.counter(
        "acs_events_total",
        "Events published.",
        acs.events.published(),
    );
    e.gauge(
        "acs_event_subscribers",
        "Open event streams (SSE clients and the webhook).",
        acs.events.subscribers() as f64,
    );
    let w = &acs.webhook;
    e.labelled_counter(
        "acs_webhook_deliveries_total",
        "Webhook deliveries, by result.",
        "result",
        &[
            ("delivered", get(&w.delivered)),
            ("failed", get(&w.failed)),
            ("dropped", get(&w.dropped)),
        ],
    );
    if let Some(b) = &acs.stun {
        let st = &b.stats;
        e.labelled_counter(
            "acs_stun_datagrams_total",
            "Datagrams on the STUN server (TR-111), by outcome.",
            "outcome",
            &[
                ("answered", get(&st.answered)),
                ("dropped", get(&st.dropped)),
                ("unauthorized", get(&st.unauthorized)),
                ("unknown_attribute", get(&st.unknown_attribute)),
            ],
        );
        e.counter(
            "acs_stun_address_changes_total",
            "STUN bindings that moved to a new address.",
            get(&st.address_changes),
        );
        e.counter(
            "acs_stun_evicted_total",
            "STUN bindings forgotten because the table was full.",
            get(&st.evicted),
        );
        e.gauge(
            "acs_stun_bindings",
            "Devices with a known connection-request address (TR-111).",
            b.len() as f64,
        );
    }
    let mut r = Response::new(full(e.finish()));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}
