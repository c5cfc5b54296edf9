//! Runs one device for real: sessions on boot, on its periodic interval,
//! on connection requests and after its own actions, retrying failed
//! sessions with TR-069's backoff.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tracing::{debug, info, warn};

use crate::cr::{CrCredentials, Trigger};
use crate::device::{Action, Device};
use crate::http::AcsClient;
use crate::session;
use crate::stun::StunSettings;

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
}

fn action_delay(a: &Action, opts: &RunOptions) -> Duration {
    match a {
        Action::Reboot { .. } | Action::FactoryReset => opts.boot_delay,
        Action::ScheduleInform { delay_s, .. } => Duration::from_secs(u64::from(*delay_s)),
        Action::Transfer { delay_s, .. } => {
            Duration::from_secs(u64::from(*delay_s)) + opts.boot_delay
        }
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
    let mut done = 0u64;
    // A device another ACS bootstrapped waits for its first reason.
    let mut session_now = !opts.wait_first;
    loop {
        sync_listeners(dev, &listeners);
        if !std::mem::replace(&mut session_now, true) {
            if !wait_for_reason(
                dev,
                client,
                &mut triggers,
                &listeners,
                &opts,
                &mut scheduled,
                &mut stop,
            )
            .await
            {
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
                    scheduled.push((now + action_delay(&a, &opts), a));
                }
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

/// Waits for the next reason to open a session (an action falling due,
/// the periodic interval, a connection request, a local change) and
/// queues its event. False when told to stop.
async fn wait_for_reason(
    dev: &mut Device,
    client: &mut AcsClient,
    triggers: &mut mpsc::Receiver<Trigger>,
    listeners: &Listeners,
    opts: &RunOptions,
    scheduled: &mut Vec<(Instant, Action)>,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
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
                for a in due {
                    if matches!(a, Action::Reboot { .. } | Action::FactoryReset) {
                        client.disconnect();
                    }
                    if a == Action::FactoryReset {
                        dev.wipe_state();
                    }
                    dev.perform(a);
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
