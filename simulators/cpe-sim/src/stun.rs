//! TR-111 Part 2 on the device side: one UDP socket that keeps a NAT
//! binding open with STUN Binding Requests and takes UDP connection
//! requests, as a CPE behind NAT does.
//!
//! Every keep-alive period (ManagementServer.STUNMinimumKeepAlivePeriod,
//! 30 s if unset) the device sends a Binding Request with USERNAME =
//! STUNUsername (the serial number if empty) and CONNECTION-REQUEST-BINDING
//! to the STUN server; the first answer, and any answer with a different
//! mapped address, is followed at once by a request with BINDING-CHANGE,
//! and the address goes to the device loop ([`Trigger::StunMapped`]),
//! which writes UDPConnectionRequestAddress and NATDetected. A 401 answer
//! makes the device sign its requests (MESSAGE-INTEGRITY with
//! STUNPassword). Datagrams from anyone else are UDP connection requests,
//! checked against the *current* connection-request credentials and the
//! replay rule, and trigger a session like an HTTP one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use gigafibre_acs::stun::udp_cr::{self, ReplayGuard};
use gigafibre_acs::stun::{BindingRequest, BindingResponse, TransactionId};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};
use tracing::{debug, info, warn};

use crate::cr::{CrCredentials, Trigger};
use crate::device::Device;

/// Keep-alive period when the model has none.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(30);
/// Retry period until the STUN server first answers.
const RETRY: Duration = Duration::from_secs(2);

/// The device's STUN settings as its data model holds them, shared with
/// the STUN task and refreshed after every session (the ACS may set
/// STUNUsername, STUNPassword or the keep-alive period).
#[derive(Clone, Default)]
pub struct StunSettings(Arc<RwLock<Settings>>);

#[derive(Clone, Default, PartialEq, Eq)]
struct Settings {
    username: String,
    password: String,
    keepalive: Duration,
}

impl StunSettings {
    /// Reads the settings from the device's model.
    pub fn sync(&self, dev: &Device) {
        let username = match dev.management("STUNUsername") {
            u if u.is_empty() => dev.device_id.serial_number.clone(),
            u => u,
        };
        let keepalive = dev
            .management("STUNMinimumKeepAlivePeriod")
            .parse::<u64>()
            .ok()
            .filter(|s| *s > 0)
            .map_or(DEFAULT_KEEPALIVE, Duration::from_secs);
        let new = Settings {
            username,
            password: dev.management("STUNPassword"),
            keepalive,
        };
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = new;
    }

    fn get(&self) -> Settings {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Never prints the password.
impl std::fmt::Debug for StunSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.get();
        f.debug_struct("StunSettings")
            .field("username", &s.username)
            .field("keepalive", &s.keepalive)
            .finish_non_exhaustive()
    }
}

/// How the STUN task runs.
#[derive(Clone, Debug)]
pub struct StunOptions {
    pub server: SocketAddr,
    /// Local address of the device's UDP socket.
    pub bind: SocketAddr,
    /// Overrides the model's keep-alive period (tests).
    pub keepalive: Option<Duration>,
}

/// A local address from which `server` is reachable: loopback for a
/// loopback server, else any address of its family.
pub fn default_bind(server: SocketAddr) -> SocketAddr {
    let ip = match server.ip() {
        IpAddr::V4(v4) if v4.is_loopback() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_loopback() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, 0)
}

/// The address this socket has towards `server` (the unspecified bind
/// address resolved to the outgoing interface's), to tell a NAT's mapping
/// from none.
async fn local_towards(socket: &UdpSocket, server: SocketAddr) -> Option<SocketAddr> {
    let local = socket.local_addr().ok()?;
    if !local.ip().is_unspecified() {
        return Some(local);
    }
    let probe = UdpSocket::bind(SocketAddr::new(local.ip(), 0)).await.ok()?;
    probe.connect(server).await.ok()?;
    Some(SocketAddr::new(probe.local_addr().ok()?.ip(), local.port()))
}

/// One outstanding Binding Request.
struct Pending {
    id: TransactionId,
}

