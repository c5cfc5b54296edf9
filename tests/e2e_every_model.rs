//! Every device model the repository has — cpe-sim's families (TP-Link, a
//! hand-built Raisecom, and the TR-098 / TR-181 families built from the BBF
//! data models) and the unmodified real exports in
//! `tests/data/device-models` — bootstraps against one ACS and one
//! erpnext-sim, and ends provisioned: every band's primary network carries
//! the ERPNext SSID and passphrase (a derived PSK where the device only has
//! a pre-shared key), voice lines carry the SIP account, the record turns
//! "Actif", ONTs show their optical power in dBm, with zero CPE faults and
//! at most 12 RPCs in the bootstrap session.
//!
//! The oracle is `tests/data/provisioning-expectations.toml`, written by
//! reading each model's CSV, not the ACS's code. The devices are cpe-sim
//! in its strict form: its Inform carries only the forced inform
//! parameters (no ModelName), any absent name fails a request with 9005,
//! partial paths are refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
struct Manifest {
    model: Vec<Expect>,
}

#[derive(Debug, Deserialize)]
struct Expect {
    model: Option<String>,
    file: Option<String>,
    erpnext_key: String,
    #[serde(default)]
    wifi: Vec<WifiExpect>,
    #[serde(default)]
    never_written: Vec<String>,
    #[serde(default)]
    sip_lines: Vec<String>,
    optical_rx_dbm: Option<f64>,
    mac: Option<String>,
    serial: Option<String>,
    gpon_sn: Option<String>,
    /// An export the manifest does not describe: checked without an
    /// oracle of its paths (see [`unlisted`]).
    #[serde(skip)]
    unlisted: Option<Unlisted>,
}

/// What the test knows of an export nobody described, read from the CSV
/// with rules that are not the ACS's.
#[derive(Debug, Default)]
struct Unlisted {
    /// Distinct `OperatingFrequencyBand` values of TR-181 radios.
    radio_bands: Vec<String>,
    /// `…SSID` parameters that are writable.
    ssid_paths: Vec<String>,
    /// `…AuthUserName` parameters of voice lines.
    sip_users: Vec<String>,
    /// Whether some optical receive-power field holds a non-zero reading.
    optical: bool,
}

#[derive(Debug, Deserialize)]
struct WifiExpect {
    band: String,
    ssid: String,
    passphrase: String,
    passphrase_kind: String,
    #[serde(default)]
    passphrase_equivalent: Vec<String>,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The exports to run besides the manifest's: every CSV in
/// `tests/data/device-models` (and in `$ACS_TEST_DEVICE_MODELS`, a folder
/// of other vendors' exports to re-check the ACS against) that the
/// manifest does not list.
fn unlisted(listed: &[String]) -> Vec<Expect> {
    let mut dirs = vec![repo().join("tests/data/device-models")];
    if let Some(d) = std::env::var_os("ACS_TEST_DEVICE_MODELS") {
        dirs.push(PathBuf::from(d));
    }
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "csv"))
            .collect();
        files.sort();
        for path in files {
            let shown = path
                .strip_prefix(repo())
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| path.display().to_string());
            if listed.contains(&shown) {
                continue;
            }
            out.push(describe(&path, shown));
        }
    }
    out
}

/// A MAC in any spelling, as `AA:BB:CC:DD:EE:FF`.
fn as_mac(v: &str) -> Option<String> {
    let hex: String = v
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect();
    (hex.len() == 12 && hex.chars().all(|c| c.is_ascii_hexdigit()) && hex != "000000000000").then(
        || {
            hex.to_ascii_uppercase()
                .as_bytes()
                .chunks(2)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join(":")
        },
    )
}

