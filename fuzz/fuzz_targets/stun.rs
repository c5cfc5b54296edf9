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
//! The checks live in `fuzz/checks/stun.rs`.
#![no_main]

#[path = "../checks/stun.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
