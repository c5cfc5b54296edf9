//! Firmware files through the real binary: uploads checked against their
//! SHA-256 and size limit, a Download naming a file sent with a link
//! signed for that device, and the device fetching it from the CWMP
//! listener (whole, resumed with a Range, HEAD), while a tampered, foreign
//! or deleted link is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};

use common::*;
use serde_json::{Value, json};

fn image(len: usize) -> Vec<u8> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn sha256(data: &[u8]) -> String {
    use std::process::{Command, Stdio};
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

fn upload(acs: &Acs, query: &str, body: &[u8], token: &str) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let r = HttpConn::connect(acs.api).request_expecting_continue(
        "POST",
        &format!("/api/v1/files?{query}"),
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/octet-stream"),
        ],
        body,
    );
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

fn fetch(acs: &Acs, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    HttpConn::connect(acs.cwmp).request("GET", path, headers, b"")
}

#[test]
fn a_device_fetches_the_image_it_was_sent_and_nothing_else() {
    let acs = Acs::start(&[
        (
            "ACS_API_TOKEN",
            &format!("{TOKEN},technician:tech-token-0123456789"),
        ),
        ("ACS_FILE_MAX_MB", "1"),
    ]);
    let data = image(700_000);
    let hash = sha256(&data);

    // Uploads: checked, limited, described.
    let (status, body) = upload(&acs, "name=bad%20name", &data, TOKEN);
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("name"));
    let (status, _) = upload(&acs, "model=XX230v", &data, TOKEN);
    assert_eq!(status, 400, "a name is required");
    let wrong = "0".repeat(64);
    let (status, body) = upload(&acs, &format!("name=fw.bin&sha256={wrong}"), &data, TOKEN);
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains(&hash),
        "{body}"
    );
    // Too large: refused on its Content-Length, before the body is read
    // (the client sends the headers only and reads the answer).
    let mut s = std::net::TcpStream::connect(acs.api).unwrap();
    write!(
        s,
        "POST /api/v1/files?name=big.bin HTTP/1.1\r\nHost: acs\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 1200000\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("file_max_mb"), "{answer}");
    let (status, _) = upload(&acs, "name=fw.bin", &data, "tech-token-0123456789");
    assert_eq!(status, 403, "a technician adds no firmware");
    let (status, file) = upload(
        &acs,
        &format!(
            "name=XX230v_1.2.0.bin&model=XX230v&version=1.2.0%20Build%2020261201&sha256={hash}"
        ),
        &data,
        TOKEN,
    );
    assert_eq!(status, 201, "{file}");
    assert_eq!(file["size"], 700_000);
    assert_eq!(file["sha256"], hash.as_str());
    assert_eq!(file["version"], "1.2.0 Build 20261201");
    let id = file["id"].as_str().unwrap().to_owned();
    let (status, list) = acs.api_get("/api/v1/files");
    assert_eq!(status, 200);
    assert_eq!(
        list["files"].as_array().unwrap().len(),
        1,
        "failed uploads leave nothing"
    );
    let (status, cdn) = acs.api_post(
        "/api/v1/files",
        &json!({"name": "big.bin", "url": "https://cdn.example.net/big.bin", "size": 31_457_280, "sha256": hash}),
    );
    assert_eq!(status, 201, "{cdn}");
    let (status, _) = acs.api_post(
        "/api/v1/files",
        &json!({"name": "x.bin", "url": "ftp://cdn.example.net/x", "size": 1, "sha256": hash}),
    );
    assert_eq!(status, 400);

    // A device informs; a Download naming the file is sent with its link.
    let mut cpe = acs.cpe();
    let inform = inform_xml("soapenv", "1-0", "1", "FW0001", &["2 PERIODIC"]);
    assert_eq!(cpe.post_str(&inform).status, 200);
    let device = device_id("FW0001");
    let (status, task) = acs.api_post(
        &format!("/api/v1/devices/{}/tasks", encode_segment(&device)),
        &json!({"name": "download", "file": id, "commandKey": "fw-1"}),
    );
    assert_eq!(status, 201, "{task}");
    let r = cpe.empty();
    let xml = r.text();
    assert!(xml.contains("<cwmp:Download>"), "{xml}");
    let url = between(&xml, "<URL>", "</URL>")
        .unwrap()
        .replace("&amp;", "&");
    assert_eq!(between(&xml, "<FileSize>", "</FileSize>"), Some("700000"));
    assert_eq!(
        between(&xml, "<TargetFileName>", "</TargetFileName>"),
        Some("XX230v_1.2.0.bin")
    );
    assert!(xml.contains("1 Firmware Upgrade Image"));
    // At the address the device reached the ACS on (its Host header).
    let path = url
        .strip_prefix("http://127.0.0.1/")
        .map(|p| format!("/{p}"))
        .unwrap_or_else(|| panic!("{url}"));
    assert!(
        path.starts_with(&format!("/files/{id}/XX230v_1.2.0.bin?")),
        "{path}"
    );

    // Whole.
    let r = fetch(&acs, &path, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, data);
    assert_eq!(r.header("etag"), Some(format!("\"{hash}\"").as_str()));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    // Resumed.
    let r = fetch(&acs, &path, &[("Range", "bytes=500000-")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &data[500_000..]);
    assert_eq!(
        r.header("content-range"),
        Some("bytes 500000-699999/700000")
    );
    let r = fetch(&acs, &path, &[("Range", "bytes=-10")]);
    assert_eq!((r.status, r.body.as_slice()), (206, &data[699_990..]));
    let r = fetch(&acs, &path, &[("Range", "bytes=700000-")]);
    assert_eq!(r.status, 416);
    // HEAD: the headers, no body.
    let mut s = std::net::TcpStream::connect(acs.cwmp).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    write!(
        s,
        "HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut head = String::new();
    let _ = s.read_to_string(&mut head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("content-length: 700000"),
        "{head}"
    );
    assert!(head.ends_with("\r\n\r\n"), "no body after HEAD: {head:?}");

    // Another device's link, a changed expiry, another file: refused.
    let other = path.replace("FW0001", "FW0002");
    assert_eq!(fetch(&acs, &other, &[]).status, 403);
    let (query_start, _) = path.split_once("&e=").unwrap();
    let later = format!(
        "{query_start}&e=9999999999&{}",
        path.split("&s=").nth(1).map(|s| format!("s={s}")).unwrap()
    );
    assert_eq!(fetch(&acs, &later, &[]).status, 403);
    let cdn_id = cdn["id"].as_str().unwrap();
    let foreign = path.replace(&id, cdn_id);
    assert_eq!(fetch(&acs, &foreign, &[]).status, 403);
    let unsigned = format!("/files/{id}/XX230v_1.2.0.bin");
    let r = fetch(&acs, &unsigned, &[]);
    assert_eq!(r.status, 403);
    assert!(r.text().contains("no d parameter"), "{}", r.text());
    assert_eq!(fetch(&acs, "/files/../../etc/passwd", &[]).status, 404);

    // Counted (three fetches and the HEAD; six refusals).
    let m = HttpConn::connect(acs.api).request("GET", "/metrics", &[], b"");
    let text = m.text();
    assert!(text.contains("acs_files_served_total 4"), "{text}");
    assert!(text.contains("acs_file_bytes_sent_total 900010"), "{text}");

    // Deleted: the link stops working, the bytes are gone.
    let r = HttpConn::connect(acs.api).request(
        "DELETE",
        &format!("/api/v1/files/{id}"),
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(fetch(&acs, &path, &[]).status, 404);
    assert!(!acs.data_dir.join("files").join(&id).exists());
    // A Download of a file that does not exist is refused before queueing.
    let (status, body) = acs.api_post(
        &format!("/api/v1/devices/{}/tasks", encode_segment(&device)),
        &json!({"name": "download", "file": id}),
    );
    assert_eq!(status, 400, "{body}");
}

/// An Inform of device `serial` on `version` with `events` (an `M
/// Download` event carries `key`).
fn inform_on(serial: &str, version: &str, events: &[&str], key: &str) -> String {
    inform_xml("soapenv", "1-0", "1", serial, events)
        .replace(">1.1.0<", &format!(">{version}<"))
        .replace(
            "<EventCode>M Download</EventCode><CommandKey></CommandKey>",
            &format!("<EventCode>M Download</EventCode><CommandKey>{key}</CommandKey>"),
        )
}

/// One session of a scripted CPE: informs, then takes what the ACS sends
/// (answering a Download with Status 1) until the ACS is done; the
/// Downloads it was sent.
fn session(acs: &Acs, inform: &str, transfer_fault: Option<(u32, &str)>) -> Vec<String> {
    let mut cpe = acs.cpe();
    let r = cpe.post_str(inform);
    assert_eq!(r.status, 200, "{}", r.text());
    if let Some((code, key)) = transfer_fault {
        let tc = response_xml(
            "tc1",
            &format!(
                "<cwmp:TransferComplete><CommandKey>{key}</CommandKey><FaultStruct><FaultCode>{code}</FaultCode><FaultString>{}</FaultString></FaultStruct><StartTime>2026-12-06T01:00:00Z</StartTime><CompleteTime>2026-12-06T01:01:00Z</CompleteTime></cwmp:TransferComplete>",
                if code == 0 { "" } else { "Download failure" }
            ),
        );
        let r = cpe.post_str(&tc);
        assert!(
            r.text().contains("TransferCompleteResponse"),
            "{}",
            r.text()
        );
    }
    let mut sent = Vec::new();
    let mut r = cpe.empty();
    while r.status == 200 {
        let xml = r.text();
        let id = between(&xml, "mustUnderstand=\"1\">", "</")
            .unwrap_or("x")
            .to_owned();
        let answer = if xml.contains("<cwmp:Download>") {
            sent.push(xml.clone());
            "<cwmp:DownloadResponse><Status>1</Status><StartTime>0001-01-01T00:00:00Z</StartTime><CompleteTime>0001-01-01T00:00:00Z</CompleteTime></cwmp:DownloadResponse>".to_owned()
        } else {
            panic!("unexpected request: {xml}");
        };
        r = cpe.post_str(&response_xml(&id, &answer));
    }
    assert_eq!(r.status, 204);
    sent
}

fn campaign(acs: &Acs, id: &str) -> Value {
    let (status, c) = acs.api_get(&format!("/api/v1/campaigns/{id}"));
    assert_eq!(status, 200, "{c}");
    c
}

#[test]
fn a_campaign_rolls_out_in_waves_and_halts_when_a_wave_fails() {
    let acs = Acs::start(&[("ACS_PROVISIONING", "off")]);
    let events = EventStream::open(acs.api);
    for serial in ["CA01", "CA02", "CA03", "CA04", "CB01"] {
        session(&acs, &inform_on(serial, "1.1.0", &["2 PERIODIC"], ""), None);
    }
    let data = image(4096);
    let (status, file) = upload(&acs, "name=fw-2.0.bin&version=2.0", &data, TOKEN);
    assert_eq!(status, 201);
    let file_id = file["id"].as_str().unwrap().to_owned();
    let (_, unversioned) = upload(&acs, "name=nover.bin", &data, TOKEN);
    let ids = |s: &[&str]| s.iter().map(|x| device_id(x)).collect::<Vec<_>>();
    let spec = |devices: Vec<String>, waves: Value| {
        json!({"name": "fw 2.0", "file": file_id, "target": {"model_names": ["Device2"], "devices": devices},
               "waves": waves, "max_concurrent": 10, "stop": {"max_failure_percent": 20, "back_online_minutes": 30}})
    };

    // Bad requests, each named.
    let bad = |body: Value, want: &str| {
        let (status, e) = acs.api_post("/api/v1/campaigns", &body);
        assert_eq!(status, 400, "{e}");
        let msg = e["error"]["message"].as_str().unwrap().to_owned();
        assert!(msg.contains(want), "{want}: {msg}");
    };
    bad(
        json!({"name": "x", "file": file_id, "target": {}, "waves": [100]}),
        "empty target",
    );
    bad(
        json!({"name": "x", "file": file_id, "target": {"model_names": ["NoSuchModel"]}, "waves": [100]}),
        "matches no device",
    );
    bad(
        json!({"name": "x", "file": "feedfeedfeedfeed", "target": {"model_names": ["Device2"]}, "waves": [100]}),
        "no file",
    );
    bad(
        json!({"name": "x", "file": unversioned["id"], "target": {"model_names": ["Device2"]}, "waves": [100]}),
        "version",
    );
    bad(
        spec(ids(&["CA01", "CA02"]), json!({"counts": [1, 2]})),
        "add up to 3",
    );
    bad(spec(ids(&["CA01", "CA02"]), json!([50, 90])), "100");
    bad(spec(ids(&["CA01", "NOPE"]), json!([100])), "NOPE");
    bad(
        json!({"name": "x", "file": file_id, "target": {"model_names": ["Device2"]}, "waves": [100], "window": {"start": "25:00", "end": "05:00"}}),
        "window.start",
    );
    bad(
        json!({"name": "x", "file": file_id, "target": {"model_names": ["Device2"]}, "waves": [100], "window": {"start": "01:00", "end": "05:00", "time_zone": "Mars/Base"}}),
        "time_zone",
    );

    // An image whose stored bytes changed since their SHA-256 was taken.
    let (_, tampered) = upload(&acs, "name=t.bin&version=2.0", &image(3000), TOKEN);
    let tid = tampered["id"].as_str().unwrap();
    std::fs::write(acs.data_dir.join("files").join(tid), image(2999)).unwrap();
    bad(
        json!({"name": "x", "file": tid, "target": {"model_names": ["Device2"]}, "waves": [100]}),
        "no longer matches its SHA-256",
    );

    // Four devices in waves of 1 and 3.
    let (status, c) = acs.api_post(
        "/api/v1/campaigns",
        &spec(
            ids(&["CA01", "CA02", "CA03", "CA04"]),
            json!({"counts": [1, 3]}),
        ),
    );
    assert_eq!(status, 201, "{c}");
    let cid = c["id"].as_str().unwrap().to_owned();
    let key = format!("fw-{cid}");
    assert_eq!(c["state"], "running");
    // A device can be in one active campaign only.
    let (status, e) = acs.api_post(
        "/api/v1/campaigns",
        &spec(ids(&["CA04", "CB01"]), json!([100])),
    );
    assert_eq!(status, 409, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains(&cid));

    // Wave 1: CA01 gets the Download at its next session...
    let sent = wait_until("CA01's Download", 20, || {
        let s = session(&acs, &inform_on("CA01", "1.1.0", &["2 PERIODIC"], ""), None);
        (!s.is_empty()).then_some(s)
    });
    assert!(
        sent[0].contains(&key) && sent[0].contains("/files/"),
        "{}",
        sent[0]
    );
    // ...nobody else yet (wave 2 waits).
    assert!(session(&acs, &inform_on("CA02", "1.1.0", &["2 PERIODIC"], ""), None).is_empty());
    // ...reboots on 2.0 and reports the transfer.
    session(
        &acs,
        &inform_on(
            "CA01",
            "2.0",
            &["1 BOOT", "7 TRANSFER COMPLETE", "M Download"],
            &key,
        ),
        Some((0, &key)),
    );
    let c = wait_until("wave 2", 20, || {
        let c = campaign(&acs, &cid);
        (c["wave"] == 2).then_some(c)
    });
    assert_eq!(c["waves"][0]["counts"]["succeeded"], 1, "{c}");

    // Wave 2: CA02 succeeds; CA03 fails its transfer twice (retried once).
    for serial in ["CA02", "CA03", "CA04"] {
        wait_until("a wave-2 Download", 20, || {
            let s = session(&acs, &inform_on(serial, "1.1.0", &["2 PERIODIC"], ""), None);
            (!s.is_empty()).then_some(())
        });
    }
    session(
        &acs,
        &inform_on(
            "CA02",
            "2.0",
            &["1 BOOT", "7 TRANSFER COMPLETE", "M Download"],
            &key,
        ),
        Some((0, &key)),
    );
    session(
        &acs,
        &inform_on(
            "CA03",
            "1.1.0",
            &["7 TRANSFER COMPLETE", "M Download"],
            &key,
        ),
        Some((9010, &key)),
    );
    // Retried: a second Download.
    wait_until("CA03's second Download", 20, || {
        let s = session(&acs, &inform_on("CA03", "1.1.0", &["2 PERIODIC"], ""), None);
        (!s.is_empty()).then_some(())
    });
    session(
        &acs,
        &inform_on(
            "CA03",
            "1.1.0",
            &["7 TRANSFER COMPLETE", "M Download"],
            &key,
        ),
        Some((9010, &key)),
    );
    // 1 failed of 2 finished in wave 2: 50 % > 20 %: halted, with the reason.
    let c = wait_until("the campaign halted", 20, || {
        let c = campaign(&acs, &cid);
        (c["state"] == "halted").then_some(c)
    });
    let reason = c["halt_reason"].as_str().unwrap();
    assert!(
        reason.contains("wave 2") && reason.contains("max_failure_percent 20"),
        "{reason}"
    );
    let ca03 = c["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device_id"] == device_id("CA03"))
        .unwrap();
    assert_eq!(
        (ca03["status"].as_str(), ca03["attempts"].as_u64()),
        (Some("failed"), Some(2))
    );
    assert!(ca03["detail"].as_str().unwrap().contains("9010"), "{ca03}");
    // CB01 was never targeted: untouched.
    assert!(session(&acs, &inform_on("CB01", "1.1.0", &["2 PERIODIC"], ""), None).is_empty());

    // A halted campaign cannot be paused; resumed with a fixed image, the
    // device that failed gets it (attempts afresh) and the wave finishes.
    let (status, _) = acs.api_post(&format!("/api/v1/campaigns/{cid}/pause"), &json!({}));
    assert_eq!(status, 409);
    let (_, fixed) = upload(&acs, "name=fw-2.0.1.bin&version=2.0.1", &image(5000), TOKEN);
    let (status, c) = acs.api_post(
        &format!("/api/v1/campaigns/{cid}/resume"),
        &json!({"file": fixed["id"]}),
    );
    assert_eq!((status, c["state"].as_str()), (200, Some("running")), "{c}");
    assert_eq!(c["version"], "2.0.1");
    let sent = wait_until("CA03's Download of the fixed image", 20, || {
        let s = session(&acs, &inform_on("CA03", "1.1.0", &["2 PERIODIC"], ""), None);
        (!s.is_empty()).then_some(s)
    });
    assert!(sent[0].contains("fw-2.0.1.bin"), "{}", sent[0]);
    session(
        &acs,
        &inform_on(
            "CA03",
            "2.0.1",
            &["1 BOOT", "7 TRANSFER COMPLETE", "M Download"],
            &key,
        ),
        Some((0, &key)),
    );
    // CA04 took the first image before the fix: judged by that one.
    session(
        &acs,
        &inform_on(
            "CA04",
            "2.0",
            &["1 BOOT", "7 TRANSFER COMPLETE", "M Download"],
            &key,
        ),
        Some((0, &key)),
    );
    let c = wait_until("the campaign done", 20, || {
        let c = campaign(&acs, &cid);
        (c["state"] == "done").then_some(c)
    });
    assert_eq!(c["waves"][1]["counts"]["succeeded"], 3, "{c}");
    let (status, _) = acs.api_post(&format!("/api/v1/campaigns/{cid}/resume"), &json!({}));
    assert_eq!(status, 409, "a done campaign cannot be resumed");
    // Each step was on the event stream (the webhook gets the same).
    let changes: Vec<String> = events
        .events()
        .iter()
        .filter(|(kind, e)| kind == "campaign.changed" && e["data"]["campaign"] == cid.as_str())
        .map(|(_, e)| e["data"]["change"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        changes,
        ["created", "wave", "halted", "resumed", "done"],
        "{changes:?}"
    );
    let failed = events
        .events()
        .iter()
        .filter(|(kind, e)| kind == "campaign.device" && e["data"]["status"] == "failed")
        .count();
    assert_eq!(failed, 1);
    let (status, c2) = acs.api_post(
        "/api/v1/campaigns",
        &spec(ids(&["CA04", "CB01"]), json!([100])),
    );
    assert_eq!(status, 201, "{c2}");
    let c2id = c2["id"].as_str().unwrap();
    let c2 = campaign(&acs, c2id);
    let ca04 = c2["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device_id"] == device_id("CA04"))
        .unwrap();
    assert_eq!(ca04["status"], "skipped", "already on 2.0: {c2}");
    let (status, c) = acs.api_post(&format!("/api/v1/campaigns/{c2id}/abort"), &json!({}));
    assert_eq!((status, c["state"].as_str()), (200, Some("aborted")), "{c}");
    // Outside its window, a campaign sends nothing.
    let hour = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 3600
        % 24;
    let start = format!("{:02}:00", (hour + 12) % 24);
    let end = format!("{:02}:00", (hour + 13) % 24);
    let (status, c3) = acs.api_post(
        "/api/v1/campaigns",
        &json!({"name": "night", "file": file_id, "target": {"devices": [device_id("CB01")]},
                "waves": [100], "window": {"start": start, "end": end, "time_zone": "UTC"}}),
    );
    assert_eq!(status, 201, "{c3}");
    std::thread::sleep(std::time::Duration::from_millis(4500));
    assert!(session(&acs, &inform_on("CB01", "1.1.0", &["2 PERIODIC"], ""), None).is_empty());
    assert_eq!(
        campaign(&acs, c3["id"].as_str().unwrap())["waves"][0]["counts"]["pending"],
        1
    );
    let (_, list) = acs.api_get("/api/v1/campaigns");
    assert_eq!(list["campaigns"].as_array().unwrap().len(), 3);
}

#[test]
fn a_killed_acs_resumes_its_campaign_and_sends_nobody_the_image_twice() {
    let mut acs = Acs::start(&[]);
    let serials = ["KL01", "KL02", "KL03"];
    for s in serials {
        session(&acs, &inform_on(s, "1.1.0", &["2 PERIODIC"], ""), None);
    }
    let (_, file) = upload(&acs, "name=fw-3.bin&version=3.0", &image(2048), TOKEN);
    let devices: Vec<String> = serials.iter().map(|s| device_id(s)).collect();
    let (status, c) = acs.api_post(
        "/api/v1/campaigns",
        &json!({"name": "kill", "file": file["id"], "target": {"devices": devices}, "waves": [100], "max_concurrent": 3}),
    );
    assert_eq!(status, 201, "{c}");
    let cid = c["id"].as_str().unwrap().to_owned();
    let key = format!("fw-{cid}");
    // Every device is sent its Download (queued), then the ACS dies.
    wait_until("all three sent", 20, || {
        let c = campaign(&acs, &cid);
        (c["waves"][0]["counts"]["sent"] == 3).then_some(())
    });
    // KL01 takes its Download before the crash.
    let mut taken = std::collections::HashMap::new();
    let s = session(&acs, &inform_on("KL01", "1.1.0", &["2 PERIODIC"], ""), None);
    taken.insert("KL01", s.len());
    let dir = acs.take_tempdir();
    acs.kill9();

    let acs = Acs::start_in(dir.path(), &[]);
    // After the restart: the others get theirs once; KL01 gets none again.
    for _ in 0..3 {
        for s in serials {
            let got = session(&acs, &inform_on(s, "1.1.0", &["2 PERIODIC"], ""), None);
            *taken.entry(s).or_insert(0) += got.len();
        }
        std::thread::sleep(std::time::Duration::from_millis(2500));
    }
    for s in serials {
        assert_eq!(
            taken.get(s),
            Some(&1),
            "{s} was sent the image {:?} times",
            taken.get(s)
        );
    }
    for s in serials {
        session(
            &acs,
            &inform_on(
                s,
                "3.0",
                &["1 BOOT", "7 TRANSFER COMPLETE", "M Download"],
                &key,
            ),
            Some((0, &key)),
        );
    }
    let c = wait_until("the campaign done after the restart", 20, || {
        let c = campaign(&acs, &cid);
        (c["state"] == "done").then_some(c)
    });
    assert_eq!(c["waves"][0]["counts"]["succeeded"], 3, "{c}");
}

#[test]
fn a_transfer_the_cpe_made_on_its_own_is_recorded() {
    let acs = Acs::start(&[]);
    let events = EventStream::open(acs.api);
    let mut cpe = acs.cpe();
    let inform = inform_on("AT01", "1.1.0", &["10 AUTONOMOUS TRANSFER COMPLETE"], "");
    assert_eq!(cpe.post_str(&inform).status, 200);
    let atc = |code: u32| {
        response_xml(
            "atc",
            &format!(
                "<cwmp:AutonomousTransferComplete><AnnounceURL></AnnounceURL><TransferURL>http://user:secret@fw.example.net/x.bin</TransferURL><IsDownload>1</IsDownload><FileType>1 Firmware Upgrade Image</FileType><FileSize>1000</FileSize><TargetFileName>x.bin</TargetFileName><FaultStruct><FaultCode>{code}</FaultCode><FaultString>{}</FaultString></FaultStruct><StartTime>2026-12-06T01:00:00Z</StartTime><CompleteTime>2026-12-06T01:01:00Z</CompleteTime></cwmp:AutonomousTransferComplete>",
                if code == 0 { "" } else { "Download failure" }
            ),
        )
    };
    assert!(
        cpe.post_str(&atc(0))
            .text()
            .contains("AutonomousTransferCompleteResponse")
    );
    assert!(
        cpe.post_str(&atc(9010))
            .text()
            .contains("AutonomousTransferCompleteResponse")
    );
    assert_eq!(cpe.empty().status, 204);
    let seen = wait_until("two device.transfer events", 10, || {
        let e: Vec<Value> = events
            .events()
            .into_iter()
            .filter(|(k, _)| k == "device.transfer")
            .map(|(_, v)| v)
            .collect();
        (e.len() == 2).then_some(e)
    });
    assert_eq!(seen[0]["data"]["fault"], Value::Null);
    assert_eq!(seen[1]["data"]["fault"]["code"], 9010);
    assert_eq!(seen[1]["data"]["target_file_name"], "x.bin");
    // The failure is also in the device's faults; the URL's password nowhere.
    let (_, f) = acs.api_get(&format!(
        "/api/v1/faults?device={}",
        encode_segment(&device_id("AT01"))
    ));
    assert_eq!(f["faults"].as_array().unwrap().len(), 1, "{f}");
    assert!(!seen.iter().any(|e| e.to_string().contains("secret")));
    assert!(!acs.logs().contains("secret"));
}