/// A GPON serial (4 letters + 8 hex, or that in 16 hex) in ASCII form.
fn as_gpon(v: &str) -> Option<String> {
    let v = v.trim();
    if v.len() == 12
        && v[..4].chars().all(|c| c.is_ascii_alphabetic())
        && v[4..].chars().all(|c| c.is_ascii_hexdigit())
    {
        return Some(v.to_ascii_uppercase());
    }
    if v.len() == 16 && v.chars().all(|c| c.is_ascii_hexdigit()) {
        let vendor: Vec<u8> = (0..4)
            .filter_map(|i| u8::from_str_radix(&v[i * 2..i * 2 + 2], 16).ok())
            .collect();
        if vendor.iter().all(u8::is_ascii_alphabetic) {
            return Some(format!(
                "{}{}",
                String::from_utf8_lossy(&vendor).to_ascii_uppercase(),
                v[8..].to_ascii_uppercase()
            ));
        }
    }
    None
}

/// What the test can say of an export by reading it: its MAC is the MAC
/// value it holds most often, its GPON serial a GPON-form value of a
/// serial-looking field, its bands its radios'.
fn describe(path: &std::path::Path, shown: String) -> Expect {
    let text = std::fs::read_to_string(path).unwrap();
    let (tree, values) =
        gigafibre_acs::provision::export::parse(&text).unwrap_or_else(|e| panic!("{shown}: {e}"));
    // (MAC, times seen), in path order; stations and hosts are not the
    // device.
    let mut macs: Vec<(String, usize)> = Vec::new();
    let mut gpon = None;
    let mut serial = None;
    let mut u = Unlisted::default();
    for (name, value) in &values {
        let leaf = name.rsplit('.').next().unwrap_or("");
        let station = [".AssociatedDevice.", ".Hosts.", ".STA.", ".Client."]
            .iter()
            .any(|t| name.contains(t));
        if (leaf.ends_with("MACAddress") || leaf == "BSSID") && !station {
            if let Some(m) = as_mac(value) {
                match macs.iter_mut().find(|(x, _)| *x == m) {
                    Some((_, n)) => *n += 1,
                    None => macs.push((m, 1)),
                }
            }
        }
        let l = leaf.to_ascii_lowercase();
        if gpon.is_none() && (l.contains("serial") || l.contains("gponsn")) {
            gpon = as_gpon(value);
        }
        if name.ends_with("DeviceInfo.SerialNumber") {
            serial = Some(value.clone());
        }
        if leaf == "OperatingFrequencyBand"
            && name.contains(".WiFi.Radio.")
            && !u.radio_bands.contains(value)
        {
            u.radio_bands.push(value.clone());
        }
        if leaf == "SSID" && tree.can_write(name) {
            u.ssid_paths.push(name.clone());
        }
        if leaf == "AuthUserName" && tree.can_write(name) {
            u.sip_users.push(name.clone());
        }
        let rx = matches!(leaf, "RXPower" | "RxPower" | "OpticalSignalLevel");
        if rx && value.trim().parse::<f64>().is_ok_and(|v| v != 0.0) {
            u.optical = true;
        }
    }
    // The most frequent, the first seen on a tie.
    let most = macs.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let mac = macs.into_iter().find(|(_, n)| *n == most).map(|(m, _)| m);
    Expect {
        model: None,
        file: Some(shown),
        erpnext_key: if gpon.is_some() { "gpon" } else { "mac" }.into(),
        wifi: Vec::new(),
        never_written: Vec::new(),
        sip_lines: Vec::new(),
        optical_rx_dbm: None,
        mac,
        serial,
        gpon_sn: gpon,
        unlisted: Some(u),
    }
}

/// One device of the run.
struct Unit {
    expect: Expect,
    tag: String,
    serial: String,
    mac: String,
    gpon_sn: String,
    state: tempfile::TempDir,
    child: Option<Child>,
    /// The ACS's id of the device (cpe-sim prints it).
    id: String,
}

impl Unit {
    fn name(&self) -> String {
        self.expect
            .model
            .clone()
            .or_else(|| self.expect.file.clone())
            .unwrap_or_default()
    }

    fn state(&self) -> Value {
        let path = self.state.path().join(format!("{}.json", self.serial));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: no state file {}: {e}", self.name(), path.display()));
        serde_json::from_str(&text).unwrap()
    }

    fn value(&self, state: &Value, path: &str) -> Option<String> {
        state["model"]["params"][path]["value"]
            .as_str()
            .map(str::to_owned)
    }

