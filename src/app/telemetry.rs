//! What the ACS keeps of the readings it takes: after a device's host
//! tables and ONT diagnostics were read, its optical power goes into its
//! history and the alarm rules ([`crate::alarms`]) run; alarms raised or
//! cleared become events (API stream, webhooks, other nodes).

use serde_json::json;

use super::Acs;
use crate::alarms::{self, Changes};
use crate::events::{EventKind, NewEvent};
use crate::history::{self, Combine};
use crate::store::{AlarmRecord, StoreResult};

/// Received optical power, dBm.
pub const OPTICAL_RX: &str = "optical_rx_dbm";
/// Transmitted optical power, dBm.
pub const OPTICAL_TX: &str = "optical_tx_dbm";
/// A reboot (each `1 BOOT` Inform is one reading of 1).
pub const REBOOTS: &str = "reboots";
/// WiFi clients of the whole home (every mesh node).
pub const WIFI_CLIENTS: &str = "wifi_clients";
/// Their mean signal, 0-100 %.
pub const WIFI_SIGNAL: &str = "wifi_signal_pct";
/// The WAN addresses, one entry per change (a text series).
pub const WAN_IP: &str = "wan_ip";
/// The numeric metrics a device's history may hold, and how old readings
/// of each are thinned.
pub const METRICS: [(&str, Combine); 5] = [
    (OPTICAL_RX, Combine::Mean),
    (OPTICAL_TX, Combine::Mean),
    (WIFI_CLIENTS, Combine::Mean),
    (WIFI_SIGNAL, Combine::Mean),
    (REBOOTS, Combine::Sum),
];

fn combine(metric: &str) -> Combine {
    METRICS
        .iter()
        .find(|(m, _)| *m == metric)
        .map_or(Combine::Mean, |(_, c)| *c)
}

/// Records readings `(metric, time, value)` in the device's history.
fn record(
    acs: &Acs,
    device_id: &str,
    samples: &[(&str, u64, f64)],
    now_ms: u64,
) -> StoreResult<()> {
    let readings: Vec<(&str, u64, f64, Combine)> = samples
        .iter()
        .map(|&(m, at, v)| (m, at, v, combine(m)))
        .collect();
    history::record(
        acs.store.as_ref(),
        device_id,
        &readings,
        now_ms,
        acs.config.history_retention.as_millis() as u64,
    )
}

/// After an exchange that read the device's diagnostics (`collected`)
/// or recorded a provisioning outcome (`provisioned`): the history and
/// the alarm rules those feed; the events to publish once durable.
pub fn after_exchange(
    acs: &Acs,
    device_id: &str,
    collected: bool,
    provisioned: bool,
    now_ms: u64,
) -> StoreResult<Vec<NewEvent>> {
    let mut events = Vec::new();
    if collected {
        events.extend(after_collection(acs, device_id, now_ms)?);
    }
    if provisioned {
        events.extend(after_provisioning(acs, device_id, now_ms)?);
    }
    Ok(events)
}

/// Records a device's fresh readings and applies the alarm rules; the
/// events to publish once durable.
pub fn after_collection(acs: &Acs, device_id: &str, now_ms: u64) -> StoreResult<Vec<NewEvent>> {
    let store = acs.store.as_ref();
    let Some(device) = store.device(device_id)? else {
        return Ok(Vec::new());
    };
    let values = crate::store::cached_values(store, device_id)?;
    let Some((profile, _)) =
        acs.provisioning
            .effective_profile(store, &acs.catalog, &device, &values)?
    else {
        return Ok(Vec::new());
    };
    // WiFi: how many clients, how well they hear their node.
    let topology = crate::topology::build(&values, &profile);
    let signals: Vec<f64> = topology
        .nodes
        .iter()
        .flat_map(|n| &n.clients)
        .chain(&topology.unplaced)
        .filter_map(|c| c.signal_quality.map(f64::from))
        .collect();
    let wifi = topology.totals.wifi_direct + topology.totals.wifi_via_mesh;
    let mut samples: Vec<(&str, u64, f64)> = Vec::new();
    if !topology.nodes.is_empty() {
        samples.push((WIFI_CLIENTS, now_ms, wifi as f64));
        if !signals.is_empty() {
            let mean = signals.iter().sum::<f64>() / signals.len() as f64;
            samples.push((WIFI_SIGNAL, now_ms, (mean * 10.0).round() / 10.0));
        }
    }
    let diagnostics = crate::topology::diagnostics(&values, &profile);
    // The WAN addresses, when the device reports any: a change is kept
    // (a renumbered CGNAT pool, a new delegated prefix...).
    let wan: Vec<&str> = diagnostics
        .wan_ipv4
        .iter()
        .chain(&diagnostics.wan_ipv6)
        .map(|w| w.address.as_str())
        .collect();
    if !wan.is_empty() {
        history::record_text(
            store,
            device_id,
            WAN_IP,
            &wan.join(" "),
            now_ms,
            acs.config.history_retention.as_millis() as u64,
        )?;
    }
    let optical = diagnostics.optical;
    if let Some(o) = &optical {
        for (m, v) in [(OPTICAL_RX, o.rx_dbm), (OPTICAL_TX, o.tx_dbm)] {
            if let Some(v) = v {
                samples.push((m, now_ms, v));
            }
        }
    }
    record(acs, device_id, &samples, now_ms)?;
    let Some(optical) = optical else {
        return Ok(Vec::new());
    };
    let open = store.alarms(Some(device_id))?;
    let rules = &acs.config.alarm_rules;
    let changes = alarms::optical(
        device_id,
        optical.rx_dbm,
        rules.optical_class(&device).limits,
        rules.hysteresis_db,
        &open,
        now_ms,
    );
    apply(acs, changes)
}

