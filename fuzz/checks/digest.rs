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
//! Shared by the fuzz target (`fuzz/fuzz_targets/digest.rs`) and the corpus
//! replay in `tests/fuzz_corpus.rs`, so both hold inputs to the same rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use gigafibre_acs::config::{CpeAuthMode, DigestAlgorithm, Secret};
use gigafibre_acs::connreq::challenge::{Challenge, ChallengeError, digest_authorization, pick};
use gigafibre_acs::digest::{self, DigestInput, parse_params, strip_scheme};
use gigafibre_acs::server::auth::{AuthOutcome, CpeAuthenticator, DigestParams};

/// Longest `Display` of a `pick` error: the fixed texts plus 24 characters
/// taken from the input (`qop=` + 20).
const MAX_PICK_ERROR: usize = 120;

fn authenticator(mode: CpeAuthMode) -> CpeAuthenticator {
    let (mut config, _) =
        gigafibre_acs::config::load(None, &|_| None).expect("the default configuration loads");
    config.cpe_auth = mode;
    config.cpe_username = "cpe".into();
    config.cpe_password = Secret::new("s3cret");
    config.digest_algorithms = vec![
        DigestAlgorithm::Md5,
        DigestAlgorithm::Md5Sess,
        DigestAlgorithm::Sha256,
        DigestAlgorithm::Sha256Sess,
    ];
    CpeAuthenticator::new(&config)
}

fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn check_params(s: &str) {
    let Some(params) = parse_params(s) else {
        assert!(
            DigestParams::parse(s).is_none(),
            "DigestParams accepts what parse_params rejects: {s:?}"
        );
        return;
    };
    assert!(params.len() <= 32, "{} params", params.len());
    let mut total = 0;
    for (k, v) in &params {
        assert!(!k.is_empty() && k.len() <= 32, "key {k:?}");
        assert!(!k.contains('='), "key {k:?} holds `=`");
        assert!(!k.bytes().any(|b| b.is_ascii_uppercase()), "key {k:?}");
        assert!(v.len() <= 4096, "value of {} bytes", v.len());
        total += k.len() + v.len();
    }
    assert!(total <= s.len(), "{total} bytes out of {} in", s.len());

    let canonical = params
        .iter()
        .map(|(k, v)| format!("{k}={}", quoted(v)))
        .collect::<Vec<_>>()
        .join(", ");
    assert_eq!(
        parse_params(&canonical).as_ref(),
        Some(&params),
        "canonical form {canonical:?} of {s:?} reads differently"
    );

    if let Some(p) = DigestParams::parse(s) {
        let last = |key: &str| {
            params
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(Some(p.username.as_str()), last("username"));
        assert_eq!(Some(p.realm.as_str()), last("realm"));
        assert_eq!(Some(p.nonce.as_str()), last("nonce"));
        assert_eq!(Some(p.uri.as_str()), last("uri"));
        assert_eq!(Some(p.response.as_str()), last("response"));
        assert_eq!(p.algorithm.as_deref(), last("algorithm"));
        assert_eq!(p.qop.as_deref(), last("qop"));
        assert_eq!(p.nc.as_deref(), last("nc"));
        assert_eq!(p.cnonce.as_deref(), last("cnonce"));
    }
}

fn check_pick(s: &str) {
    match pick(s.split('\n')) {
        Ok(Challenge::Basic) => {}
        Ok(c) => {
            let Challenge::Digest {
                realm,
                nonce,
                opaque,
                algorithm,
                qop_auth,
            } = &c
            else {
                unreachable!("Basic is matched above")
            };
            let (algorithm, qop_auth) = (*algorithm, *qop_auth);
            assert!(realm.len() <= 4096 && nonce.len() <= 4096);
            assert!(opaque.as_ref().is_none_or(|o| o.len() <= 4096));
            let (user, uri, cnonce) = ("RCMG\"1\\", "/cr?x=1", "c0ffee");
            let header = digest_authorization(&c, user, "pw", uri, cnonce)
                .expect("a Digest challenge has an answer");
            let params = strip_scheme(&header, "Digest").expect("answer names its scheme");
            let p = DigestParams::parse(params)
                .unwrap_or_else(|| panic!("our answer {header:?} does not parse"));
            assert_eq!(p.username, user);
            assert_eq!(&p.realm, realm);
            assert_eq!(&p.nonce, nonce);
            assert_eq!(p.uri, uri);
            assert_eq!(
                p.algorithm.as_deref().and_then(DigestAlgorithm::parse),
                Some(algorithm)
            );
            let qop = qop_auth.then_some("auth");
            assert_eq!(p.qop.as_deref(), qop);
            if qop_auth {
                assert_eq!(p.nc.as_deref(), Some("00000001"));
                assert_eq!(p.cnonce.as_deref(), Some(cnonce));
            }
            let expected = digest::response(&DigestInput {
                algorithm,
                username: user,
                realm,
                password: "pw",
                method: "GET",
                uri,
                nonce,
                qop,
                nc: "00000001",
                cnonce,
            });
            assert_eq!(p.response, expected);
        }
        Err(e) => {
            if let ChallengeError::Unsupported(what) = &e {
                assert!(what.chars().count() <= 24, "{what:?}");
            }
            let text = e.to_string();
            assert!(text.chars().count() <= MAX_PICK_ERROR, "{text:?}");
        }
    }
}

fn check_server(s: &str) {
    static BASIC: OnceLock<CpeAuthenticator> = OnceLock::new();
    static DIGEST: OnceLock<CpeAuthenticator> = OnceLock::new();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let none = |_: &str| None;
    let basic = BASIC.get_or_init(|| authenticator(CpeAuthMode::Basic));
    if let AuthOutcome::Challenge { headers, reason } =
        basic.check("POST", "/", Some(s), &none, now)
    {
        assert!(!headers.is_empty() && !reason.is_empty());
    }
    let digest = DIGEST.get_or_init(|| authenticator(CpeAuthMode::Digest));
    match digest.check("POST", "/", Some(s), &none, now) {
        AuthOutcome::Allowed { .. } => panic!("a forged Digest header was let in: {s:?}"),
        AuthOutcome::Challenge { headers, reason } => {
            assert!(!headers.is_empty() && !reason.is_empty());
        }
    }
}

/// Checks one input against the invariants above; panics on a violation.
pub fn check(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let after_scheme = strip_scheme(&s, "Digest").unwrap_or(&s);
    check_params(after_scheme);
    check_pick(&s);
    check_server(&s);
}
