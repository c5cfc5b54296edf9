//! Fuzzes the CWMP envelope decoder with arbitrary request bodies.
//!
//! Invariants checked:
//! * `Envelope::decode` never panics, whatever the bytes, and neither do
//!   `encode` and the second `decode`;
//! * whatever `decode` accepts survives `encode` → `decode` unchanged.
#![no_main]

use gigafibre_acs::cwmp::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(env) = Envelope::decode(data) else {
        return;
    };
    let xml = env.encode();
    match Envelope::decode(xml.as_bytes()) {
        Ok(again) => assert!(
            again == env,
            "round trip changed the envelope\n first: {env:?}\nsecond: {again:?}\nencoded: {xml}"
        ),
        Err(e) => {
            panic!("re-decoding our own encoding failed: {e}\nfirst: {env:?}\nencoded: {xml}")
        }
    }
});
