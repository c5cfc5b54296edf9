//! ONT optical power history and alarms through the real binary: a
//! simulated Raisecom ONT whose received power drops below the limit and
//! comes back raises an alarm and clears it, on the API, the event stream
//! and in its history.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::Value;

const RX: &str = "InternetGatewayDevice.WANDevice.1.X_CT-COM_GponInterfaceConfig.RXPower";

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
    let id = wait_until("the ONT's optical power read", 30, || {
        let (_, list) = acs.api_get("/api/v1/devices?q=RCMG0000AL01");
        let id = list["devices"].as_array()?.first()?["id"]
            .as_str()?
            .to_owned();
        let (_, d) = acs.api_get(&format!("/api/v1/devices/{}", encode_segment(&id)));
        d["diagnostics"]["optical"]["rx_dbm"].as_f64().map(|_| id)
    });
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
    assert!(
        values.contains(&-30.0) && values.first() == Some(&-8.91),
        "{values:?}"
    );
    assert_eq!(values.last(), Some(&-8.91), "{values:?}");
    let (status, _) = acs.api_get(&format!(
        "/api/v1/devices/{}/history?metric=nope",
        encode_segment(&id)
    ));
    assert_eq!(status, 400);
}

#[test]
fn a_device_rebooting_over_and_over_raises_a_boot_loop_alarm() {
    let acs = Acs::start(&[]);
    let events = EventStream::open(acs.api);
    let id = device_id("LOOP1");
    let session = |n: usize, events: &[&str]| {
        let mut cpe = acs.cpe();
        let r = cpe.post_str(&inform_xml(
            "soapenv",
            "1-0",
            &n.to_string(),
            "LOOP1",
            events,
        ));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(cpe.empty().status, 204);
    };
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
    assert_eq!(h["points"].as_array().unwrap().len(), 3, "{h}");
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
    let signal = point("wifi_signal_pct").expect("a mean signal");
    assert!((0.0..=100.0).contains(&signal), "{signal}");
    // No optical power on a Deco.
    assert_eq!(point("optical_rx_dbm"), None);
}
