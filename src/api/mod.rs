//! The Ops JSON API: devices, topology, provisioning, tasks, faults, live
//! events, metrics.
//!
//! Every `/api/` route needs `Authorization: Bearer <token>`; `/healthz`
//! and `/metrics` do not. Errors are `{"error": {"code": "...", "message":
//! "..."}}` with the matching status. Every route is declared once in
//! [`ROUTES`]: the router dispatches from it and the OpenAPI document
//! ([`openapi`]) is generated from it, so the two cannot disagree.

pub mod access;
mod alarms;
mod campaigns;
mod console;
mod credentials;
mod devices;
mod events;
mod faults;
mod files;
mod hosts;
mod import;
mod issued;
mod mask;
mod metrics;
pub mod openapi;
mod provision;
mod routes;
pub mod tasks;
mod tokens;
mod users;

pub use access::Access;
pub use routes::{Op, ROUTES, Route};
pub use tokens::{ApiTokens, TOKEN_FILE, load_or_create_tokens};

use std::convert::Infallible;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Serialize;

use crate::app::Acs;
use crate::metrics::Metrics;
use crate::store::Role;

/// Body of every API response (buffered JSON, or the event stream).
pub type ApiBody = BoxBody<Bytes, Infallible>;
pub type HttpResponse = Response<ApiBody>;

/// Largest API request body.
const MAX_API_BODY: usize = 256 << 10;

/// An API error: status, stable code, human message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "API request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the ACS log",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    fn into_response(self) -> HttpResponse {
        #[derive(Serialize)]
        struct Inner<'a> {
            code: &'a str,
            message: &'a str,
        }
        #[derive(Serialize)]
        struct Outer<'a> {
            error: Inner<'a>,
        }
        let mut r = json_response(
            self.status,
            &Outer {
                error: Inner {
                    code: self.code,
                    message: &self.message,
                },
            },
        );
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"gigafibre-acs\""),
            );
        }
        r
    }
}

pub type ApiResult = Result<HttpResponse, ApiError>;

pub fn full(bytes: impl Into<Bytes>) -> ApiBody {
    Full::new(bytes.into()).boxed()
}

pub fn json_response<T: Serialize>(status: StatusCode, value: &T) -> HttpResponse {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

pub fn no_content() -> HttpResponse {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// Handles one API request from `remote`.
pub async fn handle(
    acs: Arc<Acs>,
    access: Arc<Access>,
    remote: std::net::IpAddr,
    req: Request<Incoming>,
) -> HttpResponse {
    Metrics::inc(&acs.metrics.api_requests);
    let path = req.uri().path().to_owned();
    if req.method() == http::Method::GET {
        if let Some(page) = console::asset(&path) {
            return page;
        }
    }
    let matched = routes::find(req.method(), &path);
    let public = matches!(&matched, routes::Match::Found { route, .. } if route.public);
    let principal = match access.principal(&acs, req.headers()) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    if !public && principal.is_none() {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid bearer token (Authorization: Bearer <token>), or no console session (log in)",
        )
        .into_response();
    }
    let (route, params) = match matched {
        routes::Match::Found { route, params } => (route, params),
        routes::Match::WrongMethod { allowed } => {
            let mut r = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{} is not allowed on {path}", req.method()),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                r.headers_mut().insert(header::ALLOW, v);
            }
            return r;
        }
        routes::Match::NotFound => {
            return ApiError::not_found(format!("no route {path}")).into_response();
        }
    };
    if let (false, Some(p)) = (route.public, &principal) {
        if let Err(e) = access::authorize(p, route.role, req.method(), req.headers()) {
            return e.into_response();
        }
    }
    // Every write is audited (logging in audits itself, with the name
    // tried); the device is looked up before the write changes it.
    let audited = req.method() != http::Method::GET && !route.public;
    let device = match audited {
        true => device_of(&acs, route.op, &params),
        false => None,
    };
    let result = match Query::parse(req.uri().query()) {
        Ok(query) => {
            let caller = Caller {
                access: &access,
                principal: principal.as_ref(),
                remote,
            };
            dispatch(&acs, &caller, route.op, params, query, req).await
        }
        Err(e) => Err(e),
    };
    let response = match result {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    if let (true, Some(p)) = (audited, &principal) {
        let now = crate::app::now_ms(std::time::SystemTime::now());
        access::audit(
            &acs,
            &p.actor,
            p.role,
            route.op_id,
            device,
            response.status().as_u16(),
            now,
        );
    }
    response
}

/// The device a write is about, for the audit log.
fn device_of(acs: &Acs, op: Op, params: &PathParams) -> Option<String> {
    let id = params.first();
    match op {
        Op::Reprovision | Op::ConnectionRequest | Op::CreateTask => Some(id.to_owned()),
        Op::CancelTask => {
            let task = id
                .parse()
                .ok()
                .and_then(|t| acs.store.task(t).ok().flatten());
            task.map(|t| t.device_id)
        }
        Op::RetryFault => {
            let fault = id
                .parse()
                .ok()
                .and_then(|f| acs.store.fault(f).ok().flatten());
            fault.map(|f| f.device_id)
        }
        _ => None,
    }
}

/// Who sent a request, for the routes that care.
struct Caller<'a> {
    access: &'a Access,
    principal: Option<&'a access::Principal>,
    remote: std::net::IpAddr,
}

