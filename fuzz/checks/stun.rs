//! Fuzzes the TR-111 codecs and the STUN server's per-datagram handler
//! with arbitrary datagrams.
//!
//! Invariants checked:
//! * nothing panics: `BindingRequest::parse`, `BindingResponse::parse`,
//!   MESSAGE-INTEGRITY verification, the UDP connection-request parser
//!   and `stun::server::handle`;
//! * a Binding Request that parses survives `encode` → `parse` unchanged
//!   (its MESSAGE-INTEGRITY aside, which `encode` does not copy);
//! * the server never answers with more than the request plus 64 bytes
//!   (no amplification), nor to port 0.
//!
//! Shared by the fuzz target (`fuzz/fuzz_targets/stun.rs`) and the corpus
//! replay in `tests/fuzz_corpus.rs`, so both hold inputs to the same rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gigafibre_acs::stun::server::{MAX_RESPONSE_GROWTH, StunBindings, handle};
use gigafibre_acs::stun::{BindingRequest, BindingResponse, UdpConnectionRequest};

/// Checks one input against the invariants above; panics on a violation.
pub fn check(data: &[u8]) {
    if let Ok(req) = BindingRequest::parse(data) {
        if let Some(mi) = &req.message_integrity {
            let _ = mi.verify("password");
        }
        let expected = BindingRequest {
            message_integrity: None,
            ..req.clone()
        };
        let encoded = expected.encode(None);
        match BindingRequest::parse(&encoded) {
            Ok(again) => assert!(
                again == expected,
                "round trip changed the request\n first: {expected:?}\nsecond: {again:?}"
            ),
            Err(e) => panic!("re-parsing our own encoding failed: {e}\nfirst: {expected:?}"),
        }
    }
    let _ = BindingResponse::parse(data);
    if let Ok(cr) = UdpConnectionRequest::parse(data) {
        let _ = cr.signature_matches("password");
    }
    let bindings = StunBindings::new(4);
    let from = std::net::SocketAddr::from(([192, 0, 2, 1], 3478));
    if let Some(reply) = handle(&bindings, data, from, 0) {
        assert!(
            reply.len() <= data.len() + MAX_RESPONSE_GROWTH,
            "amplification: {} bytes answered to {}",
            reply.len(),
            data.len()
        );
    }
    let port0 = std::net::SocketAddr::from(([192, 0, 2, 1], 0));
    assert!(handle(&bindings, data, port0, 0).is_none());
}
