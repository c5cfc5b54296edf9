//! The Ops API and technician tools end to end: the ACS, cpe-sim and
//! erpnext-sim as real processes on loopback. Topology of a Deco mesh, ONT
//! optical power, reprovision through a connection request, live events,
//! tokens, the OpenAPI document checked against live answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use common::*;
use gigafibre_acs::api::ROUTES;
use serde_json::{Value, json};

const DECO_PASS: &str = "k7Hq2mZp9xWe";
const DECO_MAC: &str = "1C:61:B4:AA:00:11";

fn erp_fixture() -> Value {
    one_deco_fixture(DECO_PASS)
}

fn start_acs(erp: Option<&ErpSim>, extra: &[(&str, &str)]) -> Acs {
    let env = erp.map(|e| e.acs_env()).unwrap_or_default();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(&[
        ("ACS_PROVISIONING", "on"),
        ("ACS_HOSTS_COLLECT", "on"),
        ("ACS_ERPNEXT_CACHE_TTL_S", "30"),
        ("ACS_CR_MIN_INTERVAL_S", "0"),
        ("RUST_LOG", "debug"),
    ]);
    all.extend_from_slice(extra);
    Acs::start(&all)
}

/// The id of the only device whose serial is `serial`, once it informed.
fn device_by_serial(acs: &Acs, serial: &str) -> String {
    wait_until(&format!("device {serial}"), 20, || {
        let (_, body) = acs.api_get(&format!("/api/v1/devices?q={serial}"));
        body["devices"]
            .as_array()?
            .iter()
            .find(|d| d["serial_number"] == serial)
            .map(|d| d["id"].as_str().unwrap().to_owned())
    })
}

fn device(acs: &Acs, id: &str) -> Value {
    let (status, body) = acs.api_get(&format!("/api/v1/devices/{}", encode_segment(id)));
    assert_eq!(status, 200, "{body}");
    body
}

