//! The circuit breaker in front of ERPNext.
//!
//! - **Closed**: every attempt goes through; `threshold` consecutive failed
//!   attempts (connection error, timeout, 5xx, 429) open it. Any answered
//!   attempt (2xx, 4xx) resets the count.
//! - **Open** for `cooldown`: every attempt is refused at once.
//! - **Half-open** once the cooldown is over: exactly one attempt (the
//!   probe) goes through, the others are refused while it runs. Its success
//!   closes the breaker, its failure opens it for another cooldown. A probe
//!   dropped without a verdict (its call was cancelled) lets the next
//!   attempt probe.
//!
//! Times come from `tokio::time`, so tests can pause the clock.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
    opens: AtomicU64,
}

/// Why an attempt was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Open; the probe will be allowed in this long.
    Open { retry_in: Duration },
    /// Half-open and the probe is already in flight.
    Probing,
}

/// Leave to send one attempt; report its outcome with
/// [`Permit::success`] or [`Permit::failure`].
#[must_use]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    done: bool,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::new(State::Closed { failures: 0 }),
            opens: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain value, always consistent: poisoning is moot.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn acquire(&self) -> Result<Permit<'_>, Refused> {
        let mut st = self.lock();
        let probe = match *st {
            State::Closed { .. } => false,
            State::Open { until } => {
                let now = Instant::now();
                if now < until {
                    return Err(Refused::Open {
                        retry_in: until - now,
                    });
                }
                *st = State::HalfOpen { probing: true };
                true
            }
            State::HalfOpen { probing: true } => return Err(Refused::Probing),
            State::HalfOpen { probing: false } => {
                *st = State::HalfOpen { probing: true };
                true
            }
        };
        Ok(Permit {
            breaker: self,
            probe,
            done: false,
        })
    }

    /// Not closed: calls are (or, after the cooldown, all but one probe
    /// are) refused.
    pub fn is_open(&self) -> bool {
        !matches!(*self.lock(), State::Closed { .. })
    }

    /// Open and still cooling down: the next attempt would be refused.
    pub fn is_refusing(&self) -> bool {
        match *self.lock() {
            State::Open { until } => Instant::now() < until,
            State::HalfOpen { probing } => probing,
            State::Closed { .. } => false,
        }
    }

    pub fn opens(&self) -> u64 {
        self.opens.load(Ordering::Relaxed)
    }

    fn open(&self, st: &mut State) {
        *st = State::Open {
            until: Instant::now() + self.cooldown,
        };
        self.opens.fetch_add(1, Ordering::Relaxed);
    }

    fn record(&self, probe: bool, ok: bool) {
        let mut st = self.lock();
        match (*st, probe, ok) {
            (State::HalfOpen { .. }, true, true) => *st = State::Closed { failures: 0 },
            (State::HalfOpen { .. }, true, false) => self.open(&mut st),
            (State::Closed { .. }, false, true) => *st = State::Closed { failures: 0 },
            (State::Closed { failures }, false, false) => {
                let failures = failures.saturating_add(1);
                if failures >= self.threshold {
                    self.open(&mut st);
                } else {
                    *st = State::Closed { failures };
                }
            }
            // An attempt let in before the breaker opened, finishing late:
            // the probe decides, not stragglers.
            _ => {}
        }
    }
}

impl Permit<'_> {
    pub fn success(mut self) {
        self.done = true;
        self.breaker.record(self.probe, true);
    }

    pub fn failure(mut self) {
        self.done = true;
        self.breaker.record(self.probe, false);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.done && self.probe {
            let mut st = self.breaker.lock();
            if *st == (State::HalfOpen { probing: true }) {
                *st = State::HalfOpen { probing: false };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL: Duration = Duration::from_secs(10);

    fn fail(b: &Breaker) {
        b.acquire().expect("admitted").failure();
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_n_consecutive_failures() {
        let b = Breaker::new(3, COOL);
        fail(&b);
        fail(&b);
        // A success resets the count.
        b.acquire().expect("admitted").success();
        fail(&b);
        fail(&b);
        assert!(!b.is_open());
        assert_eq!(b.opens(), 0);
        fail(&b);
        assert!(b.is_open());
        assert!(b.is_refusing());
        assert_eq!(b.opens(), 1);
        match b.acquire() {
            Err(Refused::Open { retry_in }) => assert_eq!(retry_in, COOL),
            _ => panic!("should be open"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_lets_one_probe_and_closes_on_success() {
        let b = Breaker::new(1, COOL);
        fail(&b);
        tokio::time::advance(COOL - Duration::from_millis(1)).await;
        assert!(matches!(b.acquire(), Err(Refused::Open { .. })));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!b.is_refusing());
        let probe = b.acquire().expect("probe admitted");
        // Only one probe at a time.
        assert_eq!(b.acquire().err(), Some(Refused::Probing));
        assert!(b.is_refusing());
        probe.success();
        assert!(!b.is_open());
        b.acquire().expect("closed").success();
        b.acquire().expect("closed").success();
        assert_eq!(b.opens(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_probe_reopens_for_a_full_cooldown() {
        let b = Breaker::new(2, COOL);
        fail(&b);
        fail(&b);
        tokio::time::advance(COOL).await;
        b.acquire().expect("probe").failure();
        assert_eq!(b.opens(), 2);
        tokio::time::advance(COOL / 2).await;
        match b.acquire() {
            Err(Refused::Open { retry_in }) => assert_eq!(retry_in, COOL / 2),
            _ => panic!("should be open again"),
        }
        tokio::time::advance(COOL / 2).await;
        b.acquire().expect("second probe").success();
        assert!(!b.is_open());
        // Closed again: the full threshold is needed to reopen.
        fail(&b);
        assert!(!b.is_open());
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_probe_frees_the_slot() {
        let b = Breaker::new(1, COOL);
        fail(&b);
        tokio::time::advance(COOL).await;
        let probe = b.acquire().expect("probe");
        drop(probe);
        assert!(b.is_open());
        b.acquire().expect("another probe").success();
        assert!(!b.is_open());
    }

    #[tokio::test(start_paused = true)]
    async fn stragglers_do_not_decide() {
        let b = Breaker::new(1, COOL);
        let late = b.acquire().expect("admitted while closed");
        fail(&b);
        assert!(b.is_open());
        // A request admitted before the opening succeeds late: still open.
        late.success();
        assert!(b.is_open());
        tokio::time::advance(COOL).await;
        let late = b.acquire().expect("probe");
        late.success();
        assert!(!b.is_open());
    }

    #[test]
    fn zero_threshold_means_one() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let b = Breaker::new(0, COOL);
            assert!(!b.is_open());
            fail(&b);
            assert!(b.is_open());
        });
    }
}
