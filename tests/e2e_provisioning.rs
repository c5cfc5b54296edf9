//! Zero-touch provisioning end to end: the ACS, erpnext-sim and cpe-sim as
//! real processes on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const DECO_PASS: &str = "k7Hq2mZp9xWe";
const SIP_PASS: &str = "SipS3cret-4501";

fn customer(name: &str) -> Value {
    json!({"name": name, "customer_name": name, "customer_type": "Individual", "customer_group": "Résidentiel", "territory": "Québec"})
}

fn location(n: u32, customer: &str) -> Value {
    json!({"name": format!("LOC-{n:05}"), "customer": customer, "address_line": format!("{n} rue Principale"), "city": "Salaberry-de-Valleyfield", "province": "QC", "postal_code": "J6S 1A1", "status": "Active"})
}

/// A fixture: a Deco, an RCMG ONT, a TPLG ONT, an ambiguous pair and a bad
/// passphrase.
fn fixture() -> Value {
    let eq = vec![
        json!({"name": "EQ-00001", "customer": "Jean Tremblay", "service_location": "LOC-00001", "equipment_type": "Routeur", "brand": "TP-Link", "model": "Deco X20",
               "status": "En inventaire", "mac_address": "1c-61-b4-aa-00-11", "custom_wifi_ssid": "Gigafibre-Tremblay", "custom_wifi_password": DECO_PASS, "custom_wifi_enabled": 1}),
        json!({"name": "EQ-00002", "customer": "Jean Tremblay", "service_location": "LOC-00001", "equipment_type": "ONT", "brand": "Raisecom", "model": "HT803G-WS2",
               "status": "En inventaire", "serial_number": "52434D470000CAFE", "custom_sip_username": "14505552001", "custom_sip_password": SIP_PASS, "custom_sip_line": 1}),
        json!({"name": "EQ-00003", "customer": "Marie Gagnon", "service_location": "LOC-00002", "equipment_type": "ONT", "brand": "TP-Link", "model": "XX230v",
               "status": "En inventaire", "custom_gpon_serial": "TPLG00000ABC", "custom_sip_username": "14505552002", "custom_sip_password": SIP_PASS}),
        json!({"name": "EQ-00004", "customer": "Marie Gagnon", "service_location": "LOC-00002", "equipment_type": "Routeur", "brand": "TP-Link", "model": "Deco X20",
               "status": "En inventaire", "mac_address": "1C:61:B4:AA:00:22", "custom_wifi_ssid": "Gigafibre-Gagnon", "custom_wifi_password": "another-pass-1"}),
        json!({"name": "EQ-00005", "customer": "Luc Roy", "service_location": "LOC-00003", "equipment_type": "Routeur", "brand": "TP-Link", "model": "Deco X20",
               "status": "En inventaire", "mac_address": "1c61b4aa0022", "custom_wifi_ssid": "Gigafibre-Roy", "custom_wifi_password": "another-pass-2"}),
        json!({"name": "EQ-00006", "customer": "Luc Roy", "service_location": "LOC-00003", "equipment_type": "Routeur", "brand": "TP-Link", "model": "Deco X20",
               "status": "En inventaire", "mac_address": "1C61B4AA0033", "custom_wifi_ssid": "Gigafibre-Roy", "custom_wifi_password": "seven77"}),
    ];
    json!({
        "Customer": [customer("Jean Tremblay"), customer("Marie Gagnon"), customer("Luc Roy")],
        "Service Location": [location(1, "Jean Tremblay"), location(2, "Marie Gagnon"), location(3, "Luc Roy")],
        "Service Equipment": eq,
    })
}

