//! The ISP moves from GenieACS: its devices are imported (with GenieACS's
//! ids, tags and connection-request settings), the CPEs, which GenieACS
//! bootstrapped long ago, reach this ACS without `0 BOOTSTRAP`, and each is
//! fully provisioned at its first session here, PPPoE included where the
//! device has a WAN PPP interface. Real binaries: gigafibre-acs,
//! erpnext-sim, cpe-sim.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Acs, ErpSim, TOKEN, encode_segment, wait_until, workspace_bin};
use serde_json::{Value, json};

/// One simulated CPE that GenieACS managed.
struct Moved {
    model: &'static str,
    serial: String,
    mac: String,
    gpon_sn: String,
    equipment: String,
    state: tempfile::TempDir,
    child: Option<Child>,
    /// GenieACS's `_id` (the ACS's device id).
    id: String,
    cr_url: String,
}

impl Moved {
    fn new(model: &'static str, i: usize) -> Moved {
        let vendor = match model {
            "rcmg-ont" => "RCMG",
            "hgw-ont" => "HWTC",
            _ => "TPLG",
        };
        let gpon_sn = format!("{vendor}{:08X}", 0x6E1E_0000u32 + i as u32);
        let serial = if model == "rcmg-ont" {
            gpon_sn.clone()
        } else {
            format!("MIG{i:07}")
        };
        Moved {
            model,
            serial,
            mac: format!("02:6E:1E:00:00:{:02X}", i + 1),
            gpon_sn,
            equipment: format!("EQ-MIG-{i:03}"),
            state: tempfile::tempdir().unwrap(),
            child: None,
            id: String::new(),
            cr_url: String::new(),
        }
    }

    fn cr_password(&self) -> String {
        format!("genie-cr-{}", self.serial)
    }

