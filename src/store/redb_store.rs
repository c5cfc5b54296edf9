//! The embedded redb backend: one redb table per [`Table`], the store's
//! logic being [`KvStore`]'s. Same keys and record layout as sled, so a
//! sled directory migrates by copying bytes ([`RedbStore::open`]).
//!
//! Durability: every write is one small write transaction committed with
//! [`redb::Durability::None`] — visible to readers at once, written to the
//! file but not fsynced. [`Store::sync`] (the group commit of [`KvStore`])
//! then makes everything written so far durable with one
//! [`redb::Durability::Immediate`] commit shared by all the callers waiting
//! at that moment (a durable commit persists the non-durable ones before
//! it). That commit uses redb's quick repair: it saves
//! the allocator state (two-phase commit), so opening after a `kill -9` loads
//! it instead of walking the whole file; what a crash loses is only what no
//! `sync` covered, which nothing acknowledged.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};
use tracing::{info, warn};

use super::journal::Journaled;
use super::kv::{Backend, Batch, KvStore, Scan, Table, Visit, prefix_end};
use super::sled_store::SledBackend;
use super::{StoreError, StoreResult};

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
/// user name → user (`crate::accounts`).
const USERS: Def = TableDefinition::new("users");
/// hash of a console cookie → web session.
const WEB_SESSIONS: Def = TableDefinition::new("web_sessions");
/// entry id (u64 BE) → audit entry.
const AUDIT: Def = TableDefinition::new("audit");
/// `device SEP metric SEP time` → reading (f64 BE).
const SERIES: Def = TableDefinition::new("series");
const ISSUED_TOKENS: Def = TableDefinition::new("issued_tokens");
const FILES: Def = TableDefinition::new("files");
const CAMPAIGNS: Def = TableDefinition::new("campaigns");
const CAMPAIGN_DEVICES: Def = TableDefinition::new("campaign_devices");
/// device id → what every Inform changes in its record.
const CONTACTS: Def = TableDefinition::new("contacts");
/// `device SEP kind` → open alarm.
const ALARMS: Def = TableDefinition::new("alarms");
/// Store bookkeeping (not a sled tree): the id counter.
const META: Def = TableDefinition::new("meta");
/// Next task/fault id (u64 BE); ids are shared by tasks and faults, as sled's
/// `generate_id` was.
const NEXT_ID: &[u8] = b"next_id";

/// The redb table of a store table (same names as sled's trees).
fn def(t: Table) -> Def {
    match t {
        Table::Devices => DEVICES,
        Table::Params => PARAMS,
        Table::Writable => WRITABLE,
        Table::InformValues => INFORM_VALUES,
        Table::Tasks => TASKS,
        Table::TaskIndex => TASK_INDEX,
        Table::Faults => FAULTS,
        Table::Credentials => CREDENTIALS,
        Table::Writebacks => WRITEBACKS,
        Table::Search => SEARCH,
        Table::SearchTokens => SEARCH_TOKENS,
        Table::Subtrees => SUBTREES,
        Table::DataModels => DATA_MODELS,
        Table::Users => USERS,
        Table::WebSessions => WEB_SESSIONS,
        Table::Audit => AUDIT,
        Table::Series => SERIES,
        Table::IssuedTokens => ISSUED_TOKENS,
        Table::Files => FILES,
        Table::Campaigns => CAMPAIGNS,
        Table::CampaignDevices => CAMPAIGN_DEVICES,
        Table::Alarms => ALARMS,
        Table::Contacts => CONTACTS,
    }
}

/// The redb store: [`KvStore`] over [`RedbBackend`].
pub type RedbStore = KvStore<Journaled<RedbBackend>>;

/// redb's side of the store.
pub struct RedbBackend {
    db: Arc<Database>,
    path: PathBuf,
    /// Whether opening had to repair the file (an unclean shutdown whose
    /// last commit did not save the allocator state).
    repaired: bool,
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

impl KvStore<Journaled<RedbBackend>> {
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
        KvStore::new(RedbBackend::open_journaled(path, cache_bytes)?)
    }

    /// Bytes the database file occupies.
    pub fn size_on_disk(&self) -> StoreResult<u64> {
        let path = &self.backend().inner().path;
        let file = std::fs::metadata(path)
            .map(|m| m.len())
            .map_err(|e| io_error("reading the size of", path, e))?;
        Ok(file + self.backend().journal_bytes()?)
    }

    /// Whether opening had to repair the file (see the module doc).
    pub fn was_repaired(&self) -> bool {
        self.backend().inner().repaired
    }
}

/// Where the contact journal of the redb file `file` is: beside it,
/// `<file>.contacts`.
fn journal_dir(file: &Path) -> PathBuf {
    let mut dir = file.as_os_str().to_owned();
    dir.push(".contacts");
    PathBuf::from(dir)
}

impl RedbBackend {
    /// [`RedbBackend::open_path`] with the contact journal beside the file
    /// (`<file>.contacts`): how the store is always opened.
    pub(super) fn open_journaled(
        path: &Path,
        cache_bytes: u64,
    ) -> StoreResult<Journaled<RedbBackend>> {
        let backend = RedbBackend::open_path(path, cache_bytes)?;
        Journaled::open(backend, &journal_dir(path))
    }

    /// Opens (creating if needed) the redb file `path`, with no migration.
    pub(super) fn open_path(path: &Path, cache_bytes: u64) -> StoreResult<RedbBackend> {
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
        let backend = RedbBackend {
            db: Arc::new(db),
            path: path.to_owned(),
            repaired: repaired.load(Ordering::SeqCst),
        };
        backend.prepare()?;
        info!(
            path = %path.display(),
            ms = started.elapsed().as_millis() as u64,
            repaired = backend.repaired,
            "store opened"
        );
        Ok(backend)
    }

