//! `gigafibre-acs migrate legacy-wifi|legacy-voip|legacy-radius`: the real
//! binary against erpnext-sim, with the kind of data the old provisioning
//! system exported (MACs and GPON serials in every spelling, duplicate rows,
//! broken values, renamed columns, CRLF and a byte-order mark).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{Value, json};

/// Every password of the files and fixture, and the API secret: none may
/// appear on stdout or stderr, whatever the run.
const SECRETS: &[&str] = &[
    "acs-secret-0123",
    "wifi-pass-01",
    "wifi-pass-old2",
    "wifi-pass-new2",
    "wifi-pass-tieA",
    "wifi-pass-tieB",
    "legacy-pass-4",
    "existing-pass",
    "same-pass-5",
    "wifi-pass-amb6",
    "wifi-pass-09",
    "wifi-pass-0b",
    "wifi-pass-99",
    "pass with",
    "sip-pass-",
    "radius-pass-",
    "short",
];

fn se(name: &str, kind: &str, extra: Value) -> Value {
    let mut doc = json!({"name": name, "equipment_type": kind, "status": "Actif"});
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    doc
}

fn fixture() -> Value {
    let mut eq = vec![
        se(
            "EQ-W1",
            "Routeur",
            json!({"mac_address": "3C:84:6A:00:00:01"}),
        ),
        se("EQ-W2", "Routeur", json!({"mac_address": "3c846a000002"})),
        se(
            "EQ-W3",
            "Routeur",
            json!({"mac_address": "3c-84-6a-00-00-03"}),
        ),
        se(
            "EQ-W4",
            "Routeur",
            json!({"mac_address": "3C-84-6A-00-00-04", "custom_wifi_ssid": "Existing",
                   "custom_wifi_password": "existing-pass"}),
        ),
        se(
            "EQ-W5",
            "Routeur",
            json!({"mac_address": "3c846a000005", "custom_wifi_ssid": "Same-5",
                   "custom_wifi_password": "same-pass-5"}),
        ),
        se(
            "EQ-W6",
            "Routeur",
            json!({"mac_address": "3c:84:6a:00:00:06"}),
        ),
        se(
            "EQ-W7",
            "Routeur",
            json!({"mac_address": "3C846A000006", "status": "Retourné"}),
        ),
        se("EQ-W10", "Routeur", json!({"mac_address": "3c846a00000a"})),
        se("EQ-V1", "ONT", json!({"serial_number": "RCMG1A2B3C4D"})),
        se("EQ-V2", "ONT", json!({"serial_number": "52434D4700000002"})),
        se(
            "EQ-V3",
            "ONT",
            json!({"serial_number": "22A1009999", "custom_gpon_serial": "TPLG00000003"}),
        ),
        se(
            "EQ-V4",
            "ONT",
            json!({"serial_number": "RCMG00000004", "custom_sip_username": "14505550004",
                   "custom_sip_password": "sip-pass-0004", "custom_sip_line": 1}),
        ),
        se("EQ-V5", "ONT", json!({"serial_number": "RCMG00000005"})),
        se("EQ-V6", "ONT", json!({"serial_number": "52434D4700000005"})),
    ];
    // More records than one page of the listing (500), so that paging is
    // exercised: they match nothing.
    for i in 0..520 {
        eq.push(se(
            &format!("EQ-F{i:04}"),
            "ONT",
            json!({"serial_number": format!("ZZZZ{i:08X}")}),
        ));
    }
    json!({"Service Equipment": eq})
}

/// Renamed columns (`--map`), a byte-order mark and CRLF, as a spreadsheet
/// saves them. Lines are numbered from the header (line 1).
const WIFI_MAP: &str =
    "serial=MAC,ssid=Nom réseau,password=Clé,ssid_5g=SSID 5GHz,updated_at=Modifié";
