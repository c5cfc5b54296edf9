//! Hardening against crashes, ERPNext faults and races, end to end: the ACS,
//! erpnext-sim and cpe-sim as real processes on loopback.
//!
//! - `kill -9` of the ACS in the middle of a provisioning fleet run, with
//!   tasks queued through the API: restart on the same data dir, nothing
//!   acknowledged is lost and no device is pushed its configuration twice.
//! - ERPNext down (connections closed), answering 500, answering 429 with
//!   Retry-After, or 5 s slow: provisioned devices keep their sessions (and
//!   do not wait for ERPNext), devices bootstrapping meanwhile are
//!   provisioned after recovery, nothing is pushed twice.
//! - One device, two triggers: connection requests racing periodic informs
//!   push an ERPNext change once; a reprovision asked while the device's
//!   session is open is not lost.
//!
//! Covered elsewhere, not repeated: a second concurrent session refused
//! with 503 + Retry-After (`cwmp_server.rs`,
//! `a_second_concurrent_session_is_refused_and_the_first_is_undisturbed`),
//! an acknowledged Inform and task surviving `kill -9` of an idle ACS
//! (`acknowledged_informs_and_tasks_survive_kill_9`), a bootstrap wave during
//! a short 503 outage (`e2e_provisioning.rs`,
//! `a_bootstrap_wave_during_an_erpnext_outage_is_provisioned_after_recovery`),
//! a reprovision of an idle device (`ops_api.rs`,
//! `reprovision_after_a_password_change_in_erpnext_reaches_the_device_in_one_call`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use gigafibre_acs::cwmp::rpc::{
    DeviceIdStruct, EventStruct, GetParameterNamesResponse, GetParameterValuesResponse, Inform,
    ParameterInfo, SetParameterValues, SetParameterValuesResponse,
};
use gigafibre_acs::cwmp::{
    Body, CwmpVersion, Envelope, Fault, ParameterValue, ValueType, is_secret_parameter,
};
use serde_json::{Value, json};

const SSID_24: &str = "Device.WiFi.SSID.1.SSID";
const SSID_5: &str = "Device.WiFi.SSID.3.SSID";
const PASS_24: &str = "Device.WiFi.AccessPoint.1.Security.KeyPassphrase";

// ---------------------------------------------------------------------------
// ERPNext fixtures
// ---------------------------------------------------------------------------

/// A fixture with one customer and service location per Service Equipment.
fn erp_fixture(equipment: Vec<Value>) -> Value {
    let mut customers = Vec::new();
    let mut locations = Vec::new();
    let mut docs = Vec::new();
    for mut doc in equipment {
        let name = doc["name"].as_str().unwrap().to_owned();
        let customer = format!("Client {name}");
        let location = format!("LOC-{name}");
        customers.push(
            json!({"name": customer, "customer_name": customer, "customer_type": "Individual"}),
        );
        locations.push(json!({"name": location, "customer": customer, "address_line": "1 rue Principale",
            "city": "Salaberry-de-Valleyfield", "province": "QC", "postal_code": "J6S 1A1", "status": "Active"}));
        doc["customer"] = json!(customer);
        doc["service_location"] = json!(location);
        doc["status"] = json!("En inventaire");
        docs.push(doc);
    }
    json!({"Customer": customers, "Service Location": locations, "Service Equipment": docs})
}

fn deco_doc(name: &str, mac: &str, ssid: &str, passphrase: &str) -> Value {
    json!({"name": name, "equipment_type": "Routeur", "brand": "TP-Link", "model": "Deco X20",
           "mac_address": mac, "custom_wifi_ssid": ssid, "custom_wifi_password": passphrase, "custom_wifi_enabled": 1})
}

fn tplg_doc(name: &str, gpon_serial: &str, sip_user: &str) -> Value {
    json!({"name": name, "equipment_type": "ONT", "brand": "TP-Link", "model": "XX230v",
           "custom_gpon_serial": gpon_serial, "custom_sip_username": sip_user,
           "custom_sip_password": "SipS3cret-4501", "custom_sip_line": 1})
}

