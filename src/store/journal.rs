//! The embedded backends' `contacts` table ([`super::contact`]), kept in
//! memory and made durable by an append-only journal instead of a B-tree.
//!
//! Why: a periodic session changes nothing but its device's contact (a few
//! dozen bytes). Written into sled, that is a B-tree insert (~4 µs) and a
//! flush through sled's log threads, whatever the size; profiles put the
//! store at about half of a periodic session (BENCHMARKS.md, issue 15).
//! Here the write is a map insert and an append to a buffer, and the group
//! commit ([`KvStore::sync`](super::KvStore)) writes the buffer with one
//! `fdatasync` for every session waiting.
//!
//! Files, in `dir`:
//! - `journal-G`: records appended since snapshot G was cut;
//! - `snapshot-G`: every contact at the moment it was cut, written once.
//!
//! When the journal outgrows the newest snapshot, the journal is rotated
//! (`journal-G+1`, at once) and the map written to `snapshot-G+1` by a
//! thread of its own, then the older files are deleted. Reading back: the
//! newest snapshot, then every journal from its generation up. A crash
//! while a snapshot is written leaves its `.tmp` (removed) and the previous
//! snapshot with both journals, which still hold everything.
//!
//! Every file starts with [`MAGIC`]; a record is `len u32 LE, crc32 u32 LE,
//! payload`, the payload `kind u8, key length u32 LE, key, value`. A torn
//! record at the end of the newest journal (a crash during a write, never
//! acknowledged) is cut off at open; anything else unreadable is an error
//! naming the file.
//!
//! One process at a time: the inner backend's lock (sled's, redb's) is
//! taken before the journal is opened. The other tables go to the inner
//! backend untouched; PostgreSQL, shared by several nodes, has no journal.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tracing::{error, info, warn};

use super::kv::{Backend, Batch, Scan, Table, Visit, prefix_end};
use super::{StoreError, StoreResult};

/// The table kept here.
const TABLE: Table = Table::Contacts;

/// The first bytes of every journal and snapshot file.
const MAGIC: &[u8; 16] = b"gfacs-contacts1\n";

/// The journal is not compacted below this size, whatever the snapshot's.
const MIN_COMPACTION_BYTES: u64 = 16 << 20;

/// Entries copied out of the map per step of a scan, so that a long scan
/// (a device listing) never holds the map while it visits.
const SCAN_CHUNK: usize = 256;

const PUT: u8 = 1;
const DELETE: u8 = 2;

/// A record is larger than any contact could be: the file is damaged.
const MAX_RECORD: usize = 1 << 20;

type Map = BTreeMap<Box<[u8]>, Box<[u8]>>;

struct Memory {
    map: Map,
    /// Records applied but not yet written to the journal.
    pending: Vec<u8>,
}

struct Writer {
    file: File,
    generation: u64,
    /// Bytes of the journal file, all of them whole records.
    len: u64,
    /// A failed write may have left part of its bytes after `len`, and
    /// cutting them off failed too: they are cut before anything else is
    /// appended (records after them would never be read back).
    torn: bool,
}

/// A backend whose [`Table::Contacts`] lives in memory and in a journal in
/// `dir`; every other table is `B`'s.
pub struct Journaled<B> {
    inner: B,
    dir: PathBuf,
    memory: Mutex<Memory>,
    writer: Mutex<Writer>,
    snapshot_bytes: Arc<AtomicU64>,
    min_compaction: u64,
    compaction: Mutex<Option<JoinHandle<()>>>,
    /// Batches given to `inner`, and how many of them its last flush
    /// covered: a flush with nothing new for `inner` skips it.
    inner_applied: AtomicU64,
    inner_flushed: AtomicU64,
}

/// A lock whose holder panicked still guards consistent data here: every
/// update is one map insert and one append.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("{what} {}: {e}", path.display()))
}

fn journal_name(generation: u64) -> String {
    format!("journal-{generation:020}")
}

fn snapshot_name(generation: u64) -> String {
    format!("snapshot-{generation:020}")
}

/// Appends one record: `value` `None` deletes `key`.
fn append_record(out: &mut Vec<u8>, key: &[u8], value: Option<&[u8]>) {
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    out.push(if value.is_some() { PUT } else { DELETE });
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(value.unwrap_or_default());
    let payload = &out[start + 8..];
    let (len, crc) = (payload.len() as u32, crc32fast::hash(payload));
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(b) as usize)
}