impl Caller<'_> {
    fn role(&self) -> Role {
        self.principal.map_or(Role::Technician, |p| p.role)
    }

    /// Who is calling, for what it creates (a user, `token:…`).
    fn actor(&self) -> &str {
        self.principal.map_or("", |p| p.actor.as_str())
    }
}

/// Path parameters of a matched route, percent-decoded, in pattern order.
pub struct PathParams(Vec<String>);

impl PathParams {
    fn first(&self) -> &str {
        self.0.first().map(String::as_str).unwrap_or("")
    }
}

async fn dispatch(
    acs: &Arc<Acs>,
    caller: &Caller<'_>,
    op: Op,
    params: PathParams,
    q: Query,
    req: Request<Incoming>,
) -> ApiResult {
    let id = params.first();
    match op {
        Op::Healthz => Ok(json_response(
            StatusCode::OK,
            &serde_json::json!({"status": "ok"}),
        )),
        Op::Metrics => Ok(metrics::render(acs)),
        Op::OpenApi => Ok(json_response(StatusCode::OK, &openapi::document())),
        Op::ListDevices => devices::list(acs, &q),
        Op::GetDevice => devices::get(acs, id),
        Op::Parameters => devices::parameters(acs, id, &q),
        Op::DataModel => devices::data_model(acs, id, &q),
        Op::Hosts => hosts::get(acs, id, &q).await,
        Op::ProvisionPreview => provision::preview(acs, id).await,
        Op::Reprovision => provision::reprovision(acs, id, &q).await,
        Op::ConnectionRequest => provision::connection_request(acs, id).await,
        Op::ListDeviceTasks => tasks::list(acs, id),
        Op::CreateTask => {
            let body = read_json_body(req).await?;
            tasks::create(acs, id, body, &q, caller.role()).await
        }
        Op::GetTask => tasks::get(acs, id),
        Op::CancelTask => tasks::cancel(acs, id).await,
        Op::ListFaults => faults::list(acs, &q),
        Op::RetryFault => faults::retry(acs, id).await,
        Op::Events => events::stream(acs, &q),
        Op::PutCredential => {
            let body = read_json_body(req).await?;
            credentials::put(acs, id, body).await
        }
        Op::DeleteCredential => credentials::delete(acs, id).await,
        Op::ImportGenieacsDevices => import::genieacs_devices(acs, req, &q).await,
        Op::Login => {
            let body = read_json_body(req).await?;
            access::login(acs, caller.access, caller.remote, body)
        }
        Op::Logout => match caller.principal {
            Some(p) => access::logout(acs, p),
            None => Ok(no_content()),
        },
        Op::Me => match caller.principal {
            Some(p) => access::me(p),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "not logged in",
            )),
        },
        Op::ListUsers => users::list(acs),
        Op::CreateUser => {
            let body = read_json_body(req).await?;
            users::create(acs, body)
        }
        Op::DisableUser => users::disable(acs, id),
        Op::ListTokens => issued::list(acs),
        Op::IssueToken => {
            let body = read_json_body(req).await?;
            issued::issue(acs, caller.actor(), body)
        }
        Op::RevokeToken => issued::revoke(acs, id),
        Op::CreateFile => files::create(acs, caller.actor(), req, &q).await,
        Op::ListFiles => files::list(acs),
        Op::GetFile => files::get(acs, id),
        Op::DeleteFile => files::delete(acs, id).await,
        Op::CreateCampaign => {
            let body = read_json_body(req).await?;
            campaigns::create(acs, caller.actor(), body).await
        }
        Op::ListCampaigns => campaigns::list(acs),
        Op::GetCampaign => campaigns::get(acs, id),
        Op::PauseCampaign => {
            campaigns::command(acs, id, crate::app::campaigns::Command::Pause).await
        }
        Op::ResumeCampaign => {
            let body = read_json_body_or_empty(req).await?;
            let file = match body.get("file") {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(f)) => Some(f.clone()),
                Some(_) => {
                    return Err(ApiError::bad_request(
                        "file: the id of a file of /api/v1/files",
                    ));
                }
            };
            campaigns::command(acs, id, crate::app::campaigns::Command::Resume { file }).await
        }
        Op::AbortCampaign => {
            campaigns::command(acs, id, crate::app::campaigns::Command::Abort).await
        }
        Op::Audit => users::audit(acs, &q),
        Op::ListAlarms => alarms::list(acs, &q),
        Op::History => alarms::history(acs, id, &q),
        Op::Fleet => alarms::fleet(acs),
    }
}

