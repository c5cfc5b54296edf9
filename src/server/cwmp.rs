//! The CWMP endpoint: one HTTP request in, one CWMP reply out.
//!
//! Order of work per request: read the body (bounded), authenticate, find
//! the session (cookie, else connection), decode, then either start a
//! session (Inform) or feed the session state machine. Whatever the session
//! decided is written and made durable before the reply leaves, so what a
//! CPE sees acknowledged survives a crash.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use tracing::{debug, error, info, warn};

use super::auth::{AuthOutcome, CpeAuthenticator};
use super::body::{BodyError, decode_content, read_limited};
use crate::app::sessions::{LiveSession, Refused, SessionKey};
use crate::app::{Acs, now_ms};
use std::sync::atomic::Ordering;

use serde_json::json;

use super::forward::{FORWARDED, Forwarder};
use crate::app::apply;
use crate::app::provisioning::random_text;
use crate::cluster::{Claim, Holder, SESSION_LEASE, SESSION_LEASE_RENEW};
use crate::config::CpeAuthMode;
use crate::cwmp::{Body, Envelope};
use crate::events::{EventKind, NewEvent};
use crate::metrics::Metrics;
use crate::provision::flow::DesiredOutcome;
use crate::session::{self, Input, Reply, Session, SessionPolicy};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "session";

/// What the server remembers about one TCP (or TLS) connection.
pub struct ConnState {
    pub remote: SocketAddr,
    /// Session opened on this connection: the fallback for CPEs that do
    /// not return cookies.
    session: Mutex<Option<SessionKey>>,
    /// Credentials verified on this connection (some CPEs authenticate
    /// only the first request).
    authenticated: Mutex<Option<Identity>>,
}

#[derive(Clone, Debug)]
struct Identity {
    bound_device: Option<String>,
}

impl ConnState {
    pub fn new(remote: SocketAddr) -> ConnState {
        ConnState {
            remote,
            session: Mutex::new(None),
            authenticated: Mutex::new(None),
        }
    }

    fn session_key(&self) -> Option<SessionKey> {
        self.session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_session(&self, key: Option<SessionKey>) {
        *self.session.lock().unwrap_or_else(|p| p.into_inner()) = key;
    }

    fn identity(&self) -> Option<Identity> {
        self.authenticated
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_identity(&self, id: Identity) {
        *self.authenticated.lock().unwrap_or_else(|p| p.into_inner()) = Some(id);
    }
}

type HttpResponse = Response<Full<Bytes>>;

fn text(status: StatusCode, msg: impl Into<String>) -> HttpResponse {
    let mut body = msg.into();
    body.push('\n');
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn xml(envelope: &Envelope) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::from(envelope.encode())));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=\"utf-8\""),
    );
    r
}

fn no_content() -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

fn unavailable(retry_after_s: u64, msg: &str) -> HttpResponse {
    let mut r = text(StatusCode::SERVICE_UNAVAILABLE, msg);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
    r
}

fn internal_error(what: &str, e: impl std::fmt::Display) -> HttpResponse {
    error!(error = %e, "{what}");
    text(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("internal error: {what}"),
    )
}

/// A Download of one of the ACS's own files carries a link relative to
/// the ACS (`/files/…`): it becomes absolute here, at `file_base_url`, or
/// else at the address the device reached this ACS on (its `Host`), so a
/// device behind any NAT or balancer fetches from where it informs.
fn absolute_link(acs: &Acs, d: &mut crate::cwmp::rpc::Download, host: Option<&str>) {
    if !d.url.starts_with('/') {
        return;
    }
    let base = match (&acs.config.file_base_url, host) {
        (Some(base), _) => base.trim_end_matches('/').to_owned(),
        (None, Some(host)) => {
            let scheme = if acs.config.tls.is_some() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{host}")
        }
        (None, None) => return,
    };
    d.url.insert_str(0, &base);
}

/// The `session` cookie (see [`crate::api::access::cookie`] for what is
/// tolerated).
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    crate::api::access::cookie(headers, SESSION_COOKIE)
}