/// Applies the whole records at the start of `records` to `map`; the
/// length they cover (less than `records.len()` when a record is torn or
/// damaged).
fn replay(records: &[u8], map: &mut Map) -> usize {
    let mut at = 0;
    while let Some(len) = u32_at(records, at) {
        let (Some(crc), Some(payload)) = (
            u32_at(records, at + 4),
            records.get(at + 8..(at + 8).saturating_add(len)),
        ) else {
            break;
        };
        if len > MAX_RECORD || crc32fast::hash(payload) as usize != crc {
            break;
        }
        let Some(key_len) = u32_at(payload, 1) else {
            break;
        };
        let (Some(key), Some(value)) = (
            payload.get(5..5 + key_len),
            payload.get((5 + key_len).min(payload.len())..),
        ) else {
            break;
        };
        match payload[0] {
            PUT => {
                map.insert(key.into(), value.into());
            }
            DELETE => {
                map.remove(key);
            }
            _ => break,
        }
        at += 8 + len;
    }
    at
}

/// A new file holding `bytes` after the magic, durable, under its final
/// name (written as `.tmp` first).
fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> StoreResult<u64> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut f = File::create(&tmp).map_err(|e| io_error("creating", &tmp, e))?;
    f.write_all(MAGIC)
        .and_then(|()| f.write_all(bytes))
        .and_then(|()| f.sync_all())
        .map_err(|e| io_error("writing", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io_error("renaming", &tmp, e))?;
    sync_dir(dir)?;
    Ok((MAGIC.len() + bytes.len()) as u64)
}

fn sync_dir(dir: &Path) -> StoreResult<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("syncing the directory", dir, e))
}

/// The journal and snapshot generations in `dir` (removing `.tmp` files,
/// left by a crash while writing one).
fn list(dir: &Path) -> StoreResult<(Vec<u64>, Vec<u64>)> {
    let (mut journals, mut snapshots) = (Vec::new(), Vec::new());
    let entries = std::fs::read_dir(dir).map_err(|e| io_error("reading", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error("reading", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".tmp") {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|e| io_error("removing", &path, e))?;
            continue;
        }
        let parsed = |prefix: &str| name.strip_prefix(prefix)?.parse::<u64>().ok();
        if let Some(g) = parsed("journal-") {
            journals.push(g);
        } else if let Some(g) = parsed("snapshot-") {
            snapshots.push(g);
        }
    }
    journals.sort_unstable();
    snapshots.sort_unstable();
    Ok((journals, snapshots))
}

/// The journal of `generation`, opened to append to.
fn open_append(dir: &Path, generation: u64) -> StoreResult<File> {
    let path = dir.join(journal_name(generation));
    OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|e| io_error("opening", &path, e))
}

/// Reads a file written by this module; its records after the magic.
fn read(path: &Path) -> StoreResult<Vec<u8>> {
    let mut bytes = std::fs::read(path).map_err(|e| io_error("reading", path, e))?;
    if !bytes.starts_with(MAGIC) {
        return Err(StoreError::Backend(format!(
            "{} is not a contact journal of this version (its first bytes are not {:?})",
            path.display(),
            String::from_utf8_lossy(MAGIC).trim_end()
        )));
    }
    bytes.drain(..MAGIC.len());
    Ok(bytes)
}

impl<B: Backend> Journaled<B> {
    /// Opens the journal in `dir` (creating it) over `inner`, whose lock
    /// must already be held. Contacts found in `inner`'s own table (a store
    /// written before the journal) are moved into it.
    pub fn open(inner: B, dir: &Path) -> StoreResult<Journaled<B>> {
        Self::open_with(inner, dir, MIN_COMPACTION_BYTES)
    }

