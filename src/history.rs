//! A device's history: one compact record per device and metric holding
//! its whole retained series, thinned as it ages.
//!
//! Why one record per series rather than one per reading: at a million
//! devices read once an hour, one row per reading is 1.4 billion rows for
//! 30 days of two metrics, and thinning them means rescanning the whole
//! table. A series record is rewritten when its device is read (the
//! device's session holds it, so nobody else writes it meanwhile), and the
//! rewrite is where old readings are thinned and expired: nothing scans
//! the table, and a series never exceeds [`MAX_POINTS`] points (a few
//! bytes each, see [`encode`]).
//!
//! Numeric series (optical power, WiFi clients...) keep every reading for
//! [`DETAIL_MS`], then one per [`BUCKET_MS`] (their mean, or their sum for
//! counts). Text series (the WAN addresses) keep one entry per change.
//! The codec and the thinning are pure; [`record`], [`record_text`],
//! [`read`] and [`read_text`] are the only functions touching the store.

use crate::store::{Store, StoreResult};

/// Readings younger than this are kept as they came.
pub const DETAIL_MS: u64 = 48 * 3_600_000;
/// Older readings are thinned to one per bucket of this length.
pub const BUCKET_MS: u64 = 6 * 3_600_000;
/// A numeric series never holds more points (the oldest go first): a
/// device read every five minutes still fits.
pub const MAX_POINTS: usize = 1024;
/// A text series never holds more entries.
pub const MAX_CHANGES: usize = 64;
/// A text entry is cut to this many bytes.
pub const MAX_TEXT: usize = 512;

const NUMERIC: u8 = 3;
const TEXT: u8 = 2;

/// How a bucket's readings become one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Combine {
    /// A level (power, clients): their mean.
    Mean,
    /// A count (reboots): their sum.
    Sum,
}

/// One reading.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub at_ms: u64,
    pub value: f64,
}

/// One entry of a text series: the value it changed to, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub at_ms: u64,
    pub value: String,
}

/// A series record that does not decode (written by another version, or
/// damaged): it is replaced by the next reading, never fatal.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SeriesError {
    #[error("series record of {len} bytes is truncated")]
    Truncated { len: usize },
    #[error("series record has unknown format {0}")]
    UnknownFormat(u8),
}

/// Times are kept to the second: four bytes until 2106.
fn secs(at_ms: u64) -> u32 {
    u32::try_from(at_ms / 1000).unwrap_or(u32::MAX)
}

/// Values are kept to the thousandth (dBm to 0.001, a mean signal to
/// 0.001 %): far finer than any reading is accurate.
const SCALE: f64 = 1000.0;
/// Beyond this a value is clamped (no metric comes near).
const MAX_SCALED: f64 = 4.0e15;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

/// `[3] (Δseconds, Δthousandths)*` as zigzag varints, each relative to
/// the previous point (the first to zero). Readings a device repeats
/// hourly differ by a little: a point takes 2 to 4 bytes, a month of
/// hourly readings thinned as [`add`] does about 600.
pub fn encode(points: &[Point]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + points.len() * 4);
    out.push(NUMERIC);
    let (mut at, mut value) = (0i64, 0i64);
    for p in points {
        let secs = i64::from(secs(p.at_ms));
        let scaled = (p.value * SCALE).round().clamp(-MAX_SCALED, MAX_SCALED) as i64;
        put_varint(&mut out, zigzag(secs.wrapping_sub(at)));
        put_varint(&mut out, zigzag(scaled.wrapping_sub(value)));
        (at, value) = (secs, scaled);
    }
    out
}

