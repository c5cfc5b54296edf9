//! The GenieACS-compatible NBI, driven the way GenieACS's API reference
//! shows its calls: device queries (by `_id`, serial, `_lastInform`, tag),
//! projection, tasks posted with `connection_request` and run by a
//! scripted CPE, tags, faults, retry, deletion, and authentication.

mod common;

use base64::Engine as _;
use common::{
    Acs, HttpConn, HttpResponse, TOKEN, between, encode_segment, inform_xml, response_xml,
};
use serde_json::{Value, json};
use std::io::Write as _;

fn nbi_acs(extra: &[(&str, &str)]) -> Acs {
    let mut env = vec![("ACS_NBI_LISTEN", "127.0.0.1:0")];
    env.extend_from_slice(extra);
    Acs::start(&env)
}

fn call(acs: &Acs, method: &str, path: &str, auth: Option<&str>, body: &[u8]) -> HttpResponse {
    let addr = acs.nbi.expect("the NBI is listening");
    let mut headers = Vec::new();
    if let Some(a) = auth {
        headers.push(("Authorization", a));
    }
    HttpConn::connect(addr).request(method, path, &headers, body)
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

/// An authenticated NBI call; status and JSON (Null when the body is not JSON).
fn nbi(acs: &Acs, method: &str, path: &str, body: Option<&Value>) -> (u16, Value, HttpResponse) {
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let r = call(acs, method, path, Some(&bearer()), &bytes);
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, v, r)
}

fn devices(acs: &Acs, query: &Value, extra: &str) -> (Vec<Value>, String) {
    let path = format!(
        "/devices/?query={}{extra}",
        encode_segment(&query.to_string())
    );
    let (status, v, r) = nbi(acs, "GET", &path, None);
    assert_eq!(status, 200, "{path}: {}", r.text());
    let total = r.header("total").expect("total header").to_owned();
    (v.as_array().expect("an array").clone(), total)
}

fn collection(acs: &Acs, name: &str, query: &Value) -> Vec<Value> {
    let path = format!("/{name}/?query={}", encode_segment(&query.to_string()));
    let (status, v, r) = nbi(acs, "GET", &path, None);
    assert_eq!(status, 200, "{path}: {}", r.text());
    v.as_array().expect("an array").clone()
}

fn boot(acs: &Acs, serial: &str) -> String {
    let mut cpe = acs.cpe();
    let r = cpe.post_str(&inform_xml("SOAP-ENV", "1-0", "1", serial, &["1 BOOT"]));
    assert_eq!(r.status, 200);
    assert_eq!(cpe.empty().status, 204);
    // The id escapes `-` in the serial, as GenieACS's does.
    common::device_id(&serial.replace('-', "%2D"))
}

/// Opens a session and returns the CPE with the first request the ACS sent
/// (its text) and the request's cwmp:ID.
fn session(acs: &Acs, serial: &str) -> (common::Cpe, String, String) {
    let mut cpe = acs.cpe();
    cpe.post_str(&inform_xml("SOAP-ENV", "1-0", "9", serial, &["2 PERIODIC"]));
    let r = cpe.empty();
    let text = r.text();
    let id = between(&text, "mustUnderstand=\"1\">", "</cwmp:ID>")
        .unwrap_or("")
        .to_owned();
    (cpe, text, id)
}

fn cpe_fault(req_id: &str, code: u32) -> String {
    response_xml(
        req_id,
        &format!(
            r#"<soapenv:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring><detail><cwmp:Fault><FaultCode>{code}</FaultCode><FaultString>Request denied</FaultString></cwmp:Fault></detail></soapenv:Fault>"#
        ),
    )
}