async fn read_json_body(req: Request<Incoming>) -> Result<serde_json::Value, ApiError> {
    parse_json(&read_body(req).await?)
}

/// The JSON body, or `{}` when there is none.
async fn read_json_body_or_empty(req: Request<Incoming>) -> Result<serde_json::Value, ApiError> {
    let body = read_body(req).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::json!({}));
    }
    parse_json(&body)
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    Ok(Limited::new(req.into_body(), MAX_API_BODY)
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the request body failed: {e}")))?
        .to_bytes())
}

fn parse_json(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))
}

/// A JSON decoding error without the offending value: serde's messages quote
/// it (`invalid type: string "hunter2", expected ...`), and request bodies
/// carry passphrases and passwords.
pub fn json_error_without_values(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    for marker in ["invalid type: ", "invalid value: "] {
        if let Some(start) = msg.find(marker) {
            if let Some(end) = msg[start..].find(", expected") {
                return format!(
                    "{}{}(value not shown){}",
                    &msg[..start],
                    marker,
                    &msg[start + end..]
                );
            }
        }
    }
    msg
}

/// Query string parameters.
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(q: Option<&str>) -> Result<Query, ApiError> {
        let mut out = Vec::new();
        for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode(&k.replace('+', " ")).ok_or_else(|| {
                ApiError::bad_request("query string has invalid percent-encoding")
            })?;
            let v = percent_decode(&v.replace('+', " ")).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "query parameter `{k}` has invalid percent-encoding"
                ))
            })?;
            out.push((k, v));
        }
        Ok(Query(out))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A numeric parameter within `1..=max`, or `default` when absent.
    pub fn limit(&self, key: &'static str, default: usize, max: usize) -> Result<usize, ApiError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::bad_request(format!(
                    "`{key}` must be a whole number from 1 to {max}, got `{v}`"
                ))),
            },
        }
    }

    /// Seconds to wait, `0..=max` (absent: 0).
    pub fn wait_s(&self, max: u64) -> Result<u64, ApiError> {
        match self.get("wait") {
            None => Ok(0),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n <= max => Ok(n),
                _ => Err(ApiError::bad_request(format!(
                    "`wait` must be a whole number of seconds from 0 to {max}, got `{v}`"
                ))),
            },
        }
    }

    /// A boolean flag (`true`/`false`/`1`/`0`; a bare `?flag` is true).
    pub fn flag(&self, key: &'static str, default: bool) -> Result<bool, ApiError> {
        match self.get(key) {
            None => Ok(default),
            Some("" | "true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(v) => Err(ApiError::bad_request(format!(
                "`{key}` must be true or false, got `{v}`"
            ))),
        }
    }
}

/// Opaque pagination cursors.
pub fn encode_cursor(last_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(last_id)
}

pub fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::bad_request("`cursor` is not a cursor returned by this API"))
}

pub use crate::percent::decode as percent_decode;

/// RFC 3339 UTC of Unix milliseconds.
pub fn rfc3339(ms: u64) -> String {
    crate::cwmp::format_datetime(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(
            percent_decode("00259E-HG8245H-4857%252D5443").as_deref(),
            Some("00259E-HG8245H-4857%2D5443")
        );
        assert_eq!(percent_decode("a%20b").as_deref(), Some("a b"));
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("bad%zz"), None);
        assert_eq!(percent_decode("%FF"), None);
    }

    #[test]
    fn json_errors_do_not_quote_values() {
        let e = serde_json::from_str::<u32>("\"hunter2\"").unwrap_err();
        let m = json_error_without_values(&e);
        assert!(!m.contains("hunter2") && m.contains("expected u32"), "{m}");
    }

    #[test]
    fn cursors_round_trip() {
        assert_eq!(decode_cursor(&encode_cursor("A-B%2DC")).unwrap(), "A-B%2DC");
        assert!(decode_cursor("!!").is_err());
    }

    #[test]
    fn query_parameters() {
        let q = Query::parse(Some("limit=5&q=a+b&refresh&wait=30")).unwrap();
        assert_eq!(q.limit("limit", 50, 100).unwrap(), 5);
        assert_eq!(q.get("q"), Some("a b"));
        assert!(q.flag("refresh", false).unwrap());
        assert!(!q.flag("absent", false).unwrap());
        assert_eq!(q.wait_s(60).unwrap(), 30);
        assert!(q.wait_s(10).is_err());
        for bad in ["limit=0", "limit=x"] {
            assert!(
                Query::parse(Some(bad))
                    .unwrap()
                    .limit("limit", 50, 100)
                    .is_err()
            );
        }
        assert!(
            Query::parse(Some("refresh=maybe"))
                .unwrap()
                .flag("refresh", false)
                .is_err()
        );
    }
}