/// Runs until `stop` turns true: keep-alives to the STUN server and UDP
/// connection requests from anyone else.
pub async fn run(
    socket: UdpSocket,
    opts: StunOptions,
    settings: StunSettings,
    credentials: CrCredentials,
    trigger: mpsc::Sender<Trigger>,
    mut stop: watch::Receiver<bool>,
) {
    let local = local_towards(&socket, opts.server).await;
    let mut buf = vec![0u8; 2048];
    let mut mapped: Option<SocketAddr> = None;
    let mut pending: Option<Pending> = None;
    let mut sign = false;
    let mut binding_change = false;
    let mut replay = ReplayGuard::default();
    let mut next_send = Instant::now();
    loop {
        if credentials.is_silent() {
            // The device is dead.
            return;
        }
        tokio::select! {
            _ = sleep_until(next_send) => {
                let s = settings.get();
                let req = BindingRequest {
                    transaction_id: TransactionId::random(),
                    username: Some(s.username.clone()),
                    connection_request_binding: true,
                    binding_change,
                    message_integrity: None,
                    fingerprint: false,
                };
                let password = (sign && !s.password.is_empty()).then_some(s.password.as_str());
                if let Err(e) = socket.send_to(&req.encode(password), opts.server).await {
                    debug!(server = %opts.server, error = %e, "STUN: binding request not sent");
                }
                pending = Some(Pending { id: req.transaction_id });
                binding_change = false;
                let period = opts.keepalive.unwrap_or(s.keepalive);
                next_send = Instant::now() + if mapped.is_some() { period } else { period.min(RETRY) };
            }
            received = socket.recv_from(&mut buf) => {
                let Ok((n, from)) = received else {
                    // ICMP port unreachable from an earlier send, typically.
                    continue;
                };
                let data = buf.get(..n).unwrap_or_default();
                // The ACS sends UDP connection requests from its STUN
                // socket (so that they pass the NAT): tell them apart by
                // content. STUN messages start with two zero bits, "GET"
                // does not.
                if data.first().is_some_and(|b| b & 0xC0 == 0) {
                    if from != opts.server {
                        continue;
                    }
                    let Ok(resp) = BindingResponse::parse(data) else {
                        continue;
                    };
                    if pending.as_ref().is_none_or(|p| p.id != resp.transaction_id()) {
                        continue;
                    }
                    pending = None;
                    match resp {
                        BindingResponse::Success { mapped_address: Some(addr), .. } => {
                            if mapped != Some(addr) {
                                // First binding or a new one: TR-111 has the
                                // CPE say so at once with BINDING-CHANGE.
                                info!(%addr, "STUN: UDP connection-request address");
                                mapped = Some(addr);
                                binding_change = true;
                                next_send = Instant::now();
                                let nat_detected = local != Some(addr);
                                if trigger.send(Trigger::StunMapped { addr, nat_detected }).await.is_err() {
                                    return;
                                }
                            }
                        }
                        BindingResponse::Error { code: 401, .. } if !sign => {
                            // The server wants MESSAGE-INTEGRITY.
                            sign = true;
                            next_send = Instant::now();
                        }
                        other => debug!(response = ?other, "STUN: unexpected answer"),
                    }
                    continue;
                }
                if credentials.is_silent() {
                    return;
                }
                let (username, password) = credentials.get();
                let verdict = if username.is_empty() {
                    // No credentials: like the HTTP listener, no auth (the
                    // replay rule still holds).
                    udp_cr::UdpConnectionRequest::parse(data).and_then(|r| replay.admit(&r).map(|()| r))
                } else {
                    udp_cr::verify(data, &username, &password, &mut replay)
                };
                match verdict {
                    Ok(r) => {
                        info!(%from, id = %r.id, "UDP connection request");
                        // Wait for room: the channel may hold a mapping
                        // change the device has not read yet, and this
                        // request has passed the replay rule, so its copies
                        // will not bring it back if it is dropped here.
                        if trigger.send(Trigger::ConnectionRequest).await.is_err() {
                            return;
                        }
                    }
                    // The ACS repeats each request: its copies are expected.
                    Err(e @ udp_cr::UdpCrError::Duplicate) => {
                        debug!(%from, error = %e, "UDP connection request ignored");
                    }
                    Err(e) => warn!(%from, error = %e, "UDP connection request ignored"),
                }
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use gigafibre_acs::stun::encode_success_response;
    use gigafibre_acs::stun::message::encode_error_response;

    use super::*;

    struct Harness {
        server: UdpSocket,
        cpe: SocketAddr,
        creds: CrCredentials,
        settings: StunSettings,
        rx: mpsc::Receiver<Trigger>,
        _stop: watch::Sender<bool>,
    }

    async fn start() -> Harness {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let cpe = socket.local_addr().unwrap();
        let creds = CrCredentials::new("SN42", "cr-secret");
        let settings = StunSettings::default();
        *settings.0.write().unwrap() = Settings {
            username: "SN42".into(),
            password: "stun-secret".into(),
            keepalive: Duration::from_secs(3600),
        };
        let (tx, rx) = mpsc::channel(4);
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(run(
            socket,
            StunOptions {
                server: server.local_addr().unwrap(),
                bind: "127.0.0.1:0".parse().unwrap(),
                keepalive: None,
            },
            settings.clone(),
            creds.clone(),
            tx,
            stop_rx,
        ));
        Harness {
            server,
            cpe,
            creds,
            settings,
            rx,
            _stop: stop_tx,
        }
    }

    async fn next_request(server: &UdpSocket) -> (BindingRequest, SocketAddr) {
        let mut buf = [0u8; 1500];
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), server.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        (BindingRequest::parse(&buf[..n]).unwrap(), from)
    }

    async fn trigger(rx: &mut mpsc::Receiver<Trigger>) -> Option<Trigger> {
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .ok()
            .flatten()
    }

    #[tokio::test]
    async fn keeps_a_binding_and_reports_it() {
        let mut h = start().await;
        // Unsigned first; a 401 makes the device sign.
        let (req, from) = next_request(&h.server).await;
        assert_eq!(from, h.cpe);
        assert_eq!(req.username.as_deref(), Some("SN42"));
        assert!(req.connection_request_binding && !req.binding_change);
        assert!(req.message_integrity.is_none());
        let e = encode_error_response(&req.transaction_id, 401, "Unauthorized", &[]);
        h.server.send_to(&e, from).await.unwrap();
        let (req, _) = next_request(&h.server).await;
        assert!(req.message_integrity.unwrap().verify("stun-secret"));
        // The mapped address goes to the device loop, then BINDING-CHANGE.
        let public: SocketAddr = "203.0.113.5:61000".parse().unwrap();
        let ok = encode_success_response(&req.transaction_id, public, None, false);
        h.server.send_to(&ok, from).await.unwrap();
        assert_eq!(
            trigger(&mut h.rx).await,
            Some(Trigger::StunMapped {
                addr: public,
                nat_detected: true
            })
        );
        let (req, _) = next_request(&h.server).await;
        assert!(req.binding_change);
        assert!(h.settings.get().username == "SN42");
    }

    #[tokio::test]
    async fn udp_connection_requests_use_the_current_credentials() {
        let mut h = start().await;
        // As the ACS does: from the STUN server's socket.
        let sender = &h.server;
        let cr = |ts: u64, id: &str, pw: &str| {
            udp_cr::build(&h.cpe.to_string(), ts, id, "SN42", "cn1", pw)
        };
        // Signed with the right password: a session.
        sender
            .send_to(cr(100, "a", "cr-secret").as_bytes(), h.cpe)
            .await
            .unwrap();
        assert_eq!(trigger(&mut h.rx).await, Some(Trigger::ConnectionRequest));
        // Its repeated copy, a replay of it, an older one, a forgery: none.
        for m in [
            cr(100, "a", "cr-secret"),
            cr(99, "b", "cr-secret"),
            cr(101, "c", "wrong"),
        ] {
            sender.send_to(m.as_bytes(), h.cpe).await.unwrap();
            assert_eq!(trigger(&mut h.rx).await, None, "{m}");
        }
        // The ACS changed the password: the old one no longer works.
        h.creds.set("SN42", "new-secret");
        sender
            .send_to(cr(102, "d", "cr-secret").as_bytes(), h.cpe)
            .await
            .unwrap();
        assert_eq!(trigger(&mut h.rx).await, None);
        sender
            .send_to(cr(103, "e", "new-secret").as_bytes(), h.cpe)
            .await
            .unwrap();
        assert_eq!(trigger(&mut h.rx).await, Some(Trigger::ConnectionRequest));
        // From anywhere else too (the signature is what counts).
        let other = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        other
            .send_to(cr(104, "f", "new-secret").as_bytes(), h.cpe)
            .await
            .unwrap();
        assert_eq!(trigger(&mut h.rx).await, Some(Trigger::ConnectionRequest));
    }
}
