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
    let r = HttpConn::connect(acs.api).request(
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
    let (status, _) = upload(&acs, "name=big.bin", &image(1_200_000), TOKEN);
    assert_eq!(status, 413);
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
