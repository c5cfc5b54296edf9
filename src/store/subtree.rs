//! Tables read in full (a host table, the MultiAP tree) are stored as one
//! record per table — a snapshot — instead of one record per parameter.
//!
//! A Deco with 100 clients reports ~5,000 parameters under `Device.Hosts.`
//! and its Wi-Fi tables; written one by one they were two thirds of a
//! bootstrap session's CPU (BENCHMARKS.md). A snapshot is keyed by the
//! partial path that was read (`Device.Hosts.`), replaces the previous one
//! whole, and is merged with the per-parameter values and the latest
//! Inform's values at read time, newest value of each path winning.
//!
//! The functions here are the backend-independent part: which snapshot a
//! value belongs to, which stored snapshots a read or a replacement touches,
//! and the merge.

use std::collections::HashSet;

use super::{CachedValue, StoredParam};

/// Values of a replacement grouped by the prefix they were read under.
pub(super) struct Grouped<'v> {
    /// `(prefix, rows)` for every prefix that ends in `.`, rows in the
    /// caller's order; a prefix with no rows is kept (the table is empty now).
    pub snapshots: Vec<(&'v str, Vec<(String, CachedValue)>)>,
    /// Values under none of the prefixes (leaf paths read in the same
    /// request): stored per parameter.
    pub loose: Vec<(String, CachedValue)>,
}

impl Grouped<'_> {
    /// Whether the snapshot stored under `prefix` is replaced (or dropped)
    /// by this replacement: it lies under one of its prefixes.
    pub fn replaces(&self, prefix: &str) -> bool {
        self.snapshots.iter().any(|(p, _)| prefix.starts_with(p))
    }

    /// Where a bigger snapshot holding rows of the re-read tables may be
    /// stored: the partial paths above them that are not replaced too, each
    /// once, so each is trimmed once by [`Grouped::trim`] for all tables.
    pub fn snapshots_above(&self) -> Vec<&str> {
        let mut above: Vec<&str> = self
            .snapshots
            .iter()
            .flat_map(|(p, _)| ancestors(p))
            .filter(|a| !self.replaces(a))
            .collect();
        above.sort_unstable();
        above.dedup();
        above
    }

    /// A bigger snapshot's rows without those of the re-read tables.
    pub fn trim(&self, rows: Vec<(String, CachedValue)>) -> Vec<(String, CachedValue)> {
        rows.into_iter()
            .filter(|(name, _)| !self.replaces(name))
            .collect()
    }
}

/// Assigns each value to the longest prefix it lies under.
pub(super) fn group<'v>(prefixes: &'v [String], values: &[(String, CachedValue)]) -> Grouped<'v> {
    let mut tables: Vec<&str> = prefixes
        .iter()
        .map(String::as_str)
        .filter(|p| p.ends_with('.'))
        .collect();
    tables.sort_unstable();
    tables.dedup();
    let mut snapshots: Vec<(&str, Vec<(String, CachedValue)>)> =
        tables.iter().map(|p| (*p, Vec::new())).collect();
    let mut loose = Vec::new();
    for (name, v) in values {
        let home = snapshots
            .iter_mut()
            .filter(|(p, _)| name.starts_with(p))
            .max_by_key(|(p, _)| p.len());
        match home {
            Some((_, rows)) => rows.push((name.clone(), v.clone())),
            None => loose.push((name.clone(), v.clone())),
        }
    }
    Grouped { snapshots, loose }
}

/// Every reported path and every object path above one: the writability
/// entries (from GetParameterNames) that stay when a table is re-read.
pub(super) fn reported_paths(values: &[(String, CachedValue)]) -> HashSet<&[u8]> {
    let mut paths = HashSet::with_capacity(values.len() * 2);
    for (name, _) in values {
        let b = name.as_bytes();
        paths.insert(b);
        // The objects strictly above, deepest first. Every path in the set
        // has the objects above it in the set too, so the first one already
        // there ends the walk: rows of one table share all but their own
        // object (a 2,000-value read hashed ~16,000 prefixes, ~2,400 now).
        let above = b.len().saturating_sub(1);
        for i in (0..above).rev().filter(|i| b[*i] == b'.') {
            if !paths.insert(&b[..=i]) {
                break;
            }
        }
    }
    paths
}

