//! The CPE's HTTP client towards the ACS: keep-alive connections, the
//! session cookie, and Basic/Digest authentication (answering a 401 on a
//! new connection, as many real CPEs do).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use md5::{Digest as _, Md5};
use ring::rand::{SecureRandom, SystemRandom};
use thiserror::Error;
use tokio::net::TcpStream;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    None,
    Basic,
    Digest,
}

/// How this CPE authenticates to the ACS.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub mode: AuthMode,
    pub username: String,
    pub password: String,
}

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("ACS URL `{0}` is not an http:// or https:// URL with a host")]
    BadUrl(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("cannot connect to the ACS at {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("HTTP exchange with the ACS failed: {0}")]
    Http(String),
    #[error("the ACS did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the ACS refused our credentials (HTTP 401)")]
    Unauthorized,
}

/// An answer from the ACS.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub retry_after: Option<u64>,
    pub body: Bytes,
}

/// A Digest challenge we answer.
#[derive(Clone, Debug)]
struct Challenge {
    realm: String,
    nonce: String,
    opaque: Option<String>,
    algorithm: String,
    qop: bool,
    nc: u32,
}

/// One CPE's connection to the ACS.
pub struct AcsClient {
    authority: String,
    path: String,
    creds: Credentials,
    sender: Option<SendRequest<Full<Bytes>>>,
    cookie: Option<String>,
    challenge: Option<Challenge>,
    pub send_cookies: bool,
    pub reconnect_after_401: bool,
    timeout: Duration,
    /// TCP connections opened so far (for tests and stats).
    pub connections: u64,
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls_pki_types::ServerName<'static>,
    )>,
}

/// A TLS client configuration trusting the CA certificates in a PEM file.
pub fn tls_config(
    ca_file: &std::path::Path,
) -> Result<std::sync::Arc<rustls::ClientConfig>, ClientError> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| ClientError::Tls(format!("reading {}: {e}", ca_file.display())))?;
    for c in certs {
        let c = c.map_err(|e| ClientError::Tls(format!("{}: {e}", ca_file.display())))?;
        roots
            .add(c)
            .map_err(|e| ClientError::Tls(format!("{}: {e}", ca_file.display())))?;
    }
    if roots.is_empty() {
        return Err(ClientError::Tls(format!(
            "{} holds no certificate",
            ca_file.display()
        )));
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ClientError::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(std::sync::Arc::new(config))
}