/// The fixture `cpe-sim fixture` makes for a fleet, merged into `base`.
fn with_fleet(mut base: Value, model: &str, count: u32, prefix: &str) -> Value {
    let out = Command::new(workspace_bin("cpe-sim"))
        .args([
            "fixture",
            "--model",
            model,
            "--count",
            &count.to_string(),
            "--serial-prefix",
            prefix,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let fleet: Value = serde_json::from_slice(&out.stdout).unwrap();
    for doctype in ["Customer", "Service Location", "Service Equipment"] {
        let extra = fleet[doctype].as_array().unwrap().clone();
        base[doctype].as_array_mut().unwrap().extend(extra);
    }
    base
}

fn start(erp: &ErpSim, extra: &[(&str, &str)]) -> Acs {
    let env = erp.acs_env();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(&[
        ("ACS_PROVISIONING", "on"),
        ("ACS_ERPNEXT_CACHE_TTL_S", "0"),
        ("ACS_SIP_REGISTRAR", "sip.gigafibre.ca"),
        ("ACS_SIP_DOMAIN", "gigafibre.ca"),
        ("RUST_LOG", "debug"),
    ]);
    all.extend_from_slice(extra);
    Acs::start(&all)
}

fn cpe_sim(args: &[&str]) -> Output {
    Command::new(workspace_bin("cpe-sim"))
        .args(args)
        .output()
        .unwrap()
}

fn run_ok(args: &[&str]) {
    let out = cpe_sim(args);
    assert!(
        out.status.success(),
        "cpe-sim {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The simulated device's own copy of a parameter (its state file).
fn device_value(state_dir: &std::path::Path, serial: &str, path: &str) -> Option<String> {
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(state_dir.join(format!("{serial}.json"))).ok()?,
    )
    .ok()?;
    state["model"]["params"][path]["value"]
        .as_str()
        .map(str::to_owned)
}

fn provisioning(acs: &Acs, id: &str) -> Value {
    acs.api_get(&format!("/api/v1/devices/{}", encode_segment(id)))
        .1["provisioning"]
        .clone()
}

/// Waits for the write-back worker to mark a record active.
fn wait_actif(erp: &ErpSim, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let doc = erp.equipment(name);
        if doc["status"] == "Actif" {
            return doc;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never became Actif: {doc}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_deco_bootstraps_and_gets_its_wifi_from_erpnext() {
    let erp = ErpSim::start(&fixture());
    let acs = start(&erp, &[]);
    let url = format!("http://{}/", acs.cwmp);
    let state = tempfile::tempdir().unwrap();
    let sd = state.path().to_str().unwrap();
    run_ok(&[
        "run",
        "--acs",
        &url,
        "--model",
        "deco",
        "--serial",
        "DECO11",
        "--mac",
        "1C:61:B4:AA:00:11",
        "--state-dir",
        sd,
        "--sessions",
        "1",
    ]);

    let id = "1C61B4-Device2-DECO11";
    let p = provisioning(&acs, id);
    assert_eq!(p["status"], "provisioned", "{p}");
    assert_eq!(p["equipment"], "EQ-00001");
    assert_eq!(p["profile"], "tplink-deco");
    for path in ["Device.WiFi.SSID.1.SSID", "Device.WiFi.SSID.3.SSID"] {
        assert_eq!(
            device_value(state.path(), "DECO11", path).as_deref(),
            Some("Gigafibre-Tremblay"),
            "{path}"
        );
    }
    for path in [
        "Device.WiFi.AccessPoint.1.Security.KeyPassphrase",
        "Device.WiFi.AccessPoint.3.Security.KeyPassphrase",
    ] {
        assert_eq!(
            device_value(state.path(), "DECO11", path).as_deref(),
            Some(DECO_PASS),
            "{path}"
        );
    }
    // Backhaul SSIDs untouched.
    for n in 9..=12 {
        let v = device_value(
            state.path(),
            "DECO11",
            &format!("Device.WiFi.SSID.{n}.SSID"),
        )
        .unwrap();
        assert!(
            !v.starts_with("Gigafibre"),
            "backhaul SSID.{n} was overwritten: {v}"
        );
    }
    assert_eq!(
        device_value(
            state.path(),
            "DECO11",
            "Device.ManagementServer.PeriodicInformInterval"
        )
        .as_deref(),
        Some("300")
    );
    assert_eq!(
        device_value(
            state.path(),
            "DECO11",
            "Device.ManagementServer.ConnectionRequestUsername"
        )
        .as_deref(),
        Some("DECO11")
    );

    let doc = wait_actif(&erp, "EQ-00001");
    assert_eq!(doc["custom_cwmp_serial"], "DECO11");
    assert!(
        doc["custom_provisioned_at"]
            .as_str()
            .is_some_and(|t| t.len() >= 19),
        "{doc}"
    );
    assert_eq!(
        doc["custom_wifi_ssid"], "Gigafibre-Tremblay",
        "fields the ACS does not own are unchanged"
    );

    // A second boot with nothing changed sends no SetParameterValues.
    let out = cpe_sim(&[
        "run",
        "--acs",
        &url,
        "--model",
        "deco",
        "--serial",
        "DECO11",
        "--mac",
        "1C:61:B4:AA:00:11",
        "--state-dir",
        sd,
        "--sessions",
        "1",
    ]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("GetParameterValues") && !log.contains("SetParameterValues"),
        "{log}"
    );

    // A new passphrase in ERPNext reaches the device at its next session.
    let (status, _) = erp.call(
        "PUT",
        "/api/resource/Service%20Equipment/EQ-00001",
        Some(&json!({"custom_wifi_password": "Nouveau-mdp-2026"})),
    );
    assert_eq!(status, 200);
    run_ok(&[
        "run",
        "--acs",
        &url,
        "--model",
        "deco",
        "--serial",
        "DECO11",
        "--mac",
        "1C:61:B4:AA:00:11",
        "--state-dir",
        sd,
        "--sessions",
        "1",
    ]);
    assert_eq!(
        device_value(
            state.path(),
            "DECO11",
            "Device.WiFi.AccessPoint.1.Security.KeyPassphrase"
        )
        .as_deref(),
        Some("Nouveau-mdp-2026")
    );

    let logs = acs.logs();
    for secret in [DECO_PASS, "Nouveau-mdp-2026", &erp.secret] {
        assert!(!logs.contains(secret), "a secret reached the ACS log");
    }
}

#[test]
fn onts_found_by_gpon_serial_get_their_sip_account() {
    let erp = ErpSim::start(&fixture());
    let acs = start(&erp, &[]);
    let url = format!("http://{}/", acs.cwmp);
    let state = tempfile::tempdir().unwrap();
    let sd = state.path().to_str().unwrap();
    // The Raisecom reports its GPON serial in ASCII (SerialNumber); ERPNext has the hex form.
    run_ok(&[
        "run",
        "--acs",
        &url,
        "--model",
        "rcmg-ont",
        "--serial",
        "RCMG0000CAFE",
        "--gpon-sn",
        "RCMG0000CAFE",
        "--state-dir",
        sd,
        "--sessions",
        "1",
    ]);
    let p = provisioning(&acs, "000E5E-HT803G%2DWS2-RCMG0000CAFE");
    assert_eq!(p["status"], "provisioned", "{p}");
    assert_eq!(p["equipment"], "EQ-00002");
    let line = "InternetGatewayDevice.Services.VoiceService.1.VoiceProfile.1.Line.1.";
    assert_eq!(
        device_value(
            state.path(),
            "RCMG0000CAFE",
            &format!("{line}SIP.AuthUserName")
        )
        .as_deref(),
        Some("14505552001")
    );
    assert_eq!(
        device_value(
            state.path(),
            "RCMG0000CAFE",
            &format!("{line}SIP.AuthPassword")
        )
        .as_deref(),
        Some(SIP_PASS)
    );
    assert_eq!(
        device_value(state.path(), "RCMG0000CAFE", &format!("{line}SIP.URI")).as_deref(),
        Some("sip:14505552001@gigafibre.ca")
    );
    assert_eq!(
        device_value(
            state.path(),
            "RCMG0000CAFE",
            "InternetGatewayDevice.Services.VoiceService.1.VoiceProfile.1.SIP.RegistrarServer"
        )
        .as_deref(),
        Some("sip.gigafibre.ca")
    );
    assert_eq!(
        wait_actif(&erp, "EQ-00002")["custom_cwmp_serial"],
        "RCMG0000CAFE"
    );

    // The TP-Link ONT reports GponSn in hex (54504C47…); ERPNext has TPLG00000ABC.
    run_ok(&[
        "run",
        "--acs",
        &url,
        "--model",
        "tplg-ont",
        "--serial",
        "22275A7000001",
        "--gpon-sn",
        "TPLG00000ABC",
        "--state-dir",
        sd,
        "--sessions",
        "1",
    ]);
    let p = provisioning(&acs, "1C61B4-Device2-22275A7000001");
    assert_eq!(p["status"], "provisioned", "{p}");
    assert_eq!(p["equipment"], "EQ-00003");
    let xline = "Device.X_TP_Services.VoiceService.1.VoiceProfile.1.Line.1.";
    assert_eq!(
        device_value(
            state.path(),
            "22275A7000001",
            &format!("{xline}SIP.AuthUserName")
        )
        .as_deref(),
        Some("14505552002")
    );
    assert_eq!(
        wait_actif(&erp, "EQ-00003")["custom_cwmp_serial"],
        "22275A7000001"
    );
    assert!(!acs.logs().contains(SIP_PASS));
}

#[test]
fn unknown_ambiguous_and_invalid_devices_are_marked_not_provisioned() {
    let erp = ErpSim::start(&fixture());
    let acs = start(&erp, &[]);
    let url = format!("http://{}/", acs.cwmp);
    let state = tempfile::tempdir().unwrap();
    let sd = state.path().to_str().unwrap();
    for (serial, mac) in [
        ("UNKNOWN1", "1C:61:B4:AA:00:99"),
        ("AMBIG1", "1C:61:B4:AA:00:22"),
        ("BADPASS", "1C:61:B4:AA:00:33"),
    ] {
        run_ok(&[
            "run",
            "--acs",
            &url,
            "--model",
            "deco",
            "--serial",
            serial,
            "--mac",
            mac,
            "--state-dir",
            sd,
            "--sessions",
            "1",
        ]);
    }
    let p = provisioning(&acs, "1C61B4-Device2-UNKNOWN1");
    assert_eq!(p["status"], "unresolved", "{p}");
    assert!(
        p["reason"]
            .as_str()
            .is_some_and(|r| r.contains("1c61b4aa0099")),
        "{p}"
    );
    let p = provisioning(&acs, "1C61B4-Device2-AMBIG1");
    assert_eq!(p["status"], "ambiguous", "{p}");
    assert_eq!(p["candidates"], json!(["EQ-00004", "EQ-00005"]));
    let p = provisioning(&acs, "1C61B4-Device2-BADPASS");
    assert_eq!(p["status"], "fault", "{p}");
    let reason = p["reason"].as_str().unwrap_or_else(|| panic!("{p}"));
    assert!(
        reason.contains("custom_wifi_password")
            && reason.contains("8 to 63")
            && !reason.contains("seven77"),
        "{reason}"
    );
    // Untouched: the factory SSIDs are still there.
    // (A state file without a model means the factory model, unchanged.)
    for serial in ["UNKNOWN1", "AMBIG1", "BADPASS"] {
        if let Some(ssid) = device_value(state.path(), serial, "Device.WiFi.SSID.1.SSID") {
            assert!(!ssid.starts_with("Gigafibre"), "{serial} got {ssid}");
        }
    }
    let (_, faults) = acs.api_get("/api/v1/faults?device=1C61B4-Device2-BADPASS");
    assert!(
        faults["faults"][0]["message"]
            .as_str()
            .unwrap()
            .contains("custom_wifi_password")
    );
    // No write-back for any of them.
    std::thread::sleep(Duration::from_millis(1500));
    for name in ["EQ-00004", "EQ-00005", "EQ-00006"] {
        assert_eq!(erp.equipment(name)["status"], "En inventaire", "{name}");
    }
    assert!(!acs.logs().contains("seven77"));
}

#[test]
fn a_bootstrap_wave_during_an_erpnext_outage_is_provisioned_after_recovery() {
    let erp = ErpSim::start(&with_fleet(fixture(), "deco", 100, "WAVE"));
    let acs = start(
        &erp,
        &[
            ("ACS_ERPNEXT_BREAKER_COOLDOWN_S", "1"),
            ("ACS_ERPNEXT_TIMEOUT_MS", "500"),
            ("ACS_ERPNEXT_MAX_ATTEMPTS", "1"),
            ("RUST_LOG", "info"),
        ],
    );
    let url = format!("http://{}/", acs.cwmp);
    assert_eq!(erp.admin("/_admin/faults", &json!({"outage_s": 3})), 200);
    let started = Instant::now();
    let out = cpe_sim(&[
        "fleet",
        "--acs",
        &url,
        "--model",
        "deco",
        "--count",
        "100",
        "--concurrency",
        "25",
        "--inform-interval",
        "1",
        "--duration",
        "9",
        "--json",
        "--fail-on-error",
        "--serial-prefix",
        "WAVE",
    ]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Sessions stayed quick while ERPNext was down.
    assert!(report["p99_ms"].as_f64().unwrap() < 2500.0, "{report}");
    assert!(started.elapsed() < Duration::from_secs(30));
    let (_, list) = acs.api_get("/api/v1/devices?limit=1000");
    let devices = list["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 100);
    let mut not_done = Vec::new();
    for d in devices {
        let p = provisioning(&acs, d["id"].as_str().unwrap());
        if p["status"] != "provisioned" {
            not_done.push(format!("{}: {p}", d["id"]));
        }
    }
    assert!(
        not_done.is_empty(),
        "{} devices not provisioned: {:?}",
        not_done.len(),
        &not_done[..not_done.len().min(3)]
    );
    for i in [0u32, 50, 99] {
        wait_actif(&erp, &format!("EQ-WAVE-{i:05}"));
    }
}

#[test]
fn the_rehearsal_provisions_a_mixed_fleet_and_updates_erpnext() {
    // README's rehearsal, at test scale: fixture from cpe-sim, ERPNext,
    // ACS, then a mixed fleet; every device ends provisioned and Actif.
    let empty = json!({"Customer": [], "Service Location": [], "Service Equipment": []});
    let erp = ErpSim::start(&with_fleet(empty, "mixed", 30, "REH"));
    let acs = start(&erp, &[("RUST_LOG", "info")]);
    let url = format!("http://{}/", acs.cwmp);
    let out = cpe_sim(&[
        "fleet",
        "--acs",
        &url,
        "--model",
        "mixed",
        "--count",
        "30",
        "--concurrency",
        "10",
        "--inform-interval",
        "2",
        "--duration",
        "3",
        "--json",
        "--fail-on-error",
        "--serial-prefix",
        "REH",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (_, list) = acs.api_get("/api/v1/devices?limit=100");
    let devices = list["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 30);
    for d in devices {
        let p = provisioning(&acs, d["id"].as_str().unwrap());
        assert_eq!(p["status"], "provisioned", "{}: {p}", d["id"]);
    }
    for i in 0..30u32 {
        let doc = wait_actif(&erp, &format!("EQ-REH-{i:05}"));
        assert!(doc["custom_cwmp_serial"].as_str().is_some(), "{doc}");
    }
}
