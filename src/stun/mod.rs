//! TR-111 Part 2 (devices behind NAT): a pure STUN codec and the signed UDP
//! connection request ([`message`], [`udp_cr`], no I/O), and the ACS's STUN
//! server with its bindings table and the UDP connection-request sender
//! ([`server`], the sockets; cpe-sim has the CPE side).
//!
//! How it fits together: a CPE behind a NAT sends STUN Binding Requests
//! (USERNAME = its `ManagementServer.STUNUsername`, with the TR-111
//! CONNECTION-REQUEST-BINDING attribute) from the UDP port on which it
//! listens for connection requests, often enough to keep the NAT binding
//! open. The STUN server answers with the address it saw (the NAT's public
//! side) and remembers it per username. To reach the CPE the ACS then sends
//! a signed `GET http://…?ts=…&id=…&un=…&cn=…&sig=… HTTP/1.1` datagram to
//! that address ([`udp_cr`]); the CPE checks the signature with its
//! connection-request credentials and opens a session.
//!
//! * [`message`]: Binding Request parsing (RFC 5389, and RFC 3489 "classic"
//!   requests, which many CPE STUN clients still send), Binding
//!   Success/Error Response building, MESSAGE-INTEGRITY.
//! * [`udp_cr`]: building, parsing and verifying the UDP connection request,
//!   with the CPE-side replay rule.

pub mod message;
pub mod server;
pub mod udp_cr;

pub use message::{
    BindingRequest, BindingResponse, MessageIntegrity, StunError, TransactionId,
    encode_error_response, encode_success_response,
};
pub use udp_cr::{ReplayGuard, UdpConnectionRequest, UdpCrError};