    fn ssid(&self, band: &str) -> String {
        if band == "2.4" {
            format!("GF-{}", self.tag)
        } else {
            format!("GF-{}-HI", self.tag)
        }
    }

    fn passphrase(&self) -> String {
        format!("Pass-{}-2026", self.tag)
    }

    fn sip_user(&self) -> String {
        format!("1450555{:04}", self.tag.len() * 97 % 10_000)
    }
}

fn equipment(u: &Unit, i: usize) -> Value {
    let mut doc = json!({
        "name": format!("EQ-ALL-{i:03}"),
        "customer": "Client Modèles",
        "service_location": "LOC-ALL",
        "equipment_type": if u.expect.erpnext_key == "gpon" { "ONT" } else { "Routeur" },
        "status": "En inventaire",
        "custom_wifi_ssid": u.ssid("2.4"),
        "custom_wifi_ssid_5g": u.ssid("5"),
        "custom_wifi_password": u.passphrase(),
        "custom_wifi_enabled": 1,
    });
    match u.expect.erpnext_key.as_str() {
        // A MAC in ERPNext's own spelling (dashes, lower case).
        "mac" => doc["mac_address"] = json!(u.mac.to_ascii_lowercase().replace(':', "-")),
        // The sticker's GPON serial, whatever form the device reports.
        _ => doc["custom_gpon_serial"] = json!(u.gpon_sn),
    }
    let voice = match &u.expect.unlisted {
        Some(x) => !x.sip_users.is_empty(),
        None => !u.expect.sip_lines.is_empty(),
    };
    if voice {
        doc["custom_sip_username"] = json!(u.sip_user());
        doc["custom_sip_password"] = json!("Sip-Secret-77");
        doc["custom_sip_line"] = json!(1);
    }
    doc
}

