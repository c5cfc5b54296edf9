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

// The fuzz targets' own checks (`fuzz/checks/`), so a replayed corpus is
// held to exactly what the fuzzer held it to.
#[path = "../fuzz/checks/digest.rs"]
mod digest_check;
#[path = "../fuzz/checks/frappe.rs"]
mod frappe_check;
#[path = "../fuzz/checks/profile.rs"]
mod profile_check;
#[path = "../fuzz/checks/stun.rs"]
mod stun_check;

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
    let corpus = files(&fuzz_dir("corpus/stun"));
    assert!(corpus.len() >= 10, "fuzz/corpus/stun/ was emptied");
    replay_all(&corpus, stun_check::check);
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
    replay_all(&corpus_and_regressions("digest", 20), digest_check::check);
}

/// The `profile` target's corpus (`fuzz/corpus/profile/`: device-profile
/// TOML) through `Profiles::parse`, with the target's invariants: errors
/// name the file and say why; a profile that loads passes the loader's
/// validation (re-checked from its fields) and matches a device described
/// by its own patterns; parsing is deterministic.
#[test]
fn profile_corpus_replays_cleanly() {
    replay_all(&corpus_and_regressions("profile", 20), profile_check::check);
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
    replay_all(&corpus_and_regressions("frappe", 20), frappe_check::check);
}
