//! HTTP: routing (`frappe/api/__init__.py`, `frappe/api/v1.py`),
//! authentication (`frappe/auth.py` `validate_auth_via_api_keys`), request
//! data (`frappe/app.py` `make_form_dict`, `v1.get_request_form_data`),
//! the whitelisted methods the ACS uses, fault injection and the admin API.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use thiserror::Error;
use tracing::{debug, warn};

use crate::doctypes::{self, DocType};
use crate::error::{FrappeError, server_messages};
use crate::faults::{Decision, FaultUpdate, Faults, OutageMode, Stats};
use crate::query::{self, ListParams, truthy};
use crate::store::{Origin, Persister, Saved, Store, as_dict};
use crate::util::{J, parse_query, percent_decode};

/// Largest request body accepted.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// An API key pair and the user it logs in as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub key: String,
    pub secret: String,
    pub user: String,
}

/// Everything the handlers share.
pub struct App {
    pub keys: Vec<ApiKey>,
    pub store: Mutex<Store>,
    /// The state at start-up, for `POST /_admin/reset {"data": true}`.
    pub initial: Store,
    pub persister: Option<Persister>,
    pub faults: Mutex<Faults>,
    pub stats: Mutex<Stats>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The service closes the connection without answering (outage "close").
#[derive(Debug, Error)]
#[error("connection closed by fault injection")]
pub struct Dropped;

/// A response before it becomes a hyper `Response`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";

impl Reply {
    pub fn json(status: u16, body: String) -> Reply {
        Reply {
            status,
            content_type: JSON,
            headers: Vec::new(),
            body,
        }
    }

    fn value(status: u16, v: &Value) -> Reply {
        Reply::json(status, v.to_string())
    }

    pub fn error(e: &FrappeError) -> Reply {
        Reply {
            status: e.status,
            content_type: JSON,
            headers: e.headers.clone(),
            body: e.body(),
        }
    }