fn wifi_csv() -> String {
    let long = "S".repeat(33);
    let lines = [
        "MAC,Nom réseau,Clé,SSID 5GHz,Modifié".to_string(),
        "3c-84-6a-00-00-01,Gigafibre-Un,wifi-pass-01,,2024-05-01".into(),
        "3C:84:6A:00:00:02,Old-2,wifi-pass-old2,,2024-01-01 08:00:00".into(),
        "3c84.6a00.0002,New-2,wifi-pass-new2,New-2-5G,2024-06-01T10:00:00Z".into(),
        "3C846A000003,Tie-A,wifi-pass-tieA,,2024-03-01 12:00:00".into(),
        "3c:84:6a:00:00:03,Tie-B,wifi-pass-tieB,,2024-03-01T12:00:00Z".into(),
        "3C-84-6A-00-00-04,Legacy-4,legacy-pass-4,,".into(),
        "3c846a000005,Same-5,same-pass-5,,".into(),
        "3c:84:6a:00:00:06,Amb-6,wifi-pass-amb6,,".into(),
        "3c:84:6a:00:00:08,Short-8,short,,".into(),
        format!("3c:84:6a:00:00:09,{long},wifi-pass-09,,"),
        "3c:84:6a:00:00:0a,Ok-10,\"pass with \"\"quote\"\", comma\",,".into(),
        "3c:84:6a:99:99:99,Unknown,wifi-pass-99,,".into(),
        format!("3c:84:6a:00:00:0b,Bad-5g,wifi-pass-0b,{long},"),
    ];
    format!("\u{feff}{}\r\n", lines.join("\r\n"))
}

const VOIP_CSV: &str = "serial,sip_username,sip_password,line,updated_at
52434D471A2B3C4D,14505550001,sip-pass-0001,2,
RCMG00000002,14505550002,sip-pass-0002,,
54504C4700000003,14505550003,sip-pass-0003,1,2024-01-01
RCMG00000004,14505550004,sip-pass-0004,1,
RCMG00000005,14505550005,sip-pass-0005,1,
RCMG0000FFFF,14505559999,sip-pass-ffff,1,
RCMG00000007,14505550007,sip-pass-0007,0,
RCMG00000008,14505550008,sip-pass-0008,abc,
RCMG00000009,,sip-pass-0009,1,
";

const RADIUS_CSV: &str = "serial,radius_user,radius_password
rcmg1a2b3c4d,pppoe-0001,radius-pass-0001
3C846A000001,pppoe-w1,radius-pass-w1
";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", self.stdout, self.stderr))
    }
}

