//! The catalog of discovered data models: every device's names and
//! writability, stored once per model and firmware.
//!
//! A device's tree (its stable part, [`DataModelTree::stable`]) is stored
//! as a difference from the shared tree of its model and firmware: the
//! first device of an (OUI, ProductClass, ModelName, SoftwareVersion)
//! stores its tree as that model's base; later ones store only what they
//! add or lack (usually nothing). A device whose tree differs a lot (other
//! hardware under the same name) gets a base of its own, shared with the
//! devices whose trees are identical to it (bases are content-addressed).
//! So a million devices of four models keep four trees, plus small
//! differences.
//!
//! Records, in the store's data-model table: `b/{id}` a base
//! ([`DataModelTree::encode`]), `m/{model key}` the id of a model's base,
//! `d/{device id}` a device's [`TreeDelta`] (MessagePack). Bases are
//! immutable, so decoded ones are kept in a small in-memory cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::provision::datamodel::{DataModelTree, TreeDelta};
use crate::store::{DataModelInfo, DeviceRecord, Store, StoreError, StoreResult};

/// Bases kept decoded in memory (a few models and firmwares per ISP; each
/// ~0.6 MB decoded for 6,400 names).
const CACHE_BASES: usize = 64;

/// A device's difference from its model's base beyond which it gets a base
/// of its own: 64 names, or 5 % of the base.
fn delta_limit(base_len: usize) -> usize {
    (base_len / 20).max(64)
}

/// Shared trees, cached.
#[derive(Default)]
pub struct Catalog {
    bases: Mutex<HashMap<String, Arc<DataModelTree>>>,
}

fn model_key(device: &DeviceRecord) -> String {
    let canon = format!(
        "{}\u{1}{}\u{1}{}\u{1}{}",
        device.identity.oui,
        device.identity.product_class,
        device.model_name.as_deref().unwrap_or(""),
        device.software_version.as_deref().unwrap_or("")
    );
    let d = ring::digest::digest(&ring::digest::SHA256, canon.as_bytes());
    d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn corrupt(key: &str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what: "data model",
        key: key.to_owned(),
        reason: reason.to_string(),
    }
}

