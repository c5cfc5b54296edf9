//! Replays the fuzzing corpus (`fuzz/corpus/envelope/`) and the saved
//! fuzzer finds (`fuzz/regressions/envelope/`) through the envelope codec
//! under plain `cargo test`, no fuzzer needed: nothing may panic, and every
//! envelope that decodes must survive encode → decode unchanged, which is
//! the invariant the `envelope` fuzz target checks.
//!
//! Regression files named `known-*` reproduce open, reported bugs: for them
//! only "no panic" is enforced here, and the `#[ignore]`d
//! `known_bugs_round_trip` test shows whether they still fail the round
//! trip (`cargo test --test fuzz_corpus -- --ignored`). Once a bug is fixed,
//! drop the `known-` prefix so the file is held to the full check.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use gigafibre_acs::cwmp::Envelope;

/// Deleting or emptying the corpus must not make this test pass vacuously.
const MIN_CORPUS_FILES: usize = 40;

fn fuzz_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(sub)
}

/// The regular files of `dir`, sorted by name; empty if `dir` is absent.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn is_known_bug(path: &Path) -> bool {
    name(path).starts_with("known-")
}

fn clip(s: &str) -> String {
    const MAX: usize = 1500;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}… ({} bytes)", &s[..i], s.len()),
        None => s.to_owned(),
    }
}

/// Decodes `bytes` and, if that succeeds, encodes and decodes again.
/// Returns a description of what went wrong: a panic anywhere, or (when
/// `round_trip` is set) a re-decode that fails or differs.
fn check(bytes: &[u8], round_trip: bool) -> Result<(), String> {
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<(), String> {
        let Ok(env) = Envelope::decode(bytes) else {
            return Ok(());
        };
        let xml = env.encode();
        let again = Envelope::decode(xml.as_bytes());
        if !round_trip {
            return Ok(());
        }
        match again {
            Ok(again) if again == env => Ok(()),
            Ok(again) => Err(format!(
                "round trip changed the envelope\n  first: {}\n second: {}\nencoded: {}",
                clip(&format!("{env:?}")),
                clip(&format!("{again:?}")),
                clip(&xml)
            )),
            Err(e) => Err(format!(
                "our own encoding does not decode: {e}\n  first: {}\nencoded: {}",
                clip(&format!("{env:?}")),
                clip(&xml)
            )),
        }
    }));
    match outcome {
        Ok(result) => result,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("non-string panic payload");
            Err(format!("panicked: {msg}"))
        }
    }
}

/// Checks each file; returns the failures as (file, what went wrong).
fn replay(paths: &[PathBuf], round_trip: impl Fn(&Path) -> bool) -> Vec<(PathBuf, String)> {
    paths
        .iter()
        .filter_map(|p| {
            let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            check(&bytes, round_trip(p))
                .err()
                .map(|why| (p.clone(), why))
        })
        .collect()
}

fn report(failures: &[(PathBuf, String)]) -> String {
    failures
        .iter()
        .map(|(p, why)| format!("{}: {why}", p.display()))
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[test]
fn fuzz_corpus_and_regressions_replay_cleanly() {
    let corpus = files(&fuzz_dir("corpus/envelope"));
    assert!(
        corpus.len() >= MIN_CORPUS_FILES,
        "fuzz/corpus/envelope/ holds {} files, expected at least {MIN_CORPUS_FILES}: \
         was the corpus deleted?",
        corpus.len()
    );
    let regressions = files(&fuzz_dir("regressions/envelope"));

    let mut failures = replay(&corpus, |_| true);
    failures.extend(replay(&regressions, |p| !is_known_bug(p)));
    assert!(
        failures.is_empty(),
        "{} of {} inputs failed:\n\n{}",
        failures.len(),
        corpus.len() + regressions.len(),
        report(&failures)
    );
}

/// The open bugs that the `known-*` regression files reproduce: fails until
/// they are fixed. Run with `--ignored`.
#[test]
#[ignore = "reproduces open, reported codec bugs (fuzz/regressions/envelope/known-*)"]
fn known_bugs_round_trip() {
    let known: Vec<PathBuf> = files(&fuzz_dir("regressions/envelope"))
        .into_iter()
        .filter(|p| is_known_bug(p))
        .collect();
    let failures = replay(&known, |_| true);
    let fixed: Vec<String> = known
        .iter()
        .filter(|p| !failures.iter().any(|(f, _)| f == *p))
        .map(|p| name(p))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} known-bug inputs still fail (fixed, so rename without `known-`: {:?}):\n\n{}",
        failures.len(),
        known.len(),
        fixed,
        report(&failures)
    );
}