/// `gigafibre-acs migrate ARGS` with only the ERPNext settings of `erp`
/// (none without), debug logs on, patient retries. Fails the test if a
/// secret shows.
fn migrate(erp: Option<&ErpSim>, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gigafibre-acs"));
    cmd.arg("migrate")
        .args(args)
        .env_clear()
        .env("RUST_LOG", "debug")
        .env("ACS_ERPNEXT_MAX_ATTEMPTS", "8")
        .env("ACS_ERPNEXT_BREAKER_FAILURES", "50");
    if let Some(erp) = erp {
        for (k, v) in erp.acs_env() {
            cmd.env(k, v);
        }
    }
    let out = cmd.output().unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    for s in SECRETS {
        assert!(
            !run.stdout.contains(s) && !run.stderr.contains(s),
            "`{s}` printed by {args:?}:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
    run
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn password(erp: &ErpSim, name: &str, field: &str) -> Option<String> {
    let (status, v) = erp.call(
        "GET",
        &format!(
            "/api/method/frappe.client.get_password?doctype=Service%20Equipment&name={name}&fieldname={field}"
        ),
        None,
    );
    (status == 200).then(|| v["message"].as_str().unwrap().to_owned())
}

fn puts(erp: &ErpSim) -> u64 {
    let (_, stats) = erp.call("GET", "/_admin/stats", None);
    stats["by_route"]["PUT /api/resource/Service Equipment/{name}"]["total"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn usage_and_column_errors_exit_2_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let wifi = write(dir.path(), "wifi.csv", &wifi_csv());
    let wifi = wifi.to_str().unwrap();
    // No ERPNext settings.
    let r = migrate(None, &["legacy-wifi", wifi]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("ERPNEXT_URL"), "{}", r.stderr);

    let erp = ErpSim::start(&json!({}));
    // Default columns: the renamed header lacks `serial`.
    let r = migrate(Some(&erp), &["legacy-wifi", wifi]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no column `serial`"), "{}", r.stderr);
    // An unknown field in --map.
    let r = migrate(Some(&erp), &["legacy-wifi", wifi, "--map", "sip_line=MAC"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("unknown field `sip_line`"),
        "{}",
        r.stderr
    );
    // A required column missing.
    let radius = write(dir.path(), "r.csv", "serial,radius_user\nRCMG1A2B3C4D,u\n");
    let r = migrate(Some(&erp), &["legacy-radius", radius.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("`radius_password`"), "{}", r.stderr);
    // An unreadable file.
    let r = migrate(Some(&erp), &["legacy-voip", "/nonexistent/voip.csv"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("/nonexistent/voip.csv"), "{}", r.stderr);
    assert_eq!(puts(&erp), 0);
}

#[test]
fn legacy_tables_are_imported_once_and_only_where_they_fit() {
    let erp = ErpSim::start(&fixture());
    let dir = tempfile::tempdir().unwrap();
    let wifi = write(dir.path(), "wifi.csv", &wifi_csv());
    let wifi = wifi.to_str().unwrap();

    // Dry run: the full report, nothing written.
    let r = migrate(
        Some(&erp),
        &["legacy-wifi", wifi, "--map", WIFI_MAP, "--json"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let expected = json!({
        "rows": 13, "devices": 11, "matched": 6,
        "unmatched": ["3c:84:6a:99:99:99"],
        "ambiguous": [{"serial": "3c:84:6a:00:00:06", "candidates": ["EQ-W6", "EQ-W7"]}],
        "invalid": [
            {"row": 10, "reason": "password is not a WPA passphrase (8 to 63 printable ASCII characters)"},
            {"row": 11, "reason": "ssid is longer than 32 bytes"},
            {"row": 14, "reason": "ssid_5g is longer than 32 bytes"},
        ],
        "unchanged": 2,
        "conflicts": [
            {"serial": "3C-84-6A-00-00-04", "equipment": "EQ-W4", "field": "custom_wifi_ssid"},
            {"serial": "3C-84-6A-00-00-04", "equipment": "EQ-W4", "field": "custom_wifi_password"},
        ],
        "written": 9, "dry_run": true,
    });
    assert_eq!(r.json(), expected);
    assert_eq!(puts(&erp), 0);
    assert!(erp.equipment("EQ-W1").get("custom_wifi_ssid").is_none());

    // --apply through a 503 outage, a 429 and a 500: retried.
    erp.call("DELETE", "/_admin/stats", None);
    let faults = json!({"outage_s": 0.1, "outage_mode": "503", "rate_limit_next": 1,
                        "retry_after_s": 0, "error_next": 1});
    assert_eq!(erp.admin("/_admin/faults", &faults), 200);
    let r = migrate(
        Some(&erp),
        &["legacy-wifi", wifi, "--map", WIFI_MAP, "--json", "--apply"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut applied = expected.clone();
    applied["dry_run"] = json!(false);
    assert_eq!(r.json(), applied);
    let (_, stats) = erp.call("GET", "/_admin/stats", None);
    for status in ["503", "429", "500"] {
        assert!(stats["by_status"][status].as_u64() >= Some(1), "{stats}");
    }
    assert_eq!(puts(&erp), 4, "one PUT per record: W1, W2, W3, W10");
    let w1 = erp.equipment("EQ-W1");
    assert_eq!(w1["custom_wifi_ssid"], "Gigafibre-Un");
    assert!(w1.get("custom_wifi_ssid_5g").is_none());
    assert_eq!(w1["status"], "Actif");
    assert_eq!(
        password(&erp, "EQ-W1", "custom_wifi_password").as_deref(),
        Some("wifi-pass-01")
    );
    let w2 = erp.equipment("EQ-W2");
    assert_eq!(
        (
            w2["custom_wifi_ssid"].as_str(),
            w2["custom_wifi_ssid_5g"].as_str()
        ),
        (Some("New-2"), Some("New-2-5G"))
    );
    assert_eq!(
        password(&erp, "EQ-W2", "custom_wifi_password").as_deref(),
        Some("wifi-pass-new2")
    );
    assert_eq!(erp.equipment("EQ-W3")["custom_wifi_ssid"], "Tie-B");
    assert_eq!(
        password(&erp, "EQ-W10", "custom_wifi_password").as_deref(),
        Some("pass with \"quote\", comma")
    );
    // The conflict was left alone, the ambiguous records untouched.
    assert_eq!(erp.equipment("EQ-W4")["custom_wifi_ssid"], "Existing");
    assert_eq!(
        password(&erp, "EQ-W4", "custom_wifi_password").as_deref(),
        Some("existing-pass")
    );
    assert!(erp.equipment("EQ-W6").get("custom_wifi_ssid").is_none());
    assert!(erp.equipment("EQ-W7").get("custom_wifi_ssid").is_none());

    // Again: nothing to write.
    let r = migrate(
        Some(&erp),
        &["legacy-wifi", wifi, "--map", WIFI_MAP, "--json", "--apply"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    assert_eq!(
        (j["written"].as_u64(), j["unchanged"].as_u64()),
        (Some(0), Some(11))
    );
    assert_eq!(j["conflicts"].as_array().unwrap().len(), 2);
    assert_eq!(puts(&erp), 4);

    // --overwrite replaces the conflicting fields (and still reports them).
    let r = migrate(
        Some(&erp),
        &[
            "legacy-wifi",
            wifi,
            "--map",
            WIFI_MAP,
            "--apply",
            "--overwrite",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("fields written   2"), "{}", r.stdout);
    assert!(r.stdout.contains("(overwritten)"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("line 10: password is not a WPA passphrase"),
        "{}",
        r.stdout
    );
    assert_eq!(erp.equipment("EQ-W4")["custom_wifi_ssid"], "Legacy-4");
    assert_eq!(
        password(&erp, "EQ-W4", "custom_wifi_password").as_deref(),
        Some("legacy-pass-4")
    );

    // VoIP: ONT serials hex or ASCII on either side, custom_gpon_serial as
    // the fallback, bad lines.
    let voip = write(dir.path(), "voip.csv", VOIP_CSV);
    let voip = voip.to_str().unwrap();
    let r = migrate(Some(&erp), &["legacy-voip", voip, "--json", "--apply"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.json(),
        json!({
            "rows": 9, "devices": 9, "matched": 4,
            "unmatched": ["RCMG0000FFFF"],
            "ambiguous": [{"serial": "RCMG00000005", "candidates": ["EQ-V5", "EQ-V6"]}],
            "invalid": [
                {"row": 8, "reason": "line is not a whole number of at least 1"},
                {"row": 9, "reason": "line is not a whole number of at least 1"},
                {"row": 10, "reason": "sip_username is empty"},
            ],
            "unchanged": 3, "conflicts": [], "written": 8, "dry_run": false,
        })
    );
    let v1 = erp.equipment("EQ-V1");
    assert_eq!(
        (
            v1["custom_sip_username"].as_str(),
            v1["custom_sip_line"].as_i64()
        ),
        (Some("14505550001"), Some(2))
    );
    assert_eq!(
        password(&erp, "EQ-V1", "custom_sip_password").as_deref(),
        Some("sip-pass-0001")
    );
    assert_eq!(erp.equipment("EQ-V2")["custom_sip_username"], "14505550002");
    assert_eq!(
        password(&erp, "EQ-V3", "custom_sip_password").as_deref(),
        Some("sip-pass-0003")
    );
    let r = migrate(Some(&erp), &["legacy-voip", voip, "--json", "--apply"]);
    assert_eq!(r.json()["written"], 0);

    // RADIUS: by serial_number, else by MAC.
    let radius = write(dir.path(), "radius.csv", RADIUS_CSV);
    let r = migrate(
        Some(&erp),
        &["legacy-radius", radius.to_str().unwrap(), "--apply"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("fields written   4"), "{}", r.stdout);
    assert_eq!(erp.equipment("EQ-V1")["custom_radius_user"], "pppoe-0001");
    assert_eq!(erp.equipment("EQ-W1")["custom_radius_user"], "pppoe-w1");
    assert_eq!(
        password(&erp, "EQ-W1", "custom_radius_password").as_deref(),
        Some("radius-pass-w1")
    );
}

#[test]
fn an_erpnext_failure_mid_run_exits_1_with_what_was_written() {
    let erp = ErpSim::start(&fixture());
    let dir = tempfile::tempdir().unwrap();
    let voip = write(dir.path(), "voip.csv", VOIP_CSV);
    // A long outage: the listing cannot be read.
    assert_eq!(erp.admin("/_admin/faults", &json!({"outage_s": 60})), 200);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gigafibre-acs"));
    cmd.args([
        "migrate",
        "legacy-voip",
        voip.to_str().unwrap(),
        "--apply",
        "--json",
    ])
    .env_clear()
    .env("ACS_ERPNEXT_MAX_ATTEMPTS", "2");
    for (k, v) in erp.acs_env() {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ERPNext failed"), "{stderr}");
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (j["written"].as_u64(), j["rows"].as_u64()),
        (Some(0), Some(9))
    );
    assert!(!stderr.contains("acs-secret-0123"));
}
