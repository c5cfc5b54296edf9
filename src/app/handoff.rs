//! Hands the topology a session built after reading a device's host tables
//! to the API request that asked for that read (`GET …/hosts?refresh=true`),
//! so that one refresh loads the cached values, picks the profile and
//! builds the topology once instead of twice: a refresh's profile showed
//! each of the two builds, with its load of ~2,000 cached values, at about
//! a sixth of the refresh's CPU.
//!
//! Only a topology someone waits for is kept, and only until it is taken
//! or its waiter gives up: devices whose tables are read on a schedule
//! leave nothing here. The waiter uses it only when it comes from the
//! collection the device record names (`hosts_collected_ms`), that is the
//! read it asked for or a newer one; otherwise (another node ran the
//! session, the build failed) it builds as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::topology::Topology;

/// What a collection left for its waiters.
#[derive(Clone, Debug)]
pub struct FreshTopology {
    /// The collection's time (the device record's `hosts_collected_ms`).
    pub collected_ms: u64,
    /// The profile it was built with.
    pub profile: String,
    pub topology: Arc<Topology>,
}

#[derive(Debug, Default)]
struct Slot {
    /// Requests waiting for the device's next collection.
    waiters: usize,
    fresh: Option<FreshTopology>,
}

/// Topologies waited for, by device id.
#[derive(Debug, Default)]
pub struct TopologyHandoff {
    slots: Mutex<HashMap<String, Slot>>,
}

impl TopologyHandoff {
    fn slots(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        // A panic while holding the lock leaves plain data behind.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a request that waits for the device's next collection;
    /// the guard takes the result and ends the wait when dropped.
    pub fn wait(self: &Arc<Self>, device_id: &str) -> Waiting {
        self.slots()
            .entry(device_id.to_owned())
            .or_default()
            .waiters += 1;
        Waiting {
            handoff: self.clone(),
            device_id: device_id.to_owned(),
        }
    }

    /// Whether a request waits for this device's topology (the session
    /// then keeps what it builds).
    pub fn wanted(&self, device_id: &str) -> bool {
        self.slots().contains_key(device_id)
    }

    /// Leaves a collection's topology for the device's waiters; dropped
    /// when nobody waits.
    pub fn offer(&self, device_id: &str, fresh: FreshTopology) {
        if let Some(slot) = self.slots().get_mut(device_id) {
            slot.fresh = Some(fresh);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots().len()
    }
}

/// A request's wait for a device's topology (see [`TopologyHandoff::wait`]).
pub struct Waiting {
    handoff: Arc<TopologyHandoff>,
    device_id: String,
}

impl Waiting {
    /// The topology of the collection at `collected_ms`, if the session
    /// left it here.
    pub fn take(&self, collected_ms: Option<u64>) -> Option<FreshTopology> {
        let slots = self.handoff.slots();
        let fresh = slots.get(&self.device_id)?.fresh.as_ref()?;
        (Some(fresh.collected_ms) == collected_ms).then(|| fresh.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut slots = self.handoff.slots();
        if let Some(slot) = slots.get_mut(&self.device_id) {
            slot.waiters -= 1;
            if slot.waiters == 0 {
                slots.remove(&self.device_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh(at: u64) -> FreshTopology {
        FreshTopology {
            collected_ms: at,
            profile: "deco".into(),
            topology: Arc::new(Topology {
                nodes: Vec::new(),
                unplaced: Vec::new(),
                totals: Default::default(),
            }),
        }
    }

    #[test]
    fn only_what_is_waited_for_is_kept_and_only_while_it_is() {
        let h = Arc::new(TopologyHandoff::default());
        h.offer("A", fresh(1));
        assert!(!h.wanted("A"));
        assert_eq!(h.len(), 0, "nobody waits: nothing kept");

        let first = h.wait("A");
        let second = h.wait("A");
        assert!(h.wanted("A"));
        assert!(first.take(Some(5)).is_none(), "nothing offered yet");
        h.offer("A", fresh(5));
        assert_eq!(first.take(Some(5)).unwrap().collected_ms, 5);
        // Another collection than the one the record names is not used.
        assert!(second.take(Some(6)).is_none());
        assert!(second.take(None).is_none());
        drop(first);
        assert_eq!(second.take(Some(5)).unwrap().profile, "deco");
        drop(second);
        assert_eq!(h.len(), 0);
        assert!(!h.wanted("A"));
    }
}
