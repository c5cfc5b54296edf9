//! Fleet mode: thousands of simulated devices in one process (tokio tasks,
//! not processes), informs spread over the interval, sessions bounded by a
//! concurrency limit; prints sessions/s, latency percentiles and errors.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Semaphore;

use gigafibre_acs::cwmp::ValueType;

use crate::cr::{CrCredentials, Trigger};
use crate::device::{Action, AfterDownload, Device, set_management};
use crate::http::{AcsClient, Credentials};
use crate::model::{Identity, ModelTemplate, personalise};
use crate::quirks::Quirks;
use crate::runner::{
    Listeners, action_delay, apply_stun_mapping, schedule_boot_loop, sync_listeners,
};
use crate::session;
use crate::stun::{StunOptions, StunSettings};
use crate::transfer::{self, DownloadConfig};

#[derive(Clone, Debug)]
pub struct FleetOptions {
    pub acs_url: String,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub models: Vec<(String, Arc<crate::datamodel::DataModel>)>,
    pub count: u32,
    pub concurrency: usize,
    /// 0 means back to back.
    pub inform_interval: Duration,
    pub duration: Duration,
    pub credentials: Credentials,
    pub quirks: Quirks,
    pub serial_prefix: String,
    pub timeout: Duration,
    pub progress: bool,
    /// Per-device state files (BOOT instead of BOOTSTRAP on the next run).
    pub state_dir: Option<std::path::PathBuf>,
    /// Give every device its own connection-request listener on loopback.
    pub connection_requests: bool,
    /// TR-111: every device keeps a binding with this STUN server and
    /// takes UDP connection requests (the trees have STUNEnable set).
    pub stun: Option<StunOptions>,
    /// Every device stops after its first successful session (a bootstrap
    /// wave: the run ends when the whole fleet has bootstrapped).
    pub once: bool,
    /// How downloads are fetched and checked.
    pub downloads: Arc<DownloadConfig>,
    /// Every Nth device (index i with i % N == N - 1) is hardware revision
    /// B: its DeviceInfo.HardwareVersion ends in `-B`.
    pub hardware_variant_every: Option<u32>,
}

/// Suffix of the other hardware revision's HardwareVersion.
pub const VARIANT_SUFFIX: &str = "-B";

/// The model with `-B` appended to DeviceInfo.HardwareVersion (a second
/// shared tree, so that the variant devices still share one).
fn hardware_variant(tree: &crate::datamodel::DataModel) -> crate::datamodel::DataModel {
    let mut t = tree.clone();
    let path = format!("{}DeviceInfo.HardwareVersion", t.root());
    if let Some(p) = t.params.get(&path).map(|p| p.value.clone()) {
        let _ = t.set_local(&path, &format!("{p}{VARIANT_SUFFIX}"));
    }
    t
}

#[derive(Default)]
struct Stats {
    latencies_us: Vec<u64>,
    errors: BTreeMap<&'static str, u64>,
    first_errors: Vec<String>,
    rpcs: u64,
}

/// Final numbers of a fleet run.
#[derive(Debug, Serialize)]
pub struct FleetReport {
    pub devices: u32,
    pub models: Vec<String>,
    pub concurrency: usize,
    pub duration_s: f64,
    pub sessions: u64,
    pub sessions_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub rpcs: u64,
    pub errors: BTreeMap<String, u64>,
    pub error_samples: Vec<String>,
}

impl FleetReport {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn print_text(&self) {
        println!(
            "fleet: {} devices ({}), concurrency {}, {:.1} s",
            self.devices,
            self.models.join(", "),
            self.concurrency,
            self.duration_s
        );
        println!(
            "sessions: {} ok, {:.1}/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} ACS requests answered",
            self.sessions, self.sessions_per_s, self.p50_ms, self.p99_ms, self.max_ms, self.rpcs
        );
        if self.errors.is_empty() {
            println!("errors: none");
        } else {
            let list: Vec<String> = self
                .errors
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            println!("errors: {}", list.join(", "));
            for s in &self.error_samples {
                println!("  e.g. {s}");
            }
        }
    }
}

