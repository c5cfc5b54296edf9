//! Alarm rules, pure: which alarms a device's readings call for, and what
//! to raise and clear given what is open. Alarms clear themselves: a
//! reading back inside its limit (by a margin, so a value hovering at the
//! limit does not flap) clears the alarm it had raised.

use crate::store::{AlarmRecord, DeviceRecord, ProvisionStatus};

/// Received optical power below its limit.
pub const OPTICAL_RX_LOW: &str = "optical_rx_low";
/// Received optical power above its limit (overload).
pub const OPTICAL_RX_HIGH: &str = "optical_rx_high";
/// The device booted too often within an hour (see [`AlarmRules`]).
pub const BOOT_LOOP: &str = "boot_loop";
/// The device has not informed for a few periodic intervals.
pub const SILENT: &str = "silent";
/// Provisioning failed several times in a row.
pub const PROVISIONING_FAILED: &str = "provisioning_failed";

pub mod rules;
pub use rules::{AlarmRules, OpticalClass, OpticalLimits, RulesError};

/// An alarm a reading calls for.
#[derive(Clone, Debug, PartialEq)]
pub struct Wanted {
    pub kind: &'static str,
    pub value: f64,
    pub threshold: f64,
}

/// What one evaluation decided.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    pub raise: Vec<AlarmRecord>,
    pub clear: Vec<AlarmRecord>,
}

/// Evaluates received optical power against `limits`, given the alarms
/// open on the device; a reading must come back `hysteresis_db` inside a
/// limit to clear its alarm. No reading (the link is down, or the device
/// did not report one) decides nothing.
pub fn optical(
    device_id: &str,
    rx_dbm: Option<f64>,
    limits: OpticalLimits,
    hysteresis_db: f64,
    open: &[AlarmRecord],
    now_ms: u64,
) -> Changes {
    let Some(rx) = rx_dbm else {
        return Changes::default();
    };
    let is_open = |kind: &str| open.iter().find(|a| a.kind == kind);
    let mut changes = Changes::default();
    let rules = [
        (
            OPTICAL_RX_LOW,
            rx < limits.rx_min_dbm,
            rx >= limits.rx_min_dbm + hysteresis_db,
            limits.rx_min_dbm,
        ),
        (
            OPTICAL_RX_HIGH,
            rx > limits.rx_max_dbm,
            rx <= limits.rx_max_dbm - hysteresis_db,
            limits.rx_max_dbm,
        ),
    ];
    for (kind, crossed, back, threshold) in rules {
        match (is_open(kind), crossed, back) {
            (None, true, _) => changes.raise.push(AlarmRecord {
                device_id: device_id.to_owned(),
                kind: kind.to_owned(),
                raised_ms: now_ms,
                value: Some(rx),
                threshold: Some(threshold),
            }),
            (Some(a), _, true) => changes.clear.push(a.clone()),
            _ => {}
        }
    }
    changes
}

fn raise(device: &DeviceRecord, kind: &str, now_ms: u64, value: Option<f64>) -> AlarmRecord {
    AlarmRecord {
        device_id: device.id.clone(),
        kind: kind.to_owned(),
        raised_ms: now_ms,
        value,
        threshold: None,
    }
}

fn clear(device: &DeviceRecord, kind: &str) -> AlarmRecord {
    AlarmRecord {
        device_id: device.id.clone(),
        kind: kind.to_owned(),
        raised_ms: 0,
        value: None,
        threshold: None,
    }
}

/// What an accepted Inform (already applied to `device`) decides: it ends
/// a silence; a boot that makes the rules' count within their window
/// raises a boot loop, and an Inform with no boot in the window clears it.
/// Checks the record only: free on the periodic path.
pub fn at_inform(device: &DeviceRecord, rules: &AlarmRules, now_ms: u64) -> Changes {
    let mut c = Changes::default();
    let open = |kind: &str| device.alarms.iter().any(|a| a == kind);
    if open(SILENT) {
        c.clear.push(clear(device, SILENT));
    }
    let boots = device
        .recent_events
        .iter()
        .filter(|e| {
            e.code == "1 BOOT" && now_ms.saturating_sub(e.at_ms) <= rules.boot_loop_window_ms
        })
        .count();
    match (open(BOOT_LOOP), boots >= rules.boot_loop_boots, boots == 0) {
        (false, true, _) => c
            .raise
            .push(raise(device, BOOT_LOOP, now_ms, Some(boots as f64))),
        (true, _, true) => c.clear.push(clear(device, BOOT_LOOP)),
        _ => {}
    }
    c
}