/// The partial paths strictly above `path` (`Device.`, `Device.Hosts.` for
/// `Device.Hosts.Host.`): where a snapshot covering `path` may be stored
/// besides the keys that start with `path`.
pub(super) fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.char_indices()
        .filter(|(i, c)| *c == '.' && i + 1 < path.len())
        .map(move |(i, _)| &path[..=i])
}

/// A device's cached parameters gathered from every place they are kept
/// (per-parameter values, writability, table snapshots, the latest
/// Inform), then joined by [`Listing::finish`]: for each path the newest
/// value (the one gathered first on a tie) and its writability.
///
/// Gathered into one list and sorted once rather than inserted one by one
/// into an ordered map: every source is already in path order or nearly
/// (a table's rows in instance order), which the sort takes as runs. A
/// topology refresh loads ~2,000 values this way; the map's inserts were
/// most of the load.
#[derive(Default)]
pub(super) struct Listing {
    rows: Vec<(Vec<u8>, Gathered)>,
}

enum Gathered {
    Value(CachedValue),
    Writable(bool),
}

impl Listing {
    pub fn value(&mut self, path: Vec<u8>, value: CachedValue) {
        self.rows.push((path, Gathered::Value(value)));
    }

    pub fn writable(&mut self, path: Vec<u8>, writable: bool) {
        self.rows.push((path, Gathered::Writable(writable)));
    }

    /// The rows of a snapshot or an Inform that lie under `prefix`.
    pub fn values_under(&mut self, prefix: &str, rows: Vec<(String, CachedValue)>) {
        let under = rows.into_iter().filter(|(n, _)| n.starts_with(prefix));
        self.rows
            .extend(under.map(|(n, v)| (n.into_bytes(), Gathered::Value(v))));
    }