/// The fixture `cpe-sim fixture` makes for a fleet.
fn fleet_fixture(model: &str, count: usize, prefix: &str) -> Value {
    let out = Command::new(workspace_bin("cpe-sim"))
        .args(["fixture", "--model", model, "--count", &count.to_string()])
        .args(["--serial-prefix", prefix])
        .output()
        .unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn merge(mut a: Value, b: Value) -> Value {
    for doctype in ["Customer", "Service Location", "Service Equipment"] {
        let extra = b[doctype].as_array().unwrap().clone();
        a[doctype].as_array_mut().unwrap().extend(extra);
    }
    a
}

/// Waits for the write-back worker to mark a record active.
fn wait_actif(erp: &ErpSim, name: &str, deadline: Instant) {
    loop {
        let doc = erp.equipment(name);
        if doc["status"] == "Actif" && doc["custom_cwmp_serial"].as_str().is_some() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never became Actif: {doc}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------
// ACS helpers
// ---------------------------------------------------------------------------

/// An ACS provisioning from `erp`, with the data dir `dir` (restartable).
fn start_acs(erp: &ErpSim, dir: &Path, extra: &[(&str, &str)]) -> Acs {
    let env = erp.acs_env();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(&[
        ("ACS_PROVISIONING", "on"),
        // Every check reaches ERPNext: no cached answer hides a fault.
        ("ACS_ERPNEXT_CACHE_TTL_S", "0"),
        ("ACS_ERPNEXT_BREAKER_COOLDOWN_S", "1"),
        ("RUST_LOG", "info"),
    ]);
    all.extend_from_slice(extra);
    Acs::start_in(dir, &all)
}

fn devices(acs: &Acs) -> Vec<Value> {
    let (status, body) = acs.api_get("/api/v1/devices?limit=1000");
    assert_eq!(status, 200, "{body}");
    body["devices"].as_array().unwrap().clone()
}

fn device(acs: &Acs, id: &str) -> Value {
    let (status, body) = acs.api_get(&format!("/api/v1/devices/{}", encode_segment(id)));
    assert_eq!(status, 200, "{id}: {body}");
    body
}

/// The device's provisioning status ("" while it is unknown).
fn provisioning_status(acs: &Acs, id: &str) -> String {
    let (_, body) = acs.api_get(&format!("/api/v1/devices/{}", encode_segment(id)));
    body["provisioning"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn task(acs: &Acs, task_id: u64) -> Value {
    let (status, body) = acs.api_get(&format!("/api/v1/tasks/{task_id}"));
    assert_eq!(status, 200, "task {task_id}: {body}");
    body
}

/// A child process killed when the test ends, pass or fail.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_fleet(acs_url: &str, model: &str, count: usize, prefix: &str, extra: &[&str]) -> Reaped {
    let child = Command::new(workspace_bin("cpe-sim"))
        .args(["fleet", "--acs", acs_url, "--model", model])
        .args(["--count", &count.to_string(), "--serial-prefix", prefix])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Reaped(child)
}

// ---------------------------------------------------------------------------
// One cpe-sim device, its sessions as they end
// ---------------------------------------------------------------------------

/// A `cpe-sim run` device informing every second; its "session done" /
/// "session failed" log lines are collected as they come.
struct SimRun {
    _child: Reaped,
    state: tempfile::TempDir,
    serial: String,
    sessions: Arc<Mutex<Vec<String>>>,
}

impl SimRun {
    fn start(acs: &Acs, model: &str, serial: &str, extra: &[&str]) -> SimRun {
        let state = tempfile::tempdir().unwrap();
        let mut child = Command::new(workspace_bin("cpe-sim"))
            .args(["run", "--acs", &format!("http://{}/", acs.cwmp)])
            .args(["--model", model, "--serial", serial, "--state-dir"])
            .arg(state.path())
            .args(["--periodic-interval", "1", "--boot-delay-ms", "0"])
            .args(["--retry-base-ms", "200"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let lines = sessions.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("session done") || line.contains("session failed") {
                    lines.lock().unwrap().push(line);
                }
            }
        });
        SimRun {
            _child: Reaped(child),
            state,
            serial: serial.to_owned(),
            sessions,
        }
    }

    fn id(&self) -> String {
        device_id(&self.serial)
    }

    /// The session log lines so far.
    fn sessions(&self) -> Vec<String> {
        self.sessions.lock().unwrap().clone()
    }

    /// The device's own copy of a parameter (its state file).
    fn value(&self, path: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.state.path().join(format!("{}.json", self.serial)))
            .ok()?;
        let state: Value = serde_json::from_str(&text).ok()?;
        state["model"]["params"][path]["value"]
            .as_str()
            .map(str::to_owned)
    }
}

/// SetParameterValues the device answered in these sessions.
fn pushes_in(sessions: &[String]) -> usize {
    sessions
        .iter()
        .filter(|l| l.contains("session done"))
        .map(|l| l.matches("\"SetParameterValues\"").count())
        .sum()
}

fn failures_in(sessions: &[String]) -> Vec<&String> {
    sessions
        .iter()
        .filter(|l| l.contains("session failed"))
        .collect()
}

// ---------------------------------------------------------------------------
// A Deco whose every exchange the test drives
// ---------------------------------------------------------------------------

/// A TP-Link Deco answering GetParameterValues and SetParameterValues as the
/// real one does (passphrases read back empty), one exchange at a time, so a
/// test can hold its session open at a precise point. Keeps every
/// SetParameterValues it accepted. Its connection-request URL leads nowhere
/// (a device behind NAT).
struct Deco {
    acs: SocketAddr,
    serial: String,
    params: BTreeMap<String, ParameterValue>,
    cpe: Option<Cpe>,
    pushes: Vec<SetParameterValues>,
    informs: u32,
}

/// TR-181's forced inform parameters (no ModelName: the ACS asks for it).
const INFORM_PARAMS: &[&str] = &[
    "Device.DeviceInfo.HardwareVersion",
    "Device.DeviceInfo.SoftwareVersion",
    "Device.ManagementServer.ConnectionRequestURL",
    "Device.ManagementServer.ParameterKey",
];

impl Deco {
    fn new(acs: SocketAddr, serial: &str, mac: &str) -> Deco {
        use ValueType::{Boolean, String as Text, UnsignedInt};
        let mut params = BTreeMap::new();
        for (name, value, kind) in [
            ("Device.DeviceInfo.Manufacturer", "TP-Link", Text),
            ("Device.DeviceInfo.ModelName", "Deco X20", Text),
            ("Device.DeviceInfo.SerialNumber", serial, Text),
            ("Device.DeviceInfo.HardwareVersion", "X20 1.0", Text),
            (
                "Device.DeviceInfo.SoftwareVersion",
                "1.1.0 Build 20230315",
                Text,
            ),
            (
                "Device.ManagementServer.ConnectionRequestURL",
                "http://127.0.0.1:9/",
                Text,
            ),
            (
                "Device.ManagementServer.ConnectionRequestUsername",
                "",
                Text,
            ),
            (
                "Device.ManagementServer.ConnectionRequestPassword",
                "",
                Text,
            ),
            ("Device.ManagementServer.ParameterKey", "", Text),
            (
                "Device.ManagementServer.PeriodicInformEnable",
                "true",
                Boolean,
            ),
            (
                "Device.ManagementServer.PeriodicInformInterval",
                "3600",
                UnsignedInt,
            ),
            ("Device.Ethernet.Interface.1.MACAddress", mac, Text),
            ("Device.WiFi.MultiAP.APDevice.1.MACAddress", mac, Text),
            (SSID_24, "Deco_9E1E", Text),
            ("Device.WiFi.SSID.1.Enable", "true", Boolean),
            (SSID_5, "Deco_9E1E_5G", Text),
            ("Device.WiFi.SSID.3.Enable", "true", Boolean),
            (PASS_24, "factory-pass", Text),
            (
                "Device.WiFi.AccessPoint.3.Security.KeyPassphrase",
                "factory-pass",
                Text,
            ),
        ] {
            params.insert(name.to_owned(), ParameterValue::new(name, value, kind));
        }
        Deco {
            acs,
            serial: serial.to_owned(),
            params,
            cpe: None,
            pushes: Vec::new(),
            informs: 0,
        }
    }

    fn id(&self) -> String {
        device_id(&self.serial)
    }

    fn value(&self, name: &str) -> &str {
        &self.params[name].value
    }

    /// Opens a session: a new connection and an Inform with these events.
    fn inform(&mut self, events: &[&str]) {
        self.informs += 1;
        let inform = Inform {
            device_id: DeviceIdStruct {
                manufacturer: "TP-Link".into(),
                oui: "1C61B4".into(),
                product_class: "Device2".into(),
                serial_number: self.serial.clone(),
            },
            events: events.iter().map(|e| EventStruct::new(*e, "")).collect(),
            max_envelopes: 1,
            current_time: "2026-11-29T12:00:00Z".into(),
            retry_count: 0,
            parameters: INFORM_PARAMS
                .iter()
                .map(|n| self.params[*n].clone())
                .collect(),
        };
        let envelope = Envelope::new(
            CwmpVersion::V1_0,
            Some(format!("inform-{}", self.informs)),
            inform,
        );
        let mut cpe = Cpe::new(self.acs);
        let r = cpe.post_str(&envelope.encode());
        assert_eq!(
            r.status,
            200,
            "{}: Inform answered {}",
            self.serial,
            r.text()
        );
        self.cpe = Some(cpe);
    }

    /// Sends `answer` (an empty POST when `None`); the ACS's next request,
    /// or `None` once it ended the session with 204.
    fn exchange(&mut self, answer: Option<Envelope>) -> Option<Envelope> {
        let cpe = self.cpe.as_mut().expect("a session is open");
        let r = match answer {
            Some(a) => cpe.post_str(&a.encode()),
            None => cpe.empty(),
        };
        match r.status {
            204 => {
                self.cpe = None;
                None
            }
            200 => Some(Envelope::decode(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))),
            s => panic!("{}: the ACS answered {s}: {}", self.serial, r.text()),
        }
    }

    /// What the device answers to an ACS request.
    fn answer(&mut self, req: &Envelope) -> Envelope {
        let fault = |code: u32, string: &str| -> Body {
            Body::Fault(Fault {
                soap_code: "Client".into(),
                soap_string: "CWMP fault".into(),
                code,
                string: string.into(),
                set_parameter_values_faults: Vec::new(),
            })
        };
        let body: Body = match &req.body {
            Body::GetParameterValues(g) => {
                let mut out = Vec::new();
                let mut unknown = false;
                for n in &g.names {
                    let found: Vec<ParameterValue> = self
                        .params
                        .values()
                        .filter(|p| {
                            p.name == *n || (n.ends_with('.') && p.name.starts_with(n.as_str()))
                        })
                        .cloned()
                        .collect();
                    unknown |= found.is_empty();
                    out.extend(found.into_iter().map(|mut p| {
                        if is_secret_parameter(&p.name) {
                            p.value.clear();
                        }
                        p
                    }));
                }
                if unknown {
                    fault(9005, "Invalid parameter name")
                } else {
                    GetParameterValuesResponse { parameters: out }.into()
                }
            }
            Body::SetParameterValues(s) => {
                if s.parameters
                    .iter()
                    .any(|p| !self.params.contains_key(&p.name))
                {
                    fault(9003, "Invalid arguments")
                } else {
                    for p in &s.parameters {
                        self.params.insert(p.name.clone(), p.clone());
                    }
                    let key = "Device.ManagementServer.ParameterKey";
                    self.params.insert(
                        key.into(),
                        ParameterValue::new(key, s.parameter_key.clone(), ValueType::String),
                    );
                    self.pushes.push(s.clone());
                    SetParameterValuesResponse { status: 0 }.into()
                }
            }
            Body::GetParameterNames(g) => {
                // Every name and the objects above them; identifiers and the
                // ParameterKey are read-only, as on the real unit.
                let mut names: BTreeMap<String, bool> = BTreeMap::new();
                for n in self.params.keys() {
                    let read_only = n.starts_with("Device.DeviceInfo.")
                        || n.ends_with("MACAddress")
                        || n.ends_with("ParameterKey")
                        || n.ends_with("ConnectionRequestURL");
                    names.insert(n.clone(), !read_only);
                    let mut at = 0;
                    while let Some(i) = n[at..].find('.') {
                        at += i + 1;
                        names.entry(n[..at].to_owned()).or_insert(false);
                    }
                }
                let path = g.parameter_path.as_str();
                if !path.is_empty() && !names.contains_key(path) {
                    fault(9005, "Invalid parameter name")
                } else {
                    GetParameterNamesResponse {
                        parameters: names
                            .into_iter()
                            .filter(|(n, _)| n.starts_with(path))
                            .map(|(name, writable)| ParameterInfo { name, writable })
                            .collect(),
                    }
                    .into()
                }
            }
            other => panic!("{}: unexpected {}", self.serial, other.name()),
        };
        Envelope::new(req.version, req.header.id.clone(), body)
    }

    /// A whole session; the names of the ACS's requests.
    fn session(&mut self, events: &[&str]) -> Vec<String> {
        self.inform(events);
        let mut methods = Vec::new();
        let mut next = self.exchange(None);
        while let Some(req) = next {
            methods.push(req.body.name().to_owned());
            let answer = self.answer(&req);
            next = self.exchange(Some(answer));
        }
        methods
    }
}

/// What each push set (names only: values may be secrets).
fn pushed_names(pushes: &[SetParameterValues]) -> Vec<Vec<&str>> {
    pushes
        .iter()
        .map(|s| s.parameters.iter().map(|p| p.name.as_str()).collect())
        .collect()
}

// ---------------------------------------------------------------------------
// A CWMP relay that sees what devices are sent
// ---------------------------------------------------------------------------

/// A CWMP relay between simulated CPEs and the ACS. It keeps one address for
/// the fleet across ACS restarts (a new ACS process binds a new port) and
/// counts, per serial number, the SetParameterValues actually delivered to
/// the device (written out to its connection). It holds each device's
/// SetParameterValuesResponse for a while (a slow uplink), which widens the
/// window in which a device has applied a push the ACS has not recorded
/// yet. An ACS that dies closes its side, and the relay then closes the
/// device's, as a dead server would.
struct Relay {
    addr: SocketAddr,
    shared: Arc<RelayState>,
}

#[derive(Default)]
struct RelayState {
    upstream: Mutex<Option<SocketAddr>>,
    hold: Duration,
    pushes: Mutex<BTreeMap<String, u32>>,
    serials: Mutex<BTreeSet<String>>,
    /// Devices whose answer to a push is being held right now.
    holding: Mutex<BTreeSet<String>>,
}

impl Relay {
    fn start(upstream: SocketAddr, hold: Duration) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(RelayState {
            upstream: Mutex::new(Some(upstream)),
            hold,
            ..RelayState::default()
        });
        let state = shared.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let state = state.clone();
                thread::spawn(move || relay_connection(conn, &state));
            }
        });
        Relay { addr, shared }
    }

    fn point_to(&self, upstream: SocketAddr) {
        *self.shared.upstream.lock().unwrap() = Some(upstream);
    }

    fn pushes(&self) -> BTreeMap<String, u32> {
        self.shared.pushes.lock().unwrap().clone()
    }

    fn serials(&self) -> BTreeSet<String> {
        self.shared.serials.lock().unwrap().clone()
    }

    fn holding(&self) -> BTreeSet<String> {
        self.shared.holding.lock().unwrap().clone()
    }
}

