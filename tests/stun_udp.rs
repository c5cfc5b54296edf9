//! TR-111 end to end on loopback: the STUN server (`server::stun`, run in
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
use gigafibre_acs::server::stun::{
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

    let mut child = Command::new(workspace_bin("cpe-sim"))
        .args([
            "run",
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
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let sim = Sim(Some(child));
    // "cpe-sim: device <id> connection request URL http://…/"
    let id = line.split_whitespace().nth(2).unwrap().to_owned();

    // The device keeps a binding (USERNAME = its serial: STUNUsername is
    // empty in the model) and boots.
    assert!(
        wait_for(10, || bindings.get("STUN0001").is_some()),
        "no STUN binding"
    );
    let binding = bindings.get("STUN0001").unwrap();
    assert!(binding.addr.ip().is_loopback());
    assert!(wait_for(10, || informs(&acs, &id) == 1), "no boot session");

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
        wait_for(10, || informs(&acs, &id) == 2),
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
    assert!(wait_for(10, || informs(&acs, &id) == 3), "no session");
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
            "8",
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
        wait_for(10, || serials.iter().all(|s| bindings.get(s).is_some())),
        "not every device has a binding: {bindings:?}"
    );
    let id = "1C61B4-Device2-UDPF0000001";
    assert!(wait_for(10, || informs(&acs, id) == 1), "no boot session");
    let binding = bindings.get("UDPF0000001").unwrap();
    rt.block_on(send_udp_connection_request(
        &socket,
        binding.addr,
        "UDPF0000001",
        "cr-UDPF0000001",
        now_s(),
    ))
    .unwrap();
    assert!(wait_for(10, || informs(&acs, id) == 2), "no session");
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
