//! Delivers every event as a JSON POST to a configured URL, in order, with
//! retries.
//!
//! One delivery at a time keeps events in order at the receiver. A receiver
//! that is down makes the deliverer fall behind; the bus then drops the
//! oldest events for it (counted in `dropped`), so a dead webhook costs
//! memory bounded by the bus capacity and nothing else. With a secret, each
//! POST carries `X-Gigafibre-Signature: sha256=<hex HMAC-SHA256 of the
//! body>` so the receiver can tell the ACS from a forger.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderValue};
use ring::hmac;
use tokio::sync::{broadcast, watch};

use super::{Event, EventBus};
use crate::config::Secret;

/// Attempts per event, and the pause before each retry.
const RETRY_DELAYS: [Duration; 4] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
];

/// Delivery counters (for `/metrics`).
#[derive(Debug, Default)]
pub struct WebhookStats {
    pub delivered: AtomicU64,
    /// Events given up on after every retry.
    pub failed: AtomicU64,
    /// Events the deliverer fell too far behind to see.
    pub dropped: AtomicU64,
}

/// Where and how to deliver.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub url: reqwest::Url,
    pub secret: Option<Secret>,
    pub timeout: Duration,
}

/// Starts the deliverer; it stops when `shutdown` turns true.
pub fn spawn(
    config: WebhookConfig,
    bus: &EventBus,
    stats: Arc<WebhookStats>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(crate::http_client::tls_config(
            config.url.scheme() == "https",
        )?)
        .user_agent(concat!("gigafibre-acs/", env!("CARGO_PKG_VERSION")))
        .timeout(config.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("webhook HTTP client: {e}"))?;
    let key = config
        .secret
        .as_ref()
        .map(|s| hmac::Key::new(hmac::HMAC_SHA256, s.expose().as_bytes()));
    let mut rx = bus.subscribe();
    Ok(tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                r = rx.recv() => r,
                _ = shutdown.changed() => return,
            };
            match event {
                // Sent once, by the node where it happened.
                Ok(event) if event.remote => {}
                Ok(event) => {
                    let ok = tokio::select! {
                        ok = deliver(&http, &config, key.as_ref(), &event) => ok,
                        _ = shutdown.changed() => return,
                    };
                    let counter = if ok { &stats.delivered } else { &stats.failed };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    stats.dropped.fetch_add(n, Ordering::Relaxed);
                    tracing::warn!(dropped = n, "webhook fell behind; oldest events dropped");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }))
}

/// `sha256=<hex>` of the body under the shared secret.
pub fn signature(key: &hmac::Key, body: &[u8]) -> String {
    let tag = hmac::sign(key, body);
    format!("sha256={}", crate::digest::hex(tag.as_ref()))
}

/// One event, retried; true once the receiver answered 2xx.
async fn deliver(
    http: &reqwest::Client,
    config: &WebhookConfig,
    key: Option<&hmac::Key>,
    event: &Event,
) -> bool {
    let Ok(body) = serde_json::to_vec(event) else {
        return false;
    };
    for attempt in 0..=RETRY_DELAYS.len() {
        if attempt > 0 {
            tokio::time::sleep(RETRY_DELAYS[attempt - 1]).await;
        }
        let mut req = http
            .post(config.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("X-Gigafibre-Event", event.kind.as_str())
            .body(body.clone());
        if let Some(key) = key {
            req = req.header("X-Gigafibre-Signature", signature(key, &body));
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => return true,
            // 4xx other than 408/429 will not get better with a retry.
            Ok(r)
                if r.status().is_client_error()
                    && r.status() != reqwest::StatusCode::REQUEST_TIMEOUT
                    && r.status() != reqwest::StatusCode::TOO_MANY_REQUESTS =>
            {
                tracing::warn!(status = %r.status(), event = event.kind.as_str(), "webhook refused the event");
                return false;
            }
            Ok(r) => {
                tracing::warn!(status = %r.status(), attempt = attempt + 1, "webhook delivery failed")
            }
            Err(e) => tracing::warn!(
                error = %crate::http_client::transport_reason(&e, config.timeout),
                attempt = attempt + 1,
                "webhook delivery failed"
            ),
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        assert_eq!(
            signature(&key, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
