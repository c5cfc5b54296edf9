//! A small TTL cache (lookups, passwords). Times come from `tokio::time`,
//! so tests can pause the clock.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// At most this many entries are kept; beyond, expired entries are purged
/// and then the oldest ones dropped.
pub const MAX_ENTRIES: usize = 10_000;

pub struct TtlCache<K, V> {
    ttl: Duration,
    capacity: usize,
    map: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration) -> TtlCache<K, V> {
        TtlCache::with_capacity(ttl, MAX_ENTRIES)
    }

    pub fn with_capacity(ttl: Duration, capacity: usize) -> TtlCache<K, V> {
        TtlCache {
            ttl,
            capacity: capacity.max(1),
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, (Instant, V)>> {
        // Entries are inserted whole: a poisoned map is still consistent.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// The value stored less than `ttl` ago.
    pub fn get(&self, key: &K) -> Option<V> {
        if !self.enabled() {
            return None;
        }
        let mut map = self.lock();
        match map.get(key) {
            Some((at, v)) if at.elapsed() < self.ttl => Some(v.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn insert(&self, key: K, value: V) {
        if !self.enabled() {
            return;
        }
        let mut map = self.lock();
        if map.len() >= self.capacity && !map.contains_key(&key) {
            let ttl = self.ttl;
            map.retain(|_, (at, _)| at.elapsed() < ttl);
            while map.len() >= self.capacity {
                let oldest = map
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone());
                match oldest {
                    Some(k) => map.remove(&k),
                    None => break,
                };
            }
        }
        map.insert(key, (Instant::now(), value));
    }

    /// Drops every entry for which `keep` is false.
    pub fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) {
        self.lock().retain(|k, (_, v)| keep(k, v));
    }

    pub fn remove(&self, key: &K) {
        self.lock().remove(key);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(30);

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_the_ttl() {
        let c: TtlCache<String, Vec<u32>> = TtlCache::new(TTL);
        c.insert("a".into(), vec![1]);
        assert_eq!(c.get(&"a".into()), Some(vec![1]));
        tokio::time::advance(TTL - Duration::from_millis(1)).await;
        assert_eq!(c.get(&"a".into()), Some(vec![1]));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(c.get(&"a".into()), None);
        assert_eq!(c.len(), 0, "expired entries are removed when seen");
        // A new insert restarts the clock.
        c.insert("a".into(), vec![2]);
        tokio::time::advance(TTL / 2).await;
        assert_eq!(c.get(&"a".into()), Some(vec![2]));
    }

    #[tokio::test(start_paused = true)]
    async fn zero_ttl_disables_the_cache() {
        let c: TtlCache<u8, u8> = TtlCache::new(Duration::ZERO);
        c.insert(1, 1);
        assert_eq!(c.get(&1), None);
        assert_eq!(c.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn retain_and_remove() {
        let c: TtlCache<&'static str, Vec<&'static str>> = TtlCache::new(TTL);
        c.insert("mac:1", vec!["EQ-1", "EQ-2"]);
        c.insert("gpon:2", vec!["EQ-3"]);
        c.insert("cwmp:3", vec![]);
        c.retain(|_, v| !v.contains(&"EQ-2"));
        assert_eq!(c.get(&"mac:1"), None);
        assert_eq!(c.get(&"gpon:2"), Some(vec!["EQ-3"]));
        c.remove(&"cwmp:3");
        assert_eq!(c.get(&"cwmp:3"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn capacity_purges_expired_then_oldest() {
        let c: TtlCache<u32, u32> = TtlCache::with_capacity(TTL, 3);
        c.insert(1, 1);
        tokio::time::advance(Duration::from_secs(1)).await;
        c.insert(2, 2);
        tokio::time::advance(Duration::from_secs(1)).await;
        c.insert(3, 3);
        tokio::time::advance(Duration::from_secs(1)).await;
        c.insert(4, 4);
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(&1), None, "the oldest went");
        assert_eq!(c.get(&4), Some(4));
        // Re-inserting an existing key does not evict.
        c.insert(4, 40);
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(&2), Some(2));
    }
}
