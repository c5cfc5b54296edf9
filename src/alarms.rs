//! Alarm rules, pure: which alarms a device's readings call for, and what
//! to raise and clear given what is open. Alarms clear themselves: a
//! reading back inside its limit (by a margin, so a value hovering at the
//! limit does not flap) clears the alarm it had raised.

use crate::store::AlarmRecord;

/// Received optical power below its limit.
pub const OPTICAL_RX_LOW: &str = "optical_rx_low";
/// Received optical power above its limit (overload).
pub const OPTICAL_RX_HIGH: &str = "optical_rx_high";
/// How far back inside the limit a reading must come to clear an alarm.
pub const HYSTERESIS_DB: f64 = 0.5;

/// The limits of received optical power, dBm (GPON class B+: −27 / −8).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OpticalLimits {
    pub rx_min_dbm: f64,
    pub rx_max_dbm: f64,
}

impl Default for OpticalLimits {
    fn default() -> Self {
        OpticalLimits {
            rx_min_dbm: -27.0,
            rx_max_dbm: -8.0,
        }
    }
}

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
/// open on the device. No reading (the link is down, or the device did
/// not report one) decides nothing.
pub fn optical(
    device_id: &str,
    rx_dbm: Option<f64>,
    limits: OpticalLimits,
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
            rx >= limits.rx_min_dbm + HYSTERESIS_DB,
            limits.rx_min_dbm,
        ),
        (
            OPTICAL_RX_HIGH,
            rx > limits.rx_max_dbm,
            rx <= limits.rx_max_dbm - HYSTERESIS_DB,
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
        let l = OpticalLimits::default();
        let c = optical("D", Some(-30.2), l, &[], 9);
        assert_eq!(c.raise.len(), 1);
        assert_eq!(c.raise[0].kind, OPTICAL_RX_LOW);
        assert_eq!(
            (c.raise[0].value, c.raise[0].threshold, c.raise[0].raised_ms),
            (Some(-30.2), Some(-27.0), 9)
        );
        // Open already: not raised twice; hovering just inside: not cleared.
        let low = [open(OPTICAL_RX_LOW)];
        assert_eq!(optical("D", Some(-29.0), l, &low, 10), Changes::default());
        assert_eq!(optical("D", Some(-26.8), l, &low, 10), Changes::default());
        // Back by the margin: cleared.
        let c = optical("D", Some(-26.4), l, &low, 10);
        assert_eq!((c.raise.len(), c.clear.len()), (0, 1));
        // Overload.
        let c = optical("D", Some(-2.5), l, &[], 10);
        assert_eq!(c.raise[0].kind, OPTICAL_RX_HIGH);
        let c = optical("D", Some(-9.0), l, &[open(OPTICAL_RX_HIGH)], 10);
        assert_eq!(c.clear.len(), 1);
        // No reading decides nothing.
        assert_eq!(optical("D", None, l, &low, 10), Changes::default());
        // Normal power, nothing open: nothing.
        assert_eq!(optical("D", Some(-19.0), l, &[], 10), Changes::default());
    }
}
