//! Runs one device for real: sessions on boot, on its periodic interval,
//! on connection requests and after its own actions, retrying failed
//! sessions with TR-069's backoff.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tracing::{debug, info, warn};

use crate::cr::{CrCredentials, Trigger};
use crate::device::{Action, AfterDownload, Device};
use crate::http::AcsClient;
use crate::session;
use crate::stun::StunSettings;
use crate::transfer::{self, DownloadConfig, Finished};

#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Periodic inform interval (None: only boot, CR and scheduled sessions).
    pub periodic: Option<Duration>,
    /// Stop after this many successful sessions.
    pub max_sessions: Option<u64>,
    /// First retry wait; doubles per failure up to 2^9 times it (TR-069 3.2.1.1).
    pub retry_base: Duration,
    /// Time a reboot or factory reset takes.
    pub boot_delay: Duration,
    /// No session at start: the first waits for a connection request, the
    /// periodic interval or a local change (a device moved from another ACS).
    pub wait_first: bool,
    /// How downloads are fetched and checked.
    pub downloads: Arc<DownloadConfig>,
}

/// How long after the session an action is carried out: a reboot takes
/// `boot_delay`, a transfer starts after its DelaySeconds.
pub fn action_delay(a: &Action, boot_delay: Duration) -> Duration {
    match a {
        Action::Reboot { .. } | Action::FactoryReset => boot_delay,
        Action::ScheduleInform { delay_s, .. } => Duration::from_secs(u64::from(*delay_s)),
        Action::Transfer(t) => Duration::from_secs(u64::from(t.delay_s)),
        Action::BootLoop => Duration::ZERO,
    }
}

/// A boot-looping device's next reboot, `period` from now (one at a time).
pub fn schedule_boot_loop(dev: &Device, scheduled: &mut Vec<(Instant, Action)>, period: Duration) {
    scheduled.retain(|(_, a)| *a != Action::BootLoop);
    if dev.is_boot_looping() {
        scheduled.push((Instant::now() + period, Action::BootLoop));
    }
}

/// What the device's listeners (HTTP and UDP connection requests, STUN)
/// read from its data model: refreshed from the model after every session
/// and every local change, so that what the ACS sets is obeyed.
#[derive(Clone, Debug, Default)]
pub struct Listeners {
    pub credentials: CrCredentials,
    pub stun: StunSettings,
}

/// Makes the listeners use what the data model holds now (the ACS may
/// just have changed it, or a factory reset restored it).
pub fn sync_listeners(dev: &Device, listeners: &Listeners) {
    let (username, password) = dev.connection_request_credentials();
    if listeners.credentials.set(&username, &password) {
        // Debug: a fleet bootstrapping thousands of devices would flood info.
        debug!(device = %dev.device_id.serial_number, %username, "connection-request credentials updated from the data model");
    }
    listeners.stun.sync(dev);
}

/// Applies a STUN result to the model; the notification level of
/// UDPConnectionRequestAddress if it changed (as for `/_sim/set`).
pub fn apply_stun_mapping(dev: &mut Device, addr: SocketAddr, nat_detected: bool) -> Option<u32> {
    let _ = dev.set_management("NATDetected", if nat_detected { "true" } else { "false" });
    dev.set_management("UDPConnectionRequestAddress", &addr.to_string())
}

/// Runs until `max_sessions` or until `stop` fires. `listeners` follow the
/// data model.
pub async fn run(
    dev: &mut Device,
    client: &mut AcsClient,
    mut triggers: mpsc::Receiver<Trigger>,
    listeners: Listeners,
    opts: RunOptions,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut scheduled: Vec<(Instant, Action)> = Vec::new();
    let (downloads_done, mut downloads) = mpsc::unbounded_channel();
    let mut done = 0u64;
    // A device another ACS bootstrapped waits for its first reason.
    let mut session_now = !opts.wait_first;
    loop {
        sync_listeners(dev, &listeners);
        if dev.is_dead() {
            // Dead firmware: the process lives on, the device is silent.
            info!(device = %dev.device_id.serial_number, "the device is dead (vanished after its download)");
            listeners.credentials.silence();
            if let Err(e) = dev.save() {
                warn!("{e}");
            }
            let _ = stop.changed().await;
            return;
        }
        if !std::mem::replace(&mut session_now, true) {
            let mut wait = Wait {
                triggers: &mut triggers,
                listeners: &listeners,
                opts: &opts,
                scheduled: &mut scheduled,
                stop: &mut stop,
                downloads: &mut downloads,
                downloads_done: &downloads_done,
            };
            if !wait_for_reason(dev, client, &mut wait).await {
                return;
            }
            continue;
        }
        let result = session::run(dev, client).await;
        // Even a failed session may have applied a SetParameterValues.
        sync_listeners(dev, &listeners);
        match result {
            Ok(report) => {
                done += 1;
                info!(device = %dev.device_id.serial_number, rpcs = report.rpcs, methods = ?report.methods, elapsed_ms = report.elapsed.as_millis() as u64, "session done");
                let now = Instant::now();
                for a in dev.take_actions() {
                    scheduled.push((now + action_delay(&a, opts.boot_delay), a));
                }
                schedule_boot_loop(dev, &mut scheduled, opts.downloads.boot_loop_period);
            }
            Err(e) => {
                dev.session_failed();
                let n = dev.retry_count().min(10);
                let wait = match &e {
                    session::SessionError::Busy {
                        retry_after: Some(s),
                    } => Duration::from_secs(*s),
                    _ => opts.retry_base * (1u32 << (n - 1).min(9)),
                };
                warn!(device = %dev.device_id.serial_number, error = %e, retry_in_ms = wait.as_millis() as u64, "session failed");
                if let Err(e) = dev.save() {
                    warn!("{e}");
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => continue,
                    _ = stop.changed() => return,
                }
            }
        }
        if let Err(e) = dev.save() {
            warn!("{e}");
        }
        if opts.max_sessions.is_some_and(|m| done >= m) {
            return;
        }
        // Next: wait for the next reason to open a session.
        session_now = false;
    }
}

