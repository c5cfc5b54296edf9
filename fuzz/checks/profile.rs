//! Fuzzes the device-profile loader, `Profiles::parse(file, text)`, with
//! arbitrary UTF-8 text (inputs that are not UTF-8 are skipped: profiles
//! are read with `read_to_string`).
//!
//! Invariants checked:
//! * nothing panics;
//! * an `Err` is `Invalid` for the file it was given, with a non-blank
//!   reason, and its message names the file;
//! * a profile that parses passes the loader's validation, re-checked here
//!   from the public fields: a non-blank name, a `Device.` or
//!   `InternetGatewayDevice.` root, every path under the root and without
//!   whitespace or `..`, WiFi bands 2.4/5/6 at most once each and writable,
//!   SIP credential paths holding `{line}`, `line_enable` and
//!   `line_enable_value` together, no blank `match` pattern;
//! * a profile that parses matches a device described by its own `match`
//!   patterns (each first pattern with its `*` removed) and its root;
//! * parsing is deterministic.
//!
//! Shared by the fuzz target (`fuzz/fuzz_targets/profile.rs`) and the corpus
//! replay in `tests/fuzz_corpus.rs`, so both hold inputs to the same rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gigafibre_acs::provision::profile::{DeviceFacts, Profile, ProfileError, Profiles};

const FILE: &str = "fuzz-profile.toml";

fn check_valid(p: &Profile) {
    assert!(!p.name.trim().is_empty(), "blank name");
    assert!(
        p.root == "Device." || p.root == "InternetGatewayDevice.",
        "root {:?}",
        p.root
    );
    for (key, path) in p.paths() {
        assert!(
            path.starts_with(&p.root),
            "{key} = {path:?} outside the root"
        );
        assert!(
            !path.contains(char::is_whitespace) && !path.contains(".."),
            "{key} = {path:?} is not a path"
        );
    }
    let mut bands = Vec::new();
    for w in &p.wifi {
        assert!(
            matches!(w.band.as_str(), "2.4" | "5" | "6"),
            "band {:?}",
            w.band
        );
        assert!(!bands.contains(&w.band), "band {} twice", w.band);
        bands.push(w.band.clone());
        assert!(p.writable(&w.ssid));
        for secret in [&w.passphrase, &w.psk].into_iter().flatten() {
            assert!(p.writable(secret));
        }
    }
    if let Some(s) = &p.sip {
        assert!(s.auth_username.contains("{line}") && s.auth_password.contains("{line}"));
        assert_eq!(s.line_enable.is_some(), s.line_enable_value.is_some());
    }
    let m = &p.matches;
    for group in [&m.manufacturer, &m.oui, &m.product_class, &m.model_name] {
        assert!(group.iter().all(|pat| !pat.trim().is_empty()), "{group:?}");
    }
    let own = |group: &[String]| {
        group
            .first()
            .map(|pat| pat.replace('*', ""))
            .unwrap_or_default()
    };
    let (manufacturer, oui, product_class, model_name) = (
        own(&m.manufacturer),
        own(&m.oui),
        own(&m.product_class),
        own(&m.model_name),
    );
    let facts = DeviceFacts {
        manufacturer: &manufacturer,
        oui: &oui,
        product_class: &product_class,
        model_name: &model_name,
        root: &p.root,
    };
    assert!(
        p.matches(&facts),
        "does not match its own patterns: {facts:?}"
    );
}

/// Checks one input against the invariants above; panics on a violation.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let first = Profiles::parse(FILE, text);
    match &first {
        Ok(p) => check_valid(p),
        Err(e) => {
            match e {
                ProfileError::Invalid { file, reason } => {
                    assert_eq!(file, FILE);
                    assert!(!reason.trim().is_empty(), "blank reason");
                }
                other => panic!("parsing a text gave {other:?}"),
            }
            assert!(e.to_string().contains(FILE), "{e}");
        }
    }
    let again = Profiles::parse(FILE, text);
    assert_eq!(
        format!("{first:?}"),
        format!("{again:?}"),
        "not deterministic"
    );
}