/// The `stun` target's corpus (`fuzz/corpus/stun/`, binary datagrams)
/// through the TR-111 codecs and the STUN server's handler, with the
/// target's invariants: no panic, Binding Requests survive encode → parse,
/// no answer larger than the request plus 64 bytes.
#[test]
fn stun_corpus_replays_cleanly() {
    use gigafibre_acs::server::stun::{MAX_RESPONSE_GROWTH, StunBindings, handle};
    use gigafibre_acs::stun::{BindingRequest, BindingResponse, UdpConnectionRequest};

    let corpus = files(&fuzz_dir("corpus/stun"));
    assert!(corpus.len() >= 10, "fuzz/corpus/stun/ was emptied");
    let from = std::net::SocketAddr::from(([192, 0, 2, 1], 3478));
    for path in corpus {
        let data = std::fs::read(&path).unwrap();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            if let Ok(req) = BindingRequest::parse(&data) {
                let expected = BindingRequest {
                    message_integrity: None,
                    ..req
                };
                assert_eq!(
                    BindingRequest::parse(&expected.encode(None)).as_ref(),
                    Ok(&expected)
                );
            }
            let _ = BindingResponse::parse(&data);
            let _ = UdpConnectionRequest::parse(&data).map(|r| r.signature_matches("x"));
            let reply = handle(&StunBindings::new(4), &data, from, 0);
            assert!(reply.is_none_or(|r| r.len() <= data.len() + MAX_RESPONSE_GROWTH));
        }));
        assert!(outcome.is_ok(), "{} failed", path.display());
    }
}

/// The corpus and saved finds of one of the text-parser targets, in name
/// order, after asserting the corpus holds at least `min` files.
fn corpus_and_regressions(target: &str, min: usize) -> Vec<PathBuf> {
    let mut all = files(&fuzz_dir(&format!("corpus/{target}")));
    assert!(
        all.len() >= min,
        "fuzz/corpus/{target}/ holds {} files, expected at least {min}: was it emptied?",
        all.len()
    );
    all.extend(files(&fuzz_dir(&format!("regressions/{target}"))));
    all
}

/// Runs `check` on every file of `paths`, catching panics; fails with the
/// list of files that panicked or broke an invariant.
fn replay_all(paths: &[PathBuf], check: impl Fn(&[u8])) {
    let failures: Vec<(PathBuf, String)> = paths
        .iter()
        .filter_map(|p| {
            let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            catch_unwind(AssertUnwindSafe(|| check(&bytes)))
                .err()
                .map(|panic| {
                    let msg = panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| panic.downcast_ref::<&str>().copied())
                        .unwrap_or("non-string panic payload");
                    (p.clone(), clip(msg))
                })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} inputs failed:\n\n{}",
        failures.len(),
        paths.len(),
        report(&failures)
    );
}

