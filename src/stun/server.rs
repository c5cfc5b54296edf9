//! The built-in STUN server (TR-111 Part 2) and the UDP connection-request
//! sender: the I/O edge of [`crate::stun`].
//!
//! CPEs behind NAT send Binding Requests (USERNAME = STUNUsername,
//! CONNECTION-REQUEST-BINDING) from their connection-request port; the
//! server answers with the address it saw and remembers it per username in
//! [`StunBindings`]. [`send_udp_connection_request`] then reaches the CPE
//! there, from the same socket, because a NAT that lets the STUN server's
//! answers in lets that socket's other datagrams in too.
//!
//! Abuse limits: a datagram that is not a Binding Request is dropped and
//! counted, never answered; answers go to the datagram's source only (not
//! to a RESPONSE-ADDRESS), never to port 0, and are never more than 64
//! bytes longer than the request, so the server cannot be used to amplify
//! traffic towards a spoofed source.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::stun::message::{MAX_USERNAME_LEN, peek_transaction_id};
use crate::stun::{
    BindingRequest, StunError, encode_error_response, encode_success_response, udp_cr,
};

/// Bindings kept at most by default; beyond, the least recently seen go.
pub const DEFAULT_MAX_BINDINGS: usize = 1_000_000;
/// An answer is never longer than the request plus this.
pub const MAX_RESPONSE_GROWTH: usize = 64;
/// Copies of each UDP connection request. UDP is lossy and nothing answers
/// a UDP connection request, so TR-111 has the ACS repeat it; the copies
/// are identical (same ts and id), so the CPE acts on the first one that
/// arrives and ignores the others.
pub const UDP_CR_COPIES: u32 = 3;
/// Time between two copies: spread over a second, so a short burst of loss
/// (or a busy CPE) does not swallow them all, and the caller waits ~1 s.
pub const UDP_CR_SPACING: Duration = Duration::from_millis(500);
/// Receive buffer: larger datagrams arrive cut and are dropped as
/// malformed (a Binding Request is ~100 bytes).
const RECV_BUFFER: usize = 2048;

/// Where a CPE's connection-request port was last seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StunBinding {
    /// The public (mapped) address: where UDP connection requests go.
    pub addr: SocketAddr,
    /// Last Binding Request, ms since the Unix epoch.
    pub last_seen_ms: u64,
    /// When `addr` took its current value, ms since the Unix epoch.
    pub since_ms: u64,
}

/// Counters of the STUN server.
#[derive(Debug, Default)]
pub struct StunStats {
    /// Datagrams received.
    pub received: AtomicU64,
    /// Binding Success Responses sent.
    pub answered: AtomicU64,
    /// Datagrams dropped unanswered: not a Binding Request, malformed, from
    /// port 0, or an answer that would have been too large.
    pub dropped: AtomicU64,
    /// Requests refused with 401 (missing or wrong MESSAGE-INTEGRITY).
    pub unauthorized: AtomicU64,
    /// Requests refused with 420 (unknown comprehension-required attribute).
    pub unknown_attribute: AtomicU64,
    /// Known usernames seen at a new address.
    pub address_changes: AtomicU64,
    /// Bindings forgotten because the table was full.
    pub evicted: AtomicU64,
}

/// Finds the STUN password for a username (TR-111 STUNPassword), if the
/// ACS gave that device one: its requests must then be signed with it.
pub type PasswordLookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Username → binding, bounded (least recently seen evicted first).
pub struct StunBindings {
    inner: Mutex<Table>,
    capacity: usize,
    passwords: Option<Box<PasswordLookup>>,
    pub stats: StunStats,
}

#[derive(Default)]
struct Table {
    map: HashMap<Arc<str>, (StunBinding, u64)>,
    /// Update sequence → username: the first entry is the stalest.
    order: BTreeMap<u64, Arc<str>>,
    seq: u64,
}

impl StunBindings {
    /// A table of at most `capacity` bindings (at least one). Requests
    /// need no MESSAGE-INTEGRITY unless [`with_passwords`] says so.
    ///
    /// [`with_passwords`]: StunBindings::with_passwords
    pub fn new(capacity: usize) -> StunBindings {
        StunBindings {
            inner: Mutex::new(Table::default()),
            capacity: capacity.max(1),
            passwords: None,
            stats: StunStats::default(),
        }
    }

