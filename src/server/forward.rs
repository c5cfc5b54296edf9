//! Forwarding a session's exchange to the node that holds it. Behind a
//! load balancer, a CPE that opens a new connection mid-session (some do
//! for every request) may reach another node than the one holding its
//! session; that node finds the holder by the session cookie
//! ([`crate::cluster::Cluster::session_holder`]) and relays the request
//! and the answer as they are. (GenieACS answers "Invalid session" here.)

use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;
use tracing::warn;

use crate::cluster::Holder;

/// Marks a forwarded request: it is never forwarded again (two nodes
/// disagreeing about a holder cannot bounce a request between them).
pub const FORWARDED: &str = "x-gigafibre-forwarded";

/// Request headers the holder needs (the cookie names the session).
const REQUEST_HEADERS: [HeaderName; 4] = [
    header::COOKIE,
    header::CONTENT_TYPE,
    header::CONTENT_ENCODING,
    HeaderName::from_static("soapaction"),
];
/// Answer headers the CPE needs.
const RESPONSE_HEADERS: [HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::SET_COOKIE,
    header::RETRY_AFTER,
    header::WWW_AUTHENTICATE,
];

/// The HTTP client nodes use to reach each other.
pub struct Forwarder {
    http: reqwest::Client,
}

impl Forwarder {
    pub fn new(timeout: Duration) -> Result<Forwarder, String> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::http_client::tls_config(true)?)
            .user_agent(concat!("gigafibre-acs/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            // One connection per forwarded request: a connection carries
            // a session on the holder's side (see `ConnState`), and must
            // not carry another device's next.
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| format!("node-to-node HTTP client: {e}"))?;
        Ok(Forwarder { http })
    }

    /// Sends the request body (as received) to the holder and returns its
    /// answer; 503 + Retry-After when the holder cannot be reached (the
    /// CPE retries, and a dead holder's device is soon free).
    pub async fn forward(
        &self,
        holder: &Holder,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Response<Full<Bytes>> {
        let mut req = self.http.post(&holder.url).header(FORWARDED, "1");
        for name in &REQUEST_HEADERS {
            for v in headers.get_all(name) {
                req = req.header(name, v);
            }
        }
        let answer = match req.body(body).send().await {
            Ok(a) => a,
            Err(e) => {
                warn!(node = %holder.node, error = %crate::http_client::transport_reason(&e, Duration::ZERO), "forwarding a session's request to its node failed");
                return unreachable_holder();
            }
        };
        let status = answer.status();
        let kept: Vec<(HeaderName, HeaderValue)> = RESPONSE_HEADERS
            .iter()
            .flat_map(|n| {
                answer
                    .headers()
                    .get_all(n)
                    .iter()
                    .map(move |v| (n.clone(), v.clone()))
            })
            .collect();
        let bytes = match answer.bytes().await {
            Ok(b) => b,
            Err(e) => {
                warn!(node = %holder.node, error = %e, "reading the answer of a session's node failed");
                return unreachable_holder();
            }
        };
        let mut r = Response::new(Full::new(bytes));
        *r.status_mut() = status;
        for (n, v) in kept {
            r.headers_mut().append(n, v);
        }
        r
    }
}

fn unreachable_holder() -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(
        b"the ACS node holding this session cannot be reached; retry",
    )));
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}