    fn open_with(inner: B, dir: &Path, min_compaction: u64) -> StoreResult<Journaled<B>> {
        std::fs::create_dir_all(dir).map_err(|e| io_error("creating", dir, e))?;
        let (journals, snapshots) = list(dir)?;
        let had_files = !journals.is_empty() || !snapshots.is_empty();
        let base = snapshots.last().copied().unwrap_or(0);
        let mut map = Map::new();
        let mut snapshot_bytes = 0;
        if let Some(&g) = snapshots.last() {
            let path = dir.join(snapshot_name(g));
            let records = read(&path)?;
            if replay(&records, &mut map) != records.len() {
                return Err(StoreError::Backend(format!(
                    "{} is damaged: a record does not read back (written whole and renamed, it cannot be torn)",
                    path.display()
                )));
            }
            snapshot_bytes = (MAGIC.len() + records.len()) as u64;
        }
        let live: Vec<u64> = journals.iter().copied().filter(|g| *g >= base).collect();
        let mut len = MAGIC.len() as u64;
        for (i, g) in live.iter().enumerate() {
            let path = dir.join(journal_name(*g));
            let records = match read(&path) {
                // Created, then a crash before its magic was durable.
                Ok(r) => r,
                Err(_) if std::fs::metadata(&path).is_ok_and(|m| m.len() == 0) => {
                    write_file(dir, &journal_name(*g), &[])?;
                    Vec::new()
                }
                Err(e) => return Err(e),
            };
            let whole = replay(&records, &mut map);
            len = (MAGIC.len() + whole) as u64;
            if whole < records.len() {
                if i + 1 < live.len() {
                    return Err(StoreError::Backend(format!(
                        "{} is damaged at byte {} (not its end: a newer journal follows it)",
                        path.display(),
                        MAGIC.len() + whole
                    )));
                }
                warn!(
                    path = %path.display(),
                    at = len,
                    cut = records.len() - whole,
                    "cut a torn write off the end of the contact journal (never acknowledged)"
                );
                OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(len).and_then(|()| f.sync_all()))
                    .map_err(|e| io_error("cutting the torn end of", &path, e))?;
            }
        }
        let generation = match live.last() {
            Some(g) => *g,
            None => {
                let g = base.max(1);
                len = write_file(dir, &journal_name(g), &[])?;
                g
            }
        };
        let file = open_append(dir, generation)?;
        let journaled = Journaled {
            inner,
            dir: dir.to_owned(),
            memory: Mutex::new(Memory {
                map,
                pending: Vec::new(),
            }),
            writer: Mutex::new(Writer {
                file,
                generation,
                len,
                torn: false,
            }),
            snapshot_bytes: Arc::new(AtomicU64::new(snapshot_bytes)),
            min_compaction,
            compaction: Mutex::new(None),
            inner_applied: AtomicU64::new(0),
            inner_flushed: AtomicU64::new(0),
        };
        remove_older_than(&journaled.dir, base);
        journaled.take_in_inner_contacts(had_files)?;
        Ok(journaled)
    }

    /// Moves the contacts in `inner`'s own table into the journal: a store
    /// written before it. When the journal already had files, they are
    /// leftovers of a move interrupted after its snapshot (the journal
    /// holds them, or newer): only deleted.
    fn take_in_inner_contacts(&self, had_files: bool) -> StoreResult<()> {
        let mut found: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        self.inner.scan(TABLE, Scan::default(), &mut |k, v| {
            found.push((k.to_vec(), v.to_vec()));
            Ok(true)
        })?;
        if found.is_empty() {
            return Ok(());
        }
        if !had_files {
            let mut memory = lock(&self.memory);
            for (k, v) in &found {
                memory.map.insert(k.as_slice().into(), v.as_slice().into());
            }
        }
        // Durable in a snapshot before they leave `inner`.
        let mut writer = lock(&self.writer);
        let (generation, snapshot) = self.rotate(&mut writer)?;
        write_snapshot(&self.dir, generation, &snapshot, &self.snapshot_bytes)?;
        drop(writer);
        remove_older_than(&self.dir, generation);
        for chunk in found.chunks(4096) {
            let mut batch = Batch::default();
            for (k, _) in chunk {
                batch.delete(TABLE, k.as_slice());
            }
            self.inner.apply(batch)?;
        }
        self.inner.flush()?;
        info!(
            contacts = found.len(),
            dir = %self.dir.display(),
            "moved the device contacts into the contact journal"
        );
        Ok(())
    }
}

impl<B> Journaled<B> {
    /// The backend under the journal.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Bytes the journal's files occupy.
    pub fn journal_bytes(&self) -> StoreResult<u64> {
        let mut total = 0;
        let entries =
            std::fs::read_dir(&self.dir).map_err(|e| io_error("reading", &self.dir, e))?;
        for entry in entries.flatten() {
            total += entry.metadata().map(|m| m.len()).unwrap_or(0);
        }
        Ok(total)
    }

    /// Starts a new journal (durable, empty) and cuts a snapshot of the
    /// map: its generation and records. Everything in the older journal is
    /// in the snapshot; anything applied after the cut is in the new
    /// journal's pending records too.
    fn rotate(&self, writer: &mut Writer) -> StoreResult<(u64, Vec<u8>)> {
        let generation = writer.generation + 1;
        let len = write_file(&self.dir, &journal_name(generation), &[])?;
        let file = open_append(&self.dir, generation)?;
        *writer = Writer {
            file,
            generation,
            len,
            torn: false,
        };
        let memory = lock(&self.memory);
        let mut snapshot = Vec::with_capacity(memory.map.len() * 64);
        for (k, v) in &memory.map {
            append_record(&mut snapshot, k, Some(v));
        }
        Ok((generation, snapshot))
    }