/// Provisioning that failed the rules' count of times in a row raises an
/// alarm; provisioning that succeeds clears it.
pub fn provisioning(device: &DeviceRecord, rules: &AlarmRules, now_ms: u64) -> Changes {
    let mut c = Changes::default();
    let p = &device.provisioning;
    let open = device.alarms.iter().any(|a| a == PROVISIONING_FAILED);
    let failing = p.status == ProvisionStatus::Fault && p.attempts >= rules.provisioning_failures;
    match (open, failing, p.status == ProvisionStatus::Provisioned) {
        (false, true, _) => c.raise.push(raise(
            device,
            PROVISIONING_FAILED,
            now_ms,
            Some(f64::from(p.attempts)),
        )),
        (true, _, true) => c.clear.push(clear(device, PROVISIONING_FAILED)),
        _ => {}
    }
    c
}

/// A device that has not informed for the rules' count of periodic
/// intervals (`interval_ms`) is silent (cleared by its next Inform, see
/// [`at_inform`]).
pub fn silent(device: &DeviceRecord, rules: &AlarmRules, interval_ms: u64, now_ms: u64) -> Changes {
    let mut c = Changes::default();
    let quiet = now_ms.saturating_sub(device.last_inform_ms) > rules.silent_intervals * interval_ms;
    if quiet && !device.alarms.iter().any(|a| a == SILENT) {
        c.raise.push(raise(device, SILENT, now_ms, None));
    }
    c
}

