//! The Ops JSON API: devices, their parameters, tasks and faults.
//!
//! Every `/api/` route needs `Authorization: Bearer <token>`; `/healthz`
//! does not. Errors are `{"error": {"code": "...", "message": "..."}}`
//! with the matching status. Routes are listed once in [`route`], so adding
//! one is one match arm and one handler.

mod credentials;
mod devices;
mod mask;
mod tokens;

pub use tokens::{ApiTokens, load_or_create_tokens};

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Serialize;

use crate::server::Acs;

type HttpResponse = Response<Full<Bytes>>;

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

    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "API request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the ACS log",
        )
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

pub fn json_response<T: Serialize>(status: StatusCode, value: &T) -> HttpResponse {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Handles one API request.
pub async fn handle(acs: Arc<Acs>, tokens: Arc<ApiTokens>, req: Request<Incoming>) -> HttpResponse {
    let path = req.uri().path().to_owned();
    if path != "/healthz" && !tokens.authorizes(req.headers().get(header::AUTHORIZATION)) {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid bearer token (Authorization: Bearer <token>)",
        )
        .into_response();
    }
    match route(&acs, req, &path).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn route(acs: &Acs, req: Request<Incoming>, path: &str) -> ApiResult {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let query = Query::parse(req.uri().query())?;
    let method = req.method().clone();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["healthz"]) => Ok(json_response(
            StatusCode::OK,
            &serde_json::json!({"status": "ok"}),
        )),
        (&Method::GET, ["api", "v1", "devices"]) => devices::list(acs, &query),
        (&Method::GET, ["api", "v1", "devices", id]) => devices::get(acs, &decode_segment(id)?),
        (&Method::GET, ["api", "v1", "devices", id, "parameters"]) => {
            devices::parameters(acs, &decode_segment(id)?, &query)
        }
        (&Method::GET, ["api", "v1", "devices", id, "tasks"]) => {
            devices::tasks(acs, &decode_segment(id)?)
        }
        (&Method::POST, ["api", "v1", "devices", id, "tasks"]) => {
            let id = decode_segment(id)?;
            let body = read_json_body(req).await?;
            devices::create_task(acs, &id, body).await
        }
        (&Method::GET, ["api", "v1", "tasks", id]) => devices::task(acs, id),
        (&Method::GET, ["api", "v1", "faults"]) => devices::faults(acs, &query),
        (&Method::PUT, ["api", "v1", "cpe-credentials", user]) => {
            let user = decode_segment(user)?;
            let body = read_json_body(req).await?;
            credentials::put(acs, &user, body).await
        }
        (&Method::DELETE, ["api", "v1", "cpe-credentials", user]) => {
            credentials::delete(acs, &decode_segment(user)?).await
        }
        (_, ["healthz"])
        | (_, ["api", "v1", "devices"])
        | (_, ["api", "v1", "devices", _])
        | (_, ["api", "v1", "devices", _, "parameters" | "tasks"])
        | (_, ["api", "v1", "tasks", _])
        | (_, ["api", "v1", "faults"])
        | (_, ["api", "v1", "cpe-credentials", _]) => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed on {path}"),
        )),
        _ => Err(ApiError::not_found(format!("no route {path}"))),
    }
}

async fn read_json_body(req: Request<Incoming>) -> Result<serde_json::Value, ApiError> {
    let collected = Limited::new(req.into_body(), MAX_API_BODY)
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the request body failed: {e}")))?;
    serde_json::from_slice(&collected.to_bytes())
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
    fn parse(q: Option<&str>) -> Result<Query, ApiError> {
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

fn decode_segment(s: &str) -> Result<String, ApiError> {
    percent_decode(s).ok_or_else(|| {
        ApiError::bad_request(format!("path segment `{s}` has invalid percent-encoding"))
    })
}

/// Decodes `%XX` escapes; `None` for a malformed escape or non-UTF-8 result.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
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
    fn query_limits() {
        let q = Query::parse(Some("limit=5&q=a+b")).unwrap();
        assert_eq!(q.limit("limit", 50, 100).unwrap(), 5);
        assert_eq!(q.get("q"), Some("a b"));
        assert!(
            Query::parse(Some("limit=0"))
                .unwrap()
                .limit("limit", 50, 100)
                .is_err()
        );
        assert!(
            Query::parse(Some("limit=x"))
                .unwrap()
                .limit("limit", 50, 100)
                .is_err()
        );
    }
}
