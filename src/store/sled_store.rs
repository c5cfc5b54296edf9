//! The default embedded backend, sled, with group commit for
//! [`Store::sync`]. Records are laid out by [`super::codec`].

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Mutex;

use super::codec::{decode, encode, encode_rows, encode_value};
use super::subtree::{self, merge_newer};
use super::{
    CachedValue, CpeCredential, DeviceRecord, FaultRecord, NewFault, Store, StoreError,
    StoreResult, StoredParam, SyncFuture, Task, TaskRequest, TaskStatus, Writeback,
};

/// Separates a device id from the rest of a composite key. Device ids are
/// escaped (no NUL can occur in them), so prefix scans cannot bleed from one
/// device into another whose id extends it.
pub(super) const SEP: u8 = 0;

/// sled-backed store.
pub struct SledStore {
    db: sled::Db,
    devices: sled::Tree,
    params: sled::Tree,
    writable: sled::Tree,
    inform_values: sled::Tree,
    /// `device_id SEP prefix` → a table read in full (see [`super::subtree`]).
    subtrees: sled::Tree,
    /// The data-model catalog's records (`crate::catalog`).
    data_models: sled::Tree,
    tasks: sled::Tree,
    task_index: sled::Tree,
    faults: sled::Tree,
    credentials: sled::Tree,
    writebacks: sled::Tree,
    /// `token SEP device_id` → nothing: device search.
    search: sled::Tree,
    /// device_id → its indexed tokens (JSON list), to drop stale ones.
    search_tokens: sled::Tree,
    durability: Durability,
}

/// Group commit: writers bump `written`; a syncing caller waits for the
/// flush lock, and whoever holds it flushes everything written so far, so
/// the callers queued behind one flush find their writes already durable.
struct Durability {
    written: AtomicU64,
    durable: AtomicU64,
    leader: Mutex<()>,
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// Whether opening failed on sled's exclusive file lock (another process
/// has the database open): sled 0.34 reports it as an `Other` I/O error
/// "could not acquire lock on …: Os { …, kind: WouldBlock, … }".
fn lock_held(e: &sled::Error) -> bool {
    match e {
        sled::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::WouldBlock
                || io.to_string().starts_with("could not acquire lock on")
        }
        _ => false,
    }
}

pub(super) fn search_key(token: &str, device_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(token.len() + 1 + device_id.len());
    k.extend(token.bytes().filter(|b| *b != SEP));
    k.push(SEP);
    k.extend_from_slice(device_id.as_bytes());
    k
}

pub(super) fn composite(device_id: &str, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(device_id.len() + 1 + rest.len());
    k.extend_from_slice(device_id.as_bytes());
    k.push(SEP);
    k.extend_from_slice(rest);
    k
}

