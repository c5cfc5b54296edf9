//! At most one connection request per device per interval.
//!
//! A CPE that gets requests faster than it can open sessions answers 503 or
//! stops listening; and a script hammering the reprovision button must not
//! turn the ACS into a flood source. Pure bookkeeping on millisecond
//! timestamps, so the decision is tested without clocks.

use std::collections::HashMap;

/// Entries kept before old ones are swept.
const SWEEP_AT: usize = 100_000;

#[derive(Debug)]
pub struct RateLimiter {
    min_interval_ms: u64,
    last: HashMap<String, u64>,
}

impl RateLimiter {
    pub fn new(min_interval_ms: u64) -> RateLimiter {
        RateLimiter {
            min_interval_ms,
            last: HashMap::new(),
        }
    }

    /// Takes a slot for `device` at `now_ms`, or says how many ms remain.
    pub fn acquire(&mut self, device: &str, now_ms: u64) -> Result<(), u64> {
        if let Some(&at) = self.last.get(device) {
            let next = at.saturating_add(self.min_interval_ms);
            if now_ms < next {
                return Err(next - now_ms);
            }
        }
        if self.last.len() >= SWEEP_AT {
            let min = self.min_interval_ms;
            self.last.retain(|_, at| now_ms.saturating_sub(*at) < min);
        }
        self.last.insert(device.to_owned(), now_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_interval_per_device() {
        let mut l = RateLimiter::new(10_000);
        assert_eq!(l.acquire("A", 1_000), Ok(()));
        assert_eq!(l.acquire("A", 4_000), Err(7_000));
        assert_eq!(l.acquire("B", 4_000), Ok(()));
        assert_eq!(l.acquire("A", 11_000), Ok(()));
        let mut off = RateLimiter::new(0);
        assert_eq!(off.acquire("A", 1), Ok(()));
        assert_eq!(off.acquire("A", 1), Ok(()));
    }

    #[test]
    fn sweeps_old_entries() {
        let mut l = RateLimiter::new(10);
        for i in 0..SWEEP_AT {
            l.acquire(&i.to_string(), 0).unwrap();
        }
        l.acquire("new", 100).unwrap();
        assert_eq!(l.last.len(), 1);
    }
}
