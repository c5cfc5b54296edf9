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