impl SledStore {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path, cache_bytes: u64) -> StoreResult<SledStore> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .flush_every_ms(Some(1000))
            .open()
            .map_err(|e| {
                if lock_held(&e) {
                    // The server keeps sled in `<data_dir>/db`.
                    let data_dir = match (dir.parent(), dir.file_name()) {
                        (Some(parent), Some(name)) if name == "db" => parent,
                        _ => dir,
                    };
                    StoreError::in_use(data_dir, dir)
                } else {
                    StoreError::Backend(format!("opening {}: {e}", dir.display()))
                }
            })?;
        let durability = Durability {
            written: AtomicU64::new(0),
            durable: AtomicU64::new(0),
            leader: Mutex::new(()),
        };
        SledStore {
            devices: db.open_tree("devices")?,
            params: db.open_tree("params")?,
            writable: db.open_tree("writable")?,
            inform_values: db.open_tree("inform_values")?,
            tasks: db.open_tree("tasks")?,
            task_index: db.open_tree("task_index")?,
            faults: db.open_tree("faults")?,
            credentials: db.open_tree("credentials")?,
            writebacks: db.open_tree("writebacks")?,
            search: db.open_tree("search")?,
            search_tokens: db.open_tree("search_tokens")?,
            subtrees: db.open_tree("subtrees")?,
            data_models: db.open_tree("data_models")?,
            db,
            durability,
        }
        .with_search_index()
    }

    /// Builds the search index of a database written before it existed.
    fn with_search_index(self) -> StoreResult<SledStore> {
        if self.search_tokens.is_empty() && !self.devices.is_empty() {
            for kv in self.devices.iter() {
                let (k, v) = kv?;
                let d: DeviceRecord = decode("device", &k, &v)?;
                self.index(&d)?;
            }
        }
        Ok(self)
    }

    /// Keeps the search index in step with a device record: only when its
    /// tokens changed (almost never, on a periodic Inform).
    fn index(&self, device: &DeviceRecord) -> StoreResult<()> {
        let tokens = device.search_tokens();
        let encoded = encode(&tokens)?;
        let old = self.search_tokens.get(device.id.as_bytes())?;
        if old.as_deref() == Some(encoded.as_slice()) {
            return Ok(());
        }
        let old: Vec<String> = match old {
            Some(o) => decode("search tokens", device.id.as_bytes(), &o)?,
            None => Vec::new(),
        };
        let mut batch = sled::Batch::default();
        for t in old.iter().filter(|t| !tokens.contains(t)) {
            batch.remove(search_key(t, &device.id));
        }
        for t in &tokens {
            batch.insert(search_key(t, &device.id), &[]);
        }
        self.search.apply_batch(batch)?;
        self.search_tokens.insert(device.id.as_bytes(), encoded)?;
        Ok(())
    }

    fn wrote(&self) {
        self.durability.written.fetch_add(1, Ordering::SeqCst);
    }

    /// Bytes the database occupies on disk.
    pub fn size_on_disk(&self) -> StoreResult<u64> {
        Ok(self.db.size_on_disk()?)
    }

    /// Every tree by name, for the migration to redb (one table each).
    pub(super) fn trees(&self) -> [(&'static str, &sled::Tree); 13] {
        [
            ("devices", &self.devices),
            ("params", &self.params),
            ("writable", &self.writable),
            ("inform_values", &self.inform_values),
            ("tasks", &self.tasks),
            ("task_index", &self.task_index),
            ("faults", &self.faults),
            ("credentials", &self.credentials),
            ("writebacks", &self.writebacks),
            ("search", &self.search),
            ("search_tokens", &self.search_tokens),
            ("subtrees", &self.subtrees),
            ("data_models", &self.data_models),
        ]
    }

    /// An id above every task and fault id this store ever gave out.
    pub(super) fn next_id(&self) -> StoreResult<u64> {
        Ok(self.db.generate_id()? + 1)
    }
}

impl Store for SledStore {
    fn device(&self, id: &str) -> StoreResult<Option<DeviceRecord>> {
        match self.devices.get(id.as_bytes())? {
            Some(v) => decode("device", id.as_bytes(), &v).map(Some),
            None => Ok(None),
        }
    }

    fn put_device(&self, device: &DeviceRecord) -> StoreResult<()> {
        self.devices.insert(device.id.as_bytes(), encode(device)?)?;
        self.index(device)?;
        self.wrote();
        Ok(())
    }

    fn delete_device(&self, id: &str) -> StoreResult<bool> {
        if self.devices.remove(id.as_bytes())?.is_none() {
            return Ok(false);
        }
        let all = composite(id, b"");
        for tree in [&self.params, &self.writable, &self.subtrees] {
            let mut batch = sled::Batch::default();
            for k in tree.scan_prefix(&all).keys() {
                batch.remove(k?);
            }
            tree.apply_batch(batch)?;
        }
        self.inform_values.remove(id.as_bytes())?;
        let mut tasks = sled::Batch::default();
        let mut index = sled::Batch::default();
        for k in self.tasks.scan_prefix(&all).keys() {
            let k = k?;
            if let Some(task_id) = k.get(all.len()..) {
                index.remove(task_id);
            }
            tasks.remove(k);
        }
        self.tasks.apply_batch(tasks)?;
        self.task_index.apply_batch(index)?;
        // Faults are keyed by id alone: a full scan, as `faults` does.
        let mut faults = sled::Batch::default();
        for kv in self.faults.iter() {
            let (k, v) = kv?;
            let f: FaultRecord = decode("fault", &k, &v)?;
            if f.device_id == id {
                faults.remove(k);
            }
        }
        self.faults.apply_batch(faults)?;
        if let Some(old) = self.search_tokens.remove(id.as_bytes())? {
            let tokens: Vec<String> = decode("search tokens", id.as_bytes(), &old)?;
            let mut batch = sled::Batch::default();
            for t in &tokens {
                batch.remove(search_key(t, id));
            }
            self.search.apply_batch(batch)?;
        }
        self.writebacks.remove(id.as_bytes())?;
        self.data_models.remove(format!("d/{id}").as_bytes())?;
        self.wrote();
        Ok(true)
    }