/// Periodic Informs a device missed between its Inform at `previous_ms`
/// and this one: the whole intervals in between, with a tenth of an
/// interval of slack for a clock's jitter (an Inform early after a
/// reboot misses nothing). None before a first contact.
pub fn informs_missed(previous_ms: Option<u64>, now_ms: u64, interval_ms: u64) -> u64 {
    let Some(previous) = previous_ms else {
        return 0;
    };
    let gap = now_ms.saturating_sub(previous);
    (gap + interval_ms / 10)
        .checked_div(interval_ms)
        .unwrap_or(0)
        .saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(kind: &str) -> AlarmRecord {
        AlarmRecord {
            device_id: "D".into(),
            kind: kind.into(),
            raised_ms: 1,
            value: Some(-30.0),
            threshold: Some(-27.0),
        }
    }

    #[test]
    fn low_and_high_power_raise_and_clear_with_a_margin() {
        let l = AlarmRules::builtin().classes["gpon-b+"].limits;
        let c = optical("D", Some(-30.2), l, 0.5, &[], 9);
        assert_eq!(c.raise.len(), 1);
        assert_eq!(c.raise[0].kind, OPTICAL_RX_LOW);
        assert_eq!(
            (c.raise[0].value, c.raise[0].threshold, c.raise[0].raised_ms),
            (Some(-30.2), Some(-27.0), 9)
        );
        // Open already: not raised twice; hovering just inside: not cleared.
        let low = [open(OPTICAL_RX_LOW)];
        assert_eq!(
            optical("D", Some(-29.0), l, 0.5, &low, 10),
            Changes::default()
        );
        assert_eq!(
            optical("D", Some(-26.8), l, 0.5, &low, 10),
            Changes::default()
        );
        // Back by the margin: cleared.
        let c = optical("D", Some(-26.4), l, 0.5, &low, 10);
        assert_eq!((c.raise.len(), c.clear.len()), (0, 1));
        // Overload.
        let c = optical("D", Some(-2.5), l, 0.5, &[], 10);
        assert_eq!(c.raise[0].kind, OPTICAL_RX_HIGH);
        let c = optical("D", Some(-9.0), l, 0.5, &[open(OPTICAL_RX_HIGH)], 10);
        assert_eq!(c.clear.len(), 1);
        // No reading decides nothing.
        assert_eq!(optical("D", None, l, 0.5, &low, 10), Changes::default());
        // Normal power, nothing open: nothing.
        assert_eq!(
            optical("D", Some(-19.0), l, 0.5, &[], 10),
            Changes::default()
        );
    }

    fn device() -> DeviceRecord {
        DeviceRecord::new(
            "D".into(),
            crate::cwmp::rpc::DeviceIdStruct::default(),
            crate::cwmp::CwmpVersion::V1_0,
            0,
        )
    }

    fn boot(at_ms: u64) -> crate::store::EventRecord {
        crate::store::EventRecord::new("1 BOOT", "", at_ms)
    }

    #[test]
    fn missed_informs_are_the_whole_intervals_between_two() {
        let i = 300_000;
        assert_eq!(informs_missed(None, 10 * i, i), 0);
        assert_eq!(informs_missed(Some(0), i, i), 0);
        assert_eq!(informs_missed(Some(0), i / 3, i), 0, "early after a reboot");
        assert_eq!(informs_missed(Some(0), 18 * i / 10, i), 0);
        assert_eq!(informs_missed(Some(0), 2 * i - 5_000, i), 1, "jitter");
        assert_eq!(informs_missed(Some(0), 2 * i, i), 1);
        assert_eq!(informs_missed(Some(0), 7 * i + 1_000, i), 6);
        assert_eq!(informs_missed(Some(5 * i), 0, i), 0, "a clock going back");
        assert_eq!(informs_missed(Some(0), 10 * i, 0), 0);
    }

    #[test]
    fn boot_loops_silence_and_failed_provisioning() {
        let mut d = device();
        let r = AlarmRules::builtin();
        let hour = r.boot_loop_window_ms;
        d.recent_events = vec![boot(10 * hour), boot(10 * hour + 60_000)];
        assert_eq!(at_inform(&d, &r, 10 * hour + 120_000), Changes::default());
        d.recent_events.push(boot(10 * hour + 120_000));
        let c = at_inform(&d, &r, 10 * hour + 120_000);
        assert_eq!(c.raise.len(), 1);
        assert_eq!(
            (c.raise[0].kind.as_str(), c.raise[0].value),
            (BOOT_LOOP, Some(3.0))
        );
        d.alarms.push(BOOT_LOOP.into());
        // Still booting within the hour: stays open; an hour without a
        // boot: cleared.
        assert_eq!(at_inform(&d, &r, 10 * hour + 600_000), Changes::default());
        let c = at_inform(&d, &r, 12 * hour);
        assert_eq!(c.clear.len(), 1);
        // Boots spread over days are no loop.
        let mut d = device();
        d.recent_events = vec![boot(0), boot(2 * hour), boot(4 * hour)];
        assert_eq!(at_inform(&d, &r, 4 * hour), Changes::default());

        // Silence: three intervals without an Inform.
        let mut d = device();
        d.last_inform_ms = 1_000;
        assert_eq!(silent(&d, &r, 300_000, 900_000), Changes::default());
        let c = silent(&d, &r, 300_000, 1_000_000);
        assert_eq!(c.raise[0].kind, SILENT);
        d.alarms.push(SILENT.into());
        assert_eq!(
            silent(&d, &r, 300_000, 2_000_000),
            Changes::default(),
            "raised once"
        );
        assert_eq!(at_inform(&d, &r, 2_000_000).clear[0].kind, SILENT);

        // Provisioning failing three times in a row, then succeeding.
        let mut d = device();
        d.provisioning.status = ProvisionStatus::Fault;
        d.provisioning.attempts = 2;
        assert_eq!(provisioning(&d, &r, 5), Changes::default());
        d.provisioning.attempts = 3;
        assert_eq!(provisioning(&d, &r, 5).raise[0].kind, PROVISIONING_FAILED);
        d.alarms.push(PROVISIONING_FAILED.into());
        assert_eq!(provisioning(&d, &r, 6), Changes::default());
        d.provisioning.status = ProvisionStatus::Provisioned;
        assert_eq!(provisioning(&d, &r, 7).clear.len(), 1);
    }
}
