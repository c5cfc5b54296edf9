//! The embedded redb backend, with group commit for [`Store::sync`].
//!
//! One redb table per sled tree, same keys, same record layout
//! ([`super::codec`]), so a sled directory migrates by copying bytes
//! ([`RedbStore::open`]).
//!
//! Durability: every write method is one small write transaction committed
//! with [`redb::Durability::None`] — visible to readers at once, written to
//! the file but not fsynced. [`Store::sync`] then makes everything written so
//! far durable with one [`redb::Durability::Immediate`] commit shared by all
//! the callers waiting at that moment (a durable commit persists the
//! non-durable ones before it). That commit uses redb's quick repair: it saves
//! the allocator state (two-phase commit), so opening after a `kill -9` loads
//! it instead of walking the whole file; what a crash loses is only what no
//! `sync` covered, which nothing acknowledged.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use redb::{
    Database, ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use tokio::sync::Mutex;
use tracing::{info, warn};

use super::codec::{decode, encode, encode_rows, encode_value};
use super::sled_store::{SEP, composite, search_key};
use super::subtree::{self, merge_newer};
use super::{
    CachedValue, CpeCredential, DeviceRecord, FaultRecord, NewFault, SledStore, Store, StoreError,
    StoreResult, StoredParam, SyncFuture, Task, TaskRequest, TaskStatus, Writeback,
};

/// The database file in the data directory.
pub const FILE_NAME: &str = "store.redb";
/// Where an older version kept its sled database, migrated at first open.
pub const LEGACY_SLED_DIR: &str = "db";
/// What that directory is renamed to once migrated (never deleted).
pub const MIGRATED_SLED_DIR: &str = "db.migrated";
/// Writes not yet durable after which a writer makes them durable itself.
const UNSYNCED_WRITES_MAX: u64 = 256;
/// Keys copied per write transaction while migrating.
const MIGRATION_BATCH: u64 = 4096;

type Def = TableDefinition<'static, &'static [u8], &'static [u8]>;

const DEVICES: Def = TableDefinition::new("devices");
const PARAMS: Def = TableDefinition::new("params");
const WRITABLE: Def = TableDefinition::new("writable");
const INFORM_VALUES: Def = TableDefinition::new("inform_values");
/// `device_id SEP prefix` → a table read in full (see [`super::subtree`]).
const SUBTREES: Def = TableDefinition::new("subtrees");
const TASKS: Def = TableDefinition::new("tasks");
/// task id (u64 BE) → device id.
const TASK_INDEX: Def = TableDefinition::new("task_index");
/// fault id (u64 BE) → fault.
const FAULTS: Def = TableDefinition::new("faults");
const CREDENTIALS: Def = TableDefinition::new("credentials");
const WRITEBACKS: Def = TableDefinition::new("writebacks");
/// The data-model catalog's records (`crate::catalog`).
const DATA_MODELS: Def = TableDefinition::new("data_models");
/// `token SEP device_id` → nothing: device search.
const SEARCH: Def = TableDefinition::new("search");
/// device_id → its indexed tokens (JSON list), to drop stale ones.
const SEARCH_TOKENS: Def = TableDefinition::new("search_tokens");
/// Store bookkeeping (not a sled tree): the id counter.
const META: Def = TableDefinition::new("meta");
/// Next task/fault id (u64 BE); ids are shared by tasks and faults, as sled's
/// `generate_id` was.
const NEXT_ID: &[u8] = b"next_id";

/// The tables that mirror sled's trees, by the same names.
const SLED_TABLES: [Def; 13] = [
    DEVICES,
    PARAMS,
    WRITABLE,
    INFORM_VALUES,
    TASKS,
    TASK_INDEX,
    FAULTS,
    CREDENTIALS,
    WRITEBACKS,
    SEARCH,
    SEARCH_TOKENS,
    SUBTREES,
    DATA_MODELS,
];

/// redb-backed store.
pub struct RedbStore {
    db: Arc<Database>,
    path: PathBuf,
    durability: Durability,
    /// Whether opening had to repair the file (an unclean shutdown whose
    /// last commit did not save the allocator state).
    repaired: bool,
}

/// Group commit: writers bump `written` after each (non-durable) commit; a
/// syncing caller waits for the leader lock, and whoever holds it makes
/// everything written so far durable, so the callers queued behind one
/// durable commit find their writes already covered.
struct Durability {
    written: AtomicU64,
    durable: AtomicU64,
    leader: Mutex<()>,
    /// Taken by the writer that makes a long series of unsynced writes
    /// durable (see [`RedbStore::write`]).
    catch_up: std::sync::Mutex<()>,
}

macro_rules! backend_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Backend(e.to_string())
            }
        }
    )*};
}
backend_errors!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

fn sync_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Sync(e.to_string())
}

