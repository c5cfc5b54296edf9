//! End-to-end tests of the CWMP endpoint: the real binary on a random
//! loopback port, real HTTP over real sockets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::json;

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/corpus")
            .join(name),
    )
    .unwrap()
}

#[test]
fn each_cpe_is_answered_in_its_own_namespace_with_its_own_id() {
    let acs = Acs::start(&[]);
    let mut old = acs.cpe();
    let r = old.post_str(&inform_xml("SOAP-ENV", "1-0", "4711", "NS10", &["1 BOOT"]));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/xml; charset=\"utf-8\"")
    );
    let body = r.text();
    assert!(
        body.contains("xmlns:cwmp=\"urn:dslforum-org:cwmp-1-0\""),
        "{body}"
    );
    assert!(
        body.contains("<cwmp:ID SOAP-ENV:mustUnderstand=\"1\">4711</cwmp:ID>"),
        "{body}"
    );
    assert!(
        body.contains("<cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes></cwmp:InformResponse>")
    );
    assert!(r.header("set-cookie").unwrap().contains("Path=/"));

    let mut new = acs.cpe();
    let r = new.post_str(&inform_xml(
        "soapenv",
        "1-2",
        "abc-9",
        "NS12",
        &["2 PERIODIC"],
    ));
    assert_eq!(r.status, 200);
    assert!(
        r.text()
            .contains("xmlns:cwmp=\"urn:dslforum-org:cwmp-1-2\"")
    );
    assert!(r.text().contains(">abc-9</cwmp:ID>"));

    assert_eq!(old.empty().status, 204);
    assert_eq!(new.empty().status, 204);
    let (status, device) = acs.api_get(&format!("/api/v1/devices/{}", device_id("NS12")));
    assert_eq!(status, 200);
    assert_eq!(device["cwmp_version"], "1-2");
    assert_eq!(device["software_version"], "1.1.0");
    assert_eq!(device["recent_events"][0]["code"], "2 PERIODIC");
}