    fn html(status: u16, body: &str) -> Reply {
        Reply {
            status,
            content_type: HTML,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    /// Frappe's maintenance page (`handle_session_stopped`).
    fn maintenance() -> Reply {
        Reply::html(
            503,
            "<!DOCTYPE html>\n<html><head><title>Updating</title></head><body>\
             <h1>Updating</h1><p>The system is being updated. Please refresh again after a few moments.</p>\
             </body></html>\n",
        )
    }

    /// werkzeug's `MethodNotAllowed`.
    fn method_not_allowed(allow: &str) -> Reply {
        let mut r = Reply::html(
            405,
            "<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n\
             <h1>Method Not Allowed</h1>\n<p>The method is not allowed for the requested URL.</p>\n",
        );
        r.headers
            .push((ALLOW.as_str().to_string(), allow.to_string()));
        r
    }

    fn website_not_found() -> Reply {
        Reply::html(
            404,
            "<!DOCTYPE html>\n<html><head><title>Not Found</title></head><body>\
             <h1>Not Found</h1><p>The resource you are looking for is not available</p></body></html>\n",
        )
    }

    pub fn into_response(self) -> Response<Full<Bytes>> {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = Response::new(Full::new(Bytes::from(self.body)));
        *resp.status_mut() = status;
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        for (k, v) in self.headers {
            if let (Ok(name), Ok(value)) = (
                hyper::header::HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(&v),
            ) {
                resp.headers_mut().insert(name, value);
            }
        }
        resp
    }
}

/// The parts of a request the Frappe emulation needs (owned, so it can run
/// on a blocking thread).
#[derive(Debug, Clone)]
pub struct SimRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub body: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Method(String),
    List(String),
    Doc(String, String),
}

/// Routes a percent-decoded path (werkzeug matches the decoded path, so
/// `%2F` in a document name is a slash and `<path:name>` takes it).
fn parse_route(decoded_path: &str) -> Option<Route> {
    let rest = decoded_path
        .strip_prefix("/api/v1/")
        .or_else(|| decoded_path.strip_prefix("/api/"))?;
    if let Some(m) = rest.strip_prefix("method/") {
        let m = m.split('/').next().unwrap_or("");
        return (!m.is_empty()).then(|| Route::Method(m.to_string()));
    }
    let rest = rest.strip_prefix("resource/")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    match rest.split_once('/') {
        None if !rest.is_empty() => Some(Route::List(rest.to_string())),
        Some((dt, name)) if !dt.is_empty() && !name.is_empty() => {
            Some(Route::Doc(dt.to_string(), name.to_string()))
        }
        _ => None,
    }
}

/// The counter key of a request: method and route template.
pub fn route_key(method: &Method, raw_path: &str) -> String {
    let decoded = percent_decode(raw_path, false);
    match parse_route(&decoded) {
        Some(Route::List(dt)) => format!("{method} /api/resource/{dt}"),
        Some(Route::Doc(dt, _)) => format!("{method} /api/resource/{dt}/{{name}}"),
        Some(Route::Method(m)) => format!("{method} /api/method/{m}"),
        None => format!("{method} {decoded}"),
    }
}

fn eq_constant_time(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Python's `base64.b64decode` (non-validating: characters outside the
/// alphabet are dropped; bad padding is an error).
fn b64decode_lenient(s: &str) -> Option<Vec<u8>> {
    let cleaned: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .ok()
}

/// Frappe's `validate_auth`: `Authorization: token key:secret` or
/// `Basic base64(key:secret)`. Returns the user, or `None` for Guest (no
/// header, or a header that is not two space-separated parts).
pub fn authenticate(keys: &[ApiKey], header: Option<&str>) -> Result<Option<String>, FrappeError> {
    let Some(h) = header else {
        return Ok(None);
    };
    let parts: Vec<&str> = h.split(' ').collect();
    let [kind, token] = parts.as_slice() else {
        return Ok(None);
    };
    let pair: Option<(String, String)> = match kind.to_lowercase().as_str() {
        "basic" => {
            let raw = b64decode_lenient(token).ok_or_else(FrappeError::bad_base64_token)?;
            String::from_utf8(raw).ok().and_then(|t| {
                let p: Vec<&str> = t.split(':').collect();
                match p.as_slice() {
                    [k, s] => Some((k.to_string(), s.to_string())),
                    _ => None,
                }
            })
        }
        "token" => {
            let p: Vec<&str> = token.split(':').collect();
            match p.as_slice() {
                [k, s] => Some((k.to_string(), s.to_string())),
                _ => None,
            }
        }
        _ => None,
    };
    // Two parts but no valid credentials: the session stays Guest and
    // Frappe raises AuthenticationError.
    let Some((key, secret)) = pair else {
        return Err(FrappeError::auth_failed());
    };
    match keys.iter().find(|k| k.key == key) {
        Some(k) if eq_constant_time(&k.secret, &secret) => Ok(Some(k.user.clone())),
        _ => Err(FrappeError::auth_failed()),
    }
}

fn has_json_content_type(req: &SimRequest) -> bool {
    req.content_type
        .as_deref()
        .is_some_and(|c| c.to_ascii_lowercase().contains("application/json"))
}

/// Frappe's `make_form_dict`: a JSON body replaces the query arguments;
/// otherwise query arguments, overridden by a url-encoded form body.
fn form_dict(req: &SimRequest) -> Result<Map<String, Value>, FrappeError> {
    let body = String::from_utf8_lossy(&req.body);
    if has_json_content_type(req) && !body.trim().is_empty() {
        return match serde_json::from_str::<Value>(&body) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(Value::Array(a)) => {
                let mut m = Map::new();
                m.insert("data".into(), Value::Array(a));
                Ok(m)
            }
            Ok(_) => Err(FrappeError::validation("Invalid request arguments")),
            Err(e) => Err(FrappeError::validation(format!("Invalid JSON body: {e}"))),
        };
    }
    let mut m = Map::new();
    if let Some(q) = &req.query {
        for (k, v) in parse_query(q) {
            m.entry(k).or_insert(Value::String(v));
        }
    }
    let is_form = req.content_type.as_deref().is_some_and(|c| {
        c.to_ascii_lowercase()
            .contains("application/x-www-form-urlencoded")
    });
    if is_form {
        let mut seen = std::collections::BTreeSet::new();
        for (k, v) in parse_query(&body) {
            if seen.insert(k.clone()) {
                m.insert(k, Value::String(v));
            }
        }
    }
    Ok(m)
}

/// `v1.get_request_form_data`: `data` from the form dict (a JSON string or
/// an object), else the raw body as JSON, else the form dict itself. So
/// `{"data": {...}}`, the fields at the top level, and form fields all work.
fn request_data(
    fd: &Map<String, Value>,
    req: &SimRequest,
) -> Result<Map<String, Value>, FrappeError> {
    let parsed = match fd.get("data") {
        None | Some(Value::Null) => {
            let raw = String::from_utf8_lossy(&req.body);
            match serde_json::from_str::<Value>(&raw) {
                Ok(v) => v,
                Err(_) => return Ok(fd.clone()),
            }
        }
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v) => v,
            Err(_) => return Ok(fd.clone()),
        },
        Some(other) => other.clone(),
    };
    match parsed {
        Value::Object(m) => Ok(m),
        other => Err(FrappeError::validation(format!(
            "Request data must be a JSON object with the document's fields, got {}",
            match other {
                Value::Array(_) => "a list",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            }
        ))),
    }
}

