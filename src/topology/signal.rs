//! Signal strength: RCPI ↔ dBm, the 0–100 % quality scale, and reading the
//! signal columns of client tables whatever unit they are in.

use crate::provision::profile::SignalUnit;

use super::params::parse_number;

/// Lowest dBm of the quality scale (0 %).
const QUALITY_FLOOR_DBM: f64 = -90.0;
/// dBm from which quality is 100 %.
const QUALITY_CEILING_DBM: f64 = -40.0;

/// Signal quality in percent from a received signal in dBm: linear from
/// −90 dBm (0 %) to −40 dBm (100 %), clamped; each 1 dB is 2 %.
///
/// Why these ends: −90 dBm is below the receive sensitivity 802.11 requires
/// for its most robust rate (−82 dBm for MCS 0 at 20 MHz) even with a good
/// receiver's margin, so a client there has no usable link; −40 dBm is a
/// few dB above the sensitivity 802.11ax requires for its fastest rate
/// (−46 dBm for MCS 11, 1024-QAM, at 20 MHz), so a stronger signal cannot
/// buy more throughput. The usual field thresholds land where an operator
/// expects: −67 dBm ("good for voice/video") is 46 %, −75 dBm is 30 %,
/// −80 dBm ("poor") is 20 %. Not finite → 0.
pub fn signal_quality(dbm: f64) -> u8 {
    if !dbm.is_finite() {
        return 0;
    }
    let span = QUALITY_CEILING_DBM - QUALITY_FLOOR_DBM;
    let pct = ((dbm - QUALITY_FLOOR_DBM) / span * 100.0).clamp(0.0, 100.0);
    pct.round() as u8
}

/// IEEE 802.11 RCPI (0–255) → dBm: RCPI / 2 − 110. 0 means "below
/// −109.5 dBm" and reads as −110.0; 220 is ≥ 0 dBm (0.0); 221–254 are
/// reserved and 255 is "not available": `None`.
pub fn rcpi_to_dbm(rcpi: u32) -> Option<f64> {
    match rcpi {
        0 => Some(-110.0),
        1..=220 => Some(f64::from(rcpi) / 2.0 - 110.0),
        _ => None,
    }
}

/// A dBm reading as client tables give it (TR-181 `SignalStrength` is an
/// int −200..0). 0 and positive values are not signals a station can have
/// (the XX230v reports 0 for "not measured"): `None`.
pub(crate) fn dbm_reading(raw: &str) -> Option<f64> {
    parse_number(raw).filter(|v| (-200.0..0.0).contains(v))
}

/// An RCPI reading. 0 is treated as "not measured" (an associated station
/// below −109.5 dBm does not exist; TP-Link writes 0 for unmeasured links),
/// 221–255 and fractions are unknown. A negative number cannot be RCPI and
/// is taken as the dBm it obviously is.
pub(crate) fn rcpi_reading(raw: &str) -> Option<f64> {
    let v = parse_number(raw)?;
    if v < 0.0 {
        return dbm_reading(raw);
    }
    if v.fract() != 0.0 || v > 255.0 || v == 0.0 {
        return None;
    }
    rcpi_to_dbm(v as u32)
}

/// A reading in `unit`; the flag says whether the device measured it in
/// dBm (more precise than RCPI's 0.5 dB steps, and the preferred source).
pub(crate) fn reading(raw: &str, unit: SignalUnit) -> Option<(f64, bool)> {
    match unit {
        SignalUnit::Dbm => dbm_reading(raw).map(|v| (v, true)),
        SignalUnit::Rcpi => {
            let native = parse_number(raw).is_some_and(|v| v < 0.0);
            rcpi_reading(raw).map(|v| (v, native))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rcpi_edges() {
        assert_eq!(rcpi_to_dbm(0), Some(-110.0));
        assert_eq!(rcpi_to_dbm(1), Some(-109.5));
        assert_eq!(rcpi_to_dbm(220), Some(0.0));
        assert_eq!(rcpi_to_dbm(221), None);
        assert_eq!(rcpi_to_dbm(254), None);
        assert_eq!(rcpi_to_dbm(255), None);
        assert_eq!(rcpi_to_dbm(u32::MAX), None);
        // The EX220 export: the station reading -34 dBm under AccessPoint
        // reads 152 under MultiAP; the 5 GHz one -55 dBm and 110.
        assert_eq!(rcpi_to_dbm(152), Some(-34.0));
        assert_eq!(rcpi_to_dbm(110), Some(-55.0));
    }

    #[test]
    fn readings_tolerate_junk() {
        assert_eq!(rcpi_reading("152"), Some(-34.0));
        assert_eq!(rcpi_reading(" 152 "), Some(-34.0));
        assert_eq!(rcpi_reading("0"), None);
        assert_eq!(rcpi_reading("255"), None);
        assert_eq!(rcpi_reading("221"), None);
        assert_eq!(rcpi_reading("300"), None);
        assert_eq!(rcpi_reading("152.5"), None);
        assert_eq!(rcpi_reading("-61"), Some(-61.0));
        assert_eq!(rcpi_reading("strong"), None);
        assert_eq!(dbm_reading("-34"), Some(-34.0));
        assert_eq!(dbm_reading("0"), None);
        assert_eq!(dbm_reading("12"), None);
        assert_eq!(dbm_reading("-250"), None);
        assert_eq!(dbm_reading(""), None);
        assert_eq!(reading("-55", SignalUnit::Dbm), Some((-55.0, true)));
        assert_eq!(reading("110", SignalUnit::Rcpi), Some((-55.0, false)));
        assert_eq!(reading("-55", SignalUnit::Rcpi), Some((-55.0, true)));
    }

    #[test]
    fn quality_scale() {
        assert_eq!(signal_quality(-90.0), 0);
        assert_eq!(signal_quality(-100.0), 0);
        assert_eq!(signal_quality(-110.0), 0);
        assert_eq!(signal_quality(-40.0), 100);
        assert_eq!(signal_quality(-20.0), 100);
        assert_eq!(signal_quality(0.0), 100);
        assert_eq!(signal_quality(-65.0), 50);
        assert_eq!(signal_quality(-67.0), 46);
        assert_eq!(signal_quality(-80.0), 20);
        assert_eq!(signal_quality(-34.0), 100);
        assert_eq!(signal_quality(-55.0), 70);
        assert_eq!(signal_quality(-64.5), 51);
        assert_eq!(signal_quality(f64::NAN), 0);
        assert_eq!(signal_quality(f64::INFINITY), 0);
    }
}
