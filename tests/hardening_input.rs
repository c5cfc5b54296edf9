//! Hostile input against the real binary: truncated, huge, deep, entity
//! laden, badly encoded and compressed bodies, slow clients, forged Digest
//! nonces, near-miss API tokens, and secrets in a trace-level log. Each
//! attack gets a clear 4xx naming the problem (or a cut connection), the
//! ACS's memory stays bounded (VmRSS/VmHWM of the child process), and
//! another CPE's session carries on during and after it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::*;
use serde_json::{Value, json};

const MIB: u64 = 1 << 20;

// ---- helpers ----------------------------------------------------------------

/// `(VmRSS, VmHWM)` of the ACS process, in bytes.
fn memory(acs: &Acs) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{}/status", acs.pid())).unwrap();
    let field = |name: &str| -> u64 {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing from /proc/<pid>/status"));
        let kb: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap();
        kb * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The highest resident memory of the ACS so far (its start included: a
/// start that is still settling when an attack begins must not count as
/// the attack's growth).
fn peak_so_far(acs: &Acs) -> u64 {
    let (rss, hwm) = memory(acs);
    rss.max(hwm)
}

/// Asserts the ACS's peak resident memory did not grow more than `margin`
/// over `rss_before` (taken before the attack).
fn assert_memory_bounded(acs: &Acs, rss_before: u64, margin: u64, what: &str) {
    let (rss, hwm) = memory(acs);
    if std::env::var_os("ACS_TEST_SHOW_MEMORY").is_some() {
        eprintln!(
            "{what}: before {} KiB, peak {} KiB, now {} KiB",
            rss_before / 1024,
            hwm / 1024,
            rss / 1024
        );
    }
    assert!(
        hwm <= rss_before + margin,
        "{what}: peak RSS {} MiB, {} MiB before (now {} MiB): more than {} MiB growth",
        hwm / MIB,
        rss_before / MIB,
        rss / MIB,
        margin / MIB
    );
}

/// A CPE with an open session, started before an attack.
fn open_session(acs: &Acs, serial: &str) -> Cpe {
    let mut cpe = acs.cpe();
    let r = cpe.post_str(&inform_xml("SOAP-ENV", "1-0", "1", serial, &["2 PERIODIC"]));
    assert_eq!(r.status, 200, "{}", r.text());
    cpe
}

/// The bystander's session opened before the attack ends normally, and a
/// new session carries a queued RPC and its answer.
fn still_served(acs: &Acs, mut cpe: Cpe, serial: &str) {
    let r = cpe.empty();
    assert_eq!(r.status, 204, "bystander session: {}", r.text());
    let task = acs.queue(
        &device_id(serial),
        json!({"Reboot": {"command_key": "after-attack"}}),
    );
    let mut cpe = acs.cpe();
    let r = cpe.post_str(&inform_xml("SOAP-ENV", "1-0", "2", serial, &["2 PERIODIC"]));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = cpe.empty();
    assert!(
        r.text().contains("<CommandKey>after-attack</CommandKey>"),
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

/// Ids of the devices the ACS knows.
fn device_ids(acs: &Acs) -> Vec<String> {
    let (status, list) = acs.api_get("/api/v1/devices?limit=1000");
    assert_eq!(status, 200, "{list}");
    list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Asserts a 400 whose text names the problem.
fn assert_400(r: &HttpResponse, names: &str, what: &str) {
    assert_eq!(r.status, 400, "{what}: {}", r.text());
    let text = r.text();
    assert!(
        text.starts_with("malformed CWMP request") && text.contains(names),
        "{what}: 400 should name `{names}`: {text}"
    );
}

/// An Inform whose Event and ParameterList elements carry the given
/// attributes and whose parameter list is `params` (raw XML).
fn inform_with(serial: &str, event_attrs: &str, list_attrs: &str, params: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cwmp="urn:dslforum-org:cwmp-1-0">
<SOAP-ENV:Header><cwmp:ID SOAP-ENV:mustUnderstand="1">1</cwmp:ID></SOAP-ENV:Header>
<SOAP-ENV:Body><cwmp:Inform>
<DeviceId><Manufacturer>TP-Link</Manufacturer><OUI>1C61B4</OUI><ProductClass>Device2</ProductClass><SerialNumber>{serial}</SerialNumber></DeviceId>
<Event {event_attrs}><EventStruct><EventCode>2 PERIODIC</EventCode><CommandKey></CommandKey></EventStruct></Event><MaxEnvelopes>1</MaxEnvelopes><CurrentTime>2026-11-29T12:00:00Z</CurrentTime><RetryCount>0</RetryCount>
<ParameterList {list_attrs}>{params}</ParameterList></cwmp:Inform></SOAP-ENV:Body></SOAP-ENV:Envelope>"#
    )
}

fn pvs(name: &str, value: &str) -> String {
    format!(
        r#"<ParameterValueStruct><Name>{name}</Name><Value xsi:type="xsd:string">{value}</Value></ParameterValueStruct>"#
    )
}

/// A GetParameterValuesResponse with these parameters (raw XML items).
fn gpv_response(id: &str, list_attrs: &str, items: &str) -> String {
    format!(
        r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soapenv:Header><cwmp:ID soapenv:mustUnderstand="1">{id}</cwmp:ID></soapenv:Header><soapenv:Body><cwmp:GetParameterValuesResponse><ParameterList {list_attrs}>{items}</ParameterList></cwmp:GetParameterValuesResponse></soapenv:Body></soapenv:Envelope>"#
    )
}

/// The cached parameters of a device under `prefix`.
fn parameters(acs: &Acs, serial: &str, prefix: &str) -> Vec<Value> {
    let (status, body) = acs.api_get(&format!(
        "/api/v1/devices/{}/parameters?prefix={prefix}",
        encode_segment(&device_id(serial))
    ));
    assert_eq!(status, 200, "{body}");
    body["parameters"].as_array().unwrap().clone()
}

/// Reads one response from a raw stream (status, text).
fn read_raw_response(reader: &mut BufReader<TcpStream>) -> (u16, String) {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 "), "bad status line {line:?}");
    let status: u16 = line[9..12].parse().unwrap();
    let mut len = 0;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

// ---- malformed XML ----------------------------------------------------------

#[test]
fn truncated_xml_is_a_400_at_every_cut_and_nothing_is_stored() {
    let acs = Acs::start(&[]);
    // Measured once a session has run: its own allocations (store, thread
    // heaps) are not the attack's.
    let bystander = open_session(&acs, "BYSTANDER");
    let rss_before = peak_so_far(&acs);

    let full = inform_xml("SOAP-ENV", "1-0", "1", "TRUNC", &["1 BOOT"]);
    let last = full.rfind('>').unwrap();
    let mut cuts: Vec<usize> = (1..last).step_by(last / 80 + 1).collect();
    for needle in [
        "<?xml ver",
        "xmlns:cwmp=\"urn:dsl",
        "<cwmp:ID SOAP-ENV:must",
        "<SerialNumber>TR",
        "</SerialNumber",
        "</cwmp:Inform",
        "</SOAP-ENV:Body>",
    ] {
        cuts.push(full.find(needle).unwrap() + needle.len());
    }
    cuts.push(last);
    let mut cpe = acs.cpe();
    for cut in cuts {
        let r = cpe.post(&full.as_bytes()[..cut]);
        assert_eq!(
            r.status,
            400,
            "cut at {cut} ({:?}): {}",
            &full[cut.saturating_sub(20)..cut],
            r.text()
        );
        assert!(
            r.text().starts_with("malformed CWMP request"),
            "cut at {cut}: {}",
            r.text()
        );
    }
    // One explicit check of the wording for a body that ends inside an element.
    let r = cpe.post(&full.as_bytes()[..full.find("</SerialNumber").unwrap()]);
    assert_400(&r, "truncated", "ends inside <SerialNumber>");

    // An entity reference cut in half.
    let r = cpe.post_str(&inform_xml("SOAP-ENV", "1-0", "a&am", "TRUNC", &["1 BOOT"]));
    assert_eq!(r.status, 400, "{}", r.text());

    // A body shorter than its Content-Length, then the client stops sending:
    // answered (408/400) or cut, never stored.
    let mut conn = HttpConn::connect(acs.cwmp);
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        full.len()
    );
    conn.stream().write_all(head.as_bytes()).unwrap();
    conn.stream().write_all(&full.as_bytes()[..200]).unwrap();
    conn.stream().shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = conn.stream().read_to_end(&mut rest);
    let rest = String::from_utf8_lossy(&rest);
    assert!(
        rest.is_empty() || rest.starts_with("HTTP/1.1 4"),
        "short body: {rest}"
    );

    still_served(&acs, bystander, "BYSTANDER");
    assert_eq!(
        device_ids(&acs),
        [device_id("BYSTANDER")],
        "nothing stored from truncated bodies"
    );
    assert_memory_bounded(&acs, rss_before, 32 * MIB, "truncated bodies");
}

#[test]
fn deeply_nested_elements_are_refused_without_recursion() {
    let acs = Acs::start(&[]);
    // Measured once a session has run: its own allocations (store, thread
    // heaps) are not the attack's.
    let bystander = open_session(&acs, "BYSTANDER");
    let rss_before = peak_so_far(&acs);
    let mut cpe = acs.cpe();

    // 100,000 levels, never closed (300 KB).
    let open_only = "<a>".repeat(100_000);
    assert_400(
        &cpe.post(open_only.as_bytes()),
        "nesting deeper than",
        "100,000 open elements",
    );
    // 100,000 levels, well-formed (700 KB), inside a real Inform's value.
    let nested = format!("{}x{}", "<n>".repeat(100_000), "</n>".repeat(100_000));
    let inform = inform_xml("SOAP-ENV", "1-0", "1", "DEEP", &["1 BOOT"]).replace(
        r#"<Value xsi:type="xsd:string">1.1.0</Value>"#,
        &format!(r#"<Value xsi:type="xsd:string">{nested}</Value>"#),
    );
    assert!(inform.len() > 600_000 && inform.len() < 1 << 20);
    assert_400(
        &cpe.post_str(&inform),
        "nesting deeper than",
        "100,000 levels in a value",
    );
    // The same, gzip-compressed (a few KB on the wire).
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(inform.as_bytes()).unwrap();
    let mut zipped = acs.cpe();
    zipped
        .extra_headers
        .push(("Content-Encoding".into(), "gzip".into()));
    assert_400(
        &zipped.post(&gz.finish().unwrap()),
        "nesting deeper than",
        "gzip-compressed nesting",
    );
    // Deep nesting sent by a CPE inside its own open session.
    let mut own = open_session(&acs, "DEEPSESSION");
    assert_400(
        &own.post(open_only.as_bytes()),
        "nesting deeper than",
        "inside a session",
    );
    assert_eq!(own.empty().status, 204, "its session survives the 400");

    still_served(&acs, bystander, "BYSTANDER");
    assert!(!device_ids(&acs).contains(&device_id("DEEP")));
    assert_memory_bounded(&acs, rss_before, 32 * MIB, "deep nesting");
}

#[test]
fn entity_definitions_are_refused_and_never_expanded() {
    let acs = Acs::start(&[]);
    // Measured once a session has run: its own allocations (store, thread
    // heaps) are not the attack's.
    let bystander = open_session(&acs, "BYSTANDER");
    let rss_before = peak_so_far(&acs);

    let mut laughs = String::from("<!ENTITY lol \"lol\">\n");
    for i in 1..=9 {
        let prev = if i == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", i - 1)
        };
        let refs = format!("&{prev};").repeat(10);
        laughs.push_str(&format!("<!ENTITY lol{i} \"{refs}\">\n"));
    }
    let with_doctype = |subset: &str, serial: &str| -> String {
        inform_xml("SOAP-ENV", "1-0", "1", serial, &["1 BOOT"]).replacen(
            "?>\n",
            &format!("?>\n<!DOCTYPE SOAP-ENV:Envelope [\n{subset}]>\n"),
            1,
        )
    };
    let cases = [
        ("billion laughs", with_doctype(&laughs, "&lol9;")),
        (
            "external entity",
            with_doctype("<!ENTITY xxe SYSTEM \"file:///etc/passwd\">\n", "&xxe;"),
        ),
        (
            "parameter entity",
            with_doctype(
                "<!ENTITY % pe SYSTEM \"http://127.0.0.1:9/evil.dtd\">\n%pe;\n",
                "PE1",
            ),
        ),
        (
            "external DTD",
            inform_xml("SOAP-ENV", "1-0", "1", "DTD1", &["1 BOOT"]).replacen(
                "?>\n",
                "?>\n<!DOCTYPE x SYSTEM \"file:///etc/passwd\">\n",
                1,
            ),
        ),
    ];
    let mut cpe = acs.cpe();
    for (what, body) in &cases {
        let r = cpe.post_str(body);
        assert_400(&r, "DOCTYPE", what);
        assert!(!r.text().contains("root:"), "{what}: {}", r.text());
    }
    // Without a DOCTYPE, an undefined entity is an error, not an empty string.
    let r = cpe.post_str(&inform_xml("SOAP-ENV", "1-0", "1", "&lol9;", &["1 BOOT"]));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().starts_with("malformed CWMP request"),
        "{}",
        r.text()
    );
    // Character references are decoded once, not recursively.
    let r = cpe.post_str(&inform_xml(
        "SOAP-ENV",
        "1-0",
        "1",
        "AMP&#x26;amp;1",
        &["1 BOOT"],
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(cpe.empty().status, 204);
    let amp = device_ids(&acs)
        .into_iter()
        .find(|id| id.contains("AMP"))
        .expect("the AMP device");
    let (_, d) = acs.api_get(&format!("/api/v1/devices/{}", encode_segment(&amp)));
    assert_eq!(d["serial_number"], "AMP&amp;1", "{d}");

    still_served(&acs, bystander, "BYSTANDER");
    let ids = device_ids(&acs);
    assert_eq!(ids.len(), 2, "nothing stored from DOCTYPE bodies: {ids:?}");
    assert_memory_bounded(&acs, rss_before, 32 * MIB, "entity definitions");
}

#[test]
fn invalid_utf8_is_replaced_in_values_and_never_forms_other_names() {
    let acs = Acs::start(&[]);
    // Measured once a session has run: its own allocations (store, thread
    // heaps) are not the attack's.
    let bystander = open_session(&acs, "BYSTANDER");
    let rss_before = peak_so_far(&acs);
    let inform = |serial: &str| inform_xml("SOAP-ENV", "1-0", "1", serial, &["1 BOOT"]);
    let bytes_with = |text: &str, from: &str, to: &[u8]| -> Vec<u8> {
        let at = text.find(from).unwrap();
        let mut out = text.as_bytes()[..at].to_vec();
        out.extend_from_slice(to);
        out.extend_from_slice(&text.as_bytes()[at + from.len()..]);
        out
    };

    // In a value: replaced by U+FFFD (a Latin-1 SSID must not make a device
    // unmanageable), stored and shown as valid UTF-8.
    let body = bytes_with(
        &inform("UTF8VAL"),
        ">1.1.0<",
        b">1.\xff\xfe0 caf\xe9 \xc0\xaf<",
    );
    let mut cpe = acs.cpe();
    assert_eq!(cpe.post(&body).status, 200);
    assert_eq!(cpe.empty().status, 204);
    let (status, d) = acs.api_get(&format!("/api/v1/devices/{}", device_id("UTF8VAL")));
    assert_eq!(status, 200, "{d}");
    let version = d["software_version"].as_str().unwrap();
    assert!(
        version.starts_with("1.\u{FFFD}") && version.contains("caf\u{FFFD}"),
        "{version:?}"
    );
    assert!(!version.contains('/'), "an overlong `/` stays invalid");

    // In an element name: the element is not SerialNumber any more.
    let body = bytes_with(
        &inform("UTF8NAME"),
        "<SerialNumber>UTF8NAME</SerialNumber>",
        b"<Serial\xffNumber>UTF8NAME</Serial\xffNumber>",
    );
    let r = acs.cpe().post(&body);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("SerialNumber"), "{}", r.text());

    // In a parameter name: an overlong `.` (C0 AE) never becomes a dot, so
    // it cannot alias another parameter.
    let body = bytes_with(
        &inform("UTF8PARAM"),
        "Device.DeviceInfo.SoftwareVersion",
        b"Device\xc0\xaeDeviceInfo.SoftwareVersion",
    );
    let mut cpe = acs.cpe();
    let r = cpe.post(&body);
    assert!(r.status == 200 || r.status == 400, "{}", r.text());
    if r.status == 200 {
        assert_eq!(cpe.empty().status, 204);
        let names: Vec<String> = parameters(&acs, "UTF8PARAM", "")
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            !names
                .iter()
                .any(|n| n == "Device.DeviceInfo.SoftwareVersion"),
            "{names:?}"
        );
    }

    // In the serial number: the device id stays valid and escaped.
    let body = bytes_with(&inform("UTF8SN"), ">UTF8SN<", b">UTF8\xffSN<");
    let mut cpe = acs.cpe();
    let r = cpe.post(&body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(cpe.empty().status, 204);
    let odd = device_ids(&acs)
        .into_iter()
        .find(|id| id.contains("UTF8") && id.ends_with("SN"))
        .expect("the device with an odd serial");
    assert!(odd.is_ascii() || odd.contains('\u{FFFD}'), "{odd:?}");
    let (status, _) = acs.api_get(&format!("/api/v1/devices/{}", encode_segment(&odd)));
    assert_eq!(status, 200);

    // A declared ISO-8859-1 body is transcoded, not mangled.
    let latin = bytes_with(
        &inform("LATIN1").replace("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\""),
        ">1.1.0<",
        b">caf\xe9<",
    );
    let mut cpe = acs.cpe();
    assert_eq!(cpe.post(&latin).status, 200);
    assert_eq!(cpe.empty().status, 204);
    let (_, d) = acs.api_get(&format!("/api/v1/devices/{}", device_id("LATIN1")));
    assert_eq!(d["software_version"], "café");

    // UTF-16 is refused by name.
    let mut utf16 = b"\xff\xfe".to_vec();
    for u in inform("UTF16").encode_utf16() {
        utf16.extend_from_slice(&u.to_le_bytes());
    }
    assert_400(&acs.cpe().post(&utf16), "UTF-16", "UTF-16 body");

    // Invalid bytes in headers (cookie, SOAPAction, Authorization) are ignored.
    let mut conn = HttpConn::connect(acs.cwmp);
    let body = inform("HDRBYTES");
    let mut req = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(b"Cookie: session=\xff\xfe\r\nSOAPAction: \"\xc0\xaf\"\r\n\r\n");
    req.extend_from_slice(body.as_bytes());
    conn.stream().write_all(&req).unwrap();
    let r = conn.read_response();
    assert_eq!(r.status, 200, "{}", r.text());

    still_served(&acs, bystander, "BYSTANDER");
    assert_memory_bounded(&acs, rss_before, 32 * MIB, "invalid UTF-8");
}

// ---- sizes --------------------------------------------------------------------

/// Sends a POST whose body comes from `next_block` (None: done) on a
/// writer thread while this thread reads the answer; returns the status,
/// its text and the body bytes sent before the server cut the client off.
fn post_streaming(
    addr: std::net::SocketAddr,
    framing: &str,
    mut next_block: impl FnMut(u64) -> Option<Vec<u8>> + Send + 'static,
) -> (u16, String, u64) {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    writer
        .write_all(
            format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n{framing}\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    let sender = std::thread::spawn(move || -> u64 {
        let mut sent = 0u64;
        while let Some(block) = next_block(sent) {
            if writer.write_all(&block).is_err() {
                return sent;
            }
            sent += block.len() as u64;
        }
        sent
    });
    let mut reader = BufReader::new(stream);
    let (status, text) = read_raw_response(&mut reader);
    let sent = sender.join().unwrap();
    (status, text, sent)
}

/// Streams a 100 MB body, declared or chunked.
fn stream_100_mb(acs: &Acs, chunked: bool) -> (u16, String, u64) {
    const TOTAL: u64 = 100_000_000;
    const BLOCK: usize = 64 * 1024;
    if chunked {
        let mut chunk = format!("{BLOCK:x}\r\n").into_bytes();
        chunk.extend_from_slice(&[b'<'; BLOCK]);
        chunk.extend_from_slice(b"\r\n");
        post_streaming(acs.cwmp, "Transfer-Encoding: chunked", move |sent| {
            (sent < TOTAL).then(|| chunk.clone())
        })
    } else {
        post_streaming(acs.cwmp, &format!("Content-Length: {TOTAL}"), move |sent| {
            (sent < TOTAL).then(|| vec![b'<'; BLOCK])
        })
    }
}

#[test]
fn a_100_mb_body_is_refused_early_with_413() {
    let acs = Acs::start(&[]);
    // Measured once a session has run: its own allocations (store, thread
    // heaps) are not the attack's.
    let bystander = open_session(&acs, "BYSTANDER");
    let rss_before = peak_so_far(&acs);

    for chunked in [false, true] {
        let (status, text, sent) = stream_100_mb(&acs, chunked);
        let how = if chunked { "chunked" } else { "Content-Length" };
        assert_eq!(status, 413, "{how}: {text}");
        assert!(
            text.contains("request body larger than 1048576 bytes"),
            "{how}: {text}"
        );
        assert!(
            sent < 32 * MIB,
            "{how}: the client sent {} MiB before being cut off",
            sent / MIB
        );
        assert_memory_bounded(&acs, rss_before, 32 * MIB, how);
    }

    // With `Expect: 100-continue` the body is refused before it is sent.
    let mut conn = HttpConn::connect(acs.cwmp);
    conn.stream()
        .write_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap();
    let r = conn.read_response();
    assert_eq!(r.status, 413, "{}", r.text());

    still_served(&acs, bystander, "BYSTANDER");
    assert_eq!(device_ids(&acs), [device_id("BYSTANDER")]);
    assert_memory_bounded(&acs, rss_before, 32 * MIB, "100 MB bodies");
}

#[test]
fn compression_bombs_stop_at_the_body_limit() {
    let acs = Acs::start(&[]);
    // Measured once a session has run: its own allocations (store, thread
    // heaps) are not the attack's.
    let bystander = open_session(&acs, "BYSTANDER");
    let rss_before = peak_so_far(&acs);

    let zeros = vec![0u8; MIB as usize];
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..100 {
        gz.write_all(&zeros).unwrap();
        zl.write_all(&zeros).unwrap();
        raw.write_all(&zeros).unwrap();
    }
    let bombs = [
        ("gzip", gz.finish().unwrap()),
        ("deflate", zl.finish().unwrap()),
        ("deflate", raw.finish().unwrap()),
    ];
    for (encoding, bomb) in &bombs {
        assert!(bomb.len() < 200 * 1024, "100 MB in {} bytes", bomb.len());
        let mut cpe = acs.cpe();
        cpe.extra_headers
            .push(("Content-Encoding".into(), (*encoding).into()));
        let r = cpe.post(bomb);
        assert_eq!(r.status, 413, "{encoding}: {}", r.text());
        assert!(
            r.text().contains("larger than 1048576 bytes"),
            "{encoding}: {}",
            r.text()
        );
        assert_memory_bounded(&acs, rss_before, 32 * MIB, encoding);
    }

    // Stacked encodings are not undone one after the other.
    let mut cpe = acs.cpe();
    cpe.extra_headers
        .push(("Content-Encoding".into(), "gzip, gzip".into()));
    let r = cpe.post(&bombs[0].1);
    assert_eq!(r.status, 415, "{}", r.text());
    assert!(r.text().contains("Content-Encoding"), "{}", r.text());
    // A gzip inside a gzip is garbage once unwrapped.
    let mut outer = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    outer.write_all(&bombs[0].1).unwrap();
    let mut cpe = acs.cpe();
    cpe.extra_headers
        .push(("Content-Encoding".into(), "gzip".into()));
    let r = cpe.post(&outer.finish().unwrap());
    assert_eq!(r.status, 400, "{}", r.text());
    // Truncated gzip: refused (413 here, since what is there already
    // inflates beyond the limit; a short one is a 400 naming gzip).
    let mut cpe = acs.cpe();
    cpe.extra_headers
        .push(("Content-Encoding".into(), "gzip".into()));
    let r = cpe.post(&bombs[0].1[..bombs[0].1.len() / 2]);
    assert!(
        r.status == 400 || r.status == 413,
        "truncated gzip: {}",
        r.text()
    );

    still_served(&acs, bystander, "BYSTANDER");
    assert_memory_bounded(&acs, rss_before, 32 * MIB, "compression bombs");
}

#[test]
fn huge_array_type_counts_are_ignored() {
    let acs = Acs::start(&[]);
    // Measured once a session has run: its own allocations (store, thread
    // heaps) are not the attack's.
    let bystander = open_session(&acs, "BYSTANDER");
    let rss_before = peak_so_far(&acs);

    for (i, count) in [
        "999999999",
        "18446744073709551615",
        "99999999999999999999999999999",
        "-1",
        "x",
        "999999999,999999999",
    ]
    .iter()
    .enumerate()
    {
        let serial = format!("ARRAY{i}");
        let body = inform_with(
            &serial,
            &format!(r#"SOAP-ENC:arrayType="cwmp:EventStruct[{count}]""#),
            &format!(r#"SOAP-ENC:arrayType="cwmp:ParameterValueStruct[{count}]""#),
            &pvs("Device.DeviceInfo.SoftwareVersion", "7.7.7"),
        );
        let mut cpe = acs.cpe();
        let r = cpe.post_str(&body);
        assert_eq!(r.status, 200, "[{count}]: {}", r.text());
        assert_eq!(cpe.empty().status, 204);
        let (_, d) = acs.api_get(&format!("/api/v1/devices/{}", device_id(&serial)));
        assert_eq!(d["software_version"], "7.7.7", "[{count}]: {d}");
    }

    // In a GetParameterValuesResponse answering a queued request.
    let task = acs.queue(
        &device_id("ARRAY0"),
        json!({"GetParameterValues": {"names": ["Device.DeviceInfo.UpTime"]}}),
    );
    let mut cpe = acs.cpe();
    assert_eq!(
        cpe.post_str(&inform_xml(
            "SOAP-ENV",
            "1-0",
            "2",
            "ARRAY0",
            &["2 PERIODIC"]
        ))
        .status,
        200
    );
    let req = cpe.empty().text();
    let id = between(&req, "mustUnderstand=\"1\">", "</cwmp:ID>")
        .unwrap()
        .to_owned();
    let r = cpe.post_str(&gpv_response(
        &id,
        r#"soapenc:arrayType="cwmp:ParameterValueStruct[999999999]""#,
        &pvs("Device.DeviceInfo.UpTime", "42"),
    ));
    assert_eq!(r.status, 204, "{}", r.text());
    let (_, t) = acs.api_get(&format!("/api/v1/tasks/{task}"));
    assert_eq!(t["status"], "done", "{t}");
    assert_eq!(
        t["response"]["GetParameterValuesResponse"]["parameters"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    still_served(&acs, bystander, "BYSTANDER");
    assert_memory_bounded(&acs, rss_before, 32 * MIB, "huge arrayType counts");
}

#[test]
fn a_10000_parameter_answer_is_stored_within_the_limits_and_refused_beyond() {
    // 10,000 parameters take ~1.2 MB: over the default 1 MiB body limit, so
    // the operator raises it; the element cap (200,000) still applies.
    let limit = 4 * MIB;
    let acs = Acs::start(&[("ACS_MAX_BODY_BYTES", &limit.to_string())]);
    // Measured once a session has run: its own allocations (store, thread
    // heaps) are not the attack's.
    let bystander = open_session(&acs, "BYSTANDER");
    let rss_before = peak_so_far(&acs);
    let serial = "BIGGPV";
    let mut cpe = acs.cpe();
    assert_eq!(
        cpe.post_str(&inform_xml("SOAP-ENV", "1-0", "1", serial, &["1 BOOT"]))
            .status,
        200
    );
    let task = acs.queue(
        &device_id(serial),
        json!({"GetParameterValues": {"names": ["Device."]}}),
    );
    let req = cpe.empty().text();
    assert!(req.contains("<cwmp:GetParameterValues>"), "{req}");
    let id = between(&req, "mustUnderstand=\"1\">", "</cwmp:ID>")
        .unwrap()
        .to_owned();

    let items = |n: usize| -> String {
        (1..=n)
            .map(|i| {
                pvs(
                    &format!("Device.X_TEST_Table.Entry.{i}.Value"),
                    &format!("value {i}"),
                )
            })
            .collect()
    };
    // Over the byte limit: 413 naming it.
    let too_big = gpv_response(&id, "", &items(40_000)).into_bytes();
    let size = too_big.len() as u64;
    assert!(size > limit);
    let mut once = Some(too_big);
    let (status, text, _) = post_streaming(
        acs.cwmp,
        &format!(
            "Content-Length: {size}\r\nCookie: {}",
            cpe.cookie.clone().unwrap()
        ),
        move |_| once.take(),
    );
    assert_eq!(status, 413, "{text}");
    assert!(
        text.contains(&format!("larger than {limit} bytes")),
        "{text}"
    );
    // Within the byte limit but over the element cap: 400 naming it.
    let compact: String = (0..70_000)
        .map(|i| format!("<p><Name>Device.T.{i}</Name><Value>v</Value></p>"))
        .collect();
    let many = gpv_response(&id, "", &compact);
    assert!((many.len() as u64) < limit);
    assert_400(
        &cpe.post_str(&many),
        "more than 200000 XML elements",
        "element cap",
    );

    // 10,000 parameters within both limits: accepted and stored.
    let body = gpv_response(
        &id,
        r#"soapenc:arrayType="cwmp:ParameterValueStruct[10000]""#,
        &items(10_000),
    );
    assert!(body.len() as u64 > MIB && (body.len() as u64) < limit);
    let r = cpe.post_str(&body);
    assert_eq!(r.status, 204, "{}", r.text());
    let (_, t) = acs.api_get(&format!("/api/v1/tasks/{task}"));
    assert_eq!(t["status"], "done", "{}", t["status"]);
    assert_eq!(
        t["response"]["GetParameterValuesResponse"]["parameters"]
            .as_array()
            .unwrap()
            .len(),
        10_000
    );
    let stored = parameters(&acs, serial, "Device.X_TEST_Table.");
    assert_eq!(stored.len(), 10_000);
    let last = stored
        .iter()
        .find(|p| p["name"] == "Device.X_TEST_Table.Entry.10000.Value")
        .expect("the last parameter");
    assert_eq!(last["value"], "value 10000");

    still_served(&acs, bystander, "BYSTANDER");
    // Bounded by the limits, but not small: storing 10,000 parameters
    // grows the embedded database's memory by ~60 MB (sled keeps written
    // pages in memory whatever ACS_STORE_CACHE_MB says).
    assert_memory_bounded(&acs, rss_before, 128 * MIB, "10,000 parameters");
}

// ---- slow clients -------------------------------------------------------------

#[test]
fn slowloris_connections_are_cut_while_a_cpe_keeps_its_sessions() {
    const SLOW: usize = 300;
    let acs = Acs::start(&[("ACS_HEADER_READ_TIMEOUT_S", "2")]);
    let rss_before = peak_so_far(&acs);

    // A normal CPE runs Inform -> 204 sessions throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let normal = {
        let stop = stop.clone();
        let addr = acs.cwmp;
        std::thread::spawn(move || -> Result<u32, String> {
            let mut sessions = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut cpe = Cpe::new(addr);
                let r = cpe.post_str(&inform_xml(
                    "SOAP-ENV",
                    "1-0",
                    &sessions.to_string(),
                    "STEADY",
                    &["2 PERIODIC"],
                ));
                if r.status != 200 {
                    return Err(format!("Inform got {}: {}", r.status, r.text()));
                }
                let r = cpe.empty();
                if r.status != 204 {
                    return Err(format!("empty POST got {}: {}", r.status, r.text()));
                }
                sessions += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(sessions)
        })
    };

    let request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut slow: Vec<Option<(TcpStream, usize)>> = (0..SLOW)
        .map(|_| {
            let s = TcpStream::connect(acs.cwmp).unwrap();
            s.set_nonblocking(true).unwrap();
            Some((s, 0))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut open = SLOW;
    let mut header_bytes = Vec::new();
    while open > 0 {
        assert!(
            Instant::now() < deadline,
            "{open} of {SLOW} slow connections still open"
        );
        for entry in slow.iter_mut() {
            let Some((s, pos)) = entry else { continue };
            let mut buf = [0u8; 512];
            let closed = match s.read(&mut buf) {
                Ok(0) => true,
                // An answer is fine, but the connection must end after it.
                Ok(_) => false,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    // Still open: one more header byte.
                    match s.write(&request[*pos % request.len()..][..1]) {
                        Ok(n) => {
                            *pos += n;
                            false
                        }
                        Err(e) => e.kind() != ErrorKind::WouldBlock,
                    }
                }
                Err(_) => true,
            };
            if closed {
                header_bytes.push(*pos);
                *entry = None;
                open -= 1;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // Every slow connection got header bytes in before it was cut: they
    // were cut by the header timeout, not refused at connect.
    assert!(
        header_bytes.iter().all(|n| *n >= 1),
        "connections refused before sending anything: {header_bytes:?}"
    );
    stop.store(true, Ordering::Relaxed);
    let sessions = normal.join().unwrap().unwrap();
    assert!(
        sessions >= 3,
        "only {sessions} normal sessions during the attack"
    );
    assert_memory_bounded(&acs, rss_before, 32 * MIB, "slowloris");
    // And afterwards.
    let bystander = open_session(&acs, "AFTER");
    still_served(&acs, bystander, "AFTER");
}

// ---- authentication -------------------------------------------------------------

const REALM: &str = "gigafibre-acs";

fn md5_hex(s: &str) -> String {
    use md5::Digest as _;
    format!("{:x}", md5::Md5::digest(s.as_bytes()))
}

/// An MD5 Digest `Authorization` value.
fn digest_authorization(realm: &str, nonce: &str, password: &str, uri: &str) -> String {
    let ha1 = md5_hex(&format!("cpe:{realm}:{password}"));
    let ha2 = md5_hex(&format!("POST:{uri}"));
    let response = md5_hex(&format!("{ha1}:{nonce}:00000001:0a4f113b:auth:{ha2}"));
    format!(
        "Digest username=\"cpe\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"{response}\""
    )
}

/// The MD5 challenge's nonce of a 401.
fn challenge_nonce(r: &HttpResponse) -> String {
    assert_eq!(r.status, 401, "{}", r.text());
    let md5 = r
        .headers_named("www-authenticate")
        .into_iter()
        .find(|h| h.contains("algorithm=MD5"))
        .expect("an MD5 challenge")
        .to_owned();
    between(&md5, "nonce=\"", "\"").unwrap().to_owned()
}

fn is_stale(r: &HttpResponse) -> bool {
    let challenges = r.headers_named("www-authenticate");
    assert!(!challenges.is_empty(), "no challenge in a {}", r.status);
    let stale = challenges
        .iter()
        .filter(|h| h.contains("stale=true"))
        .count();
    assert!(
        stale == 0 || stale == challenges.len(),
        "stale on some challenges only: {challenges:?}"
    );
    stale > 0
}

#[test]
fn digest_rejects_stale_replays_and_forged_nonces() {
    const PASSWORD: &str = "digest-hardening-pw";
    let env = [
        ("ACS_CPE_AUTH", "digest"),
        ("ACS_CPE_USERNAME", "cpe"),
        ("ACS_CPE_PASSWORD", PASSWORD),
        ("ACS_DIGEST_NONCE_TTL_S", "1"),
    ];
    let acs = Acs::start(&env);
    let other_acs = Acs::start(&env);
    let inform = inform_xml("SOAP-ENV", "1-0", "1", "DIGESTH", &["2 PERIODIC"]);
    let attempt = |authorization: Option<&str>| -> HttpResponse {
        let mut cpe = acs.cpe();
        if let Some(a) = authorization {
            cpe.extra_headers = vec![("Authorization".into(), a.to_owned())];
        }
        let r = cpe.post_str(&inform);
        if r.status == 200 {
            cpe.extra_headers.clear();
            assert_eq!(cpe.empty().status, 204);
        }
        r
    };

    let first = attempt(None);
    let nonce = challenge_nonce(&first);
    assert!(!is_stale(&first));
    let accepted = digest_authorization(REALM, &nonce, PASSWORD, "/");
    assert_eq!(attempt(Some(&accepted)).status, 200);

    // Forged MAC: the nonce with its last byte changed, correctly answered.
    let mut raw = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
    assert_eq!(raw.len(), 32, "timestamp, random, MAC");
    *raw.last_mut().unwrap() ^= 1;
    let forged = URL_SAFE_NO_PAD.encode(&raw);
    let r = attempt(Some(&digest_authorization(REALM, &forged, PASSWORD, "/")));
    assert_eq!(r.status, 401);
    assert!(!is_stale(&r), "a forgery is not stale");
    // A nonce of another ACS (another key), same realm and password.
    let foreign = challenge_nonce(&other_acs.cpe().post_str(&inform));
    let r = attempt(Some(&digest_authorization(REALM, &foreign, PASSWORD, "/")));
    assert_eq!(r.status, 401);
    assert!(!is_stale(&r));
    // Another realm, answered consistently for it.
    let r = attempt(Some(&digest_authorization(
        "other-realm",
        &nonce,
        PASSWORD,
        "/",
    )));
    assert_eq!(r.status, 401);
    // Another target uri.
    let r = attempt(Some(&digest_authorization(REALM, &nonce, PASSWORD, "/x")));
    assert_eq!(r.status, 401);
    // Garbage nonces.
    let long = "A".repeat(4096);
    for bad in ["", "AAAA", long.as_str(), "!!!not-base64!!!"] {
        let r = attempt(Some(&digest_authorization(REALM, bad, PASSWORD, "/")));
        assert_eq!(r.status, 401, "nonce {bad:.20}");
        assert!(!is_stale(&r));
    }

    // Once the nonce is older than its TTL, replaying the accepted header
    // gets a stale challenge with a fresh nonce.
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&URL_SAFE_NO_PAD.decode(&nonce).unwrap()[..8]);
    let issued = UNIX_EPOCH + Duration::from_secs(u64::from_be_bytes(ts));
    let expired_at = issued + Duration::from_millis(2100);
    if let Ok(wait) = expired_at.duration_since(SystemTime::now()) {
        std::thread::sleep(wait);
    }
    let replay = attempt(Some(&accepted));
    assert_eq!(replay.status, 401, "a stale replay must not be accepted");
    assert!(is_stale(&replay), "{:?}", replay.headers);
    let fresh = challenge_nonce(&replay);
    assert_ne!(fresh, nonce);
    // Refreshing the stale nonce's timestamp breaks its MAC: not stale, forged.
    let mut raw = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    raw[..8].copy_from_slice(&now.to_be_bytes());
    let refreshed = URL_SAFE_NO_PAD.encode(&raw);
    let r = attempt(Some(&digest_authorization(
        REALM, &refreshed, PASSWORD, "/",
    )));
    assert_eq!(r.status, 401);
    assert!(!is_stale(&r));
    // The fresh nonce works.
    assert_eq!(
        attempt(Some(&digest_authorization(REALM, &fresh, PASSWORD, "/"))).status,
        200
    );
    assert!(!acs.logs().contains(PASSWORD));
}

#[test]
fn near_miss_api_tokens_are_refused_on_every_route() {
    use gigafibre_acs::api::ROUTES;
    let acs = Acs::start(&[]);
    let upper = TOKEN.to_ascii_uppercase();
    let variants = [
        format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]),
        format!("Bearer {TOKEN}x"),
        format!("Bearer {upper}"),
        format!("Bearer {TOKEN},{TOKEN}"),
        format!("Bearer x{TOKEN}"),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        format!("Token {TOKEN}"),
        TOKEN.to_owned(),
        format!("Basic {}", STANDARD.encode(format!("api:{TOKEN}"))),
        format!("Digest username=\"api\", response=\"{TOKEN}\""),
    ];
    let cookie = format!("token={TOKEN}");
    let mut checked = 0;
    for route in ROUTES.iter().filter(|r| !r.public) {
        let path: String = route
            .path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let mut attempts: Vec<(String, Vec<(&str, &str)>)> = variants
            .iter()
            .map(|v| (path.clone(), vec![("Authorization", v.as_str())]))
            .collect();
        // The token anywhere but the Authorization header does not count.
        attempts.push((format!("{path}?access_token={TOKEN}"), vec![]));
        attempts.push((format!("{path}?token={TOKEN}"), vec![]));
        attempts.push((path.clone(), vec![("X-Api-Token", TOKEN)]));
        attempts.push((path.clone(), vec![("Cookie", cookie.as_str())]));
        for (target, headers) in &attempts {
            let r = HttpConn::connect(acs.api).request(route.method, target, headers, b"{}");
            assert_eq!(r.status, 401, "{} {target} with {headers:?}", route.method);
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(body["error"]["code"], "unauthorized");
            assert!(!r.text().contains(TOKEN));
            checked += 1;
        }
    }
    assert!(checked > 100);

    // An unauthenticated 100 MB upload is refused before its body is read.
    let mut conn = HttpConn::connect(acs.api);
    conn.stream()
        .write_all(b"POST /api/v1/devices/x/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{")
        .unwrap();
    assert_eq!(conn.read_response().status, 401);
    // The right token still works.
    assert_eq!(acs.api_get("/api/v1/devices").0, 200);
    assert!(!acs.logs().contains(TOKEN));
}

// ---- secrets in a trace log -----------------------------------------------------

const WIFI_PASS: &str = "Trace-Wifi-Pass-7781";
const SIP_PASS: &str = "Trace-Sip-Pass-8842";
const CPE_PASS: &str = "Trace-Cpe-Pass-9903";
const CR_PASS: &str = "Trace-Cr-Pass-0064";

#[test]
fn no_secret_reaches_a_trace_log_during_a_full_provisioning_run() {
    let erp = ErpSim::start(&json!({
        "Customer": [{"name": "Jean Tremblay", "customer_name": "Jean Tremblay", "customer_type": "Individual", "customer_group": "Résidentiel", "territory": "Québec"}],
        "Service Location": [{"name": "LOC-00001", "customer": "Jean Tremblay", "address_line": "1 rue Principale", "city": "Salaberry-de-Valleyfield", "province": "QC", "postal_code": "J6S 1A1", "status": "Active"}],
        "Service Equipment": [
            {"name": "EQ-00001", "customer": "Jean Tremblay", "service_location": "LOC-00001", "equipment_type": "Routeur", "brand": "TP-Link", "model": "Deco X20",
             "status": "En inventaire", "mac_address": "1c-61-b4-aa-00-11", "custom_wifi_ssid": "Gigafibre-Tremblay", "custom_wifi_password": WIFI_PASS, "custom_wifi_enabled": 1},
            {"name": "EQ-00002", "customer": "Jean Tremblay", "service_location": "LOC-00001", "equipment_type": "ONT", "brand": "Raisecom", "model": "HT803G-WS2",
             "status": "En inventaire", "serial_number": "52434D470000CAFE", "custom_sip_username": "14505552001", "custom_sip_password": SIP_PASS, "custom_sip_line": 1},
        ],
    }));
    let env = erp.acs_env();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(&[
        ("RUST_LOG", "trace"),
        ("ACS_PROVISIONING", "on"),
        ("ACS_HOSTS_COLLECT", "on"),
        ("ACS_ERPNEXT_CACHE_TTL_S", "0"),
        ("ACS_CR_MIN_INTERVAL_S", "0"),
        ("ACS_SIP_REGISTRAR", "sip.gigafibre.ca"),
        ("ACS_SIP_DOMAIN", "gigafibre.ca"),
        ("ACS_CPE_AUTH", "digest"),
        ("ACS_CPE_USERNAME", "cpe"),
        ("ACS_CPE_PASSWORD", CPE_PASS),
        ("ACS_CR_USERNAME", "cr-global"),
        ("ACS_CR_PASSWORD", CR_PASS),
    ]);
    let acs = Acs::start(&all);

    let deco = SimDevice::start_with_env(
        &acs,
        "deco",
        "DECO11",
        &[
            "--mac",
            "1C:61:B4:AA:00:11",
            "--auth",
            "digest",
            "--username",
            "cpe",
        ],
        &[("CPE_SIM_PASSWORD", CPE_PASS)],
    );
    let ont = SimDevice::start_with_env(
        &acs,
        "rcmg-ont",
        "RCMG0000CAFE",
        &[
            "--gpon-sn",
            "RCMG0000CAFE",
            "--auth",
            "digest",
            "--username",
            "cpe",
        ],
        &[("CPE_SIM_PASSWORD", CPE_PASS)],
    );
    let deco_id = "1C61B4-Device2-DECO11";
    let ont_id = "000E5E-HT803G%2DWS2-RCMG0000CAFE";
    for id in [deco_id, ont_id] {
        wait_until(&format!("{id} provisioned"), 30, || {
            let (_, d) = acs.api_get(&format!("/api/v1/devices/{}", encode_segment(id)));
            (d["provisioning"]["status"] == "provisioned").then_some(())
        });
    }
    let passphrase = "Device.WiFi.AccessPoint.1.Security.KeyPassphrase";
    wait_until("the passphrase on the Deco", 10, || {
        (deco.value(passphrase).as_deref() == Some(WIFI_PASS)).then_some(())
    });
    let sip =
        "InternetGatewayDevice.Services.VoiceService.1.VoiceProfile.1.Line.1.SIP.AuthPassword";
    wait_until("the SIP password on the ONT", 10, || {
        (ont.value(sip).as_deref() == Some(SIP_PASS)).then_some(())
    });

    // A reprovision through the API: ERPNext read, connection request with
    // the per-device credentials the ACS generated, a new session.
    let r = HttpConn::connect(acs.api).request(
        "POST",
        &format!(
            "/api/v1/devices/{}/reprovision?wait=30",
            encode_segment(deco_id)
        ),
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["connection_request"]["ok"], true, "{body:#}");
    let device_cr_pass = deco
        .value("Device.ManagementServer.ConnectionRequestPassword")
        .expect("the ACS gave the Deco connection-request credentials");
    assert!(device_cr_pass.len() >= 8, "{device_cr_pass:?}");
    // The API shows parameters, masked.
    let (status, params) = acs.api_get(&format!(
        "/api/v1/devices/{}/parameters?prefix=Device.",
        encode_segment(deco_id)
    ));
    assert_eq!(status, 200);
    let shown = params.to_string();

    std::thread::sleep(Duration::from_millis(300));
    let logs = acs.logs();
    assert!(logs.contains("TRACE"), "trace logging is on");
    for step in [
        "status=Provisioned equipment=\"EQ-00001\"",
        "status=Provisioned equipment=\"EQ-00002\"",
        "rpc=\"SetParameterValues\"",
        "connection request",
    ] {
        assert!(logs.contains(step), "the run logged no `{step}`");
    }
    for (what, secret) in [
        ("WiFi passphrase", WIFI_PASS),
        ("SIP password", SIP_PASS),
        ("CPE password", CPE_PASS),
        ("global connection-request password", CR_PASS),
        (
            "per-device connection-request password",
            device_cr_pass.as_str(),
        ),
        ("ERPNext API secret", erp.secret.as_str()),
        ("API token", TOKEN),
    ] {
        assert!(
            !logs.contains(secret),
            "the {what} leaked into the trace log"
        );
        assert!(!shown.contains(secret), "the {what} shown by the API");
    }
    let erp_basic = STANDARD.encode(format!("{}:{}", erp.key, erp.secret));
    assert!(!logs.contains(&erp_basic));
}