    /// Compacts in the background when the journal has outgrown the
    /// snapshot (and no compaction is running).
    fn maybe_compact(&self, writer: &mut Writer) -> StoreResult<()> {
        let threshold = self
            .min_compaction
            .max(self.snapshot_bytes.load(Ordering::Relaxed));
        if writer.len < threshold {
            return Ok(());
        }
        let mut running = lock(&self.compaction);
        if running.as_ref().is_some_and(|h| !h.is_finished()) {
            return Ok(());
        }
        if let Some(done) = running.take() {
            let _ = done.join();
        }
        let (generation, snapshot) = self.rotate(writer)?;
        let (dir, bytes) = (self.dir.clone(), self.snapshot_bytes.clone());
        *running = Some(std::thread::spawn(move || {
            match write_snapshot(&dir, generation, &snapshot, &bytes) {
                Ok(()) => remove_older_than(&dir, generation),
                // The older snapshot and journals still hold everything;
                // the next rotation tries again.
                Err(e) => error!(error = %e, "could not write a contact snapshot"),
            }
        }));
        Ok(())
    }

    /// Writes the pending records to the journal and syncs it.
    fn flush_journal(&self) -> StoreResult<()> {
        let mut writer = lock(&self.writer);
        self.write_pending(&mut writer)?;
        self.maybe_compact(&mut writer)
    }

    fn write_pending(&self, writer: &mut Writer) -> StoreResult<()> {
        let pending = std::mem::take(&mut lock(&self.memory).pending);
        if pending.is_empty() && !writer.torn {
            return Ok(());
        }
        let cut = match writer.torn {
            true => writer.file.set_len(writer.len),
            false => Ok(()),
        };
        let written = cut.and_then(|()| {
            writer.torn = false;
            writer.file.write_all(&pending)?;
            writer.file.sync_data()
        });
        if let Err(e) = written {
            // Not acknowledged: the records go back for the next flush,
            // and the file back to whole records (or that, first, next
            // time).
            writer.torn = writer.file.set_len(writer.len).is_err();
            let mut memory = lock(&self.memory);
            let newer = std::mem::replace(&mut memory.pending, pending);
            memory.pending.extend_from_slice(&newer);
            let path = self.dir.join(journal_name(writer.generation));
            return Err(io_error("writing the contact journal", &path, e));
        }
        writer.len += pending.len() as u64;
        Ok(())
    }
}

fn write_snapshot(
    dir: &Path,
    generation: u64,
    records: &[u8],
    bytes: &AtomicU64,
) -> StoreResult<()> {
    let written = write_file(dir, &snapshot_name(generation), records)?;
    bytes.store(written, Ordering::Relaxed);
    Ok(())
}

/// Deletes the journals and snapshots older than `generation` (after its
/// snapshot is durable). Best effort: a file left is read and superseded.
fn remove_older_than(dir: &Path, generation: u64) {
    let Ok((journals, snapshots)) = list(dir) else {
        return;
    };
    let old_journals = journals.into_iter().filter(|g| *g < generation);
    let old_snapshots = snapshots.into_iter().filter(|g| *g < generation);
    for name in old_journals
        .map(journal_name)
        .chain(old_snapshots.map(snapshot_name))
    {
        let path = dir.join(name);
        if let Err(e) = std::fs::remove_file(&path) {
            warn!(path = %path.display(), error = %e, "could not remove an old contact journal file");
        }
    }
}

impl<B> Drop for Journaled<B> {
    /// A store closed normally keeps what it was given, synced or not.
    fn drop(&mut self) {
        if let Err(e) = self.write_pending(&mut lock(&self.writer)) {
            error!(error = %e, "could not write the contact journal at close");
        }
        if let Some(running) = lock(&self.compaction).take() {
            let _ = running.join();
        }
    }
}

impl<B: Backend> Backend for Journaled<B> {
    fn get(&self, table: Table, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        if table != TABLE {
            return self.inner.get(table, key);
        }
        Ok(lock(&self.memory).map.get(key).map(|v| v.to_vec()))
    }