impl Catalog {
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// A base by id, from the cache or the store.
    fn base(&self, store: &dyn Store, id: &str) -> StoreResult<Option<Arc<DataModelTree>>> {
        if let Some(t) = self.lock().get(id) {
            return Ok(Some(t.clone()));
        }
        let key = format!("b/{id}");
        let Some(bytes) = store.data_model(&key)? else {
            return Ok(None);
        };
        let tree = Arc::new(DataModelTree::decode(&bytes).map_err(|e| corrupt(&key, e))?);
        let mut cache = self.lock();
        if cache.len() >= CACHE_BASES {
            // Any one goes: bases are few, and one read back is cheap.
            if let Some(k) = cache.keys().next().cloned() {
                cache.remove(&k);
            }
        }
        cache.insert(id.to_owned(), tree.clone());
        Ok(Some(tree))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<DataModelTree>>> {
        // The map is valid after any panic (single inserts and clears).
        self.bases.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores what a device reported (its volatile tables left out) and
    /// returns what its record should say about it. `device` carries the
    /// model name and software version the tree goes with.
    pub fn store(
        &self,
        store: &dyn Store,
        device: &DeviceRecord,
        tree: &DataModelTree,
        now_ms: u64,
    ) -> StoreResult<DataModelInfo> {
        let info = |base: String, has_delta: bool, names: usize| DataModelInfo {
            base,
            has_delta,
            names: u32::try_from(names).unwrap_or(u32::MAX),
            software_version: device.software_version.clone(),
            discovered_ms: now_ms,
        };
        let model = format!("m/{}", model_key(device));
        let model_base = match store.data_model(&model)? {
            Some(id) => String::from_utf8(id).ok(),
            None => None,
        };
        let model_base = match model_base {
            Some(id) => self.base(store, &id)?.map(|b| (id, b)),
            None => None,
        };
        // The common case, checked without building anything: the device
        // has exactly its model's tree.
        if let Some((id, base)) = &model_base {
            let stable = tree
                .iter()
                .filter(|(n, _)| !crate::provision::datamodel::is_volatile(n));
            if stable.eq(base.iter()) {
                return Ok(info(id.clone(), false, base.len()));
            }
        }
        let stable = tree.stable();
        let info = |base: String, has_delta: bool| info(base, has_delta, stable.len());
        if let Some((base_id, base)) = model_base {
            let delta = stable.delta_from(&base);
            if delta.len() <= delta_limit(base.len()) {
                let bytes =
                    rmp_serde::to_vec(&delta).map_err(|e| StoreError::Backend(e.to_string()))?;
                store.put_data_model(&format!("d/{}", device.id), &bytes)?;
                return Ok(info(base_id, true));
            }
        }
        let id = stable.id();
        let key = format!("b/{id}");
        if store.data_model(&key)?.is_none() {
            store.put_data_model(&key, &stable.encode())?;
        }
        if store.data_model(&model)?.is_none() {
            store.put_data_model(&model, id.as_bytes())?;
        }
        Ok(info(id, false))
    }

    /// The device's stored tree; `None` when the record points at data
    /// that is not there (the device is then discovered again).
    pub fn load(
        &self,
        store: &dyn Store,
        device_id: &str,
        info: &DataModelInfo,
    ) -> StoreResult<Option<Arc<DataModelTree>>> {
        let Some(base) = self.base(store, &info.base)? else {
            return Ok(None);
        };
        if !info.has_delta {
            return Ok(Some(base));
        }
        let key = format!("d/{device_id}");
        let Some(bytes) = store.data_model(&key)? else {
            return Ok(None);
        };
        let delta: TreeDelta = rmp_serde::from_slice(&bytes).map_err(|e| corrupt(&key, e))?;
        Ok(Some(Arc::new(DataModelTree::with_delta(&base, &delta))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cwmp::CwmpVersion;
    use crate::cwmp::rpc::DeviceIdStruct;
    use crate::store::SledStore;

    fn device(serial: &str, sw: &str) -> DeviceRecord {
        let mut d = DeviceRecord::new(
            format!("1C61B4-Device2-{serial}"),
            DeviceIdStruct {
                manufacturer: "TP-Link".into(),
                oui: "1C61B4".into(),
                product_class: "Device2".into(),
                serial_number: serial.into(),
            },
            CwmpVersion::V1_0,
            0,
        );
        d.model_name = Some("EX220".into());
        d.software_version = Some(sw.into());
        d
    }

    fn tree(extra: &[&str], hosts: usize) -> DataModelTree {
        let mut names: Vec<(String, bool)> = (1..=200)
            .map(|i| (format!("Device.X.Table.{i}.Value"), true))
            .collect();
        names.extend(extra.iter().map(|e| (e.to_string(), false)));
        names.extend((1..=hosts).map(|h| (format!("Device.Hosts.Host.{h}.PhysAddress"), false)));
        DataModelTree::from_names(names)
    }

    #[test]
    fn devices_of_one_model_share_one_tree_and_keep_their_differences() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path(), 1 << 20).unwrap();
        let cat = Catalog::new();
        let a = device("A", "1.0");
        let ia = cat.store(&store, &a, &tree(&[], 3), 1).unwrap();
        assert!(!ia.has_delta);
        assert_eq!(ia.names, 200, "hosts are not stored");
        // Same model, other hosts: the same base, no delta.
        let b = device("B", "1.0");
        let ib = cat.store(&store, &b, &tree(&[], 9), 2).unwrap();
        assert_eq!((ib.base.as_str(), ib.has_delta), (ia.base.as_str(), false));
        // A port mapping of its own: a small delta.
        let c = device("C", "1.0");
        let ic = cat
            .store(
                &store,
                &c,
                &tree(&["Device.NAT.PortMapping.1.Enable"], 0),
                3,
            )
            .unwrap();
        assert_eq!(ic.base, ia.base);
        assert!(ic.has_delta);
        let loaded = cat.load(&store, &c.id, &ic).unwrap().unwrap();
        assert!(loaded.contains("Device.NAT.PortMapping.1.Enable"));
        assert_eq!(loaded.len(), 201);
        // Other hardware under the same name: a base of its own.
        let d = device("D", "1.0");
        let other = DataModelTree::from_names([("Device.Y.Only", true)]);
        let id = cat.store(&store, &d, &other, 4).unwrap();
        assert_ne!(id.base, ia.base);
        assert_eq!(*cat.load(&store, &d.id, &id).unwrap().unwrap(), other);
        // Reads come back after a restart (a new catalog, empty cache).
        let fresh = Catalog::new();
        assert_eq!(fresh.load(&store, &a.id, &ia).unwrap().unwrap().len(), 200);
        // A record pointing at nothing: rediscover.
        let gone = DataModelInfo {
            base: "00".into(),
            ..ia
        };
        assert!(fresh.load(&store, &a.id, &gone).unwrap().is_none());
    }
}