fn doctype(name: &str) -> Result<&'static DocType, FrappeError> {
    doctypes::get(name).ok_or_else(|| FrappeError::doctype_not_found(name))
}

fn data_reply(status: u16, data: J, messages: &[crate::error::Msg]) -> Reply {
    let mut kv = vec![("data", data)];
    if !messages.is_empty() {
        kv.push(("_server_messages", J::str(server_messages(messages))));
    }
    Reply::json(status, J::obj(kv).encode())
}

fn message_reply(v: Value) -> Reply {
    Reply::json(200, J::obj(vec![("message", J::V(v))]).encode())
}

/// Applies a change to a copy of the store, persists it (fsync) and only
/// then makes it visible, so an acknowledged write is never lost and a
/// failed write changes nothing.
fn mutate<T>(
    app: &App,
    f: impl FnOnce(&mut Store) -> Result<T, FrappeError>,
) -> Result<T, FrappeError> {
    let mut guard = lock(&app.store);
    let mut next = guard.clone();
    let out = f(&mut next)?;
    if let Some(p) = &app.persister {
        p.save(&next)
            .map_err(|e| FrappeError::internal(&format!("cannot persist state: {e}")))?;
    }
    *guard = next;
    Ok(out)
}

fn warn_ignored(dt: &DocType, saved: &Saved) {
    if !saved.ignored.is_empty() {
        warn!(
            doctype = dt.name,
            fields = ?saved.ignored,
            "request keys that are not fields were ignored (as Frappe does)"
        );
    }
}

fn list_params(fd: &Map<String, Value>, rest_alias: bool) -> ListParams {
    let get = |k: &str| fd.get(k).cloned();
    // v1 `document_list`: setdefault("limit_page_length", limit or limit_page_length or 20)
    let limit_page_length = if fd.contains_key("limit_page_length") {
        get("limit_page_length")
    } else if rest_alias && fd.get("limit").is_some_and(truthy) {
        get("limit")
    } else {
        None
    };
    ListParams {
        fields: get("fields"),
        filters: get("filters"),
        or_filters: get("or_filters"),
        order_by: get("order_by"),
        limit_start: get("limit_start"),
        limit_page_length,
        as_dict: get("as_dict"),
        group_by: get("group_by"),
    }
}

