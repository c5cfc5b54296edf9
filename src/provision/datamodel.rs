//! A device's data model as the device itself reported it: every name
//! GetParameterNames returned, objects with their trailing dot, each with
//! its writability. Pure: no I/O; the catalog (`crate::catalog`) stores and
//! shares trees.
//!
//! The ACS never asks a device for a name it lacks: every
//! GetParameterValues / SetParameterValues is built from a tree.
//!
//! # Stable and volatile parts
//!
//! Some tables change between two sessions of the same device: hosts come
//! and go, WiFi stations associate, mesh satellites join
//! ([`is_volatile`]). The stored tree keeps those tables' objects but not
//! their instances ([`DataModelTree::stable`]); they are learned again
//! whenever they are read. What remains is the same for every unit of one
//! model and firmware, so one stored copy serves them all.
//!
//! # Encoding
//!
//! [`DataModelTree::encode`]: `GDM1`, the count, then each name in sorted
//! order as (length of the prefix shared with the previous name, length of
//! the rest, the rest, a flag byte: 1 = writable), lengths as LEB128. A
//! 6,400-name TP-Link tree takes about 60 KB.

use std::collections::BTreeMap;
use std::ops::Bound;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A stored tree that cannot be read back.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TreeDecodeError {
    #[error("not a data model record (bad magic)")]
    Magic,
    #[error("data model record truncated at byte {0}")]
    Truncated(usize),
    #[error("data model record: name {0} is not UTF-8")]
    Utf8(usize),
    #[error("data model record: name {0} shares more than the previous name has")]
    Prefix(usize),
}

/// Names and writability of one device's data model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataModelTree {
    /// Objects end with `.`; leaves do not.
    names: BTreeMap<String, bool>,
}

/// Table names whose instances come and go between sessions.
const VOLATILE_TABLES: &[&str] = &["Host", "AssociatedDevice", "APDevice", "STA", "Result"];

/// Whether `path` lies inside an instance of a volatile table: a host, a
/// WiFi station, a mesh node (`MultiAP.APDevice.{i}`,
/// `DataElements.Network.Device.{i}`), a DHCP lease
/// (`Server.Pool.{i}.Client.{j}`), a diagnostic result. The table object
/// itself (`Device.Hosts.Host.`) is not.
pub fn is_volatile(path: &str) -> bool {
    // The three segments before the current one, without allocating: this
    // runs for every name of every tree stored.
    let (mut before3, mut before2, mut table) = ("", "", "");
    for seg in path.split('.') {
        let instance = !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit());
        if instance
            && (VOLATILE_TABLES.contains(&table)
                || (table == "Device" && before2 == "Network")
                || (table == "Client" && before3 == "Pool"))
        {
            return true;
        }
        before3 = before2;
        before2 = table;
        table = seg;
    }
    false
}

fn write_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn read_len(bytes: &[u8], at: &mut usize) -> Result<usize, TreeDecodeError> {
    let mut n: usize = 0;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at).ok_or(TreeDecodeError::Truncated(*at))?;
        *at += 1;
        n |= usize::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
        if b & 0x80 == 0 {
            return Ok(n);
        }
    }
    Err(TreeDecodeError::Truncated(*at))
}

const MAGIC: &[u8; 4] = b"GDM1";

