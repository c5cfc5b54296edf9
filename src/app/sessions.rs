//! Live CWMP sessions: found by cookie (or by connection), one per device.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ring::rand::{SecureRandom, SystemRandom};

use crate::session::Session;
use crate::store::Task;

/// Random 128-bit session key, sent as the `session` cookie.
pub type SessionKey = String;

/// A session in progress.
pub struct LiveSession {
    pub key: SessionKey,
    pub device_id: String,
    /// Held for the duration of one exchange: a CPE's requests in one
    /// session are sequential, and the lock makes sure they stay so.
    pub state: tokio::sync::Mutex<Session>,
    last_active_ms: AtomicU64,
    timeout_ms: u64,
    /// When this node last claimed the device's lease ([`crate::cluster`]).
    claimed_ms: AtomicU64,
    /// Time the ACS spent handling this session's requests, and the part of
    /// it spent waiting for ERPNext, microseconds (see [`LiveSession::busy`]).
    handling_us: AtomicU64,
    erpnext_us: AtomicU64,
    /// The ACS's last request was a GetParameterNames: the answer may be a
    /// whole data model, bigger than other bodies.
    awaits_names: AtomicBool,
}

impl LiveSession {
    /// Whether the CPE's next body answers a GetParameterNames.
    pub fn awaits_names(&self) -> bool {
        self.awaits_names.load(Ordering::Relaxed)
    }

    /// Records what the ACS just asked (see [`LiveSession::awaits_names`]).
    pub fn set_awaits_names(&self, names: bool) {
        self.awaits_names.store(names, Ordering::Relaxed);
    }