fn run_list(app: &App, dt: &'static DocType, params: &ListParams) -> Result<Vec<J>, FrappeError> {
    let q = query::build_query(dt, params)?;
    let store = lock(&app.store);
    let lookup = |t: &'static DocType, n: &str| store.find(t, n);
    Ok(query::execute(store.docs(dt), &q, &lookup))
}

fn required_arg(fd: &Map<String, Value>, method: &str, arg: &str) -> Result<String, FrappeError> {
    match fd.get(arg) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(v) if !v.is_null() && !v.is_object() && !v.is_array() => Ok(doctypes::cstr(v)),
        _ => Err(FrappeError::validation(format!(
            "{method}() missing 1 required positional argument: '{arg}'"
        ))),
    }
}

const METHODS: [&str; 5] = [
    "frappe.ping",
    "frappe.auth.get_logged_user",
    "frappe.client.get_password",
    "frappe.client.get_count",
    "frappe.client.get_list",
];

fn call_method(
    app: &App,
    req: &SimRequest,
    user: Option<&str>,
    cmd: &str,
) -> Result<Reply, FrappeError> {
    if !METHODS.contains(&cmd) {
        let detail = match cmd.rsplit_once('.') {
            Some((module, attr)) if module == "frappe.client" || module == "frappe" => {
                format!("module '{module}' has no attribute '{attr}'")
            }
            Some((module, _)) => format!("No module named '{module}'"),
            None => format!("No module named '{cmd}'"),
        };
        return Err(FrappeError::validation(format!(
            "Failed to get method for command {cmd} with {detail}"
        )));
    }
    if !matches!(
        req.method,
        Method::GET | Method::POST | Method::PUT | Method::DELETE
    ) {
        return Ok(Reply::method_not_allowed("GET, POST, PUT, DELETE"));
    }
    if cmd == "frappe.ping" {
        return Ok(message_reply(json!("pong")));
    }
    let Some(user) = user else {
        return Err(FrappeError::guest_method(cmd));
    };
    let fd = form_dict(req)?;
    let short = cmd.rsplit('.').next().unwrap_or(cmd);
    match cmd {
        "frappe.auth.get_logged_user" => Ok(message_reply(json!(user))),
        "frappe.client.get_password" => {
            let dt_name = required_arg(&fd, short, "doctype")?;
            let name = required_arg(&fd, short, "name")?;
            let field = required_arg(&fd, short, "fieldname")?;
            let dt = doctype(&dt_name)?;
            let v = lock(&app.store).get_password(dt, &name, &field)?;
            Ok(message_reply(v))
        }
        "frappe.client.get_count" => {
            let dt = doctype(&required_arg(&fd, short, "doctype")?)?;
            let filters = query::parse_filters(dt, "filters", fd.get("filters"))?;
            let n = query::count(lock(&app.store).docs(dt), &filters);
            Ok(message_reply(json!(n)))
        }
        _ => {
            // frappe.client.get_list
            let dt = doctype(&required_arg(&fd, short, "doctype")?)?;
            let rows = run_list(app, dt, &list_params(&fd, false))?;
            Ok(Reply::json(
                200,
                J::obj(vec![("message", J::A(rows))]).encode(),
            ))
        }
    }
}

/// The Frappe emulation proper (runs on a blocking thread).
pub fn frappe(app: &App, req: &SimRequest) -> Reply {
    match frappe_inner(app, req) {
        Ok(r) => r,
        Err(e) => Reply::error(&e),
    }
}