    fn scan(&self, table: Table, scan: Scan<'_>, visit: &mut Visit<'_>) -> StoreResult<()> {
        if table != TABLE {
            return self.inner.scan(table, scan, visit);
        }
        let mut low: Bound<Vec<u8>> = match scan.after {
            Some(a) if a >= scan.prefix => Bound::Excluded(a.to_vec()),
            _ => Bound::Included(scan.prefix.to_vec()),
        };
        let mut high: Bound<Vec<u8>> = match prefix_end(scan.prefix) {
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        };
        loop {
            if is_empty(&low, &high) {
                return Ok(());
            }
            let chunk: Vec<(Vec<u8>, Vec<u8>)> = {
                let memory = lock(&self.memory);
                let range = memory
                    .map
                    .range::<[u8], _>((as_slice(&low), as_slice(&high)));
                #[allow(clippy::borrowed_box)] // the map's own item type
                let copy = |(k, v): (&Box<[u8]>, &Box<[u8]>)| (k.to_vec(), v.to_vec());
                match scan.reverse {
                    false => range.take(SCAN_CHUNK).map(copy).collect(),
                    true => range.rev().take(SCAN_CHUNK).map(copy).collect(),
                }
            };
            for (k, v) in &chunk {
                if !visit(k, v)? {
                    return Ok(());
                }
            }
            let Some((last, _)) = chunk.into_iter().last() else {
                return Ok(());
            };
            match scan.reverse {
                false => low = Bound::Excluded(last),
                true => high = Bound::Excluded(last),
            }
        }
    }