fn api(acs: &Acs, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = format!("Bearer {}", common::TOKEN);
    let mut headers = vec![("Authorization", auth.as_str())];
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    let r = HttpConn::connect(acs.api).request(method, path, &headers, payload.as_bytes());
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

// ---------------------------------------------------------------------------
// A small JSON Schema checker for the subset the OpenAPI document uses.

fn check_schema(doc: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        let target = &doc["components"]["schemas"][name];
        assert!(target.is_object(), "dangling {r}");
        return check_schema(doc, target, v, at, errors);
    }
    if let Some(options) = schema["oneOf"].as_array() {
        let fits = options
            .iter()
            .filter(|o| {
                let mut e = Vec::new();
                check_schema(doc, o, v, at, &mut e);
                e.is_empty()
            })
            .count();
        if fits != 1 {
            errors.push(format!("{at}: {fits} oneOf branches fit {v}"));
        }
        return;
    }
    if let Some(c) = schema.get("const") {
        if c != v {
            errors.push(format!("{at}: {v} is not {c}"));
        }
    }
    if let Some(e) = schema["enum"].as_array() {
        if !e.contains(v) {
            errors.push(format!("{at}: {v} not in {e:?}"));
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !types.is_empty() {
        let ok = types.iter().any(|t| match *t {
            "null" => v.is_null(),
            "string" => v.is_string(),
            "boolean" => v.is_boolean(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "array" => v.is_array(),
            "object" => v.is_object(),
            _ => false,
        });
        if !ok {
            errors.push(format!("{at}: {v} is not {types:?}"));
            return;
        }
    }
    if let (Some(obj), Some(props)) = (v.as_object(), schema["properties"].as_object()) {
        for req in schema["required"].as_array().into_iter().flatten() {
            let k = req.as_str().unwrap();
            if !obj.contains_key(k) {
                errors.push(format!("{at}: missing `{k}`"));
            }
        }
        for (k, val) in obj {
            match props.get(k) {
                Some(s) => check_schema(doc, s, val, &format!("{at}.{k}"), errors),
                None => errors.push(format!("{at}: `{k}` is not in the schema")),
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            check_schema(doc, items, item, &format!("{at}[{i}]"), errors);
        }
    }
}

/// Checks an answer against the OpenAPI document's schema for that
/// operation and status.
fn conforms(doc: &Value, method: &str, path_template: &str, status: u16, body: &Value) {
    let op = &doc["paths"][path_template][method.to_ascii_lowercase()];
    assert!(op.is_object(), "{method} {path_template} is not documented");
    let resp = &op["responses"][status.to_string()];
    assert!(
        resp.is_object(),
        "{method} {path_template} answered {status}, which is not documented"
    );
    let schema = &resp["content"]["application/json"]["schema"];
    if schema.is_null() {
        return;
    }
    let mut errors = Vec::new();
    check_schema(doc, schema, body, "$", &mut errors);
    assert!(
        errors.is_empty(),
        "{method} {path_template} {status} does not match its schema:\n{}\n{body:#}",
        errors.join("\n")
    );
}

// ---------------------------------------------------------------------------

/// The MAC `base` + `n` in the last byte, lower case with colons.
fn mac_plus(base: &str, n: u8) -> String {
    let mut b: Vec<u8> = base
        .split(':')
        .map(|p| u8::from_str_radix(p, 16).unwrap())
        .collect();
    if n > 0 {
        // cpe-sim flips the locally-administered-range bit for derived MACs.
        b[3] ^= 0x80;
    }
    b[5] = b[5].wrapping_add(n);
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[test]
fn deco_mesh_topology_places_every_client_under_its_node_with_its_signal() {
    let acs = start_acs(None, &[]);
    let mac = "1C:61:B4:00:10:00";
    let _sim = SimDevice::start(
        &acs,
        "deco",
        "DECOTOPO1",
        &["--mac", mac, "--satellites", "2", "--clients", "20"],
    );
    let id = device_by_serial(&acs, "DECOTOPO1");
    // The bootstrap session collects the host tables.
    wait_until("host table collected", 20, || {
        device(&acs, &id)["hosts_collected_at"].as_str().map(|_| ())
    });
    let path = format!("/api/v1/devices/{}/hosts", encode_segment(&id));
    let (status, hosts) = acs.api_get(&path);
    assert_eq!(status, 200, "{hosts}");
    let (_, doc) = acs.api_get("/api/v1/openapi.json");
    conforms(&doc, "GET", "/api/v1/devices/{id}/hosts", 200, &hosts);

    let nodes = hosts["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3, "controller + 2 satellites: {hosts:#}");
    assert_eq!(nodes[0]["role"], "controller");
    assert_eq!(nodes[0]["mac"], mac_plus(mac, 0));
    for (k, node) in nodes.iter().enumerate().skip(1) {
        assert_eq!(node["role"], "satellite");
        assert_eq!(node["mac"], mac_plus(mac, k as u8));
        let backhaul = &node["backhaul"];
        let expect_link = if k % 2 == 1 { "wifi" } else { "ethernet" };
        assert_eq!(backhaul["link"], expect_link, "{node}");
    }
    // Ground truth of cpe-sim's generator: client c is on node c % 3 with
    // -35 - (7c mod 46) dBm (satellites report it as RCPI).
    let mut placed = 0;
    for c in 0u8..20 {
        let client_mac = mac_plus(mac, 20 + c);
        let node = usize::from(c % 3);
        let dbm = -35 - (i64::from(c) * 7 % 46);
        let found = nodes[node]["clients"]
            .as_array()
            .unwrap()
            .iter()
            .find(|cl| cl["mac"] == client_mac)
            .unwrap_or_else(|| {
                panic!("client {c} ({client_mac}) not under node {node}: {hosts:#}")
            });
        assert_eq!(
            found["signal_dbm"].as_f64(),
            Some(dbm as f64),
            "client {c}: {found}"
        );
        let q = found["signal_quality"].as_u64().unwrap();
        assert!(q <= 100);
        assert!(found["connection"].as_str().unwrap().starts_with("wifi"));
        placed += 1;
    }
    assert_eq!(placed, 20);
    let totals = &hosts["totals"];
    assert_eq!(totals["wifi_direct"], 7, "{totals}"); // c % 3 == 0: 0, 3, .., 18
    assert_eq!(totals["wifi_via_mesh"], 13, "{totals}");
    assert_eq!(totals["wired"], 2, "{totals}");
    assert_eq!(totals["all"], 22, "{totals}");
    assert!(
        hosts["unplaced"].as_array().unwrap().is_empty(),
        "{hosts:#}"
    );

    // On demand: a connection request, the device re-reads its tables, and
    // the answer carries the fresh topology.
    let r = HttpConn::connect(acs.api).request(
        "GET",
        &format!("{path}?refresh=true&wait=20"),
        &[("Authorization", &format!("Bearer {}", common::TOKEN))],
        b"",
    );
    assert_eq!(r.status, 200);
    let refreshed: Value = serde_json::from_slice(&r.body).unwrap();
    conforms(&doc, "GET", "/api/v1/devices/{id}/hosts", 200, &refreshed);
    assert_eq!(
        refreshed["refresh"]["task"]["status"], "done",
        "{refreshed:#}"
    );
    assert_eq!(refreshed["refresh"]["connection_request"]["ok"], true);
    assert_eq!(refreshed["totals"]["all"], 22);
    // The refresh answers with the topology its session built from the
    // tables it read; built again from the store, it is the same.
    let (status, again) = acs.api_get(&path);
    assert_eq!(status, 200);
    assert_eq!(again["collected_at"], refreshed["collected_at"]);
    for field in ["profile", "nodes", "unplaced", "totals"] {
        assert_eq!(again[field], refreshed[field], "{field}");
    }
}

#[test]
fn ont_optical_power_in_dbm_matches_the_raw_values() {
    let acs = start_acs(None, &[]);
    let _tplg = SimDevice::start(&acs, "tplg-ont", "TPLGOPT1", &["--gpon-sn", "TPLG0000AB01"]);
    let _rcmg = SimDevice::start(
        &acs,
        "rcmg-ont",
        "RCMG0000AB02",
        &["--gpon-sn", "RCMG0000AB02"],
    );
    let (_, doc) = acs.api_get("/api/v1/openapi.json");
    for (serial, rx_raw, tx_raw) in [
        ("TPLGOPT1", 5624.0, 14880.0),
        ("RCMG0000AB02", 1285.0, 14880.0),
    ] {
        let id = device_by_serial(&acs, serial);
        let d = wait_until("diagnostics", 20, || {
            let d = device(&acs, &id);
            d["diagnostics"]["optical"]["rx_dbm"].as_f64().map(|_| d)
        });
        conforms(&doc, "GET", "/api/v1/devices/{id}", 200, &d);
        let o = &d["diagnostics"]["optical"];
        assert_eq!(o["unit"], "0.1uW");
        assert_eq!(
            o["rx_raw"].as_str().unwrap().parse::<f64>().unwrap(),
            rx_raw
        );
        // dBm = 10·log10(v / 10000), two decimals.
        let expect = |raw: f64| ((10.0 * (raw / 10_000.0).log10()) * 100.0).round() / 100.0;
        assert_eq!(o["rx_dbm"].as_f64().unwrap(), expect(rx_raw), "{o}");
        assert_eq!(o["tx_dbm"].as_f64().unwrap(), expect(tx_raw), "{o}");
        // The management URL is the first WAN address (the Raisecom export
        // has its TR-069 VLAN first); the TP-Link simulator's WAN address is
        // loopback, which is no WAN address, so it falls back to the address
        // the device gave for connection requests.
        let url = d["management_url"].as_str().unwrap();
        match d["diagnostics"]["wan_ipv4"][0]["address"].as_str() {
            Some(wan) => assert_eq!(url, format!("http://{wan}/")),
            None => assert!(url.starts_with("http://127.0.0.1"), "{d:#}"),
        }
    }
    // 5624 (0.1 µW) is -2.50 dBm: the figure the ISP's Ops app shows.
    let id = device_by_serial(&acs, "TPLGOPT1");
    assert_eq!(
        device(&acs, &id)["diagnostics"]["optical"]["rx_dbm"].as_f64(),
        Some(-2.5)
    );
}

#[test]
fn reprovision_after_a_password_change_in_erpnext_reaches_the_device_in_one_call() {
    let erp = ErpSim::start(&erp_fixture());
    let acs = start_acs(Some(&erp), &[]);
    let sim = SimDevice::start(&acs, "deco", "DECO11", &["--mac", DECO_MAC]);
    let id = device_by_serial(&acs, "DECO11");
    wait_until("provisioned", 20, || {
        (device(&acs, &id)["provisioning"]["status"] == "provisioned").then_some(())
    });
    let passphrase = "Device.WiFi.AccessPoint.1.Security.KeyPassphrase";
    wait_until("first passphrase on the device", 10, || {
        (sim.value(passphrase).as_deref() == Some(DECO_PASS)).then_some(())
    });
    let d = device(&acs, &id);
    assert_eq!(d["erpnext"]["equipment"], "EQ-00001", "{d:#}");
    assert_eq!(d["erpnext"]["customer"], "Jean Tremblay");
    assert_eq!(d["erpnext"]["status"], "Actif");

    // What would be pushed now: nothing, the device is up to date.
    let (status, preview) = acs.api_get(&format!(
        "/api/v1/devices/{}/provision",
        encode_segment(&id)
    ));
    assert_eq!(status, 200, "{preview}");
    let (_, doc) = acs.api_get("/api/v1/openapi.json");
    conforms(&doc, "GET", "/api/v1/devices/{id}/provision", 200, &preview);
    assert_eq!(preview["equipment"], "EQ-00001");

    let (status, _) = erp.call(
        "PUT",
        "/api/resource/Service%20Equipment/EQ-00001",
        Some(&json!({"custom_wifi_password": "Nouveau-mdp-2026"})),
    );
    assert_eq!(status, 200);
    let (status, preview) = acs.api_get(&format!(
        "/api/v1/devices/{}/provision",
        encode_segment(&id)
    ));
    assert_eq!(status, 200);
    let change = preview["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == passphrase)
        .unwrap_or_else(|| panic!("passphrase not planned: {preview:#}"));
    assert_eq!(change["value"], "********");
    assert_eq!(change["secret"], true);

    let (status, body) = api(
        &acs,
        "POST",
        &format!(
            "/api/v1/devices/{}/reprovision?wait=30",
            encode_segment(&id)
        ),
        None,
    );
    assert_eq!(status, 200, "{body:#}");
    conforms(&doc, "POST", "/api/v1/devices/{id}/reprovision", 200, &body);
    assert_eq!(body["task"]["status"], "done", "{body:#}");
    assert_eq!(body["task"]["name"], "reprovision");
    assert_eq!(body["connection_request"]["ok"], true, "{body:#}");
    assert_eq!(body["connection_request"]["transport"], "http");
    wait_until("new passphrase on the device", 10, || {
        (sim.value(passphrase).as_deref() == Some("Nouveau-mdp-2026")).then_some(())
    });

    // The latest connection request shows on the device.
    let d = device(&acs, &id);
    assert_eq!(d["connection_request"]["ok"], true);

    // Search by MAC in any spelling and by equipment name finds it.
    for q in [
        "1c-61-b4-aa-00-11",
        "1C61.B4AA.0011",
        "1c61b4aa0011",
        "eq-00001",
        "DECO1",
        "jean tremblay",
    ] {
        let (status, found) = acs.api_get(&format!("/api/v1/devices?q={}", q.replace(' ', "+")));
        assert_eq!(status, 200);
        conforms(&doc, "GET", "/api/v1/devices", 200, &found);
        let ids: Vec<&str> = found["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [id.as_str()], "q={q}");
    }
    let (_, none) = acs.api_get("/api/v1/devices?q=00:00:00:12:34:56");
    assert!(none["devices"].as_array().unwrap().is_empty());

    let logs = acs.logs();
    for secret in [DECO_PASS, "Nouveau-mdp-2026", &erp.secret] {
        assert!(!logs.contains(secret), "a secret reached the ACS log");
    }
}

#[test]
fn the_event_stream_delivers_device_provisioned() {
    let erp = ErpSim::start(&erp_fixture());
    let acs = start_acs(Some(&erp), &[]);
    let stream = EventStream::open(acs.api);
    let _sim = SimDevice::start(&acs, "deco", "DECO11", &["--mac", DECO_MAC]);
    // The events up to the first `device.provisioned`.
    let events = wait_until("device.provisioned on the event stream", 30, || {
        let all = stream.events();
        let at = all.iter().position(|(k, _)| k == "device.provisioned")?;
        Some(all[..=at].to_vec())
    });
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert!(kinds.contains(&"device.online"), "{kinds:?}");
    assert!(kinds.contains(&"device.bootstrap"), "{kinds:?}");
    let (kind, provisioned) = events.last().unwrap();
    assert_eq!(kind, "device.provisioned", "{kinds:?}");
    let (_, doc) = acs.api_get("/api/v1/openapi.json");
    let mut errors = Vec::new();
    check_schema(
        &doc,
        &json!({"$ref": "#/components/schemas/Event"}),
        provisioned,
        "$",
        &mut errors,
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(provisioned["data"]["equipment"], "EQ-00001");
    assert!(!provisioned.to_string().contains(DECO_PASS));

    // A filter on types only lets those through; unknown types are a 400.
    let (status, body) = api(&acs, "GET", "/api/v1/events?types=device.gone", None);
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("device.gone")
    );
}

#[test]
fn tokens_metrics_and_the_openapi_document() {
    let acs = start_acs(None, &[]);
    // Every non-public route refuses a missing or wrong token, with a JSON
    // error; public ones answer without.
    for r in ROUTES {
        let path = r
            .path
            .replace("{id}", "1")
            .replace("{username}", "u")
            .replace("{name}", "u");
        for auth in [None, Some("Bearer wrong-token-0123456789")] {
            let headers: Vec<(&str, &str)> =
                auth.map(|a| ("Authorization", a)).into_iter().collect();
            let resp = HttpConn::connect(acs.api).request(r.method, &path, &headers, b"{}");
            if r.public && r.op_id == "login" {
                // No token needed; `{}` names no user.
                assert_eq!(resp.status, 400, "{} {path}", r.method);
            } else if r.public {
                assert_eq!(resp.status, 200, "{} {path}", r.method);
            } else {
                assert_eq!(resp.status, 401, "{} {path} with {auth:?}", r.method);
                let body: Value = serde_json::from_slice(&resp.body).unwrap();
                assert_eq!(body["error"]["code"], "unauthorized");
            }
        }
    }

    // The document lists every route, and only those.
    let (status, doc) = acs.api_get("/api/v1/openapi.json");
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            assert!(
                ROUTES
                    .iter()
                    .any(|r| r.path == path && r.method.eq_ignore_ascii_case(method)),
                "{method} {path} documented but not routed"
            );
            documented += 1;
        }
    }
    assert_eq!(documented, ROUTES.len());
    for r in ROUTES {
        let op = &doc["paths"][r.path][r.method.to_ascii_lowercase()];
        assert!(op["operationId"].is_string(), "{} {}", r.method, r.path);
    }

    // Metrics: Prometheus text, no token.
    let m = HttpConn::connect(acs.api).request("GET", "/metrics", &[], b"");
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    let text = m.text();
    for name in [
        "acs_informs_total",
        "acs_sessions_active",
        "acs_rpcs_sent_total",
        "acs_faults_total{source=\"cpe\"}",
        "acs_connection_requests_total{result=\"ok\"}",
        "acs_erpnext_wait_seconds_bucket{le=\"+Inf\"}",
        "acs_cwmp_in_flight",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
    let (_, health) = acs.api_get("/healthz");
    conforms(&doc, "GET", "/healthz", 200, &health);
}

#[test]
fn named_tasks_are_checked_queued_cancelled_and_retried() {
    let acs = start_acs(
        None,
        &[("ACS_HOSTS_COLLECT", "off"), ("ACS_PROVISIONING", "off")],
    );
    let mut cpe = acs.cpe();
    assert_eq!(
        cpe.post_str(&inform_xml("SOAP-ENV", "1-0", "1", "TASKS1", &["1 BOOT"]))
            .status,
        200
    );
    assert_eq!(cpe.empty().status, 204);
    let id = encode_segment(&common::device_id("TASKS1"));
    let tasks_path = format!("/api/v1/devices/{id}/tasks");
    let (_, doc) = acs.api_get("/api/v1/openapi.json");

    // Bad input: 400 naming the field, nothing queued.
    for (body, field) in [
        (json!({"name": "frobnicate"}), "name"),
        (
            json!({"name": "setParameterValues", "parameterValues": [["Device.WiFi.SSID.1.SSID", "x".repeat(40)]]}),
            "parameterValues[0]",
        ),
        (
            json!({"name": "getParameterValues", "parameterNames": ["Device.*.X"]}),
            "parameterNames[0]",
        ),
        (json!({"name": "reboot", "when": "now"}), "when"),
    ] {
        let (status, err) = api(&acs, "POST", &tasks_path, Some(&body));
        assert_eq!(status, 400, "{body}");
        conforms(&doc, "POST", "/api/v1/devices/{id}/tasks", 400, &err);
        assert!(
            err["error"]["message"].as_str().unwrap().contains(field),
            "{err}"
        );
    }
    let (status, malformed) = {
        let r = HttpConn::connect(acs.api).request(
            "POST",
            &tasks_path,
            &[("Authorization", &format!("Bearer {}", common::TOKEN))],
            b"{not json",
        );
        (r.status, serde_json::from_slice::<Value>(&r.body).unwrap())
    };
    assert_eq!(status, 400);
    assert_eq!(malformed["error"]["code"], "bad_request");
    let (_, list) = acs.api_get(&tasks_path);
    assert!(list["tasks"].as_array().unwrap().is_empty(), "{list}");

    // Queue, cancel one, run the other.
    let (status, a) = api(
        &acs,
        "POST",
        &tasks_path,
        Some(
            &json!({"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo.SoftwareVersion"]}),
        ),
    );
    assert_eq!(status, 201, "{a}");
    conforms(&doc, "POST", "/api/v1/devices/{id}/tasks", 201, &a);
    let (status, b) = api(&acs, "POST", &tasks_path, Some(&json!({"name": "reboot"})));
    assert_eq!(status, 201);
    let b_id = b["task"]["id"].as_u64().unwrap();
    let (status, cancelled) = api(&acs, "DELETE", &format!("/api/v1/tasks/{b_id}"), None);
    assert_eq!(status, 200, "{cancelled}");
    conforms(&doc, "DELETE", "/api/v1/tasks/{id}", 200, &cancelled);
    assert_eq!(cancelled["status"], "cancelled");
    let (status, _) = api(&acs, "DELETE", &format!("/api/v1/tasks/{b_id}"), None);
    assert_eq!(status, 409);

    let mut cpe = acs.cpe();
    cpe.post_str(&inform_xml(
        "SOAP-ENV",
        "1-0",
        "2",
        "TASKS1",
        &["2 PERIODIC"],
    ));
    let r = cpe.empty();
    assert!(r.text().contains("GetParameterValues"), "{}", r.text());
    let req_id = between(&r.text(), "mustUnderstand=\"1\">", "</cwmp:ID>")
        .unwrap()
        .to_owned();
    // The CPE refuses it: a fault, then a retry through DELETE /faults/{id}.
    let fault = response_xml(
        &req_id,
        r#"<soapenv:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring><detail><cwmp:Fault><FaultCode>9005</FaultCode><FaultString>Invalid parameter name</FaultString></cwmp:Fault></detail></soapenv:Fault>"#,
    );
    assert_eq!(cpe.post_str(&fault).status, 204, "reboot was cancelled");
    let (_, faults) = acs.api_get("/api/v1/faults");
    conforms(&doc, "GET", "/api/v1/faults", 200, &faults);
    let f = &faults["faults"][0];
    assert_eq!(f["code"], 9005);
    let (status, retried) = api(&acs, "DELETE", &format!("/api/v1/faults/{}", f["id"]), None);
    assert_eq!(status, 200, "{retried}");
    conforms(&doc, "DELETE", "/api/v1/faults/{id}", 200, &retried);
    assert_eq!(retried["retry_task"]["status"], "pending");
    assert_eq!(retried["retry_task"]["name"], "getParameterValues");
    let (status, _) = api(&acs, "DELETE", &format!("/api/v1/faults/{}", f["id"]), None);
    assert_eq!(status, 404);
    let (_, list) = acs.api_get(&tasks_path);
    conforms(&doc, "GET", "/api/v1/devices/{id}/tasks", 200, &list);
    let statuses: Vec<&str> = list["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["failed", "cancelled", "pending"]);

    // Reprovision without provisioning: a clear 409.
    let (status, err) = api(
        &acs,
        "POST",
        &format!("/api/v1/devices/{id}/reprovision"),
        None,
    );
    assert_eq!(status, 409);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ACS_PROVISIONING")
    );
    // Nothing listens at the device's connection request URL: the result
    // says so, and no credential or URL shows in it.
    let (status, cr) = api(
        &acs,
        "POST",
        &format!("/api/v1/devices/{id}/connection-request"),
        None,
    );
    assert_eq!(status, 200);
    conforms(
        &doc,
        "POST",
        "/api/v1/devices/{id}/connection-request",
        200,
        &cr,
    );
    assert_eq!(cr["ok"], false, "{cr}");
    assert!(!cr["detail"].as_str().unwrap().contains("30005"), "{cr}");
    let (status, _) = api(&acs, "GET", "/api/v1/devices/nope/hosts", None);
    assert_eq!(status, 404);
}

/// A webhook receiver: answers 500 to the first POST and 200 after, and
/// hands over each (signature, body) it accepted.
fn webhook_receiver() -> (
    std::net::SocketAddr,
    std::sync::mpsc::Receiver<(String, Vec<u8>)>,
) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut first = true;
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream);
            loop {
                // One request: headers, then Content-Length bytes.
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let mut length = 0;
                let mut signature = String::new();
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h == "\r\n" {
                        break;
                    }
                    let lower = h.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    if lower.starts_with("x-gigafibre-signature:") {
                        signature = h.split_once(':').unwrap().1.trim().to_owned();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let status = if first {
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                };
                if !first {
                    let _ = tx.send((signature, body));
                }
                first = false;
                let _ = write!(
                    reader.get_mut(),
                    "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n"
                );
            }
        }
    });
    (addr, rx)
}

#[test]
fn the_webhook_gets_signed_events_and_retries() {
    let (addr, rx) = webhook_receiver();
    let url = format!("http://{addr}/hook");
    let acs = start_acs(
        None,
        &[
            ("ACS_WEBHOOK_URL", &url),
            ("ACS_WEBHOOK_SECRET", "webhook-secret-0123"),
            ("ACS_PROVISIONING", "off"),
            ("ACS_HOSTS_COLLECT", "off"),
        ],
    );
    let mut cpe = acs.cpe();
    cpe.post_str(&inform_xml(
        "SOAP-ENV",
        "1-0",
        "1",
        "HOOK1",
        &["0 BOOTSTRAP"],
    ));
    // The first delivery gets a 500 and is retried a second later.
    let (signature, body) = rx.recv_timeout(Duration::from_secs(15)).unwrap();
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["type"], "device.online", "{event}");
    assert_eq!(event["device_id"], common::device_id("HOOK1"));
    // The receiver checks the HMAC-SHA256 of the exact bytes it got.
    let tag = signature.strip_prefix("sha256=").unwrap();
    let tag: Vec<u8> = (0..tag.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&tag[i..i + 2], 16).unwrap())
        .collect();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"webhook-secret-0123");
    ring::hmac::verify(&key, &body, &tag).expect("signature verifies");
    let (_, next) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let next: Value = serde_json::from_slice(&next).unwrap();
    assert_eq!(next["type"], "device.bootstrap", "in order: {next}");
    assert!(!acs.logs().contains("webhook-secret-0123"));
}
