//! Persistence behind a small [`Store`] trait.
//!
//! Everything the ACS acknowledges (an Inform answered, a task accepted) is
//! written and made durable with [`Store::sync`] before the acknowledgement
//! goes out, so `kill -9` never loses it.
//!
//! The logic (key layout, indexes, snapshots, group commit) is written
//! once, in [`kv::KvStore`], over a small ordered key-value
//! [`kv::Backend`]: get, scan, apply a batch, next id, flush.
//!
//! Two embedded backends, chosen by `ACS_STORE_BACKEND`. sled
//! ([`SledStore`], `<data_dir>/db`) is the default: measured 4–5× faster
//! per session than redb 2.6 on the project's benchmark (BENCHMARKS.md).
//! redb ([`RedbStore`], `<data_dir>/store.redb`): each write is a small
//! transaction committed without fsync (visible at once), and
//! [`Store::sync`] is a group commit — one durable commit, with redb's
//! quick repair so a restart after a crash is quick, shared by every caller
//! waiting at that moment; a sled directory is migrated into it at the
//! first open (a byte copy, same keys and record layout) and renamed
//! `db.migrated`.
//!
//! Records are MessagePack (`codec.rs`); a table read in full is one
//! snapshot record per device and prefix (`subtree.rs`); what every Inform
//! changes in a device record is a small record of its own, so that a
//! periodic session does not rewrite the rest (`contact.rs`); on the
//! embedded backends those contacts live in memory and in an append-only
//! journal (`journal.rs`), not in the backend's B-tree.

mod codec;
mod contact;
pub mod copy;
mod journal;
pub mod kv;
mod model;
pub(crate) mod pg_conn;
mod pg_store;
#[cfg(test)]
pub(crate) mod pg_test;
mod redb_store;
mod sled_store;
mod subtree;
#[cfg(test)]
mod tests;

pub use kv::KvStore;
pub use model::{
    AlarmRecord, AuditEntry, AuditFilter, CachedValue, CampaignDevice, CampaignRecord,
    CampaignState, CampaignStop, CampaignWindow, CpeCredential, DataModelInfo, DeviceRecord,
    DeviceRollout, EventRecord, FaultRecord, FileRecord, IssuedToken, MAX_RECENT_EVENTS, NewFault,
    ProvisionStatus, ProvisioningState, Role, StoredParam, Task, TaskAction, TaskFault,
    TaskRequest, TaskStatus, UserRecord, WebSession, Writeback, search_keys,
};
pub use pg_store::{PgBackend, PgStore};
pub use redb_store::{RedbBackend, RedbStore};
pub use sled_store::{SledBackend, SledStore};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use thiserror::Error;

/// A store operation failed. Neither variant carries stored values, so the
/// message is safe to log.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("storage backend error: {0}")]
    Backend(String),
    #[error("stored {what} under key `{key}` is unreadable: {reason}")]
    Corrupt {
        what: &'static str,
        key: String,
        reason: String,
    },
    #[error("could not make writes durable: {0}")]
    Sync(String),
    /// The database's file lock is held: another process (a second
    /// `serve` on the same data directory) has it open.
    #[error(
        "data directory {data_dir} is in use by another gigafibre-acs process (the database lock on {database} is held); stop it or use another ACS_DATA_DIR"
    )]
    InUse { data_dir: String, database: String },
}

