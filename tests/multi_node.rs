//! Several ACS nodes on one PostgreSQL (a real server the tests start):
//! a device in one session at a time across the nodes, a session's
//! exchanges reaching the node that holds it, tasks and events crossing
//! nodes, and a fleet behind a TCP balancer that survives `kill -9` of a
//! node and a database restart. Skipped, saying so, without PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::postgres::PgServer;
use common::*;
use serde_json::{Value, json};

fn node(url: &str, name: &str, extra: &[(&str, &str)]) -> Acs {
    let mut env = vec![("ACS_STORE_URL", url), ("ACS_NODE_NAME", name)];
    env.extend_from_slice(extra);
    Acs::start(&env)
}

fn gpv(name: &str) -> Value {
    json!({"GetParameterValues": {"names": [name]}})
}

fn task(acs: &Acs, id: u64) -> Value {
    acs.api_get(&format!("/api/v1/tasks/{id}")).1
}

#[test]
fn a_session_goes_on_through_the_other_node_and_tasks_and_events_cross_nodes() {
    let Some(pg) = PgServer::start() else {
        return;
    };
    let url = pg.create("acs");
    let (a, b) = (node(&url, "a", &[]), node(&url, "b", &[]));
    let events_b = EventStream::open(b.api);
    let serial = "XNODE1";
    let id = device_id(serial);

    // Bootstrap on a.
    let mut on_a = a.cpe();
    let r = on_a.post_str(&inform_xml("soapenv", "1-0", "1", serial, &["0 BOOTSTRAP"]));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(on_a.cookie.is_some());

    // While a holds the session, b refuses the device another one.
    let mut on_b = b.cpe();
    let r = on_b.post_str(&inform_xml("soapenv", "1-0", "2", serial, &["2 PERIODIC"]));
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    assert!(r.text().contains("another ACS node"), "{}", r.text());

    // b's API knows the device is in session, on a.
    let listed = devices(&b);
    assert_eq!(listed[0]["session_active"], true, "{listed:?}");
    let (_, one) = b.api_get(&format!("/api/v1/devices/{}", encode_segment(&id)));
    assert_eq!(one["session_active"], true, "{one}");

    // A task queued through b reaches the session a holds.
    let t1 = b.queue(&id, gpv("Device.DeviceInfo.UpTime"));
    std::thread::sleep(Duration::from_millis(1500));

    // The CPE's next request arrives at b on a new connection, with its
    // cookie: b forwards it to a, which answers with the task.
    let mut moved = b.cpe();
    moved.cookie = on_a.cookie.clone();
    let r = moved.empty();
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(text.contains("GetParameterValues"), "{text}");
    assert!(text.contains("Device.DeviceInfo.UpTime"), "{text}");
    let rpc_id = between(&text, "mustUnderstand=\"1\">", "</")
        .unwrap()
        .to_owned();
    let answer = response_xml(
        &rpc_id,
        r#"<cwmp:GetParameterValuesResponse><ParameterList><ParameterValueStruct><Name>Device.DeviceInfo.UpTime</Name><Value xsi:type="xsd:unsignedInt">42</Value></ParameterValueStruct></ParameterList></cwmp:GetParameterValuesResponse>"#,
    );
    let mut again = b.cpe();
    again.cookie = on_a.cookie.clone();
    let r = again.post_str(&answer);
    assert_eq!(r.status, 204, "{}", r.text());
    let t = task(&b, t1);
    assert_eq!(t["status"], "done", "{t}");

    // The session is over: b may now hold the device.
    let mut on_b = b.cpe();
    let r = on_b.post_str(&inform_xml("soapenv", "1-0", "3", serial, &["2 PERIODIC"]));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(on_b.empty().status, 204);

    // b's event stream shows what happened on a.
    wait_until("a's events on b's stream", 10, || {
        let boots = events_b.devices("device.bootstrap");
        let done = events_b.devices("task.done");
        (boots.contains(&id) && done.contains(&id)).then_some(())
    });
    let logs = a.logs();
    assert!(logs.contains("session started"), "{logs}");
    assert!(
        !b.logs().contains("0 BOOTSTRAP"),
        "the bootstrap session was a's"
    );
    // b counted what it did for a's session.
    let metrics = HttpConn::connect(b.api)
        .request(
            "GET",
            "/metrics",
            &[("Authorization", &format!("Bearer {TOKEN}"))],
            b"",
        )
        .text();
    assert!(metrics.contains("acs_cwmp_forwarded_total 2"), "{metrics}");
    assert!(
        metrics.contains("acs_sessions_held_elsewhere_total 1"),
        "{metrics}"
    );
    // A cookie nobody holds is not forwarded anywhere.
    let mut stray = b.cpe();
    stray.cookie = Some("session=0123456789abcdef0123456789abcdef".into());
    let r = stray.empty();
    assert_eq!(r.status, 204, "{}", r.text());
}

