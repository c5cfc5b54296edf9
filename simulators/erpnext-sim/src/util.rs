//! Small helpers shared by the other modules: Frappe-style timestamps, a
//! seedable PRNG, percent-decoding, and an ordered JSON value so response
//! bodies keep the key order Frappe produces (serde_json's `Map` sorts keys
//! unless `preserve_order` is enabled, which would leak into the whole
//! workspace through feature unification).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

/// Microseconds since the Unix epoch, now.
pub fn unix_micros_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let y = if m <= 2 { y + 1 } else { y };
    (y, m as u32, d as u32)
}

/// Formats a timestamp the way Frappe serialises a `datetime` (Python's
/// `str(datetime)`): `2024-05-01 12:00:00.123456`, and without the
/// fraction when the microseconds are zero.
pub fn format_frappe_datetime(unix_micros: i64) -> String {
    let secs = unix_micros.div_euclid(1_000_000);
    let micros = unix_micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    let (hh, mm, ss) = (sod / 3600, sod % 3600 / 60, sod % 60);
    if micros == 0 {
        format!("{y:04}-{mo:02}-{d:02} {hh:02}:{mm:02}:{ss:02}")
    } else {
        format!("{y:04}-{mo:02}-{d:02} {hh:02}:{mm:02}:{ss:02}.{micros:06}")
    }
}

