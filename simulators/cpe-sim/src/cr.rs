//! The connection-request listener: an HTTP server the ACS calls (with
//! Digest credentials from ManagementServer.ConnectionRequestUsername /
//! Password) to make the CPE open a session (`6 CONNECTION REQUEST`).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::http::verify_digest;

/// What the listener asks the device to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Trigger {
    /// An authenticated connection request: open a session.
    ConnectionRequest,
    /// `GET /_sim/set?name=…&value=…` (simulator control, not CWMP): the
    /// device changes one of its own values, as when a user edits the WiFi
    /// name on the device's web page.
    SetValue { name: String, value: String },
}

const REALM: &str = "cpe-sim";

struct Guard {
    username: String,
    password: String,
    nonce: String,
    trigger: mpsc::Sender<Trigger>,
}

/// Starts the listener; returns its address. Each authenticated request
/// sends one trigger (coalesced if a session is already pending).
pub async fn serve(
    listen: SocketAddr,
    username: String,
    password: String,
    trigger: mpsc::Sender<Trigger>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let mut raw = [0u8; 16];
    let _ = SystemRandom::new().fill(&mut raw);
    let guard = Arc::new(Guard {
        username,
        password,
        nonce: raw.iter().map(|b| format!("{b:02x}")).collect(),
        trigger,
    });
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let guard = guard.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let guard = guard.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(&guard, &req)) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(addr)
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() + 1
                && s.get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .is_some() =>
            {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn answer(g: &Guard, req: &hyper::Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path() == "/_sim/set" {
        let q = req.uri().query().unwrap_or("");
        let mut r = Response::new(Full::new(Bytes::new()));
        match (query_param(q, "name"), query_param(q, "value")) {
            (Some(name), Some(value)) => {
                let _ = g.trigger.try_send(Trigger::SetValue { name, value });
            }
            _ => *r.status_mut() = StatusCode::BAD_REQUEST,
        }
        return r;
    }
    let authorised = g.username.is_empty()
        || req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                verify_digest(
                    v,
                    REALM,
                    &g.nonce,
                    &g.username,
                    &g.password,
                    req.method().as_str(),
                )
            });
    let mut r = Response::new(Full::new(Bytes::new()));
    if authorised {
        // A full channel means a session is already due: coalesce.
        let _ = g.trigger.try_send(Trigger::ConnectionRequest);
        *r.status_mut() = StatusCode::OK;
    } else {
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        if let Ok(v) = format!(
            "Digest realm=\"{REALM}\", qop=\"auth\", nonce=\"{}\", algorithm=MD5",
            g.nonce
        )
        .parse()
        {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    r
}