    /// Starts the CPE: it waits for a connection request (or an hour) for
    /// its first session, as a device GenieACS bootstrapped would after the
    /// ACS URL changes.
    fn start(&mut self, acs: &Acs) {
        let url = format!("http://{}/", acs.cwmp);
        let mut child = Command::new(workspace_bin("cpe-sim"))
            .args([
                "run",
                "--acs",
                &url,
                "--model",
                self.model,
                "--serial",
                &self.serial,
                "--mac",
                &self.mac,
                "--gpon-sn",
                &self.gpon_sn,
                "--state-dir",
                self.state.path().to_str().unwrap(),
                "--periodic-interval",
                "3600",
                "--boot-delay-ms",
                "0",
                "--no-partial-paths",
                "--managed-before",
                "--cr-username",
                &self.serial,
                "--cr-password",
                &self.cr_password(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "cpe-sim: device {id} connection request URL {url}"
        let rest = line
            .trim()
            .strip_prefix("cpe-sim: device ")
            .unwrap_or_else(|| panic!("unexpected cpe-sim line {line:?}"));
        let (id, url) = rest.split_once(" connection request URL ").unwrap();
        self.id = id.to_owned();
        self.cr_url = url.to_owned();
        self.child = Some(child);
    }

    fn saved(&self) -> Value {
        let text = std::fs::read_to_string(self.state.path().join(format!("{}.json", self.serial)))
            .unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    fn value(&self, path: &str) -> Option<String> {
        self.saved()["model"]["params"][path]["value"]
            .as_str()
            .map(str::to_owned)
    }

    fn root(&self) -> &'static str {
        match self.model {
            "rcmg-ont" | "hgw-ont" => "InternetGatewayDevice",
            _ => "Device",
        }
    }

    /// The device as GenieACS's `devices` collection holds it, in
    /// mongoexport's relaxed extended JSON.
    fn genieacs_document(&self, oui: &str, product_class: &str, serial: &str) -> Value {
        let ts = json!({"$date": "2026-11-30T09:59:58.123Z"});
        let leaf = |v: Value, t: &str, w: bool| json!({"_value": v, "_type": t, "_timestamp": ts, "_writable": w});
        let mut root = json!({
            "_object": true, "_writable": false, "_timestamp": ts,
            "DeviceInfo": {
                "_object": true, "_writable": false, "_timestamp": ts,
                "SerialNumber": leaf(json!(self.serial), "xsd:string", false),
                "SoftwareVersion": leaf(json!("GenieACS-era-1.0"), "xsd:string", false),
                "UpTime": leaf(json!({"$numberInt": "86400"}), "xsd:unsignedInt", false),
            },
            "ManagementServer": {
                "_object": true, "_writable": false, "_timestamp": ts,
                "ConnectionRequestURL": leaf(json!(self.cr_url), "xsd:string", false),
                "ConnectionRequestUsername": leaf(json!(self.serial), "xsd:string", true),
                "ConnectionRequestPassword": leaf(json!(self.cr_password()), "xsd:string", true),
                "PeriodicInformEnable": leaf(json!(true), "xsd:boolean", true),
                "PeriodicInformInterval": leaf(json!(3600), "xsd:unsignedInt", true),
            },
        });
        if self.model == "deco" {
            root["X_TP_Legacy"] = json!({"_object": true, "_writable": false});
        }
        let mut doc = json!({
            "_id": self.id,
            "_deviceId": {
                "_Manufacturer": "From GenieACS",
                "_OUI": oui,
                "_ProductClass": product_class,
                "_SerialNumber": serial,
            },
            "_registered": {"$date": "2024-02-01T12:00:00.000Z"},
            "_lastInform": {"$date": "2026-11-30T09:59:58.123Z"},
            "_lastBoot": {"$date": "2026-11-01T03:00:00.000Z"},
            "_lastBootstrap": {"$date": "2024-02-01T12:00:00.000Z"},
            "_tags": ["migrated", self.model],
            "_timestamp": ts,
            "Events": {"Inform": {"_value": {"$date": "2026-11-30T09:59:58.123Z"}}},
        });
        doc[self.root()] = root;
        doc
    }
}

impl Drop for Moved {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The Service Equipment record as ERPNext has it before the move:
/// identity only (MACs and GPON serials in ERPNext's own spellings); WiFi,
/// SIP and PPPoE come from the legacy tables.
fn equipment(u: &Moved) -> Value {
    let mut doc = json!({
        "name": u.equipment,
        "customer": "Client Migration",
        "service_location": "LOC-MIG",
        "equipment_type": if u.model == "deco" { "Routeur" } else { "ONT" },
        "status": "En inventaire",
    });
    match u.model {
        "deco" => doc["mac_address"] = json!(u.mac.to_ascii_lowercase().replace(':', "-")),
        // The Raisecom's GPON serial is its serial number, in hex here.
        "rcmg-ont" => doc["serial_number"] = json!(hex_gpon(&u.gpon_sn)),
        _ => doc["custom_gpon_serial"] = json!(u.gpon_sn),
    }
    if u.model == "hgw-ont" {
        // What GenieACS wrote into ERPNext: its `_id` of the device.
        doc["custom_cwmp_serial"] = json!("00E0FC-HG8245Q2-485754436E1E0003");
    }
    doc
}

/// `RCMG6E1E0002` → `52434D476E1E0002`.
fn hex_gpon(sn: &str) -> String {
    let (vendor, rest) = sn.split_at(4);
    let mut out: String = vendor.bytes().map(|b| format!("{b:02X}")).collect();
    out.push_str(rest);
    out
}

/// The legacy tables as the old provisioning system exported them.
fn legacy_tables(fleet: &[Moved], dir: &std::path::Path) -> [std::path::PathBuf; 3] {
    let (deco, tplg, rcmg, hgw) = (&fleet[0], &fleet[1], &fleet[2], &fleet[3]);
    let mac_dots = {
        let h: String = deco.mac.chars().filter(char::is_ascii_hexdigit).collect();
        format!("{}.{}.{}", &h[0..4], &h[4..8], &h[8..12]).to_ascii_lowercase()
    };
    // WiFi: the Deco by MAC (Cisco dots); an older row for it; a row with a
    // passphrase too short; a MAC nobody has; an ONT by colon MAC.
    let wifi = format!(
        "serial,ssid,password,ssid_5g,updated_at\n\
         {mac_dots},Old-Name,Old-Pass-0000,,2023-01-01 10:00:00\n\
         {mac_dots},Roy-Maison,Legacy-Wifi-77,Roy-Maison-5G,2024-05-02T08:00:00Z\n\
         {tplg_mac},Tremblay,short,,2024-05-02\n\
         AA:BB:CC:00:11:22,Nobody,Nobody-Pass-1,,2024-01-01\n",
        tplg_mac = tplg.mac,
    );
    // VoIP: ONT serials, hex and ASCII, in a renamed header (--map).
    let voip = "ONT Serial;SIP User;SIP Pass;Line;Date\n".replace(';', ",")
        + &format!(
            "{},5145550101,Legacy-Sip-01,1,2024-03-01\n{},5145550102,Legacy-Sip-02,1,2024-03-01\n",
            hex_gpon(&tplg.gpon_sn),
            rcmg.gpon_sn
        );
    // RADIUS: PPPoE accounts, one per ONT, one for an unknown serial.
    let radius = format!(
        "serial,radius_user,radius_password,updated_at\n\
         {},pppoe-{}@gigafibre.ca,Radius-Secret-88,2024-04-01\n\
         {},pppoe-{}@gigafibre.ca,Radius-Secret-88,2024-04-01\n\
         {},pppoe-{}@gigafibre.ca,Radius-Secret-88,2024-04-01\n\
         RCMGFFFFFFFF,pppoe-gone@gigafibre.ca,Radius-Secret-88,2024-04-01\n",
        tplg.gpon_sn,
        tplg.serial,
        hex_gpon(&rcmg.gpon_sn),
        rcmg.serial,
        hgw.gpon_sn,
        hgw.serial,
    );
    let paths = [
        dir.join("wifi.csv"),
        dir.join("voip.csv"),
        dir.join("radius.csv"),
    ];
    for (p, text) in paths.iter().zip([wifi, voip, radius]) {
        std::fs::write(p, text).unwrap();
    }
    paths
}

fn migrate(args: &[&str], env: &[(&str, String)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gigafibre-acs"))
        .arg("migrate")
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_fleet_moved_from_genieacs_is_provisioned_at_its_first_session_here() {
    let mut fleet: Vec<Moved> = ["deco", "tplg-ont", "rcmg-ont", "hgw-ont"]
        .iter()
        .enumerate()
        .map(|(i, m)| Moved::new(m, i))
        .collect();
    let erp = ErpSim::start(&json!({
        "Customer": [{"name": "Client Migration", "customer_name": "Client Migration", "customer_type": "Individual", "customer_group": "Résidentiel", "territory": "Québec"}],
        "Service Location": [{"name": "LOC-MIG", "customer": "Client Migration", "address_line": "2 rue du Transfert", "city": "Beauharnois", "province": "QC", "postal_code": "J6N 1A1", "status": "Active"}],
        "Service Equipment": fleet.iter().map(equipment).collect::<Vec<_>>(),
    }));
    // The legacy tables into ERPNext, as the ACS's settings reach it.
    let tables_dir = tempfile::tempdir().unwrap();
    let [wifi, voip, radius] = legacy_tables(&fleet, tables_dir.path());
    let erp_env = erp.acs_env();
    let legacy = |kind: &str, file: &std::path::Path, extra: &[&str]| -> Value {
        let mut args = vec![kind, file.to_str().unwrap(), "--apply", "--json"];
        args.extend_from_slice(extra);
        let (code, out, err) = migrate(&args, &erp_env);
        assert_eq!(code, 0, "{kind}: {out}\n{err}");
        for secret in [
            "Legacy-Wifi-77",
            "Legacy-Sip-0",
            "Radius-Secret-88",
            "acs-secret",
        ] {
            assert!(
                !out.contains(secret) && !err.contains(secret),
                "{kind}: {secret} printed"
            );
        }
        serde_json::from_str(&out).unwrap()
    };
    let w = legacy("legacy-wifi", &wifi, &[]);
    assert_eq!(
        (w["rows"].as_u64(), w["matched"].as_u64()),
        (Some(4), Some(1)),
        "{w}"
    );
    assert_eq!(w["unmatched"], json!(["AA:BB:CC:00:11:22"]), "{w}");
    assert_eq!(w["invalid"][0]["row"], 4, "{w}");
    let v = legacy(
        "legacy-voip",
        &voip,
        &[
            "--map",
            "serial=ONT Serial,sip_username=SIP User,sip_password=SIP Pass,line=Line,updated_at=Date",
        ],
    );
    assert_eq!(v["matched"], 2, "{v}");
    let r = legacy("legacy-radius", &radius, &[]);
    assert_eq!(
        (
            r["matched"].as_u64(),
            r["unmatched"].as_array().map(Vec::len)
        ),
        (Some(3), Some(1)),
        "{r}"
    );
    // Once is enough: the same tables again write nothing.
    assert_eq!(legacy("legacy-radius", &radius, &[])["written"], 0);
    assert_eq!(
        erp.equipment(&fleet[0].equipment)["custom_wifi_ssid"],
        "Roy-Maison"
    );

    let acs = erp.start_acs(&[("ACS_NBI_LISTEN", "127.0.0.1:0")]);
    for u in &mut fleet {
        u.start(&acs);
    }
    // The export GenieACS's database gives (ids as GenieACS forms them:
    // the devices' own).
    let mut export = String::new();
    for u in &fleet {
        let mut parts = u.id.splitn(3, '-');
        let oui = parts.next().unwrap().to_owned();
        let (pc, sn) = match (parts.next(), parts.next()) {
            (Some(pc), Some(sn)) => (pc.replace("%2D", "-"), sn.replace("%2D", "-")),
            _ => panic!("id {}", u.id),
        };
        export.push_str(&u.genieacs_document(&oui, &pc, &sn).to_string());
        export.push('\n');
    }
    export.push_str("{\"_id\": \"broken\"}\n");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("devices.json");
    std::fs::write(&file, &export).unwrap();
    let env = vec![("ACS_API_TOKEN", TOKEN.to_owned())];
    let server = format!("http://{}", acs.api);
    let file_arg = file.to_str().unwrap();

    // Dry run through the running ACS: a report, nothing written.
    let (code, out, err) = migrate(
        &["genieacs-devices", file_arg, "--server", &server, "--json"],
        &env,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["created"], 4, "{report}");
    assert_eq!(report["invalid"][0]["document"], 5, "{report}");
    assert!(
        report["invalid"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("_deviceId"),
        "{report}"
    );
    assert_eq!(acs.api_get("/api/v1/devices").1["devices"], json!([]));
    for secret in ["genie-cr-", "Radius-Secret"] {
        assert!(!out.contains(secret) && !err.contains(secret));
    }

    let (code, out, err) = migrate(
        &[
            "genieacs-devices",
            file_arg,
            "--server",
            &server,
            "--apply",
            "--json",
        ],
        &env,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (report["created"].as_u64(), report["dry_run"].as_bool()),
        (Some(4), Some(false))
    );
    // Again: nothing changes.
    let (_, out, _) = migrate(
        &[
            "genieacs-devices",
            file_arg,
            "--server",
            &server,
            "--apply",
            "--json",
        ],
        &env,
    );
    let again: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (again["created"].as_u64(), again["unchanged"].as_u64()),
        (Some(0), Some(4))
    );

    // Listed before any session here, with GenieACS's id.
    for u in &fleet {
        let (status, d) = acs.api_get(&format!("/api/v1/devices/{}", encode_segment(&u.id)));
        assert_eq!(status, 200, "{d}");
        assert_eq!(d["inform_count"], 0, "{d}");
        // A connection request works before the first session here.
        let (status, cr) = acs.api_post(
            &format!(
                "/api/v1/devices/{}/connection-request",
                encode_segment(&u.id)
            ),
            &json!({}),
        );
        assert_eq!(status, 200, "{}: {cr}", u.model);
    }

    // Each CPE opens its session ("6 CONNECTION REQUEST", no bootstrap) and
    // is provisioned in it.
    let deadline = Instant::now() + Duration::from_secs(90);
    for u in &fleet {
        let d = wait_until(&format!("{} provisioned", u.model), 90, || {
            let (_, d) = acs.api_get(&format!("/api/v1/devices/{}", encode_segment(&u.id)));
            let s = d["provisioning"]["status"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            (s == "provisioned" || Instant::now() > deadline).then_some(d)
        });
        assert_eq!(
            d["provisioning"]["status"], "provisioned",
            "{}: {d}",
            u.model
        );
        // The device writes its state file once its session is over.
        let first = wait_until(&format!("{} session log", u.model), 30, || {
            let saved = u.saved();
            saved["log"][0]["events"]
                .is_array()
                .then(|| saved["log"][0].clone())
        });
        let first = &first;
        let events: Vec<&str> = first["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            events.iter().any(|e| e.starts_with("6")),
            "{}: {first}",
            u.model
        );
        assert!(
            !events.iter().any(|e| e.starts_with("0")),
            "{}: {first}",
            u.model
        );
        let requests: Vec<&str> = first["methods"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            requests.first().copied(),
            Some("GetParameterNames"),
            "{}: the first session here learns the data model: {first}",
            u.model
        );
        assert!(
            requests.contains(&"SetParameterValues"),
            "{}: {first}",
            u.model
        );
        // Written back by the ACS's outbox, a moment later.
        let eq = wait_until(&format!("{} Actif in ERPNext", u.model), 30, || {
            let eq = erp.equipment(&u.equipment);
            (eq["status"] == "Actif").then_some(eq)
        });
        // The ACS writes the CWMP serial where GenieACS kept its `_id`.
        let serial = u.id.rsplit('-').next().unwrap();
        assert_eq!(eq["custom_cwmp_serial"], json!(serial), "{}", u.model);
    }

    // PPPoE: on the WAN PPP interface of the ONTs that have one, nowhere else.
    let ppp_user = |u: &Moved| format!("pppoe-{}@gigafibre.ca", u.serial);
    let tplg = &fleet[1];
    assert_eq!(
        tplg.value("Device.PPP.Interface.3.Username"),
        Some(ppp_user(tplg))
    );
    assert_ne!(
        tplg.value("Device.PPP.Interface.1.Username"),
        Some(ppp_user(tplg)),
        "never the USB dongle's PPP interface"
    );
    let hgw = &fleet[3];
    assert_eq!(
        hgw.value(
            "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.2.WANPPPConnection.1.Username"
        ),
        Some(ppp_user(hgw))
    );
    let rcmg = &fleet[2];
    let rcmg_state = rcmg.saved().to_string();
    assert!(
        !rcmg_state.contains(&ppp_user(rcmg)),
        "the RCMG has no WAN PPP interface: nothing is written"
    );
    let deco = &fleet[0];
    assert_eq!(
        deco.value("Device.WiFi.SSID.1.SSID").as_deref(),
        Some("Roy-Maison")
    );
    assert_eq!(
        rcmg.value(
            "InternetGatewayDevice.Services.VoiceService.1.VoiceProfile.1.Line.1.SIP.AuthUserName"
        )
        .as_deref(),
        Some("5145550102")
    );

    // The tools that called GenieACS's NBI get GenieACS's answers here.
    let nbi = acs.nbi.expect("the NBI listens");
    let get = |path: &str| {
        let r = common::HttpConn::connect(nbi).request(
            "GET",
            path,
            &[("Authorization", &format!("Bearer {TOKEN}"))],
            b"",
        );
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        serde_json::from_slice::<Value>(&r.body).unwrap()
    };
    let query = encode_segment(&json!({"_tags": "migrated"}).to_string());
    let found = get(&format!(
        "/devices/?query={query}&projection=_id,_tags,_deviceId._SerialNumber"
    ));
    let mut ids: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["_id"].as_str())
        .collect();
    ids.sort_unstable();
    let mut want: Vec<&str> = fleet.iter().map(|u| u.id.as_str()).collect();
    want.sort_unstable();
    assert_eq!(ids, want, "{found}");
    let query = encode_segment(&json!({"_id": tplg.id}).to_string());
    let one = get(&format!(
        "/devices/?query={query}&projection=Device.PPP.Interface.3.Username"
    ));
    assert_eq!(
        one[0]["Device"]["PPP"]["Interface"]["3"]["Username"]["_value"],
        json!(ppp_user(tplg)),
        "{one}"
    );

    let logs = acs.logs();
    for secret in [
        "Radius-Secret-88",
        "genie-cr-",
        "Legacy-Wifi-77",
        "Legacy-Sip-0",
    ] {
        assert!(!logs.contains(secret), "{secret} in the ACS log");
    }
}

#[test]
fn an_import_with_the_acs_stopped_writes_its_data_dir_and_a_running_acs_is_named() {
    let data = tempfile::tempdir().unwrap();
    let doc = json!({
        "_id": "E848B8-XX230v-22A1000001",
        "_deviceId": {"_Manufacturer": "TP-Link", "_OUI": "E848B8", "_ProductClass": "XX230v", "_SerialNumber": "22A1000001"},
        "_lastInform": {"$date": {"$numberLong": "1764496798123"}},
        "_tags": ["ont", "Beauharnois"],
        "Device": {"_object": true, "DeviceInfo": {"_object": true,
            "SoftwareVersion": {"_value": "1.1.0 Build 230426", "_type": "xsd:string", "_writable": false}}}
    });
    // mongoexport --jsonArray
    let file = data.path().join("devices.json");
    std::fs::write(&file, format!("[{doc},\n{doc}]")).unwrap();
    let env = vec![(
        "ACS_DATA_DIR",
        data.path().join("acs").display().to_string(),
    )];
    let file_arg = file.to_str().unwrap();
    let (code, out, err) = migrate(&["genieacs-devices", file_arg, "--apply"], &env);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("1 created"), "{out}");
    assert!(out.contains("appears again"), "{out}");

    let acs = Acs::start_in(&data.path().join("acs"), &[]);
    let (status, d) = acs.api_get("/api/v1/devices/E848B8-XX230v-22A1000001");
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["software_version"], "1.1.0 Build 230426", "{d}");
    // The store is the running ACS's now: the command says how to go on.
    let (code, _, err) = migrate(&["genieacs-devices", file_arg, "--apply"], &env);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--server"), "{err}");
    // Unknown file, bad URL: usage errors naming them.
    let (code, _, err) = migrate(&["genieacs-devices", "/nonexistent/devices.json"], &env);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/devices.json"), "{err}");
    let (code, _, err) = migrate(&["genieacs-devices", file_arg, "--server", "ftp://x"], &env);
    assert_eq!(code, 2);
    assert!(err.contains("ftp://x"), "{err}");
}
