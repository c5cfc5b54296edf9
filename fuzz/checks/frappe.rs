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
//! Shared by the fuzz target (`fuzz/fuzz_targets/frappe.rs`) and the corpus
//! replay in `tests/fuzz_corpus.rs`, so both hold inputs to the same rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gigafibre_acs::config::Secret;
use gigafibre_acs::erpnext::{
    Equipment, ErpError, FrappeError, MAX_TEXT, clean_text, decode_document, decode_list,
    decode_password, parse_retry_after,
};

const OP: &str = "the lookup of Service Equipment EQ-00042";

fn check_text(what: &str, s: &str) {
    assert!(!s.is_empty(), "{what}: empty text kept");
    check_line(what, s);
}

fn check_line(what: &str, s: &str) {
    assert!(
        s.chars().count() <= MAX_TEXT,
        "{what}: {} chars",
        s.chars().count()
    );
    assert!(
        !s.chars().any(|c| c.is_whitespace() && c != ' ') && !s.contains("  ") && s.trim() == s,
        "{what}: whitespace not collapsed in {s:?}"
    );
}

fn check_error(e: &ErpError) {
    let ErpError::Protocol { reason } = e else {
        panic!("a 2xx answer gave {e:?}");
    };
    assert!(
        reason.starts_with(OP),
        "{reason:?} does not name the operation"
    );
    let n = e.to_string().chars().count();
    assert!(n <= OP.chars().count() + 160, "error of {n} chars: {e}");
}

fn check_equipment(e: &Equipment) {
    assert!(!e.name.trim().is_empty(), "blank name");
    for (k, v) in [
        ("customer", &e.customer),
        ("service_location", &e.service_location),
        ("equipment_type", &e.equipment_type),
        ("brand", &e.brand),
        ("model", &e.model),
        ("serial_number", &e.serial_number),
        ("mac_address", &e.mac_address),
        ("status", &e.status),
        ("wifi_ssid", &e.wifi_ssid),
        ("wifi_ssid_5g", &e.wifi_ssid_5g),
        ("sip_username", &e.sip_username),
        ("gpon_serial", &e.gpon_serial),
        ("cwmp_serial", &e.cwmp_serial),
        ("modified", &e.modified),
    ] {
        assert!(v.as_ref().is_none_or(|s| !s.trim().is_empty()), "{k} blank");
    }
}

fn outcome<T: std::fmt::Debug>(r: &Result<T, ErpError>) -> String {
    format!("{r:?}")
}

/// Checks one input against the invariants above; panics on a violation.
pub fn check(data: &[u8]) {
    let fe = FrappeError::decode(data);
    assert_eq!(fe, FrappeError::decode(data), "not deterministic");
    if let Some(t) = &fe.exc_type {
        check_text("exc_type", t);
    }
    for m in &fe.messages {
        check_text("message", m);
    }
    if let Some(t) = &fe.exception {
        check_text("exception", t);
    }
    if let Some(t) = &fe.text {
        check_text("text", t);
    }
    if let Some(h) = fe.human() {
        check_text("human()", &h);
    }
    let _ = fe.mentions("password not found");
    assert!(!fe.exc_type_or_status(502).is_empty());

    let s = String::from_utf8_lossy(data);
    check_line("clean_text", &clean_text(&s));

    let digits = s.trim();
    match parse_retry_after(&s) {
        Some(d) => {
            assert!(!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(d.as_secs(), digits.parse::<u64>().unwrap_or(u64::MAX));
            assert_eq!(d.subsec_nanos(), 0);
        }
        None => assert!(digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit())),
    }

    let doc = decode_document(OP, 200, data);
    match &doc {
        Ok(e) => check_equipment(e),
        Err(e) => check_error(e),
    }
    assert_eq!(outcome(&doc), outcome(&decode_document(OP, 200, data)));

    let list = decode_list(OP, 200, data);
    match &list {
        Ok(rows) => rows.iter().for_each(check_equipment),
        Err(e) => check_error(e),
    }
    assert_eq!(outcome(&list), outcome(&decode_list(OP, 200, data)));

    let password = decode_password(OP, data);
    match &password {
        Ok(Some(secret)) => {
            assert!(!secret.is_empty(), "an empty password is Some");
            assert_eq!(format!("{secret:?}"), format!("{:?}", Secret::new("x")));
        }
        Ok(None) => {}
        Err(e) => {
            let fixed = [
                format!("unexpected answer from ERPNext: {OP}: the answer is not JSON"),
                format!("unexpected answer from ERPNext: {OP}: `message` is not text"),
            ];
            assert!(fixed.contains(&e.to_string()), "password error echoes: {e}");
        }
    }
    let again = decode_password(OP, data);
    assert_eq!(
        password
            .as_ref()
            .map(|p| p.as_ref().map(Secret::expose))
            .ok(),
        again.as_ref().map(|p| p.as_ref().map(Secret::expose)).ok()
    );
}
