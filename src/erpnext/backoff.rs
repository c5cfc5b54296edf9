//! Retry delays: jittered exponential backoff and `Retry-After`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Backoff before the first retry, before jitter; it doubles per retry.
pub const BASE_BACKOFF: Duration = Duration::from_millis(100);
/// Upper bound of the exponential backoff, before jitter.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// A `Retry-After` longer than this is waited only this long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The delay before retry number `retry` (1 for the first retry):
/// "equal jitter" — half of `min(BASE · 2^(retry-1), MAX_BACKOFF)` plus a
/// random part of up to the other half, so retries of concurrent calls
/// spread out but never come sooner than half the nominal delay.
pub fn backoff(retry: u32, random: u64) -> Duration {
    let exp = retry.saturating_sub(1).min(16);
    let nominal = BASE_BACKOFF.saturating_mul(1u32 << exp).min(MAX_BACKOFF);
    let nominal_us = u64::try_from(nominal.as_micros()).unwrap_or(u64::MAX);
    let half = nominal_us / 2;
    Duration::from_micros(half + random % (nominal_us - half + 1))
}

/// The delay before retry number `retry`, given the answer's `Retry-After`
/// (if any): the server's word wins, capped at [`MAX_RETRY_AFTER`].
pub fn retry_delay(retry: u32, retry_after: Option<Duration>, random: u64) -> Duration {
    match retry_after {
        Some(ra) => ra.min(MAX_RETRY_AFTER),
        None => backoff(retry, random),
    }
}

/// A `Retry-After` header in delta-seconds (what Frappe sends). The
/// HTTP-date form is not used by Frappe and gives `None` (plain backoff).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Absurdly long digit strings saturate; the cap applies anyway.
    Some(Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX)))
}

/// A tiny lock-free random source for jitter (SplitMix64 over a counter
/// seeded from the process's random hash keys). Not cryptographic.
pub struct Jitter {
    state: AtomicU64,
}

impl Jitter {
    pub fn new() -> Jitter {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(0x6a09_e667_f3bc_c908);
        Jitter {
            state: AtomicU64::new(h.finish()),
        }
    }

    pub fn next(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_within_jitter_bounds() {
        let j = Jitter::new();
        for retry in 1..=40u32 {
            let nominal = BASE_BACKOFF
                .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
                .min(MAX_BACKOFF);
            for _ in 0..200 {
                let d = backoff(retry, j.next());
                assert!(d >= nominal / 2, "retry {retry}: {d:?} < {:?}", nominal / 2);
                assert!(d <= nominal, "retry {retry}: {d:?} > {nominal:?}");
            }
        }
        // Extremes of the random part.
        assert_eq!(backoff(1, 0), Duration::from_millis(50));
        assert_eq!(backoff(1, 50_000), Duration::from_millis(100));
        assert_eq!(backoff(2, 0), Duration::from_millis(100));
        assert_eq!(backoff(3, 0), Duration::from_millis(200));
        assert_eq!(backoff(30, 0), MAX_BACKOFF / 2);
        assert_eq!(backoff(0, 0), Duration::from_millis(50));
    }

    #[test]
    fn jitter_actually_varies() {
        let j = Jitter::new();
        let ds: std::collections::HashSet<Duration> =
            (0..50).map(|_| backoff(5, j.next())).collect();
        assert!(ds.len() > 10, "{ds:?}");
    }

    #[test]
    fn retry_after_wins_and_is_capped() {
        assert_eq!(
            retry_delay(1, Some(Duration::from_secs(1)), 12345),
            Duration::from_secs(1)
        );
        assert_eq!(retry_delay(3, Some(Duration::ZERO), 7), Duration::ZERO);
        assert_eq!(
            retry_delay(1, Some(Duration::from_secs(3600)), 0),
            MAX_RETRY_AFTER
        );
        assert_eq!(retry_delay(1, None, 0), backoff(1, 0));
    }

    #[test]
    fn retry_after_parsing() {
        assert_eq!(parse_retry_after("1"), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999"),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("1.5"), None);
        assert_eq!(parse_retry_after(""), None);
    }
}