    fn apply(&self, mut batch: Batch) -> StoreResult<()> {
        // Most batches hold no contact (a new device, values, tasks): they
        // go to `inner` as they are, without taking the map's lock.
        if batch.ops.iter().any(|(t, _, _)| *t == TABLE) {
            let mut memory = lock(&self.memory);
            let Memory { map, pending } = &mut *memory;
            for (t, k, v) in std::mem::take(&mut batch.ops) {
                if t != TABLE {
                    batch.ops.push((t, k, v));
                    continue;
                }
                append_record(pending, &k, v.as_deref());
                match v {
                    Some(v) => {
                        map.insert(k.into(), v.into());
                    }
                    None => {
                        map.remove(k.as_slice());
                    }
                }
            }
        }
        if !batch.is_empty() {
            self.inner.apply(batch)?;
            self.inner_applied.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    fn next_id(&self) -> StoreResult<u64> {
        self.inner.next_id()
    }

    fn flush(&self) -> StoreResult<()> {
        let applied = self.inner_applied.load(Ordering::SeqCst);
        self.flush_journal()?;
        if applied > self.inner_flushed.load(Ordering::SeqCst) {
            self.inner.flush()?;
            self.inner_flushed.fetch_max(applied, Ordering::SeqCst);
        }
        Ok(())
    }

    fn raise_ids_above(&self, floor: u64) -> StoreResult<()> {
        self.inner.raise_ids_above(floor)
    }

    fn unsynced_limit(&self) -> Option<u64> {
        self.inner.unsynced_limit()
    }
}

/// Whether no key lies between the bounds (`BTreeMap::range` panics on
/// bounds that cross).
fn is_empty(low: &Bound<Vec<u8>>, high: &Bound<Vec<u8>>) -> bool {
    use Bound::{Excluded, Included};
    match (low, high) {
        (Included(l), Included(h)) => l > h,
        (Included(l) | Excluded(l), Included(h) | Excluded(h)) => l >= h,
        _ => false,
    }
}

fn as_slice(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Copies the files of the journal directory `from` into `to`: what a
/// crash leaves of a journal still open.
#[cfg(test)]
pub(super) fn copy_files(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in std::fs::read_dir(from).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledBackend;

    fn open(dir: &Path, min_compaction: u64) -> Journaled<SledBackend> {
        let inner = SledBackend::open(&dir.join("db"), 1 << 20).unwrap();
        Journaled::open_with(inner, &dir.join("db").join("contacts"), min_compaction).unwrap()
    }

    fn put(j: &Journaled<SledBackend>, key: &str, value: &str) {
        let mut batch = Batch::default();
        batch.put(TABLE, key.as_bytes(), value.as_bytes());
        j.apply(batch).unwrap();
    }

    fn delete(j: &Journaled<SledBackend>, key: &str) {
        let mut batch = Batch::default();
        batch.delete(TABLE, key.as_bytes());
        j.apply(batch).unwrap();
    }

    fn all(j: &dyn Backend, t: Table, scan: Scan<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        j.scan(t, scan, &mut |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            Ok(true)
        })
        .unwrap();
        out
    }

    fn contacts(j: &Journaled<SledBackend>) -> Vec<(String, String)> {
        all(j, TABLE, Scan::default())
            .into_iter()
            .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
            .collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// What `kill -9` leaves: the journal's files as they are now, in a
    /// data directory of their own (the sled side is not under test).
    fn crash_copy(from: &Path, to: &Path) {
        copy_files(&from.join("db/contacts"), &to.join("db/contacts"));
    }

    fn only_journal(dir: &Path) -> PathBuf {
        let (journals, _) = list(&dir.join("db/contacts")).unwrap();
        assert_eq!(journals.len(), 1, "{journals:?}");
        dir.join("db/contacts").join(journal_name(journals[0]))
    }

    #[test]
    fn a_crash_keeps_what_was_flushed_and_cuts_a_torn_write() {
        let dir = tempfile::tempdir().unwrap();
        let j = open(dir.path(), MIN_COMPACTION_BYTES);
        put(&j, "a", "1");
        put(&j, "b", "2");
        put(&j, "c", "3");
        delete(&j, "b");
        j.flush().unwrap();
        put(&j, "unflushed", "4");
        assert_eq!(j.get(TABLE, b"unflushed").unwrap(), Some(b"4".to_vec()));
        let crashed = dir.path().join("crashed");
        crash_copy(dir.path(), &crashed);
        // The start of a record that was being written.
        let journal = only_journal(&crashed);
        let whole = std::fs::metadata(&journal).unwrap().len();
        let mut torn = Vec::new();
        append_record(&mut torn, b"torn", Some(b"5"));
        let mut f = OpenOptions::new().append(true).open(&journal).unwrap();
        f.write_all(&torn[..torn.len() - 1]).unwrap();
        drop(f);

        let c = open(&crashed, MIN_COMPACTION_BYTES);
        assert_eq!(contacts(&c), pairs(&[("a", "1"), ("c", "3")]));
        assert_eq!(std::fs::metadata(&journal).unwrap().len(), whole);
        // Writes go on after the cut.
        put(&c, "d", "6");
        c.flush().unwrap();
        drop(c);
        let c = open(&crashed, MIN_COMPACTION_BYTES);
        assert_eq!(contacts(&c), pairs(&[("a", "1"), ("c", "3"), ("d", "6")]));
        // A store closed normally keeps what it was not asked to sync.
        drop(j);
        let j = open(dir.path(), MIN_COMPACTION_BYTES);
        assert_eq!(j.get(TABLE, b"unflushed").unwrap(), Some(b"4".to_vec()));
    }

    #[test]
    fn a_failed_write_is_retried_after_its_torn_bytes_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let j = open(dir.path(), MIN_COMPACTION_BYTES);
        put(&j, "a", "1");
        j.flush().unwrap();
        let journal = only_journal(dir.path());
        // The disk fails: writes and cuts through the journal's handle
        // both fail, after part of a record made it to the file.
        let good = std::mem::replace(&mut lock(&j.writer).file, File::open(&journal).unwrap());
        let mut part = Vec::new();
        append_record(&mut part, b"b", Some(b"2"));
        let mut other = OpenOptions::new().append(true).open(&journal).unwrap();
        other.write_all(&part[..5]).unwrap();
        put(&j, "b", "2");
        let e = j.flush().unwrap_err().to_string();
        assert!(
            e.contains("writing the contact journal") && e.contains(&journal.display().to_string()),
            "{e}"
        );
        assert!(lock(&j.writer).torn);
        assert_eq!(j.get(TABLE, b"b").unwrap(), Some(b"2".to_vec()));
        // The disk is back: the torn bytes are cut, the record written.
        lock(&j.writer).file = good;
        put(&j, "c", "3");
        j.flush().unwrap();
        assert!(!lock(&j.writer).torn);
        let crashed = dir.path().join("crashed");
        crash_copy(dir.path(), &crashed);
        let c = open(&crashed, MIN_COMPACTION_BYTES);
        assert_eq!(contacts(&c), pairs(&[("a", "1"), ("b", "2"), ("c", "3")]));
    }

    /// Waits for the snapshot a compaction is writing, if any.
    fn wait_for_snapshot<B: Backend>(j: &Journaled<B>) {
        if let Some(running) = lock(&j.compaction).take() {
            running.join().unwrap();
        }
    }

    #[test]
    fn compaction_keeps_every_contact() {
        let dir = tempfile::tempdir().unwrap();
        let j = open(dir.path(), 2048);
        let mut model = BTreeMap::new();
        for i in 0..3000u32 {
            let key = format!("dev{:03}", i % 150);
            if i % 7 == 0 {
                delete(&j, &key);
                model.remove(&key);
            } else {
                put(&j, &key, &i.to_string());
                model.insert(key, i.to_string());
            }
            if i % 10 == 0 {
                j.flush().unwrap();
                // A rotation is skipped while the last snapshot is still
                // being written: the count below must not depend on how
                // busy the machine is.
                wait_for_snapshot(&j);
            }
        }
        j.flush().unwrap();
        let model: Vec<(String, String)> = model.into_iter().collect();
        assert_eq!(contacts(&j), model);
        let generation = lock(&j.writer).generation;
        assert!(generation > 10, "compacted {generation} times");
        drop(j);
        let (journals, snapshots) = list(&dir.path().join("db/contacts")).unwrap();
        assert!(
            journals.len() <= 2 && snapshots.len() == 1,
            "{journals:?} {snapshots:?}"
        );
        let j = open(dir.path(), 2048);
        assert_eq!(contacts(&j), model);
    }

    #[test]
    fn a_snapshot_cut_short_leaves_the_journals_that_hold_everything() {
        // What a crash while snapshot 3 was written leaves: the journal was
        // rotated (journal 3), the older files are still there.
        let dir = tempfile::tempdir().unwrap();
        let contacts_dir = dir.path().join("db/contacts");
        std::fs::create_dir_all(&contacts_dir).unwrap();
        let records = |kv: &[(&str, Option<&str>)]| {
            let mut out = Vec::new();
            for (k, v) in kv {
                append_record(&mut out, k.as_bytes(), v.map(str::as_bytes));
            }
            out
        };
        let file = |name: String, bytes: Vec<u8>| write_file(&contacts_dir, &name, &bytes).unwrap();
        file(
            snapshot_name(2),
            records(&[("a", Some("1")), ("gone", Some("0"))]),
        );
        file(
            journal_name(2),
            records(&[("b", Some("2")), ("gone", None)]),
        );
        file(
            journal_name(3),
            records(&[("c", Some("3")), ("a", Some("4"))]),
        );
        let torn = format!("{}.tmp", snapshot_name(3));
        std::fs::write(contacts_dir.join(&torn), b"half a snapshot").unwrap();
        // Older than the newest snapshot: superseded.
        file(journal_name(1), records(&[("stale", Some("9"))]));

        let j = open(dir.path(), MIN_COMPACTION_BYTES);
        assert_eq!(contacts(&j), pairs(&[("a", "4"), ("b", "2"), ("c", "3")]));
        assert!(!contacts_dir.join(torn).exists());
        assert!(!contacts_dir.join(journal_name(1)).exists());
        assert_eq!(lock(&j.writer).generation, 3, "appends go on in journal 3");
    }

    #[test]
    fn damage_that_is_not_a_torn_end_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let j = open(dir.path(), 1);
        put(&j, "a", "1");
        j.flush().unwrap();
        drop(j);
        let contacts_dir = dir.path().join("db/contacts");
        let (_, snapshots) = list(&contacts_dir).unwrap();
        let snapshot = contacts_dir.join(snapshot_name(*snapshots.last().unwrap()));
        let mut bytes = std::fs::read(&snapshot).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&snapshot, bytes).unwrap();
        let inner = SledBackend::open(&dir.path().join("db"), 1 << 20).unwrap();
        let e = Journaled::open(inner, &contacts_dir)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains(&snapshot.display().to_string()) && e.contains("damaged"),
            "{e}"
        );