/// One HTTP/1.1 message (head as received, body by Content-Length).
fn read_message(r: &mut impl BufRead) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut head = Vec::new();
    let mut len = 0usize;
    let mut first = true;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.extend_from_slice(line.as_bytes());
        let t = line.trim_end();
        if first {
            first = false;
            continue;
        }
        if t.is_empty() {
            break;
        }
        if let Some((k, v)) = t.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok()?;
            }
            assert!(
                !k.eq_ignore_ascii_case("transfer-encoding"),
                "the test relay handles Content-Length bodies only"
            );
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((head, body))
}

fn relay_connection(client: TcpStream, state: &RelayState) {
    let mut from_client = BufReader::new(client.try_clone().unwrap());
    let mut to_client = client;
    let mut server: Option<(TcpStream, BufReader<TcpStream>)> = None;
    let mut serial = String::new();
    while let Some((head, body)) = read_message(&mut from_client) {
        let text = String::from_utf8_lossy(&body);
        if text.contains("Inform>") {
            if let Some(s) = between(&text, "<SerialNumber>", "</SerialNumber>") {
                serial = s.to_owned();
                state.serials.lock().unwrap().insert(serial.clone());
            }
        }
        if text.contains("SetParameterValuesResponse") && !state.hold.is_zero() {
            state.holding.lock().unwrap().insert(serial.clone());
            thread::sleep(state.hold);
            state.holding.lock().unwrap().remove(&serial);
        }
        if server.is_none() {
            let Some(addr) = *state.upstream.lock().unwrap() else {
                return;
            };
            let Ok(s) = TcpStream::connect(addr) else {
                return;
            };
            s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            server = Some((s.try_clone().unwrap(), BufReader::new(s)));
        }
        let (to_server, from_server) = server.as_mut().unwrap();
        if to_server
            .write_all(&head)
            .and_then(|()| to_server.write_all(&body))
            .is_err()
        {
            return;
        }
        let Some((rhead, rbody)) = read_message(from_server) else {
            return;
        };
        let push = matches!(
            Envelope::decode(&rbody).map(|e| e.body),
            Ok(Body::SetParameterValues(_))
        );
        if to_client
            .write_all(&rhead)
            .and_then(|()| to_client.write_all(&rbody))
            .is_err()
        {
            return;
        }
        if push {
            *state
                .pushes
                .lock()
                .unwrap()
                .entry(serial.clone())
                .or_default() += 1;
        }
    }
}