/// erpnext-sim's fixture for a `cpe-sim` fleet (`cpe-sim fixture`).
fn fleet_fixture(count: u32, prefix: &str) -> Value {
    let out = std::process::Command::new(workspace_bin("cpe-sim"))
        .args(["fixture", "--model", "mixed", "--count", &count.to_string()])
        .args(["--serial-prefix", prefix])
        .output()
        .unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn devices(acs: &Acs) -> Vec<Value> {
    let (status, list) = acs.api_get("/api/v1/devices?limit=1000");
    if status != 200 {
        return Vec::new();
    }
    list["devices"].as_array().cloned().unwrap_or_default()
}

fn unix_ms(rfc3339: &str) -> u64 {
    // `YYYY-MM-DDTHH:MM:SS[.mmm]Z`, UTC.
    let n = |a: usize, b: usize| rfc3339[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs = days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19);
    let millis = rfc3339
        .get(20..23)
        .and_then(|f| f.parse::<i64>().ok())
        .filter(|_| rfc3339.as_bytes().get(19) == Some(&b'.'))
        .unwrap_or(0);
    (secs * 1000 + millis) as u64
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The devices the API lists as provisioned (through `acs`).
fn provisioned(acs: &Acs) -> Vec<String> {
    devices(acs)
        .iter()
        .filter_map(|d| d["id"].as_str())
        .filter(|id| {
            let (_, full) = acs.api_get(&format!("/api/v1/devices/{}", encode_segment(id)));
            full["provisioning"]["status"] == "provisioned"
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_fleet_behind_a_balancer_survives_nodes_killed_and_the_database_restarted() {
    let Some(pg) = PgServer::start() else {
        return;
    };
    let url = pg.create("acs");
    const COUNT: usize = 24;
    let erp = ErpSim::start(&fleet_fixture(COUNT as u32, "MN"));
    // ERPNext answers slowly: the bootstrap wave lasts long enough to be
    // cut in the middle.
    assert_eq!(
        erp.admin("/_admin/faults", &json!({"latency_ms": 150})),
        200
    );
    let erp_env = erp.acs_env();
    let mut env: Vec<(&str, &str)> = erp_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend_from_slice(&[
        ("ACS_PROVISIONING", "on"),
        ("ACS_ERPNEXT_CACHE_TTL_S", "0"),
        ("ACS_CR_MIN_INTERVAL_S", "0"),
    ]);
    let mut a = node(&url, "a", &env);
    let b = node(&url, "b", &env);
    // The balancer knows a's address: a restarted a listens there again.
    let a_cwmp = a.cwmp;
    let lb = Balancer::start(vec![a_cwmp, b.cwmp]);
    let events_b = EventStream::open(b.api);
    let state = tempfile::tempdir().unwrap();
    let acs_url = format!("http://{}/", lb.addr);
    let mut fleet = std::process::Command::new(workspace_bin("cpe-sim"))
        .args(["fleet", "--acs", &acs_url, "--model", "mixed"])
        .args(["--count", &COUNT.to_string(), "--concurrency", "12"])
        .args([
            "--inform-interval",
            "1",
            "--duration",
            "180",
            "--timeout",
            "10",
        ])
        .args(["--serial-prefix", "MN", "--connection-requests", "--json"])
        .arg("--state-dir")
        .arg(state.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    // 1. `kill -9` a in the middle of the bootstrap wave: some devices
    // provisioned, others in a session on a (discovery, ERPNext, pushing
    // the configuration).
    wait_until("a third of the fleet provisioned", 60, || {
        (provisioned(&b).len() >= COUNT / 3).then_some(())
    });
    a.kill9();
    let ids = wait_until("the whole fleet provisioned through b", 90, || {
        let p = provisioned(&b);
        (p.len() == COUNT).then_some(p)
    });
    assert!(
        lb.count(0) > 0 && lb.count(1) > 0,
        "both nodes took connections"
    );

    // 2. a comes back on its address; tasks acknowledged by each node, with
    // connection requests; a killed again while they run.
    let a_listen = a_cwmp.to_string();
    let mut a = node(
        &url,
        "a",
        &[env.as_slice(), &[("ACS_CWMP_LISTEN", a_listen.as_str())]].concat(),
    );
    let roots: std::collections::BTreeMap<String, String> = devices(&b)
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_owned(),
                d["data_model"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut tasks = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let via = if i % 2 == 0 { &a } else { &b };
        let (status, body) = via.api_post(
            &format!(
                "/api/v1/devices/{}/tasks?connection_request=true",
                encode_segment(id)
            ),
            &gpv(&format!("{}DeviceInfo.SoftwareVersion", roots[id])),
        );
        assert_eq!(status, 201, "{body}");
        tasks.push(body["task"]["id"].as_u64().unwrap());
    }
    a.kill9();

    // 3. The database restarts under load: b reconnects.
    std::thread::sleep(Duration::from_secs(2));
    pg.stop();
    std::thread::sleep(Duration::from_secs(2));
    pg.start_again();
    let restarted_at = now_ms();

    // Every device carries on through b, after the restart.
    wait_until("every device informing again after the restart", 60, || {
        let list = devices(&b);
        (list.len() == COUNT
            && list
                .iter()
                .all(|d| unix_ms(d["last_inform"].as_str().unwrap()) > restarted_at))
        .then_some(())
    });
    // No acknowledged task lost: each ran, wherever.
    for t in &tasks {
        let done = wait_until("every acknowledged task done", 60, || {
            let t = task(&b, *t);
            (t["status"] == "done").then_some(t)
        });
        let v = &done["response"]["GetParameterValuesResponse"]["parameters"][0]["value"];
        assert!(v.as_str().is_some_and(|s| !s.is_empty()), "{done}");
    }
    // No device provisioned twice: b's stream, which shows its own events
    // and a's, has at most one `device.provisioned` per device (a's last
    // events before a kill may not have left it); every device is
    // provisioned and ERPNext was updated for each, whichever node drained
    // the write-backs.
    let provisioned_events = events_b.devices("device.provisioned");
    for id in &ids {
        let n = provisioned_events.iter().filter(|p| *p == id).count();
        assert!(n <= 1, "{id} provisioned {n} times: {provisioned_events:?}");
    }
    assert!(
        provisioned_events.len() >= COUNT - 2,
        "b's stream shows a's provisioning too: {provisioned_events:?}"
    );
    assert_eq!(provisioned(&b).len(), COUNT);
    for i in 0..COUNT {
        let name = format!("EQ-MN-{i:05}");
        wait_until("ERPNext updated for every device", 30, || {
            (erp.equipment(&name)["status"] == "Actif").then_some(())
        });
    }
    let _ = fleet.kill();
    let _ = fleet.wait();
    assert!(
        b.logs().contains("PostgreSQL connection re-established"),
        "b reconnected after the restart"
    );
}

#[test]
fn nodes_starting_together_on_an_empty_database_migrate_it_once() {
    let Some(pg) = PgServer::start() else {
        return;
    };
    let url = pg.create("fresh");
    let nodes: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|name| {
            let url = url.clone();
            std::thread::spawn(move || node(&url, name, &[]))
        })
        .collect();
    let nodes: Vec<Acs> = nodes.into_iter().map(|h| h.join().unwrap()).collect();
    for n in &nodes {
        assert_eq!(n.api_get("/healthz").0, 200);
    }
    // One row per schema version: each migration ran once.
    assert_eq!(
        pg.column("fresh", "SELECT version FROM acs_schema ORDER BY version"),
        ["1", "2"]
    );
    // The nodes see each other's devices.
    let mut cpe = nodes[0].cpe();
    let r = cpe.post_str(&inform_xml(
        "soapenv",
        "1-0",
        "1",
        "FRESH1",
        &["0 BOOTSTRAP"],
    ));
    assert_eq!(r.status, 200);
    assert_eq!(cpe.empty().status, 204);
    let (status, d) = nodes[2].api_get(&format!("/api/v1/devices/{}", device_id("FRESH1")));
    assert_eq!(status, 200, "{d}");
}