/// The identity of fleet device `i` of a model.
///
/// MACs and GPON serials depend on the serial prefix too, so fleets with
/// different prefixes never collide. Raisecom ONTs report their GPON
/// serial as SerialNumber, so it is also their serial.
pub fn fleet_identity(model: &str, prefix: &str, i: u32, acs_url: &str) -> Identity {
    let b = i.to_be_bytes();
    let oui: [u8; 3] = match model {
        "rcmg-ont" => [0x00, 0x0e, 0x5e],
        "hgw-ont" => [0x00, 0xe0, 0xfc],
        "router-5g-first" => [0xd0, 0x60, 0x8c],
        "tr181-link-mac" => [0x4c, 0xa1, 0x5e],
        "psk-only" => [0x0c, 0x7e, 0xa4],
        _ => [0x1c, 0x61, 0xb4],
    };
    // FNV-1a of the prefix, folded to a byte.
    let p = prefix.bytes().fold(0x811c_9dc5u32, |h, c| {
        (h ^ u32::from(c)).wrapping_mul(0x0100_0193)
    });
    let p = (p ^ (p >> 8) ^ (p >> 16) ^ (p >> 24)) as u8;
    let vendor = match model {
        "rcmg-ont" => "RCMG",
        "hgw-ont" => "HWTC",
        _ => "TPLG",
    };
    let gpon_sn = format!("{vendor}{:08X}", (u32::from(p) << 24) ^ i);
    Identity {
        serial: if model == "rcmg-ont" {
            gpon_sn.clone()
        } else {
            format!("{prefix}{i:07}")
        },
        mac: [oui[0], oui[1], oui[2], b[1] ^ p, b[2], b[3]],
        gpon_sn,
        acs_url: acs_url.to_owned(),
        cr_url: format!("http://100.{}.{}.{}:7547/", 64 + (b[1] & 63), b[2], b[3]),
        wan_ip: format!("100.{}.{}.{}", 64 + (b[1] & 63), b[2], b[3]),
    }
}

