//! The store's logic, once, over a small ordered key-value [`Backend`]:
//! key layout, record construction, the search and task indexes, table
//! snapshots, and group commit for [`Store::sync`]. A backend only gets,
//! scans, applies batches, hands out ids and flushes (sled and redb here);
//! adding one is one file.
//!
//! Key layout, per [`Table`] (records by [`super::codec`]):
//! - `devices`: device id → [`DeviceRecord`] but for what every Inform
//!   changes, which is in `contacts` (device id → [`super::contact::Contact`];
//!   the embedded backends keep that table in a journal, `super::journal`);
//!   `search`: `token SEP device id` → nothing, the tokens worked out from
//!   the record (`search_tokens`, where they were kept until 2026-12, is
//!   only emptied).
//! - `params`, `writable`, `subtrees`: `device id SEP path` → value,
//!   writability byte, table snapshot; `inform_values`: device id → rows.
//! - `tasks`: `device id SEP task id (u64 BE)` → [`Task`]; `task_index`:
//!   task id → device id. `faults`: fault id → [`FaultRecord`].
//! - `credentials`: username; `writebacks`: device id; `data_models`: the
//!   catalog's own keys.
//!
//! Device ids are escaped (no NUL can occur in them), so a prefix scan of
//! one device never bleeds into another whose id extends it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Mutex;

use super::codec::{decode, encode, encode_contact, encode_rows, encode_rows_at, encode_value};
use super::contact::{self, Contact};
use super::subtree::{self, Listing};
use super::{
    AlarmRecord, AuditEntry, AuditFilter, CachedValue, CampaignDevice, CampaignRecord,
    CpeCredential, DeviceRecord, FaultRecord, FileRecord, IssuedToken, NewFault, Store, StoreError,
    StoreResult, StoredParam, SyncFuture, Task, TaskRequest, TaskStatus, UserRecord, WebSession,
    Writeback,
};

/// Separates a device id from the rest of a composite key.
pub const SEP: u8 = 0;

/// The store's tables. Every backend keeps one ordered map per table, by
/// these names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Devices,
    Params,
    Writable,
    InformValues,
    Tasks,
    TaskIndex,
    Faults,
    Credentials,
    Writebacks,
    Search,
    /// No longer written: the tokens each device was indexed under, from
    /// before they were worked out from its record.
    SearchTokens,
    Subtrees,
    DataModels,
    Users,
    WebSessions,
    Audit,
    /// A device's history, one record per metric ([`crate::history`]).
    Series,
    Alarms,
    /// Issued API tokens by the SHA-256 of the token.
    IssuedTokens,
    /// Files devices download, by id.
    Files,
    /// Firmware campaigns, by id.
    Campaigns,
    /// Campaign rows, by device id.
    CampaignDevices,
    /// What every Inform changes in a device record, by device id
    /// (`super::contact`).
    Contacts,
}

impl Table {
    /// Tables keyed by ids from [`Backend::next_id`] (big-endian): a copy
    /// or a migration raises the counter above their highest.
    pub const ID_TABLES: [Table; 3] = [Table::TaskIndex, Table::Faults, Table::Audit];

    pub const ALL: [Table; 23] = [
        Table::Devices,
        Table::Params,
        Table::Writable,
        Table::InformValues,
        Table::Tasks,
        Table::TaskIndex,
        Table::Faults,
        Table::Credentials,
        Table::Writebacks,
        Table::Search,
        Table::SearchTokens,
        Table::Subtrees,
        Table::DataModels,
        Table::Users,
        Table::WebSessions,
        Table::Audit,
        Table::Series,
        Table::Alarms,
        Table::IssuedTokens,
        Table::Files,
        Table::Campaigns,
        Table::CampaignDevices,
        Table::Contacts,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Devices => "devices",
            Table::Params => "params",
            Table::Writable => "writable",
            Table::InformValues => "inform_values",
            Table::Tasks => "tasks",
            Table::TaskIndex => "task_index",
            Table::Faults => "faults",
            Table::Credentials => "credentials",
            Table::Writebacks => "writebacks",
            Table::Search => "search",
            Table::SearchTokens => "search_tokens",
            Table::Subtrees => "subtrees",
            Table::DataModels => "data_models",
            Table::Users => "users",
            Table::WebSessions => "web_sessions",
            Table::Audit => "audit",
            Table::Series => "series",
            Table::Alarms => "alarms",
            Table::IssuedTokens => "issued_tokens",
            Table::Files => "files",
            Table::Campaigns => "campaigns",
            Table::CampaignDevices => "campaign_devices",
            Table::Contacts => "contacts",
        }
    }
}

/// Which entries a scan visits: keys starting with `prefix`, strictly
/// after `after` when given, in key order or (`reverse`) the other way.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scan<'a> {
    pub prefix: &'a [u8],
    pub after: Option<&'a [u8]>,
    pub reverse: bool,
}

impl<'a> Scan<'a> {
    pub fn prefix(prefix: &'a [u8]) -> Scan<'a> {
        Scan {
            prefix,
            ..Scan::default()
        }
    }
}

/// Writes applied together (atomically where the backend can).
#[derive(Debug, Default)]
pub struct Batch {
    /// Table, key, `Some(value)` to put, `None` to delete; in order.
    pub ops: Vec<(Table, Vec<u8>, Option<Vec<u8>>)>,
}

impl Batch {
    pub fn put(&mut self, t: Table, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push((t, key.into(), Some(value.into())));
    }