// ---------------------------------------------------------------------------
// Crash
// ---------------------------------------------------------------------------

#[test]
fn kill_9_during_a_provisioning_fleet_run_loses_nothing_and_pushes_nothing_twice() {
    const COUNT: usize = 50;
    let erp = ErpSim::start(&fleet_fixture("mixed", COUNT, "KILL"));
    // Slow ERPNext answers keep provisioning runs in flight when the ACS dies.
    assert_eq!(
        erp.admin(
            "/_admin/faults",
            &json!({"latency_ms": 150, "latency_jitter_ms": 100})
        ),
        200
    );
    let data = tempfile::tempdir().unwrap();
    let env = [("ACS_CR_MIN_INTERVAL_S", "0")];
    let mut first = start_acs(&erp, data.path(), &env);
    let relay = Relay::start(first.cwmp, Duration::from_millis(300));
    let state = tempfile::tempdir().unwrap();
    let _fleet = spawn_fleet(
        &format!("http://{}/", relay.addr),
        "mixed",
        COUNT,
        "KILL",
        &[
            "--concurrency",
            "10",
            "--inform-interval",
            "3",
            "--duration",
            "120",
            "--connection-requests",
            "--timeout",
            "10",
            "--state-dir",
            state.path().to_str().unwrap(),
        ],
    );

    // Provisioning under way: a few devices done, the others bootstrapping.
    let known = wait_until("the first devices provisioned", 40, || {
        let list = devices(&first);
        let done = list
            .iter()
            .filter(|d| d["provisioning"]["status"] == "provisioned")
            .count();
        (done >= 8).then_some(list)
    });
    // Ops queues a task on ten devices (201: acknowledged, durable), with a
    // connection request, and the ACS dies right after.
    let mut tasks = Vec::new();
    for d in known.iter().take(10) {
        let id = d["id"].as_str().unwrap();
        let root = d["data_model"].as_str().unwrap_or("Device.");
        let (status, body) = first.api_post(
            &format!(
                "/api/v1/devices/{}/tasks?connection_request=true",
                encode_segment(id)
            ),
            &json!({"name": "getParameterValues", "parameterNames": [format!("{root}DeviceInfo.SoftwareVersion")]}),
        );
        assert_eq!(status, 201, "{body}");
        tasks.push(body["task"]["id"].as_u64().unwrap());
    }
    let unfinished = tasks
        .iter()
        .filter(|t| task(&first, **t)["status"] != "done")
        .count();
    let before = devices(&first);
    // The kill lands while a device has applied its push and its answer
    // has not reached the ACS yet (the outcome is not recorded).
    let cut = wait_until("a device between its push and the record of it", 20, || {
        let held = relay.holding();
        (!held.is_empty()).then_some(held)
    });
    first.kill9();
    let pushed_before_kill = relay.pushes();
    let provisioned_at_kill = before
        .iter()
        .filter(|d| d["provisioning"]["status"] == "provisioned")
        .count();
    assert!(
        provisioned_at_kill < COUNT && unfinished > 0,
        "the kill came too late to test anything: {provisioned_at_kill} provisioned, {unfinished} tasks pending"
    );

    // Same data dir, ERPNext fast again; the fleet retries through the relay.
    assert_eq!(erp.admin("/_admin/faults", &json!({"clear": true})), 200);
    let acs = start_acs(&erp, data.path(), &env);
    relay.point_to(acs.cwmp);

    let list = wait_until(
        "every device provisioned and every task done after the restart",
        60,
        || {
            for t in &tasks {
                let t = task(&acs, *t);
                assert!(
                    !matches!(t["status"].as_str(), Some("failed" | "cancelled")),
                    "an acknowledged task did not complete: {t}"
                );
            }
            let list = devices(&acs);
            let all = list.len() == COUNT
                && list
                    .iter()
                    .all(|d| d["provisioning"]["status"] == "provisioned")
                && tasks.iter().all(|t| task(&acs, *t)["status"] == "done");
            all.then_some(list)
        },
    );

    // No device record lost or unreadable: every one known before the
    // crash is still there, and each reads back whole.
    let ids: BTreeSet<String> = list
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), COUNT);
    for d in &before {
        let id = d["id"].as_str().unwrap();
        assert!(ids.contains(id), "{id} lost in the crash");
        assert!(
            device(&acs, id)["inform_count"].as_u64() >= d["inform_count"].as_u64(),
            "{id} went back in time"
        );
    }
    let mut serials = BTreeSet::new();
    for id in &ids {
        let d = device(&acs, id);
        assert_eq!(d["id"], id.as_str());
        assert!(
            d["provisioning"]["equipment"]
                .as_str()
                .is_some_and(|e| e.starts_with("EQ-KILL-")),
            "{d}"
        );
        serials.insert(d["serial_number"].as_str().unwrap().to_owned());
    }

    // Every ERPNext record turned "Actif" (the write-back queue survived).
    let deadline = Instant::now() + Duration::from_secs(20);
    for i in 0..COUNT {
        wait_actif(&erp, &format!("EQ-KILL-{i:05}"), deadline);
    }

    // Each device was delivered exactly one SetParameterValues: the run cut
    // by the crash was not pushed again (the ParameterKey on the device says
    // it is applied).
    assert_eq!(relay.serials(), serials);
    for s in &cut {
        assert_eq!(
            pushed_before_kill.get(s),
            Some(&1),
            "{s} was cut between its push and the record of it"
        );
    }
    let pushes = relay.pushes();
    let wrong: Vec<(&String, u32)> = serials
        .iter()
        .map(|s| (s, pushes.get(s).copied().unwrap_or(0)))
        .filter(|(_, n)| *n != 1)
        .collect();
    assert!(
        wrong.is_empty(),
        "devices not pushed exactly once: {wrong:?}"
    );
    for log in [first.logs(), acs.logs()] {
        assert!(!log.contains("panicked"), "{log}");
    }
}

