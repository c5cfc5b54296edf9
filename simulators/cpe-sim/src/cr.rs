//! The connection-request listener: an HTTP server the ACS calls (with
//! Digest credentials from ManagementServer.ConnectionRequestUsername /
//! Password) to make the CPE open a session (`6 CONNECTION REQUEST`).
//!
//! The credentials are not fixed at startup: a real CPE checks each request
//! against its *current* data model, and ACSes change them with
//! SetParameterValues at bootstrap (this one sets the serial number and a
//! random password). The listener therefore reads them from a
//! [`CrCredentials`] cell that the device loop refreshes from the model.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

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
    /// The STUN server saw the device's UDP connection-request port at
    /// `addr` (TR-111): the device records it in UDPConnectionRequestAddress
    /// and NATDetected (true when `addr` is not its own address).
    StunMapped {
        addr: SocketAddr,
        nat_detected: bool,
    },
}

const REALM: &str = "cpe-sim";

/// The connection-request username and password the device currently
/// accepts, shared between the device loop (writer) and the listeners
/// (readers). An empty username means "no authentication".
#[derive(Clone, Default)]
pub struct CrCredentials(Arc<RwLock<Pair>>);

#[derive(Default, PartialEq, Eq)]
struct Pair {
    username: String,
    password: String,
    /// The device is gone (dead firmware): nothing is answered any more.
    silent: bool,
}

impl CrCredentials {
    pub fn new(username: &str, password: &str) -> CrCredentials {
        let c = CrCredentials::default();
        c.set(username, password);
        c
    }

    /// Replaces the credentials; true if they changed.
    pub fn set(&self, username: &str, password: &str) -> bool {
        // A poisoned lock only means a reader panicked mid-read; the pair
        // itself is always whole, so keep using it.
        let mut g = self.0.write().unwrap_or_else(|p| p.into_inner());
        if g.username == username && g.password == password {
            return false;
        }
        g.username = username.to_owned();
        g.password = password.to_owned();
        true
    }

    /// The device is dead: the listeners stop answering for good (the
    /// HTTP listener closes its socket, the UDP one ignores requests).
    pub fn silence(&self) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).silent = true;
    }

    pub fn is_silent(&self) -> bool {
        self.0.read().unwrap_or_else(|p| p.into_inner()).silent
    }

    /// (username, password) as of now.
    pub fn get(&self) -> (String, String) {
        let g = self.0.read().unwrap_or_else(|p| p.into_inner());
        (g.username.clone(), g.password.clone())
    }
}

/// Never prints the password.
impl std::fmt::Debug for CrCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (username, _) = self.get();
        f.debug_struct("CrCredentials")
            .field("username", &username)
            .finish_non_exhaustive()
    }
}

struct Guard {
    credentials: CrCredentials,
    nonce: String,
    trigger: mpsc::Sender<Trigger>,
}