    fn search_devices(
        &self,
        keys: &[String],
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        let mut ids = std::collections::BTreeSet::new();
        for key in keys.iter().filter(|k| !k.is_empty()) {
            for k in self.search.scan_prefix(key.as_bytes()).keys() {
                let k = k?;
                // token SEP device-id: the id is after the last separator
                // (tokens never contain SEP, ids may not either).
                if let Some(pos) = k.iter().rposition(|b| *b == SEP) {
                    let id = String::from_utf8_lossy(&k[pos + 1..]).into_owned();
                    if after.is_none_or(|a| id.as_str() > a) {
                        ids.insert(id);
                    }
                }
                // Bounded work for a one-letter query on a big fleet.
                if ids.len() >= limit.saturating_mul(4).max(1000) {
                    break;
                }
            }
        }
        Ok(ids.into_iter().take(limit).collect())
    }

    fn list_devices(&self, after: Option<&str>, limit: usize) -> StoreResult<Vec<DeviceRecord>> {
        let iter = match after {
            Some(a) => {
                let mut start = a.as_bytes().to_vec();
                start.push(0);
                self.devices.range(start..)
            }
            None => self.devices.iter(),
        };
        let mut out = Vec::with_capacity(limit.min(1024));
        for kv in iter.take(limit) {
            let (k, v) = kv?;
            out.push(decode("device", &k, &v)?);
        }
        Ok(out)
    }

    fn parameters(&self, device_id: &str, prefix: &str) -> StoreResult<Vec<(String, StoredParam)>> {
        let start = composite(device_id, prefix.as_bytes());
        let skip = device_id.len() + 1;
        // Both trees are sorted by path: join them in one pass.
        let mut out: std::collections::BTreeMap<Vec<u8>, StoredParam> = Default::default();
        for kv in self.params.scan_prefix(&start) {
            let (k, v) = kv?;
            let value: CachedValue = decode("parameter", &k, &v)?;
            out.entry(k[skip..].to_vec()).or_default().value = Some(value);
        }
        for kv in self.writable.scan_prefix(&start) {
            let (k, v) = kv?;
            out.entry(k[skip..].to_vec()).or_default().writable = Some(v.first() == Some(&1));
        }
        for kv in self.subtrees.scan_prefix(&start) {
            let (k, v) = kv?;
            merge_newer(&mut out, prefix, decode("table snapshot", &k, &v)?);
        }
        for above in subtree::ancestors(prefix) {
            let key = composite(device_id, above.as_bytes());
            if let Some(v) = self.subtrees.get(&key)? {
                merge_newer(&mut out, prefix, decode("table snapshot", &key, &v)?);
            }
        }
        if let Some(bytes) = self.inform_values.get(device_id.as_bytes())? {
            let latest = decode("inform values", device_id.as_bytes(), &bytes)?;
            merge_newer(&mut out, prefix, latest);
        }
        Ok(out
            .into_iter()
            .map(|(k, p)| (String::from_utf8_lossy(&k).into_owned(), p))
            .collect())
    }

    fn put_values(&self, device_id: &str, values: &[(String, CachedValue)]) -> StoreResult<()> {
        if values.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for (name, v) in values {
            batch.insert(composite(device_id, name.as_bytes()), encode_value(v)?);
        }
        self.params.apply_batch(batch)?;
        self.wrote();
        Ok(())
    }

    fn put_inform_values(
        &self,
        device_id: &str,
        values: &[(String, CachedValue)],
    ) -> StoreResult<()> {
        self.inform_values
            .insert(device_id.as_bytes(), encode_rows(values)?)?;
        self.wrote();
        Ok(())
    }

    fn put_writability(&self, device_id: &str, names: &[(String, bool)]) -> StoreResult<()> {
        if names.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for (name, w) in names {
            batch.insert(composite(device_id, name.as_bytes()), &[u8::from(*w)]);
        }
        self.writable.apply_batch(batch)?;
        self.wrote();
        Ok(())
    }

