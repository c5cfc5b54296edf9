//! ONT optical power history and alarms through the real binary: a
//! simulated Raisecom ONT whose received power drops below the limit and
//! comes back raises an alarm and clears it, on the API, the event stream
//! and in its history.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::Value;

const RX: &str = "InternetGatewayDevice.WANDevice.1.X_CT-COM_GponInterfaceConfig.RXPower";
const WAN_IP: &str =
    "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ExternalIPAddress";

fn set_rx(state: &mut Value, raw: &str) {
    state["model"]["params"][RX]["value"] = Value::String(raw.to_owned());
}

fn refresh(acs: &Acs, id: &str) {
    let (status, body) = acs.api_get(&format!(
        "/api/v1/devices/{}/hosts?refresh=true&wait=30",
        encode_segment(id)
    ));
    assert_eq!(status, 200, "{body}");
}

fn alarms(acs: &Acs, id: &str) -> Vec<Value> {
    let (_, body) = acs.api_get(&format!("/api/v1/alarms?device={}", encode_segment(id)));
    body["alarms"].as_array().cloned().unwrap_or_default()
}

#[test]
fn an_ont_losing_optical_power_raises_an_alarm_that_clears_itself() {
    let acs = Acs::start(&[
        ("ACS_PROVISIONING", "on"),
        ("ACS_HOSTS_COLLECT", "on"),
        ("ACS_CR_MIN_INTERVAL_S", "0"),
    ]);
    let events = EventStream::open(acs.api);
    let mut ont = SimDevice::start(
        &acs,
        "rcmg-ont",
        "RCMG0000AL01",
        &["--gpon-sn", "RCMG0000AL01"],
    );
    let id = wait_for_optical_reading(&acs, "RCMG0000AL01");
    // 1285 × 0.1 µW = −8.91 dBm: inside −27..−8, no alarm.
    assert!(alarms(&acs, &id).is_empty());

    // The fibre degrades: 10 × 0.1 µW = −30 dBm.
    ont.restart_with(|s| set_rx(s, "10"));
    wait_until("the ONT back after its restart", 30, || {
        let (_, d) = acs.api_get(&format!("/api/v1/devices/{}", encode_segment(&id)));
        (d["session_active"] == false && d["last_boot"].is_string()).then_some(())
    });
    refresh(&acs, &id);
    let open = wait_until("the low-power alarm", 20, || {
        let a = alarms(&acs, &id);
        (!a.is_empty()).then_some(a)
    });
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["kind"], "optical_rx_low");
    assert_eq!(open[0]["value"].as_f64(), Some(-30.0));
    assert_eq!(open[0]["threshold"].as_f64(), Some(-27.0));
    wait_until("alarm.raised on the stream", 10, || {
        events.devices("alarm.raised").contains(&id).then_some(())
    });

    // Repaired: the alarm clears itself.
    ont.restart_with(|s| set_rx(s, "1285"));
    std::thread::sleep(std::time::Duration::from_secs(1));
    wait_until("the alarm cleared", 40, || {
        refresh(&acs, &id);
        alarms(&acs, &id).is_empty().then_some(())
    });
    wait_until("alarm.cleared on the stream", 10, || {
        events.devices("alarm.cleared").contains(&id).then_some(())
    });

    // Each restart came within the periodic interval: no Inform missed.
    let (_, h) = acs.api_get(&format!(
        "/api/v1/devices/{}/history?metric=informs_missed",
        encode_segment(&id)
    ));
    assert_eq!(h["points"], serde_json::json!([]), "{h}");
    // The history holds every reading, oldest first.
    let (status, h) = acs.api_get(&format!(
        "/api/v1/devices/{}/history?metric=optical_rx_dbm",
        encode_segment(&id)
    ));
    assert_eq!(status, 200, "{h}");
    let values: Vec<f64> = h["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    // (Readings are kept to the second: the first −8.91 and the −30 that
    // followed within its second are one point.)
    assert!(values.contains(&-30.0), "{values:?}");
    assert_eq!(values.last(), Some(&-8.91), "{values:?}");

    // Its WAN addresses: one entry per change, the latest last.
    let wan = |acs: &Acs| {
        let (_, d) = acs.api_get(&format!("/api/v1/devices/{}", encode_segment(&id)));
        d["diagnostics"]["wan_ipv4"]
            .as_array()
            .unwrap()
            .iter()
            .chain(d["diagnostics"]["wan_ipv6"].as_array().unwrap())
            .map(|w| w["address"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let before = wan(&acs);
    assert!(!before.is_empty());
    ont.restart_with(|s| {
        s["model"]["params"][WAN_IP]["value"] = Value::String("100.64.77.1".into());
    });
    std::thread::sleep(std::time::Duration::from_secs(1));
    let after = wait_until("the new WAN address read", 40, || {
        refresh(&acs, &id);
        let now = wan(&acs);
        now.contains("100.64.77.1").then_some(now)
    });
    let (_, h) = acs.api_get(&format!(
        "/api/v1/devices/{}/history?metric=wan_ip",
        encode_segment(&id)
    ));
    let changes: Vec<&str> = h["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_str().unwrap())
        .collect();
    assert_eq!(changes, [before.as_str(), after.as_str()], "{h}");
    let (status, _) = acs.api_get(&format!(
        "/api/v1/devices/{}/history?metric=nope",
        encode_segment(&id)
    ));
    assert_eq!(status, 400);
}

#[test]
fn the_rules_file_gives_an_ont_the_limits_of_its_optical_class() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("alarm-rules.toml");
    let builtin = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/alarms/rules.toml"),
    )
    .unwrap();
    std::fs::write(
        &rules,
        format!(
            "{builtin}\n[[optical.devices]]\nserial_prefixes = [\"rcmg\"]\nclass = \"gpon-c+\"\n"
        ),
    )
    .unwrap();
    let rules_path = rules.to_str().unwrap();

    // What is in force, printed as a file the ACS reads back.
    let out = std::process::Command::new(workspace_bin("gigafibre-acs"))
        .arg("alarm-rules")
        .env("ACS_ALARM_RULES", rules_path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("serial_prefixes = [\"rcmg\"]") && printed.contains("class = \"gpon-c+\""),
        "{printed}"
    );
    // A wrong file stops the server before it starts, naming the field.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        builtin.replace("default_class = \"gpon-b+\"", "default_class = \"b++\""),
    )
    .unwrap();
    let out = std::process::Command::new(workspace_bin("gigafibre-acs"))
        .arg("serve")
        .env("ACS_ALARM_RULES", bad.to_str().unwrap())
        .env("ACS_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("alarm_rules") && err.contains("optical.default_class"),
        "{err}"
    );

    // 14 × 0.1 µW = −28.54 dBm: low for class B+, fine for C+ (−30).
    let acs = Acs::start(&[
        ("ACS_PROVISIONING", "on"),
        ("ACS_HOSTS_COLLECT", "on"),
        ("ACS_CR_MIN_INTERVAL_S", "0"),
        ("ACS_ALARM_RULES", rules_path),
    ]);
    let mut ont = SimDevice::start(
        &acs,
        "rcmg-ont",
        "RCMG0000CL01",
        &["--gpon-sn", "RCMG0000CL01"],
    );
    let id = wait_for_optical_reading(&acs, "RCMG0000CL01");
    ont.restart_with(|s| set_rx(s, "14"));
    let d = wait_until("the weaker power read", 40, || {
        refresh(&acs, &id);
        let (_, d) = acs.api_get(&format!("/api/v1/devices/{}", encode_segment(&id)));
        (d["diagnostics"]["optical"]["rx_dbm"].as_f64()? < -28.0).then_some(d)
    });
    assert_eq!(d["optical_class"]["name"], "gpon-c+", "{d}");
    assert_eq!(d["optical_class"]["rx_min_dbm"].as_f64(), Some(-30.0));
    let optical = |acs: &Acs| -> Vec<Value> {
        alarms(acs, &id)
            .into_iter()
            .filter(|a| a["kind"].as_str().unwrap().starts_with("optical"))
            .collect()
    };
    assert!(optical(&acs).is_empty(), "−28.5 dBm is inside class C+");
    // 9 × 0.1 µW = −30.46 dBm: below C+ too.
    ont.restart_with(|s| set_rx(s, "9"));
    let open = wait_until("the low-power alarm", 40, || {
        refresh(&acs, &id);
        let a = optical(&acs);
        (!a.is_empty()).then_some(a)
    });
    assert_eq!(open[0]["kind"], "optical_rx_low");
    assert_eq!(open[0]["threshold"].as_f64(), Some(-30.0));
}

#[test]
fn a_device_rebooting_over_and_over_raises_a_boot_loop_alarm() {
    let acs = Acs::start(&[]);
    let events = EventStream::open(acs.api);
    let id = device_id("LOOP1");
    let session = |n: usize, events: &[&str]| acs.inform_session("LOOP1", n, events);
    session(1, &["0 BOOTSTRAP", "1 BOOT"]);
    session(2, &["1 BOOT"]);
    assert!(alarms(&acs, &id).is_empty(), "two boots are no loop");
    session(3, &["1 BOOT"]);
    let open = alarms(&acs, &id);
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["kind"], "boot_loop");
    assert_eq!(open[0]["value"].as_f64(), Some(3.0));
    wait_until("alarm.raised on the stream", 10, || {
        events.devices("alarm.raised").contains(&id).then_some(())
    });
    // A periodic Inform inside the hour keeps it open.
    session(4, &["2 PERIODIC"]);
    assert_eq!(alarms(&acs, &id).len(), 1);
    let (_, fleet) = acs.api_get("/api/v1/fleet");
    assert_eq!(fleet["alarms"]["boot_loop"], 1, "{fleet}");
    // Each boot is in the device's history.
    let (_, h) = acs.api_get(&format!(
        "/api/v1/devices/{}/history?metric=reboots",
        encode_segment(&id)
    ));
    // (Three boots within a second: one point of 3.)
    let boots: f64 = h["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .sum();
    assert_eq!(boots, 3.0, "{h}");
}

#[test]
fn a_decos_wifi_clients_and_signal_go_into_its_history() {
    let acs = Acs::start(&[("ACS_PROVISIONING", "on"), ("ACS_HOSTS_COLLECT", "on")]);
    let _deco = SimDevice::start(&acs, "deco", "HIST1", &["--mac", "1C:61:B4:AA:01:01"]);
    let id = wait_until("the Deco's topology read", 30, || {
        let (_, list) = acs.api_get("/api/v1/devices?q=HIST1");
        let id = list["devices"].as_array()?.first()?["id"]
            .as_str()?
            .to_owned();
        let (status, h) = acs.api_get(&format!("/api/v1/devices/{}/hosts", encode_segment(&id)));
        (status == 200 && h["collected_at"].is_string()).then_some(id)
    });
    let (_, hosts) = acs.api_get(&format!("/api/v1/devices/{}/hosts", encode_segment(&id)));
    let wifi = hosts["totals"]["wifi_direct"].as_u64().unwrap()
        + hosts["totals"]["wifi_via_mesh"].as_u64().unwrap();
    assert!(wifi > 0, "{hosts}");
    let point = |metric: &str| {
        let (status, h) = acs.api_get(&format!(
            "/api/v1/devices/{}/history?metric={metric}",
            encode_segment(&id)
        ));
        assert_eq!(status, 200, "{h}");
        h["points"]
            .as_array()
            .unwrap()
            .last()
            .map(|p| p["value"].as_f64().unwrap())
    };
    assert_eq!(point("wifi_clients"), Some(wifi as f64));
    // Each node's own: its wireless clients, however the MAC is spelt.
    for node in hosts["nodes"].as_array().unwrap() {
        let mac = node["mac"].as_str().unwrap();
        let wireless = node["clients"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["connection"].as_str().unwrap().starts_with("wifi"))
            .count();
        let spelt = mac.to_uppercase().replace(':', "-");
        assert_eq!(
            point(&format!("wifi_clients&node={spelt}")),
            Some(wireless as f64),
            "{node}"
        );
    }
    let (status, _) = acs.api_get(&format!(
        "/api/v1/devices/{}/history?metric=optical_rx_dbm&node=aa:bb:cc:dd:ee:ff",
        encode_segment(&id)
    ));
    assert_eq!(status, 400, "optical power is no node's");
    let signal = point("wifi_signal_pct").expect("a mean signal");
    assert!((0.0..=100.0).contains(&signal), "{signal}");
    // No optical power on a Deco.
    assert_eq!(point("optical_rx_dbm"), None);
}