/// What the device loop waits on between sessions.
struct Wait<'a> {
    triggers: &'a mut mpsc::Receiver<Trigger>,
    listeners: &'a Listeners,
    opts: &'a RunOptions,
    scheduled: &'a mut Vec<(Instant, Action)>,
    stop: &'a mut tokio::sync::watch::Receiver<bool>,
    /// Downloads in flight report here.
    downloads: &'a mut mpsc::UnboundedReceiver<Finished>,
    downloads_done: &'a mpsc::UnboundedSender<Finished>,
}

/// Waits for the next reason to open a session (an action falling due, a
/// download finishing, the periodic interval, a connection request, a
/// local change) and queues its event. False when told to stop.
async fn wait_for_reason(dev: &mut Device, client: &mut AcsClient, w: &mut Wait<'_>) -> bool {
    let Wait {
        triggers,
        listeners,
        opts,
        scheduled,
        stop,
        downloads,
        downloads_done,
    } = w;
    let periodic_at = opts.periodic.map(|p| Instant::now() + p);
    loop {
        scheduled.sort_by_key(|(t, _)| *t);
        let next_action = scheduled.first().map(|(t, _)| *t);
        let far = Instant::now() + Duration::from_secs(86_400 * 365);
        tokio::select! {
            _ = sleep_until(next_action.unwrap_or(far)), if next_action.is_some() => {
                let now = Instant::now();
                let due: Vec<Action> = scheduled.iter().filter(|(t, _)| *t <= now).map(|(_, a)| a.clone()).collect();
                scheduled.retain(|(t, _)| *t > now);
                let mut session = false;
                for a in due {
                    match a {
                        Action::Transfer(t) if t.download => {
                            // Fetched meanwhile; sessions go on.
                            transfer::spawn(t, dev.hardware_version(), opts.downloads.clone(), (*downloads_done).clone());
                            continue;
                        }
                        // Fixed meanwhile by another image.
                        Action::BootLoop if !dev.is_boot_looping() => continue,
                        Action::Reboot { .. } | Action::FactoryReset | Action::BootLoop => client.disconnect(),
                        _ => {}
                    }
                    if a == Action::FactoryReset {
                        dev.wipe_state();
                    }
                    dev.perform(a);
                    session = true;
                }
                if session {
                    return true;
                }
            }
            Some(f) = downloads.recv() => {
                match dev.finish_download(&f.transfer, f.start_time, f.verdict) {
                    AfterDownload::Session | AfterDownload::Dead => {}
                    AfterDownload::Reboot | AfterDownload::BootLoop => {
                        client.disconnect();
                        tokio::select! {
                            _ = tokio::time::sleep(opts.boot_delay) => {}
                            _ = stop.changed() => return false,
                        }
                    }
                }
                return true;
            }
            _ = sleep_until(periodic_at.unwrap_or(far)), if periodic_at.is_some() => {
                dev.add_event("2 PERIODIC", "");
                return true;
            }
            Some(t) = triggers.recv() => match t {
                Trigger::ConnectionRequest => {
                    dev.add_event("6 CONNECTION REQUEST", "");
                    return true;
                }
                Trigger::StunMapped { addr, nat_detected } => {
                    match apply_stun_mapping(dev, addr, nat_detected) {
                        Some(0) | None => {}
                        Some(1) => dev.add_event("4 VALUE CHANGE", ""),
                        Some(_) => {
                            dev.add_event("4 VALUE CHANGE", "");
                            return true;
                        }
                    }
                }
                Trigger::SetValue { name, value } => {
                    // Passive notification waits for the next Inform;
                    // active opens a session now (TR-069 3.2.1).
                    let changed = dev.model.set_local(&name, &value);
                    sync_listeners(dev, listeners);
                    match changed {
                        Some(0) | None => {}
                        Some(1) => dev.add_event("4 VALUE CHANGE", ""),
                        Some(_) => {
                            dev.add_event("4 VALUE CHANGE", "");
                            return true;
                        }
                    }
                }
            },
            _ = stop.changed() => return false,
        }
    }
}