    /// Requests from usernames for which `lookup` returns a password must
    /// carry a MESSAGE-INTEGRITY made with it (else 401, and the binding
    /// is not recorded). Without it anyone can claim any username's
    /// binding (misdirecting its UDP connection requests, which stay
    /// signed and useless to whoever receives them).
    pub fn with_passwords(
        mut self,
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> StunBindings {
        self.passwords = Some(Box::new(lookup));
        self
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // The table stays consistent at every await-free step; a panic
        // elsewhere while holding the lock does not make it unusable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where `username`'s connection-request port was last seen.
    pub fn get(&self, username: &str) -> Option<StunBinding> {
        self.table().map.get(username).map(|(b, _)| *b)
    }

    pub fn len(&self) -> usize {
        self.table().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records that `username` was seen at `addr`; true if that is a new
    /// address for it (first sighting included).
    pub fn record(&self, username: &str, addr: SocketAddr, now_ms: u64) -> bool {
        let mut t = self.table();
        t.seq += 1;
        let seq = t.seq;
        if let Some((name, (old, old_seq))) =
            t.map.get_key_value(username).map(|(k, v)| (k.clone(), *v))
        {
            let changed = old.addr != addr;
            let binding = StunBinding {
                addr,
                last_seen_ms: now_ms,
                since_ms: if changed { now_ms } else { old.since_ms },
            };
            t.order.remove(&old_seq);
            t.order.insert(seq, name.clone());
            t.map.insert(name, (binding, seq));
            if changed {
                self.stats.address_changes.fetch_add(1, Ordering::Relaxed);
            }
            return changed;
        }
        while t.map.len() >= self.capacity {
            let Some((_, stale)) = t.order.pop_first() else {
                break;
            };
            t.map.remove(&stale);
            self.stats.evicted.fetch_add(1, Ordering::Relaxed);
        }
        let name: Arc<str> = Arc::from(username);
        t.order.insert(seq, name.clone());
        t.map.insert(
            name,
            (
                StunBinding {
                    addr,
                    last_seen_ms: now_ms,
                    since_ms: now_ms,
                },
                seq,
            ),
        );
        true
    }
}

impl std::fmt::Debug for StunBindings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StunBindings")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .field("authenticated", &self.passwords.is_some())
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// An IPv4 client of a dual-stack socket shows up as `::ffff:a.b.c.d`; its
/// MAPPED-ADDRESS (and the UDPConnectionRequestAddress it reports) must be
/// the IPv4 form.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// The answer to one datagram from `from`, if any (pure apart from the
/// table and counters, for tests).
pub fn handle(
    bindings: &StunBindings,
    packet: &[u8],
    from: SocketAddr,
    now_ms: u64,
) -> Option<Vec<u8>> {
    let stats = &bindings.stats;
    stats.received.fetch_add(1, Ordering::Relaxed);
    if from.port() == 0 {
        stats.dropped.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    let mapped = canonical(from);
    let response = match BindingRequest::parse(packet) {
        Ok(req) => answer(bindings, &req, mapped, now_ms),
        Err(StunError::UnknownComprehensionRequired(kind)) => {
            stats.unknown_attribute.fetch_add(1, Ordering::Relaxed);
            // parse got past the header, so the ID is there.
            peek_transaction_id(packet)
                .map(|tid| encode_error_response(&tid, 420, "Unknown Attribute", &[kind]))
        }
        Err(e) => {
            debug!(%from, error = %e, "STUN: dropped a datagram");
            None
        }
    };
    match response {
        Some(r) if r.len() <= packet.len() + MAX_RESPONSE_GROWTH => Some(r),
        _ => {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

fn answer(
    bindings: &StunBindings,
    req: &BindingRequest,
    mapped: SocketAddr,
    now_ms: u64,
) -> Option<Vec<u8>> {
    let stats = &bindings.stats;
    let password = match (&bindings.passwords, &req.username) {
        (Some(lookup), Some(u)) => lookup(u),
        _ => None,
    };
    if let Some(pw) = &password {
        if !req
            .message_integrity
            .as_ref()
            .is_some_and(|mi| mi.verify(pw))
        {
            stats.unauthorized.fetch_add(1, Ordering::Relaxed);
            // TR-111 CPEs answer a 401 by signing their next request.
            return Some(encode_error_response(
                &req.transaction_id,
                401,
                "Unauthorized",
                &[],
            ));
        }
    }
    // Only requests from the connection-request port (TR-111 marks them
    // with CONNECTION-REQUEST-BINDING) say where connection requests go;
    // others (e.g. NAT timeout discovery from a second port) are answered
    // but not recorded.
    if let (true, Some(u)) = (req.connection_request_binding, &req.username) {
        if !u.is_empty() && u.len() <= MAX_USERNAME_LEN && bindings.record(u, mapped, now_ms) {
            debug!(username = %u, addr = %mapped, binding_change = req.binding_change, "STUN: connection-request address");
        }
    }
    stats.answered.fetch_add(1, Ordering::Relaxed);
    Some(encode_success_response(
        &req.transaction_id,
        mapped,
        password.as_deref(),
        req.fingerprint,
    ))
}

/// Answers Binding Requests on `socket` until `shutdown` turns true (or
/// its sender goes away). The socket is shared with
/// [`send_udp_connection_request`].
pub async fn serve(
    socket: Arc<UdpSocket>,
    bindings: Arc<StunBindings>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; RECV_BUFFER];
    loop {
        if *shutdown.borrow() {
            return;
        }
        let received = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            changed = shutdown.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        let (n, from) = match received {
            Ok(r) => r,
            Err(e) => {
                // ICMP errors from earlier sends surface here on some
                // systems; they concern one peer, not the socket. Pause a
                // little so a persistent error cannot spin.
                debug!(error = %e, "STUN: receive error");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let packet = buf.get(..n).unwrap_or_default();
        if let Some(reply) = handle(&bindings, packet, from, now_ms()) {
            if let Err(e) = socket.send_to(&reply, from).await {
                debug!(%from, error = %e, "STUN: could not answer");
            }
        }
    }
}

fn random_hex(n: usize) -> String {
    use ring::rand::SecureRandom as _;
    let mut b = vec![0u8; n];
    // Failure is not realistic; the values only need to be unique-ish, and
    // `ts` already differs between requests.
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Sends a signed TR-111 UDP connection request to `to` (the CPE's
/// binding / UDPConnectionRequestAddress), [`UDP_CR_COPIES`] identical
/// copies [`UDP_CR_SPACING`] apart, from `socket` (the STUN server's).
/// `ts`: seconds since the Unix epoch. Fails only if no copy could be
/// sent. The password is used for the signature only, never logged.
pub async fn send_udp_connection_request(
    socket: &UdpSocket,
    to: SocketAddr,
    username: &str,
    password: &str,
    ts: u64,
) -> io::Result<()> {
    let to = canonical(to);
    let message = udp_cr::build(
        &to.to_string(),
        ts,
        &random_hex(8),
        username,
        &random_hex(8),
        password,
    );
    // An IPv6 (dual-stack) socket reaches IPv4 peers at their mapped form.
    let dest = match (socket.local_addr()?, to.ip()) {
        (SocketAddr::V6(_), IpAddr::V4(v4)) => {
            SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), to.port())
        }
        _ => to,
    };
    let mut sent = 0;
    let mut last_error = None;
    for i in 0..UDP_CR_COPIES {
        if i > 0 {
            tokio::time::sleep(UDP_CR_SPACING).await;
        }
        match socket.send_to(message.as_bytes(), dest).await {
            Ok(_) => sent += 1,
            Err(e) => {
                warn!(%to, copy = i + 1, error = %e, "UDP connection request copy not sent");
                last_error = Some(e);
            }
        }
    }
    match (sent, last_error) {
        (0, Some(e)) => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::stun::message::{TransactionId, attr};
    use crate::stun::{BindingResponse, ReplayGuard};

    fn req(username: &str) -> BindingRequest {
        BindingRequest {
            transaction_id: TransactionId::rfc5389([5; 12]),
            username: Some(username.into()),
            connection_request_binding: true,
            binding_change: false,
            message_integrity: None,
            fingerprint: false,
        }
    }

    fn mapped(bytes: &[u8]) -> SocketAddr {
        match BindingResponse::parse(bytes).unwrap() {
            BindingResponse::Success { mapped_address, .. } => mapped_address.unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn binding_requests_are_answered_and_recorded() {
        let b = StunBindings::new(10);
        let from: SocketAddr = "198.51.100.20:40001".parse().unwrap();
        let r = handle(&b, &req("SN1").encode(None), from, 1000).unwrap();
        assert_eq!(mapped(&r), from);
        assert_eq!(
            b.get("SN1"),
            Some(StunBinding {
                addr: from,
                last_seen_ms: 1000,
                since_ms: 1000
            })
        );
        // Same address later: last_seen moves, since stays.
        handle(&b, &req("SN1").encode(None), from, 2000).unwrap();
        assert_eq!(b.get("SN1").unwrap().since_ms, 1000);
        // New address (NAT rebinding).
        let moved: SocketAddr = "198.51.100.20:40999".parse().unwrap();
        let change = BindingRequest {
            binding_change: true,
            ..req("SN1")
        };
        handle(&b, &change.encode(None), moved, 3000).unwrap();
        assert_eq!(b.get("SN1").unwrap().addr, moved);
        assert_eq!(b.stats.address_changes.load(Ordering::Relaxed), 1);
        // No CONNECTION-REQUEST-BINDING: answered, not recorded.
        let plain = BindingRequest {
            connection_request_binding: false,
            ..req("SN2")
        };
        assert!(handle(&b, &plain.encode(None), from, 4000).is_some());
        assert_eq!(b.get("SN2"), None);
        assert_eq!(b.stats.answered.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn dual_stack_clients_get_their_ipv4_address() {
        let b = StunBindings::new(10);
        let from: SocketAddr = "[::ffff:192.0.2.8]:5000".parse().unwrap();
        let r = handle(&b, &req("SN1").encode(None), from, 1).unwrap();
        assert_eq!(mapped(&r), "192.0.2.8:5000".parse().unwrap());
        assert_eq!(
            b.get("SN1").unwrap().addr,
            "192.0.2.8:5000".parse().unwrap()
        );
        let v6: SocketAddr = "[2001:db8::5]:5000".parse().unwrap();
        assert_eq!(
            mapped(&handle(&b, &req("SN6").encode(None), v6, 1).unwrap()),
            v6
        );
    }

    #[test]
    fn garbage_port_zero_and_non_requests_are_dropped() {
        let b = StunBindings::new(10);
        let from: SocketAddr = "198.51.100.1:1000".parse().unwrap();
        assert_eq!(handle(&b, b"hello", from, 1), None);
        assert_eq!(handle(&b, &[0u8; 20], from, 1), None); // type 0x0000
        let resp = encode_success_response(&TransactionId::rfc5389([1; 12]), from, None, false);
        assert_eq!(handle(&b, &resp, from, 1), None);
        let zero: SocketAddr = "198.51.100.1:0".parse().unwrap();
        assert_eq!(handle(&b, &req("SN1").encode(None), zero, 1), None);
        assert_eq!(b.stats.dropped.load(Ordering::Relaxed), 4);
        assert_eq!(b.stats.received.load(Ordering::Relaxed), 4);
        assert!(b.is_empty());
    }

    #[test]
    fn answers_never_amplify() {
        // The smallest request (a bare header) from IPv6 gets the largest
        // unsigned answer.
        let b = StunBindings::new(10);
        let from: SocketAddr = "[2001:db8::1]:9".parse().unwrap();
        let mut bare = vec![0, 1, 0, 0];
        bare.extend_from_slice(&TransactionId::rfc5389([2; 12]).0);
        let r = handle(&b, &bare, from, 1).unwrap();
        assert!(r.len() <= bare.len() + MAX_RESPONSE_GROWTH, "{}", r.len());
        // 420 for an unknown comprehension-required attribute.
        let mut unknown = bare.clone();
        unknown.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        unknown[3] = 8;
        let r = handle(&b, &unknown, from, 1).unwrap();
        assert!(matches!(
            BindingResponse::parse(&r).unwrap(),
            BindingResponse::Error { code: 420, ref unknown_attributes, .. } if unknown_attributes == &[0x0024]
        ));
        assert!(r.len() <= unknown.len() + MAX_RESPONSE_GROWTH);
    }

    #[test]
    fn passwords_make_integrity_mandatory() {
        let b = StunBindings::new(10)
            .with_passwords(|u| (u == "SN1").then(|| "stun-secret".to_owned()));
        let from: SocketAddr = "198.51.100.1:1000".parse().unwrap();
        for unsigned in [req("SN1").encode(None), req("SN1").encode(Some("wrong"))] {
            let r = handle(&b, &unsigned, from, 1).unwrap();
            assert!(matches!(
                BindingResponse::parse(&r).unwrap(),
                BindingResponse::Error { code: 401, .. }
            ));
        }
        assert_eq!(b.get("SN1"), None);
        assert_eq!(b.stats.unauthorized.load(Ordering::Relaxed), 2);
        let r = handle(&b, &req("SN1").encode(Some("stun-secret")), from, 1).unwrap();
        assert_eq!(mapped(&r), from);
        // The answer is signed with the same key.
        let raw_has_mi = r
            .windows(2)
            .any(|w| w == attr::MESSAGE_INTEGRITY.to_be_bytes());
        assert!(raw_has_mi);
        assert_eq!(b.get("SN1").unwrap().addr, from);
        // Usernames without a password need no integrity.
        assert!(handle(&b, &req("SN2").encode(None), from, 1).is_some());
        assert!(!format!("{b:?}").contains("stun-secret"));
    }

    #[test]
    fn the_table_is_bounded_and_evicts_the_stalest() {
        let b = StunBindings::new(3);
        let a = |p: u16| SocketAddr::from(([192, 0, 2, 1], p));
        for (i, u) in ["A", "B", "C"].iter().enumerate() {
            b.record(u, a(1000 + i as u16), i as u64);
        }
        b.record("A", a(1000), 10); // A is fresh again; B is the stalest
        b.record("D", a(2000), 11);
        assert_eq!(b.len(), 3);
        assert_eq!(b.get("B"), None);
        assert!(b.get("A").is_some() && b.get("C").is_some() && b.get("D").is_some());
        assert_eq!(b.stats.evicted.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn serve_answers_and_the_sender_signs() {
        let server = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let server_addr = server.local_addr().unwrap();
        let bindings = Arc::new(StunBindings::new(100));
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(serve(server.clone(), bindings.clone(), stop_rx));

        let cpe = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let cpe_addr = cpe.local_addr().unwrap();
        cpe.send_to(b"garbage", server_addr).await.unwrap();
        cpe.send_to(&req("SN9").encode(None), server_addr)
            .await
            .unwrap();
        let mut buf = [0u8; 1500];
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), cpe.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(mapped(&buf[..n]), cpe_addr);
        assert_eq!(bindings.get("SN9").unwrap().addr, cpe_addr);
        assert_eq!(bindings.stats.dropped.load(Ordering::Relaxed), 1);

        tokio::time::pause();
        let sender = {
            let server = server.clone();
            tokio::spawn(async move {
                send_udp_connection_request(&server, cpe_addr, "SN9", "cr-pass", 1_700_000_000)
                    .await
            })
        };
        let mut guard = ReplayGuard::default();
        let mut accepted = 0;
        for _ in 0..UDP_CR_COPIES {
            let (n, from) = cpe.recv_from(&mut buf).await.unwrap();
            assert_eq!(from, server_addr, "sent from the STUN socket");
            let text = std::str::from_utf8(&buf[..n]).unwrap();
            assert!(
                text.starts_with(&format!("GET http://{cpe_addr}?ts=1700000000&id=")),
                "{text}"
            );
            assert!(!text.contains("cr-pass"));
            if udp_cr::verify(&buf[..n], "SN9", "cr-pass", &mut guard).is_ok() {
                accepted += 1;
            }
        }
        sender.await.unwrap().unwrap();
        assert_eq!(accepted, 1, "the copies are one request");
        tokio::time::resume();

        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }
}
