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
    // A cookie nobody holds is not forwarded anywhere.
    let mut stray = b.cpe();
    stray.cookie = Some("session=0123456789abcdef0123456789abcdef".into());
    let r = stray.empty();
    assert_eq!(r.status, 204, "{}", r.text());
}
