//! What the ACS keeps of the readings it takes: after a device's host
//! tables and ONT diagnostics were read, its optical power goes into its
//! history and the alarm rules ([`crate::alarms`]) run; alarms raised or
//! cleared become events (API stream, webhooks, other nodes).

use std::collections::BTreeMap;

use serde_json::json;

use super::Acs;
use crate::alarms::{self, Changes};
use crate::events::{EventKind, NewEvent};
use crate::store::{AlarmRecord, StoreResult};

/// Received optical power, dBm.
pub const OPTICAL_RX: &str = "optical_rx_dbm";
/// Transmitted optical power, dBm.
pub const OPTICAL_TX: &str = "optical_tx_dbm";
/// The metrics a device's history may hold.
pub const METRICS: [&str; 2] = [OPTICAL_RX, OPTICAL_TX];

/// Records a device's fresh readings and applies the alarm rules; the
/// events to publish once durable.
pub fn after_collection(acs: &Acs, device_id: &str, now_ms: u64) -> StoreResult<Vec<NewEvent>> {
    let store = acs.store.as_ref();
    let Some(device) = store.device(device_id)? else {
        return Ok(Vec::new());
    };
    let values: BTreeMap<String, String> = store
        .parameters(device_id, "")?
        .into_iter()
        .filter_map(|(name, p)| p.value.map(|v| (name, v.value)))
        .collect();
    let Some((profile, _)) =
        acs.provisioning
            .effective_profile(store, &acs.catalog, &device, &values)?
    else {
        return Ok(Vec::new());
    };
    let Some(optical) = crate::topology::diagnostics(&values, &profile).optical else {
        return Ok(Vec::new());
    };
    let samples: Vec<(&str, u64, f64)> =
        [(OPTICAL_RX, optical.rx_dbm), (OPTICAL_TX, optical.tx_dbm)]
            .into_iter()
            .filter_map(|(m, v)| v.map(|v| (m, now_ms, v)))
            .collect();
    store.put_samples(device_id, &samples)?;
    let open = store.alarms(Some(device_id))?;
    let changes = alarms::optical(
        device_id,
        optical.rx_dbm,
        acs.config.optical_limits,
        &open,
        now_ms,
    );
    apply(acs, changes)
}

/// Stores alarm changes; their events.
fn apply(acs: &Acs, changes: Changes) -> StoreResult<Vec<NewEvent>> {
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
