//! TR-111 end to end on loopback: the STUN server (`stun::server`, run in
//! this process), a real `cpe-sim` keeping a binding with it, and the real
//! ACS binary for the CWMP sessions. A signed UDP connection request sent
//! to the binding makes the device open a session with
//! `6 CONNECTION REQUEST`; a wrong signature or a replayed datagram does
//! not.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use gigafibre_acs::stun::server::{
    StunBindings, UDP_CR_COPIES, send_udp_connection_request, serve,
};
use gigafibre_acs::stun::udp_cr;

/// A cpe-sim process, killed if the test ends early.
struct Sim(Option<Child>);

impl Sim {
    /// Waits for the process to exit by itself.
    fn finish(mut self) -> std::process::Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts `cpe-sim run` with these arguments; returns it and the device
/// id from its first line ("cpe-sim: device <id> connection request URL …").
fn run_sim(args: &[&str]) -> (Sim, String) {
    let mut child = Command::new(workspace_bin("cpe-sim"))
        .arg("run")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let id = line.split_whitespace().nth(2).unwrap().to_owned();
    (Sim(Some(child)), id)
}

fn device(acs: &Acs, id: &str) -> serde_json::Value {
    acs.api_get(&format!("/api/v1/devices/{}", encode_segment(id)))
        .1
}

fn informs(acs: &Acs, id: &str) -> u64 {
    device(acs, id)["inform_count"].as_u64().unwrap_or(0)
}

fn last_event(acs: &Acs, id: &str) -> String {
    device(acs, id)["recent_events"]
        .as_array()
        .and_then(|a| a.last())
        .and_then(|e| e["code"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Polls `f` until it is true or `secs` pass.
fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn a_udp_connection_request_through_the_stun_binding_opens_a_session() {
    let acs = Acs::start(&[]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let socket = Arc::new(
        rt.block_on(tokio::net::UdpSocket::bind("127.0.0.1:0"))
            .unwrap(),
    );
    let stun_addr = socket.local_addr().unwrap();
    let bindings = Arc::new(StunBindings::new(1000));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = rt.spawn(serve(socket.clone(), bindings.clone(), stop_rx));

    let (sim, id) = run_sim(&[
        "--acs",
        &format!("http://{}/", acs.cwmp),
        "--model",
        "tplg-ont",
        "--serial",
        "STUN0001",
        "--periodic-interval",
        "0",
        "--cr-username",
        "STUN0001",
        "--cr-password",
        "udp-cr-secret",
        "--stun-server",
        &stun_addr.to_string(),
        "--stun-keepalive",
        "1",
    ]);

    // The device keeps a binding (USERNAME = its serial: STUNUsername is
    // empty in the model) and boots.
    assert!(
        wait_for(30, || bindings.get("STUN0001").is_some()),
        "no STUN binding"
    );
    let binding = bindings.get("STUN0001").unwrap();
    assert!(binding.addr.ip().is_loopback());
    assert!(wait_for(30, || informs(&acs, &id) == 1), "no boot session");

    // A signed UDP connection request: a session.
    rt.block_on(send_udp_connection_request(
        &socket,
        binding.addr,
        "STUN0001",
        "udp-cr-secret",
        now_s(),
    ))
    .unwrap();
    assert!(
        wait_for(30, || informs(&acs, &id) == 2),
        "the UDP connection request opened no session"
    );
    assert_eq!(last_event(&acs, &id), "6 CONNECTION REQUEST");

    // Signed with another password: nothing (and the other copies of the
    // first request opened no more sessions either).
    rt.block_on(send_udp_connection_request(
        &socket,
        binding.addr,
        "STUN0001",
        "not-the-password",
        now_s() + 1,
    ))
    .unwrap();
    assert!(
        !wait_for(2, || informs(&acs, &id) > 2),
        "a forged request, or a copy, was obeyed ({UDP_CR_COPIES} copies per request)"
    );

    // A valid datagram works once; the same datagram again does not.
    let datagram = udp_cr::build(
        &binding.addr.to_string(),
        now_s() + 2,
        "replay-1",
        "STUN0001",
        "cnonce",
        "udp-cr-secret",
    );
    let send = |d: &str| {
        rt.block_on(socket.send_to(d.as_bytes(), binding.addr))
            .unwrap();
    };
    send(&datagram);
    assert!(wait_for(30, || informs(&acs, &id) == 3), "no session");
    send(&datagram);
    assert!(
        !wait_for(2, || informs(&acs, &id) > 3),
        "a replay was obeyed"
    );
    assert_eq!(informs(&acs, &id), 3);

    // The binding is kept alive all along.
    assert!(bindings.get("STUN0001").unwrap().last_seen_ms > binding.last_seen_ms);
    assert_eq!(
        bindings
            .stats
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );

    drop(sim);
    stop_tx.send(true).unwrap();
    rt.block_on(server).unwrap();
}

#[test]
fn fleet_devices_keep_bindings_and_answer_udp_connection_requests() {
    let acs = Acs::start(&[]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let socket = Arc::new(
        rt.block_on(tokio::net::UdpSocket::bind("127.0.0.1:0"))
            .unwrap(),
    );
    let stun_addr = socket.local_addr().unwrap();
    let bindings = Arc::new(StunBindings::new(1000));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = rt.spawn(serve(socket.clone(), bindings.clone(), stop_rx));

    let child = Command::new(workspace_bin("cpe-sim"))
        .args([
            "fleet",
            "--acs",
            &format!("http://{}/", acs.cwmp),
            "--model",
            "tplg-ont",
            "--count",
            "3",
            "--inform-interval",
            "60",
            "--duration",
            "15",
            "--serial-prefix",
            "UDPF",
            "--connection-requests",
            "--json",
            "--stun-server",
            &stun_addr.to_string(),
            "--stun-keepalive",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sim = Sim(Some(child));
    let serials = ["UDPF0000000", "UDPF0000001", "UDPF0000002"];
    assert!(
        wait_for(12, || serials.iter().all(|s| bindings.get(s).is_some())),
        "not every device has a binding: {bindings:?}"
    );
    let id = "1C61B4-Device2-UDPF0000001";
    assert!(wait_for(12, || informs(&acs, id) == 1), "no boot session");
    let binding = bindings.get("UDPF0000001").unwrap();
    rt.block_on(send_udp_connection_request(
        &socket,
        binding.addr,
        "UDPF0000001",
        "cr-UDPF0000001",
        now_s(),
    ))
    .unwrap();
    assert!(wait_for(12, || informs(&acs, id) == 2), "no session");
    assert_eq!(last_event(&acs, id), "6 CONNECTION REQUEST");
    // The others were not woken (their informs are spread over the run).
    assert!(informs(&acs, "1C61B4-Device2-UDPF0000002") <= 1);

    let out = sim.finish();
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["errors"], serde_json::json!({}));
    stop_tx.send(true).unwrap();
    rt.block_on(server).unwrap();
}

/// The ACS's own STUN server (ACS_STUN_LISTEN) and its UDP sender, through
/// the API: a device whose ConnectionRequestURL cannot be reached (as from
/// behind a NAT) is woken by `POST …/connection-request` over TR-111.
#[test]
fn the_acs_wakes_a_device_behind_nat_through_its_own_stun_server() {
    let acs = Acs::start(&[
        ("ACS_STUN_LISTEN", "127.0.0.1:0"),
        ("ACS_CR_USERNAME", "STUN0003"),
        ("ACS_CR_PASSWORD", "behind-nat-secret"),
    ]);
    let logs = acs.logs();
    let marker = "STUN server ready at udp://";
    let rest = &logs[logs.find(marker).expect("STUN server announced") + marker.len()..];
    let stun_addr = &rest[..rest.find('/').unwrap()];

    let (_sim, id) = run_sim(&[
        "--acs",
        &format!("http://{}/", acs.cwmp),
        "--model",
        "tplg-ont",
        "--serial",
        "STUN0003",
        "--periodic-interval",
        "0",
        "--cr-username",
        "STUN0003",
        "--cr-password",
        "behind-nat-secret",
        // Nothing listens on port 1: HTTP cannot get through.
        "--cr-url",
        "http://127.0.0.1:1/",
        "--stun-server",
        stun_addr,
        "--stun-keepalive",
        "1",
    ]);
    assert!(wait_for(30, || informs(&acs, &id) == 1), "no boot session");
    // The binding is in the ACS's table once a keep-alive arrived.
    assert!(
        wait_for(30, || {
            let m = HttpConn::connect(acs.api).request("GET", "/metrics", &[], b"");
            String::from_utf8_lossy(&m.body)
                .lines()
                .any(|l| l == "acs_stun_bindings 1")
        }),
        "the ACS's STUN server recorded no binding"
    );

    let path = format!("/api/v1/devices/{}/connection-request", encode_segment(&id));
    let (status, body) = acs.api_post(&path, &serde_json::json!({}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["transport"], "udp", "{body}");
    assert_eq!(body["ok"], true, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("UDP connection request sent"),
        "{body}"
    );
    assert!(
        wait_for(30, || informs(&acs, &id) == 2),
        "the UDP connection request opened no session"
    );
    assert_eq!(last_event(&acs, &id), "6 CONNECTION REQUEST");
    assert!(!acs.logs().contains("behind-nat-secret"));
}