/// The first key after every key that starts with `prefix` (`None`: no bound).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Calls `f` on every entry whose key starts with `prefix`, in key order,
/// until it returns `false`.
fn scan_prefix<T>(
    table: &T,
    prefix: &[u8],
    mut f: impl FnMut(&[u8], &[u8]) -> StoreResult<bool>,
) -> StoreResult<()>
where
    T: ReadableTable<&'static [u8], &'static [u8]>,
{
    let end = prefix_end(prefix);
    let upper = match &end {
        Some(e) => Bound::Excluded(e.as_slice()),
        None => Bound::Unbounded,
    };
    for kv in table.range::<&[u8]>((Bound::Included(prefix), upper))? {
        let (k, v) = kv?;
        if !f(k.value(), v.value())? {
            break;
        }
    }
    Ok(())
}

/// Removes every entry under `prefix` for which `remove` says so.
fn remove_prefix(
    table: &mut redb::Table<'_, &'static [u8], &'static [u8]>,
    prefix: &[u8],
    mut remove: impl FnMut(&[u8]) -> bool,
) -> StoreResult<()> {
    let end = prefix_end(prefix);
    let upper = match &end {
        Some(e) => Bound::Excluded(e.as_slice()),
        None => Bound::Unbounded,
    };
    table.retain_in::<&[u8], _>((Bound::Included(prefix), upper), |k, _| !remove(k))?;
    Ok(())
}

fn read_u64(what: &'static str, key: &[u8], bytes: &[u8]) -> StoreResult<u64> {
    let b: [u8; 8] = bytes.try_into().map_err(|_| StoreError::Corrupt {
        what,
        key: String::from_utf8_lossy(key).into_owned(),
        reason: format!("{} bytes, not 8", bytes.len()),
    })?;
    Ok(u64::from_be_bytes(b))
}

/// Takes the next task/fault id inside a write transaction (transactions
/// are serialised, so ids never repeat, and the counter commits with the
/// record that uses it).
fn take_id(txn: &WriteTransaction) -> StoreResult<u64> {
    let mut meta = txn.open_table(META)?;
    let id = match meta.get(NEXT_ID)? {
        Some(v) => read_u64("id counter", NEXT_ID, v.value())?,
        None => 1,
    };
    meta.insert(NEXT_ID, (id + 1).to_be_bytes().as_slice())?;
    Ok(id)
}

/// One durable commit: persists every non-durable commit before it, and
/// saves the allocator state so that a restart after a crash is quick.
fn durable_commit(db: &Database) -> StoreResult<()> {
    let mut txn = db.begin_write().map_err(sync_error)?;
    txn.set_durability(redb::Durability::Immediate);
    txn.set_quick_repair(true);
    txn.commit().map_err(sync_error)
}

fn builder(cache_bytes: u64, repaired: Option<Arc<AtomicBool>>) -> redb::Builder {
    let mut b = redb::Builder::new();
    b.set_cache_size(usize::try_from(cache_bytes).unwrap_or(usize::MAX));
    b.set_repair_callback(move |session| {
        if let Some(flag) = &repaired {
            if !flag.swap(true, Ordering::SeqCst) {
                warn!("the store was not shut down cleanly: repairing it (a full scan)");
            }
        }
        info!(
            progress = format!("{:.0}%", session.progress() * 100.0),
            "repairing the store"
        );
    });
    b
}

fn sync_dir(dir: &Path) {
    // Makes the renames durable; best effort (not every platform can).
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("{what} {}: {e}", path.display()))
}

impl RedbStore {
    /// Opens (creating if needed) the store of the data directory
    /// `data_dir`: the file `<data_dir>/store.redb`. When that file does not
    /// exist yet and an older version's sled directory `<data_dir>/db` does,
    /// every sled tree is first copied into it; the sled directory is then
    /// renamed `db.migrated` (kept, never deleted).
    pub fn open(data_dir: &Path, cache_bytes: u64) -> StoreResult<RedbStore> {
        let file = data_dir.join(FILE_NAME);
        let legacy = data_dir.join(LEGACY_SLED_DIR);
        let exists = file
            .try_exists()
            .map_err(|e| io_error("checking", &file, e))?;
        if !exists && legacy.is_dir() {
            migrate(&legacy, &file, cache_bytes)?;
        } else if exists && legacy.is_dir() {
            warn!(
                sled = %legacy.display(),
                store = %file.display(),
                "a sled database is beside the store and is not used (left by an interrupted migration or an older version)"
            );
        }
        Self::open_file(&file, cache_bytes)
    }

