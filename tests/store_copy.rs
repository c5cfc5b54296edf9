//! `gigafibre-acs store copy`: a data dir moved from sled to redb with the
//! real binary, then served by an ACS on redb; a running ACS's store is
//! refused; bad specs are usage errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{Acs, device_id, inform_xml};

fn store_copy(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gigafibre-acs"))
        .args(["store", "copy"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_sled_data_dir_is_copied_to_redb_and_served_from_there() {
    let dir = tempfile::tempdir().unwrap();
    let (sled_dir, redb_dir) = (dir.path().join("sled"), dir.path().join("redb"));
    let mut acs = Acs::start_in(&sled_dir, &[]);
    for serial in ["COPY01", "COPY02", "COPY03"] {
        let mut cpe = acs.cpe();
        let r = cpe.post_str(&inform_xml("soapenv", "1-0", "1", serial, &["0 BOOTSTRAP"]));
        assert_eq!(r.status, 200);
        assert_eq!(cpe.empty().status, 204);
    }
    // The running ACS holds the store: refused, saying so.
    let from = format!("sled:{}", sled_dir.display());
    let to = format!("redb:{}", redb_dir.display());
    let (code, _, err) = store_copy(&["--from", &from, "--to", &to]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("in use"), "{err}");
    acs.terminate();

    let (code, out, err) = store_copy(&["--from", &from, "--to", &to, "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["tables"]["devices"], 3, "{report}");
    // Copying again into the now full destination: refused.
    let (code, _, err) = store_copy(&["--from", &from, "--to", &to]);
    assert_eq!(code, 1);
    assert!(err.contains("not empty"), "{err}");

    let acs = Acs::start_in(&redb_dir, &[("ACS_STORE_BACKEND", "redb")]);
    let (status, d) = acs.api_get(&format!("/api/v1/devices/{}", device_id("COPY02")));
    assert_eq!(status, 200, "{d}");
    let (_, list) = acs.api_get("/api/v1/devices?q=COPY0");
    assert_eq!(list["devices"].as_array().map(Vec::len), Some(3), "{list}");
}

#[test]
fn bad_specs_are_usage_errors_naming_them() {
    for (args, needle) in [
        (
            vec!["--from", "./data", "--to", "redb:/tmp/x"],
            "sled:DATA_DIR",
        ),
        (
            vec!["--from", "mongo:./data", "--to", "redb:/tmp/x"],
            "mongo",
        ),
        (
            vec!["--from", "sled:/tmp/same", "--to", "sled:/tmp/same"],
            "same store",
        ),
    ] {
        let (code, _, err) = store_copy(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
