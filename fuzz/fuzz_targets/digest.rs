//! Fuzzes the HTTP authentication header parsers with arbitrary header
//! values (the bytes as lossy UTF-8): `digest::parse_params`, the ACS's
//! reading of a CPE's `Authorization` header (`DigestParams::parse`, and
//! all of `CpeAuthenticator::check` in Basic and Digest modes), and the
//! connection-request client's choice among a device's `WWW-Authenticate`
//! challenges (`challenge::pick`, the input split at `\n` into values).
//!
//! Invariants checked:
//! * nothing panics;
//! * `parse_params` output is bounded: at most 32 params, each key
//!   non-empty, at most 32 bytes, lower-case and without `=`, each value at
//!   most 4096 bytes, and keys plus values no longer than the input;
//! * a param list written back in canonical form (`k="v"`, `\`-escaped,
//!   `, `-separated) parses to the same list;
//! * `DigestParams::parse` accepts nothing `parse_params` rejects, and its
//!   fields are the (last) values of those params;
//! * a Digest challenge that `pick` chooses is answered by
//!   `digest_authorization` with a header that `DigestParams::parse` reads
//!   back field for field (username, realm, nonce, uri, algorithm, qop, nc,
//!   cnonce, response);
//! * `pick`'s error texts stay short (what a device sent is cut to 20
//!   characters);
//! * a Digest authenticator never lets in a header whose nonce it did not
//!   issue, and every 401 it answers carries a reason and a challenge.
//!
//! The checks live in `fuzz/checks/digest.rs`.
#![no_main]

#[path = "../checks/digest.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