    fn clear_parameters(&self, device_id: &str) -> StoreResult<()> {
        for tree in [&self.params, &self.writable, &self.subtrees] {
            let mut batch = sled::Batch::default();
            for k in tree.scan_prefix(composite(device_id, b"")).keys() {
                batch.remove(k?);
            }
            tree.apply_batch(batch)?;
        }
        self.inform_values.remove(device_id.as_bytes())?;
        self.wrote();
        Ok(())
    }

    fn replace_subtrees(
        &self,
        device_id: &str,
        prefixes: &[String],
        values: &[(String, CachedValue)],
    ) -> StoreResult<()> {
        let skip = device_id.len() + 1;
        let grouped = subtree::group(prefixes, values);
        let fresh = subtree::reported_paths(values);
        let mut params = sled::Batch::default();
        let mut writable = sled::Batch::default();
        let mut snapshots = sled::Batch::default();
        for (prefix, _) in &grouped.snapshots {
            let under = composite(device_id, prefix.as_bytes());
            // Per-parameter values and smaller snapshots under the prefix
            // are superseded by this snapshot.
            for k in self.params.scan_prefix(&under).keys() {
                params.remove(k?);
            }
            for k in self.subtrees.scan_prefix(&under).keys() {
                snapshots.remove(k?);
            }
            // Object paths (ending in `.`, from GetParameterNames) stay
            // while a value below them was reported.
            for k in self.writable.scan_prefix(&under).keys() {
                let k = k?;
                if !fresh.contains(&k[skip..]) {
                    writable.remove(k);
                }
            }
        }
        // A bigger snapshot above keeps its rows outside the re-read tables.
        for above in grouped.snapshots_above() {
            let key = composite(device_id, above.as_bytes());
            if let Some(v) = self.subtrees.get(&key)? {
                let rows = grouped.trim(decode("table snapshot", &key, &v)?);
                snapshots.insert(key, encode_rows(&rows)?);
            }
        }
        for (prefix, rows) in &grouped.snapshots {
            if !rows.is_empty() {
                snapshots.insert(composite(device_id, prefix.as_bytes()), encode_rows(rows)?);
            }
        }
        self.params.apply_batch(params)?;
        self.writable.apply_batch(writable)?;
        self.subtrees.apply_batch(snapshots)?;
        self.put_values(device_id, &grouped.loose)?;
        self.wrote();
        Ok(())
    }

    fn insert_task(
        &self,
        device_id: &str,
        request: TaskRequest,
        name: &str,
        now_ms: u64,
    ) -> StoreResult<Task> {
        // sled ids are unique and increase across restarts.
        let id = self.db.generate_id()? + 1;
        let task = Task {
            id,
            device_id: device_id.to_owned(),
            request,
            name: name.to_owned(),
            status: TaskStatus::Pending,
            created_ms: now_ms,
            updated_ms: now_ms,
            attempts: 0,
            response: None,
            fault: None,
            outcome: None,
        };
        self.put_task(&task)?;
        Ok(task)
    }

    fn put_task(&self, task: &Task) -> StoreResult<()> {
        self.tasks.insert(
            composite(&task.device_id, &task.id.to_be_bytes()),
            encode(task)?,
        )?;
        self.task_index
            .insert(task.id.to_be_bytes(), task.device_id.as_bytes())?;
        self.wrote();
        Ok(())
    }

    fn task(&self, task_id: u64) -> StoreResult<Option<Task>> {
        let Some(device) = self.task_index.get(task_id.to_be_bytes())? else {
            return Ok(None);
        };
        let device = String::from_utf8_lossy(&device).into_owned();
        let key = composite(&device, &task_id.to_be_bytes());
        match self.tasks.get(&key)? {
            Some(v) => decode("task", &key, &v).map(Some),
            None => Ok(None),
        }
    }

    fn tasks(&self, device_id: &str) -> StoreResult<Vec<Task>> {
        let mut out = Vec::new();
        for kv in self.tasks.scan_prefix(composite(device_id, b"")) {
            let (k, v) = kv?;
            out.push(decode("task", &k, &v)?);
        }
        Ok(out)
    }

    fn prune_finished_tasks(&self, device_id: &str, keep: usize) -> StoreResult<()> {
        let finished: Vec<Task> = self
            .tasks(device_id)?
            .into_iter()
            .filter(|t| t.status.is_finished())
            .collect();
        if finished.len() <= keep {
            return Ok(());
        }
        let drop = finished.len() - keep;
        for t in &finished[..drop] {
            self.tasks
                .remove(composite(device_id, &t.id.to_be_bytes()))?;
            self.task_index.remove(t.id.to_be_bytes())?;
        }
        self.wrote();
        Ok(())
    }