        std::fs::write(&snapshot, b"not a journal").unwrap();
        let inner = SledBackend::open(&dir.path().join("db"), 1 << 20).unwrap();
        let e = Journaled::open(inner, &contacts_dir)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("is not a contact journal"), "{e}");
    }

    #[test]
    fn contacts_in_the_inner_table_are_moved_in() {
        let dir = tempfile::tempdir().unwrap();
        let inner = SledBackend::open(&dir.path().join("db"), 1 << 20).unwrap();
        let mut batch = Batch::default();
        batch.put(TABLE, b"old".as_slice(), b"1".as_slice());
        batch.put(Table::Devices, b"old".as_slice(), b"rest".as_slice());
        inner.apply(batch).unwrap();
        inner.flush().unwrap();
        drop(inner);
        let j = open(dir.path(), MIN_COMPACTION_BYTES);
        assert_eq!(contacts(&j), pairs(&[("old", "1")]));
        assert!(all(j.inner(), TABLE, Scan::default()).is_empty());
        assert_eq!(
            j.get(Table::Devices, b"old").unwrap(),
            Some(b"rest".to_vec())
        );
        drop(j);
        let j = open(dir.path(), MIN_COMPACTION_BYTES);
        assert_eq!(contacts(&j), pairs(&[("old", "1")]));
    }

    /// Scans of the journal's table visit what sled's tree would, for
    /// every prefix, start and direction, across chunk boundaries.
    #[test]
    fn scans_match_the_inner_backend() {
        let dir = tempfile::tempdir().unwrap();
        let j = open(dir.path(), MIN_COMPACTION_BYTES);
        let mut batch = Batch::default();
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for i in 0..700u32 {
            let mut k = format!("d{}", i % 37).into_bytes();
            k.push(0);
            k.extend_from_slice(format!("{i}").as_bytes());
            keys.push(k);
        }
        keys.extend([
            b"d".to_vec(),
            b"d1".to_vec(),
            b"\xff\xff".to_vec(),
            b"".to_vec(),
        ]);
        for k in &keys {
            batch.put(TABLE, k.clone(), k.clone());
            batch.put(Table::Devices, k.clone(), k.clone());
        }
        j.apply(batch).unwrap();
        let prefixes: [&[u8]; 6] = [b"", b"d", b"d1", b"d1\0", b"\xff", b"zz"];
        let afters: [Option<&[u8]>; 5] =
            [None, Some(b""), Some(b"d1"), Some(b"d1\x0050"), Some(b"e")];
        for prefix in prefixes {
            for after in afters {
                for reverse in [false, true] {
                    let scan = Scan {
                        prefix,
                        after,
                        reverse,
                    };
                    assert_eq!(
                        all(&j, TABLE, scan),
                        all(j.inner(), Table::Devices, scan),
                        "{scan:?}"
                    );
                }
            }
        }
        // A visitor that stops stops the scan.
        let mut seen = 0;
        j.scan(TABLE, Scan::default(), &mut |_, _| {
            seen += 1;
            Ok(seen < 300)
        })
        .unwrap();
        assert_eq!(seen, 300);
    }

    /// A journal's records as written, and the map each whole prefix of
    /// them leaves: what the replay of a file cut anywhere must give.
    mod records {
        use super::*;
        use proptest::prelude::*;

        type Op = (Vec<u8>, Option<Vec<u8>>);

        fn ops() -> impl Strategy<Value = Vec<Op>> {
            let key = proptest::collection::vec(any::<u8>(), 0..12);
            let value = proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40));
            proptest::collection::vec((key, value), 0..40)
        }

        /// The records of `ops`, and where each one ends (0 first).
        fn written(ops: &[Op]) -> (Vec<u8>, Vec<usize>) {
            let mut bytes = Vec::new();
            let mut ends = vec![0];
            for (k, v) in ops {
                append_record(&mut bytes, k, v.as_deref());
                ends.push(bytes.len());
            }
            (bytes, ends)
        }

        proptest! {
            #[test]
            fn a_cut_anywhere_reads_back_the_whole_records_before_it(ops in ops(), cut in any::<prop::sample::Index>()) {
                let (bytes, ends) = written(&ops);
                let cut = cut.index(bytes.len() + 1);
                let mut map = Map::new();
                let read = replay(&bytes[..cut], &mut map);
                // The last record boundary at or before the cut.
                let whole = ends.iter().rposition(|e| *e <= cut).unwrap_or(0);
                prop_assert_eq!(read, ends[whole]);
                let mut model = Map::new();
                for (k, v) in &ops[..whole] {
                    match v {
                        Some(v) => { model.insert(k.as_slice().into(), v.as_slice().into()); }
                        None => { model.remove(k.as_slice()); }
                    }
                }
                prop_assert_eq!(map, model);
            }

            #[test]
            fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
                let mut map = Map::new();
                prop_assert!(replay(&bytes, &mut map) <= bytes.len());
            }

            #[test]
            fn a_flipped_bit_stops_the_replay_at_its_record(ops in ops(), at in any::<prop::sample::Index>(), bit in 0..8u8) {
                prop_assume!(!ops.is_empty());
                let (mut bytes, ends) = written(&ops);
                let at = at.index(bytes.len());
                bytes[at] ^= 1 << bit;
                let mut map = Map::new();
                // The records before the damaged one all read back; none
                // after it does.
                let damaged = ends.iter().rposition(|e| *e <= at).unwrap_or(0);
                prop_assert_eq!(replay(&bytes, &mut map), ends[damaged]);
            }
        }
    }
}
