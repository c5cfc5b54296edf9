//! What the ACS keeps of the readings it takes: after a device's host
//! tables and ONT diagnostics were read, its optical power goes into its
//! history and the alarm rules ([`crate::alarms`]) run; alarms raised or
//! cleared become events (API stream, webhooks, other nodes).

use std::sync::Arc;

use serde_json::json;

use super::Acs;
use super::handoff::FreshTopology;
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
/// Periodic Informs a device missed, counted when it comes back.
pub const INFORMS_MISSED: &str = "informs_missed";
/// The WAN addresses, one entry per change (a text series).
pub const WAN_IP: &str = "wan_ip";
/// The numeric metrics a device's history may hold, and how old readings
/// of each are thinned.
pub const METRICS: [(&str, Combine); 6] = [
    (OPTICAL_RX, Combine::Mean),
    (OPTICAL_TX, Combine::Mean),
    (WIFI_CLIENTS, Combine::Mean),
    (WIFI_SIGNAL, Combine::Mean),
    (REBOOTS, Combine::Sum),
    (INFORMS_MISSED, Combine::Sum),
];

/// The metrics also kept per mesh node, as `METRIC:MAC`.
pub const PER_NODE: [&str; 2] = [WIFI_CLIENTS, WIFI_SIGNAL];

/// The series of one mesh node's `metric` (`aa:bb:cc:dd:ee:ff`).
pub fn node_metric(metric: &str, node_mac: &str) -> String {
    format!("{metric}:{node_mac}")
}

fn combine(metric: &str) -> Combine {
    let base = metric.split_once(':').map_or(metric, |(m, _)| m);
    METRICS
        .iter()
        .find(|(m, _)| *m == base)
        .map_or(Combine::Mean, |(_, c)| *c)
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty())
        .then(|| (values.iter().sum::<f64>() / values.len() as f64 * 10.0).round() / 10.0)
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
    let topology = Arc::new(crate::topology::build(&values, &profile));
    if acs.topologies.wanted(device_id) {
        acs.topologies.offer(
            device_id,
            FreshTopology {
                collected_ms: now_ms,
                profile: profile.name.clone(),
                topology: topology.clone(),
            },
        );
    }
    let signals: Vec<f64> = topology
        .nodes
        .iter()
        .flat_map(|n| &n.clients)
        .chain(&topology.unplaced)
        .filter_map(|c| c.signal_quality.map(f64::from))
        .collect();
    let wifi = topology.totals.wifi_direct + topology.totals.wifi_via_mesh;
    let mut samples: Vec<(String, u64, f64)> = Vec::new();
    if !topology.nodes.is_empty() {
        samples.push((WIFI_CLIENTS.into(), now_ms, wifi as f64));
        if let Some(m) = mean(&signals) {
            samples.push((WIFI_SIGNAL.into(), now_ms, m));
        }
    }
    // And each node's own: how many clients it serves, how well they hear
    // it (a satellite in a bad spot shows here, not in the home's mean).
    for node in topology.nodes.iter().filter(|n| !n.mac.is_empty()) {
        let wireless: Vec<&crate::topology::Client> = node
            .clients
            .iter()
            .filter(|c| c.connection.is_wifi())
            .collect();
        samples.push((
            node_metric(WIFI_CLIENTS, &node.mac),
            now_ms,
            wireless.len() as f64,
        ));
        let signals: Vec<f64> = wireless
            .iter()
            .filter_map(|c| c.signal_quality.map(f64::from))
            .collect();
        if let Some(m) = mean(&signals) {
            samples.push((node_metric(WIFI_SIGNAL, &node.mac), now_ms, m));
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
                samples.push((m.into(), now_ms, v));
            }
        }
    }
    let samples: Vec<(&str, u64, f64)> = samples
        .iter()
        .map(|(m, at, v)| (m.as_str(), *at, *v))
        .collect();
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
    let Some(interval_ms) = periodic_interval_ms(acs) else {
        return Ok(Vec::new());
    };
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

/// The periodic interval devices keep because the ACS sets it
/// (`provision_periodic_interval_s`, with provisioning on). `None` when
/// the ACS leaves each device its own: silence and missed Informs are
/// then not judged, rather than judged against an interval a device
/// never had (one informing daily would be "silent" all day).
pub fn periodic_interval_ms(acs: &Acs) -> Option<u64> {
    let s = acs.config.provision_periodic_interval_s?;
    acs.config.provisioning.then(|| u64::from(s.max(60)) * 1000)
}

/// What an accepted Inform leaves: a reboot and the periodic Informs
/// missed since the last one (`previous_ms`) in the history, and the
/// alarm rows of [`alarms::at_inform`] (already noted on the record the
/// Inform writes); their events.
pub fn record_inform(
    acs: &Acs,
    device_id: &str,
    booted: bool,
    previous_ms: Option<u64>,
    changes: Changes,
    now_ms: u64,
) -> StoreResult<Vec<NewEvent>> {
    let mut readings = Vec::new();
    if booted {
        readings.push((REBOOTS, now_ms, 1.0));
    }
    let missed =
        periodic_interval_ms(acs).map_or(0, |i| alarms::informs_missed(previous_ms, now_ms, i));
    if missed > 0 {
        readings.push((INFORMS_MISSED, now_ms, missed as f64));
    }
    if !readings.is_empty() {
        record(acs, device_id, &readings, now_ms)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inform_records_its_boot_and_the_informs_missed_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let (acs, store) = super::super::test_acs(dir.path(), |c| {
            c.provision_periodic_interval_s = Some(300);
        });
        let t0 = 1_800_000_000_000u64;
        let i = 300_000;
        record_inform(&acs, "D", true, None, Changes::default(), t0).unwrap();
        record_inform(&acs, "D", false, Some(t0), Changes::default(), t0 + i).unwrap();
        // Four intervals of silence: three Informs missed.
        record_inform(
            &acs,
            "D",
            false,
            Some(t0 + i),
            Changes::default(),
            t0 + 5 * i,
        )
        .unwrap();
        let read = |m| history::read(store.as_ref(), "D", m, 0, 100).unwrap();
        let missed = read(INFORMS_MISSED);
        assert_eq!(missed.len(), 1);
        assert_eq!((missed[0].at_ms, missed[0].value), (t0 + 5 * i, 3.0));
        assert_eq!(read(REBOOTS).len(), 1);

        // An ACS that leaves each device its own interval judges none.
        let dir = tempfile::tempdir().unwrap();
        let (acs, store) = super::super::test_acs(dir.path(), |c| {
            c.provision_periodic_interval_s = None;
        });
        record_inform(&acs, "D", false, Some(t0), Changes::default(), t0 + 50 * i).unwrap();
        assert!(
            history::read(store.as_ref(), "D", INFORMS_MISSED, 0, 10)
                .unwrap()
                .is_empty()
        );
        assert!(silence_pass(&acs, t0).unwrap().is_empty());
    }
}