    /// Opens (creating if needed) the redb file `path`, with no migration.
    pub fn open_file(path: &Path, cache_bytes: u64) -> StoreResult<RedbStore> {
        let started = Instant::now();
        let repaired = Arc::new(AtomicBool::new(false));
        let db = builder(cache_bytes, Some(repaired.clone()))
            .create(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => {
                    StoreError::in_use(path.parent().unwrap_or(path), path)
                }
                e => StoreError::Backend(format!("opening {}: {e}", path.display())),
            })?;
        let store = RedbStore {
            db: Arc::new(db),
            path: path.to_owned(),
            durability: Durability {
                written: AtomicU64::new(0),
                durable: AtomicU64::new(0),
                leader: Mutex::new(()),
                catch_up: std::sync::Mutex::new(()),
            },
            repaired: repaired.load(Ordering::SeqCst),
        };
        store.prepare()?;
        info!(
            path = %path.display(),
            ms = started.elapsed().as_millis() as u64,
            repaired = store.repaired,
            "store opened"
        );
        Ok(store)
    }

    /// Creates the tables, keeps the id counter above every id in use and
    /// builds the search index of a database written before it existed;
    /// durable, so readers never meet a missing table.
    fn prepare(&self) -> StoreResult<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_quick_repair(true);
        {
            for def in SLED_TABLES {
                txn.open_table(def)?;
            }
            let last_id = |def: Def| -> StoreResult<u64> {
                let t = txn.open_table(def)?;
                let last = t.last()?;
                match last {
                    Some((k, _)) => read_u64("id", k.value(), k.value()),
                    None => Ok(0),
                }
            };
            let floor = last_id(TASK_INDEX)?.max(last_id(FAULTS)?) + 1;
            let mut meta = txn.open_table(META)?;
            let current = match meta.get(NEXT_ID)? {
                Some(v) => Some(read_u64("id counter", NEXT_ID, v.value())?),
                None => None,
            };
            if current.is_none_or(|c| c < floor) {
                meta.insert(NEXT_ID, floor.to_be_bytes().as_slice())?;
            }
            let needs_index = txn.open_table(SEARCH_TOKENS)?.is_empty()?
                && !txn.open_table(DEVICES)?.is_empty()?;
            if needs_index {
                let devices = txn.open_table(DEVICES)?;
                for kv in devices.iter()? {
                    let (k, v) = kv?;
                    let d: DeviceRecord = decode("device", k.value(), v.value())?;
                    index(&txn, &d)?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Runs `f` in a write transaction committed without durability (see
    /// the module doc); [`Store::sync`] makes it durable.
    ///
    /// redb frees pages only at a durable commit: a long series of
    /// non-durable ones (a bulk load that never syncs) grows the file and
    /// slows every commit. So a writer that finds [`UNSYNCED_WRITES_MAX`]
    /// writes not yet durable makes them durable itself; the ACS syncs
    /// before every answer, so this only happens in bulk loads.
    fn write<R>(&self, f: impl FnOnce(&WriteTransaction) -> StoreResult<R>) -> StoreResult<R> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(redb::Durability::None);
        let out = f(&txn)?;
        txn.commit()?;
        let d = &self.durability;
        let written = d.written.fetch_add(1, Ordering::SeqCst) + 1;
        if written.saturating_sub(d.durable.load(Ordering::SeqCst)) >= UNSYNCED_WRITES_MAX {
            if let Ok(_only_one) = d.catch_up.try_lock() {
                if d.written
                    .load(Ordering::SeqCst)
                    .saturating_sub(d.durable.load(Ordering::SeqCst))
                    >= UNSYNCED_WRITES_MAX
                {
                    self.flush_blocking()?;
                }
            }
        }
        Ok(out)
    }

    fn read(&self) -> StoreResult<ReadTransaction> {
        Ok(self.db.begin_read()?)
    }

    /// Bytes the database file occupies.
    pub fn size_on_disk(&self) -> StoreResult<u64> {
        std::fs::metadata(&self.path)
            .map(|m| m.len())
            .map_err(|e| io_error("reading the size of", &self.path, e))
    }

    /// Whether opening had to repair the file (see the module doc).
    pub fn was_repaired(&self) -> bool {
        self.repaired
    }
}

/// Keeps the search index in step with a device record: only when its
/// tokens changed (almost never, on a periodic Inform).
fn index(txn: &WriteTransaction, device: &DeviceRecord) -> StoreResult<()> {
    let tokens = device.search_tokens();
    let encoded = encode(&tokens)?;
    let mut known = txn.open_table(SEARCH_TOKENS)?;
    let old: Vec<String> = match known.get(device.id.as_bytes())? {
        Some(o) if o.value() == encoded.as_slice() => return Ok(()),
        Some(o) => decode("search tokens", device.id.as_bytes(), o.value())?,
        None => Vec::new(),
    };
    let mut search = txn.open_table(SEARCH)?;
    for t in old.iter().filter(|t| !tokens.contains(t)) {
        search.remove(search_key(t, &device.id).as_slice())?;
    }
    for t in &tokens {
        search.insert(search_key(t, &device.id).as_slice(), [].as_slice())?;
    }
    known.insert(device.id.as_bytes(), encoded.as_slice())?;
    Ok(())
}

fn put_values_in(
    txn: &WriteTransaction,
    device_id: &str,
    values: &[(String, CachedValue)],
) -> StoreResult<()> {
    let mut params = txn.open_table(PARAMS)?;
    for (name, v) in values {
        params.insert(
            composite(device_id, name.as_bytes()).as_slice(),
            encode_value(v)?.as_slice(),
        )?;
    }
    Ok(())
}

fn put_task_in(txn: &WriteTransaction, task: &Task) -> StoreResult<()> {
    txn.open_table(TASKS)?.insert(
        composite(&task.device_id, &task.id.to_be_bytes()).as_slice(),
        encode(task)?.as_slice(),
    )?;
    txn.open_table(TASK_INDEX)?
        .insert(task.id.to_be_bytes().as_slice(), task.device_id.as_bytes())?;
    Ok(())
}

fn tasks_in<T>(table: &T, device_id: &str) -> StoreResult<Vec<Task>>
where
    T: ReadableTable<&'static [u8], &'static [u8]>,
{
    let mut out = Vec::new();
    scan_prefix(table, &composite(device_id, b""), |k, v| {
        out.push(decode("task", k, v)?);
        Ok(true)
    })?;
    Ok(out)
}

impl Store for RedbStore {
    fn device(&self, id: &str) -> StoreResult<Option<DeviceRecord>> {
        let t = self.read()?.open_table(DEVICES)?;
        match t.get(id.as_bytes())? {
            Some(v) => decode("device", id.as_bytes(), v.value()).map(Some),
            None => Ok(None),
        }
    }

    fn put_device(&self, device: &DeviceRecord) -> StoreResult<()> {
        let encoded = encode(device)?;
        self.write(|txn| {
            txn.open_table(DEVICES)?
                .insert(device.id.as_bytes(), encoded.as_slice())?;
            index(txn, device)
        })
    }

    fn delete_device(&self, id: &str) -> StoreResult<bool> {
        self.write(|txn| {
            if txn.open_table(DEVICES)?.remove(id.as_bytes())?.is_none() {
                return Ok(false);
            }
            let all = composite(id, b"");
            for def in [PARAMS, WRITABLE, SUBTREES] {
                remove_prefix(&mut txn.open_table(def)?, &all, |_| true)?;
            }
            txn.open_table(INFORM_VALUES)?.remove(id.as_bytes())?;
            let mut task_ids: Vec<Vec<u8>> = Vec::new();
            remove_prefix(&mut txn.open_table(TASKS)?, &all, |k| {
                if let Some(task_id) = k.get(all.len()..) {
                    task_ids.push(task_id.to_vec());
                }
                true
            })?;
            let mut index = txn.open_table(TASK_INDEX)?;
            for t in &task_ids {
                index.remove(t.as_slice())?;
            }
            // Faults are keyed by id alone: a full scan, as `faults` does.
            let mut faults = txn.open_table(FAULTS)?;
            let mut fault_keys: Vec<Vec<u8>> = Vec::new();
            for kv in faults.iter()? {
                let (k, v) = kv?;
                let f: FaultRecord = decode("fault", k.value(), v.value())?;
                if f.device_id == id {
                    fault_keys.push(k.value().to_vec());
                }
            }
            for k in &fault_keys {
                faults.remove(k.as_slice())?;
            }
            let old = txn
                .open_table(SEARCH_TOKENS)?
                .remove(id.as_bytes())?
                .map(|v| v.value().to_vec());
            if let Some(old) = old {
                let tokens: Vec<String> = decode("search tokens", id.as_bytes(), &old)?;
                let mut search = txn.open_table(SEARCH)?;
                for t in &tokens {
                    search.remove(search_key(t, id).as_slice())?;
                }
            }
            txn.open_table(WRITEBACKS)?.remove(id.as_bytes())?;
            txn.open_table(DATA_MODELS)?
                .remove(format!("d/{id}").as_bytes())?;
            Ok(true)
        })
    }

    fn search_devices(
        &self,
        keys: &[String],
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        let search = self.read()?.open_table(SEARCH)?;
        let mut ids = std::collections::BTreeSet::new();
        for key in keys.iter().filter(|k| !k.is_empty()) {
            scan_prefix(&search, key.as_bytes(), |k, _| {
                // token SEP device-id: the id is after the last separator
                // (tokens never contain SEP, ids may not either).
                if let Some(pos) = k.iter().rposition(|b| *b == SEP) {
                    let id = String::from_utf8_lossy(&k[pos + 1..]).into_owned();
                    if after.is_none_or(|a| id.as_str() > a) {
                        ids.insert(id);
                    }
                }
                // Bounded work for a one-letter query on a big fleet.
                Ok(ids.len() < limit.saturating_mul(4).max(1000))
            })?;
        }
        Ok(ids.into_iter().take(limit).collect())
    }

    fn list_devices(&self, after: Option<&str>, limit: usize) -> StoreResult<Vec<DeviceRecord>> {
        let t = self.read()?.open_table(DEVICES)?;
        let lower = match after {
            Some(a) => Bound::Excluded(a.as_bytes()),
            None => Bound::Unbounded,
        };
        let mut out = Vec::with_capacity(limit.min(1024));
        for kv in t.range::<&[u8]>((lower, Bound::Unbounded))?.take(limit) {
            let (k, v) = kv?;
            out.push(decode("device", k.value(), v.value())?);
        }
        Ok(out)
    }

    fn parameters(&self, device_id: &str, prefix: &str) -> StoreResult<Vec<(String, StoredParam)>> {
        let start = composite(device_id, prefix.as_bytes());
        let skip = device_id.len() + 1;
        // One snapshot for the three tables.
        let txn = self.read()?;
        let mut out: std::collections::BTreeMap<Vec<u8>, StoredParam> = Default::default();
        scan_prefix(&txn.open_table(PARAMS)?, &start, |k, v| {
            let value: CachedValue = decode("parameter", k, v)?;
            out.entry(k[skip..].to_vec()).or_default().value = Some(value);
            Ok(true)
        })?;
        scan_prefix(&txn.open_table(WRITABLE)?, &start, |k, v| {
            out.entry(k[skip..].to_vec()).or_default().writable = Some(v.first() == Some(&1));
            Ok(true)
        })?;
        let subtrees = txn.open_table(SUBTREES)?;
        scan_prefix(&subtrees, &start, |k, v| {
            merge_newer(&mut out, prefix, decode("table snapshot", k, v)?);
            Ok(true)
        })?;
        for above in subtree::ancestors(prefix) {
            let key = composite(device_id, above.as_bytes());
            if let Some(v) = subtrees.get(key.as_slice())? {
                merge_newer(&mut out, prefix, decode("table snapshot", &key, v.value())?);
            }
        }
        if let Some(bytes) = txn.open_table(INFORM_VALUES)?.get(device_id.as_bytes())? {
            let latest = decode("inform values", device_id.as_bytes(), bytes.value())?;
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
        self.write(|txn| put_values_in(txn, device_id, values))
    }

    fn put_inform_values(
        &self,
        device_id: &str,
        values: &[(String, CachedValue)],
    ) -> StoreResult<()> {
        let encoded = encode_rows(values)?;
        self.write(|txn| {
            txn.open_table(INFORM_VALUES)?
                .insert(device_id.as_bytes(), encoded.as_slice())?;
            Ok(())
        })
    }

    fn put_writability(&self, device_id: &str, names: &[(String, bool)]) -> StoreResult<()> {
        if names.is_empty() {
            return Ok(());
        }
        self.write(|txn| {
            let mut t = txn.open_table(WRITABLE)?;
            for (name, w) in names {
                t.insert(
                    composite(device_id, name.as_bytes()).as_slice(),
                    [u8::from(*w)].as_slice(),
                )?;
            }
            Ok(())
        })
    }

    fn clear_parameters(&self, device_id: &str) -> StoreResult<()> {
        self.write(|txn| {
            let all = composite(device_id, b"");
            for def in [PARAMS, WRITABLE, SUBTREES] {
                remove_prefix(&mut txn.open_table(def)?, &all, |_| true)?;
            }
            txn.open_table(INFORM_VALUES)?
                .remove(device_id.as_bytes())?;
            Ok(())
        })
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
        let mut encoded = Vec::new();
        for (prefix, rows) in &grouped.snapshots {
            if !rows.is_empty() {
                encoded.push((composite(device_id, prefix.as_bytes()), encode_rows(rows)?));
            }
        }
        // One transaction: readers never see a table half replaced.
        self.write(|txn| {
            let mut params = txn.open_table(PARAMS)?;
            let mut writable = txn.open_table(WRITABLE)?;
            let mut subtrees = txn.open_table(SUBTREES)?;
            for (prefix, _) in &grouped.snapshots {
                let under = composite(device_id, prefix.as_bytes());
                // Per-parameter values and smaller snapshots under the
                // prefix are superseded by this snapshot.
                remove_prefix(&mut params, &under, |_| true)?;
                remove_prefix(&mut subtrees, &under, |_| true)?;
                // Object paths (ending in `.`, from GetParameterNames) stay
                // while a value below them was reported.
                remove_prefix(&mut writable, &under, |k| !fresh.contains(&k[skip..]))?;
            }
            // A bigger snapshot above keeps its rows outside the re-read
            // tables.
            for above in grouped.snapshots_above() {
                let key = composite(device_id, above.as_bytes());
                let old = match subtrees.get(key.as_slice())? {
                    Some(v) => decode("table snapshot", &key, v.value())?,
                    None => continue,
                };
                let rows = grouped.trim(old);
                subtrees.insert(key.as_slice(), encode_rows(&rows)?.as_slice())?;
            }
            for (key, bytes) in &encoded {
                subtrees.insert(key.as_slice(), bytes.as_slice())?;
            }
            drop((params, writable, subtrees));
            put_values_in(txn, device_id, &grouped.loose)
        })
    }

    fn insert_task(
        &self,
        device_id: &str,
        request: TaskRequest,
        name: &str,
        now_ms: u64,
    ) -> StoreResult<Task> {
        let mut task = Task {
            id: 0,
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
        self.write(|txn| {
            // Ids are unique and increase across restarts.
            task.id = take_id(txn)?;
            put_task_in(txn, &task)
        })?;
        Ok(task)
    }

    fn put_task(&self, task: &Task) -> StoreResult<()> {
        self.write(|txn| put_task_in(txn, task))
    }

    fn task(&self, task_id: u64) -> StoreResult<Option<Task>> {
        let txn = self.read()?;
        let Some(device) = txn
            .open_table(TASK_INDEX)?
            .get(task_id.to_be_bytes().as_slice())?
        else {
            return Ok(None);
        };
        let device = String::from_utf8_lossy(device.value()).into_owned();
        let key = composite(&device, &task_id.to_be_bytes());
        match txn.open_table(TASKS)?.get(key.as_slice())? {
            Some(v) => decode("task", &key, v.value()).map(Some),
            None => Ok(None),
        }
    }

    fn tasks(&self, device_id: &str) -> StoreResult<Vec<Task>> {
        tasks_in(&self.read()?.open_table(TASKS)?, device_id)
    }

    fn prune_finished_tasks(&self, device_id: &str, keep: usize) -> StoreResult<()> {
        // Read first, outside the write lock: nothing to do is the usual case.
        let finished = self
            .tasks(device_id)?
            .into_iter()
            .filter(|t| t.status.is_finished())
            .count();
        if finished <= keep {
            return Ok(());
        }
        self.write(|txn| {
            let mut tasks = txn.open_table(TASKS)?;
            let finished: Vec<u64> = tasks_in(&tasks, device_id)?
                .into_iter()
                .filter(|t| t.status.is_finished())
                .map(|t| t.id)
                .collect();
            if finished.len() <= keep {
                return Ok(());
            }
            let drop = finished.len() - keep;
            let mut index = txn.open_table(TASK_INDEX)?;
            for id in &finished[..drop] {
                tasks.remove(composite(device_id, &id.to_be_bytes()).as_slice())?;
                index.remove(id.to_be_bytes().as_slice())?;
            }
            Ok(())
        })
    }

    fn record_fault(&self, fault: NewFault) -> StoreResult<FaultRecord> {
        let mut record = FaultRecord {
            id: 0,
            device_id: fault.device_id,
            at_ms: fault.at_ms,
            source: fault.source.to_owned(),
            code: fault.code,
            message: fault.message,
            rpc: fault.rpc,
            task_id: fault.task_id,
        };
        self.write(|txn| {
            record.id = take_id(txn)?;
            txn.open_table(FAULTS)?.insert(
                record.id.to_be_bytes().as_slice(),
                encode(&record)?.as_slice(),
            )?;
            Ok(())
        })?;
        Ok(record)
    }

    fn fault(&self, fault_id: u64) -> StoreResult<Option<FaultRecord>> {
        let key = fault_id.to_be_bytes();
        match self.read()?.open_table(FAULTS)?.get(key.as_slice())? {
            Some(v) => decode("fault", &key, v.value()).map(Some),
            None => Ok(None),
        }
    }

    fn delete_fault(&self, fault_id: u64) -> StoreResult<bool> {
        self.write(|txn| {
            Ok(txn
                .open_table(FAULTS)?
                .remove(fault_id.to_be_bytes().as_slice())?
                .is_some())
        })
    }

    fn faults(&self, device_id: Option<&str>, limit: usize) -> StoreResult<Vec<FaultRecord>> {
        let t = self.read()?.open_table(FAULTS)?;
        let mut out = Vec::new();
        for kv in t.iter()?.rev() {
            if out.len() >= limit {
                break;
            }
            let (k, v) = kv?;
            let f: FaultRecord = decode("fault", k.value(), v.value())?;
            if device_id.is_none_or(|d| d == f.device_id) {
                out.push(f);
            }
        }
        Ok(out)
    }

    fn cpe_credential(&self, username: &str) -> StoreResult<Option<CpeCredential>> {
        match self
            .read()?
            .open_table(CREDENTIALS)?
            .get(username.as_bytes())?
        {
            Some(v) => decode("credential", username.as_bytes(), v.value()).map(Some),
            None => Ok(None),
        }
    }

    fn put_cpe_credential(&self, credential: &CpeCredential) -> StoreResult<()> {
        let encoded = encode(credential)?;
        self.write(|txn| {
            txn.open_table(CREDENTIALS)?
                .insert(credential.username.as_bytes(), encoded.as_slice())?;
            Ok(())
        })
    }

    fn delete_cpe_credential(&self, username: &str) -> StoreResult<bool> {
        self.write(|txn| {
            Ok(txn
                .open_table(CREDENTIALS)?
                .remove(username.as_bytes())?
                .is_some())
        })
    }

    fn put_writeback(&self, w: &Writeback) -> StoreResult<()> {
        let encoded = encode(w)?;
        self.write(|txn| {
            txn.open_table(WRITEBACKS)?
                .insert(w.device_id.as_bytes(), encoded.as_slice())?;
            Ok(())
        })
    }

    fn writebacks(&self, limit: usize) -> StoreResult<Vec<Writeback>> {
        let t = self.read()?.open_table(WRITEBACKS)?;
        let mut out = Vec::new();
        for kv in t.iter()?.take(limit) {
            let (k, v) = kv?;
            out.push(decode("writeback", k.value(), v.value())?);
        }
        Ok(out)
    }

    fn delete_writeback(&self, device_id: &str) -> StoreResult<()> {
        self.write(|txn| {
            txn.open_table(WRITEBACKS)?.remove(device_id.as_bytes())?;
            Ok(())
        })
    }

    fn data_model(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let t = self.read()?.open_table(DATA_MODELS)?;
        Ok(t.get(key.as_bytes())?.map(|v| v.value().to_vec()))
    }

    fn put_data_model(&self, key: &str, bytes: &[u8]) -> StoreResult<()> {
        self.write(|txn| {
            txn.open_table(DATA_MODELS)?.insert(key.as_bytes(), bytes)?;
            Ok(())
        })
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
            // Every write counted here has committed (non-durably): the
            // durable commit below covers it.
            let covered = d.written.load(Ordering::SeqCst);
            let db = self.db.clone();
            tokio::task::spawn_blocking(move || durable_commit(&db))
                .await
                .map_err(sync_error)??;
            d.durable.fetch_max(covered, Ordering::SeqCst);
            Ok(())
        })
    }

    fn flush_blocking(&self) -> StoreResult<()> {
        let covered = self.durability.written.load(Ordering::SeqCst);
        durable_commit(&self.db)?;
        self.durability.durable.fetch_max(covered, Ordering::SeqCst);
        Ok(())
    }
}

/// Copies the sled database in `sled_dir` into a new redb file `file`.
///
/// Written to `<file>.tmp` and renamed when complete and durable, so a
/// crash anywhere leaves either no `store.redb` (the next start migrates
/// again, from scratch) or a complete one. The sled directory is renamed
/// `db.migrated` last, and never deleted.
fn migrate(sled_dir: &Path, file: &Path, cache_bytes: u64) -> StoreResult<()> {
    let started = Instant::now();
    let dir = file.parent().unwrap_or(Path::new("."));
    let tmp = file.with_extension("redb.tmp");
    // sled's lock first: while another process holds it (running on sled,
    // or migrating), its temp file is not ours to remove.
    let sled = SledStore::open(sled_dir, cache_bytes)?;
    match std::fs::remove_file(&tmp) {
        Ok(()) => info!(path = %tmp.display(), "removed an interrupted migration"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error("removing", &tmp, e)),
    }
    info!(
        from = %sled_dir.display(),
        to = %file.display(),
        "migrating the sled store to redb"
    );
    let db = builder(cache_bytes, None)
        .create(&tmp)
        .map_err(|e| StoreError::Backend(format!("creating {}: {e}", tmp.display())))?;
    let mut counts: Vec<(&str, u64)> = Vec::new();
    for (def, (name, tree)) in SLED_TABLES.into_iter().zip(sled.trees()) {
        debug_assert_eq!(redb::TableHandle::name(&def), name);
        let mut copied = 0u64;
        let mut entries = tree.iter();
        loop {
            let mut txn = db.begin_write()?;
            txn.set_durability(redb::Durability::None);
            let mut more = false;
            {
                let mut t = txn.open_table(def)?;
                for kv in entries.by_ref() {
                    let (k, v) = kv?;
                    t.insert(&*k, &*v)?;
                    copied += 1;
                    if copied % MIGRATION_BATCH == 0 {
                        more = true;
                        break;
                    }
                }
            }
            txn.commit()?;
            if !more {
                break;
            }
        }
        let in_sled = tree.len() as u64;
        let in_redb = db.begin_read()?.open_table(def)?.len()?;
        if in_sled != copied || in_redb != copied {
            return Err(StoreError::Backend(format!(
                "migrating table {name}: {in_sled} entries in sled, {copied} copied, {in_redb} in redb"
            )));
        }
        counts.push((name, copied));
    }
    let next_id = sled.next_id()?;
    {
        let mut txn = db.begin_write()?;
        txn.set_durability(redb::Durability::None);
        txn.open_table(META)?
            .insert(NEXT_ID, next_id.to_be_bytes().as_slice())?;
        txn.commit()?;
    }
    durable_commit(&db)?;
    drop(db);
    drop(sled);
    std::fs::rename(&tmp, file).map_err(|e| io_error("renaming", &tmp, e))?;
    sync_dir(dir);
    let mut retired = dir.join(MIGRATED_SLED_DIR);
    let mut n = 1;
    while retired.exists() {
        retired = dir.join(format!("{MIGRATED_SLED_DIR}.{n}"));
        n += 1;
    }
    std::fs::rename(sled_dir, &retired).map_err(|e| io_error("renaming", sled_dir, e))?;
    sync_dir(dir);
    let summary = counts
        .iter()
        .map(|(name, n)| format!("{name}={n}"))
        .collect::<Vec<_>>()
        .join(" ");
    info!(
        counts = %summary,
        next_id,
        ms = started.elapsed().as_millis() as u64,
        sled_kept_at = %retired.display(),
        "migrated the sled store to redb"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cwmp::Body;
    use crate::cwmp::CwmpVersion;
    use crate::cwmp::rpc::{DeviceIdStruct, Reboot};

    fn device(id: &str) -> DeviceRecord {
        DeviceRecord::new(id.into(), DeviceIdStruct::default(), CwmpVersion::V1_0, 1)
    }

    /// What `kill -9` leaves on disk: the file as the OS has it (every
    /// write the process made, fsynced or not), copied while the store is
    /// still open.
    fn crash_copy(s: &RedbStore, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        std::fs::copy(&s.path, to.join(FILE_NAME)).unwrap();
    }

    #[tokio::test]
    async fn a_crash_keeps_what_was_synced_and_reopens_without_a_full_repair() {
        let dir = tempfile::tempdir().unwrap();
        let crashed = dir.path().join("crashed");
        let s = RedbStore::open(dir.path(), 8 << 20).unwrap();
        s.put_device(&device("SYNCED")).unwrap();
        let task = s
            .insert_task("SYNCED", Body::from(Reboot::default()).into(), "reboot", 1)
            .unwrap();
        s.sync().await.unwrap();
        // Written, visible, never synced: nothing acknowledged it.
        s.put_device(&device("UNSYNCED")).unwrap();
        let unsynced = s
            .insert_task(
                "UNSYNCED",
                Body::from(Reboot::default()).into(),
                "reboot",
                2,
            )
            .unwrap();
        assert!(s.device("UNSYNCED").unwrap().is_some());
        crash_copy(&s, &crashed);

        let c = RedbStore::open(&crashed, 8 << 20).unwrap();
        assert!(!c.was_repaired(), "the quick-repair state was not used");
        assert!(c.device("SYNCED").unwrap().is_some());
        assert_eq!(c.task(task.id).unwrap().unwrap(), task);
        assert_eq!(c.device("UNSYNCED").unwrap(), None);
        // Ids go on from what was durable (the lost task's id is free).
        let next = c
            .insert_task("SYNCED", Body::from(Reboot::default()).into(), "reboot", 3)
            .unwrap();
        assert!(next.id > task.id);
        assert!(next.id <= unsynced.id);
        drop(c);
        // And the original, shut down normally, keeps everything.
        drop(s);
        let s = RedbStore::open(dir.path(), 8 << 20).unwrap();
        assert!(s.device("UNSYNCED").unwrap().is_some());
    }

    #[tokio::test]
    async fn a_crash_before_any_sync_leaves_an_empty_store_that_opens() {
        let dir = tempfile::tempdir().unwrap();
        let crashed = dir.path().join("crashed");
        let s = RedbStore::open(dir.path(), 8 << 20).unwrap();
        s.put_device(&device("UNSYNCED")).unwrap();
        crash_copy(&s, &crashed);
        let c = RedbStore::open(&crashed, 8 << 20).unwrap();
        assert!(!c.was_repaired());
        assert!(c.list_devices(None, 10).unwrap().is_empty());
        c.put_device(&device("AFTER")).unwrap();
        c.sync().await.unwrap();
        assert_eq!(c.list_devices(None, 10).unwrap().len(), 1);
    }

    #[test]
    fn flush_blocking_makes_writes_durable() {
        let dir = tempfile::tempdir().unwrap();
        let crashed = dir.path().join("crashed");
        let s = RedbStore::open(dir.path(), 8 << 20).unwrap();
        s.put_device(&device("A")).unwrap();
        s.flush_blocking().unwrap();
        crash_copy(&s, &crashed);
        let c = RedbStore::open(&crashed, 8 << 20).unwrap();
        assert!(c.device("A").unwrap().is_some());
    }

    #[test]
    fn a_long_series_of_unsynced_writes_is_made_durable_on_the_way() {
        let dir = tempfile::tempdir().unwrap();
        let crashed = dir.path().join("crashed");
        let s = RedbStore::open(dir.path(), 8 << 20).unwrap();
        for i in 0..UNSYNCED_WRITES_MAX + 10 {
            s.put_device(&device(&format!("D-{i:04}"))).unwrap();
        }
        crash_copy(&s, &crashed);
        let c = RedbStore::open(&crashed, 8 << 20).unwrap();
        let kept = c.list_devices(None, 10_000).unwrap().len() as u64;
        assert_eq!(kept, UNSYNCED_WRITES_MAX);
    }

    #[test]
    fn prefix_end_bounds_a_prefix_scan() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }
}