/// Handles one request on the CWMP listener.
pub async fn handle(
    acs: Arc<Acs>,
    auth: Arc<CpeAuthenticator>,
    forwarder: Arc<Forwarder>,
    conn: Arc<ConnState>,
    req: Request<Incoming>,
) -> HttpResponse {
    let m = &acs.metrics;
    Metrics::inc(&m.cwmp_requests);
    m.cwmp_in_flight.fetch_add(1, Ordering::Relaxed);
    let r = handle_request(&acs, &auth, &forwarder, &conn, req).await;
    m.cwmp_in_flight.fetch_sub(1, Ordering::Relaxed);
    if r.status().is_client_error() || r.status().is_server_error() {
        Metrics::inc(&m.cwmp_rejected);
    }
    r
}

async fn handle_request(
    acs: &Arc<Acs>,
    auth: &CpeAuthenticator,
    forwarder: &Forwarder,
    conn: &Arc<ConnState>,
    req: Request<Incoming>,
) -> HttpResponse {
    if req.method() != Method::POST {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "this is a CWMP (TR-069) endpoint: CPEs POST SOAP envelopes here",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let now = SystemTime::now();
    let now_ms = now_ms(now);
    let live = session_cookie(&parts.headers)
        .and_then(|k| acs.sessions.get(k, now_ms))
        .or_else(|| {
            conn.session_key()
                .and_then(|k| acs.sessions.get(&k, now_ms))
        });
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let cfg = &acs.config;
    if let Some(holder) = holder_elsewhere(acs, live.is_some(), &parts.headers) {
        // The holder applies its own limits; this node only bounds what
        // it relays.
        let limit = cfg.max_names_body_bytes.max(cfg.max_body_bytes);
        return match read_limited(body, declared, limit, cfg.body_read_timeout).await {
            Ok(raw) => {
                Metrics::inc(&acs.metrics.cwmp_forwarded);
                forwarder.forward(&holder, &parts.headers, raw).await
            }
            Err(e) => body_error(conn, e),
        };
    }
    // A whole data model (the answer to the ACS's GetParameterNames) may
    // be far bigger than any other body.
    let limit = match live.as_ref().is_some_and(|l| l.awaits_names()) {
        true => cfg.max_names_body_bytes.max(cfg.max_body_bytes),
        false => cfg.max_body_bytes,
    };
    let raw = match read_limited(body, declared, limit, cfg.body_read_timeout).await {
        Ok(b) => b,
        Err(e) => return body_error(conn, e),
    };
    let encoding = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let raw = match decode_content(encoding, raw, limit) {
        Ok(b) => b,
        Err(e) => return body_error(conn, e),
    };

    if auth.mode() != CpeAuthMode::None && live.is_none() && conn.identity().is_none() {
        let authorization = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let uri = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let store = acs.store.clone();
        let lookup = move |user: &str| match store.cpe_credential(user) {
            Ok(c) => c,
            Err(e) => {
                error!(error = %e, "reading CPE credentials failed");
                None
            }
        };
        match auth.check("POST", uri, authorization, &lookup, now) {
            AuthOutcome::Allowed { bound_device, .. } => {
                conn.set_identity(Identity { bound_device });
            }
            AuthOutcome::Challenge { headers, reason } => {
                debug!(remote = %conn.remote, reason, "CPE authentication challenge");
                let mut r = text(StatusCode::UNAUTHORIZED, "authentication required");
                for h in headers {
                    if let Ok(v) = HeaderValue::from_str(&h) {
                        r.headers_mut().append(header::WWW_AUTHENTICATE, v);
                    }
                }
                return r;
            }
        }
    }

    // Where the device reached this ACS: its firmware links point there.
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    let input = if raw.iter().all(u8::is_ascii_whitespace) {
        Input::Empty
    } else {
        match Envelope::decode(&raw) {
            Ok(env) => Input::Envelope(env),
            Err(e) => {
                warn!(
                    remote = %conn.remote,
                    device = live.as_ref().map(|l| l.device_id.as_str()).unwrap_or("-"),
                    reason = %e,
                    "rejected CWMP request"
                );
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("malformed CWMP request: {e}"),
                );
            }
        }
    };

    if let Input::Envelope(env) = input {
        if matches!(env.body, Body::Inform(_)) {
            return start_session(acs, conn, live, env, now_ms, started).await;
        }
        return continue_session(acs, conn, live, Input::Envelope(env), now_ms, started, host)
            .await;
    }
    continue_session(acs, conn, live, input, now_ms, started, host).await
}