#[test]
fn the_quirk_corpus_over_http() {
    let acs = Acs::start(&[]);
    let manifest: toml::Table = toml::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/manifest.toml"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut informs = 0;
    let mut expected_ids = std::collections::BTreeSet::new();
    for entry in manifest["envelope"].as_array().unwrap() {
        let file = entry["file"].as_str().unwrap();
        let expect = entry["expect"].as_str().unwrap();
        let method = entry.get("method").and_then(|m| m.as_str()).unwrap_or("");
        let mut cpe = acs.cpe();
        let r = cpe.post(&corpus(file));
        match (expect, method) {
            ("ok", "Inform") => {
                informs += 1;
                let identity = gigafibre_acs::cwmp::rpc::DeviceIdStruct {
                    manufacturer: String::new(),
                    oui: entry["oui"].as_str().unwrap().to_owned(),
                    product_class: entry["product_class"].as_str().unwrap().to_owned(),
                    serial_number: entry["serial_number"].as_str().unwrap().to_owned(),
                };
                expected_ids.insert(identity.device_id());
                assert_eq!(r.status, 200, "{file}: {}", r.text());
                let id = entry.get("id").and_then(|i| i.as_str());
                if let Some(id) = id {
                    assert!(
                        r.text()
                            .contains(&format!(">{}</cwmp:ID>", id.replace('&', "&amp;"))),
                        "{file}: {}",
                        r.text()
                    );
                }
                let ns = format!("urn:dslforum-org:cwmp-{}", entry["cwmp"].as_str().unwrap());
                assert!(r.text().contains(&ns), "{file} answered outside {ns}");
                // The unknown method inside a session gets fault 8000 with its ID.
                let unknown = cpe.post(&corpus("41-unknown-method-frobnicate.xml"));
                assert_eq!(unknown.status, 200);
                assert!(
                    unknown.text().contains("<FaultCode>8000</FaultCode>"),
                    "{}",
                    unknown.text()
                );
                assert!(unknown.text().contains(">77</cwmp:ID>"));
                assert_eq!(cpe.empty().status, 204, "{file}");
            }
            ("ok", _) | ("unknown_method", _) => {
                // Not an Inform and no session: refused, nothing stored.
                assert_eq!(r.status, 400, "{file}: {}", r.text());
                assert!(
                    r.text().contains("no open CWMP session"),
                    "{file}: {}",
                    r.text()
                );
            }
            ("error", _) => {
                assert_eq!(r.status, 400, "{file}: {}", r.text());
                assert!(
                    r.text().starts_with("malformed CWMP request"),
                    "{file}: {}",
                    r.text()
                );
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(informs >= 10);
    let (_, list) = acs.api_get("/api/v1/devices?limit=1000");
    let listed: std::collections::BTreeSet<String> = list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        listed, expected_ids,
        "one device per identity in the Inform files, none from rejected bodies"
    );
}

#[test]
fn queued_rpcs_go_out_and_their_answers_are_recorded() {
    let acs = Acs::start(&[]);
    let serial = "TASKS1";
    let mut cpe = acs.cpe();
    assert_eq!(
        cpe.post_str(&inform_xml("soapenv", "1-0", "1", serial, &["0 BOOTSTRAP"]))
            .status,
        200
    );
    assert_eq!(cpe.empty().status, 204);
    let id = device_id(serial);

    let gpv = acs.queue(
        &id,
        json!({"GetParameterValues": {"names": ["Device.WiFi.SSID.1.SSID"]}}),
    );
    let spv = acs.queue(&id, json!({"SetParameterValues": {"parameters": [
        {"name": "Device.WiFi.AccessPoint.1.Security.KeyPassphrase", "value": "hunter2-secret", "type": "string"}
    ], "parameter_key": "k1"}}));
    let reboot = acs.queue(&id, json!({"Reboot": {"command_key": "r1"}}));

    // Next session, cookies on a fresh connection for every request.
    let mut cpe = acs.cpe();
    assert_eq!(
        cpe.post_str(&inform_xml("soapenv", "1-0", "2", serial, &["2 PERIODIC"]))
            .status,
        200
    );
    cpe.reconnect();
    let r = cpe.empty();
    assert_eq!(r.status, 200);
    let req = r.text();
    assert!(req.contains("<cwmp:GetParameterValues><ParameterNames SOAP-ENC:arrayType=\"xsd:string[1]\"><string>Device.WiFi.SSID.1.SSID</string>"), "{req}");
    assert!(req.contains("urn:dslforum-org:cwmp-1-0"));
    let rpc_id = between(&req, "mustUnderstand=\"1\">", "</cwmp:ID>")
        .unwrap()
        .to_owned();

    cpe.reconnect();
    let r = cpe.post_str(&response_xml(&rpc_id, r#"<cwmp:GetParameterValuesResponse><ParameterList><ParameterValueStruct><Name>Device.WiFi.SSID.1.SSID</Name><Value xsi:type="xsd:string">Café 🏠</Value></ParameterValueStruct></ParameterList></cwmp:GetParameterValuesResponse>"#));
    assert_eq!(r.status, 200);
    let req = r.text();
    assert!(req.contains("<cwmp:SetParameterValues>"), "{req}");
    assert!(req.contains("<Value xsi:type=\"xsd:string\">hunter2-secret</Value>"));
    assert!(req.contains("<ParameterKey>k1</ParameterKey>"));
    let rpc_id = between(&req, "mustUnderstand=\"1\">", "</cwmp:ID>")
        .unwrap()
        .to_owned();

    // The CPE refuses the passphrase: that task fails, the session goes on.
    let fault = r#"<soapenv:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring><detail><cwmp:Fault><FaultCode>9003</FaultCode><FaultString>Invalid arguments</FaultString><SetParameterValuesFault><ParameterName>Device.WiFi.AccessPoint.1.Security.KeyPassphrase</ParameterName><FaultCode>9007</FaultCode><FaultString>Invalid parameter value</FaultString></SetParameterValuesFault></cwmp:Fault></detail></soapenv:Fault>"#;
    let r = cpe.post_str(&response_xml(&rpc_id, fault));
    assert_eq!(r.status, 200);
    assert!(
        r.text()
            .contains("<cwmp:Reboot><CommandKey>r1</CommandKey></cwmp:Reboot>"),
        "{}",
        r.text()
    );
    let r = cpe.post_str(&response_xml("x", "<cwmp:RebootResponse/>"));
    assert_eq!(r.status, 204);

    let (_, t) = acs.api_get(&format!("/api/v1/tasks/{gpv}"));
    assert_eq!(t["status"], "done");
    assert_eq!(
        t["response"]["GetParameterValuesResponse"]["parameters"][0]["value"],
        "Café 🏠"
    );
    let (_, t) = acs.api_get(&format!("/api/v1/tasks/{spv}"));
    assert_eq!(t["status"], "failed");
    assert_eq!(t["fault"]["code"], 9003);
    assert!(t["fault"]["message"].as_str().unwrap().contains("9007"));
    assert!(
        !t.to_string().contains("hunter2-secret"),
        "the API masks the passphrase: {t}"
    );
    let (_, t) = acs.api_get(&format!("/api/v1/tasks/{reboot}"));
    assert_eq!(t["status"], "done");

    let (_, params) = acs.api_get(&format!(
        "/api/v1/devices/{id}/parameters?prefix=Device.WiFi."
    ));
    assert_eq!(params["parameters"][0]["value"], "Café 🏠");
    let (_, faults) = acs.api_get(&format!("/api/v1/faults?device={id}"));
    assert_eq!(faults["faults"][0]["code"], 9003);
    assert_eq!(faults["faults"][0]["task_id"], spv);
    assert!(!acs.logs().contains("hunter2-secret"));
}

#[test]
fn cpes_without_cookies_keep_their_session_on_the_connection() {
    let acs = Acs::start(&[]);
    let mut cpe = acs.cpe();
    cpe.send_cookie = false;
    assert_eq!(
        cpe.post_str(&inform_xml("SOAP-ENV", "1-0", "1", "NOCOOKIE", &["1 BOOT"]))
            .status,
        200
    );
    assert_eq!(cpe.empty().status, 204);
    let task = acs.queue(&device_id("NOCOOKIE"), json!({"FactoryReset": {}}));
    assert_eq!(
        cpe.post_str(&inform_xml(
            "SOAP-ENV",
            "1-0",
            "2",
            "NOCOOKIE",
            &["2 PERIODIC"]
        ))
        .status,
        200
    );
    let r = cpe.empty();
    assert!(
        r.text().contains("<cwmp:FactoryReset></cwmp:FactoryReset>"),
        "{}",
        r.text()
    );
    assert_eq!(
        cpe.post_str(&response_xml("x", "<cwmp:FactoryResetResponse/>"))
            .status,
        204
    );
    assert_eq!(
        acs.api_get(&format!("/api/v1/tasks/{task}")).1["status"],
        "done"
    );
}

#[test]
fn a_new_inform_takes_over_from_a_session_left_waiting() {
    let acs = Acs::start(&[]);
    let id = device_id("BUSY");
    let mut first = acs.cpe();
    assert_eq!(
        first
            .post_str(&inform_xml("SOAP-ENV", "1-0", "1", "BUSY", &["2 PERIODIC"]))
            .status,
        200
    );
    let task = acs.queue(
        &id,
        json!({"GetParameterValues": {"names": ["Device.DeviceInfo.UpTime"]}}),
    );
    // The first session hands the ACS its turn and gets the task...
    let r = first.empty();
    assert!(r.text().contains("Device.DeviceInfo.UpTime"));

    // ...but the CPE restarts and informs on a new connection (no cookie)
    // instead of answering: the new session is taken at once (no 503).
    let mut second = acs.cpe();
    let r = second.post_str(&inform_xml(
        "SOAP-ENV",
        "1-0",
        "2",
        "BUSY",
        &["6 CONNECTION REQUEST"],
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    // The unanswered task is sent again in the new session.
    let r = second.empty();
    assert!(
        r.text().contains("Device.DeviceInfo.UpTime"),
        "{}",
        r.text()
    );
    let r = second.post_str(&response_xml("x", r#"<cwmp:GetParameterValuesResponse><ParameterList><ParameterValueStruct><Name>Device.DeviceInfo.UpTime</Name><Value xsi:type="xsd:unsignedInt">99</Value></ParameterValueStruct></ParameterList></cwmp:GetParameterValuesResponse>"#));
    assert_eq!(r.status, 204);
    let t = acs.api_get(&format!("/api/v1/tasks/{task}")).1;
    assert_eq!(t["status"], "done");
    assert_eq!(t["attempts"], 2, "{t}");
    // The abandoned session's cookie no longer finds a session: a late
    // empty POST on it just ends.
    assert_eq!(first.empty().status, 204);
}

#[test]
fn sessions_time_out_and_free_the_device() {
    let acs = Acs::start(&[("ACS_SESSION_TIMEOUT_S", "1")]);
    let mut a = acs.cpe();
    assert_eq!(
        a.post_str(&inform_xml(
            "SOAP-ENV",
            "1-0",
            "1",
            "TIMEOUT",
            &["2 PERIODIC"]
        ))
        .status,
        200
    );
    std::thread::sleep(Duration::from_millis(2500));
    let mut b = acs.cpe();
    assert_eq!(
        b.post_str(&inform_xml(
            "SOAP-ENV",
            "1-0",
            "2",
            "TIMEOUT",
            &["2 PERIODIC"]
        ))
        .status,
        200
    );
    // The old session is gone: its empty POST no longer reaches a session.
    a.send_cookie = true;
    assert_eq!(a.empty().status, 204);
    assert_eq!(b.empty().status, 204);
}

#[test]
fn bad_bodies_get_4xx_and_other_cpes_keep_their_sessions() {
    let acs = Acs::start(&[("ACS_MAX_BODY_BYTES", "65536")]);
    let mut good = acs.cpe();
    assert_eq!(
        good.post_str(&inform_xml("SOAP-ENV", "1-0", "1", "GOOD", &["2 PERIODIC"]))
            .status,
        200
    );

    let mut bad = acs.cpe();
    // Declared too large: refused before reading.
    let big = vec![b'a'; 70_000];
    assert_eq!(bad.post(&big).status, 413);
    // Chunked, too large while streaming.
    let mut conn = HttpConn::connect(acs.cwmp);
    let chunk = vec![b'<'; 40_000];
    let mut req = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..2 {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(&chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    conn.stream().write_all(&req).unwrap();
    assert_eq!(conn.read_response().status, 413);

    let mut bad = acs.cpe();
    assert_eq!(bad.post(b"\x00\x01garbage\xff").status, 400);
    assert_eq!(bad.post(b"<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><cwmp:Inf").status, 400);
    assert_eq!(
        bad.post(&corpus("39-invalid-doctype-entity-expansion.xml"))
            .status,
        400
    );
    let deep = format!("<a>{}", "<b>".repeat(10_000));
    assert_eq!(bad.post(deep.as_bytes()).status, 400);
    let r = bad.post_str(&inform_xml("SOAP-ENV", "1-0", "1", "", &["1 BOOT"]));
    assert_eq!(r.status, 400);
    assert!(r.text().contains("SerialNumber"));
    // Not POST.
    let r = HttpConn::connect(acs.cwmp).request("GET", "/", &[], b"");
    assert_eq!(r.status, 405);
    // Unsupported encoding.
    let r = HttpConn::connect(acs.cwmp).request("POST", "/", &[("Content-Encoding", "br")], b"xx");
    assert_eq!(r.status, 415);

    // gzip bodies are fine.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(inform_xml("SOAP-ENV", "1-0", "1", "GZIP", &["1 BOOT"]).as_bytes())
        .unwrap();
    let mut zipped = acs.cpe();
    zipped
        .extra_headers
        .push(("Content-Encoding".into(), "gzip".into()));
    assert_eq!(zipped.post(&gz.finish().unwrap()).status, 200);

    // Meanwhile the good CPE's session carries on.
    assert_eq!(good.empty().status, 204);
    let (_, list) = acs.api_get("/api/v1/devices");
    let ids: Vec<&str> = list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [device_id("GOOD"), device_id("GZIP")]);
}

#[test]
fn slow_and_silent_clients_are_cut_off() {
    let acs = Acs::start(&[
        ("ACS_HEADER_READ_TIMEOUT_S", "1"),
        ("ACS_IDLE_TIMEOUT_S", "2"),
        ("ACS_BODY_READ_TIMEOUT_S", "1"),
    ]);
    // Headers never finished.
    let mut slow = HttpConn::connect(acs.cwmp);
    slow.stream()
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // Body never finished.
    let mut slow_body = HttpConn::connect(acs.cwmp);
    slow_body
        .stream()
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n<soap")
        .unwrap();
    // Idle after a complete exchange.
    let mut idle = acs.cpe();
    assert_eq!(
        idle.post_str(&inform_xml("SOAP-ENV", "1-0", "1", "IDLE", &["2 PERIODIC"]))
            .status,
        200
    );

    let mut other = acs.cpe();
    assert_eq!(
        other
            .post_str(&inform_xml(
                "SOAP-ENV",
                "1-0",
                "1",
                "OTHER",
                &["2 PERIODIC"]
            ))
            .status,
        200
    );
    assert_eq!(other.empty().status, 204);

    std::thread::sleep(Duration::from_millis(3500));
    assert!(slow.is_closed_by_peer(), "slow headers must be cut off");
    let r = slow_body.read_response();
    assert_eq!(r.status, 408);
    assert!(
        idle.conn.is_closed_by_peer(),
        "idle keep-alive connection must be closed"
    );
}

#[test]
fn digest_authentication_survives_a_new_connection_between_401_and_retry() {
    let acs = Acs::start(&[
        ("ACS_CPE_AUTH", "digest"),
        ("ACS_CPE_USERNAME", "cpe"),
        ("ACS_CPE_PASSWORD", "digest-secret-pw"),
    ]);
    let inform = inform_xml("SOAP-ENV", "1-0", "1", "DIGEST", &["1 BOOT"]);
    let mut cpe = acs.cpe();
    let r = cpe.post_str(&inform);
    assert_eq!(r.status, 401);
    let challenges = r.headers_named("www-authenticate");
    assert_eq!(challenges.len(), 2);
    assert!(challenges[0].contains("algorithm=MD5") && challenges[1].contains("algorithm=SHA-256"));
    let nonce = between(challenges[0], "nonce=\"", "\"").unwrap().to_owned();

    let answer = |user: &str, password: &str| {
        let md5 = |s: String| format!("{:x}", md5::Md5::digest(s.as_bytes()));
        use md5::Digest as _;
        let ha1 = md5(format!("{user}:gigafibre-acs:{password}"));
        let ha2 = md5("POST:/".to_owned());
        let resp = md5(format!("{ha1}:{nonce}:00000001:0a4f113b:auth:{ha2}"));
        format!(
            "Digest username=\"{user}\", realm=\"gigafibre-acs\", nonce=\"{nonce}\", uri=\"/\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"{resp}\""
        )
    };
    // Wrong password on a new connection: challenged again.
    cpe.reconnect();
    cpe.extra_headers = vec![("Authorization".into(), answer("cpe", "wrong"))];
    assert_eq!(cpe.post_str(&inform).status, 401);
    // Right password on yet another connection, with the first nonce.
    cpe.reconnect();
    cpe.extra_headers = vec![("Authorization".into(), answer("cpe", "digest-secret-pw"))];
    assert_eq!(cpe.post_str(&inform).status, 200);
    // The rest of the session needs no credentials (cookie).
    cpe.extra_headers.clear();
    cpe.reconnect();
    assert_eq!(cpe.empty().status, 204);
    assert!(!acs.logs().contains("digest-secret-pw"));
}

/// Whether curl is installed (the tests that use it say when they skip).
fn curl_available() -> bool {
    let ok = std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok();
    if !ok {
        eprintln!("curl not installed: skipped");
    }
    ok
}

#[test]
fn curl_digest_authenticates() {
    if !curl_available() {
        return;
    }
    let acs = Acs::start(&[
        ("ACS_CPE_AUTH", "digest"),
        ("ACS_CPE_USERNAME", "cpe"),
        ("ACS_CPE_PASSWORD", "curl-pw"),
    ]);
    let inform = inform_xml("SOAP-ENV", "1-0", "1", "CURL", &["1 BOOT"]);
    let run = |password: &str| -> String {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--digest",
                "-u",
            ])
            .arg(format!("cpe:{password}"))
            .args(["-H", "Content-Type: text/xml", "--data-binary", &inform])
            .arg(format!("http://{}/", acs.cwmp))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(run("wrong"), "401");
    assert_eq!(run("curl-pw"), "200");
}

#[test]
fn basic_authentication_and_per_connection_reuse() {
    use base64::Engine as _;
    let acs = Acs::start(&[
        ("ACS_CPE_AUTH", "basic"),
        ("ACS_CPE_USERNAME", "cpe"),
        ("ACS_CPE_PASSWORD", "basic-pw"),
    ]);
    let inform = inform_xml("SOAP-ENV", "1-0", "1", "BASIC", &["1 BOOT"]);
    let mut cpe = acs.cpe();
    let r = cpe.post_str(&inform);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"gigafibre-acs\"")
    );
    // Empty credentials sent pre-emptively are refused.
    cpe.extra_headers = vec![(
        "Authorization".into(),
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(":")
        ),
    )];
    assert_eq!(cpe.post_str(&inform).status, 401);
    cpe.extra_headers = vec![(
        "Authorization".into(),
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("cpe:basic-pw")
        ),
    )];
    assert_eq!(cpe.post_str(&inform).status, 200);
    cpe.extra_headers.clear();
    cpe.send_cookie = false;
    // Same connection, no credentials, no cookie: the connection is known.
    assert_eq!(cpe.empty().status, 204);
}

#[test]
fn acknowledged_informs_and_tasks_survive_kill_9() {
    let mut acs = Acs::start(&[]);
    let dir = acs.take_tempdir();
    let mut cpe = acs.cpe();
    assert_eq!(
        cpe.post_str(&inform_xml(
            "SOAP-ENV",
            "1-0",
            "1",
            "PERSIST",
            &["0 BOOTSTRAP", "1 BOOT"]
        ))
        .status,
        200
    );
    let task = acs.queue(
        &device_id("PERSIST"),
        json!({"Reboot": {"command_key": "after-crash"}}),
    );
    acs.kill9();

    let acs = Acs::start_in(dir.path(), &[]);
    let (status, device) = acs.api_get(&format!("/api/v1/devices/{}", device_id("PERSIST")));
    assert_eq!(status, 200, "{device}");
    assert_eq!(device["recent_events"][0]["code"], "0 BOOTSTRAP");
    assert_eq!(device["session_active"], false);
    // The task queued before the crash goes out in the next session.
    let mut cpe = acs.cpe();
    assert_eq!(
        cpe.post_str(&inform_xml(
            "SOAP-ENV",
            "1-0",
            "2",
            "PERSIST",
            &["2 PERIODIC"]
        ))
        .status,
        200
    );
    let r = cpe.empty();
    assert!(
        r.text().contains("<CommandKey>after-crash</CommandKey>"),
        "{}",
        r.text()
    );
    assert_eq!(
        cpe.post_str(&response_xml("x", "<cwmp:RebootResponse/>"))
            .status,
        204
    );
    assert_eq!(
        acs.api_get(&format!("/api/v1/tasks/{task}")).1["status"],
        "done"
    );
}

/// Periodic Informs in a row are one event with a count, and what every
/// Inform changes (kept apart from the rest of the device record) is as
/// durable as the rest.
#[test]
fn a_run_of_periodic_informs_is_one_event_and_survives_kill_9() {
    let mut acs = Acs::start(&[]);
    let dir = acs.take_tempdir();
    let session = |acs: &Acs, n: usize, events: &[&str]| acs.inform_session("RUN", n, events);
    session(&acs, 1, &["1 BOOT"]);
    for n in 2..=4 {
        session(&acs, n, &["2 PERIODIC"]);
    }
    acs.kill9();

    let acs = Acs::start_in(dir.path(), &[]);
    let device = || {
        acs.api_get(&format!("/api/v1/devices/{}", device_id("RUN")))
            .1
    };
    let d = device();
    let events = d["recent_events"].as_array().expect("recent_events");
    assert_eq!(events.len(), 2, "{d}");
    assert_eq!(events[0]["code"], "1 BOOT");
    assert_eq!(events[1]["code"], "2 PERIODIC");
    assert_eq!(events[1]["count"], 3, "{d}");
    assert!(events[1]["first_at"].as_str().unwrap() <= events[1]["at"].as_str().unwrap());
    assert_eq!(d["inform_count"], 4);
    assert_eq!(d["last_inform"], events[1]["at"]);
    session(&acs, 5, &["2 PERIODIC"]);
    assert_eq!(device()["recent_events"][1]["count"], 4);
    assert_eq!(device()["inform_count"], 5);
}

#[test]
fn sigterm_finishes_and_exits_cleanly() {
    let mut acs = Acs::start(&[]);
    let dir = acs.take_tempdir();
    let mut cpe = acs.cpe();
    assert_eq!(
        cpe.post_str(&inform_xml("SOAP-ENV", "1-0", "1", "TERM", &["1 BOOT"]))
            .status,
        200
    );
    let status = acs.terminate();
    assert!(status.success(), "{status:?}");
    assert!(acs.logs().contains("store flushed"));
    let acs = Acs::start_in(dir.path(), &[]);
    assert_eq!(
        acs.api_get(&format!("/api/v1/devices/{}", device_id("TERM")))
            .0,
        200
    );
}

#[test]
fn tls_listener_serves_cwmp() {
    use std::sync::Arc;
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let cert = data.join("test-cert.pem");
    let key = data.join("test-key.pem");
    let acs = Acs::start(&[
        ("ACS_TLS_CERT", cert.to_str().unwrap()),
        ("ACS_TLS_KEY", key.to_str().unwrap()),
    ]);
    assert!(acs.logs().contains("https://"));

    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(data.join("test-ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let tcp = std::net::TcpStream::connect(acs.cwmp).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let body = inform_xml("SOAP-ENV", "1-0", "1", "TLS", &["1 BOOT"]);
    write!(tls, "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut out = String::new();
    use std::io::Read;
    let _ = tls.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("InformResponse"));

    // Plain HTTP on the TLS port does not get through.
    let mut plain = HttpConn::connect(acs.cwmp);
    plain
        .stream()
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    plain
        .stream()
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut buf = [0u8; 64];
    let n = std::io::Read::read(plain.stream(), &mut buf).unwrap_or(0);
    assert!(!String::from_utf8_lossy(&buf[..n]).contains("200 OK"));
}

#[test]
fn connection_cap_answers_503() {
    let acs = Acs::start(&[("ACS_MAX_CONNECTIONS", "2")]);
    let _a = HttpConn::connect(acs.cwmp);
    let _b = HttpConn::connect(acs.cwmp);
    std::thread::sleep(Duration::from_millis(200));
    let mut c = HttpConn::connect(acs.cwmp);
    let r = c.read_response();
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("5"));
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gigafibre-acs"))
        .arg("check-config")
        .env_clear()
        .env("ACS_CPE_AUTH", "kerberos")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ACS_CPE_AUTH") && err.contains("kerberos"),
        "{err}"
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gigafibre-acs"))
        .arg("check-config")
        .env_clear()
        .env("ACS_CPE_PASSWORD", "do-not-print-me")
        .env("ACS_API_TOKEN", "api-token-do-not-print")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ACS_SESSION_TIMEOUT_S") && !text.contains("do-not-print"),
        "{text}"
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gigafibre-acs"))
        .arg("serve")
        .env_clear()
        .env("ACS_TLS_CERT", "/nonexistent/cert.pem")
        .env("ACS_TLS_KEY", "/nonexistent/key.pem")
        .env("ACS_DATA_DIR", tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/cert.pem"));
}

#[test]
fn per_device_credentials_are_bound_and_no_secret_reaches_a_trace_log() {
    use base64::Engine as _;
    let acs = Acs::start(&[
        ("ACS_CPE_AUTH", "basic"),
        ("ACS_CPE_USERNAME", "global"),
        ("ACS_CPE_PASSWORD", "global-secret-pw"),
        ("RUST_LOG", "trace"),
    ]);
    let bound = device_id("DEVCRED");
    let r = HttpConn::connect(acs.api).request(
        "PUT",
        "/api/v1/cpe-credentials/DEVCRED",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        json!({"password": "device-secret-pw", "device_id": bound})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let basic = |u: &str, p: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    };

    // Its own credentials work for the device they are bound to...
    let mut cpe = acs.cpe();
    cpe.extra_headers = vec![("Authorization".into(), basic("DEVCRED", "device-secret-pw"))];
    assert_eq!(
        cpe.post_str(&inform_xml("SOAP-ENV", "1-0", "1", "DEVCRED", &["1 BOOT"]))
            .status,
        200
    );
    assert_eq!(cpe.empty().status, 204);
    // ...and not for another device.
    let mut thief = acs.cpe();
    thief.extra_headers = vec![("Authorization".into(), basic("DEVCRED", "device-secret-pw"))];
    let r = thief.post_str(&inform_xml("SOAP-ENV", "1-0", "1", "OTHERDEV", &["1 BOOT"]));
    assert_eq!(r.status, 403);

    // A WiFi passphrase pushed through a session.
    acs.queue(&bound, json!({"SetParameterValues": {"parameters": [
        {"name": "Device.WiFi.AccessPoint.1.Security.KeyPassphrase", "value": "wifi-secret-passphrase", "type": "string"}
    ], "parameter_key": "p1"}}));
    let mut cpe = acs.cpe();
    cpe.extra_headers = vec![("Authorization".into(), basic("DEVCRED", "device-secret-pw"))];
    assert_eq!(
        cpe.post_str(&inform_xml(
            "SOAP-ENV",
            "1-0",
            "2",
            "DEVCRED",
            &["2 PERIODIC"]
        ))
        .status,
        200
    );
    assert!(cpe.empty().text().contains("wifi-secret-passphrase"));
    assert_eq!(
        cpe.post_str(&response_xml(
            "x",
            "<cwmp:SetParameterValuesResponse><Status>0</Status></cwmp:SetParameterValuesResponse>"
        ))
        .status,
        204
    );

    let (_, params) = acs.api_get(&format!(
        "/api/v1/devices/{bound}/parameters?prefix=Device.WiFi."
    ));
    assert_eq!(params["parameters"][0]["value"], "********");

    std::thread::sleep(Duration::from_millis(200));
    let logs = acs.logs();
    assert!(logs.contains("DEBUG"), "verbose logging is on");
    for secret in [
        "global-secret-pw",
        "device-secret-pw",
        "wifi-secret-passphrase",
        TOKEN,
    ] {
        assert!(!logs.contains(secret), "`{secret}` leaked into the log");
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode("DEVCRED:device-secret-pw");
    assert!(
        !logs.contains(&encoded),
        "Basic credentials leaked into the log"
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let acs = Acs::start(&[("ACS_LOG_FORMAT", "json")]);
    let mut cpe = acs.cpe();
    assert_eq!(
        cpe.post_str(&inform_xml("SOAP-ENV", "1-0", "1", "JSONLOG", &["1 BOOT"]))
            .status,
        200
    );
    assert_eq!(cpe.empty().status, 204);
    std::thread::sleep(Duration::from_millis(100));
    let logs = acs.logs();
    let mut started = false;
    for line in logs.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v["fields"]["message"] == "session started" {
            assert_eq!(v["fields"]["device"], device_id("JSONLOG"));
            started = true;
        }
    }
    assert!(started, "{logs}");
}

/// `acs_session_busy_seconds` counts each completed session once, with the
/// ACS's own time (here no ERPNext is involved, so all of it).
#[test]
fn completed_sessions_report_the_acs_time_they_took() {
    let acs = Acs::start(&[]);
    let sample = |name: &str| -> f64 {
        let text = HttpConn::connect(acs.api)
            .request("GET", "/metrics", &[], b"")
            .text();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics"))
    };
    assert_eq!(sample("acs_session_busy_seconds_count"), 0.0);
    for serial in ["BUSY1", "BUSY2"] {
        let mut cpe = acs.cpe();
        let r = cpe.post_str(&inform_xml("soap", "1-0", "1", serial, &["2 PERIODIC"]));
        assert_eq!(r.status, 200);
        assert_eq!(cpe.post(b"").status, 204);
    }
    assert_eq!(sample("acs_session_busy_seconds_count"), 2.0);
    assert!(sample("acs_session_busy_seconds_sum") > 0.0);
    assert_eq!(sample("acs_session_busy_seconds_bucket{le=\"+Inf\"}"), 2.0);
}

#[test]
fn a_data_model_bigger_than_the_body_limit_is_accepted_where_it_was_asked_for() {
    // Hosts collection on: a first contact discovers the data model.
    let acs = Acs::start(&[("ACS_HOSTS_COLLECT", "on")]);
    let mut cpe = acs.cpe();
    let r = cpe.post_str(&inform_xml("SOAP-ENV", "1-0", "1", "BIGTREE", &["1 BOOT"]));
    assert_eq!(r.status, 200);
    let r = cpe.empty();
    assert!(
        r.text().contains("GetParameterNames"),
        "first contact: discovery, got {}",
        r.text()
    );
    assert!(r.text().contains("<ParameterPath>Device.</ParameterPath>"));
    // 14,000 names: ~1.6 MB, over the 1 MiB limit of other bodies.
    let mut names = String::from(
        "<ParameterInfoStruct><Name>Device.</Name><Writable>0</Writable></ParameterInfoStruct>\
         <ParameterInfoStruct><Name>Device.DeviceInfo.ModelName</Name><Writable>0</Writable></ParameterInfoStruct>",
    );
    for i in 0..14_000 {
        names.push_str(&format!(
            "<ParameterInfoStruct><Name>Device.X_VENDOR_Table.{i}.SomeLongParameterName</Name><Writable>1</Writable></ParameterInfoStruct>"
        ));
    }
    let body = response_xml(
        "names",
        &format!(
            "<cwmp:GetParameterNamesResponse><ParameterList>{names}</ParameterList></cwmp:GetParameterNamesResponse>"
        ),
    );
    assert!(body.len() > 1 << 20);
    let r = cpe.post_str(&body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("Device.DeviceInfo.ModelName"),
        "then the model name: {}",
        r.text()
    );
    // Any other body of the session keeps the ordinary limit (refused on
    // its announced length, before it is sent).
    let cookie = cpe.cookie.clone().unwrap();
    let mut conn = HttpConn::connect(acs.cwmp);
    conn.stream()
        .write_all(
            format!("POST / HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nContent-Length: 2000000\r\nExpect: 100-continue\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    assert_eq!(conn.read_response().status, 413);
    let (status, dm) = acs.api_get(&format!(
        "/api/v1/devices/{}/data-model?prefix=Device.X_VENDOR_Table.1&limit=5",
        device_id("BIGTREE")
    ));
    assert_eq!(status, 200, "{dm}");
    assert_eq!(dm["names"], 14_002);
    assert_eq!(dm["parameters"].as_array().unwrap().len(), 5);
    assert!(dm["next_cursor"].is_string());
}

/// The README's "Try it without a CPE" commands, run as written (only the
/// address changes), on the default settings and with both off.
#[test]
fn the_readme_curl_example_does_what_the_readme_says() {
    if !curl_available() {
        return;
    }
    let readme = include_str!("../README.md");
    let block = readme
        .split("Try it without a CPE:")
        .nth(1)
        .and_then(|rest| rest.split("```sh\n").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("the README's curl example");
    let commands: Vec<&str> = block.lines().filter(|l| l.starts_with("curl ")).collect();
    assert_eq!(commands.len(), 2, "{block}");
    let jar = tempfile::tempdir().unwrap();
    let run = |acs: &Acs, cmd: &str| -> String {
        let cmd = cmd
            .replace("http://127.0.0.1:7547/", &format!("http://{}/", acs.cwmp))
            .replace("/tmp/jar", jar.path().join("jar").to_str().unwrap());
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("{cmd} -w '\\n%{{http_code}}'")])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The defaults: provisioning and the host-table collector on.
    let acs = Acs::start(&[("ACS_PROVISIONING", "on"), ("ACS_HOSTS_COLLECT", "on")]);
    let inform = run(&acs, commands[0]);
    assert!(
        inform.contains("InformResponse") && inform.ends_with("200"),
        "{inform}"
    );
    let next = run(&acs, commands[1]);
    assert!(
        next.contains("GetParameterNames")
            && next.contains("<ParameterPath>Device.</ParameterPath>"),
        "the README says the ACS asks for the data model: {next}"
    );
    // Both off: nothing to ask, the session ends with 204.
    let acs = Acs::start(&[]);
    run(&acs, commands[0]);
    assert!(run(&acs, commands[1]).ends_with("204"));
}