/// After a provisioning run was recorded: the repeated-failure alarm.
pub fn after_provisioning(acs: &Acs, device_id: &str, now_ms: u64) -> StoreResult<Vec<NewEvent>> {
    match acs.store.device(device_id)? {
        Some(device) => apply(
            acs,
            alarms::provisioning(&device, &acs.config.alarm_rules, now_ms),
        ),
        None => Ok(Vec::new()),
    }
}

/// One pass over every device: those silent for the rules' count of
/// periodic intervals get an alarm (their next Inform clears it). Reads every
/// device record, in pages.
pub fn silence_pass(acs: &Acs, now_ms: u64) -> StoreResult<Vec<NewEvent>> {
    let interval_ms = u64::from(
        acs.config
            .provision_periodic_interval_s
            .unwrap_or(300)
            .max(60),
    ) * 1000;
    let mut events = Vec::new();
    crate::store::each_device(acs.store.as_ref(), |d| {
        let changes = alarms::silent(&d, &acs.config.alarm_rules, interval_ms, now_ms);
        if !changes.raise.is_empty() {
            events.extend(apply(acs, changes)?);
        }
        Ok(())
    })?;
    Ok(events)
}

/// Records alarm changes on the device record (its list of open kinds),
/// without writing it: for the Inform, whose record is written anyway.
pub fn note(device: &mut crate::store::DeviceRecord, changes: &Changes) {
    for a in &changes.raise {
        if !device.alarms.contains(&a.kind) {
            device.alarms.push(a.kind.clone());
        }
    }
    device
        .alarms
        .retain(|k| !changes.clear.iter().any(|c| &c.kind == k));
}

/// Stores alarm changes and updates the device record's list of open
/// kinds; their events.
fn apply(acs: &Acs, changes: Changes) -> StoreResult<Vec<NewEvent>> {
    if changes.raise.is_empty() && changes.clear.is_empty() {
        return Ok(Vec::new());
    }
    let device_id = changes
        .raise
        .iter()
        .chain(&changes.clear)
        .map(|a| a.device_id.clone())
        .next()
        .unwrap_or_default();
    if let Some(mut device) = acs.store.device(&device_id)? {
        note(&mut device, &changes);
        acs.store.put_device(&device)?;
    }
    store_alarms(acs, changes)
}

/// What an accepted Inform leaves: a reboot in the history, and the
/// alarm rows of [`alarms::at_inform`] (already noted on the record the
/// Inform writes); their events.
pub fn record_inform(
    acs: &Acs,
    device_id: &str,
    booted: bool,
    changes: Changes,
    now_ms: u64,
) -> StoreResult<Vec<NewEvent>> {
    if booted {
        record(acs, device_id, &[(REBOOTS, now_ms, 1.0)], now_ms)?;
    }
    store_alarms(acs, changes)
}

/// Stores alarm rows (the device record is the caller's); their events.
fn store_alarms(acs: &Acs, changes: Changes) -> StoreResult<Vec<NewEvent>> {
    let mut events = Vec::new();
    for a in changes.raise {
        acs.store.put_alarm(&a)?;
        tracing::warn!(device = %a.device_id, alarm = %a.kind, value = ?a.value, "alarm raised");
        events.push(NewEvent::new(
            EventKind::AlarmRaised,
            &a.device_id,
            alarm_json(&a),
        ));
    }
    for a in changes.clear {
        acs.store.delete_alarm(&a.device_id, &a.kind)?;
        tracing::info!(device = %a.device_id, alarm = %a.kind, "alarm cleared");
        events.push(NewEvent::new(
            EventKind::AlarmCleared,
            &a.device_id,
            alarm_json(&a),
        ));
    }
    Ok(events)
}

/// An alarm as the API and events show it.
pub fn alarm_json(a: &AlarmRecord) -> serde_json::Value {
    json!({
        "device_id": a.device_id,
        "kind": a.kind,
        "raised_at": crate::cwmp::format_datetime(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(a.raised_ms)
        ),
        "value": a.value,
        "threshold": a.threshold,
    })
}