/// The other node holding the session this request's cookie names, when
/// the session is not here (and the request was not forwarded already).
fn holder_elsewhere(acs: &Acs, live_here: bool, headers: &HeaderMap) -> Option<Holder> {
    if live_here || !acs.cluster.shared() || headers.contains_key(FORWARDED) {
        return None;
    }
    let cookie = session_cookie(headers)?;
    match acs.cluster.session_holder(cookie) {
        Ok(h) => h,
        Err(e) => {
            warn!(error = %e, "cannot tell which node holds a session");
            None
        }
    }
}

fn body_error(conn: &ConnState, e: BodyError) -> HttpResponse {
    let status = match e {
        BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        BodyError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
        BodyError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        _ => StatusCode::BAD_REQUEST,
    };
    warn!(remote = %conn.remote, reason = %e, "rejected CWMP request body");
    text(status, e.to_string())
}

async fn start_session(
    acs: &Arc<Acs>,
    conn: &Arc<ConnState>,
    previous: Option<Arc<LiveSession>>,
    env: Envelope,
    now_ms: u64,
    started: Instant,
) -> HttpResponse {
    let Body::Inform(inform) = &env.body else {
        return text(StatusCode::BAD_REQUEST, "expected an Inform");
    };
    if !inform.device_id.is_identifiable() {
        warn!(remote = %conn.remote, "Inform without a SerialNumber rejected");
        return text(
            StatusCode::BAD_REQUEST,
            "Inform rejected: DeviceId has no SerialNumber",
        );
    }
    let device_id = inform.device_id.device_id();
    if let Some(bound) = conn.identity().and_then(|i| i.bound_device) {
        if bound != device_id {
            warn!(remote = %conn.remote, device = %device_id, credentials_of = %bound, "credentials used by another device");
            return text(
                StatusCode::FORBIDDEN,
                format!("these credentials belong to device {bound}, not {device_id}"),
            );
        }
    }
    // A new Inform from the device that holds this session replaces it (the
    // CPE restarted its session, e.g. after a reboot). Another device's
    // session found through a shared connection is left alone.
    if let Some(old) = previous {
        if old.device_id == device_id {
            acs.sessions.end(&old.key);
        }
        conn.set_session(None);
    }

    let store = acs.store.as_ref();
    let existing = match store.device(&device_id) {
        Ok(d) => d,
        Err(e) => return internal_error("reading the device record failed", e),
    };
    let tasks = match store.tasks(&device_id) {
        Ok(t) => t,
        Err(e) => return internal_error("reading the task queue failed", e),
    };
    let previous_inform_ms = existing.as_ref().map(|d| d.last_inform_ms);
    // What the Inform changes, and what this session does (pure decisions).
    let mut outcome = session::apply_inform(
        existing,
        inform,
        &env.header,
        env.version,
        Some(conn.remote.ip().to_string()),
        now_ms,
    );
    let policy = SessionPolicy {
        provisioning: &acs.provisioning.policy,
        hosts_collect: acs.config.hosts_collect,
        hosts_max_age_ms: acs.config.hosts_max_age.map(|a| a.as_millis() as u64),
        max_attempts: acs.limits.max_attempts,
    };
    let mut opening = session::open(
        &mut outcome.device,
        inform,
        &tasks,
        &policy,
        now_ms,
        &mut || random_text(20),
    );
    if opening.needs_tree {
        let loaded = match &outcome.device.data_model {
            Some(info) => acs.catalog.load(store, &device_id, info),
            None => Ok(None),
        };
        match loaded {
            Ok(Some(tree)) => opening.work.tree = Some(tree),
            Ok(None) => {
                warn!(device = %device_id, "stored data model missing: discovering it again");
                opening.work.discover = Some(outcome.device.root.clone().unwrap_or_default());
            }
            Err(e) => {
                warn!(device = %device_id, error = %e, "stored data model unreadable: discovering it again");
                opening.work.discover = Some(outcome.device.root.clone().unwrap_or_default());
            }
        }
    }
    if let Some(root) = &opening.work.discover {
        debug!(device = %device_id, root = %root, "discovering the data model");
    }
    let (session, mut start_effects) = Session::start_with(
        device_id.clone(),
        env.version,
        tasks,
        acs.limits,
        opening.work,
        now_ms,
    );
    start_effects.append(&mut opening.effects);
    let timeout_ms = acs.session_timeout_ms(env.header.session_timeout);
    let live = match acs.sessions.begin(&device_id, session, timeout_ms, now_ms) {
        Ok((l, replaced)) => {
            if replaced {
                info!(device = %device_id, remote = %conn.remote, "new Inform: the device's previous session is over, its unanswered requests will be retried");
            }
            l
        }
        Err(Refused::DeviceBusy { retry_after_s }) => {
            info!(device = %device_id, remote = %conn.remote, "Inform while the device's previous session is mid-exchange: asked to retry");
            return unavailable(
                retry_after_s,
                "this device already has a CWMP session in progress",
            );
        }
        Err(Refused::Full) => {
            warn!(device = %device_id, "session table full: Inform refused");
            return unavailable(30, "too many CWMP sessions in progress");
        }
    };
    // One session per device across the nodes sharing the store.
    match acs
        .cluster
        .claim_device(&device_id, &live.key, SESSION_LEASE)
    {
        Ok(Claim::Granted) => live.set_claimed(now_ms),
        Ok(Claim::Held {
            node,
            retry_after_s,
        }) => {
            acs.sessions.end(&live.key);
            Metrics::inc(&acs.metrics.sessions_held_elsewhere);
            info!(device = %device_id, remote = %conn.remote, holder = %node, "Inform while another ACS node holds the device's session: asked to retry");
            return unavailable(
                retry_after_s,
                "this device already has a CWMP session in progress (on another ACS node)",
            );
        }
        Err(e) => {
            acs.sessions.end(&live.key);
            return internal_error("claiming the device's session failed", e);
        }
    }

    // The Inform's own alarm rules (a silence ended, a boot loop), noted
    // on the record it writes anyway.
    let alarm_changes = crate::alarms::at_inform(&outcome.device, &acs.config.alarm_rules, now_ms);
    crate::app::telemetry::note(&mut outcome.device, &alarm_changes);
    let written = apply::apply_inform(store, &outcome).and_then(|()| {
        apply::apply_effects(
            store,
            &acs.catalog,
            &device_id,
            start_effects,
            now_ms,
            acs.provisioning.retry_ms(),
        )
    });
    let mut applied = match written {
        Ok(a) => a,
        Err(e) => {
            end_session(acs, &live);
            return internal_error("storing the Inform failed", e);
        }
    };
    let booted = inform.events.iter().any(|e| e.event_code == "1 BOOT");
    match crate::app::telemetry::record_inform(
        acs,
        &device_id,
        booted,
        previous_inform_ms,
        alarm_changes,
        now_ms,
    ) {
        Ok(events) => applied.events.extend(events),
        Err(e) => warn!(device = %device_id, error = %e, "storing alarms failed"),
    }
    if let Err(e) = store.sync().await {
        end_session(acs, &live);
        return internal_error("making the Inform durable failed", e);
    }
    let m = &acs.metrics;
    Metrics::inc(&m.informs);
    Metrics::inc(&m.sessions_started);
    count_faults(m, &applied.events);
    let mut events = inform_events(
        previous_inform_ms,
        &outcome.device,
        outcome.bootstrap,
        acs.online_window_ms(),
        now_ms,
    );
    events.extend(applied.events);
    acs.publish(events, now_ms);
    conn.set_session(Some(live.key.clone()));
    live.touch(now_ms);
    live.add_handling(started.elapsed());
    let events: Vec<&str> = inform
        .events
        .iter()
        .map(|e| e.event_code.as_str())
        .collect();
    info!(
        device = %device_id,
        remote = %conn.remote,
        cwmp = %env.version,
        events = ?events,
        "session started"
    );
    let mut r = xml(&session::inform_response(&env));
    if let Ok(v) =
        HeaderValue::from_str(&format!("{SESSION_COOKIE}={}; Path=/; HttpOnly", live.key))
    {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn continue_session(
    acs: &Arc<Acs>,
    conn: &Arc<ConnState>,
    live: Option<Arc<LiveSession>>,
    input: Input,
    now_ms: u64,
    started: Instant,
    host: Option<&str>,
) -> HttpResponse {
    let Some(live) = live else {
        return match input {
            // A CPE that lost its session (expired, or a new connection
            // without cookie) and has nothing to say: end cleanly.
            Input::Empty => {
                debug!(remote = %conn.remote, "empty POST without a session");
                no_content()
            }
            Input::Envelope(env) => {
                warn!(remote = %conn.remote, method = env.body.name(), "CWMP message without a session");
                text(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "no open CWMP session: a session starts with an Inform (got {})",
                        env.body.name()
                    ),
                )
            }
        };
    };
    let mut session = live.state.lock().await;
    live.touch(now_ms);
    // The lease is renewed as the session goes on (a long discovery or
    // provisioning outlives one lease).
    if acs.cluster.shared() && live.claim_due(now_ms, SESSION_LEASE_RENEW) {
        match acs
            .cluster
            .claim_device(&live.device_id, &live.key, SESSION_LEASE)
        {
            Ok(Claim::Granted) => live.set_claimed(now_ms),
            Ok(Claim::Held { node, .. }) => {
                // Its lease lapsed and another node's session took the
                // device: this one is over.
                warn!(device = %live.device_id, holder = %node, "session lost to another ACS node");
                acs.sessions.end(&live.key);
                conn.set_session(None);
                return no_content();
            }
            Err(e) => {
                warn!(device = %live.device_id, error = %e, "renewing the session lease failed")
            }
        }
    }
    let mut step = session.handle(input, now_ms);
    let store = acs.store.as_ref();
    // Provisioning may need ERPNext before the session can answer; the
    // wait is bounded by the session budget.
    while let Reply::NeedDesired(req) = &step.reply {
        let req = req.clone();
        let waited = Instant::now();
        let answer = match store.device(&live.device_id) {
            Ok(Some(device)) => acs.provisioning.answer(&req, &device).await,
            Ok(None) => DesiredOutcome::Failed("the device record is missing".into()),
            Err(e) => DesiredOutcome::Failed(format!("reading the device record failed: {e}")),
        };
        acs.metrics.erpnext_wait.observe(waited.elapsed());
        live.add_erpnext_wait(waited.elapsed());
        live.touch(now_ms);
        let mut next = session.supply_desired(answer, now_ms);
        let mut effects = std::mem::take(&mut step.effects);
        effects.append(&mut next.effects);
        next.effects = effects;
        step = next;
    }
    let ends = step.ends_session();
    let collected = step
        .effects
        .iter()
        .any(|e| matches!(e, session::Effect::HostsCollected { ok: true, .. }));
    let provisioned = step
        .effects
        .iter()
        .any(|e| matches!(e, session::Effect::Provisioning(_)));
    let m = &acs.metrics;
    // Published once the readings are recorded too: whoever waits for a
    // task (a topology refresh) finds what the session built from them.
    let mut events = match apply::apply_effects(
        store,
        &acs.catalog,
        &live.device_id,
        step.effects,
        now_ms,
        acs.provisioning.retry_ms(),
    ) {
        Ok(applied) => {
            if applied.wrote {
                if let Err(e) = store.sync().await {
                    return internal_error("making session results durable failed", e);
                }
            }
            // Devices brought to their ERPNext configuration (a check run
            // that found nothing to change is not one).
            let provisioned = applied
                .events
                .iter()
                .filter(|e| e.kind == EventKind::DeviceProvisioned)
                .count();
            m.provisioned
                .fetch_add(provisioned as u64, Ordering::Relaxed);
            count_faults(m, &applied.events);
            applied.events
        }
        Err(e) => return internal_error("storing session results failed", e),
    };
    if collected || provisioned {
        // Fresh readings or a provisioning outcome: history and alarm rules.
        let outcome = crate::app::telemetry::after_exchange(
            acs,
            &live.device_id,
            collected,
            provisioned,
            now_ms,
        );
        match outcome {
            Ok(alarms) if !alarms.is_empty() => {
                if let Err(e) = store.sync().await {
                    acs.publish(events, now_ms);
                    return internal_error("making alarms durable failed", e);
                }
                events.extend(alarms);
            }
            Ok(_) => {}
            Err(e) => warn!(device = %live.device_id, error = %e, "recording readings failed"),
        }
    }
    acs.publish(events, now_ms);
    live.touch(now_ms);
    live.add_handling(started.elapsed());
    match step.reply {
        Reply::Envelope(mut env) => {
            if let Body::Download(d) = &mut env.body {
                absolute_link(acs, d, host);
            }
            debug!(device = %live.device_id, rpc = env.body.name(), "sent");
            live.set_awaits_names(matches!(env.body, Body::GetParameterNames(_)));
            if !env.body.is_response() {
                Metrics::inc(&m.rpcs_sent);
            }
            xml(&env)
        }
        Reply::NoContent => {
            if ends {
                Metrics::inc(&m.sessions_ended);
                m.session_busy.observe(live.busy());
                end_session(acs, &live);
                conn.set_session(None);
                info!(device = %live.device_id, "session ended");
            }
            no_content()
        }
        Reply::NeedDesired(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error: provisioning",
        ),
    }
}

/// Ends a session here and frees its device for every node.
fn end_session(acs: &Acs, live: &LiveSession) {
    acs.sessions.end(&live.key);
    acs.cluster.release_device(&live.device_id, &live.key);
}

/// `device.online` (first Inform, or back after the online window) and
/// `device.bootstrap` for an accepted Inform.
fn inform_events(
    previous_inform_ms: Option<u64>,
    device: &crate::store::DeviceRecord,
    bootstrap: bool,
    online_window_ms: u64,
    now_ms: u64,
) -> Vec<NewEvent> {
    let mut out = Vec::new();
    let back = previous_inform_ms.is_none_or(|t| now_ms.saturating_sub(t) > online_window_ms);
    let data = || {
        json!({
            "serial_number": device.identity.serial_number,
            "product_class": device.identity.product_class,
            "remote_addr": device.remote_addr,
            "first_contact": previous_inform_ms.is_none(),
        })
    };
    if back {
        out.push(NewEvent::new(EventKind::DeviceOnline, &device.id, data()));
    }
    if bootstrap {
        out.push(NewEvent::new(
            EventKind::DeviceBootstrap,
            &device.id,
            data(),
        ));
    }
    out
}

fn count_faults(m: &Metrics, events: &[NewEvent]) {
    for e in events.iter().filter(|e| e.kind == EventKind::DeviceFault) {
        let counter = match e.data["source"].as_str() {
            Some("cpe") => &m.faults_cpe,
            Some("provisioning") => &m.faults_provisioning,
            _ => &m.faults_acs,
        };
        Metrics::inc(counter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_parsing_tolerates_attributes_and_several_headers() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("other=1"));
        h.append(
            header::COOKIE,
            HeaderValue::from_static("session=abc123; Path=/; HttpOnly"),
        );
        assert_eq!(session_cookie(&h), Some("abc123"));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("session=\"q\""));
        assert_eq!(session_cookie(&h), Some("q"));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("sessionx=1; session="),
        );
        assert_eq!(session_cookie(&h), None);
    }
}
