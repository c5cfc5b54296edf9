//! Fuzzes the decoders of Frappe/ERPNext answers with arbitrary bodies:
//! `FrappeError::decode` (error bodies: JSON, HTML pages, anything),
//! `clean_text`, `parse_retry_after` (the bytes as lossy UTF-8), and the
//! decoders of 2xx answers the client calls on what it received:
//! `decode_document`, `decode_list` and `decode_password`.
//!
//! Invariants checked:
//! * nothing panics;
//! * every text `FrappeError::decode` keeps (`exc_type`, each message,
//!   `exception`, page `text`), `human()` and `clean_text` is at most
//!   `MAX_TEXT` (300) characters, one line with single spaces (no other
//!   whitespace, none leading or trailing), and a kept text is not empty;
//! * `parse_retry_after` gives a delay exactly for all-digit values
//!   (surrounding whitespace aside), that number of seconds or `u64::MAX`;
//! * a decoding error names the operation and echoes at most 80
//!   characters of the answer (its text is at most the operation plus 160
//!   characters); a `decode_password` error echoes nothing of it; a record
//!   has a non-blank name and no blank text field; a password is never
//!   empty and never shown by `Debug`;
//! * decoding is deterministic.
//!
//! The checks live in `fuzz/checks/frappe.rs`.
#![no_main]

#[path = "../checks/frappe.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