/// Today's date (UTC) as `YYYY-MM-DD`.
pub fn today() -> String {
    let secs = unix_micros_now().div_euclid(1_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

fn digits(s: &str, n: usize) -> Option<u32> {
    if s.len() == n && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// Parses `YYYY-MM-DD[( |T)HH:MM[:SS[.f…]]]` into the canonical
/// `YYYY-MM-DD HH:MM:SS.ffffff` form, so datetimes compare correctly as
/// strings (MariaDB compares a DATETIME column with a string literal by
/// converting the literal). A date alone is midnight; `end_of_day` makes it
/// 23:59:59.999999 instead (Frappe's `between` upper bound).
pub fn normalize_datetime(s: &str, end_of_day: bool) -> Option<String> {
    let s = s.trim();
    let (date, time) = match s.find([' ', 'T']) {
        Some(i) => (&s[..i], Some(s[i + 1..].trim())),
        None => (s, None),
    };
    let mut dparts = date.split('-');
    let y = digits(dparts.next()?, 4)?;
    let mo = digits(dparts.next()?, 2)?;
    let d = digits(dparts.next()?, 2)?;
    if dparts.next().is_some() || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let (hh, mi, ss, frac) = match time {
        None | Some("") => {
            if end_of_day {
                (23, 59, 59, "999999".to_string())
            } else {
                (0, 0, 0, "000000".to_string())
            }
        }
        Some(t) => {
            let (hms, frac) = match t.split_once('.') {
                Some((hms, f)) => (hms, f),
                None => (t, ""),
            };
            if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let mut tparts = hms.split(':');
            let hh = digits(tparts.next()?, 2)?;
            let mi = digits(tparts.next()?, 2)?;
            let ss = match tparts.next() {
                Some(p) => digits(p, 2)?,
                None => 0,
            };
            if tparts.next().is_some() || hh > 23 || mi > 59 || ss > 59 {
                return None;
            }
            (hh, mi, ss, format!("{frac:0<6}"))
        }
    };
    Some(format!(
        "{y:04}-{mo:02}-{d:02} {hh:02}:{mi:02}:{ss:02}.{frac}"
    ))
}

/// SplitMix64: tiny, seedable, good enough for fault injection.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn from_entropy() -> Rng {
        Rng::new(entropy_seed())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p` (p <= 0 never, p >= 1 always).
    pub fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            false
        } else if p >= 1.0 {
            true
        } else {
            self.next_f64() < p
        }
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn entropy_seed() -> u64 {
    let t = unix_micros_now() as u64;
    mix(t ^ (u64::from(std::process::id()) << 32))
}

static GLOBAL_RNG: AtomicU64 = AtomicU64::new(0);

/// `len` random lowercase hex characters (for `__frappe_exc_id`).
pub fn random_hex(len: usize) -> String {
    let _ =
        GLOBAL_RNG.compare_exchange(0, entropy_seed() | 1, Ordering::Relaxed, Ordering::Relaxed);
    let mut out = String::with_capacity(len + 16);
    while out.len() < len {
        let v = GLOBAL_RNG.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        out.push_str(&format!("{:016x}", mix(v)));
    }
    out.truncate(len);
    out
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `s`; invalid escapes are kept literally and invalid UTF-8
/// is replaced. With `plus_as_space` (query strings, form bodies) `+` is a
/// space; in paths it is a literal plus.
pub fn percent_decode(s: &str, plus_as_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        if b == b'+' && plus_as_space {
            out.push(b' ');
        } else {
            out.push(b);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `a=1&b=2` into pairs, in order (duplicates kept).
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k, true), percent_decode(v, true)),
            None => (percent_decode(p, true), String::new()),
        })
        .collect()
}

/// A JSON value whose objects keep their key order when serialised.
#[derive(Debug, Clone, PartialEq)]
pub enum J {
    V(Value),
    O(Vec<(String, J)>),
    A(Vec<J>),
}

impl J {
    pub fn obj<K: Into<String>>(pairs: Vec<(K, J)>) -> J {
        J::O(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    pub fn str<S: Into<String>>(s: S) -> J {
        J::V(Value::String(s.into()))
    }

    /// Compact JSON text (like Frappe's orjson output).
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "null".to_string())
    }
}

impl From<Value> for J {
    fn from(v: Value) -> J {
        J::V(v)
    }
}

impl Serialize for J {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            J::V(v) => v.serialize(s),
            J::O(pairs) => {
                let mut m = s.serialize_map(Some(pairs.len()))?;
                for (k, v) in pairs {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
            J::A(items) => {
                let mut q = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    q.serialize_element(i)?;
                }
                q.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_format_like_python() {
        // 2024-05-01 12:00:00 UTC
        let base = 1_714_564_800_i64 * 1_000_000;
        assert_eq!(format_frappe_datetime(base), "2024-05-01 12:00:00");
        assert_eq!(
            format_frappe_datetime(base + 123_456),
            "2024-05-01 12:00:00.123456"
        );
        assert_eq!(format_frappe_datetime(0), "1970-01-01 00:00:00");
        assert_eq!(
            format_frappe_datetime(951_782_400 * 1_000_000 + 1),
            "2000-02-29 00:00:00.000001"
        );
    }

    #[test]
    fn normalizes_datetimes() {
        assert_eq!(
            normalize_datetime("2024-05-01", false).as_deref(),
            Some("2024-05-01 00:00:00.000000")
        );
        assert_eq!(
            normalize_datetime("2024-05-01", true).as_deref(),
            Some("2024-05-01 23:59:59.999999")
        );
        assert_eq!(
            normalize_datetime("2024-05-01 12:00:00.5", false).as_deref(),
            Some("2024-05-01 12:00:00.500000")
        );
        assert_eq!(
            normalize_datetime("2024-05-01T12:34", false).as_deref(),
            Some("2024-05-01 12:34:00.000000")
        );
        assert_eq!(normalize_datetime("2024-13-01", false), None);
        assert_eq!(normalize_datetime("yesterday", false), None);
        assert_eq!(normalize_datetime("2024-05-01 25:00:00", false), None);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(
            percent_decode("Service%20Equipment", false),
            "Service Equipment"
        );
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_decode("a+b", true), "a b");
        assert_eq!(percent_decode("EQ%2F1", false), "EQ/1");
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("%zz%4", false), "%zz%4");
        assert_eq!(percent_decode("D%C3%A9codeur", false), "Décodeur");
        let q = parse_query("a=1&b=%5B%22x%22%5D&a=2&flag&c=x+y");
        assert_eq!(q[0], ("a".into(), "1".into()));
        assert_eq!(q[1], ("b".into(), "[\"x\"]".into()));
        assert_eq!(q[3], ("flag".into(), String::new()));
        assert_eq!(q[4], ("c".into(), "x y".into()));
    }

    #[test]
    fn ordered_json_keeps_order() {
        let j = J::obj(vec![
            ("z", J::str("1")),
            ("a", J::A(vec![J::V(Value::from(2))])),
        ]);
        assert_eq!(j.encode(), r#"{"z":"1","a":[2]}"#);
    }

    #[test]
    fn rng_is_deterministic_and_bounded() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for _ in 0..100 {
            let x = a.next_f64();
            assert_eq!(x, b.next_f64());
            assert!((0.0..1.0).contains(&x));
        }
        assert!(!a.chance(0.0));
        assert!(a.chance(1.0));
        assert_eq!(random_hex(56).len(), 56);
    }
}
