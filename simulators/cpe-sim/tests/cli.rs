//! The `cpe-sim` command line. (Also makes `cargo test --workspace` build
//! the binary that the workspace's end-to-end tests drive.)

#![allow(clippy::unwrap_used)]

use std::process::Command;

fn cpe_sim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cpe-sim"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn lists_the_built_in_models() {
    let out = cpe_sim(&["models"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for m in [
        "deco",
        "tplg-ont",
        "rcmg-ont",
        "hgw-ont",
        "router-5g-first",
        "tr181-link-mac",
        "psk-only",
    ] {
        assert!(text.lines().any(|l| l.starts_with(m)), "{text}");
    }
    // A fixture for every model: one ERPNext record each.
    let out = cpe_sim(&["fixture", "--model", "all", "--count", "7"]);
    assert!(out.status.success());
    let fixture: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(fixture["Service Equipment"].as_array().unwrap().len(), 7);
}

#[test]
fn help_explains_fleet_mode() {
    let out = cpe_sim(&["fleet", "--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--acs",
        "--model",
        "--count",
        "--concurrency",
        "--inform-interval",
        "--duration",
        "--json",
    ] {
        assert!(text.contains(flag), "{flag} missing from:\n{text}");
    }
}

#[test]
fn an_unreachable_acs_is_retried_not_a_crash() {
    // Port 1 on loopback refuses connections: the device keeps retrying
    // until it is stopped; with a session limit it would never finish, so
    // bound it with a short timeout and check it is still alive and quiet.
    let mut child = Command::new(env!("CARGO_BIN_EXE_cpe-sim"))
        .args([
            "run",
            "--acs",
            "http://127.0.0.1:1/",
            "--sessions",
            "1",
            "--retry-base-ms",
            "50",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert!(
        child.try_wait().unwrap().is_none(),
        "cpe-sim exited instead of retrying"
    );
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect to the ACS"), "{err}");
    assert!(!err.contains("panicked"));
}