#[test]
fn genieacs_calls_get_genieacs_answers() {
    let acs = nbi_acs(&[]);
    let a = boot(&acs, "NBI-A1");
    let b = boot(&acs, "NBI-B2");

    // Queries as the API reference writes them.
    let (found, total) = devices(&acs, &json!({"_id": a}), "");
    assert_eq!((found.len(), total.as_str()), (1, "1"));
    let doc = &found[0];
    assert_eq!(doc["_id"], a);
    assert_eq!(doc["_deviceId"]["_SerialNumber"], "NBI-A1");
    assert_eq!(doc["_deviceId"]["_OUI"], "1C61B4");
    assert_eq!(doc["_deviceId"]["_ProductClass"], "Device2");
    assert!(doc["_lastInform"].as_str().unwrap().ends_with('Z'));
    assert!(doc["_registered"].is_string());
    assert!(doc.get("_tags").is_none(), "no tags: no _tags, as GenieACS");
    let sw = &doc["Device"]["DeviceInfo"]["SoftwareVersion"];
    assert_eq!(sw["_value"], "1.1.0");
    assert_eq!(sw["_type"], "xsd:string");
    assert_eq!(sw["_object"], false);
    assert!(sw["_timestamp"].is_string());
    assert_eq!(doc["Device"]["DeviceInfo"]["_object"], true);

    let (found, _) = devices(&acs, &json!({"_deviceId._SerialNumber": "NBI-B2"}), "");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["_id"], b);
    let (found, total) = devices(
        &acs,
        &json!({"_lastInform": {"$lt": "2100-01-01T00:00:00Z"}}),
        "&sort=%7B%22_id%22%3A-1%7D&limit=1",
    );
    assert_eq!(total, "2", "total counts every match, before limit");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["_id"], b, "sorted by _id descending");
    let (found, total) = devices(
        &acs,
        &json!({"_lastInform": {"$lt": "2000-01-01T00:00:00Z"}}),
        "",
    );
    assert!(found.is_empty() && total == "0");
    let (found, _) = devices(
        &acs,
        &json!({"Device.DeviceInfo.SoftwareVersion": {"$regex": "^1\\.1"}}),
        "&skip=1",
    );
    assert_eq!(found.len(), 1, "skip");

    // Projection keeps the named paths and `_id`.
    let (found, _) = devices(
        &acs,
        &json!({"_id": a}),
        "&projection=_deviceId._SerialNumber,Device.DeviceInfo.SoftwareVersion._value",
    );
    assert_eq!(
        found[0],
        json!({"_id": a, "_deviceId": {"_SerialNumber": "NBI-A1"}, "Device": {"DeviceInfo": {"SoftwareVersion": {"_value": "1.1.0"}}}})
    );

    // Tags.
    let ida = encode_segment(&a);
    let (status, _, _) = nbi(&acs, "POST", &format!("/devices/{ida}/tags/lab"), None);
    assert_eq!(status, 200);
    let (found, _) = devices(&acs, &json!({"_tags": "lab"}), "");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["_tags"], json!(["lab"]));
    let (status, _, _) = nbi(&acs, "DELETE", &format!("/devices/{ida}/tags/lab"), None);
    assert_eq!(status, 200);
    assert!(devices(&acs, &json!({"_tags": "lab"}), "").0.is_empty());

    // A task with a connection request the device does not answer: 202,
    // queued; the device runs it at its next session.
    let (status, task, r) = nbi(
        &acs,
        "POST",
        &format!("/devices/{ida}/tasks?connection_request&timeout=500"),
        Some(
            &json!({"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo.SoftwareVersion"]}),
        ),
    );
    assert_eq!(status, 202, "{}", r.text());
    let task_id = task["_id"].as_str().unwrap().to_owned();
    assert_eq!(task_id.len(), 24);
    assert_eq!(task["name"], "getParameterValues");
    assert_eq!(task["device"], a);
    assert!(task["timestamp"].is_string());
    let listed = collection(&acs, "tasks", &json!({"device": a}));
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["_id"], task_id);
    assert_eq!(collection(&acs, "tasks", &json!({"_id": task_id})).len(), 1);

    let (mut cpe, text, req) = session(&acs, "NBI-A1");
    assert!(text.contains("GetParameterValues"), "{text}");
    let answer = response_xml(
        &req,
        r#"<cwmp:GetParameterValuesResponse><ParameterList><ParameterValueStruct><Name>Device.DeviceInfo.SoftwareVersion</Name><Value xsi:type="xsd:string">1.2.0</Value></ParameterValueStruct></ParameterList></cwmp:GetParameterValuesResponse>"#,
    );
    assert_eq!(cpe.post_str(&answer).status, 204);
    assert!(
        collection(&acs, "tasks", &json!({"device": a})).is_empty(),
        "a done task leaves the collection, as in GenieACS"
    );
    let (found, _) = devices(
        &acs,
        &json!({"Device.DeviceInfo.SoftwareVersion": "1.2.0"}),
        "",
    );
    assert_eq!(found.len(), 1, "the new value is queryable");

    // A task the device refuses: a fault on the task's channel.
    let (status, reboot, _) = nbi(
        &acs,
        "POST",
        &format!("/devices/{ida}/tasks"),
        Some(&json!({"name": "reboot"})),
    );
    assert_eq!(status, 202);
    let reboot_id = reboot["_id"].as_str().unwrap().to_owned();
    let fail_once = |acs: &Acs| {
        let (mut cpe, text, req) = session(acs, "NBI-A1");
        assert!(text.contains("Reboot"), "{text}");
        cpe.post_str(&cpe_fault(&req, 9001));
    };
    fail_once(&acs);
    let faults = collection(&acs, "faults", &json!({"device": a}));
    assert_eq!(faults.len(), 1, "{faults:?}");
    let fault_id = format!("{a}:task_{reboot_id}");
    assert_eq!(faults[0]["_id"], fault_id);
    assert_eq!(faults[0]["channel"], format!("task_{reboot_id}"));
    assert_eq!(faults[0]["code"], "cwmp.9001");
    assert_eq!(faults[0]["device"], a);
    assert!(faults[0]["timestamp"].is_string() && faults[0]["retries"].is_number());
    let listed = collection(&acs, "tasks", &json!({"_id": reboot_id}));
    assert_eq!(listed[0]["fault"]["code"], "cwmp.9001");

    // Retry: the fault goes, the same task is queued again.
    let (status, _, _) = nbi(&acs, "POST", &format!("/tasks/{reboot_id}/retry"), None);
    assert_eq!(status, 200);
    assert!(collection(&acs, "faults", &json!({})).is_empty());
    let listed = collection(&acs, "tasks", &json!({"_id": reboot_id}));
    assert!(listed[0].get("fault").is_none(), "{listed:?}");
    fail_once(&acs);
    // Deleting a task's fault deletes the task, as GenieACS does.
    let (status, _, _) = nbi(
        &acs,
        "DELETE",
        &format!("/faults/{}", encode_segment(&fault_id)),
        None,
    );
    assert_eq!(status, 200);
    assert!(collection(&acs, "faults", &json!({})).is_empty());
    assert!(collection(&acs, "tasks", &json!({})).is_empty());
    let (status, _, _) = nbi(&acs, "DELETE", &format!("/tasks/{reboot_id}"), None);
    assert_eq!(status, 404);

    // A pending task deleted.
    let (_, t, _) = nbi(
        &acs,
        "POST",
        &format!("/devices/{ida}/tasks"),
        Some(&json!({"name": "factoryReset"})),
    );
    let (status, _, _) = nbi(
        &acs,
        "DELETE",
        &format!("/tasks/{}", t["_id"].as_str().unwrap()),
        None,
    );
    assert_eq!(status, 200);
    assert!(collection(&acs, "tasks", &json!({})).is_empty());

    // Refusals.
    for (method, path, body, want, says) in [
        (
            "GET",
            "/devices/?query=%7Bnope".to_owned(),
            None,
            400,
            "not valid JSON",
        ),
        (
            "GET",
            format!(
                "/devices/?query={}",
                encode_segment(r#"{"_id": {"$where": "1"}}"#)
            ),
            None,
            400,
            "$where",
        ),
        (
            "GET",
            "/devices/?sort=%5B1%5D".to_owned(),
            None,
            400,
            "sort",
        ),
        ("GET", "/presets/".to_owned(), None, 404, "Not Found"),
        ("GET", "/nowhere/at/all".to_owned(), None, 404, "Not Found"),
        ("PUT", "/devices/".to_owned(), None, 405, ""),
        (
            "POST",
            format!("/devices/{ida}/tasks"),
            Some(b"{not json".to_vec()),
            400,
            "not valid JSON",
        ),
        (
            "POST",
            format!("/devices/{ida}/tasks"),
            Some(br#"{"name": "frobnicate"}"#.to_vec()),
            400,
            "frobnicate",
        ),
        (
            "POST",
            format!("/devices/{ida}/tasks"),
            Some(br#"{"name": "getParameterValues", "parameterNames": ["Device..X"]}"#.to_vec()),
            400,
            "parameterNames[0]",
        ),
        (
            "POST",
            "/devices/nobody/tasks".to_owned(),
            Some(br#"{"name": "reboot"}"#.to_vec()),
            404,
            "No such device",
        ),
        (
            "POST",
            "/devices/bad%zz/tasks".to_owned(),
            Some(br#"{"name": "reboot"}"#.to_vec()),
            400,
            "percent",
        ),
        (
            "DELETE",
            "/tasks/zzz".to_owned(),
            None,
            404,
            "Task not found",
        ),
        ("DELETE", "/faults/nobody:default".to_owned(), None, 404, ""),
    ] {
        let r = call(
            &acs,
            method,
            &path,
            Some(&bearer()),
            &body.unwrap_or_default(),
        );
        assert_eq!(r.status, want, "{method} {path}: {}", r.text());
        assert!(r.text().contains(says), "{method} {path}: {}", r.text());
    }
    // A body declared over the limit is refused before it is read. The
    // client waits for `100 Continue` (which never comes) rather than
    // writing a megabyte into a socket the server is closing: that write
    // can fail with a broken pipe before the 413 is read.
    let mut conn = HttpConn::connect(acs.nbi.expect("the NBI is listening"));
    let head = format!(
        "POST /devices/{ida}/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        bearer(),
        (1 << 20) + 10
    );
    conn.stream().write_all(head.as_bytes()).unwrap();
    let r = conn.read_response();
    assert_eq!(r.status, 413, "{}", r.text());

    // Every write went to the audit log, named by its token's hash.
    let (status, log) = acs.api_get("/api/v1/audit?limit=1000");
    assert_eq!(status, 200);
    let entries = log["entries"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["action"] == "nbi POST devices"
            && e["user"].as_str().unwrap().starts_with("token:")
            && e["device_id"].is_string()),
        "{log}"
    );
    assert!(
        !log.to_string().contains(TOKEN),
        "no token in the audit log"
    );

    // Deleting a device.
    let idb = encode_segment(&b);
    let (status, _, _) = nbi(&acs, "DELETE", &format!("/devices/{idb}"), None);
    assert_eq!(status, 200);
    let (all, total) = devices(&acs, &json!({}), "");
    assert_eq!((all.len(), total.as_str()), (1, "1"));
    let (status, _, _) = nbi(&acs, "DELETE", &format!("/devices/{idb}"), None);
    assert_eq!(status, 404);
    let (status, _) = acs.api_get(&format!("/api/v1/devices/{idb}"));
    assert_eq!(status, 404, "gone from the Ops API too");
}

#[test]
fn the_nbi_needs_a_token_except_from_the_allow_list() {
    let acs = nbi_acs(&[]);
    let r = call(&acs, "GET", "/devices/", None, b"");
    assert_eq!(r.status, 401);
    let challenges = r.headers_named("www-authenticate");
    assert!(
        challenges.iter().any(|c| c.starts_with("Bearer")),
        "{challenges:?}"
    );
    assert!(
        challenges.iter().any(|c| c.starts_with("Basic")),
        "{challenges:?}"
    );
    assert!(!r.text().contains(TOKEN));
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("admin:wrong-token-0123456789")
    );
    assert_eq!(
        call(&acs, "GET", "/devices/", Some(&wrong), b"").status,
        401
    );
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{TOKEN}"))
    );
    let r = call(&acs, "GET", "/devices/", Some(&basic), b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "[]");
    assert_eq!(
        call(&acs, "GET", "/devices/", Some(&bearer()), b"").status,
        200
    );
    assert!(!acs.logs().contains(TOKEN), "no token in the log");

    let open = nbi_acs(&[("ACS_NBI_ALLOW", "127.0.0.1/32")]);
    assert_eq!(call(&open, "GET", "/devices/", None, b"").status, 200);
    let elsewhere = nbi_acs(&[("ACS_NBI_ALLOW", "10.0.0.0/8, fd00::/8")]);
    assert_eq!(call(&elsewhere, "GET", "/devices/", None, b"").status, 401);

    // Off by default.
    let plain = Acs::start(&[]);
    assert!(plain.nbi.is_none());
    assert!(!plain.logs().contains("NBI listener"));
}
