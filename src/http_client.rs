//! What the ACS's outgoing HTTP clients (ERPNext, connection requests,
//! webhooks) share: one rustls setup (ring provider, the platform's roots,
//! HTTP/1.1) and one way to turn a transport error into short text.

use std::sync::Arc;
use std::time::Duration;

/// rustls with the ring provider and the platform's roots. For a plain
/// http URL a verifier failure does not matter (TLS is never used).
pub fn tls_config(https: bool) -> Result<rustls::ClientConfig, String> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let mut config = match builder.clone().with_platform_verifier() {
        Ok(b) => b.with_no_client_auth(),
        Err(e) if https => {
            return Err(format!(
                "TLS setup: cannot load the system's certificate verifier: {e}"
            ));
        }
        Err(_) => builder
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A transport error as short text: reqwest's own line (which carries the
/// whole URL) is replaced by a word, the causes below it are kept.
pub fn transport_reason(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {} ms", timeout.as_millis());
    }
    let mut parts: Vec<String> = Vec::new();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        src = s.source();
    }
    let what = if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "answer interrupted"
    } else {
        "connection failed"
    };
    if parts.is_empty() {
        what.to_string()
    } else {
        one_line(&format!("{what}: {}", parts.join(": ")))
    }
}

/// Longest transport reason kept (an error chain can repeat itself).
const MAX_REASON: usize = 300;

/// Whitespace collapsed to single spaces, cut at [`MAX_REASON`] characters.
fn one_line(s: &str) -> String {
    let collapsed = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match collapsed.char_indices().nth(MAX_REASON) {
        Some((cut, _)) => format!("{}…", &collapsed[..cut]),
        None => collapsed,
    }
}