impl AcsClient {
    /// A client for `url`; `https://` needs `tls` (see [`tls_config`]).
    pub fn new(
        url: &str,
        creds: Credentials,
        timeout: Duration,
        tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    ) -> Result<AcsClient, ClientError> {
        let uri: Uri = url
            .parse()
            .map_err(|_| ClientError::BadUrl(url.to_owned()))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(ClientError::BadUrl(url.to_owned())),
        };
        let tls = match (https, tls) {
            (false, _) => None,
            (true, None) => {
                return Err(ClientError::Tls(
                    "an https:// ACS URL needs --ca-file".into(),
                ));
            }
            (true, Some(config)) => {
                let host = uri
                    .host()
                    .unwrap_or_default()
                    .trim_matches(['[', ']'])
                    .to_owned();
                let name = rustls_pki_types::ServerName::try_from(host)
                    .map_err(|e| ClientError::Tls(format!("server name: {e}")))?;
                Some((tokio_rustls::TlsConnector::from(config), name))
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| ClientError::BadUrl(url.to_owned()))?
            .to_string();
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into());
        Ok(AcsClient {
            authority,
            path,
            creds,
            sender: None,
            cookie: None,
            challenge: None,
            send_cookies: true,
            reconnect_after_401: true,
            timeout,
            connections: 0,
            tls,
        })
    }

    /// Forgets the session cookie (a new CWMP session begins).
    pub fn new_session(&mut self) {
        self.cookie = None;
    }

    /// Drops the connection (as after a reboot).
    pub fn disconnect(&mut self) {
        self.sender = None;
    }

    async fn connect(&mut self) -> Result<(), ClientError> {
        let host = self.authority.clone();
        let default_port = if self.tls.is_some() { 443 } else { 80 };
        let addr = if host.rsplit(']').next().unwrap_or(&host).contains(':') {
            host.clone()
        } else {
            format!("{host}:{default_port}")
        };
        let stream = tokio::time::timeout(self.timeout, TcpStream::connect(&addr))
            .await
            .map_err(|_| ClientError::Timeout(self.timeout))?
            .map_err(|e| ClientError::Connect {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
        let _ = stream.set_nodelay(true);
        let connect_err = |e: hyper::Error| ClientError::Connect {
            addr: addr.clone(),
            reason: e.to_string(),
        };
        let sender = match &self.tls {
            None => {
                let (sender, conn) = http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(connect_err)?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                sender
            }
            Some((connector, name)) => {
                let tls =
                    tokio::time::timeout(self.timeout, connector.connect(name.clone(), stream))
                        .await
                        .map_err(|_| ClientError::Timeout(self.timeout))?
                        .map_err(|e| ClientError::Tls(format!("handshake with {addr}: {e}")))?;
                let (sender, conn) = http1::handshake(TokioIo::new(tls))
                    .await
                    .map_err(connect_err)?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                sender
            }
        };
        self.sender = Some(sender);
        self.connections += 1;
        Ok(())
    }

    fn authorization(&mut self) -> Option<String> {
        match self.creds.mode {
            AuthMode::None => None,
            AuthMode::Basic => Some(format!(
                "Basic {}",
                STANDARD.encode(format!("{}:{}", self.creds.username, self.creds.password))
            )),
            AuthMode::Digest => {
                let c = self.challenge.as_mut()?;
                c.nc += 1;
                Some(digest_response(
                    c,
                    &self.creds.username,
                    &self.creds.password,
                    "POST",
                    &self.path,
                ))
            }
        }
    }

    async fn send_once(
        &mut self,
        body: &Bytes,
    ) -> Result<(Reply, Option<Vec<String>>), ClientError> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.connect().await?;
        }
        let mut builder = Request::post(self.path.as_str())
            .header(header::HOST, self.authority.as_str())
            .header(header::CONTENT_TYPE, "text/xml; charset=\"utf-8\"")
            .header("SOAPAction", "");
        if self.send_cookies {
            if let Some(c) = &self.cookie {
                builder = builder.header(header::COOKIE, c.as_str());
            }
        }
        if let Some(a) = self.authorization() {
            builder = builder.header(header::AUTHORIZATION, a);
        }
        let req = builder
            .body(Full::new(body.clone()))
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let Some(sender) = self.sender.as_mut() else {
            return Err(ClientError::Http("no connection".into()));
        };
        let exchange = async {
            sender
                .ready()
                .await
                .map_err(|e| ClientError::Http(e.to_string()))?;
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| ClientError::Http(e.to_string()))?;
            let (parts, body) = resp.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| ClientError::Http(e.to_string()))?
                .to_bytes();
            Ok::<_, ClientError>((parts, body))
        };
        let (parts, body) = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(r) => r,
            Err(_) => {
                self.sender = None;
                return Err(ClientError::Timeout(self.timeout));
            }
        }
        .inspect_err(|_| self.sender = None)?;
        if let Some(set) = parts
            .headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
        {
            self.cookie = set.split(';').next().map(|s| s.trim().to_owned());
        }
        let retry_after = parts
            .headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let challenges = (parts.status == StatusCode::UNAUTHORIZED).then(|| {
            parts
                .headers
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v: &HeaderValue| v.to_str().ok().map(str::to_owned))
                .collect()
        });
        Ok((
            Reply {
                status: parts.status,
                retry_after,
                body,
            },
            challenges,
        ))
    }

    /// POSTs a CWMP body (empty for "nothing more to say"). A 401 is
    /// answered once with credentials, on a new connection by default.
    pub async fn post(&mut self, body: Bytes) -> Result<Reply, ClientError> {
        let (reply, challenges) = match self.send_once(&body).await {
            Err(ClientError::Http(_)) => {
                // A keep-alive connection the ACS closed meanwhile: retry once.
                self.sender = None;
                self.send_once(&body).await?
            }
            other => other?,
        };
        let Some(challenges) = challenges else {
            return Ok(reply);
        };
        if self.creds.mode == AuthMode::None {
            return Ok(reply);
        }
        if self.creds.mode == AuthMode::Digest {
            let Some(c) = challenges.iter().find_map(|h| parse_challenge(h)) else {
                return Err(ClientError::Unauthorized);
            };
            self.challenge = Some(c);
        }
        if self.reconnect_after_401 {
            self.sender = None;
        }
        let (reply, again) = self.send_once(&body).await?;
        if again.is_some() {
            return Err(ClientError::Unauthorized);
        }
        Ok(reply)
    }
}

/// The Authorization answering one `WWW-Authenticate: Digest ...`
/// challenge (the first request with it), if we can answer it.
pub fn answer_digest(
    challenge: &str,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
) -> Option<String> {
    let mut c = parse_challenge(challenge)?;
    c.nc = 1;
    Some(digest_response(&c, user, password, method, uri))
}