impl DataModelTree {
    /// A tree from `(name, writable)` pairs (a GetParameterNames answer).
    /// Blank names are dropped; a name listed twice keeps its last flag.
    pub fn from_names<S: Into<String>>(names: impl IntoIterator<Item = (S, bool)>) -> Self {
        let mut t = DataModelTree::default();
        for (n, w) in names {
            let n = n.into();
            if !n.trim().is_empty() {
                t.names.insert(n, w);
            }
        }
        t
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Whether the device has this parameter or object (objects end in `.`).
    pub fn contains(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    /// Whether the device has this object (`Device.WiFi.SSID.1.`), listed
    /// or implied by a name under it.
    pub fn has_object(&self, object: &str) -> bool {
        object.ends_with('.') && self.entries_under(object).next().is_some()
    }

    /// Whether the device has this parameter (a leaf, not an object).
    pub fn has_leaf(&self, name: &str) -> bool {
        !name.ends_with('.') && self.names.contains_key(name)
    }

    /// Writability of a parameter or object, if the device has it.
    pub fn writable(&self, name: &str) -> Option<bool> {
        self.names.get(name).copied()
    }

    /// Whether the ACS may set this parameter: a leaf the device reported
    /// writable.
    pub fn can_write(&self, name: &str) -> bool {
        !name.ends_with('.') && self.names.get(name) == Some(&true)
    }

    /// Every name (objects and leaves) under `prefix`, with writability,
    /// in sorted order.
    pub fn entries_under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, bool)> {
        self.names
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, w)| (k.as_str(), *w))
    }

    /// The parameters (leaves) under `prefix` (or `prefix` itself when it
    /// is a leaf), sorted.
    pub fn leaves_under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> {
        self.entries_under(prefix)
            .map(|(k, _)| k)
            .filter(|k| !k.ends_with('.'))
    }

    /// Every name, sorted.
    pub fn iter(&self) -> impl Iterator<Item = (&str, bool)> {
        self.names.iter().map(|(k, w)| (k.as_str(), *w))
    }

    /// The instances of a table (`Device.WiFi.SSID.`) as object paths
    /// (`Device.WiFi.SSID.3.`), in instance-number order.
    pub fn instances(&self, table: &str) -> Vec<String> {
        if !table.ends_with('.') {
            return Vec::new();
        }
        let mut found: Vec<(u64, String)> = Vec::new();
        let mut last = String::new();
        for (name, _) in self.entries_under(table) {
            let rest = &name[table.len()..];
            let Some((seg, _)) = rest.split_once('.') else {
                continue;
            };
            if seg == last || seg.is_empty() || !seg.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            last = seg.to_owned();
            if let Ok(n) = seg.parse::<u64>() {
                found.push((n, format!("{table}{seg}.")));
            }
        }
        found.sort();
        found.dedup();
        found.into_iter().map(|(_, p)| p).collect()
    }

    /// Concrete names matching a pattern whose `*` segments stand for any
    /// instance (`Device.WiFi.AccessPoint.*.Security.KeyPassphrase`), in
    /// instance order; only names the device has.
    pub fn expand(&self, pattern: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.expand_into(pattern, &mut out, 0);
        out
    }

    fn expand_into(&self, pattern: &str, out: &mut Vec<String>, depth: u8) {
        if depth > 6 {
            return;
        }
        match pattern.find(".*.").or_else(|| {
            pattern
                .ends_with(".*")
                .then(|| pattern.len().saturating_sub(2))
        }) {
            None => {
                if self.contains(pattern) {
                    out.push(pattern.to_owned());
                }
            }
            Some(at) => {
                let table = &pattern[..=at];
                let tail = pattern.get(at + 3..).unwrap_or("");
                for inst in self.instances(table) {
                    if tail.is_empty() {
                        out.push(inst);
                    } else {
                        self.expand_into(&format!("{inst}{tail}"), out, depth + 1);
                    }
                }
            }
        }
    }

    /// The root object (`Device.` or `InternetGatewayDevice.`), if the
    /// tree holds one of them.
    pub fn root(&self) -> Option<&'static str> {
        ["Device.", "InternetGatewayDevice."]
            .into_iter()
            .find(|r| self.entries_under(r).next().is_some())
    }

    /// Replaces everything under `prefix` by `names` (a GetParameterNames
    /// of that subtree); names outside `prefix` are ignored.
    pub fn replace_subtree(
        &mut self,
        prefix: &str,
        names: impl IntoIterator<Item = (String, bool)>,
    ) {
        if prefix.is_empty() {
            self.names.clear();
        } else {
            let doomed: Vec<String> = self
                .entries_under(prefix)
                .map(|(k, _)| k.to_owned())
                .collect();
            for k in doomed {
                self.names.remove(&k);
            }
        }
        for (n, w) in names {
            if n.starts_with(prefix) && !n.trim().is_empty() {
                self.names.insert(n, w);
            }
        }
    }

    /// The tree without the instances of volatile tables (see the module
    /// docs): what is stored and shared between devices.
    pub fn stable(&self) -> DataModelTree {
        DataModelTree {
            names: self
                .names
                .iter()
                .filter(|(k, _)| !is_volatile(k))
                .map(|(k, w)| (k.clone(), *w))
                .collect(),
        }
    }

    /// The compact encoding (module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.names.len() * 12);
        out.extend_from_slice(MAGIC);
        write_len(&mut out, self.names.len());
        let mut prev: &str = "";
        for (name, w) in &self.names {
            let shared = prev
                .bytes()
                .zip(name.bytes())
                .take_while(|(a, b)| a == b)
                .count();
            // Never split a UTF-8 character.
            let mut shared = shared;
            while !name.is_char_boundary(shared) {
                shared -= 1;
            }
            let rest = &name.as_bytes()[shared..];
            write_len(&mut out, shared);
            write_len(&mut out, rest.len());
            out.extend_from_slice(rest);
            out.push(u8::from(*w));
            prev = name;
        }
        out
    }

    /// Reads [`DataModelTree::encode`]'s output back; never panics on junk.
    pub fn decode(bytes: &[u8]) -> Result<DataModelTree, TreeDecodeError> {
        if bytes.get(..4) != Some(MAGIC.as_slice()) {
            return Err(TreeDecodeError::Magic);
        }
        let mut at = 4;
        let count = read_len(bytes, &mut at)?;
        let mut names = BTreeMap::new();
        let mut prev = String::new();
        for i in 0..count {
            let shared = read_len(bytes, &mut at)?;
            let len = read_len(bytes, &mut at)?;
            if shared > prev.len() || !prev.is_char_boundary(shared) {
                return Err(TreeDecodeError::Prefix(i));
            }
            let end = at.checked_add(len).ok_or(TreeDecodeError::Truncated(at))?;
            let rest = bytes.get(at..end).ok_or(TreeDecodeError::Truncated(at))?;
            let rest = std::str::from_utf8(rest).map_err(|_| TreeDecodeError::Utf8(i))?;
            at = end;
            let flag = *bytes.get(at).ok_or(TreeDecodeError::Truncated(at))?;
            at += 1;
            let mut name = String::with_capacity(shared + rest.len());
            name.push_str(&prev[..shared]);
            name.push_str(rest);
            names.insert(name.clone(), flag & 1 == 1);
            prev = name;
        }
        Ok(DataModelTree { names })
    }

    /// Content id: 32 hex digits of the SHA-256 of the encoding. Equal
    /// trees have equal ids whichever device reported them.
    pub fn id(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.encode());
        digest.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// What turns `base` into `self`.
    pub fn delta_from(&self, base: &DataModelTree) -> TreeDelta {
        let added = self
            .names
            .iter()
            .filter(|(k, w)| base.names.get(*k) != Some(*w))
            .map(|(k, w)| (k.clone(), *w))
            .collect();
        let removed = base
            .names
            .keys()
            .filter(|k| !self.names.contains_key(*k))
            .cloned()
            .collect();
        TreeDelta { added, removed }
    }

    /// `base` with `delta` applied.
    pub fn with_delta(base: &DataModelTree, delta: &TreeDelta) -> DataModelTree {
        let mut t = base.clone();
        for k in &delta.removed {
            t.names.remove(k);
        }
        for (k, w) in &delta.added {
            t.names.insert(k.clone(), *w);
        }
        t
    }
}