pub async fn run(mut opts: FleetOptions) -> FleetReport {
    if opts.connection_requests {
        // Per-device initial credentials as placeholders in the shared
        // trees (resolved per device, so the trees stay shared).
        for (_, tree) in &mut opts.models {
            let tree = Arc::make_mut(tree);
            for (leaf, value) in [
                ("ConnectionRequestUsername", "{{SERIAL}}"),
                ("ConnectionRequestPassword", "cr-{{SERIAL}}"),
            ] {
                set_management(tree, leaf, value, ValueType::String, true);
            }
        }
    }
    let stats = Arc::new(Mutex::new(Stats::default()));
    let in_flight = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let permits = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + opts.duration;
    let spread = if opts.inform_interval.is_zero() {
        Duration::from_millis(200).min(opts.duration)
    } else {
        opts.inform_interval.min(opts.duration)
    };

    let progress = opts.progress.then(|| {
        let (ok, failed, in_flight) = (ok.clone(), failed.clone(), in_flight.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let t = start.elapsed().as_secs_f64();
                let n = ok.load(Ordering::Relaxed);
                eprint!(
                    "\r[{t:6.1} s] {n} sessions ({:.0}/s), {} errors, {} in flight   ",
                    n as f64 / t.max(0.001),
                    failed.load(Ordering::Relaxed),
                    in_flight.load(Ordering::Relaxed)
                );
                let _ = std::io::stderr().flush();
            }
        })
    });

    let variants: Vec<Arc<crate::datamodel::DataModel>> = match opts.hardware_variant_every {
        Some(n) if n > 0 => opts
            .models
            .iter()
            .map(|(_, t)| Arc::new(hardware_variant(t)))
            .collect(),
        _ => Vec::new(),
    };
    let mut tasks = Vec::with_capacity(opts.count as usize);
    for i in 0..opts.count {
        let (model_name, mut shared) = opts.models[i as usize % opts.models.len()].clone();
        if opts
            .hardware_variant_every
            .is_some_and(|n| n > 0 && i % n == n - 1)
        {
            shared = variants[i as usize % variants.len()].clone();
        }
        let identity = fleet_identity(&model_name, &opts.serial_prefix, i, &opts.acs_url);
        let opts = opts.clone();
        let (stats, in_flight, ok, failed, permits) = (
            stats.clone(),
            in_flight.clone(),
            ok.clone(),
            failed.clone(),
            permits.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let (tx, mut triggers) = tokio::sync::mpsc::channel(1);
            let mut identity = identity;
            let record_error = |kind: &'static str, sample: String| {
                let mut s = stats.lock().unwrap_or_else(|p| p.into_inner());
                *s.errors.entry(kind).or_default() += 1;
                if s.first_errors.len() < 5 {
                    s.first_errors.push(sample);
                }
            };
            // Factory values first (never an open listener), then the
            // device's model, after every session.
            let listeners = Listeners {
                credentials: CrCredentials::new(&identity.serial, &format!("cr-{}", identity.serial)),
                stun: StunSettings::default(),
            };
            if opts.connection_requests {
                match crate::cr::serve(([127, 0, 0, 1], 0).into(), listeners.credentials.clone(), tx.clone()).await {
                    Ok(addr) => identity.cr_url = format!("http://{addr}/"),
                    Err(e) => {
                        record_error("cr_listener", format!("{}: connection-request listener: {e}", identity.serial));
                        return;
                    }
                }
            }
            let udp = match &opts.stun {
                Some(o) => match tokio::net::UdpSocket::bind(o.bind).await {
                    Ok(s) => Some((s, o.clone())),
                    Err(e) => {
                        record_error("udp_socket", format!("{}: UDP socket: {e}", identity.serial));
                        return;
                    }
                },
                None => None,
            };
            let state_file = opts.state_dir.as_ref().map(|d| d.join(format!("{}.json", identity.serial)));
            let model = personalise(&shared, &identity);
            let mut dev = match Device::new(model, opts.quirks.clone(), state_file) {
                Ok(d) => d,
                Err(e) => {
                    record_error("state_file", e);
                    return;
                }
            };
            sync_listeners(&dev, &listeners);
            // Dropped when this device's task ends, which stops its STUN task.
            let (_stop_stun, stop_rx) = tokio::sync::watch::channel(false);
            if let Some((socket, o)) = udp {
                tokio::spawn(crate::stun::run(socket, o, listeners.stun.clone(), listeners.credentials.clone(), tx.clone(), stop_rx));
            }
            // Without a listener nothing sends triggers: recv() then ends.
            drop(tx);
            let Ok(mut client) =
                AcsClient::new(&opts.acs_url, opts.credentials.clone(), opts.timeout, opts.tls.clone())
            else {
                return;
            };
            let offset = spread.mul_f64(f64::from(i) / f64::from(opts.count.max(1)));
            tokio::time::sleep(offset).await;
            // Actions due later (DelaySeconds, a boot loop's next reboot)
            // and downloads in flight, each in its own task.
            let mut scheduled: Vec<(tokio::time::Instant, Action)> = Vec::new();
            let (downloads_done, mut downloads) = tokio::sync::mpsc::unbounded_channel();
            while tokio::time::Instant::now() < deadline {
                if dev.is_dead() {
                    // Dead firmware: no more informs, no answers.
                    listeners.credentials.silence();
                    let _ = dev.save();
                    return;
                }
                let next = tokio::time::Instant::now() + opts.inform_interval;
                let Ok(_permit) = permits.acquire().await else {
                    return;
                };
                in_flight.fetch_add(1, Ordering::Relaxed);
                let t0 = Instant::now();
                let result = session::run(&mut dev, &mut client).await;
                let us = t0.elapsed().as_micros() as u64;
                sync_listeners(&dev, &listeners);
                in_flight.fetch_sub(1, Ordering::Relaxed);
                drop(_permit);
                let failure = result
                    .as_ref()
                    .err()
                    .map(|e| (e.kind(), format!("{}: {e}", dev.device_id.serial_number)));
                {
                    let mut s = stats.lock().unwrap_or_else(|p| p.into_inner());
                    match (&result, &failure) {
                        (Ok(report), _) => {
                            s.latencies_us.push(us);
                            s.rpcs += u64::from(report.rpcs);
                        }
                        (Err(_), Some((kind, sample))) => {
                            *s.errors.entry(kind).or_default() += 1;
                            if s.first_errors.len() < 5 {
                                s.first_errors.push(sample.clone());
                            }
                        }
                        (Err(_), None) => {}
                    }
                }
                if result.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                    dev.session_failed();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                ok.fetch_add(1, Ordering::Relaxed);
                let now = tokio::time::Instant::now();
                for a in dev.take_actions() {
                    // Reboots are instant in a fleet.
                    scheduled.push((now + action_delay(&a, Duration::ZERO), a));
                }
                schedule_boot_loop(&dev, &mut scheduled, opts.downloads.boot_loop_period);
                sync_listeners(&dev, &listeners);
                let _ = dev.save();
                if opts.once {
                    return;
                }
                if !dev.pending_events().is_empty() {
                    continue;
                }
                // Wait for the next reason to open a session.
                loop {
                    scheduled.sort_by_key(|(t, _)| *t);
                    let next_action = scheduled.first().map(|(t, _)| *t);
                    tokio::select! {
                        _ = tokio::time::sleep_until(next.min(deadline)) => {
                            dev.add_event("2 PERIODIC", "");
                            break;
                        }
                        _ = tokio::time::sleep_until(next_action.unwrap_or(deadline)), if next_action.is_some() => {
                            let now = tokio::time::Instant::now();
                            let due: Vec<Action> = scheduled.iter().filter(|(t, _)| *t <= now).map(|(_, a)| a.clone()).collect();
                            scheduled.retain(|(t, _)| *t > now);
                            let mut session = false;
                            for a in due {
                                match a {
                                    Action::Transfer(t) if t.download => {
                                        transfer::spawn(t, dev.hardware_version(), opts.downloads.clone(), downloads_done.clone());
                                        continue;
                                    }
                                    // Fixed meanwhile by another image.
                                    Action::BootLoop if !dev.is_boot_looping() => continue,
                                    Action::Reboot { .. } | Action::FactoryReset | Action::BootLoop => client.disconnect(),
                                    _ => {}
                                }
                                dev.perform(a);
                                session = true;
                            }
                            sync_listeners(&dev, &listeners);
                            if session {
                                break;
                            }
                        }
                        Some(f) = downloads.recv() => {
                            if matches!(dev.finish_download(&f.transfer, f.start_time, f.verdict), AfterDownload::Reboot | AfterDownload::BootLoop) {
                                client.disconnect();
                            }
                            break;
                        }
                        Some(t) = triggers.recv() => {
                            let notify = match t {
                                Trigger::ConnectionRequest => {
                                    dev.add_event("6 CONNECTION REQUEST", "");
                                    break;
                                }
                                Trigger::StunMapped { addr, nat_detected } => apply_stun_mapping(&mut dev, addr, nat_detected),
                                Trigger::SetValue { name, value } => {
                                    let n = dev.model.set_local(&name, &value);
                                    sync_listeners(&dev, &listeners);
                                    n
                                }
                            };
                            // Passive notification waits for the next
                            // Inform, active opens a session now.
                            match notify {
                                Some(0) | None => {}
                                Some(1) => dev.add_event("4 VALUE CHANGE", ""),
                                Some(_) => {
                                    dev.add_event("4 VALUE CHANGE", "");
                                    break;
                                }
                            }
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut s = stats.lock().unwrap_or_else(|p| p.into_inner());
    s.latencies_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        if s.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((s.latencies_us.len() as f64 * p) as usize).min(s.latencies_us.len() - 1);
        s.latencies_us[i] as f64 / 1000.0
    };
    FleetReport {
        devices: opts.count,
        models: opts.models.iter().map(|(n, _)| n.clone()).collect(),
        concurrency: opts.concurrency,
        duration_s: elapsed,
        sessions: s.latencies_us.len() as u64,
        sessions_per_s: s.latencies_us.len() as f64 / elapsed.max(0.001),
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        max_ms: s.latencies_us.last().map_or(0.0, |v| *v as f64 / 1000.0),
        rpcs: s.rpcs,
        errors: s.errors.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        error_samples: s.first_errors.clone(),
    }
}

/// An ERPNext fixture (erpnext-sim's format) with one customer, service
/// location and Service Equipment per fleet device, so a rehearsal can
/// provision the whole fleet. Identifiers are written the many ways ERPNext
/// data has them (MAC separators and case, GPON serial ASCII or hex).
pub fn erpnext_fixture(models: &[String], prefix: &str, count: u32) -> serde_json::Value {
    let mut customers = Vec::new();
    let mut locations = Vec::new();
    let mut equipment = Vec::new();
    for i in 0..count {
        let model = &models[i as usize % models.len()];
        let id = fleet_identity(model, prefix, i, "");
        let customer = format!("{prefix} Client {i:05}");
        let location = format!("LOC-{prefix}-{i:05}");
        customers.push(serde_json::json!({"name": customer, "customer_name": customer, "customer_type": "Individual", "customer_group": "Résidentiel", "territory": "Québec"}));
        locations.push(serde_json::json!({"name": location, "customer": customer, "address_line": format!("{} rue des Érables", i + 1), "city": "Salaberry-de-Valleyfield", "province": "QC", "postal_code": "J6S 4V7", "status": "Active"}));
        let mac = match i % 3 {
            0 => id.mac_upper(),
            1 => id.mac_lower().replace(':', "-"),
            _ => id.mac_lower().replace(':', ""),
        };
        let name = format!("EQ-{prefix}-{i:05}");
        let doc = match model.as_str() {
            "deco" => {
                serde_json::json!({"name": name, "customer": customer, "service_location": location, "equipment_type": "Routeur", "brand": "TP-Link", "model": "Deco X20",
                "status": "En inventaire", "mac_address": mac, "custom_wifi_ssid": format!("Gigafibre-{i:05}"), "custom_wifi_password": format!("Wifi-{prefix}-{i:05}"), "custom_wifi_enabled": 1})
            }
            // Routers found by MAC, with WiFi (and SIP where they have lines).
            "router-5g-first" | "psk-only" | "tr181-link-mac" => {
                let mut d = serde_json::json!({"name": name, "customer": customer, "service_location": location, "equipment_type": "Routeur",
                "status": "En inventaire", "mac_address": mac, "custom_wifi_ssid": format!("Gigafibre-{i:05}"), "custom_wifi_password": format!("Wifi-{prefix}-{i:05}"), "custom_wifi_enabled": 1});
                if model == "tr181-link-mac" {
                    d["custom_sip_username"] = serde_json::json!(format!("1450557{i:04}"));
                    d["custom_sip_password"] = serde_json::json!(format!("Sip-{prefix}-{i:05}"));
                }
                d
            }
            // An ONT reporting its GPON serial as its CWMP serial (hex), the
            // sticker's ASCII form in ERPNext; WiFi and SIP.
            "hgw-ont" => {
                serde_json::json!({"name": name, "customer": customer, "service_location": location, "equipment_type": "ONT", "brand": "Huawei",
                "status": "En inventaire", "custom_gpon_serial": id.gpon_sn.clone(), "custom_wifi_ssid": format!("Gigafibre-{i:05}"), "custom_wifi_password": format!("Wifi-{prefix}-{i:05}"),
                "custom_sip_username": format!("1450558{i:04}"), "custom_sip_password": format!("Sip-{prefix}-{i:05}"), "custom_sip_line": 1})
            }
            "tplg-ont" => {
                serde_json::json!({"name": name, "customer": customer, "service_location": location, "equipment_type": "ONT", "brand": "TP-Link", "model": "XX230v",
                "status": "En inventaire", "custom_gpon_serial": if i % 2 == 0 { id.gpon_sn.clone() } else { id.gpon_sn_hex() },
                "custom_sip_username": format!("1450555{i:04}"), "custom_sip_password": format!("Sip-{prefix}-{i:05}"), "custom_sip_line": 1})
            }
            _ => {
                serde_json::json!({"name": name, "customer": customer, "service_location": location, "equipment_type": "ONT", "brand": "Raisecom", "model": "HT803G-WS2",
                "status": "En inventaire", "serial_number": if i % 2 == 0 { id.gpon_sn_hex() } else { id.gpon_sn.clone() },
                "custom_sip_username": format!("1450556{i:04}"), "custom_sip_password": format!("Sip-{prefix}-{i:05}"), "custom_sip_line": 1})
            }
        };
        equipment.push(doc);
    }
    serde_json::json!({"Customer": customers, "Service Location": locations, "Service Equipment": equipment})
}

/// Loads the model named on the command line (`mixed` = the ISP's three:
/// Deco, RCMG and TPLG ONTs; `all` = every built-in model), or
/// the given GenieACS-export file.
pub fn load_models(
    name: &str,
    file: Option<&std::path::Path>,
) -> Result<Vec<(String, ModelTemplate)>, crate::model::ModelError> {
    if let Some(f) = file {
        return Ok(vec![(
            f.display().to_string(),
            ModelTemplate::from_file(f)?,
        )]);
    }
    let names: Vec<&str> = match name {
        "mixed" => vec!["deco", "rcmg-ont", "tplg-ont"],
        "all" => crate::model::BUILTIN.iter().map(|(n, _, _)| *n).collect(),
        _ => vec![name],
    };
    names
        .into_iter()
        .map(|n| ModelTemplate::builtin(n).map(|t| (n.to_owned(), t)))
        .collect()
}

pub fn is_terminal() -> bool {
    std::io::stderr().is_terminal()
}