/// Parses one `WWW-Authenticate: Digest ...` value we can answer (MD5 or
/// SHA-256, qop=auth or none).
fn parse_challenge(h: &str) -> Option<Challenge> {
    let rest = h.trim().strip_prefix("Digest")?.trim();
    let mut realm = None;
    let mut nonce = None;
    let mut opaque = None;
    let mut algorithm = "MD5".to_owned();
    let mut qop = false;
    for (k, v) in split_params(rest) {
        match k.to_ascii_lowercase().as_str() {
            "realm" => realm = Some(v),
            "nonce" => nonce = Some(v),
            "opaque" => opaque = Some(v),
            "algorithm" => algorithm = v,
            "qop" => qop = v.split(',').any(|q| q.trim() == "auth"),
            _ => {}
        }
    }
    if !matches!(algorithm.to_ascii_uppercase().as_str(), "MD5" | "SHA-256") {
        return None;
    }
    Some(Challenge {
        realm: realm?,
        nonce: nonce?,
        opaque,
        algorithm,
        qop,
        nc: 0,
    })
}

/// `k=v, k="v, with comma"` pairs.
pub fn split_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_owned();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(q) = rest.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            value = q[..end].to_owned();
            rest = q.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        rest = rest.trim_start().trim_start_matches(',').trim_start();
        out.push((key, value));
    }
    out
}

fn hash(algorithm: &str, s: &str) -> String {
    let bytes: Vec<u8> = if algorithm.eq_ignore_ascii_case("SHA-256") {
        ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
            .as_ref()
            .to_vec()
    } else {
        Md5::digest(s.as_bytes()).to_vec()
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest_response(c: &Challenge, user: &str, password: &str, method: &str, uri: &str) -> String {
    let ha1 = hash(&c.algorithm, &format!("{user}:{}:{password}", c.realm));
    let ha2 = hash(&c.algorithm, &format!("{method}:{uri}"));
    let mut cnonce_bytes = [0u8; 8];
    let _ = SystemRandom::new().fill(&mut cnonce_bytes);
    let cnonce: String = cnonce_bytes.iter().map(|b| format!("{b:02x}")).collect();
    let nc = format!("{:08x}", c.nc);
    let mut h = format!(
        "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", algorithm={}",
        c.realm, c.nonce, c.algorithm
    );
    if c.qop {
        let response = hash(
            &c.algorithm,
            &format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", c.nonce),
        );
        h.push_str(&format!(
            ", qop=auth, nc={nc}, cnonce=\"{cnonce}\", response=\"{response}\""
        ));
    } else {
        let response = hash(&c.algorithm, &format!("{ha1}:{}:{ha2}", c.nonce));
        h.push_str(&format!(", response=\"{response}\""));
    }
    if let Some(o) = &c.opaque {
        h.push_str(&format!(", opaque=\"{o}\""));
    }
    h
}

/// Server side of Digest, for the connection-request listener.
pub fn verify_digest(
    header_value: &str,
    realm: &str,
    nonce: &str,
    user: &str,
    password: &str,
    method: &str,
) -> bool {
    let Some(rest) = header_value.trim().strip_prefix("Digest") else {
        return false;
    };
    let p: std::collections::HashMap<String, String> = split_params(rest)
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    if get("username") != user || get("realm") != realm || get("nonce") != nonce {
        return false;
    }
    let alg = if get("algorithm").is_empty() {
        "MD5"
    } else {
        get("algorithm")
    };
    let ha1 = hash(alg, &format!("{user}:{realm}:{password}"));
    let ha2 = hash(alg, &format!("{method}:{}", get("uri")));
    let expected = if get("qop").is_empty() {
        hash(alg, &format!("{ha1}:{nonce}:{ha2}"))
    } else {
        hash(
            alg,
            &format!(
                "{ha1}:{nonce}:{}:{}:{}:{ha2}",
                get("nc"),
                get("cnonce"),
                get("qop")
            ),
        )
    };
    expected == get("response").to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parsing_and_rfc_2617_example() {
        let c = parse_challenge(r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#).unwrap();
        assert!(c.qop);
        assert_eq!(c.algorithm, "MD5");
        // RFC 2617 3.5: Mufasa / "Circle Of Life", GET /dir/index.html,
        // nc=00000001, cnonce=0a4f113b.
        let ha1 = hash("MD5", "Mufasa:testrealm@host.com:Circle Of Life");
        let ha2 = hash("MD5", "GET:/dir/index.html");
        let r = hash(
            "MD5",
            &format!("{ha1}:{}:00000001:0a4f113b:auth:{ha2}", c.nonce),
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
        assert!(parse_challenge("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512").is_none());
        assert!(parse_challenge("Basic realm=\"r\"").is_none());
    }

    #[test]
    fn our_response_verifies() {
        let c = Challenge {
            realm: "r".into(),
            nonce: "n1".into(),
            opaque: None,
            algorithm: "SHA-256".into(),
            qop: true,
            nc: 1,
        };
        let h = digest_response(&c, "u", "p", "GET", "/cr");
        let mut c2 = c.clone();
        c2.algorithm = "SHA-256".into();
        assert!(verify_digest(&h, "r", "n1", "u", "p", "GET"));
        assert!(!verify_digest(&h, "r", "n1", "u", "wrong", "GET"));
        assert!(!verify_digest(&h, "r", "other", "u", "p", "GET"));
    }
}