/// The difference between a device's tree and the shared tree of its model.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeDelta {
    pub added: Vec<(String, bool)>,
    pub removed: Vec<String>,
}

impl TreeDelta {
    pub fn len(&self) -> usize {
        self.added.len() + self.removed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The longest object path (ending in `.`) that every name starts with;
/// `""` when they share nothing (or there are none).
pub fn common_object(names: &[String]) -> String {
    let Some(first) = names.first() else {
        return String::new();
    };
    let mut len = first.len();
    for n in &names[1..] {
        len = len.min(
            first
                .bytes()
                .zip(n.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    let prefix = &first[..len];
    match prefix.rfind('.') {
        Some(at) => prefix[..=at].to_owned(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> DataModelTree {
        DataModelTree::from_names([
            ("Device.", false),
            ("Device.WiFi.", false),
            ("Device.WiFi.SSID.", true),
            ("Device.WiFi.SSID.1.", false),
            ("Device.WiFi.SSID.1.SSID", true),
            ("Device.WiFi.SSID.10.", false),
            ("Device.WiFi.SSID.10.SSID", true),
            ("Device.WiFi.SSID.2.", false),
            ("Device.WiFi.SSID.2.SSID", true),
            ("Device.WiFi.SSID.2.BSSID", false),
            ("Device.Hosts.Host.", false),
            ("Device.Hosts.Host.3.", false),
            ("Device.Hosts.Host.3.PhysAddress", false),
            (
                "Device.WiFi.AccessPoint.1.AssociatedDevice.7.MACAddress",
                false,
            ),
            (
                "Device.Services.VoiceService.1.SIP.Client.1.AuthUserName",
                true,
            ),
        ])
    }

    #[test]
    fn lookups_instances_and_patterns() {
        let t = tree();
        assert!(t.has_leaf("Device.WiFi.SSID.1.SSID"));
        assert!(!t.has_leaf("Device.WiFi.SSID.1."));
        assert!(t.can_write("Device.WiFi.SSID.2.SSID"));
        assert!(!t.can_write("Device.WiFi.SSID.2.BSSID"));
        assert!(!t.can_write("Device.WiFi.SSID.9.SSID"));
        assert_eq!(
            t.instances("Device.WiFi.SSID."),
            [
                "Device.WiFi.SSID.1.",
                "Device.WiFi.SSID.2.",
                "Device.WiFi.SSID.10."
            ]
        );
        assert_eq!(
            t.expand("Device.WiFi.SSID.*.SSID"),
            [
                "Device.WiFi.SSID.1.SSID",
                "Device.WiFi.SSID.2.SSID",
                "Device.WiFi.SSID.10.SSID"
            ]
        );
        assert_eq!(
            t.expand("Device.WiFi.SSID.*.BSSID"),
            ["Device.WiFi.SSID.2.BSSID"]
        );
        assert!(t.expand("Device.Nope.*.X").is_empty());
        assert_eq!(t.root(), Some("Device."));
        assert_eq!(
            t.leaves_under("Device.WiFi.SSID.2.").collect::<Vec<_>>(),
            ["Device.WiFi.SSID.2.BSSID", "Device.WiFi.SSID.2.SSID"]
        );
    }

    #[test]
    fn volatile_tables() {
        for v in [
            "Device.Hosts.Host.3.PhysAddress",
            "Device.Hosts.Host.3.",
            "Device.WiFi.AccessPoint.1.AssociatedDevice.7.MACAddress",
            "Device.WiFi.MultiAP.APDevice.2.Radio.1.AP.1.BSSID",
            "Device.WiFi.DataElements.Network.Device.1.ID",
            "Device.DHCPv4.Server.Pool.1.Client.4.Chaddr",
            "InternetGatewayDevice.LANDevice.1.Hosts.Host.2.MACAddress",
            "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.AssociatedDevice.1.AssociatedDeviceMACAddress",
        ] {
            assert!(is_volatile(v), "{v}");
        }
        for s in [
            "Device.Hosts.Host.",
            "Device.Hosts.HostNumberOfEntries",
            "Device.WiFi.SSID.1.SSID",
            "Device.Services.VoiceService.1.SIP.Client.1.AuthUserName",
            "Device.WiFi.DataElements.Network.ControllerID",
            "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID",
        ] {
            assert!(!is_volatile(s), "{s}");
        }
        let st = tree().stable();
        assert!(st.contains("Device.Hosts.Host."));
        assert!(!st.contains("Device.Hosts.Host.3.PhysAddress"));
        assert!(st.contains("Device.Services.VoiceService.1.SIP.Client.1.AuthUserName"));
    }

    #[test]
    fn encoding_round_trips_and_rejects_junk() {
        let t = tree();
        let bytes = t.encode();
        assert_eq!(DataModelTree::decode(&bytes).unwrap(), t);
        assert_eq!(t.id(), DataModelTree::decode(&bytes).unwrap().id());
        assert_eq!(t.id().len(), 32);
        assert_eq!(DataModelTree::decode(b"nope"), Err(TreeDecodeError::Magic));
        for cut in 4..bytes.len() {
            assert!(
                DataModelTree::decode(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let utf = DataModelTree::from_names([("Device.X_é.Ä", true), ("Device.X_é.Ö", false)]);
        assert_eq!(DataModelTree::decode(&utf.encode()).unwrap(), utf);
        assert_eq!(
            DataModelTree::decode(&DataModelTree::default().encode()).unwrap(),
            DataModelTree::default()
        );
    }

    #[test]
    fn deltas_and_subtrees() {
        let base = tree();
        let mut dev = base.clone();
        dev.replace_subtree(
            "Device.WiFi.SSID.",
            [
                ("Device.WiFi.SSID.".to_owned(), true),
                ("Device.WiFi.SSID.1.".to_owned(), false),
                ("Device.WiFi.SSID.1.SSID".to_owned(), false),
                ("Device.Elsewhere".to_owned(), true),
            ],
        );
        assert!(!dev.contains("Device.WiFi.SSID.2.SSID"));
        assert!(!dev.contains("Device.Elsewhere"), "outside the prefix");
        assert_eq!(dev.writable("Device.WiFi.SSID.1.SSID"), Some(false));
        let d = dev.delta_from(&base);
        assert_eq!(d.added, [("Device.WiFi.SSID.1.SSID".to_owned(), false)]);
        assert_eq!(d.removed.len(), 5);
        assert_eq!(DataModelTree::with_delta(&base, &d), dev);
        assert!(base.delta_from(&base).is_empty());
    }

    #[test]
    fn common_objects() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            common_object(&v(&["Device.WiFi.SSID.1.SSID", "Device.WiFi.SSID.10.SSID"])),
            "Device.WiFi.SSID."
        );
        assert_eq!(
            common_object(&v(&["Device.WiFi.SSID.1.SSID", "Device.Hosts."])),
            "Device."
        );
        assert_eq!(
            common_object(&v(&["Device.A", "InternetGatewayDevice.B"])),
            ""
        );
        assert_eq!(common_object(&[]), "");
    }
}
