//! End to end with the simulators: the real ACS binary and real `cpe-sim`
//! processes on loopback, talking only HTTP.
//!
//! `cpe-sim` is a workspace member; `cargo test --workspace` builds it
//! before running tests, and it is found next to this test's executable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output};

use common::*;
use serde_json::json;

fn cpe_sim(args: &[&str]) -> Output {
    Command::new(workspace_bin("cpe-sim"))
        .args(args)
        .env("RUST_LOG", "info")
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "cpe-sim failed: {stderr}");
    stderr
}

/// A firmware image as cpe-sim expects one: its header line, then filler.
fn firmware_image(version: &str, size: usize) -> Vec<u8> {
    let mut v = format!("CPESIM-FIRMWARE version={version}\n").into_bytes();
    v.resize(size.max(v.len()), b'.');
    v
}

/// Serves `body` on every path of a loopback HTTP server (a thread): its
/// URL and the number of requests it answered.
fn serve_file(body: Vec<u8>) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/fw/xx230v.bin", listener.local_addr().unwrap());
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut out = stream;
            let _ = write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = out.write_all(&body);
        }
    });
    (url, hits)
}

fn events(acs: &Acs, id: &str) -> Vec<String> {
    let (_, d) = acs.api_get(&format!("/api/v1/devices/{}", encode_segment(id)));
    d["recent_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_mixed_fleet_of_200_completes_bootstrap_and_periodic_sessions_without_error() {
    let acs = Acs::start(&[]);
    let url = format!("http://{}/", acs.cwmp);
    let out = cpe_sim(&[
        "fleet",
        "--acs",
        &url,
        "--model",
        "mixed",
        "--count",
        "200",
        "--concurrency",
        "40",
        "--inform-interval",
        "1",
        "--duration",
        "4",
        "--json",
        "--fail-on-error",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["errors"], json!({}), "{report}");
    assert!(
        report["sessions"].as_u64().unwrap() >= 400,
        "every device had its bootstrap and at least one periodic session: {report}"
    );
    let (_, list) = acs.api_get("/api/v1/devices?limit=1000");
    let devices = list["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 200);
    // Real CPEs (and cpe-sim) send no ModelName in their Inform; with
    // provisioning and the collector off the ACS never asks for it.
    assert!(devices.iter().all(|d| d["model_name"].is_null()));
    let classes: std::collections::BTreeSet<&str> = devices
        .iter()
        .map(|d| d["product_class"].as_str().unwrap())
        .collect();
    assert_eq!(classes, ["Device2", "HT803G-WS2"].into_iter().collect());
    let id = devices[0]["id"].as_str().unwrap().to_owned();
    let ev = events(&acs, &id);
    assert_eq!(&ev[..2], ["0 BOOTSTRAP", "1 BOOT"], "{ev:?}");
    assert!(ev[2..].iter().all(|e| e == "2 PERIODIC"), "{ev:?}");
}

#[test]
fn a_simulated_deco_answers_rpcs_like_a_real_one() {
    let acs = Acs::start(&[]);
    let url = format!("http://{}/", acs.cwmp);
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_str().unwrap();
    let run = |sessions: &str| {
        cpe_sim(&[
            "run",
            "--acs",
            &url,
            "--model",
            "deco",
            "--serial",
            "DECO42",
            "--state-dir",
            state_dir,
            "--sessions",
            sessions,
            "--boot-delay-ms",
            "50",
            "--retry-base-ms",
            "100",
        ])
    };
    ok(&run("1"));
    let id = "1C61B4-Device2-DECO42";
    assert_eq!(events(&acs, id), ["0 BOOTSTRAP", "1 BOOT"]);

    let gpv = acs.queue(id, json!({"GetParameterValues": {"names": ["Device.WiFi.SSID.1.SSID", "Device.WiFi.AccessPoint.1.Security.KeyPassphrase", "Device.DeviceInfo.SerialNumber"]}}));
    let bad_spv = acs.queue(id, json!({"SetParameterValues": {"parameters": [
        {"name": "Device.WiFi.AccessPoint.1.Security.KeyPassphrase", "value": "short", "type": "string"},
        {"name": "Device.DeviceInfo.SerialNumber", "value": "X", "type": "string"}
    ], "parameter_key": "bad"}}));
    let spv = acs.queue(id, json!({"SetParameterValues": {"parameters": [
        {"name": "Device.WiFi.SSID.1.SSID", "value": "Gigafibre-Tremblay", "type": "string"},
        {"name": "Device.WiFi.AccessPoint.1.Security.KeyPassphrase", "value": "k7Hq2mZp9xWe", "type": "string"}
    ], "parameter_key": "wifi-v1"}}));
    let gpn = acs.queue(
        id,
        json!({"GetParameterNames": {"parameter_path": "Device.WiFi.SSID.", "next_level": true}}),
    );
    let reboot = acs.queue(id, json!({"Reboot": {"command_key": "rb-1"}}));

    // Restart: BOOT (not BOOTSTRAP) thanks to the state dir; the tasks run,
    // the reboot makes a second session.
    let log = ok(&run("2"));
    assert!(log.contains("GetParameterValues"), "{log}");
    let task = |t: u64| acs.api_get(&format!("/api/v1/tasks/{t}")).1;

    let t = task(gpv);
    assert_eq!(t["status"], "done", "{t}");
    let values = &t["response"]["GetParameterValuesResponse"]["parameters"];
    assert_eq!(values[1]["value"], "", "passwords read back empty: {t}");
    assert_eq!(values[2]["value"], "DECO42");

    let t = task(bad_spv);
    assert_eq!(t["status"], "failed");
    assert_eq!(t["fault"]["code"], 9003);
    let msg = t["fault"]["message"].as_str().unwrap();
    assert!(
        msg.contains("KeyPassphrase 9007") && msg.contains("SerialNumber 9008"),
        "{msg}"
    );

    assert_eq!(task(spv)["status"], "done");
    let (_, d) = acs.api_get(&format!("/api/v1/devices/{id}"));
    assert_eq!(
        d["parameter_key"], "wifi-v1",
        "the ParameterKey is reported in the next Inform: {d}"
    );
    let (_, params) = acs.api_get(&format!(
        "/api/v1/devices/{id}/parameters?prefix=Device.WiFi.SSID.1.SSID"
    ));
    assert_eq!(params["parameters"][0]["value"], "Gigafibre-Tremblay");

    let t = task(gpn);
    let names: Vec<&str> = t["response"]["GetParameterNamesResponse"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Device.WiFi.SSID.1.") && names.contains(&"Device.WiFi.SSID.9."),
        "{names:?}"
    );

    assert_eq!(task(reboot)["status"], "done");
    let ev = events(&acs, id);
    assert_eq!(&ev[ev.len() - 2..], ["1 BOOT", "M Reboot"], "{ev:?}");
    assert_eq!(
        ev[2], "1 BOOT",
        "the restarted simulator booted, it did not bootstrap: {ev:?}"
    );
    assert!(
        !ev.contains(&"0 BOOTSTRAP".to_owned())
            || ev.iter().filter(|e| *e == "0 BOOTSTRAP").count() == 1
    );
}

#[test]
fn factory_reset_download_and_connection_requests() {
    let acs = Acs::start(&[]);
    let url = format!("http://{}/", acs.cwmp);
    ok(&cpe_sim(&[
        "run",
        "--acs",
        &url,
        "--model",
        "tplg-ont",
        "--serial",
        "ONT7",
        "--sessions",
        "1",
    ]));
    let id = "1C61B4-Device2-ONT7";
    // cpe-sim fetches the image for real and checks it: serve one.
    let image = firmware_image("2.0.0_build20261201", 1000);
    let (fw_url, fetches) = serve_file(image.clone());
    let dl = acs.queue(id, json!({"Download": {"file_type": "1 Firmware Upgrade Image", "url": fw_url, "file_size": image.len()}}));
    // Download accepted with status 1; the device fetches and installs it,
    // reboots and reports TransferComplete in its next session.
    ok(&cpe_sim(&[
        "run",
        "--acs",
        &url,
        "--model",
        "tplg-ont",
        "--serial",
        "ONT7",
        "--sessions",
        "2",
        "--boot-delay-ms",
        "50",
    ]));
    let t = acs.api_get(&format!("/api/v1/tasks/{dl}")).1;
    assert_eq!(t["status"], "done", "completed by TransferComplete: {t}");
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
    let ev = events(&acs, id);
    assert_eq!(
        &ev[ev.len() - 3..],
        ["1 BOOT", "7 TRANSFER COMPLETE", "M Download"],
        "{ev:?}"
    );
    let (_, d) = acs.api_get(&format!("/api/v1/devices/{id}"));
    assert_eq!(
        d["software_version"], "2.0.0_build20261201",
        "the device runs the image's version: {d}"
    );

    // A file server that does not exist: the download fails (9015) and the
    // task with it, without a reboot.
    let dl = acs.queue(id, json!({"Download": {"file_type": "1 Firmware Upgrade Image", "url": "http://127.0.0.1:1/xx230v.bin"}}));
    ok(&cpe_sim(&[
        "run",
        "--acs",
        &url,
        "--model",
        "tplg-ont",
        "--serial",
        "ONT7",
        "--sessions",
        "2",
        "--boot-delay-ms",
        "50",
    ]));
    let t = acs.api_get(&format!("/api/v1/tasks/{dl}")).1;
    assert_eq!(t["status"], "failed", "{t}");
    assert_eq!(t["fault"]["code"], 9015, "{t}");
    let ev = events(&acs, id);
    assert_eq!(
        &ev[ev.len() - 3..],
        ["1 BOOT", "7 TRANSFER COMPLETE", "M Download"],
        "the restart's BOOT, then the report without a reboot: {ev:?}"
    );

    let fr = acs.queue(id, json!({"FactoryReset": {}}));
    ok(&cpe_sim(&[
        "run",
        "--acs",
        &url,
        "--model",
        "tplg-ont",
        "--serial",
        "ONT7",
        "--sessions",
        "2",
        "--boot-delay-ms",
        "50",
    ]));
    assert_eq!(
        acs.api_get(&format!("/api/v1/tasks/{fr}")).1["status"],
        "done"
    );
    let ev = events(&acs, id);
    assert_eq!(
        &ev[ev.len() - 2..],
        ["0 BOOTSTRAP", "1 BOOT"],
        "factory reset bootstraps again: {ev:?}"
    );

    // Connection request: digest-authenticated GET on the device's URL.
    let mut child = Command::new(workspace_bin("cpe-sim"))
        .args([
            "run",
            "--acs",
            &url,
            "--model",
            "rcmg-ont",
            "--serial",
            "RCMGCR",
            "--gpon-sn",
            "RCMG0000CAFE",
            "--sessions",
            "2",
            "--periodic-interval",
            "0",
            "--cr-username",
            "cruser",
            "--cr-password",
            "crpass",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let cr_url = line.trim().rsplit(' ').next().unwrap().to_owned();
    let cr_addr: std::net::SocketAddr = cr_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    // Wait for the boot session, then check that bad credentials are refused.
    let rid = "000E5E-HT803G%2DWS2-RCMGCR";
    for _ in 0..100 {
        if acs
            .api_get(&format!("/api/v1/devices/{}", encode_segment(rid)))
            .0
            == 200
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let r = HttpConn::connect(cr_addr).request("GET", "/", &[], b"");
    assert_eq!(r.status, 401);
    let challenge = r.header("www-authenticate").unwrap().to_owned();
    let nonce = between(&challenge, "nonce=\"", "\"").unwrap();
    use md5::Digest as _;
    let md5 = |s: String| format!("{:x}", md5::Md5::digest(s.as_bytes()));
    let ha1 = md5("cruser:cpe-sim:crpass".into());
    let ha2 = md5("GET:/".into());
    let resp = md5(format!("{ha1}:{nonce}:00000001:abc:auth:{ha2}"));
    let auth = format!(
        "Digest username=\"cruser\", realm=\"cpe-sim\", nonce=\"{nonce}\", uri=\"/\", qop=auth, nc=00000001, cnonce=\"abc\", response=\"{resp}\""
    );
    let r = HttpConn::connect(cr_addr).request("GET", "/", &[("Authorization", &auth)], b"");
    assert_eq!(r.status, 200);
    let status = child.wait().unwrap();
    assert!(status.success());
    let ev = events(&acs, rid);
    assert_eq!(ev.last().unwrap(), "6 CONNECTION REQUEST", "{ev:?}");
}

#[test]
fn bad_model_files_and_flags_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "Parameter,Object,Writable,Value,Value type\nDevice.A,perhaps,false,\"1\",xsd:string\n",
    )
    .unwrap();
    let out = cpe_sim(&[
        "run",
        "--acs",
        "http://127.0.0.1:1/",
        "--model-file",
        bad.to_str().unwrap(),
        "--sessions",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2") && err.contains("Object"), "{err}");
    let out = cpe_sim(&["run", "--acs", "not a url", "--sessions", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an http:// or https:// URL"));
    let out = cpe_sim(&[
        "fleet",
        "--acs",
        "http://127.0.0.1:1/",
        "--model",
        "toaster",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown model `toaster`"));
    let out = cpe_sim(&["run", "--acs", "http://127.0.0.1:1/", "--cwmp", "2-0"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn quirky_cpes_get_sessions_too() {
    let acs = Acs::start(&[
        ("ACS_CPE_AUTH", "digest"),
        ("ACS_CPE_USERNAME", "cpe"),
        ("ACS_CPE_PASSWORD", "fleet-pw"),
    ]);
    let url = format!("http://{}/", acs.cwmp);
    for (i, quirks) in [
        vec!["--prefix", "soapenv", "--cwmp", "1-2", "--numeric-booleans"],
        vec![
            "--prefix",
            "soap-env",
            "--no-xml-declaration",
            "--wrong-array-counts",
            "--mac-case",
            "lower",
        ],
        vec!["--no-cookies", "--cwmp", "1-4"],
    ]
    .into_iter()
    .enumerate()
    {
        let prefix = format!("Q{i}X");
        let mut args = vec![
            "fleet",
            "--acs",
            &url,
            "--model",
            "mixed",
            "--count",
            "12",
            "--concurrency",
            "6",
            "--inform-interval",
            "1",
            "--duration",
            "2",
            "--json",
            "--fail-on-error",
            "--auth",
            "digest",
            "--username",
            "cpe",
            "--password",
            "fleet-pw",
            "--serial-prefix",
            &prefix,
        ];
        args.extend(quirks);
        let out = cpe_sim(&args);
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (_, list) = acs.api_get("/api/v1/devices?limit=100");
    assert_eq!(list["devices"].as_array().unwrap().len(), 36);
}

#[test]
fn fleet_state_survives_a_restart_and_answers_connection_requests() {
    let acs = Acs::start(&[]);
    let url = format!("http://{}/", acs.cwmp);
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap().to_owned();
    let fleet = |duration: &str| {
        Command::new(workspace_bin("cpe-sim"))
            .args([
                "fleet",
                "--acs",
                &url,
                "--model",
                "tplg-ont",
                "--count",
                "3",
                "--concurrency",
                "3",
                "--inform-interval",
                "30",
                "--duration",
                duration,
                "--json",
                "--state-dir",
                &dir,
                "--connection-requests",
                "--serial-prefix",
                "CR",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    ok_child(fleet("1"));
    let id = "1C61B4-Device2-CR0000001";
    assert_eq!(events(&acs, id), ["0 BOOTSTRAP", "1 BOOT"]);

    // Second run: the devices boot (state kept) and wait 30 s for their
    // periodic inform; a connection request brings one in at once.
    let child = fleet("4");
    let mut cr_url = String::new();
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let (_, d) = acs.api_get(&format!("/api/v1/devices/{id}"));
        if d["inform_count"] == 2 {
            cr_url = d["connection_request_url"].as_str().unwrap().to_owned();
            break;
        }
    }
    assert_eq!(events(&acs, id), ["0 BOOTSTRAP", "1 BOOT", "1 BOOT"]);
    let addr: std::net::SocketAddr = cr_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let r = HttpConn::connect(addr).request("GET", "/", &[], b"");
    let nonce = between(r.header("www-authenticate").unwrap(), "nonce=\"", "\"")
        .unwrap()
        .to_owned();
    use md5::Digest as _;
    let md5 = |s: String| format!("{:x}", md5::Md5::digest(s.as_bytes()));
    let ha1 = md5("CR0000001:cpe-sim:cr-CR0000001".into());
    let resp = md5(format!("{ha1}:{nonce}:{}", md5("GET:/".into())));
    let auth = format!(
        "Digest username=\"CR0000001\", realm=\"cpe-sim\", nonce=\"{nonce}\", uri=\"/\", response=\"{resp}\""
    );
    assert_eq!(
        HttpConn::connect(addr)
            .request("GET", "/", &[("Authorization", &auth)], b"")
            .status,
        200
    );
    let report = ok_child(child);
    assert_eq!(report["errors"], json!({}));
    assert_eq!(events(&acs, id).last().unwrap(), "6 CONNECTION REQUEST");
}

fn ok_child(child: std::process::Child) -> serde_json::Value {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_fleet_over_https_with_digest() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let acs = Acs::start(&[
        ("ACS_TLS_CERT", data.join("test-cert.pem").to_str().unwrap()),
        ("ACS_TLS_KEY", data.join("test-key.pem").to_str().unwrap()),
        ("ACS_CPE_AUTH", "digest"),
        ("ACS_CPE_USERNAME", "cpe"),
        ("ACS_CPE_PASSWORD", "tls-fleet-pw"),
    ]);
    let url = format!("https://localhost:{}/", acs.cwmp.port());
    let ca = data.join("test-ca.pem");
    let out = cpe_sim(&[
        "fleet",
        "--acs",
        &url,
        "--ca-file",
        ca.to_str().unwrap(),
        "--model",
        "mixed",
        "--count",
        "30",
        "--concurrency",
        "10",
        "--inform-interval",
        "1",
        "--duration",
        "2",
        "--json",
        "--fail-on-error",
        "--auth",
        "digest",
        "--username",
        "cpe",
        "--password",
        "tls-fleet-pw",
    ]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        acs.api_get("/api/v1/devices?limit=100").1["devices"]
            .as_array()
            .unwrap()
            .len(),
        30
    );
    // Without the CA, the handshake fails with a clear error.
    let out = cpe_sim(&[
        "fleet",
        "--acs",
        &url,
        "--model",
        "deco",
        "--count",
        "1",
        "--duration",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ca-file"));
}
