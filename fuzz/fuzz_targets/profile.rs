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
//! The checks live in `fuzz/checks/profile.rs`.
#![no_main]

#[path = "../checks/profile.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
