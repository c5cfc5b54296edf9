//! genieacs-sim — a CPE simulator written by the GenieACS author, not by
//! this project — against the ACS, with both real exports: three workers of
//! each bootstrap, provision from erpnext-sim, hold periodic sessions, and
//! take a reprovision through a connection request. No worker may die
//! (genieacs-sim kills a worker on any non-2xx answer, on a name its model
//! lacks, on a partial path, on a value without `xsi:type`).
//!
//! It is third-party code and is not in this repository: the test runs it
//! from `../shared/third-party/genieacs-sim` when that folder and Node.js
//! exist (CI has both), and says clearly that it skipped otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

fn shared_sim() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/third-party/genieacs-sim");
    if !dir.join("genieacs-sim").exists() {
        eprintln!(
            "SKIPPED genieacs_sim: {} is not here (it is third-party code kept outside the repository)",
            dir.display()
        );
        return None;
    }
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => Some(dir),
        _ => {
            eprintln!("SKIPPED genieacs_sim: Node.js (`node`) is not installed");
            None
        }
    }
}

/// One genieacs-sim cluster (master + workers), its output collected.
struct GenieSim {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl GenieSim {
    fn start(dir: &PathBuf, acs: &Acs, model: &str, serial_base: u32) -> GenieSim {
        let mut child = Command::new("node")
            .current_dir(dir)
            .args([
                "genieacs-sim",
                "-u",
                &format!("http://{}/", acs.cwmp),
                "-m",
                model,
                "-p",
                "3",
                "-w",
                "300",
                "-s",
                &serial_base.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start genieacs-sim");
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let mut o = out.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            });
        }
        GenieSim { child, output }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }
}

/// Pids whose parent is `parent` (from /proc).
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    // pid (comm) state ppid ...: comm may hold spaces.
                    let rest = &s[s.rfind(')')? + 2..];
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

impl Drop for GenieSim {
    fn drop(&mut self) {
        // The cluster's workers (found through their parent, so before it
        // goes), then the master, before it restarts them 10 s later.
        for pid in children_of(self.child.id()) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn devices(acs: &Acs, prefix: &str) -> Vec<Value> {
    let (status, list) = acs.api_get("/api/v1/devices?limit=100");
    assert_eq!(status, 200);
    list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            d["serial_number"]
                .as_str()
                .is_some_and(|s| s.starts_with(prefix))
        })
        .cloned()
        .collect()
}

#[test]
fn genieacs_sim_workers_survive_bootstrap_periodic_sessions_and_a_reprovision() {
    let Some(dir) = shared_sim() else { return };
    let models = dir.join("../../device-models");
    let ex220 = models.join("tplink-ex220-tr181-mesh.csv");
    let xx230v = models.join("tplink-xx230v-gpon-ont.csv");
    let erp = ErpSim::start(&json!({
        "Customer": [{"name": "Client Genie", "customer_name": "Client Genie", "customer_type": "Individual", "customer_group": "Résidentiel", "territory": "Québec"}],
        "Service Location": [{"name": "LOC-GENIE", "customer": "Client Genie", "address_line": "9 rue du Simulateur", "city": "Châteauguay", "province": "QC", "postal_code": "J6K 1A1", "status": "Active"}],
        "Service Equipment": [
            {"name": "EQ-GENIE-1", "customer": "Client Genie", "service_location": "LOC-GENIE", "equipment_type": "Routeur", "status": "En inventaire",
             "mac_address": "1c61b4379e1e", "custom_wifi_ssid": "Gigafibre-Genie", "custom_wifi_password": "Genie-Pass-2026", "custom_wifi_enabled": 1},
            {"name": "EQ-GENIE-2", "customer": "Client Genie", "service_location": "LOC-GENIE", "equipment_type": "ONT", "status": "En inventaire",
             "custom_gpon_serial": "TPLGB4FB2AC8", "custom_wifi_ssid": "Gigafibre-Genie-ONT", "custom_wifi_password": "Genie-Pass-2027",
             "custom_sip_username": "14505550199", "custom_sip_password": "Sip-Genie-1", "custom_sip_line": 1},
        ],
    }));
    // Periodic sessions every 5 s once provisioned.
    let acs = erp.start_acs(&[("ACS_PROVISION_PERIODIC_INTERVAL_S", "5")]);
    let sims = [
        GenieSim::start(&dir, &acs, ex220.to_str().unwrap(), 4100),
        GenieSim::start(&dir, &acs, xx230v.to_str().unwrap(), 4200),
    ];
    // Six devices, each provisioned and through at least three sessions.
    let deadline = Instant::now() + Duration::from_secs(90);
    let ready = |acs: &Acs| {
        let d: Vec<Value> = ["0041", "0042"]
            .iter()
            .flat_map(|p| devices(acs, p))
            .collect();
        d.len() == 6
            && d.iter().all(|d| {
                d["provisioning"]["status"] == "provisioned"
                    && d["inform_count"].as_u64().unwrap_or(0) >= 3
            })
    };
    while !ready(&acs) {
        let died: Vec<String> = sims
            .iter()
            .flat_map(|s| {
                s.output()
                    .lines()
                    .filter(|l| l.contains("died"))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(
            died.is_empty() && Instant::now() < deadline,
            "genieacs-sim workers died or did not get provisioned:\n{}\n{}\ndevices: {:#}\n--- ACS log ---\n{}",
            sims[0].output(),
            sims[1].output(),
            json!(["0041", "0042"].iter().flat_map(|p| devices(&acs, p)).map(|d| json!({"id": d["id"], "informs": d["inform_count"], "provisioning": d["provisioning"]})).collect::<Vec<_>>()),
            acs.logs().lines().rev().take(40).collect::<Vec<_>>().join("\n"),
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // A reprovision through a connection request, for one worker of each.
    for prefix in ["0041", "0042"] {
        let d = devices(&acs, prefix).remove(0);
        let id = d["id"].as_str().unwrap();
        let (status, answer) = acs.api_post(
            &format!("/api/v1/devices/{}/reprovision?wait=30", encode_segment(id)),
            &json!({}),
        );
        assert_eq!(status, 200, "{id}: {answer}");
        assert_eq!(answer["task"]["status"], "done", "{id}: {answer}");
        assert_eq!(answer["connection_request"]["ok"], true, "{id}: {answer}");
    }
    // A few more periodic sessions after it.
    std::thread::sleep(Duration::from_secs(6));
    for s in &sims {
        let out = s.output();
        assert!(!out.contains("died"), "a genieacs-sim worker died:\n{out}");
    }
    for prefix in ["0041", "0042"] {
        for d in devices(&acs, prefix) {
            let id = d["id"].as_str().unwrap();
            let (_, faults) = acs.api_get(&format!("/api/v1/faults?device={}", encode_segment(id)));
            let cpe: Vec<&Value> = faults["faults"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["source"] == "cpe")
                .collect();
            assert!(cpe.is_empty(), "{id}: CPE faults {cpe:?}");
        }
    }
    assert_eq!(erp.equipment("EQ-GENIE-1")["status"], "Actif");
    assert_eq!(erp.equipment("EQ-GENIE-2")["status"], "Actif");
}