fn start_device(acs: &Acs, u: &mut Unit) {
    let url = format!("http://{}/", acs.cwmp);
    let mut args: Vec<String> = vec!["run".into(), "--acs".into(), url];
    match (&u.expect.model, &u.expect.file) {
        (Some(m), _) => args.extend(["--model".into(), m.clone()]),
        (None, Some(f)) => {
            args.extend(["--model-file".into(), repo().join(f).display().to_string()])
        }
        (None, None) => panic!("a manifest entry without model or file"),
    }
    args.extend(
        [
            "--serial",
            &u.serial,
            "--mac",
            &u.mac,
            "--gpon-sn",
            &u.gpon_sn,
            "--state-dir",
            u.state.path().to_str().unwrap(),
            "--sessions",
            "2",
            "--periodic-interval",
            "1",
            "--boot-delay-ms",
            "0",
            "--no-partial-paths",
        ]
        .map(String::from),
    );
    let child = Command::new(workspace_bin("cpe-sim"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    u.child = Some(child);
}

fn wait_exit(u: &mut Unit, deadline: Instant) {
    let child = u.child.as_mut().unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            use std::io::Read;
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            let mut out = String::new();
            if let Some(mut o) = child.stdout.take() {
                let _ = o.read_to_string(&mut out);
            }
            // "cpe-sim: device {id} connection request URL ..."
            u.id = out
                .split_whitespace()
                .skip_while(|w| *w != "device")
                .nth(1)
                .unwrap_or("")
                .to_owned();
            assert!(status.success(), "{}: cpe-sim failed: {err}", u.name());
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{}: did not finish its two sessions in time", u.name());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn find_device(acs: &Acs, u: &Unit) -> Value {
    let (status, device) = acs.api_get(&format!("/api/v1/devices/{}", encode_segment(&u.id)));
    assert_eq!(status, 200, "{}: device {} not found", u.name(), u.id);
    device
}

fn check(acs: &Acs, erp: &ErpSim, u: &Unit, i: usize, failures: &mut Vec<String>) {
    let name = u.name();
    let mut fail = |m: String| failures.push(format!("{name}: {m}"));
    let state = u.state();
    let log = state["log"].as_array().cloned().unwrap_or_default();
    let Some(boot) = log.first() else {
        fail("no session logged".into());
        return;
    };
    let methods: Vec<&str> = boot["methods"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    eprintln!("{name}: bootstrap RPCs {methods:?}");
    if methods.len() > 12 {
        fail(format!(
            "{} RPCs in the bootstrap session: {methods:?}",
            methods.len()
        ));
    }
    if !methods.contains(&"GetParameterNames") {
        fail(format!("the data model was not discovered: {methods:?}"));
    }
    for (n, s) in log.iter().enumerate() {
        let faults = s["faults"].as_array().unwrap();
        if !faults.is_empty() {
            fail(format!(
                "session {n} answered CPE faults {faults:?}: {}",
                s["methods"]
            ));
        }
        if n > 0
            && s["methods"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m == "SetParameterValues")
        {
            fail(format!(
                "periodic session {n} set values again: {}",
                s["methods"]
            ));
        }
    }
    if let Some(x) = &u.expect.unlisted {
        // No oracle of paths: every band the radios name carries the SSID,
        // or (TR-098, bands not named) some network does; the SIP account
        // is on a line when the device has lines.
        let written: Vec<&String> = x
            .ssid_paths
            .iter()
            .filter(|p| u.value(&state, p).is_some_and(|v| v.starts_with("GF-")))
            .collect();
        let wanted = x
            .radio_bands
            .len()
            .max(usize::from(!x.ssid_paths.is_empty()));
        if written.len() < wanted {
            fail(format!(
                "SSID written on {} network(s) ({written:?}), the device has {} band(s) {:?}",
                written.len(),
                wanted,
                x.radio_bands
            ));
        }
        if !x.sip_users.is_empty()
            && !x
                .sip_users
                .iter()
                .any(|p| u.value(&state, p).as_deref() == Some(u.sip_user().as_str()))
        {
            fail("the SIP account is on none of its lines".into());
        }
    }
    for w in &u.expect.wifi {
        let want = u.ssid(&w.band);
        let got = u.value(&state, &w.ssid);
        if got.as_deref() != Some(want.as_str()) {
            fail(format!(
                "{} GHz {} is {got:?}, not {want:?}",
                w.band, w.ssid
            ));
        }
        let secret = match w.passphrase_kind.as_str() {
            "psk64" => gigafibre_acs::provision::plan::wpa_psk(&u.passphrase(), &want),
            _ => u.passphrase(),
        };
        let holders: Vec<&String> = std::iter::once(&w.passphrase)
            .chain(&w.passphrase_equivalent)
            .collect();
        if !holders
            .iter()
            .any(|p| u.value(&state, p).as_deref() == Some(secret.as_str()))
        {
            fail(format!("{} GHz passphrase not at {}", w.band, w.passphrase));
        }
    }
    for path in &u.expect.never_written {
        let v = u.value(&state, path).unwrap_or_default();
        if v.starts_with("GF-") {
            fail(format!(
                "{path} was written ({v}) though it is not a primary network"
            ));
        }
    }
    if let Some(line) = u.expect.sip_lines.first() {
        let got = u.value(&state, line);
        if got.as_deref() != Some(u.sip_user().as_str()) {
            fail(format!("SIP line {line} is {got:?}, not {}", u.sip_user()));
        }
    }
    let device = find_device(acs, u);
    let status = &device["provisioning"]["status"];
    if status != "provisioned" {
        fail(format!("provisioning {status}: {}", device["provisioning"]));
    }
    let id = device["id"].as_str().unwrap_or("");
    let (_, faults) = acs.api_get(&format!("/api/v1/faults?device={}", encode_segment(id)));
    if let Some(f) = faults["faults"].as_array().filter(|f| !f.is_empty()) {
        fail(format!("faults recorded: {f:?}"));
    }
    if u.expect.unlisted.as_ref().is_some_and(|x| x.optical)
        && device["diagnostics"]["optical"]["rx_dbm"]
            .as_f64()
            .is_none()
    {
        fail(format!(
            "no optical power in dBm: {}",
            device["diagnostics"]
        ));
    }
    if let Some(dbm) = u.expect.optical_rx_dbm {
        let got = device["diagnostics"]["optical"]["rx_dbm"].as_f64();
        if got.is_none_or(|g| (g - dbm).abs() > 0.005) {
            fail(format!(
                "optical rx {got:?} dBm, expected {dbm}: {}",
                device["diagnostics"]["optical"]
            ));
        }
    }
    let record = format!("EQ-ALL-{i:03}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let doc = erp.equipment(&record);
        if doc["status"] == "Actif" {
            break;
        }
        if Instant::now() > deadline {
            fail(format!("{record} never became Actif: {}", doc["status"]));
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_model_is_provisioned_from_its_own_data_model() {
    let manifest: Manifest = toml::from_str(
        &std::fs::read_to_string(repo().join("tests/data/provisioning-expectations.toml")).unwrap(),
    )
    .unwrap();
    assert!(manifest.model.len() >= 9, "the manifest lost models");
    let listed: Vec<String> = manifest
        .model
        .iter()
        .filter_map(|m| m.file.clone())
        .collect();
    let mut models = manifest.model;
    models.extend(unlisted(&listed));
    let mut units: Vec<Unit> = models
        .into_iter()
        .enumerate()
        .map(|(i, expect)| {
            let tag = expect
                .model
                .clone()
                .unwrap_or_else(|| {
                    Path::new(expect.file.as_deref().unwrap_or("x"))
                        .file_stem()
                        .unwrap()
                        .to_string_lossy()
                        .into_owned()
                })
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(16)
                .collect::<String>();
            let vendor = match expect.model.as_deref() {
                Some("rcmg-ont") => "RCMG",
                Some("hgw-ont") => "HWTC",
                _ => "TPLG",
            };
            let gpon_sn = expect
                .gpon_sn
                .clone()
                .unwrap_or_else(|| format!("{vendor}{:08X}", 0xA11C_0000u32 + i as u32));
            let serial = expect
                .serial
                .clone()
                .unwrap_or_else(|| match expect.model.as_deref() {
                    // The Raisecom reports its GPON serial as its CWMP serial.
                    Some("rcmg-ont") => gpon_sn.clone(),
                    _ => format!("ALL{i:07}"),
                });
            let mac = expect
                .mac
                .clone()
                .unwrap_or_else(|| format!("02:A1:1C:00:00:{:02X}", i + 1));
            Unit {
                expect,
                tag,
                serial,
                mac,
                gpon_sn,
                state: tempfile::tempdir().unwrap(),
                child: None,
                id: String::new(),
            }
        })
        .collect();
    let eq: Vec<Value> = units
        .iter()
        .enumerate()
        .map(|(i, u)| equipment(u, i))
        .collect();
    let erp = ErpSim::start(&json!({
        "Customer": [{"name": "Client Modèles", "customer_name": "Client Modèles", "customer_type": "Individual", "customer_group": "Résidentiel", "territory": "Québec"}],
        "Service Location": [{"name": "LOC-ALL", "customer": "Client Modèles", "address_line": "1 rue des Modèles", "city": "Beauharnois", "province": "QC", "postal_code": "J6N 1A1", "status": "Active"}],
        "Service Equipment": eq,
    }));
    let acs = erp.start_acs(&[]);
    for u in &mut units {
        start_device(&acs, u);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    for u in &mut units {
        wait_exit(u, deadline);
    }
    let mut failures = Vec::new();
    for (i, u) in units.iter().enumerate() {
        check(&acs, &erp, u, i, &mut failures);
    }
    // One provisioned device per model, however many sessions each had.
    let metrics = HttpConn::connect(acs.api)
        .request("GET", "/metrics", &[], b"")
        .text();
    let provisioned = metrics
        .lines()
        .find_map(|l| l.strip_prefix("acs_provisioning_success_total "))
        .and_then(|v| v.trim().parse::<usize>().ok());
    if provisioned != Some(units.len()) {
        failures.push(format!(
            "acs_provisioning_success_total is {provisioned:?}, not {} (one per device)",
            units.len()
        ));
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}\n--- ACS log (tail) ---\n{}",
        failures.len(),
        failures.join("\n"),
        acs.logs()
            .lines()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