// ---------------------------------------------------------------------------
// ERPNext faults
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ErpFault {
    /// Connections accepted and closed without an answer.
    Outage,
    /// Every request answered 500.
    ServerErrors,
    /// Every request answered 429 with Retry-After.
    RateLimited,
    /// Every request answered after 5 s.
    Slow,
}

impl ErpFault {
    fn settings(self) -> Value {
        match self {
            // Ended explicitly once the checks are made (at least 5 s).
            ErpFault::Outage => json!({"outage_s": 120, "outage_mode": "close"}),
            ErpFault::ServerErrors => json!({"error_rate": 1.0}),
            ErpFault::RateLimited => json!({"rate_limit_rate": 1.0, "retry_after_s": 3}),
            ErpFault::Slow => json!({"latency_ms": 5000}),
        }
    }
}

/// Three devices provisioned before the fault (a Deco and a TP-Link ONT run
/// by cpe-sim, and a scripted Deco), then ERPNext fails for at least 5 s
/// while six devices bootstrap. The 30 s outage is stood in for by
/// these 5 s to keep the test bounded: what matters is that sessions go on
/// during several inform intervals, not the length.
fn erpnext_fault(fault: ErpFault, tag: &str) {
    // The fleet's devices (below) have MACs 1C:61:B4:xx:00:0n and GPON
    // serials TPLGxx00000n: these cannot collide with them.
    let deco_mac = "1C:61:B4:EE:00:41".to_owned();
    let scripted_mac = "1C:61:B4:EE:00:42".to_owned();
    let gpon = "TPLGEE0000A1".to_owned();
    let (deco_serial, ont_serial, scripted_serial) = (
        format!("{tag}DECO1"),
        format!("{tag}ONT1"),
        format!("{tag}SCRIPT1"),
    );
    let old = erp_fixture(vec![
        deco_doc(
            &format!("EQ-{tag}-D"),
            &deco_mac.to_lowercase().replace(':', "-"),
            "Gigafibre-Avant",
            "Avant-pass-2026",
        ),
        tplg_doc(&format!("EQ-{tag}-T"), &gpon, "14505550001"),
        deco_doc(
            &format!("EQ-{tag}-S"),
            &scripted_mac,
            "Gigafibre-Script",
            "Script-pass-2026",
        ),
    ]);
    let new_prefix = format!("N{tag}");
    let erp = ErpSim::start(&merge(old, fleet_fixture("mixed", 6, &new_prefix)));
    let data = tempfile::tempdir().unwrap();
    let acs = start_acs(
        &erp,
        data.path(),
        &[("ACS_ERPNEXT_SESSION_BUDGET_MS", "1000")],
    );
    let old_deco = SimRun::start(&acs, "deco", &deco_serial, &["--mac", &deco_mac]);
    let old_ont = SimRun::start(&acs, "tplg-ont", &ont_serial, &["--gpon-sn", &gpon]);
    let mut scripted = Deco::new(acs.cwmp, &scripted_serial, &scripted_mac);
    let methods = scripted.session(&["0 BOOTSTRAP", "1 BOOT"]);
    assert!(
        methods.contains(&"SetParameterValues".to_owned()),
        "{methods:?}"
    );
    assert_eq!(scripted.value(SSID_24), "Gigafibre-Script");
    let sims = [&old_deco, &old_ont];
    let old_ids = [old_deco.id(), old_ont.id(), scripted.id()];
    wait_until("the old devices provisioned", 30, || {
        old_ids
            .iter()
            .all(|id| provisioning_status(&acs, id) == "provisioned")
            .then_some(())
    });

    // The fault.
    assert_eq!(erp.admin("/_admin/faults", &fault.settings()), 200);
    let fault_on = Instant::now();
    let informs_at = |id: &str| device(&acs, id)["inform_count"].as_u64().unwrap();
    let informs_before: Vec<u64> = sims.iter().map(|s| informs_at(&s.id())).collect();

    // A periodic session of the provisioned, scripted Deco during the fault
    // completes at once: the ACS gives up on ERPNext within its session
    // budget and leaves the device alone.
    let mut probe_answer = None;
    let methods = if fault == ErpFault::Slow {
        // Ordering, not speed: a request sent to ERPNext *before* the
        // session starts must still be unanswered when the session ends, so
        // the session did not wait for any ERPNext answer of its own.
        let mut probe =
            TcpStream::connect(erp.url.trim_start_matches("http://").trim_end_matches('/'))
                .unwrap();
        let auth = format!("token {}:{}", erp.key, erp.secret);
        write!(
            probe,
            "GET /api/resource/Service%20Equipment/EQ-{tag}-S HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut answer = String::new();
            let _ = probe.read_to_string(&mut answer);
            let _ = tx.send(answer);
        });
        let methods = scripted.session(&["2 PERIODIC"]);
        assert_eq!(
            rx.try_recv(),
            Err(mpsc::TryRecvError::Empty),
            "the session ended only after ERPNext's 5 s answer"
        );
        probe_answer = Some(rx);
        methods
    } else {
        scripted.session(&["2 PERIODIC"])
    };
    assert!(methods.is_empty(), "{methods:?}");
    let (_, p) = acs.api_get(&format!(
        "/api/v1/devices/{}",
        encode_segment(&scripted.id())
    ));
    assert_eq!(p["provisioning"]["status"], "deferred", "{p}");
    if fault == ErpFault::Slow {
        assert!(
            p["provisioning"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("did not answer within 1000 ms")),
            "{p}"
        );
    }

    // Six devices bootstrap during the fault: their sessions complete, with
    // provisioning deferred.
    let new_fleet = spawn_fleet(
        &format!("http://{}/", acs.cwmp),
        "mixed",
        6,
        &new_prefix,
        &[
            "--concurrency",
            "6",
            "--inform-interval",
            "1",
            "--duration",
            "120",
        ],
    );
    let new_ids: Vec<String> = wait_until("the new devices deferred", 30, || {
        let new: Vec<Value> = devices(&acs)
            .into_iter()
            .filter(|d| !old_ids.iter().any(|o| d["id"] == o.as_str()))
            .collect();
        (new.len() == 6
            && new
                .iter()
                .all(|d| d["provisioning"]["status"] == "deferred"))
        .then(|| {
            new.iter()
                .map(|d| d["id"].as_str().unwrap().to_owned())
                .collect()
        })
    });

    // The provisioned cpe-sim devices went on informing during the fault,
    // every session completing.
    wait_until(
        "two sessions of each old device during the fault",
        30,
        || {
            sims.iter()
                .zip(&informs_before)
                .all(|(s, n)| informs_at(&s.id()) >= n + 2)
                .then_some(())
        },
    );
    let (_, stats) = erp.call("GET", "/_admin/stats", None);
    assert!(
        stats["faults"].as_object().is_some_and(|f| !f.is_empty()) || fault == ErpFault::Slow,
        "ERPNext never failed: {stats}"
    );
    // At least 5 s of fault (see above).
    thread::sleep(Duration::from_secs(5).saturating_sub(fault_on.elapsed()));
    if let Some(rx) = probe_answer {
        // ERPNext was slow, not down: the probe got its answer, later.
        let answer = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    for s in sims {
        assert!(
            failures_in(&s.sessions()).is_empty(),
            "{}: {:#?}",
            s.serial,
            s.sessions()
        );
    }

    // Recovery.
    assert_eq!(erp.admin("/_admin/faults", &json!({"clear": true})), 200);
    wait_until("every device provisioned after recovery", 40, || {
        if provisioning_status(&acs, &scripted.id()) != "provisioned" {
            scripted.session(&["2 PERIODIC"]);
        }
        old_ids
            .iter()
            .chain(&new_ids)
            .all(|id| provisioning_status(&acs, id) == "provisioned")
            .then_some(())
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    for name in ["D", "T", "S"] {
        wait_actif(&erp, &format!("EQ-{tag}-{name}"), deadline);
    }
    for i in 0..6 {
        wait_actif(&erp, &format!("EQ-{new_prefix}-{i:05}"), deadline);
    }
    drop(new_fleet);

    // The provisioned devices were not pushed their configuration again,
    // neither during the fault nor after it.
    assert_eq!(
        scripted.pushes.len(),
        1,
        "scripted Deco pushed again: {:?}",
        pushed_names(&scripted.pushes)
    );
    assert_eq!(scripted.value(SSID_24), "Gigafibre-Script");
    for s in sims {
        let sessions = s.sessions();
        assert_eq!(pushes_in(&sessions), 1, "{}: {sessions:#?}", s.serial);
        assert!(failures_in(&sessions).is_empty(), "{sessions:#?}");
    }
    assert_eq!(old_deco.value(SSID_24).as_deref(), Some("Gigafibre-Avant"));
}

#[test]
fn provisioned_devices_keep_their_sessions_through_an_erpnext_outage() {
    erpnext_fault(ErpFault::Outage, "OUT");
}

#[test]
fn provisioned_devices_keep_their_sessions_while_erpnext_answers_500() {
    erpnext_fault(ErpFault::ServerErrors, "ERR");
}

#[test]
fn provisioned_devices_keep_their_sessions_while_erpnext_answers_429() {
    erpnext_fault(ErpFault::RateLimited, "RL");
}

#[test]
fn sessions_do_not_wait_for_a_5_s_erpnext() {
    erpnext_fault(ErpFault::Slow, "SLOW");
}

// ---------------------------------------------------------------------------
// Concurrency on one device
// ---------------------------------------------------------------------------

#[test]
fn connection_requests_racing_periodic_informs_push_an_erpnext_change_once() {
    let erp = ErpSim::start(&erp_fixture(vec![deco_doc(
        "EQ-RACE-1",
        "1c-61-b4-cc-00-01",
        "Gigafibre-Course",
        "Course-pass-2026",
    )]));
    let data = tempfile::tempdir().unwrap();
    let acs = start_acs(&erp, data.path(), &[("ACS_CR_MIN_INTERVAL_S", "0")]);
    let sim = SimRun::start(&acs, "deco", "RACE01", &["--mac", "1C:61:B4:CC:00:01"]);
    let id = sim.id();
    wait_until("the Deco provisioned", 30, || {
        (provisioning_status(&acs, &id) == "provisioned"
            && sim.value(SSID_24).as_deref() == Some("Gigafibre-Course"))
        .then_some(())
    });
    let mark = sim.sessions().len();

    // The SSID changes in ERPNext; Ops pokes the device about once a
    // second while it informs every second after its last session: each
    // connection request lands close to a periodic inform, and the
    // sessions they open follow each other, racing for the change.
    let (status, _) = erp.call(
        "PUT",
        "/api/resource/Service%20Equipment/EQ-RACE-1",
        Some(&json!({"custom_wifi_ssid": "Gigafibre-Course-2"})),
    );
    assert_eq!(status, 200);
    for pause_ms in [950, 1000, 1050, 900, 1100] {
        let (status, cr) = acs.api_post(
            &format!("/api/v1/devices/{}/connection-request", encode_segment(&id)),
            &json!({}),
        );
        assert_eq!(status, 200, "{cr}");
        thread::sleep(Duration::from_millis(pause_ms));
    }
    wait_until("the new SSID on the device", 20, || {
        (sim.value(SSID_24).as_deref() == Some("Gigafibre-Course-2")).then_some(())
    });
    // Three more sessions after the one that applied it.
    wait_until("three sessions after the change", 20, || {
        let after = &sim.sessions()[mark..];
        let applied = after
            .iter()
            .position(|l| l.contains("\"SetParameterValues\""))?;
        (after.len() >= applied + 4).then_some(())
    });
    let after = sim.sessions()[mark..].to_vec();
    assert_eq!(pushes_in(&after), 1, "{after:#?}");
    assert!(failures_in(&after).is_empty(), "{after:#?}");
    let codes: Vec<String> = device(&acs, &id)["recent_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap().to_owned())
        .collect();
    let first_cr = codes
        .iter()
        .position(|c| c == "6 CONNECTION REQUEST")
        .unwrap_or_else(|| panic!("no connection-request session: {codes:?}"));
    assert!(
        codes[first_cr..].iter().any(|c| c == "2 PERIODIC"),
        "no periodic session among them: {codes:?}"
    );
    assert_eq!(
        sim.value("Device.WiFi.SSID.3.SSID").as_deref(),
        Some("Gigafibre-Course-2")
    );
    assert_eq!(
        erp.equipment("EQ-RACE-1")["custom_wifi_ssid"],
        "Gigafibre-Course-2"
    );
}

#[test]
fn a_reprovision_asked_during_an_open_session_is_not_lost() {
    let erp = ErpSim::start(&erp_fixture(vec![deco_doc(
        "EQ-REPRO-1",
        "1C:61:B4:DD:00:01",
        "Gigafibre-Avant",
        "Avant-pass-2026",
    )]));
    let data = tempfile::tempdir().unwrap();
    // Periodic informs do not look at ERPNext (once an hour): only a run
    // asked for (reprovision, boot, connection request) does.
    let acs = start_acs(
        &erp,
        data.path(),
        &[
            ("ACS_PROVISION_RECHECK_S", "3600"),
            ("ACS_CR_TIMEOUT_S", "1"),
        ],
    );
    let mut deco = Deco::new(acs.cwmp, "REPRO01", "1C:61:B4:DD:00:01");
    let id = deco.id();
    let methods = deco.session(&["0 BOOTSTRAP", "1 BOOT"]);
    assert!(
        methods.contains(&"SetParameterValues".to_owned()),
        "{methods:?}"
    );
    assert_eq!(provisioning_status(&acs, &id), "provisioned");
    assert_eq!(deco.value(SSID_24), "Gigafibre-Avant");

    // The SSID changes in ERPNext and the Deco reboots: its session reads
    // ERPNext and pushes the new SSID. The test holds that push unanswered.
    let put = |ssid: &str| {
        let (status, _) = erp.call(
            "PUT",
            "/api/resource/Service%20Equipment/EQ-REPRO-1",
            Some(&json!({"custom_wifi_ssid": ssid})),
        );
        assert_eq!(status, 200);
    };
    put("Gigafibre-Un");
    deco.inform(&["1 BOOT"]);
    let read = deco.exchange(None).unwrap();
    assert_eq!(read.body.name(), "GetParameterValues");
    let answer = deco.answer(&read);
    let push = deco.exchange(Some(answer)).unwrap();
    let Body::SetParameterValues(spv) = &push.body else {
        panic!("expected the push, got {}", push.body.name())
    };
    assert!(
        spv.parameters
            .iter()
            .any(|p| p.name == SSID_24 && p.value == "Gigafibre-Un")
    );

    // Meanwhile Ops corrects the SSID again and asks for a reprovision. The
    // ACS queues it, waits for the open session to end, then sends a
    // connection request, which cannot reach the device (behind NAT): the
    // run must happen at its next contact.
    put("Gigafibre-Deux");
    let (status, body) = thread::scope(|s| {
        let ops = s.spawn(|| {
            acs.api_post(
                &format!("/api/v1/devices/{}/reprovision", encode_segment(&id)),
                &json!({}),
            )
        });
        wait_until("the reprovision queued", 10, || {
            let (_, list) = acs.api_get(&format!("/api/v1/devices/{}/tasks", encode_segment(&id)));
            list["tasks"]
                .as_array()?
                .iter()
                .any(|t| t["name"] == "reprovision")
                .then_some(())
        });
        // The open session finishes what it started (ERPNext as it was
        // read before the reprovision was asked).
        let answer = deco.answer(&push);
        let verify = deco.exchange(Some(answer)).unwrap();
        assert_eq!(verify.body.name(), "GetParameterValues");
        let answer = deco.answer(&verify);
        assert!(deco.exchange(Some(answer)).is_none());
        ops.join().unwrap()
    });
    assert_eq!(deco.value(SSID_24), "Gigafibre-Un");
    assert_eq!(body["connection_request"]["ok"], false, "{body}");
    assert_eq!(
        status, 202,
        "the reprovision was reported done by a run that read ERPNext before it was asked: {body}"
    );
    let reprovision = body["task"]["id"].as_u64().unwrap();
    assert_eq!(task(&acs, reprovision)["status"], "pending");

    // The device's next contact is a periodic inform: the reprovision runs
    // then, and the device ends with what ERPNext says now, pushed once.
    let methods = deco.session(&["2 PERIODIC"]);
    assert!(
        methods.contains(&"SetParameterValues".to_owned()),
        "{methods:?}"
    );
    assert_eq!(deco.value(SSID_24), "Gigafibre-Deux");
    assert_eq!(deco.value(SSID_5), "Gigafibre-Deux");
    let t = task(&acs, reprovision);
    assert_eq!(t["status"], "done", "{t}");
    let deux: Vec<&SetParameterValues> = deco
        .pushes
        .iter()
        .filter(|s| s.parameters.iter().any(|p| p.value == "Gigafibre-Deux"))
        .collect();
    assert_eq!(deux.len(), 1, "{:?}", pushed_names(&deco.pushes));
    // And nothing more afterwards.
    assert!(deco.session(&["2 PERIODIC"]).is_empty());
    assert_eq!(deco.pushes.len(), 3, "{:?}", pushed_names(&deco.pushes));
    assert_eq!(provisioning_status(&acs, &id), "provisioned");
}