pub fn decode(bytes: &[u8]) -> Result<Vec<Point>, SeriesError> {
    let rest = match bytes.split_first() {
        None => return Ok(Vec::new()),
        Some((&NUMERIC, rest)) => rest,
        Some((&other, _)) => return Err(SeriesError::UnknownFormat(other)),
    };
    let truncated = SeriesError::Truncated { len: bytes.len() };
    let (mut pos, mut at, mut value) = (0usize, 0i64, 0i64);
    let mut out = Vec::new();
    while pos < rest.len() {
        let d_at = get_varint(rest, &mut pos).ok_or(truncated.clone())?;
        let d_value = get_varint(rest, &mut pos).ok_or(truncated.clone())?;
        at = at.wrapping_add(unzigzag(d_at));
        value = value.wrapping_add(unzigzag(d_value));
        out.push(Point {
            at_ms: u64::try_from(at).unwrap_or(0).saturating_mul(1000),
            value: value as f64 / SCALE,
        });
    }
    Ok(out)
}

/// `[2] ([secs u32][len u16][utf-8])*`, big-endian.
pub fn encode_text(changes: &[Change]) -> Vec<u8> {
    let mut out = vec![TEXT];
    for c in changes {
        let v = cut(&c.value, MAX_TEXT);
        out.extend_from_slice(&secs(c.at_ms).to_be_bytes());
        out.extend_from_slice(&(v.len() as u16).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

pub fn decode_text(bytes: &[u8]) -> Result<Vec<Change>, SeriesError> {
    let truncated = SeriesError::Truncated { len: bytes.len() };
    let mut rest = match bytes.split_first() {
        None => return Ok(Vec::new()),
        Some((&TEXT, rest)) => rest,
        Some((&other, _)) => return Err(SeriesError::UnknownFormat(other)),
    };
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (head, tail) = rest.split_at_checked(6).ok_or(truncated.clone())?;
        let at = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let len = usize::from(u16::from_be_bytes([head[4], head[5]]));
        let (text, tail) = tail.split_at_checked(len).ok_or(truncated.clone())?;
        out.push(Change {
            at_ms: u64::from(at) * 1000,
            value: String::from_utf8_lossy(text).into_owned(),
        });
        rest = tail;
    }
    Ok(out)
}

/// The longest prefix of `s` of at most `max` bytes ending on a character.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Adds a reading to a series (oldest first) and ages it at `now_ms`:
/// drops what is older than `retention_ms`, thins every bucket that lies
/// wholly before the detail window to one point at the bucket's start,
/// and keeps at most [`MAX_POINTS`]. A reading in the same second as
/// another replaces it (a count adds to it). Thinning a whole bucket at once (never a part)
/// keeps its mean a mean of readings, not of earlier means.
pub fn add(points: &mut Vec<Point>, new: Point, now_ms: u64, retention_ms: u64, combine: Combine) {
    let new = Point {
        at_ms: new.at_ms / 1000 * 1000,
        ..new
    };
    match points.iter().rposition(|p| p.at_ms <= new.at_ms) {
        Some(i) if points[i].at_ms == new.at_ms && combine == Combine::Sum => {
            points[i].value += new.value
        }
        Some(i) if points[i].at_ms == new.at_ms => points[i] = new,
        Some(i) => points.insert(i + 1, new),
        None => points.insert(0, new),
    }
    age(points, now_ms, retention_ms, combine);
}

/// Expires and thins a series at `now_ms` (see [`add`]).
pub fn age(points: &mut Vec<Point>, now_ms: u64, retention_ms: u64, combine: Combine) {
    let oldest = now_ms.saturating_sub(retention_ms);
    points.retain(|p| p.at_ms >= oldest);
    // Buckets ending at or before this are thinned.
    let detail_from = now_ms.saturating_sub(DETAIL_MS);
    let mut out: Vec<Point> = Vec::with_capacity(points.len());
    let mut i = 0;
    while i < points.len() {
        let start = points[i].at_ms - points[i].at_ms % BUCKET_MS;
        if start + BUCKET_MS > detail_from {
            out.extend_from_slice(&points[i..]);
            break;
        }
        let n = points[i..]
            .iter()
            .take_while(|p| p.at_ms < start + BUCKET_MS)
            .count();
        let group = &points[i..i + n];
        let sum: f64 = group.iter().map(|p| p.value).sum();
        let value = match combine {
            Combine::Sum => sum,
            Combine::Mean => sum / n as f64,
        };
        out.push(Point {
            at_ms: start,
            value,
        });
        i += n;
    }
    let excess = out.len().saturating_sub(MAX_POINTS);
    out.drain(..excess);
    *points = out;
}

/// Adds `value` to a text series if it differs from the last entry, and
/// expires entries older than `retention_ms`, except the one still in
/// force at that time; `false` when nothing changed.
pub fn add_text(
    changes: &mut Vec<Change>,
    at_ms: u64,
    value: &str,
    now_ms: u64,
    retention_ms: u64,
) -> bool {
    let value = cut(value, MAX_TEXT);
    if changes.last().is_some_and(|c| c.value == value) {
        return false;
    }
    changes.push(Change {
        at_ms: at_ms / 1000 * 1000,
        value: value.to_owned(),
    });
    let oldest = now_ms.saturating_sub(retention_ms);
    let keep_from = changes
        .iter()
        .position(|c| c.at_ms >= oldest)
        .unwrap_or(changes.len())
        .saturating_sub(1)
        .max(changes.len().saturating_sub(MAX_CHANGES));
    changes.drain(..keep_from);
    true
}

fn decoded<T>(device_id: &str, metric: &str, r: Result<Vec<T>, SeriesError>) -> Vec<T> {
    r.unwrap_or_else(|e| {
        tracing::warn!(device = %device_id, metric, error = %e, "history record replaced");
        Vec::new()
    })
}

/// Records readings of one device, `(metric, time, value, combine)`.
pub fn record(
    store: &dyn Store,
    device_id: &str,
    readings: &[(&str, u64, f64, Combine)],
    now_ms: u64,
    retention_ms: u64,
) -> StoreResult<()> {
    for &(metric, at_ms, value, combine) in readings {
        if !value.is_finite() {
            continue;
        }
        let old = store.series(device_id, metric)?.unwrap_or_default();
        let mut points = decoded(device_id, metric, decode(&old));
        add(
            &mut points,
            Point { at_ms, value },
            now_ms,
            retention_ms,
            combine,
        );
        store.put_series(device_id, metric, &encode(&points))?;
    }
    Ok(())
}

/// Records the current value of a text series when it changed.
pub fn record_text(
    store: &dyn Store,
    device_id: &str,
    metric: &str,
    value: &str,
    now_ms: u64,
    retention_ms: u64,
) -> StoreResult<bool> {
    let old = store.series(device_id, metric)?.unwrap_or_default();
    let mut changes = decoded(device_id, metric, decode_text(&old));
    if !add_text(&mut changes, now_ms, value, now_ms, retention_ms) {
        return Ok(false);
    }
    store.put_series(device_id, metric, &encode_text(&changes))?;
    Ok(true)
}

/// A device's readings of one metric at or after `since_ms`, oldest
/// first, at most `limit` (the most recent ones when there are more).
pub fn read(
    store: &dyn Store,
    device_id: &str,
    metric: &str,
    since_ms: u64,
    limit: usize,
) -> StoreResult<Vec<Point>> {
    let bytes = store.series(device_id, metric)?.unwrap_or_default();
    let mut points = decoded(device_id, metric, decode(&bytes));
    points.retain(|p| p.at_ms >= since_ms);
    let excess = points.len().saturating_sub(limit);
    points.drain(..excess);
    Ok(points)
}

/// A text series' entries at or after `since_ms` (and the one in force
/// then), oldest first, at most `limit` (the most recent).
pub fn read_text(
    store: &dyn Store,
    device_id: &str,
    metric: &str,
    since_ms: u64,
    limit: usize,
) -> StoreResult<Vec<Change>> {
    let bytes = store.series(device_id, metric)?.unwrap_or_default();
    let mut changes = decoded(device_id, metric, decode_text(&bytes));
    let first = changes
        .iter()
        .rposition(|c| c.at_ms < since_ms)
        .unwrap_or(0);
    changes.drain(..first);
    let excess = changes.len().saturating_sub(limit);
    changes.drain(..excess);
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H: u64 = 3_600_000;
    const DAY: u64 = 24 * H;

    fn p(at_ms: u64, value: f64) -> Point {
        Point { at_ms, value }
    }

    #[test]
    fn recent_readings_stay_old_buckets_become_their_mean_or_sum() {
        let now = 40 * DAY;
        let mut s = Vec::new();
        // Hourly readings over three days, each added when taken.
        for h in 0..72 {
            let at = now - 72 * H + h * H;
            add(
                &mut s,
                p(at, -20.0 - (h % 2) as f64),
                at,
                30 * DAY,
                Combine::Mean,
            );
        }
        age(&mut s, now, 30 * DAY, Combine::Mean);
        // The last 48 h (plus the partial bucket that straddles them) as
        // they came; before that, 6-hour buckets of six readings each.
        let detail = s.iter().filter(|x| x.at_ms % BUCKET_MS != 0).count();
        assert!(detail >= 40, "{s:?}");
        let old: Vec<&Point> = s
            .iter()
            .filter(|x| x.at_ms < now - DETAIL_MS - BUCKET_MS)
            .collect();
        assert!(!old.is_empty());
        for x in &old {
            assert_eq!(x.at_ms % BUCKET_MS, 0);
            assert!((x.value + 20.5).abs() < 1e-6, "{x:?}");
        }
        // Thinning again changes nothing.
        let before = s.clone();
        age(&mut s, now, 30 * DAY, Combine::Mean);
        assert_eq!(s, before);

        // Counts add up.
        let mut r = Vec::new();
        let t = now - 10 * DAY;
        for at in [t, t + H, t + 2 * H] {
            add(&mut r, p(at, 1.0), at, 30 * DAY, Combine::Sum);
        }
        age(&mut r, now, 30 * DAY, Combine::Sum);
        assert_eq!(r, [p(t - t % BUCKET_MS, 3.0)]);

        // Past retention: gone.
        add(&mut r, p(now - 31 * DAY, 1.0), now, 30 * DAY, Combine::Sum);
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn out_of_order_and_same_second_readings() {
        let now = 10 * DAY;
        let mut s = Vec::new();
        add(&mut s, p(now - 1000, 1.0), now, DAY, Combine::Mean);
        add(&mut s, p(now - 5000, 2.0), now, DAY, Combine::Mean);
        add(&mut s, p(now - 500, 3.0), now, DAY, Combine::Mean);
        assert_eq!(s, [p(now - 5000, 2.0), p(now - 1000, 3.0)]);
        let mut c = Vec::new();
        add(&mut c, p(now - 1000, 1.0), now, DAY, Combine::Sum);
        add(&mut c, p(now - 900, 1.0), now, DAY, Combine::Sum);
        assert_eq!(c, [p(now - 1000, 2.0)]);
    }

    #[test]
    fn text_series_keep_changes_only_and_the_one_in_force() {
        let now = 100 * DAY;
        let mut c = Vec::new();
        assert!(add_text(
            &mut c,
            now - 40 * DAY,
            "100.64.0.9",
            now - 40 * DAY,
            30 * DAY
        ));
        assert!(!add_text(
            &mut c,
            now - 39 * DAY,
            "100.64.0.9",
            now - 39 * DAY,
            30 * DAY
        ));
        // 40 days later the first entry is past retention but still in
        // force: kept.
        assert!(add_text(&mut c, now, "100.64.0.10", now, 30 * DAY));
        assert_eq!(c.len(), 2);
        assert!(add_text(
            &mut c,
            now + 31 * DAY,
            "100.64.0.9",
            now + 31 * DAY,
            30 * DAY
        ));
        assert_eq!(c[0].value, "100.64.0.10", "{c:?}");
        assert_eq!(c.len(), 2, "{c:?}");
        for i in 0..200u64 {
            add_text(
                &mut c,
                now + 32 * DAY + i,
                &i.to_string(),
                now + 32 * DAY,
                30 * DAY,
            );
        }
        assert_eq!(c.len(), MAX_CHANGES);
        let long = "é".repeat(400);
        add_text(&mut c, now + 33 * DAY, &long, now + 33 * DAY, 30 * DAY);
        let back = decode_text(&encode_text(&c)).unwrap();
        assert_eq!(back.last().unwrap().value.len(), MAX_TEXT);
    }

    #[test]
    fn readings_read_back_as_written() {
        let s = [
            p(1000, -8.91),
            p(2000, -30.0),
            p(3000, 57.3),
            p(4000, 1.0),
            p(5000, 1e12),
        ];
        assert_eq!(decode(&encode(&s)).unwrap(), s);
        // Kept to the thousandth; huge values clamped, never wrapped.
        assert_eq!(decode(&encode(&[p(0, -8.9134)])).unwrap(), [p(0, -8.913)]);
        assert_eq!(decode(&encode(&[p(0, 1e300)])).unwrap()[0].value, 4.0e12);
        // A month of hourly readings thinned: about 600 bytes.
        let now = 40 * DAY;
        let mut m = Vec::new();
        for h in (0..30 * 24).rev() {
            let at = now - h * H;
            add(
                &mut m,
                p(at, -19.0 - (h % 13) as f64 * 0.1),
                at,
                30 * DAY,
                Combine::Mean,
            );
        }
        let len = encode(&m).len();
        assert!(
            (300..900).contains(&len),
            "{len} bytes for {} points",
            m.len()
        );
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        assert_eq!(decode(&[3, 0]), Err(SeriesError::Truncated { len: 2 }));
        assert_eq!(decode(&[3, 0x80]), Err(SeriesError::Truncated { len: 2 }));
        assert!(
            decode(&[
                3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ])
            .is_err()
        );
        assert_eq!(decode(&[9]), Err(SeriesError::UnknownFormat(9)));
        assert!(decode_text(&[2, 0, 0, 0, 1, 0, 9, b'x']).is_err());
        assert!(decode_text(&[1]).is_err());
        assert_eq!(decode(&[]), Ok(vec![]));
    }

    proptest! {
        #[test]
        fn numeric_codec_round_trips(v in proptest::collection::vec((0u32..u32::MAX, -1_000_000_000i64..1_000_000_000), 0..50)) {
            let points: Vec<Point> = v.iter().map(|(s, x)| p(u64::from(*s) * 1000, *x as f64 / 1000.0)).collect();
            prop_assert_eq!(decode(&encode(&points)).unwrap(), points);
        }

        #[test]
        fn text_codec_round_trips(v in proptest::collection::vec((0u32..u32::MAX, "\\PC{0,40}"), 0..20)) {
            let changes: Vec<Change> = v.iter().map(|(s, x)| Change { at_ms: u64::from(*s) * 1000, value: x.clone() }).collect();
            prop_assert_eq!(decode_text(&encode_text(&changes)).unwrap(), changes);
        }

        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
            let _ = decode_text(&bytes);
        }

        #[test]
        fn a_series_stays_bounded_sorted_and_retained(
            steps in proptest::collection::vec((0u64..60 * DAY, -40.0f64..0.0), 1..400)
        ) {
            let now = 60 * DAY;
            let mut s = Vec::new();
            for (at, v) in steps {
                add(&mut s, p(at, v), now, 30 * DAY, Combine::Mean);
            }
            prop_assert!(s.len() <= MAX_POINTS);
            prop_assert!(s.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
            prop_assert!(s.iter().all(|x| x.at_ms + 30 * DAY >= now - BUCKET_MS));
            prop_assert!(s.iter().all(|x| (-40.0..=0.0).contains(&x.value)));
        }
    }
}