    /// Creates the tables and keeps the id counter above every id in use;
    /// durable, so readers never meet a missing table.
    fn prepare(&self) -> StoreResult<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_quick_repair(true);
        {
            for t in Table::ALL {
                txn.open_table(def(t))?;
            }
            let last_id = |d: Def| -> StoreResult<u64> {
                let t = txn.open_table(d)?;
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
        }
        txn.commit()?;
        Ok(())
    }

    /// Runs `f` in a write transaction committed without durability (see
    /// the module doc).
    fn write<R>(&self, f: impl FnOnce(&WriteTransaction) -> StoreResult<R>) -> StoreResult<R> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(redb::Durability::None);
        let out = f(&txn)?;
        txn.commit()?;
        Ok(out)
    }
}

impl Backend for RedbBackend {
    fn get(&self, table: Table, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        let t = self.db.begin_read()?.open_table(def(table))?;
        Ok(t.get(key)?.map(|v| v.value().to_vec()))
    }

    fn scan(&self, table: Table, scan: Scan<'_>, visit: &mut Visit<'_>) -> StoreResult<()> {
        let t = self.db.begin_read()?.open_table(def(table))?;
        let end = prefix_end(scan.prefix);
        let upper = match &end {
            Some(e) => Bound::Excluded(e.as_slice()),
            None => Bound::Unbounded,
        };
        let lower = match scan.after {
            Some(a) if a >= scan.prefix => Bound::Excluded(a),
            _ => Bound::Included(scan.prefix),
        };
        let range = t.range::<&[u8]>((lower, upper))?;
        if scan.reverse {
            for kv in range.rev() {
                let (k, v) = kv?;
                if !visit(k.value(), v.value())? {
                    break;
                }
            }
        } else {
            for kv in range {
                let (k, v) = kv?;
                if !visit(k.value(), v.value())? {
                    break;
                }
            }
        }
        Ok(())
    }

    fn apply(&self, batch: Batch) -> StoreResult<()> {
        self.write(|txn| {
            for (t, k, v) in &batch.ops {
                let mut table = txn.open_table(def(*t))?;
                match v {
                    Some(v) => {
                        table.insert(k.as_slice(), v.as_slice())?;
                    }
                    None => {
                        table.remove(k.as_slice())?;
                    }
                }
            }
            Ok(())
        })
    }

    fn next_id(&self) -> StoreResult<u64> {
        self.write(take_id)
    }

    fn flush(&self) -> StoreResult<()> {
        durable_commit(&self.db)
    }

    fn raise_ids_above(&self, floor: u64) -> StoreResult<()> {
        self.write(|txn| {
            let mut meta = txn.open_table(META)?;
            let current = match meta.get(NEXT_ID)? {
                Some(v) => read_u64("id counter", NEXT_ID, v.value())?,
                None => 1,
            };
            if current <= floor {
                meta.insert(NEXT_ID, (floor + 1).to_be_bytes().as_slice())?;
            }
            Ok(())
        })
    }

    fn unsynced_limit(&self) -> Option<u64> {
        // redb frees pages only at a durable commit: a long series of
        // non-durable ones (a bulk load that never syncs) grows the file
        // and slows every commit. The ACS syncs before every answer, so
        // this only happens in bulk loads.
        Some(UNSYNCED_WRITES_MAX)
    }
}

/// Entries of one table of a sled store, with their count: from its tree,
/// or from the contact journal for the contacts.
type Entries = Box<dyn Iterator<Item = StoreResult<(Vec<u8>, Vec<u8>)>>>;

fn sled_entries(sled: &Journaled<SledBackend>, table: Table) -> StoreResult<(Entries, u64)> {
    if table == Table::Contacts {
        let mut all = Vec::new();
        sled.scan(table, Scan::default(), &mut |k, v| {
            all.push((k.to_vec(), v.to_vec()));
            Ok(true)
        })?;
        let n = all.len() as u64;
        return Ok((Box::new(all.into_iter().map(Ok)), n));
    }
    let tree = sled.inner().tree(table);
    let n = tree.len() as u64;
    let entries = tree.iter().map(|kv| {
        kv.map(|(k, v)| (k.to_vec(), v.to_vec()))
            .map_err(StoreError::from)
    });
    Ok((Box::new(entries), n))
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
    let sled = SledBackend::open_journaled(sled_dir, cache_bytes)?;
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
    for table in Table::ALL {
        let (def, name) = (def(table), table.name());
        let mut copied = 0u64;
        let (mut entries, in_sled) = sled_entries(&sled, table)?;
        loop {
            let mut txn = db.begin_write()?;
            txn.set_durability(redb::Durability::None);
            let mut more = false;
            {
                let mut t = txn.open_table(def)?;
                for kv in entries.by_ref() {
                    let (k, v) = kv?;
                    t.insert(k.as_slice(), v.as_slice())?;
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
    use crate::store::{DeviceRecord, Store};

    fn device(id: &str) -> DeviceRecord {
        DeviceRecord::new(id.into(), DeviceIdStruct::default(), CwmpVersion::V1_0, 1)
    }

    /// What `kill -9` leaves on disk: the file as the OS has it (every
    /// write the process made, fsynced or not), copied while the store is
    /// still open.
    fn crash_copy(s: &RedbStore, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        let file = &s.backend().inner().path;
        std::fs::copy(file, to.join(FILE_NAME)).unwrap();
        let journal = journal_dir(&to.join(FILE_NAME));
        crate::store::journal::copy_files(&journal_dir(file), &journal);
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
}