    fn record_fault(&self, fault: NewFault) -> StoreResult<FaultRecord> {
        let id = self.db.generate_id()? + 1;
        let record = FaultRecord {
            id,
            device_id: fault.device_id,
            at_ms: fault.at_ms,
            source: fault.source.to_owned(),
            code: fault.code,
            message: fault.message,
            rpc: fault.rpc,
            task_id: fault.task_id,
        };
        self.faults.insert(id.to_be_bytes(), encode(&record)?)?;
        self.wrote();
        Ok(record)
    }

    fn fault(&self, fault_id: u64) -> StoreResult<Option<FaultRecord>> {
        let key = fault_id.to_be_bytes();
        match self.faults.get(key)? {
            Some(v) => decode("fault", &key, &v).map(Some),
            None => Ok(None),
        }
    }

    fn delete_fault(&self, fault_id: u64) -> StoreResult<bool> {
        let existed = self.faults.remove(fault_id.to_be_bytes())?.is_some();
        self.wrote();
        Ok(existed)
    }

    fn faults(&self, device_id: Option<&str>, limit: usize) -> StoreResult<Vec<FaultRecord>> {
        let mut out = Vec::new();
        for kv in self.faults.iter().rev() {
            if out.len() >= limit {
                break;
            }
            let (k, v) = kv?;
            let f: FaultRecord = decode("fault", &k, &v)?;
            if device_id.is_none_or(|d| d == f.device_id) {
                out.push(f);
            }
        }
        Ok(out)
    }

    fn cpe_credential(&self, username: &str) -> StoreResult<Option<CpeCredential>> {
        match self.credentials.get(username.as_bytes())? {
            Some(v) => decode("credential", username.as_bytes(), &v).map(Some),
            None => Ok(None),
        }
    }

    fn put_cpe_credential(&self, credential: &CpeCredential) -> StoreResult<()> {
        self.credentials
            .insert(credential.username.as_bytes(), encode(credential)?)?;
        self.wrote();
        Ok(())
    }

    fn delete_cpe_credential(&self, username: &str) -> StoreResult<bool> {
        let existed = self.credentials.remove(username.as_bytes())?.is_some();
        self.wrote();
        Ok(existed)
    }

    fn put_writeback(&self, w: &Writeback) -> StoreResult<()> {
        self.writebacks.insert(w.device_id.as_bytes(), encode(w)?)?;
        self.wrote();
        Ok(())
    }

    fn writebacks(&self, limit: usize) -> StoreResult<Vec<Writeback>> {
        let mut out = Vec::new();
        for kv in self.writebacks.iter().take(limit) {
            let (k, v) = kv?;
            out.push(decode("writeback", &k, &v)?);
        }
        Ok(out)
    }

    fn delete_writeback(&self, device_id: &str) -> StoreResult<()> {
        self.writebacks.remove(device_id.as_bytes())?;
        self.wrote();
        Ok(())
    }

    fn data_model(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.data_models.get(key.as_bytes())?.map(|v| v.to_vec()))
    }

    fn put_data_model(&self, key: &str, bytes: &[u8]) -> StoreResult<()> {
        self.data_models.insert(key.as_bytes(), bytes)?;
        self.wrote();
        Ok(())
    }

    fn sync(&self) -> SyncFuture<'_> {
        Box::pin(async move {
            let d = &self.durability;
            let target = d.written.load(Ordering::SeqCst);
            if d.durable.load(Ordering::SeqCst) >= target {
                return Ok(());
            }
            let _leader = d.leader.lock().await;
            if d.durable.load(Ordering::SeqCst) >= target {
                return Ok(());
            }
            let covered = d.written.load(Ordering::SeqCst);
            let db = self.db.clone();
            tokio::task::spawn_blocking(move || db.flush())
                .await
                .map_err(|e| StoreError::Sync(e.to_string()))?
                .map_err(|e| StoreError::Sync(e.to_string()))?;
            d.durable.fetch_max(covered, Ordering::SeqCst);
            Ok(())
        })
    }

    fn flush_blocking(&self) -> StoreResult<()> {
        self.db.flush()?;
        Ok(())
    }
}