fn frappe_inner(app: &App, req: &SimRequest) -> Result<Reply, FrappeError> {
    if req.method == Method::OPTIONS {
        return Ok(Reply::json(200, String::new()));
    }
    let user = authenticate(&app.keys, req.authorization.as_deref())?;
    let decoded = percent_decode(&req.path, false);
    if decoded != "/api" && !decoded.starts_with("/api/") {
        return Ok(Reply::website_not_found());
    }
    let Some(route) = parse_route(&decoded) else {
        return Err(FrappeError::no_route());
    };
    match route {
        Route::Method(cmd) => call_method(app, req, user.as_deref(), &cmd),
        Route::List(dt_name) => {
            if !matches!(req.method, Method::GET | Method::POST) {
                return Ok(Reply::method_not_allowed("GET, POST"));
            }
            let Some(user) = user else {
                return Err(FrappeError::guest_no_permission(&dt_name));
            };
            let dt = doctype(&dt_name)?;
            let fd = form_dict(req)?;
            if req.method == Method::GET {
                let rows = run_list(app, dt, &list_params(&fd, true))?;
                return Ok(data_reply(200, J::A(rows), &[]));
            }
            let data = request_data(&fd, req)?;
            let saved = mutate(app, |s| s.insert(dt, data, &user, Origin::Api))?;
            warn_ignored(dt, &saved);
            Ok(data_reply(200, as_dict(dt, &saved.doc), &saved.messages))
        }
        Route::Doc(dt_name, name) => {
            if !matches!(
                req.method,
                Method::GET | Method::PUT | Method::DELETE | Method::POST
            ) {
                return Ok(Reply::method_not_allowed("GET, PUT, DELETE, POST"));
            }
            let Some(user) = user else {
                return Err(FrappeError::guest_no_permission(&dt_name));
            };
            let dt = doctype(&dt_name)?;
            match req.method {
                Method::GET => {
                    let store = lock(&app.store);
                    let doc = store
                        .find(dt, &name)
                        .ok_or_else(|| FrappeError::not_found(dt.name, &name))?;
                    Ok(data_reply(200, as_dict(dt, doc), &[]))
                }
                Method::PUT => {
                    let fd = form_dict(req)?;
                    let data = request_data(&fd, req)?;
                    let saved = mutate(app, |s| s.update(dt, &name, data, &user))?;
                    warn_ignored(dt, &saved);
                    Ok(data_reply(200, as_dict(dt, &saved.doc), &[]))
                }
                Method::DELETE => {
                    mutate(app, |s| s.delete(dt, &name))?;
                    // v1 `delete_doc`: HTTP 202 and `return "ok"` → {"data": "ok"}
                    Ok(data_reply(202, J::str("ok"), &[]))
                }
                _ => {
                    // POST on a document runs a whitelisted controller method.
                    lock(&app.store)
                        .find(dt, &name)
                        .ok_or_else(|| FrappeError::not_found(dt.name, &name))?;
                    Err(FrappeError::validation(
                        "Running document methods (run_method) is not supported by erpnext-sim",
                    ))
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Admin API
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetRequest {
    #[serde(default = "yes")]
    faults: bool,
    #[serde(default = "yes")]
    stats: bool,
    #[serde(default)]
    data: bool,
}

fn yes() -> bool {
    true
}

fn admin_error(status: u16, msg: &str) -> Reply {
    Reply::value(status, &json!({ "error": msg }))
}

fn parse_admin_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Reply> {
    let text = String::from_utf8_lossy(body);
    let text = if text.trim().is_empty() {
        "{}"
    } else {
        text.trim()
    };
    serde_json::from_str(text).map_err(|e| admin_error(400, &format!("invalid JSON body: {e}")))
}

pub fn admin(app: &App, peer: SocketAddr, method: &Method, path: &str, body: &[u8]) -> Reply {
    if !peer.ip().is_loopback() {
        return admin_error(403, "the admin API only answers loopback clients");
    }
    let path = path.strip_suffix('/').unwrap_or(path);
    let now = Instant::now();
    match (method.as_str(), path) {
        ("GET", "/_admin/faults") => Reply::value(200, &lock(&app.faults).to_json(now)),
        ("POST", "/_admin/faults") => {
            let update: FaultUpdate = match parse_admin_body(body) {
                Ok(u) => u,
                Err(r) => return r,
            };
            let mut faults = lock(&app.faults);
            match faults.apply(&update, now) {
                Ok(()) => Reply::value(200, &faults.to_json(now)),
                Err(e) => admin_error(400, &e),
            }
        }
        ("GET", "/_admin/stats") => Reply::value(200, &lock(&app.stats).to_json()),
        ("DELETE", "/_admin/stats") => {
            *lock(&app.stats) = Stats::default();
            Reply::value(200, &json!({"ok": true}))
        }
        ("POST", "/_admin/reset") => {
            let r: ResetRequest = match parse_admin_body(body) {
                Ok(r) => r,
                Err(reply) => return reply,
            };
            if r.faults {
                *lock(&app.faults) = Faults::none();
            }
            if r.stats {
                *lock(&app.stats) = Stats::default();
            }
            if r.data {
                let initial = app.initial.clone();
                if let Err(e) = mutate(app, |s| {
                    *s = initial;
                    Ok(())
                }) {
                    return admin_error(500, &e.summary());
                }
            }
            Reply::value(
                200,
                &json!({"ok": true, "faults": r.faults, "stats": r.stats, "data": r.data}),
            )
        }
        ("GET", "/_admin/health") => {
            let store = lock(&app.store);
            let counts: Map<String, Value> = doctypes::DOCTYPES
                .iter()
                .map(|d| (d.name.to_string(), json!(store.len(d))))
                .collect();
            Reply::value(200, &json!({"status": "ok", "documents": counts}))
        }
        _ => Reply::value(
            404,
            &json!({
                "error": format!("no admin endpoint {method} {path}"),
                "endpoints": [
                    "GET /_admin/faults", "POST /_admin/faults", "GET /_admin/stats",
                    "DELETE /_admin/stats", "POST /_admin/reset", "GET /_admin/health"
                ]
            }),
        ),
    }
}

// ---------------------------------------------------------------------------
// The hyper service
// ---------------------------------------------------------------------------

enum BodyError {
    TooLarge,
    Io,
}

async fn read_body(body: Incoming) -> Result<Bytes, BodyError> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(BodyError::TooLarge)
        }
        Err(_) => Err(BodyError::Io),
    }
}

/// One HTTP request: admin, or fault injection then the Frappe emulation.
pub async fn handle(
    app: Arc<App>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let method = parts.method.clone();

    if path == "/_admin" || path.starts_with("/_admin/") {
        let body = match read_body(body).await {
            Ok(b) => b,
            Err(BodyError::TooLarge) => {
                return Ok(admin_error(413, "body too large").into_response());
            }
            Err(BodyError::Io) => return Err(Dropped),
        };
        return Ok(admin(&app, peer, &method, &path, &body).into_response());
    }

    let route = route_key(&method, &path);
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            let r = Reply::html(413, "<h1>Request Entity Too Large</h1>\n");
            lock(&app.stats).record(
                method.as_str(),
                &path,
                &route,
                Some(413),
                started.elapsed(),
                None,
            );
            return Ok(r.into_response());
        }
        Err(BodyError::Io) => return Err(Dropped),
    };

    let latency = lock(&app.faults).latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let decision = lock(&app.faults).decide(Instant::now());
    let (reply, fault) = match decision {
        Decision::Outage(OutageMode::Close) => {
            lock(&app.stats).record(
                method.as_str(),
                &path,
                &route,
                None,
                started.elapsed(),
                Some("outage"),
            );
            debug!(%method, %path, "outage: closing the connection");
            return Err(Dropped);
        }
        Decision::Outage(OutageMode::Unavailable) => (Reply::maintenance(), Some("outage")),
        Decision::RateLimit { retry_after_s } => (
            Reply::error(&FrappeError::too_many_requests(retry_after_s)),
            Some("rate_limit"),
        ),
        Decision::Error => (
            Reply::error(&FrappeError::injected_internal()),
            Some("error"),
        ),
        Decision::Pass => {
            let header = |name: hyper::header::HeaderName| {
                parts
                    .headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let sim = SimRequest {
                method: method.clone(),
                path: path.clone(),
                query: parts.uri.query().map(str::to_string),
                authorization: header(AUTHORIZATION),
                content_type: header(CONTENT_TYPE),
                body,
            };
            let app2 = Arc::clone(&app);
            let reply = match tokio::task::spawn_blocking(move || frappe(&app2, &sim)).await {
                Ok(r) => r,
                Err(e) => Reply::error(&FrappeError::internal(&format!("handler failed: {e}"))),
            };
            (reply, None)
        }
    };
    lock(&app.stats).record(
        method.as_str(),
        &path,
        &route,
        Some(reply.status),
        started.elapsed(),
        fault,
    );
    debug!(%method, %path, status = reply.status, fault, "request");
    Ok(reply.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn keys() -> Vec<ApiKey> {
        vec![ApiKey {
            key: "k1".into(),
            secret: "s1".into(),
            user: "acs@gigafibre.ca".into(),
        }]
    }

    #[test]
    fn routing() {
        assert_eq!(
            parse_route("/api/resource/Service Equipment"),
            Some(Route::List("Service Equipment".into()))
        );
        assert_eq!(
            parse_route("/api/resource/Customer/"),
            Some(Route::List("Customer".into()))
        );
        assert_eq!(
            parse_route("/api/v1/resource/Customer/Jean Tremblay"),
            Some(Route::Doc("Customer".into(), "Jean Tremblay".into()))
        );
        assert_eq!(
            parse_route("/api/resource/Service Equipment/EQ/1/"),
            Some(Route::Doc("Service Equipment".into(), "EQ/1".into()))
        );
        assert_eq!(
            parse_route("/api/method/frappe.client.get_password/extra"),
            Some(Route::Method("frappe.client.get_password".into()))
        );
        assert_eq!(parse_route("/api/resource/"), None);
        assert_eq!(parse_route("/api/resource"), None);
        assert_eq!(parse_route("/api/method/"), None);
        assert_eq!(parse_route("/api/v2/document/Customer"), None);
        assert_eq!(parse_route("/app/customer"), None);
        assert_eq!(
            route_key(&Method::PUT, "/api/resource/Service%20Equipment/EQ-00001"),
            "PUT /api/resource/Service Equipment/{name}"
        );
        assert_eq!(
            route_key(&Method::GET, "/api/v1/resource/Customer"),
            "GET /api/resource/Customer"
        );
        assert_eq!(route_key(&Method::GET, "/favicon.ico"), "GET /favicon.ico");
        assert_eq!(
            route_key(&Method::GET, "/api/resource/Customer"),
            "GET /api/resource/Customer"
        );
    }

    #[test]
    fn token_and_basic_auth() {
        let k = keys();
        assert_eq!(authenticate(&k, None), Ok(None));
        assert_eq!(
            authenticate(&k, Some("token k1:s1")),
            Ok(Some("acs@gigafibre.ca".into()))
        );
        assert_eq!(
            authenticate(&k, Some("Token k1:s1")),
            Ok(Some("acs@gigafibre.ca".into()))
        );
        let basic = format!("Basic {}", STANDARD.encode("k1:s1"));
        assert_eq!(
            authenticate(&k, Some(&basic)),
            Ok(Some("acs@gigafibre.ca".into()))
        );
        let status =
            |h: &str| authenticate(&k, Some(h)).map_err(|e| (e.status, e.exc_type.clone()));
        assert_eq!(
            status("token k1:wrong"),
            Err((401, "AuthenticationError".into()))
        );
        assert_eq!(
            status("token nobody:s1"),
            Err((401, "AuthenticationError".into()))
        );
        assert_eq!(
            status("token k1s1"),
            Err((401, "AuthenticationError".into()))
        );
        assert_eq!(
            status("token k1:s1:x"),
            Err((401, "AuthenticationError".into()))
        );
        assert_eq!(
            status("Bearer abc"),
            Err((401, "AuthenticationError".into()))
        );
        assert_eq!(
            status("Basic a"),
            Err((401, "InvalidAuthorizationToken".into()))
        );
        let no_colon = format!("Basic {}", STANDARD.encode("k1s1"));
        assert_eq!(status(&no_colon), Err((401, "AuthenticationError".into())));
        // not exactly two space-separated parts: Guest
        assert_eq!(authenticate(&k, Some("token  k1:s1")), Ok(None));
        assert_eq!(authenticate(&k, Some("")), Ok(None));
        assert_eq!(authenticate(&k, Some("k1:s1")), Ok(None));
    }

    fn sim(method: Method, query: Option<&str>, ctype: Option<&str>, body: &str) -> SimRequest {
        SimRequest {
            method,
            path: "/api/resource/Customer".into(),
            query: query.map(str::to_string),
            authorization: None,
            content_type: ctype.map(str::to_string),
            body: Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn request_data_shapes() {
        let get = |r: &SimRequest| {
            let fd = form_dict(r).expect("form dict");
            request_data(&fd, r).expect("data")
        };
        let r = sim(
            Method::PUT,
            None,
            Some("application/json"),
            r#"{"data": {"status": "Actif"}}"#,
        );
        assert_eq!(get(&r)["status"], "Actif");
        let r = sim(
            Method::PUT,
            None,
            Some("application/json"),
            r#"{"status": "Actif"}"#,
        );
        assert_eq!(get(&r)["status"], "Actif");
        let r = sim(Method::PUT, None, None, r#"{"status": "Actif"}"#);
        assert_eq!(get(&r)["status"], "Actif");
        let r = sim(
            Method::PUT,
            None,
            Some("application/json"),
            r#"{"data": "{\"status\": \"Actif\"}"}"#,
        );
        assert_eq!(get(&r)["status"], "Actif");
        let r = sim(
            Method::POST,
            None,
            Some("application/x-www-form-urlencoded"),
            "data=%7B%22status%22%3A%22Actif%22%7D",
        );
        assert_eq!(get(&r)["status"], "Actif");
        let r = sim(
            Method::POST,
            Some("status=Suspendu"),
            Some("application/x-www-form-urlencoded"),
            "status=Actif&status=Other&model=X",
        );
        let d = get(&r);
        assert_eq!(d["status"], "Actif");
        assert_eq!(d["model"], "X");
        let r = sim(Method::POST, None, Some("application/json"), "[1,2]");
        let fd = form_dict(&r).expect("fd");
        assert!(request_data(&fd, &r).is_err());
        let r = sim(Method::POST, None, Some("application/json"), "{oops");
        assert_eq!(form_dict(&r).map_err(|e| e.status), Err(417));
        let r = sim(Method::GET, Some("a=1&a=2&b=x+y"), None, "");
        let fd = form_dict(&r).expect("fd");
        assert_eq!(fd["a"], "1");
        assert_eq!(fd["b"], "x y");
    }

    #[test]
    fn list_param_aliases() {
        let fd = |v: Value| match v {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let p = list_params(&fd(json!({"limit": "5"})), true);
        assert_eq!(p.limit_page_length, Some(json!("5")));
        let p = list_params(&fd(json!({"limit": "5"})), false);
        assert_eq!(p.limit_page_length, None);
        let p = list_params(&fd(json!({"limit": "5", "limit_page_length": "0"})), true);
        assert_eq!(p.limit_page_length, Some(json!("0")));
        let p = list_params(&fd(json!({"limit": ""})), true);
        assert_eq!(p.limit_page_length, None);
        // `start` is not an alias in Frappe's REST list
        let p = list_params(&fd(json!({"start": "5"})), true);
        assert_eq!(p.limit_start, None);
    }
}