/// Starts the listener; returns its address. Each authenticated request
/// sends one trigger (coalesced if a session is already pending). Requests
/// are checked against `credentials` as they are when the request arrives.
pub async fn serve(
    listen: SocketAddr,
    credentials: CrCredentials,
    trigger: mpsc::Sender<Trigger>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let mut raw = [0u8; 16];
    let _ = SystemRandom::new().fill(&mut raw);
    let guard = Arc::new(Guard {
        credentials,
        nonce: raw.iter().map(|b| format!("{b:02x}")).collect(),
        trigger,
    });
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            if guard.credentials.is_silent() {
                // A dead device: this connection and every later one fail.
                break;
            }
            let guard = guard.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let guard = guard.clone();
                    async move {
                        if guard.credentials.is_silent() {
                            // No answer: the connection is dropped.
                            return Err(std::io::Error::other("the device is dead"));
                        }
                        Ok(answer(&guard, &req))
                    }
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
    let (username, password) = g.credentials.get();
    let authorised = username.is_empty()
        || req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                verify_digest(
                    v,
                    REALM,
                    &g.nonce,
                    &username,
                    &password,
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use gigafibre_acs::cwmp::rpc::SetParameterValues;
    use gigafibre_acs::cwmp::{Body, ParameterValue, ValueType};
    use md5::{Digest, Md5};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;
    use crate::device::Device;
    use crate::model::{Identity, ModelTemplate};
    use crate::quirks::Quirks;
    use crate::runner::{Listeners, sync_listeners};

    /// One `GET /` with an optional Authorization header: (status, nonce
    /// of the challenge if any).
    async fn get(addr: SocketAddr, auth: Option<&str>) -> (u16, Option<String>) {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let req = format!("GET / HTTP/1.1\r\nHost: cpe\r\nConnection: close\r\n{auth}\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).await.unwrap();
        let status = text[9..12].parse().unwrap();
        let nonce = text
            .split("nonce=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .map(str::to_owned);
        (status, nonce)
    }

    fn digest(user: &str, password: &str, nonce: &str) -> String {
        let md5 = |s: String| format!("{:x}", Md5::digest(s.as_bytes()));
        let ha1 = md5(format!("{user}:{REALM}:{password}"));
        let ha2 = md5("GET:/".into());
        let response = md5(format!("{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}"));
        format!(
            "Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"/\", qop=auth, nc=00000001, cnonce=\"c0ffee\", response=\"{response}\""
        )
    }

    /// Asks with (user, password): true if the listener accepted and
    /// triggered a session.
    async fn knock(
        addr: SocketAddr,
        rx: &mut mpsc::Receiver<Trigger>,
        user: &str,
        pw: &str,
    ) -> bool {
        let (status, nonce) = get(addr, None).await;
        assert_eq!(status, 401);
        let (status, _) = get(addr, Some(&digest(user, pw, &nonce.unwrap()))).await;
        match status {
            200 => {
                let t = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
                assert_eq!(t.unwrap(), Some(Trigger::ConnectionRequest));
                true
            }
            401 => {
                assert!(
                    rx.try_recv().is_err(),
                    "a refused request triggered a session"
                );
                false
            }
            other => panic!("status {other}"),
        }
    }

    #[tokio::test]
    async fn the_listener_checks_the_current_credentials() {
        let creds = CrCredentials::new("SN1", "old-password");
        let (tx, mut rx) = mpsc::channel(1);
        let addr = serve(([127, 0, 0, 1], 0).into(), creds.clone(), tx)
            .await
            .unwrap();
        assert!(knock(addr, &mut rx, "SN1", "old-password").await);
        assert!(creds.set("SN1", "new-password"));
        assert!(!creds.set("SN1", "new-password"), "unchanged is no change");
        assert!(!knock(addr, &mut rx, "SN1", "old-password").await);
        assert!(knock(addr, &mut rx, "SN1", "new-password").await);
        assert!(!knock(addr, &mut rx, "other", "new-password").await);
        // Debug output carries the username, never the password.
        let shown = format!("{creds:?}");
        assert!(
            shown.contains("SN1") && !shown.contains("new-password"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn credentials_follow_the_data_model() {
        let id = Identity {
            serial: "SN42".into(),
            mac: [0x1c, 0x61, 0xb4, 0, 0, 42],
            gpon_sn: "TPLG0000002A".into(),
            acs_url: "http://acs".into(),
            cr_url: "http://cr".into(),
            wan_ip: "100.64.0.42".into(),
        };
        let model = ModelTemplate::builtin("tplg-ont").unwrap().instantiate(&id);
        let mut dev = Device::new(model, Quirks::default(), None).unwrap();
        let listeners = Listeners::default();
        let creds = listeners.credentials.clone();
        sync_listeners(&dev, &listeners);
        let factory = creds.get();
        assert_eq!(factory, dev.connection_request_credentials());
        let (tx, mut rx) = mpsc::channel(1);
        let addr = serve(([127, 0, 0, 1], 0).into(), creds.clone(), tx)
            .await
            .unwrap();
        assert!(knock(addr, &mut rx, &factory.0, &factory.1).await);

        // Bootstrap: the ACS sets username = serial and a random password.
        let spv = |leaf: &str, value: &str| ParameterValue {
            name: format!("Device.ManagementServer.{leaf}"),
            value: value.into(),
            kind: ValueType::String,
        };
        let answer = dev.handle(Body::SetParameterValues(SetParameterValues {
            parameters: vec![
                spv("ConnectionRequestUsername", "SN42"),
                spv("ConnectionRequestPassword", "Xq3vR8pLm2Zt7bNc4Wd9"),
            ],
            parameter_key: "bootstrap".into(),
        }));
        assert!(!matches!(answer, Body::Fault(_)), "{answer:?}");
        sync_listeners(&dev, &listeners);
        assert!(!knock(addr, &mut rx, &factory.0, &factory.1).await);
        assert!(!knock(addr, &mut rx, "SN42", &factory.1).await);
        assert!(knock(addr, &mut rx, "SN42", "Xq3vR8pLm2Zt7bNc4Wd9").await);
    }

    #[tokio::test]
    async fn an_empty_username_means_no_authentication() {
        let creds = CrCredentials::new("", "");
        let (tx, mut rx) = mpsc::channel(1);
        let addr = serve(([127, 0, 0, 1], 0).into(), creds, tx).await.unwrap();
        assert_eq!(get(addr, None).await.0, 200);
        assert_eq!(rx.recv().await, Some(Trigger::ConnectionRequest));
    }
}