    /// Adds one request's handling time (reading the body to the answer).
    pub fn add_handling(&self, d: std::time::Duration) {
        self.handling_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Adds a wait for ERPNext (inside a request's handling time).
    pub fn add_erpnext_wait(&self, d: std::time::Duration) {
        self.erpnext_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// The ACS's own time on this session so far: handling minus ERPNext.
    pub fn busy(&self) -> std::time::Duration {
        let handling = self.handling_us.load(Ordering::Relaxed);
        let erpnext = self.erpnext_us.load(Ordering::Relaxed);
        std::time::Duration::from_micros(handling.saturating_sub(erpnext))
    }

    /// Records a granted claim on the device's lease.
    pub fn set_claimed(&self, now_ms: u64) {
        self.claimed_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Whether `renew_after` has passed since the last claim.
    pub fn claim_due(&self, now_ms: u64, renew_after: std::time::Duration) -> bool {
        now_ms.saturating_sub(self.claimed_ms.load(Ordering::Relaxed))
            >= renew_after.as_millis() as u64
    }

    pub fn touch(&self, now_ms: u64) {
        self.last_active_ms.store(now_ms, Ordering::Relaxed);
    }

    fn expired(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.last_active_ms.load(Ordering::Relaxed)) > self.timeout_ms
    }

    /// Seconds until this session would time out.
    fn remaining_s(&self, now_ms: u64) -> u64 {
        let idle = now_ms.saturating_sub(self.last_active_ms.load(Ordering::Relaxed));
        self.timeout_ms.saturating_sub(idle).div_ceil(1000).max(1)
    }
}

/// Why a new session cannot start.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The device already has a live session; retry after this many seconds.
    DeviceBusy { retry_after_s: u64 },
    /// Too many sessions in total.
    Full,
}

#[derive(Default)]
struct Tables {
    by_key: HashMap<SessionKey, Arc<LiveSession>>,
    by_device: HashMap<String, SessionKey>,
}

/// All live sessions.
pub struct SessionTable {
    tables: Mutex<Tables>,
    max_sessions: usize,
    rng: SystemRandom,
}

impl SessionTable {
    pub fn new(max_sessions: usize) -> SessionTable {
        SessionTable {
            tables: Mutex::new(Tables::default()),
            max_sessions,
            rng: SystemRandom::new(),
        }
    }

    /// The device's live session, if it has one.
    fn live(&self, device_id: &str) -> Option<Arc<LiveSession>> {
        let t = self.lock();
        t.by_device
            .get(device_id)
            .and_then(|k| t.by_key.get(k))
            .cloned()
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // A panic while holding this lock cannot leave the maps
        // inconsistent (every critical section is a few map operations), so
        // a poisoned lock is still safe to use.
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn new_key(&self) -> SessionKey {
        let mut b = [0u8; 16];
        let _ = self.rng.fill(&mut b);
        crate::digest::hex(&b)
    }

    /// The live session with this key; an expired one is removed instead.
    pub fn get(&self, key: &str, now_ms: u64) -> Option<Arc<LiveSession>> {
        let mut t = self.lock();
        let s = t.by_key.get(key)?.clone();
        if s.expired(now_ms) && s.state.try_lock().is_ok() {
            remove(&mut t, &s);
            return None;
        }
        Some(s)
    }

    /// Registers a new session for a device, unless the table is full.
    ///
    /// A CPE holds one session at a time, so a new Inform from a device
    /// whose previous session is waiting on it means that session is over
    /// (the CPE restarted, lost its connection, or gave up): it is replaced
    /// at once, and what it had in flight is retried by the new one (a task
    /// marked sent stays runnable). Only a session in the middle of an
    /// exchange (the ACS still working on the CPE's last request) makes the
    /// new Inform wait with [`Refused::DeviceBusy`]. Returns the new session
    /// and whether it replaced one.
    pub fn begin(
        &self,
        device_id: &str,
        session: Session,
        timeout_ms: u64,
        now_ms: u64,
    ) -> Result<(Arc<LiveSession>, bool), Refused> {
        let mut t = self.lock();
        let mut replaced = false;
        if let Some(key) = t.by_device.get(device_id).cloned() {
            match t.by_key.get(&key).cloned() {
                Some(old) if old.state.try_lock().is_err() => {
                    return Err(Refused::DeviceBusy {
                        retry_after_s: old.remaining_s(now_ms),
                    });
                }
                Some(old) => {
                    replaced = !old.expired(now_ms);
                    remove(&mut t, &old);
                }
                None => {
                    t.by_device.remove(device_id);
                }
            }
        }
        if t.by_key.len() >= self.max_sessions {
            return Err(Refused::Full);
        }
        let live = Arc::new(LiveSession {
            key: self.new_key(),
            device_id: device_id.to_owned(),
            state: tokio::sync::Mutex::new(session),
            last_active_ms: AtomicU64::new(now_ms),
            timeout_ms,
            claimed_ms: AtomicU64::new(now_ms),
            handling_us: AtomicU64::new(0),
            erpnext_us: AtomicU64::new(0),
            awaits_names: AtomicBool::new(false),
        });
        t.by_device.insert(device_id.to_owned(), live.key.clone());
        t.by_key.insert(live.key.clone(), live.clone());
        Ok((live, replaced))
    }

    /// Removes a session (ended, or replaced by a new Inform of its CPE).
    pub fn end(&self, key: &str) {
        let mut t = self.lock();
        if let Some(s) = t.by_key.get(key).cloned() {
            remove(&mut t, &s);
        }
    }

    /// Removes timed-out sessions that are not mid-exchange; returns their
    /// device ids and keys.
    pub fn reap(&self, now_ms: u64) -> Vec<(String, SessionKey)> {
        let mut t = self.lock();
        let expired: Vec<Arc<LiveSession>> = t
            .by_key
            .values()
            .filter(|s| s.expired(now_ms) && s.state.try_lock().is_ok())
            .cloned()
            .collect();
        for s in &expired {
            remove(&mut t, s);
        }
        expired
            .iter()
            .map(|s| (s.device_id.clone(), s.key.clone()))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.lock().by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a device has a live session.
    pub fn has_device(&self, device_id: &str) -> bool {
        self.lock().by_device.contains_key(device_id)
    }

    /// Hands a newly queued task to the device's live session, if any, so
    /// it goes out in the session already open.
    pub async fn offer_task(&self, task: &Task) -> bool {
        let live = self.live(&task.device_id);
        match live {
            Some(live) => {
                live.state.lock().await.enqueue(task.clone());
                true
            }
            None => false,
        }
    }
}

impl SessionTable {
    /// Takes a task out of the device's live session queue, if any;
    /// `false` when the session has it in flight.
    pub async fn withdraw_task(&self, task: &Task) -> bool {
        let live = self.live(&task.device_id);
        match live {
            Some(live) => live.state.lock().await.withdraw(task.id),
            None => true,
        }
    }
}

fn remove(t: &mut Tables, s: &LiveSession) {
    t.by_key.remove(&s.key);
    if t.by_device.get(&s.device_id) == Some(&s.key) {
        t.by_device.remove(&s.device_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cwmp::CwmpVersion;
    use crate::session::SessionLimits;

    fn session() -> Session {
        Session::start(
            "D".into(),
            CwmpVersion::V1_0,
            vec![],
            SessionLimits::default(),
            0,
        )
        .0
    }

    #[test]
    fn a_new_inform_replaces_a_waiting_session_but_not_a_busy_one() {
        let t = SessionTable::new(10);
        let (a, replaced) = t.begin("D", session(), 30_000, 0).unwrap();
        assert!(!replaced);
        assert_eq!(a.key.len(), 32);
        // The first session waits on the CPE: the new Inform takes over.
        let (b, replaced) = t.begin("D", session(), 30_000, 10_000).unwrap();
        assert!(replaced);
        assert_ne!(a.key, b.key);
        assert!(t.get(&a.key, 10_000).is_none(), "the old key is gone");
        assert!(t.get(&b.key, 10_000).is_some());
        // Mid-exchange (its lock held): the new Inform is asked to retry.
        let guard = b.state.try_lock().unwrap();
        assert_eq!(
            t.begin("D", session(), 30_000, 20_000).err(),
            Some(Refused::DeviceBusy { retry_after_s: 20 })
        );
        drop(guard);
        // Expired: replaced without counting as a takeover.
        let (c, replaced) = t.begin("D", session(), 30_000, 60_000).unwrap();
        assert!(!replaced);
        t.end(&c.key);
        assert!(t.is_empty());
    }

    #[test]
    fn capacity_and_reaping() {
        let t = SessionTable::new(2);
        t.begin("A", session(), 1000, 0).unwrap();
        t.begin("B", session(), 1000, 0).unwrap();
        assert_eq!(t.begin("C", session(), 1000, 0).err(), Some(Refused::Full));
        let mut reaped: Vec<String> = t.reap(5000).into_iter().map(|(d, _)| d).collect();
        reaped.sort();
        assert_eq!(reaped, ["A", "B"]);
        assert!(t.begin("C", session(), 1000, 5000).is_ok());
    }

    impl PartialEq for LiveSession {
        fn eq(&self, other: &Self) -> bool {
            self.key == other.key
        }
    }

    impl std::fmt::Debug for LiveSession {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "LiveSession({})", self.device_id)
        }
    }
}