impl StoreError {
    /// [`StoreError::InUse`] for the database at `database`, kept in the
    /// data directory `data_dir`.
    fn in_use(data_dir: &std::path::Path, database: &std::path::Path) -> StoreError {
        let data_dir = if data_dir.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            data_dir
        };
        StoreError::InUse {
            data_dir: data_dir.display().to_string(),
            database: database.display().to_string(),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Boxed future returned by [`Store::sync`].
pub type SyncFuture<'a> = Pin<Box<dyn Future<Output = StoreResult<()>> + Send + 'a>>;

/// What the ACS persists. Methods are synchronous (the embedded backend
/// answers from memory and writes to its log) except [`Store::sync`], the
/// durability barrier, which batches concurrent callers into one flush.
pub trait Store: Send + Sync + 'static {
    fn device(&self, id: &str) -> StoreResult<Option<DeviceRecord>>;
    fn put_device(&self, device: &DeviceRecord) -> StoreResult<()>;
    /// Forgets a device: its record, cached parameters, search index
    /// entries, tasks, faults, pending ERPNext write and data-model delta.
    /// CPE credentials bound to it stay (they are how it authenticates if it
    /// comes back). `false` if there was no such device.
    fn delete_device(&self, id: &str) -> StoreResult<bool>;
    /// Devices in id order, starting after `after`.
    fn list_devices(&self, after: Option<&str>, limit: usize) -> StoreResult<Vec<DeviceRecord>>;
    /// Ids of devices one of whose [`DeviceRecord::search_tokens`] starts
    /// with one of `keys`, in id order, after `after`, at most `limit`.
    fn search_devices(
        &self,
        keys: &[String],
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<String>>;

    /// Cached parameters of a device whose path starts with `prefix`, in
    /// path order: values and writability joined.
    fn parameters(&self, device_id: &str, prefix: &str) -> StoreResult<Vec<(String, StoredParam)>>;
    /// Records reported values (overwrites).
    fn put_values(&self, device_id: &str, values: &[(String, CachedValue)]) -> StoreResult<()>;
    /// Records the ParameterList of the device's latest Inform as one
    /// record, replacing the previous one: one record per device instead of
    /// one per parameter, and no write at all when a periodic Inform repeats
    /// the values already stored. The values count as reported at the
    /// device record's `last_inform_ms` (the caller writes the record in the
    /// same session, as `apply_inform` does); [`Store::parameters`] shows
    /// whichever of them and the per-parameter values is newer.
    fn put_inform_values(
        &self,
        device_id: &str,
        values: &[(String, CachedValue)],
    ) -> StoreResult<()>;
    /// Records writability from GetParameterNames (overwrites).
    fn put_writability(&self, device_id: &str, names: &[(String, bool)]) -> StoreResult<()>;
    /// Forgets every cached parameter of a device (after `0 BOOTSTRAP`).
    fn clear_parameters(&self, device_id: &str) -> StoreResult<()>;
    /// Replaces what is cached under each of `prefixes` (partial paths
    /// ending in `.`) by `values`: a table re-read in full forgets the rows
    /// that are gone (a host that left must not linger in the topology).
    fn replace_subtrees(
        &self,
        device_id: &str,
        prefixes: &[String],
        values: &[(String, CachedValue)],
    ) -> StoreResult<()>;

    /// Queues an ACS request for a device; tasks run in id order. `name` is
    /// the API name it was asked for by (see [`Task::name`]).
    fn insert_task(
        &self,
        device_id: &str,
        request: TaskRequest,
        name: &str,
        now_ms: u64,
    ) -> StoreResult<Task>;
    fn put_task(&self, task: &Task) -> StoreResult<()>;
    fn task(&self, task_id: u64) -> StoreResult<Option<Task>>;
    /// All tasks of a device (any status), oldest first.
    fn tasks(&self, device_id: &str) -> StoreResult<Vec<Task>>;
    /// Drops finished tasks of a device beyond the newest `keep`.
    fn prune_finished_tasks(&self, device_id: &str, keep: usize) -> StoreResult<()>;

    fn record_fault(&self, fault: NewFault) -> StoreResult<FaultRecord>;
    fn fault(&self, fault_id: u64) -> StoreResult<Option<FaultRecord>>;
    /// Removes a fault; `false` if there was none.
    fn delete_fault(&self, fault_id: u64) -> StoreResult<bool>;
    /// Faults, newest first, optionally of one device.
    fn faults(&self, device_id: Option<&str>, limit: usize) -> StoreResult<Vec<FaultRecord>>;

    /// CPE credentials by HTTP username (per-device authentication).
    fn cpe_credential(&self, username: &str) -> StoreResult<Option<CpeCredential>>;
    fn put_cpe_credential(&self, credential: &CpeCredential) -> StoreResult<()>;
    /// Removes a credential; `false` if there was none.
    fn delete_cpe_credential(&self, username: &str) -> StoreResult<bool>;

    /// Queues a write to ERPNext (one per device: a newer one replaces it).
    fn put_writeback(&self, w: &Writeback) -> StoreResult<()>;
    fn writebacks(&self, limit: usize) -> StoreResult<Vec<Writeback>>;
    fn delete_writeback(&self, device_id: &str) -> StoreResult<()>;

    /// A record of the data-model catalog (`crate::catalog`), by key.
    fn data_model(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Writes a record of the data-model catalog (overwrites).
    fn put_data_model(&self, key: &str, bytes: &[u8]) -> StoreResult<()>;

    /// Resolves once every write made before the call is on disk.
    /// A person who logs in, by name.
    fn user(&self, name: &str) -> StoreResult<Option<UserRecord>>;
    fn put_user(&self, user: &UserRecord) -> StoreResult<()>;
    /// Every user, by name.
    fn users(&self) -> StoreResult<Vec<UserRecord>>;
    /// An issued API token, by the SHA-256 (hex) of the token.
    fn issued_token(&self, hash: &str) -> StoreResult<Option<IssuedToken>>;
    fn put_issued_token(&self, hash: &str, token: &IssuedToken) -> StoreResult<()>;
    /// Every issued token with its hash.
    fn issued_tokens(&self) -> StoreResult<Vec<(String, IssuedToken)>>;
    /// Revokes a token; `false` if there was none.
    fn delete_issued_token(&self, hash: &str) -> StoreResult<bool>;
    /// A file devices download (firmware), by id.
    fn file(&self, id: &str) -> StoreResult<Option<FileRecord>>;
    fn put_file(&self, file: &FileRecord) -> StoreResult<()>;
    /// Every file, by id.
    fn files(&self) -> StoreResult<Vec<FileRecord>>;
    /// `false` if there was none.
    fn delete_file(&self, id: &str) -> StoreResult<bool>;
    fn campaign(&self, id: &str) -> StoreResult<Option<CampaignRecord>>;
    fn put_campaign(&self, campaign: &CampaignRecord) -> StoreResult<()>;
    /// Every campaign, by id.
    fn campaigns(&self) -> StoreResult<Vec<CampaignRecord>>;
    /// A device's row in the last campaign that took it.
    fn campaign_device(&self, device_id: &str) -> StoreResult<Option<CampaignDevice>>;
    /// Writes rows (a campaign's creation writes all of its own at once).
    fn put_campaign_devices(&self, rows: &[CampaignDevice]) -> StoreResult<()>;
    /// The rows of one campaign, by device id.
    fn campaign_devices(&self, campaign_id: &str) -> StoreResult<Vec<CampaignDevice>>;
    /// A logged-in browser, by the hash of its cookie.
    fn web_session(&self, key: &str) -> StoreResult<Option<WebSession>>;
    fn put_web_session(&self, key: &str, session: &WebSession) -> StoreResult<()>;
    fn delete_web_sessions(&self, keys: &[String]) -> StoreResult<()>;
    /// Every web session with its key (for expiry and logging users out).
    fn web_sessions(&self) -> StoreResult<Vec<(String, WebSession)>>;
    /// Records a write (its `id` is assigned here) and returns it.
    fn append_audit(&self, entry: AuditEntry) -> StoreResult<AuditEntry>;
    /// Audit entries, newest first, that match `filter`, at most `limit`.
    fn audit(&self, filter: &AuditFilter, limit: usize) -> StoreResult<Vec<AuditEntry>>;
    /// Forgets entries older than `before_ms` (up to 10,000 per call);
    /// returns how many.
    fn prune_audit(&self, before_ms: u64) -> StoreResult<usize>;

    /// A device's history of one metric: one opaque record the
    /// [`crate::history`] module encodes (the whole retained series).
    fn series(&self, device_id: &str, metric: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Replaces that record; an empty one removes it.
    fn put_series(&self, device_id: &str, metric: &str, record: &[u8]) -> StoreResult<()>;
    /// Open alarms, of one device or all, by device then kind.
    fn alarms(&self, device_id: Option<&str>) -> StoreResult<Vec<AlarmRecord>>;
    fn put_alarm(&self, alarm: &AlarmRecord) -> StoreResult<()>;
    /// Clears an alarm; `false` if it was not open.
    fn delete_alarm(&self, device_id: &str, kind: &str) -> StoreResult<bool>;

    fn sync(&self) -> SyncFuture<'_>;
    /// Flushes synchronously (shutdown).
    fn flush_blocking(&self) -> StoreResult<()>;
}

/// Visits every device record, in id order, a page at a time (the whole
/// fleet is never in memory at once); stops at the first error.
pub fn each_device(
    store: &dyn Store,
    mut f: impl FnMut(DeviceRecord) -> StoreResult<()>,
) -> StoreResult<()> {
    const PAGE: usize = 500;
    let mut after: Option<String> = None;
    loop {
        let page = store.list_devices(after.as_deref(), PAGE)?;
        let done = page.len() < PAGE;
        after = page.last().map(|d| d.id.clone());
        for d in page {
            f(d)?;
        }
        if done {
            return Ok(());
        }
    }
}

/// A device's cached values as path → value (unmasked: for the pure
/// builders only, never shown as is).
pub fn cached_values(
    store: &dyn Store,
    device_id: &str,
) -> StoreResult<std::collections::BTreeMap<String, String>> {
    Ok(store
        .parameters(device_id, "")?
        .into_iter()
        .filter_map(|(name, p)| p.value.map(|v| (name, v.value)))
        .collect())
}

/// The store a configuration names: PostgreSQL with `store_url`, else the
/// embedded backend of `store_backend` in `data_dir` (sled in `db/`, redb in
/// `store.redb`). Blocking: it opens files or connects.
pub fn open_configured(config: &crate::config::Config) -> StoreResult<Arc<dyn Store>> {
    use crate::config::StoreBackend;
    Ok(match (&config.store_url, config.store_backend) {
        (Some(url), _) => Arc::new(PgStore::connect(url.expose())?),
        (None, StoreBackend::Sled) => Arc::new(SledStore::open(
            &config.data_dir.join(sled_store::SLED_DIR),
            config.store_cache_bytes,
        )?),
        (None, StoreBackend::Redb) => {
            Arc::new(RedbStore::open(&config.data_dir, config.store_cache_bytes)?)
        }
    })
}