/// The `digest` target's corpus (`fuzz/corpus/digest/`: Authorization and
/// WWW-Authenticate values) through the auth-param parser, the ACS's
/// Authorization parsing and checking, and the connection-request
/// client's challenge choice, with the target's invariants: bounded
/// params that survive a canonical rewrite, `DigestParams` made of those
/// params, a chosen Digest challenge answered with a header the ACS reads
/// back, short errors, no forged Digest header let in.
#[test]
fn digest_corpus_replays_cleanly() {
    use gigafibre_acs::config::{CpeAuthMode, DigestAlgorithm, Secret};
    use gigafibre_acs::connreq::challenge::{Challenge, digest_authorization, pick};
    use gigafibre_acs::digest::{DigestInput, parse_params, response, strip_scheme};
    use gigafibre_acs::server::auth::{AuthOutcome, CpeAuthenticator, DigestParams};
    use std::time::{Duration, SystemTime};

    let authenticator = |mode| {
        let (mut config, _) = gigafibre_acs::config::load(None, &|_| None).unwrap();
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
    };
    let (basic, digest) = (
        authenticator(CpeAuthMode::Basic),
        authenticator(CpeAuthMode::Digest),
    );
    let quoted = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);

    replay_all(&corpus_and_regressions("digest", 20), |data| {
        let s = String::from_utf8_lossy(data);
        let params_text = strip_scheme(&s, "Digest").unwrap_or(&s);
        match parse_params(params_text) {
            None => assert!(DigestParams::parse(params_text).is_none()),
            Some(params) => {
                assert!(params.len() <= 32);
                let mut total = 0;
                for (k, v) in &params {
                    assert!(!k.is_empty() && k.len() <= 32 && !k.contains('='), "{k:?}");
                    assert!(!k.bytes().any(|b| b.is_ascii_uppercase()), "{k:?}");
                    assert!(v.len() <= 4096);
                    total += k.len() + v.len();
                }
                assert!(total <= params_text.len());
                let canonical = params
                    .iter()
                    .map(|(k, v)| format!("{k}={}", quoted(v)))
                    .collect::<Vec<_>>()
                    .join(", ");
                assert_eq!(parse_params(&canonical).as_ref(), Some(&params));
                if let Some(p) = DigestParams::parse(params_text) {
                    let last = |key: &str| {
                        params
                            .iter()
                            .rev()
                            .find(|(k, _)| k == key)
                            .map(|(_, v)| v.clone())
                    };
                    assert_eq!(Some(p.username), last("username"));
                    assert_eq!(Some(p.realm), last("realm"));
                    assert_eq!(Some(p.nonce), last("nonce"));
                    assert_eq!(Some(p.uri), last("uri"));
                    assert_eq!(Some(p.response), last("response"));
                    assert_eq!(p.algorithm, last("algorithm"));
                    assert_eq!(p.qop, last("qop"));
                    assert_eq!(p.nc, last("nc"));
                    assert_eq!(p.cnonce, last("cnonce"));
                }
            }
        }

        match pick(s.split('\n')) {
            Ok(Challenge::Basic) => {}
            Ok(c) => {
                let Challenge::Digest {
                    realm,
                    nonce,
                    algorithm,
                    qop_auth,
                    ..
                } = &c
                else {
                    unreachable!()
                };
                let (user, uri, cnonce) = ("RCMG\"1\\", "/cr?x=1", "c0ffee");
                let header = digest_authorization(&c, user, "pw", uri, cnonce).unwrap();
                let p = DigestParams::parse(strip_scheme(&header, "Digest").unwrap())
                    .unwrap_or_else(|| panic!("our answer {header:?} does not parse"));
                assert_eq!(
                    (p.username.as_str(), &p.realm, &p.nonce, p.uri.as_str()),
                    (user, realm, nonce, uri)
                );
                assert_eq!(
                    p.algorithm.as_deref().and_then(DigestAlgorithm::parse),
                    Some(*algorithm)
                );
                let qop = qop_auth.then_some("auth");
                assert_eq!(p.qop.as_deref(), qop);
                let expected = response(&DigestInput {
                    algorithm: *algorithm,
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
            Err(e) => assert!(e.to_string().chars().count() <= 120, "{e}"),
        }

        let none = |_: &str| None;
        if let AuthOutcome::Challenge { headers, reason } =
            basic.check("POST", "/", Some(&s), &none, now)
        {
            assert!(!headers.is_empty() && !reason.is_empty());
        }
        match digest.check("POST", "/", Some(&s), &none, now) {
            AuthOutcome::Allowed { .. } => panic!("a forged Digest header was let in"),
            AuthOutcome::Challenge { headers, reason } => {
                assert!(!headers.is_empty() && !reason.is_empty());
            }
        }
    });
}

/// The `profile` target's corpus (`fuzz/corpus/profile/`: device-profile
/// TOML) through `Profiles::parse`, with the target's invariants: errors
/// name the file and say why; a profile that loads passes the loader's
/// validation (re-checked from its fields) and matches a device described
/// by its own patterns; parsing is deterministic.
#[test]
fn profile_corpus_replays_cleanly() {
    use gigafibre_acs::provision::profile::{DeviceFacts, ProfileError, Profiles};

    const FILE: &str = "fuzz-profile.toml";
    replay_all(&corpus_and_regressions("profile", 20), |data| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let first = Profiles::parse(FILE, text);
        match &first {
            Err(ProfileError::Invalid { file, reason }) => {
                assert_eq!(file, FILE);
                assert!(!reason.trim().is_empty());
            }
            Err(other) => panic!("parsing a text gave {other:?}"),
            Ok(p) => {
                assert!(!p.name.trim().is_empty());
                assert!(p.root == "Device." || p.root == "InternetGatewayDevice.");
                for (key, path) in p.paths() {
                    assert!(path.starts_with(&p.root), "{key} = {path:?}");
                    assert!(!path.contains(char::is_whitespace) && !path.contains(".."));
                }
                let mut bands = Vec::new();
                for w in &p.wifi {
                    assert!(matches!(w.band.as_str(), "2.4" | "5" | "6"));
                    assert!(!bands.contains(&w.band));
                    bands.push(w.band.clone());
                    assert!(p.writable(&w.ssid) && p.writable(&w.passphrase));
                }
                if let Some(s) = &p.sip {
                    assert!(s.auth_username.contains("{line}"));
                    assert!(s.auth_password.contains("{line}"));
                    assert_eq!(s.line_enable.is_some(), s.line_enable_value.is_some());
                }
                let m = &p.matches;
                let groups = [&m.manufacturer, &m.oui, &m.product_class, &m.model_name];
                assert!(
                    groups
                        .iter()
                        .all(|g| g.iter().all(|x| !x.trim().is_empty()))
                );
                let own = |g: &[String]| g.first().map(|x| x.replace('*', "")).unwrap_or_default();
                let facts = [
                    own(&m.manufacturer),
                    own(&m.oui),
                    own(&m.product_class),
                    own(&m.model_name),
                ];
                assert!(p.matches(&DeviceFacts {
                    manufacturer: &facts[0],
                    oui: &facts[1],
                    product_class: &facts[2],
                    model_name: &facts[3],
                    root: &p.root,
                }));
            }
        }
        if let Err(e) = &first {
            assert!(e.to_string().contains(FILE), "{e}");
        }
        let again = Profiles::parse(FILE, text);
        assert_eq!(format!("{first:?}"), format!("{again:?}"));
    });
}

/// The `frappe` target's corpus (`fuzz/corpus/frappe/`: Frappe error
/// bodies, HTML pages, list / document / get_password answers, Retry-After
/// values) through the ERPNext answer decoders, with the target's
/// invariants: kept texts at most `MAX_TEXT` characters on one collapsed
/// line, `Retry-After` read exactly for digits, short errors that name the
/// operation (none echoing a password answer), records without blank
/// fields, determinism.
#[test]
fn frappe_corpus_replays_cleanly() {
    use gigafibre_acs::config::Secret;
    use gigafibre_acs::erpnext::{
        Equipment, ErpError, FrappeError, MAX_TEXT, clean_text, decode_document, decode_list,
        decode_password, parse_retry_after,
    };

    const OP: &str = "the lookup of Service Equipment EQ-00042";
    let line = |s: &str| {
        assert!(s.chars().count() <= MAX_TEXT, "{s:?}");
        assert!(!s.chars().any(|c| c.is_whitespace() && c != ' '), "{s:?}");
        assert!(!s.contains("  ") && s.trim() == s, "{s:?}");
    };
    let kept = |s: &str| {
        assert!(!s.is_empty());
        line(s);
    };
    let error = |e: &ErpError| {
        let ErpError::Protocol { reason } = e else {
            panic!("a 2xx answer gave {e:?}")
        };
        assert!(reason.starts_with(OP), "{reason:?}");
        assert!(
            e.to_string().chars().count() <= OP.chars().count() + 160,
            "{e}"
        );
    };
    let record = |e: &Equipment| {
        assert!(!e.name.trim().is_empty());
        for v in [
            &e.customer,
            &e.service_location,
            &e.equipment_type,
            &e.brand,
            &e.model,
            &e.serial_number,
            &e.mac_address,
            &e.status,
            &e.wifi_ssid,
            &e.wifi_ssid_5g,
            &e.sip_username,
            &e.gpon_serial,
            &e.cwmp_serial,
            &e.modified,
        ] {
            assert!(v.as_ref().is_none_or(|s| !s.trim().is_empty()));
        }
    };

    replay_all(&corpus_and_regressions("frappe", 20), |data| {
        let fe = FrappeError::decode(data);
        assert_eq!(fe, FrappeError::decode(data));
        fe.exc_type.iter().for_each(|t| kept(t));
        fe.messages.iter().for_each(|t| kept(t));
        fe.exception.iter().for_each(|t| kept(t));
        fe.text.iter().for_each(|t| kept(t));
        if let Some(h) = fe.human() {
            kept(&h);
        }
        let s = String::from_utf8_lossy(data);
        line(&clean_text(&s));

        let digits = s.trim();
        let all_digits = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
        match parse_retry_after(&s) {
            Some(d) => {
                assert!(all_digits);
                assert_eq!(d.as_secs(), digits.parse::<u64>().unwrap_or(u64::MAX));
            }
            None => assert!(!all_digits),
        }

        let doc = decode_document(OP, 200, data);
        match &doc {
            Ok(e) => record(e),
            Err(e) => error(e),
        }
        assert_eq!(
            format!("{doc:?}"),
            format!("{:?}", decode_document(OP, 200, data))
        );
        let list = decode_list(OP, 200, data);
        match &list {
            Ok(rows) => rows.iter().for_each(record),
            Err(e) => error(e),
        }
        assert_eq!(
            format!("{list:?}"),
            format!("{:?}", decode_list(OP, 200, data))
        );
        let password = decode_password(OP, data);
        match &password {
            Ok(Some(secret)) => {
                assert!(!secret.is_empty());
                assert_eq!(format!("{secret:?}"), format!("{:?}", Secret::new("x")));
            }
            Ok(None) => {}
            Err(e) => assert!(
                [
                    format!("unexpected answer from ERPNext: {OP}: the answer is not JSON"),
                    format!("unexpected answer from ERPNext: {OP}: `message` is not text"),
                ]
                .contains(&e.to_string()),
                "password error echoes: {e}"
            ),
        }
        let again = decode_password(OP, data);
        assert_eq!(
            password
                .as_ref()
                .map(|p| p.as_ref().map(Secret::expose))
                .ok(),
            again.as_ref().map(|p| p.as_ref().map(Secret::expose)).ok()
        );
    });
}