    /// The listing, in path order.
    pub fn finish(self) -> Vec<(String, StoredParam)> {
        let mut rows = self.rows;
        // Stable: rows of one path keep the order they were gathered in.
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, StoredParam)> = Vec::with_capacity(rows.len());
        for (path, row) in rows {
            let same = out.last().is_some_and(|(p, _)| p.as_bytes() == path);
            if !same {
                let path = String::from_utf8(path)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                out.push((path, StoredParam::default()));
            }
            let Some((_, slot)) = out.last_mut() else {
                continue;
            };
            match row {
                Gathered::Value(v) => {
                    if slot
                        .value
                        .as_ref()
                        .is_none_or(|old| v.updated_ms > old.updated_ms)
                    {
                        slot.value = Some(v);
                    }
                }
                Gathered::Writable(w) => slot.writable = Some(w),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cwmp::ValueType;

    fn v(value: &str, at: u64) -> CachedValue {
        CachedValue {
            value: value.into(),
            kind: ValueType::String,
            updated_ms: at,
        }
    }

    #[test]
    fn values_go_to_the_longest_prefix_or_stay_loose() {
        let prefixes = vec![
            "Device.Hosts.".to_string(),
            "Device.Hosts.Host.".to_string(),
            "Device.Optical.Interface.1.Stats.BytesSent".to_string(),
        ];
        let values = vec![
            ("Device.Hosts.HostNumberOfEntries".to_string(), v("1", 1)),
            ("Device.Hosts.Host.1.IPAddress".to_string(), v("a", 1)),
            (
                "Device.Optical.Interface.1.Stats.BytesSent".to_string(),
                v("9", 1),
            ),
        ];
        let g = group(&prefixes, &values);
        let names = |rows: &Vec<(String, CachedValue)>| -> Vec<String> {
            rows.iter().map(|(n, _)| n.clone()).collect()
        };
        assert_eq!(g.snapshots.len(), 2);
        assert_eq!(g.snapshots[0].0, "Device.Hosts.");
        assert_eq!(
            names(&g.snapshots[0].1),
            ["Device.Hosts.HostNumberOfEntries"]
        );
        assert_eq!(g.snapshots[1].0, "Device.Hosts.Host.");
        assert_eq!(names(&g.snapshots[1].1), ["Device.Hosts.Host.1.IPAddress"]);
        assert_eq!(
            names(&g.loose),
            ["Device.Optical.Interface.1.Stats.BytesSent"]
        );
    }

    #[test]
    fn snapshots_above_are_listed_once_and_trimmed_of_every_reread_table() {
        let prefixes = vec![
            "Device.WiFi.AccessPoint.".to_string(),
            "Device.WiFi.SSID.".to_string(),
            "Device.WiFi.SSID.1.".to_string(),
        ];
        let g = group(&prefixes, &[]);
        assert_eq!(g.snapshots_above(), ["Device.", "Device.WiFi."]);
        let rows = vec![
            ("Device.WiFi.SSID.1.SSID".to_string(), v("a", 1)),
            ("Device.WiFi.AccessPoint.1.Enable".to_string(), v("1", 1)),
            ("Device.WiFi.Radio.1.Channel".to_string(), v("6", 1)),
        ];
        let kept: Vec<String> = g.trim(rows).into_iter().map(|(n, _)| n).collect();
        assert_eq!(kept, ["Device.WiFi.Radio.1.Channel"]);
    }

    #[test]
    fn an_empty_table_is_still_a_snapshot() {
        let prefixes = ["Device.Hosts.".to_string()];
        let g = group(&prefixes, &[]);
        assert_eq!(g.snapshots.len(), 1);
        assert!(g.snapshots[0].1.is_empty());
    }

    #[test]
    fn reported_paths_are_the_values_and_every_object_above() {
        let values: Vec<(String, CachedValue)> = [
            "Device.Hosts.Host.1.IPAddress",
            "Device.Hosts.Host.1.HostName",
            "Device.Hosts.Host.2.",
            "Device.Hosts.Host.2.Active",
            "Device.WiFi.SSID.1.SSID",
            "Device.X",
            "",
        ]
        .iter()
        .map(|n| (n.to_string(), v("x", 1)))
        .collect();
        let mut got: Vec<&str> = reported_paths(&values)
            .into_iter()
            .map(|p| std::str::from_utf8(p).unwrap())
            .collect();
        got.sort_unstable();
        assert_eq!(
            got,
            [
                "",
                "Device.",
                "Device.Hosts.",
                "Device.Hosts.Host.",
                "Device.Hosts.Host.1.",
                "Device.Hosts.Host.1.HostName",
                "Device.Hosts.Host.1.IPAddress",
                "Device.Hosts.Host.2.",
                "Device.Hosts.Host.2.Active",
                "Device.WiFi.",
                "Device.WiFi.SSID.",
                "Device.WiFi.SSID.1.",
                "Device.WiFi.SSID.1.SSID",
                "Device.X",
            ]
        );
    }

    #[test]
    fn ancestors_are_the_partial_paths_above() {
        let a: Vec<&str> = ancestors("Device.Hosts.Host.1.IPAddress").collect();
        assert_eq!(
            a,
            [
                "Device.",
                "Device.Hosts.",
                "Device.Hosts.Host.",
                "Device.Hosts.Host.1."
            ]
        );
        let a: Vec<&str> = ancestors("Device.Hosts.").collect();
        assert_eq!(a, ["Device."]);
        assert_eq!(ancestors("").count(), 0);
        assert_eq!(ancestors("Device").count(), 0);
    }

    #[test]
    fn the_listing_keeps_the_newer_value_under_the_prefix() {
        let mut l = Listing::default();
        l.values_under("Device.", vec![("Device.A".into(), v("old", 1))]);
        l.writable(b"Device.B".to_vec(), true);
        l.values_under(
            "Device.",
            vec![
                ("Device.A".into(), v("new", 2)),
                ("Other.B".into(), v("x", 2)),
                ("Device.B".into(), v("b", 1)),
            ],
        );
        l.values_under("Device.", vec![("Device.A".into(), v("tie", 2))]);
        l.writable(b"Device.C".to_vec(), false);
        let out = l.finish();
        let listed: Vec<(&str, Option<&str>, Option<bool>)> = out
            .iter()
            .map(|(p, s)| {
                (
                    p.as_str(),
                    s.value.as_ref().map(|v| v.value.as_str()),
                    s.writable,
                )
            })
            .collect();
        assert_eq!(
            listed,
            [
                ("Device.A", Some("new"), None),
                ("Device.B", Some("b"), Some(true)),
                ("Device.C", None, Some(false)),
            ]
        );
    }
}