    pub fn delete(&mut self, t: Table, key: impl Into<Vec<u8>>) {
        self.ops.push((t, key.into(), None));
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// What a scan calls with each entry (key, value); `false` stops it.
pub type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> StoreResult<bool> + 'a;

/// An ordered key-value store with durable flushes: what a store backend
/// provides.
pub trait Backend: Send + Sync + 'static {
    fn get(&self, table: Table, key: &[u8]) -> StoreResult<Option<Vec<u8>>>;

    /// Calls `visit` on the entries `scan` selects until it returns false.
    fn scan(&self, table: Table, scan: Scan<'_>, visit: &mut Visit<'_>) -> StoreResult<()>;

    /// Applies the writes; visible to readers once this returns, durable
    /// after the next [`Backend::flush`].
    fn apply(&self, batch: Batch) -> StoreResult<()>;

    /// An id never given out before, above every task and fault id in the
    /// tables (ids are shared by tasks and faults).
    fn next_id(&self) -> StoreResult<u64>;

    /// Makes every applied write durable.
    fn flush(&self) -> StoreResult<()>;

    /// Makes [`Backend::next_id`] answer above `floor` from now on (after
    /// a copy of records whose ids were given out elsewhere).
    fn raise_ids_above(&self, floor: u64) -> StoreResult<()> {
        while self.next_id()? <= floor {}
        Ok(())
    }

    /// Writes not yet durable after which a writer flushes itself (redb
    /// frees pages only at a durable commit); `None`: never.
    fn unsynced_limit(&self) -> Option<u64> {
        None
    }
}

/// The first key after every key that starts with `prefix` (`None`: no
/// such bound, the prefix is empty or all 0xFF).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The highest id in an id-keyed table (task index, faults), 0 if empty.
pub fn highest_id(b: &(impl Backend + ?Sized), t: Table) -> StoreResult<u64> {
    let mut id = 0u64;
    let newest = Scan {
        reverse: true,
        ..Scan::default()
    };
    b.scan(t, newest, &mut |k, _| {
        if let Ok(bytes) = <[u8; 8]>::try_from(k) {
            id = u64::from_be_bytes(bytes);
        }
        Ok(false)
    })?;
    Ok(id)
}

pub fn search_key(token: &str, device_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(token.len() + 1 + device_id.len());
    k.extend(token.bytes().filter(|b| *b != SEP));
    k.push(SEP);
    k.extend_from_slice(device_id.as_bytes());
    k
}

pub fn composite(device_id: &str, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(device_id.len() + 1 + rest.len());
    k.extend_from_slice(device_id.as_bytes());
    k.push(SEP);
    k.extend_from_slice(rest);
    k
}

/// Group commit: writers bump `written`; a syncing caller waits for the
/// leader lock, and whoever holds it flushes everything written so far, so
/// the callers queued behind one flush find their writes already durable.
struct Durability {
    written: AtomicU64,
    durable: AtomicU64,
    leader: Mutex<()>,
    /// Taken by the writer that flushes a long series of unsynced writes.
    catch_up: std::sync::Mutex<()>,
}

/// The store over a backend.
pub struct KvStore<B> {
    backend: Arc<B>,
    durability: Durability,
}

impl<B: Backend> KvStore<B> {
    /// The store over `backend`; builds the search index of a database
    /// written before it existed.
    pub fn new(backend: B) -> StoreResult<KvStore<B>> {
        let store = KvStore {
            backend: Arc::new(backend),
            durability: Durability {
                written: AtomicU64::new(0),
                durable: AtomicU64::new(0),
                leader: Mutex::new(()),
                catch_up: std::sync::Mutex::new(()),
            },
        };
        if store.is_empty(Table::Search)? && !store.is_empty(Table::Devices)? {
            let mut devices = Vec::new();
            store.scan(Table::Devices, Scan::default(), |k, v| {
                devices.push(decode::<DeviceRecord>("device", k, v)?);
                Ok(true)
            })?;
            for d in &devices {
                let mut batch = Batch::default();
                store.index(d, None, &mut batch)?;
                store.backend.apply(batch)?;
            }
            store.backend.flush()?;
        }
        Ok(store)
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    fn get(&self, t: Table, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        self.backend.get(t, key)
    }

    fn scan(
        &self,
        t: Table,
        scan: Scan<'_>,
        mut visit: impl FnMut(&[u8], &[u8]) -> StoreResult<bool>,
    ) -> StoreResult<()> {
        self.backend.scan(t, scan, &mut visit)
    }

    /// One record of a table keyed by a plain key (`what` names it in
    /// errors).
    fn record<T: serde::de::DeserializeOwned>(
        &self,
        t: Table,
        what: &'static str,
        key: &[u8],
    ) -> StoreResult<Option<T>> {
        match self.get(t, key)? {
            Some(v) => decode(what, key, &v).map(Some),
            None => Ok(None),
        }
    }

    fn put_records<'a, T: serde::Serialize + 'a>(
        &self,
        t: Table,
        records: impl IntoIterator<Item = (&'a [u8], &'a T)>,
    ) -> StoreResult<()> {
        let mut batch = Batch::default();
        for (k, v) in records {
            batch.put(t, k, encode(v)?);
        }
        self.write(batch)
    }

    /// Every record of a table with its key, in key order.
    fn records<T: serde::de::DeserializeOwned>(
        &self,
        t: Table,
        what: &'static str,
    ) -> StoreResult<Vec<(Vec<u8>, T)>> {
        let mut out = Vec::new();
        self.scan(t, Scan::default(), |k, v| {
            out.push((k.to_vec(), decode(what, k, v)?));
            Ok(true)
        })?;
        Ok(out)
    }

    /// Deletes one record; `false` if there was none.
    fn delete_record(&self, t: Table, key: &[u8]) -> StoreResult<bool> {
        if self.get(t, key)?.is_none() {
            return Ok(false);
        }
        let mut batch = Batch::default();
        batch.delete(t, key);
        self.write(batch)?;
        Ok(true)
    }

    fn keys_under(&self, t: Table, prefix: &[u8]) -> StoreResult<Vec<Vec<u8>>> {
        let mut keys = Vec::new();
        self.scan(t, Scan::prefix(prefix), |k, _| {
            keys.push(k.to_vec());
            Ok(true)
        })?;
        Ok(keys)
    }

    fn is_empty(&self, t: Table) -> StoreResult<bool> {
        let mut empty = true;
        self.scan(t, Scan::default(), |_, _| {
            empty = false;
            Ok(false)
        })?;
        Ok(empty)
    }

    /// Applies a batch and counts it as written (not yet durable).
    fn write(&self, batch: Batch) -> StoreResult<()> {
        if !batch.is_empty() {
            self.backend.apply(batch)?;
        }
        let d = &self.durability;
        let written = d.written.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(limit) = self.backend.unsynced_limit() {
            let behind = |w: u64| w.saturating_sub(d.durable.load(Ordering::SeqCst)) >= limit;
            if behind(written) {
                if let Ok(_only_one) = d.catch_up.try_lock() {
                    if behind(d.written.load(Ordering::SeqCst)) {
                        self.flush_blocking()?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds to `batch` the search-index changes from the device's stored
    /// record (`stored`, its bytes; `None` for a new device) to `device`:
    /// none when its tokens are the same (always, at a check-in). The
    /// tokens are worked out from the records rather than kept apart: a
    /// new device is one key fewer, and a periodic session one read fewer.
    fn index(
        &self,
        device: &DeviceRecord,
        stored: Option<&[u8]>,
        batch: &mut Batch,
    ) -> StoreResult<()> {
        let tokens = device.search_tokens();
        let old = stored.map_or_else(Vec::new, |bytes| stored_tokens(&device.id, bytes));
        if tokens == old {
            return Ok(());
        }
        for t in old.iter().filter(|t| !tokens.contains(t)) {
            batch.delete(Table::Search, search_key(t, &device.id));
        }
        for t in &tokens {
            batch.put(Table::Search, search_key(t, &device.id), Vec::new());
        }
        Ok(())
    }

    /// What the device's latest Inform changed (see [`contact`]).
    fn contact(&self, id: &str) -> StoreResult<Option<Contact>> {
        self.record(Table::Contacts, "device contact", id.as_bytes())
    }

    /// Deletes the key and says whether it was there.
    fn remove(&self, t: Table, key: &[u8]) -> StoreResult<bool> {
        let existed = self.get(t, key)?.is_some();
        let mut batch = Batch::default();
        if existed {
            batch.delete(t, key);
        }
        self.write(batch)?;
        Ok(existed)
    }
}

/// The search tokens of a stored device record. An unreadable record has
/// none: writing over it must not fail on it (its index keys, if any,
/// stay behind).
fn stored_tokens(id: &str, bytes: &[u8]) -> Vec<String> {
    match decode::<DeviceRecord>("device", id.as_bytes(), bytes) {
        Ok(d) => d.search_tokens(),
        Err(e) => {
            tracing::warn!(error = %e, "replacing an unreadable device record");
            Vec::new()
        }
    }
}

/// `updated_ms` of the rows of an Inform's record: the time is the
/// device record's `last_inform_ms` (see [`Store::put_inform_values`]).
const AS_OF_LAST_INFORM: u64 = u64::MAX;

impl<B: Backend> Store for KvStore<B> {
    fn device(&self, id: &str) -> StoreResult<Option<DeviceRecord>> {
        let Some(v) = self.get(Table::Devices, id.as_bytes())? else {
            return Ok(None);
        };
        let rest = decode("device", id.as_bytes(), &v)?;
        Ok(Some(contact::join(rest, self.contact(id)?)))
    }

    fn put_device(&self, device: &DeviceRecord) -> StoreResult<()> {
        // What every Inform changes is written apart; the rest only when
        // its bytes differ from the stored ones (not at a periodic
        // session), and with it the search index, which only the rest
        // feeds. A new device is written whole, one key fewer at its
        // first contact; its next write splits it.
        let key = device.id.as_bytes();
        let mut batch = Batch::default();
        match self.get(Table::Devices, key)? {
            None => {
                batch.put(Table::Devices, key, encode(device)?);
                self.index(device, None, &mut batch)?;
            }
            Some(stored) => {
                let (contact, rest) = contact::split(device);
                let rest = encode(&rest)?;
                if stored != rest {
                    self.index(device, Some(&stored), &mut batch)?;
                    batch.put(Table::Devices, key, rest);
                }
                batch.put(Table::Contacts, key, encode_contact(&contact)?);
            }
        }
        self.write(batch)
    }

    fn delete_device(&self, id: &str) -> StoreResult<bool> {
        let Some(stored) = self.get(Table::Devices, id.as_bytes())? else {
            return Ok(false);
        };
        let mut batch = Batch::default();
        batch.delete(Table::Devices, id.as_bytes());
        let all = composite(id, b"");
        for t in [
            Table::Params,
            Table::Writable,
            Table::Subtrees,
            Table::Series,
            Table::Alarms,
        ] {
            for k in self.keys_under(t, &all)? {
                batch.delete(t, k);
            }
        }
        batch.delete(Table::InformValues, id.as_bytes());
        batch.delete(Table::Contacts, id.as_bytes());
        for k in self.keys_under(Table::Tasks, &all)? {
            if let Some(task_id) = k.get(all.len()..) {
                batch.delete(Table::TaskIndex, task_id);
            }
            batch.delete(Table::Tasks, k);
        }
        // Faults are keyed by id alone: a full scan, as `faults` does.
        self.scan(Table::Faults, Scan::default(), |k, v| {
            let f: FaultRecord = decode("fault", k, v)?;
            if f.device_id == id {
                batch.delete(Table::Faults, k);
            }
            Ok(true)
        })?;
        for t in &stored_tokens(id, &stored) {
            batch.delete(Table::Search, search_key(t, id));
        }
        // Where tokens were kept before they were worked out from the
        // record.
        batch.delete(Table::SearchTokens, id.as_bytes());
        batch.delete(Table::Writebacks, id.as_bytes());
        batch.delete(Table::DataModels, format!("d/{id}").into_bytes());
        self.write(batch)?;
        Ok(true)
    }

    fn search_devices(
        &self,
        keys: &[String],
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        let mut ids = std::collections::BTreeSet::new();
        let cap = limit.saturating_mul(4).max(1000);
        for key in keys.iter().filter(|k| !k.is_empty()) {
            self.scan(Table::Search, Scan::prefix(key.as_bytes()), |k, _| {
                // token SEP device-id: the id is after the last separator
                // (tokens never contain SEP, ids may not either).
                if let Some(pos) = k.iter().rposition(|b| *b == SEP) {
                    let id = String::from_utf8_lossy(&k[pos + 1..]).into_owned();
                    if after.is_none_or(|a| id.as_str() > a) {
                        ids.insert(id);
                    }
                }
                // Bounded work for a one-letter query on a big fleet.
                Ok(ids.len() < cap)
            })?;
        }
        Ok(ids.into_iter().take(limit).collect())
    }

    fn list_devices(&self, after: Option<&str>, limit: usize) -> StoreResult<Vec<DeviceRecord>> {
        let mut out = Vec::with_capacity(limit.min(1024));
        if limit == 0 {
            return Ok(out);
        }
        let scan = Scan {
            after: after.map(str::as_bytes),
            ..Scan::default()
        };
        let mut rests: Vec<DeviceRecord> = Vec::with_capacity(limit.min(1024));
        self.scan(Table::Devices, scan, |k, v| {
            rests.push(decode("device", k, v)?);
            Ok(rests.len() < limit)
        })?;
        // The contacts of the same ids, in one scan of the same range (a
        // device may have none: written before contacts existed).
        let mut contacts: Vec<(Vec<u8>, Contact)> = Vec::with_capacity(rests.len());
        if let Some(last) = rests.last().map(|d| d.id.clone()) {
            self.scan(Table::Contacts, scan, |k, v| {
                if k > last.as_bytes() {
                    return Ok(false);
                }
                contacts.push((k.to_vec(), decode("device contact", k, v)?));
                Ok(true)
            })?;
        }
        let mut contacts = contacts.into_iter().peekable();
        for rest in rests {
            let key = rest.id.as_bytes();
            while contacts.next_if(|(k, _)| k.as_slice() < key).is_some() {}
            let contact = contacts
                .next_if(|(k, _)| k.as_slice() == key)
                .map(|(_, c)| c);
            out.push(contact::join(rest, contact));
        }
        Ok(out)
    }

    fn parameters(&self, device_id: &str, prefix: &str) -> StoreResult<Vec<(String, StoredParam)>> {
        let start = composite(device_id, prefix.as_bytes());
        let skip = device_id.len() + 1;
        let mut listing = Listing::default();
        self.scan(Table::Params, Scan::prefix(&start), |k, v| {
            listing.value(k[skip..].to_vec(), decode("parameter", k, v)?);
            Ok(true)
        })?;
        self.scan(Table::Writable, Scan::prefix(&start), |k, v| {
            listing.writable(k[skip..].to_vec(), v.first() == Some(&1));
            Ok(true)
        })?;
        let mut snapshots = Vec::new();
        self.scan(Table::Subtrees, Scan::prefix(&start), |k, v| {
            snapshots.push(decode("table snapshot", k, v)?);
            Ok(true)
        })?;
        for rows in snapshots {
            listing.values_under(prefix, rows);
        }
        for above in subtree::ancestors(prefix) {
            let key = composite(device_id, above.as_bytes());
            if let Some(v) = self.get(Table::Subtrees, &key)? {
                listing.values_under(prefix, decode("table snapshot", &key, &v)?);
            }
        }
        if let Some(bytes) = self.get(Table::InformValues, device_id.as_bytes())? {
            let mut latest: Vec<(String, CachedValue)> =
                decode("inform values", device_id.as_bytes(), &bytes)?;
            if latest
                .iter()
                .any(|(_, v)| v.updated_ms == AS_OF_LAST_INFORM)
            {
                let last_inform_ms = match self.contact(device_id)? {
                    Some(c) => c.last_inform_ms,
                    None => self.device(device_id)?.map_or(0, |d| d.last_inform_ms),
                };
                for (_, v) in latest
                    .iter_mut()
                    .filter(|(_, v)| v.updated_ms == AS_OF_LAST_INFORM)
                {
                    v.updated_ms = last_inform_ms;
                }
            }
            listing.values_under(prefix, latest);
        }
        Ok(listing.finish())
    }

    fn put_values(&self, device_id: &str, values: &[(String, CachedValue)]) -> StoreResult<()> {
        if values.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::default();
        for (name, v) in values {
            batch.put(
                Table::Params,
                composite(device_id, name.as_bytes()),
                encode_value(v)?,
            );
        }
        self.write(batch)
    }

    fn put_inform_values(
        &self,
        device_id: &str,
        values: &[(String, CachedValue)],
    ) -> StoreResult<()> {
        // Rows are stored "as of the device's last Inform" rather than
        // with the time of this one: a periodic Inform repeating the same
        // values then leaves the record as it is, and the write is skipped
        // (a read is a fraction of a write). The device record, written at
        // every Inform, carries the time (see `parameters`).
        let encoded = encode_rows_at(values, AS_OF_LAST_INFORM)?;
        let key = device_id.as_bytes();
        if self.get(Table::InformValues, key)?.as_deref() == Some(encoded.as_slice()) {
            return Ok(());
        }
        let mut batch = Batch::default();
        batch.put(Table::InformValues, key, encoded);
        self.write(batch)
    }

    fn put_writability(&self, device_id: &str, names: &[(String, bool)]) -> StoreResult<()> {
        if names.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::default();
        for (name, w) in names {
            batch.put(
                Table::Writable,
                composite(device_id, name.as_bytes()),
                vec![u8::from(*w)],
            );
        }
        self.write(batch)
    }

    fn clear_parameters(&self, device_id: &str) -> StoreResult<()> {
        let mut batch = Batch::default();
        let all = composite(device_id, b"");
        for t in [Table::Params, Table::Writable, Table::Subtrees] {
            for k in self.keys_under(t, &all)? {
                batch.delete(t, k);
            }
        }
        batch.delete(Table::InformValues, device_id.as_bytes());
        self.write(batch)
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
        // The new rows go first and what they supersede after: sled
        // applies the parameter cache key by key (`sled_store::KEY_BY_KEY`),
        // and a reader between two writes (the API during a refresh) then
        // sees old and new rows together, the newest winning, never a table
        // with neither.
        let mut batch = Batch::default();
        let mut written = std::collections::HashSet::new();
        for (prefix, rows) in &grouped.snapshots {
            if !rows.is_empty() {
                let key = composite(device_id, prefix.as_bytes());
                batch.put(Table::Subtrees, key.clone(), encode_rows(rows)?);
                written.insert(key);
            }
        }
        // A bigger snapshot above keeps its rows outside the re-read tables.
        for above in grouped.snapshots_above() {
            let key = composite(device_id, above.as_bytes());
            if let Some(v) = self.get(Table::Subtrees, &key)? {
                let rows = grouped.trim(decode("table snapshot", &key, &v)?);
                batch.put(Table::Subtrees, key, encode_rows(&rows)?);
            }
        }
        for (name, v) in &grouped.loose {
            batch.put(
                Table::Params,
                composite(device_id, name.as_bytes()),
                encode_value(v)?,
            );
        }
        for (prefix, _) in &grouped.snapshots {
            let under = composite(device_id, prefix.as_bytes());
            // Per-parameter values and smaller snapshots under the prefix
            // are superseded by this snapshot.
            for k in self.keys_under(Table::Params, &under)? {
                batch.delete(Table::Params, k);
            }
            for k in self.keys_under(Table::Subtrees, &under)? {
                if !written.contains(&k) {
                    batch.delete(Table::Subtrees, k);
                }
            }
            // Object paths (ending in `.`, from GetParameterNames) stay
            // while a value below them was reported.
            for k in self.keys_under(Table::Writable, &under)? {
                if !fresh.contains(&k[skip..]) {
                    batch.delete(Table::Writable, k);
                }
            }
        }
        self.write(batch)
    }

    fn insert_task(
        &self,
        device_id: &str,
        request: TaskRequest,
        name: &str,
        now_ms: u64,
    ) -> StoreResult<Task> {
        let task = Task {
            id: self.backend.next_id()?,
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
        let mut batch = Batch::default();
        batch.put(
            Table::Tasks,
            composite(&task.device_id, &task.id.to_be_bytes()),
            encode(task)?,
        );
        batch.put(
            Table::TaskIndex,
            task.id.to_be_bytes(),
            task.device_id.as_bytes(),
        );
        self.write(batch)
    }

    fn task(&self, task_id: u64) -> StoreResult<Option<Task>> {
        let Some(device) = self.get(Table::TaskIndex, &task_id.to_be_bytes())? else {
            return Ok(None);
        };
        let device = String::from_utf8_lossy(&device).into_owned();
        let key = composite(&device, &task_id.to_be_bytes());
        match self.get(Table::Tasks, &key)? {
            Some(v) => decode("task", &key, &v).map(Some),
            None => Ok(None),
        }
    }

    fn tasks(&self, device_id: &str) -> StoreResult<Vec<Task>> {
        let mut out = Vec::new();
        self.scan(
            Table::Tasks,
            Scan::prefix(&composite(device_id, b"")),
            |k, v| {
                out.push(decode("task", k, v)?);
                Ok(true)
            },
        )?;
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
        let mut batch = Batch::default();
        for t in &finished[..drop] {
            batch.delete(Table::Tasks, composite(device_id, &t.id.to_be_bytes()));
            batch.delete(Table::TaskIndex, t.id.to_be_bytes());
        }
        self.write(batch)
    }

    fn record_fault(&self, fault: NewFault) -> StoreResult<FaultRecord> {
        let id = self.backend.next_id()?;
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
        let mut batch = Batch::default();
        batch.put(Table::Faults, id.to_be_bytes(), encode(&record)?);
        self.write(batch)?;
        Ok(record)
    }

    fn fault(&self, fault_id: u64) -> StoreResult<Option<FaultRecord>> {
        let key = fault_id.to_be_bytes();
        match self.get(Table::Faults, &key)? {
            Some(v) => decode("fault", &key, &v).map(Some),
            None => Ok(None),
        }
    }

    fn delete_fault(&self, fault_id: u64) -> StoreResult<bool> {
        self.remove(Table::Faults, &fault_id.to_be_bytes())
    }

    fn faults(&self, device_id: Option<&str>, limit: usize) -> StoreResult<Vec<FaultRecord>> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let newest_first = Scan {
            reverse: true,
            ..Scan::default()
        };
        self.scan(Table::Faults, newest_first, |k, v| {
            let f: FaultRecord = decode("fault", k, v)?;
            if device_id.is_none_or(|d| d == f.device_id) {
                out.push(f);
            }
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    fn cpe_credential(&self, username: &str) -> StoreResult<Option<CpeCredential>> {
        match self.get(Table::Credentials, username.as_bytes())? {
            Some(v) => decode("credential", username.as_bytes(), &v).map(Some),
            None => Ok(None),
        }
    }

    fn put_cpe_credential(&self, credential: &CpeCredential) -> StoreResult<()> {
        let mut batch = Batch::default();
        batch.put(
            Table::Credentials,
            credential.username.as_bytes(),
            encode(credential)?,
        );
        self.write(batch)
    }

    fn delete_cpe_credential(&self, username: &str) -> StoreResult<bool> {
        self.remove(Table::Credentials, username.as_bytes())
    }

    fn put_writeback(&self, w: &Writeback) -> StoreResult<()> {
        let mut batch = Batch::default();
        batch.put(Table::Writebacks, w.device_id.as_bytes(), encode(w)?);
        self.write(batch)
    }

    fn writebacks(&self, limit: usize) -> StoreResult<Vec<Writeback>> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        self.scan(Table::Writebacks, Scan::default(), |k, v| {
            out.push(decode("writeback", k, v)?);
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    fn delete_writeback(&self, device_id: &str) -> StoreResult<()> {
        let mut batch = Batch::default();
        batch.delete(Table::Writebacks, device_id.as_bytes());
        self.write(batch)
    }

    fn data_model(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.get(Table::DataModels, key.as_bytes())
    }

    fn put_data_model(&self, key: &str, bytes: &[u8]) -> StoreResult<()> {
        let mut batch = Batch::default();
        batch.put(Table::DataModels, key.as_bytes(), bytes);
        self.write(batch)
    }

    fn user(&self, name: &str) -> StoreResult<Option<UserRecord>> {
        match self.get(Table::Users, name.as_bytes())? {
            Some(v) => decode("user", name.as_bytes(), &v).map(Some),
            None => Ok(None),
        }
    }

    fn put_user(&self, user: &UserRecord) -> StoreResult<()> {
        let mut batch = Batch::default();
        batch.put(Table::Users, user.name.as_bytes(), encode(user)?);
        self.write(batch)
    }

    fn users(&self) -> StoreResult<Vec<UserRecord>> {
        let mut out = Vec::new();
        self.scan(Table::Users, Scan::default(), |k, v| {
            out.push(decode("user", k, v)?);
            Ok(true)
        })?;
        Ok(out)
    }

    fn issued_token(&self, hash: &str) -> StoreResult<Option<IssuedToken>> {
        self.record(Table::IssuedTokens, "issued token", hash.as_bytes())
    }

    fn put_issued_token(&self, hash: &str, token: &IssuedToken) -> StoreResult<()> {
        self.put_records(Table::IssuedTokens, [(hash.as_bytes(), token)])
    }

    fn issued_tokens(&self) -> StoreResult<Vec<(String, IssuedToken)>> {
        Ok(self
            .records(Table::IssuedTokens, "issued token")?
            .into_iter()
            .map(|(k, t)| (String::from_utf8_lossy(&k).into_owned(), t))
            .collect())
    }

    fn delete_issued_token(&self, hash: &str) -> StoreResult<bool> {
        self.delete_record(Table::IssuedTokens, hash.as_bytes())
    }

    fn file(&self, id: &str) -> StoreResult<Option<FileRecord>> {
        self.record(Table::Files, "file", id.as_bytes())
    }

    fn put_file(&self, file: &FileRecord) -> StoreResult<()> {
        self.put_records(Table::Files, [(file.id.as_bytes(), file)])
    }

    fn files(&self) -> StoreResult<Vec<FileRecord>> {
        Ok(self
            .records(Table::Files, "file")?
            .into_iter()
            .map(|(_, f)| f)
            .collect())
    }

    fn delete_file(&self, id: &str) -> StoreResult<bool> {
        self.delete_record(Table::Files, id.as_bytes())
    }

    fn campaign(&self, id: &str) -> StoreResult<Option<CampaignRecord>> {
        self.record(Table::Campaigns, "campaign", id.as_bytes())
    }

    fn put_campaign(&self, campaign: &CampaignRecord) -> StoreResult<()> {
        self.put_records(Table::Campaigns, [(campaign.id.as_bytes(), campaign)])
    }

    fn campaigns(&self) -> StoreResult<Vec<CampaignRecord>> {
        Ok(self
            .records(Table::Campaigns, "campaign")?
            .into_iter()
            .map(|(_, c)| c)
            .collect())
    }

    fn campaign_device(&self, device_id: &str) -> StoreResult<Option<CampaignDevice>> {
        self.record(
            Table::CampaignDevices,
            "campaign device",
            device_id.as_bytes(),
        )
    }

    fn put_campaign_devices(&self, rows: &[CampaignDevice]) -> StoreResult<()> {
        self.put_records(
            Table::CampaignDevices,
            rows.iter().map(|r| (r.device_id.as_bytes(), r)),
        )
    }

    fn campaign_devices(&self, campaign_id: &str) -> StoreResult<Vec<CampaignDevice>> {
        Ok(self
            .records::<CampaignDevice>(Table::CampaignDevices, "campaign device")?
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| r.campaign_id == campaign_id)
            .collect())
    }

    fn web_session(&self, key: &str) -> StoreResult<Option<WebSession>> {
        match self.get(Table::WebSessions, key.as_bytes())? {
            Some(v) => decode("web session", key.as_bytes(), &v).map(Some),
            None => Ok(None),
        }
    }

    fn put_web_session(&self, key: &str, session: &WebSession) -> StoreResult<()> {
        let mut batch = Batch::default();
        batch.put(Table::WebSessions, key.as_bytes(), encode(session)?);
        self.write(batch)
    }

    fn delete_web_sessions(&self, keys: &[String]) -> StoreResult<()> {
        let mut batch = Batch::default();
        for k in keys {
            batch.delete(Table::WebSessions, k.as_bytes());
        }
        self.write(batch)
    }

    fn web_sessions(&self) -> StoreResult<Vec<(String, WebSession)>> {
        let mut out = Vec::new();
        self.scan(Table::WebSessions, Scan::default(), |k, v| {
            out.push((
                String::from_utf8_lossy(k).into_owned(),
                decode("web session", k, v)?,
            ));
            Ok(true)
        })?;
        Ok(out)
    }

    fn append_audit(&self, mut entry: AuditEntry) -> StoreResult<AuditEntry> {
        entry.id = self.backend.next_id()?;
        let mut batch = Batch::default();
        batch.put(Table::Audit, entry.id.to_be_bytes(), encode(&entry)?);
        self.write(batch)?;
        Ok(entry)
    }

    fn audit(&self, filter: &AuditFilter, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let newest_first = Scan {
            reverse: true,
            ..Scan::default()
        };
        self.scan(Table::Audit, newest_first, |k, v| {
            let e: AuditEntry = decode("audit entry", k, v)?;
            // Ids grow with time: past `since`, nothing older can match.
            if filter.since_ms.is_some_and(|s| e.at_ms < s) {
                return Ok(false);
            }
            let device_ok = filter
                .device_id
                .as_deref()
                .is_none_or(|d| e.device_id.as_deref() == Some(d));
            let actor_ok = filter.actor.as_deref().is_none_or(|a| a == e.actor);
            if device_ok && actor_ok {
                out.push(e);
            }
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    fn prune_audit(&self, before_ms: u64) -> StoreResult<usize> {
        let mut old = Vec::new();
        self.scan(Table::Audit, Scan::default(), |k, v| {
            let e: AuditEntry = decode("audit entry", k, v)?;
            if e.at_ms >= before_ms {
                return Ok(false);
            }
            old.push(k.to_vec());
            Ok(old.len() < 10_000)
        })?;
        let mut batch = Batch::default();
        for k in old.iter() {
            batch.delete(Table::Audit, k.as_slice());
        }
        self.write(batch)?;
        Ok(old.len())
    }

    fn series(&self, device_id: &str, metric: &str) -> StoreResult<Option<Vec<u8>>> {
        self.get(Table::Series, &composite(device_id, metric.as_bytes()))
    }

    fn put_series(&self, device_id: &str, metric: &str, record: &[u8]) -> StoreResult<()> {
        let key = composite(device_id, metric.as_bytes());
        let mut batch = Batch::default();
        match record.is_empty() {
            true => batch.delete(Table::Series, key),
            false => batch.put(Table::Series, key, record.to_vec()),
        }
        self.write(batch)
    }

    fn alarms(&self, device_id: Option<&str>) -> StoreResult<Vec<AlarmRecord>> {
        let prefix = device_id.map(|d| composite(d, b"")).unwrap_or_default();
        let mut out = Vec::new();
        self.scan(Table::Alarms, Scan::prefix(&prefix), |k, v| {
            out.push(decode("alarm", k, v)?);
            Ok(true)
        })?;
        Ok(out)
    }

    fn put_alarm(&self, alarm: &AlarmRecord) -> StoreResult<()> {
        let mut batch = Batch::default();
        batch.put(
            Table::Alarms,
            composite(&alarm.device_id, alarm.kind.as_bytes()),
            encode(alarm)?,
        );
        self.write(batch)
    }

    fn delete_alarm(&self, device_id: &str, kind: &str) -> StoreResult<bool> {
        self.remove(Table::Alarms, &composite(device_id, kind.as_bytes()))
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
            // Every write counted here has been applied: the flush below
            // covers it.
            let covered = d.written.load(Ordering::SeqCst);
            let backend = self.backend.clone();
            tokio::task::spawn_blocking(move || backend.flush())
                .await
                .map_err(|e| StoreError::Sync(e.to_string()))?
                .map_err(|e| StoreError::Sync(e.to_string()))?;
            d.durable.fetch_max(covered, Ordering::SeqCst);
            Ok(())
        })
    }

    fn flush_blocking(&self) -> StoreResult<()> {
        let covered = self.durability.written.load(Ordering::SeqCst);
        self.backend.flush()?;
        self.durability.durable.fetch_max(covered, Ordering::SeqCst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::store::EventRecord;

    /// Every table's entries, by table and key.
    type Entries = BTreeMap<(Table, Vec<u8>), Vec<u8>>;

    /// An ordered map per table that counts the puts it is given and,
    /// once `steps` is set, keeps its state after every single write (what
    /// a reader could see while sled applies a batch key by key).
    #[derive(Default)]
    struct Counting {
        tables: std::sync::Mutex<Entries>,
        puts: std::sync::Mutex<BTreeMap<Table, usize>>,
        steps: std::sync::Mutex<Option<Vec<Entries>>>,
    }

    impl Backend for Counting {
        fn get(&self, table: Table, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
            let tables = self.tables.lock().unwrap();
            Ok(tables.get(&(table, key.to_vec())).cloned())
        }

        fn scan(&self, table: Table, scan: Scan<'_>, visit: &mut Visit<'_>) -> StoreResult<()> {
            let tables = self.tables.lock().unwrap();
            let rows: Vec<_> = tables
                .iter()
                .filter(|((t, k), _)| *t == table && k.starts_with(scan.prefix))
                .filter(|((_, k), _)| scan.after.is_none_or(|a| k.as_slice() > a))
                .map(|((_, k), v)| (k.clone(), v.clone()))
                .collect();
            drop(tables);
            let mut rows = rows;
            if scan.reverse {
                rows.reverse();
            }
            for (k, v) in rows {
                if !visit(&k, &v)? {
                    break;
                }
            }
            Ok(())
        }

        fn apply(&self, batch: Batch) -> StoreResult<()> {
            let mut tables = self.tables.lock().unwrap();
            for (t, k, v) in batch.ops {
                match v {
                    Some(v) => {
                        *self.puts.lock().unwrap().entry(t).or_default() += 1;
                        tables.insert((t, k), v);
                    }
                    None => {
                        tables.remove(&(t, k));
                    }
                }
                if let Some(steps) = self.steps.lock().unwrap().as_mut() {
                    steps.push(tables.clone());
                }
            }
            Ok(())
        }

        fn next_id(&self) -> StoreResult<u64> {
            Ok(1)
        }

        fn flush(&self) -> StoreResult<()> {
            Ok(())
        }
    }

    #[test]
    fn a_check_in_writes_only_the_contact() {
        let store = KvStore::new(Counting::default()).unwrap();
        let mut d = DeviceRecord::new(
            "D".into(),
            crate::cwmp::rpc::DeviceIdStruct::default(),
            crate::cwmp::CwmpVersion::V1_0,
            1,
        );
        d.recent_events.push(EventRecord::new("2 PERIODIC", "", 1));
        store.put_device(&d).unwrap();
        let puts = |t| store.backend().puts.lock().unwrap().get(&t).copied();
        assert_eq!(puts(Table::Devices), Some(1));
        assert_eq!(puts(Table::Search), Some(1), "its id is its one token");
        assert_eq!(puts(Table::SearchTokens), None);
        assert_eq!(puts(Table::Contacts), None, "a new device is one record");
        for t in 2..10 {
            d.last_inform_ms = t;
            d.inform_count += 1;
            let run = d.recent_events.last_mut().unwrap();
            run.count += 1;
            run.at_ms = t;
            store.put_device(&d).unwrap();
        }
        // Written whole at first, split at the next check-in, then
        // unchanged.
        assert_eq!(puts(Table::Devices), Some(2), "the rest is unchanged");
        assert_eq!(puts(Table::Search), Some(1));
        assert_eq!(puts(Table::Contacts), Some(8));
        assert_eq!(store.device("D").unwrap(), Some(d.clone()));
        // Anything else is written, once.
        d.remote_addr = Some("192.0.2.7".into());
        store.put_device(&d).unwrap();
        store.put_device(&d).unwrap();
        assert_eq!(puts(Table::Devices), Some(3));
        assert_eq!(store.device("D").unwrap(), Some(d));
    }

    #[test]
    fn a_reader_between_the_writes_of_a_table_reread_sees_every_row() {
        let store = KvStore::new(Counting::default()).unwrap();
        let value = |v: &str, at: u64| CachedValue {
            value: v.into(),
            kind: crate::cwmp::ValueType::String,
            updated_ms: at,
        };
        let hosts = vec!["Device.Hosts.".to_string()];
        let row = |name: &str, v: &str, at| (format!("Device.Hosts.Host.{name}"), value(v, at));
        store
            .replace_subtrees(
                "D",
                &hosts,
                &[
                    row("1.MAC", "a", 1),
                    row("2.MAC", "b", 1),
                    row("3.MAC", "c", 1),
                ],
            )
            .unwrap();
        // Read since by a GetParameterValues of its own, kept per parameter.
        store
            .put_values("D", &[row("1.HostName", "laptop", 2)])
            .unwrap();
        *store.backend().steps.lock().unwrap() = Some(Vec::new());
        // The table read again: host 3 left.
        let again = [
            row("1.MAC", "a", 3),
            row("1.HostName", "laptop", 3),
            row("2.MAC", "b", 3),
        ];
        store.replace_subtrees("D", &hosts, &again).unwrap();
        let steps = store.backend().steps.lock().unwrap().take().unwrap();
        assert!(steps.len() >= 2, "{} writes", steps.len());
        for (i, state) in steps.into_iter().enumerate() {
            let seen = KvStore::new(Counting {
                tables: std::sync::Mutex::new(state),
                ..Counting::default()
            })
            .unwrap()
            .parameters("D", "Device.Hosts.")
            .unwrap();
            for (name, v) in &again {
                assert!(
                    seen.iter()
                        .any(|(n, p)| n == name
                            && p.value.as_ref().is_some_and(|c| c.value == v.value)),
                    "after write {i}, {name} is missing: {seen:?}"
                );
            }
        }
        // And once all applied, the host that left is gone.
        let names: Vec<String> = store
            .parameters("D", "Device.Hosts.")
            .unwrap()
            .into_iter()
            .filter(|(_, p)| p.value.is_some())
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            [
                "Device.Hosts.Host.1.HostName",
                "Device.Hosts.Host.1.MAC",
                "Device.Hosts.Host.2.MAC"
            ]
        );
    }

    #[test]
    fn prefix_end_bounds_a_prefix_scan() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }
}
