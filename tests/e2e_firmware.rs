//! A firmware campaign end to end: a 500-device cpe-sim fleet of two
//! models; a campaign for one of them in three waves; wave 2 holds devices
//! of another hardware revision the image does not fit (they fail with
//! 9018, are retried once, fail again); the campaign halts with the
//! reason; the other model is untouched; resumed with a fixed image, it
//! finishes with every targeted device on the new version — across a
//! `kill -9` of the ACS in the last wave, after which nobody is sent the
//! image twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};

use common::*;
use serde_json::{Value, json};

/// A cpe-sim fleet, stopped when dropped.
struct Fleet(Child);

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn fleet(url: &str, model: &str, prefix: &str, count: u32, extra: &[&str]) -> Fleet {
    let count = count.to_string();
    let mut args = vec![
        "fleet",
        "--acs",
        url,
        "--model",
        model,
        "--count",
        &count,
        "--serial-prefix",
        prefix,
        "--inform-interval",
        "3",
        "--duration",
        "600",
        "--concurrency",
        "100",
    ];
    args.extend_from_slice(extra);
    Fleet(
        Command::new(workspace_bin("cpe-sim"))
            .args(&args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    )
}

impl Fleet {
    /// Panics if the fleet process has exited (a bad argument, a crash).
    fn alive(&mut self) {
        if let Ok(Some(status)) = self.0.try_wait() {
            panic!("the cpe-sim fleet exited: {status}");
        }
    }
}

fn upload(acs: &Acs, name: &str, header: &str) -> String {
    let mut body = format!("{header}\n").into_bytes();
    body.resize(200_000, b'.');
    let r = HttpConn::connect(acs.api).request(
        "POST",
        &format!("/api/v1/files?name={name}&version=5.01.00"),
        &[
            ("Authorization", &format!("Bearer {TOKEN}")),
            ("Content-Type", "application/octet-stream"),
        ],
        &body,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    v["id"].as_str().unwrap().to_owned()
}

fn campaign(acs: &Acs, id: &str) -> Value {
    acs.api_get(&format!("/api/v1/campaigns/{id}")).1
}

/// Every device of a product class, by id.
fn devices(acs: &Acs, class: &str) -> Vec<Value> {
    let (_, list) = acs.api_get("/api/v1/devices?limit=1000");
    list["devices"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|d| d["product_class"] == class)
        .collect()
}

/// The Downloads queued for a device.
fn downloads(acs: &Acs, id: &str) -> usize {
    let (_, t) = acs.api_get(&format!("/api/v1/devices/{}/tasks", encode_segment(id)));
    t["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["rpc"] == "Download")
        .count()
}

const ONT: &str = "HT803G-WS2";
const DECO: &str = "Device2";

#[test]
fn a_campaign_halts_on_a_bad_wave_resumes_with_a_fixed_image_and_survives_a_kill() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let env = [("ACS_CWMP_LISTEN", listen.as_str())];
    let mut acs = Acs::start(&env);
    let url = format!("http://{listen}/");
    // 250 Raisecom ONTs, every 50th of hardware revision B; 250 Decos.
    let mut ont = fleet(
        &url,
        "rcmg-ont",
        "FWA",
        250,
        &["--hardware-variant-every", "50"],
    );
    let mut deco = fleet(&url, "deco", "FWB", 250, &[]);
    wait_until("500 devices", 60, || {
        ont.alive();
        deco.alive();
        (devices(&acs, ONT).len() == 250 && devices(&acs, DECO).len() == 250).then_some(())
    });
    let deco_versions: Vec<Value> = devices(&acs, DECO)
        .iter()
        .map(|d| d["software_version"].clone())
        .collect();

    let bad = upload(
        &acs,
        "ht803g-5.01.00.bin",
        "CPESIM-FIRMWARE version=5.01.00 hardware=N.00",
    );
    let (status, c) = acs.api_post(
        "/api/v1/campaigns",
        &json!({"name": "HT803G 5.01.00", "file": bad, "target": {"model_names": ["HT803G-WS2"]},
                "waves": [10, 40, 100], "max_concurrent": 100,
                "stop": {"max_failure_percent": 1, "back_online_minutes": 5}}),
    );
    assert_eq!(status, 201, "{c}");
    let cid = c["id"].as_str().unwrap().to_owned();
    assert_eq!(
        c["waves"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["counts"]["devices"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [25, 75, 150]
    );

    // Wave 1 (devices 0-24) goes through; wave 2 holds devices 49 and 99,
    // of revision B: each fails twice (9018), 2 of 75 > 1 %: halted.
    let c = wait_until("the campaign halted in wave 2", 120, || {
        let c = campaign(&acs, &cid);
        (c["state"] == "halted").then_some(c)
    });
    let reason = c["halt_reason"].as_str().unwrap();
    assert!(
        reason.starts_with("wave 2:") && reason.contains("max_failure_percent 1"),
        "{reason}"
    );
    assert_eq!(c["waves"][0]["counts"]["succeeded"], 25, "{c}");
    let failed: Vec<&Value> = c["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status"] == "failed")
        .collect();
    assert!(!failed.is_empty(), "{c}");
    for d in &failed {
        assert!(d["detail"].as_str().unwrap().contains("9018"), "{d}");
        assert_eq!(d["attempts"], 2, "retried once: {d}");
        let (_, dev) = acs.api_get(&format!(
            "/api/v1/devices/{}",
            encode_segment(d["device_id"].as_str().unwrap())
        ));
        assert!(
            dev["hardware_version"].as_str().unwrap().ends_with("-B"),
            "only revision B fails: {dev}"
        );
    }
    assert_eq!(
        c["waves"][2]["counts"]["pending"], 150,
        "wave 3 never started: {c}"
    );

    // The other model is untouched.
    let now: Vec<Value> = devices(&acs, DECO)
        .iter()
        .map(|d| d["software_version"].clone())
        .collect();
    assert_eq!(now, deco_versions);

    // A fixed image that fits both revisions; resumed with it.
    let fixed = upload(
        &acs,
        "ht803g-5.01.00-b.bin",
        "CPESIM-FIRMWARE version=5.01.00 hardware=N.00,N.00-B",
    );
    let (status, c) = acs.api_post(
        &format!("/api/v1/campaigns/{cid}/resume"),
        &json!({"file": fixed}),
    );
    assert_eq!(status, 200, "{c}");

    // In wave 3, kill -9; restart on the same data dir and port.
    wait_until("wave 3 under way", 120, || {
        let c = campaign(&acs, &cid);
        (c["wave"] == 3 && c["waves"][2]["counts"]["succeeded"].as_u64()? >= 10).then_some(())
    });
    let dir = acs.take_tempdir();
    acs.kill9();
    let acs = Acs::start_in(dir.path(), &env);
    let c = wait_until("the campaign done after the restart", 180, || {
        let c = campaign(&acs, &cid);
        (c["state"] == "done").then_some(c)
    });
    let total: u64 = c["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["counts"]["succeeded"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 250, "{c}");

    // Every targeted device runs the new version; each was sent the image
    // once (the two of revision B in wave 2: twice the bad one, once the
    // fixed one); no Deco was sent anything.
    let onts = devices(&acs, ONT);
    assert_eq!(onts.len(), 250);
    for d in &onts {
        assert_eq!(d["software_version"], "5.01.00", "{d}");
        let id = d["id"].as_str().unwrap();
        let want = if failed.iter().any(|f| f["device_id"] == id) {
            3
        } else {
            1
        };
        assert_eq!(downloads(&acs, id), want, "{id}");
    }
    for d in devices(&acs, DECO).iter().take(25) {
        assert_eq!(downloads(&acs, d["id"].as_str().unwrap()), 0);
    }
    let now: Vec<Value> = devices(&acs, DECO)
        .iter()
        .map(|d| d["software_version"].clone())
        .collect();
    assert_eq!(now, deco_versions);
}
