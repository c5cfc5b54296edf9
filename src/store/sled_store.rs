//! The default embedded backend: sled, one tree per [`Table`]. The store's
//! logic is [`KvStore`]'s.

use std::path::Path;

use super::journal::Journaled;
use super::kv::{Backend, Batch, KvStore, Scan, Table, Visit};
use super::{StoreError, StoreResult};

/// Where the server keeps sled in its data dir.
pub const SLED_DIR: &str = "db";

/// The sled store: [`KvStore`] over [`SledBackend`], its device contacts
/// in a journal (`<dir>/contacts`, [`Journaled`]).
pub type SledStore = KvStore<Journaled<SledBackend>>;

/// Where the contact journal is, in sled's directory.
const JOURNAL_DIR: &str = "contacts";

/// How long opening waits for sled's file lock before the database counts
/// as in use by another process.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// sled's side of the store.
pub struct SledBackend {
    db: sled::Db,
    /// In [`Table::ALL`] order.
    trees: Vec<sled::Tree>,
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

impl KvStore<Journaled<SledBackend>> {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path, cache_bytes: u64) -> StoreResult<SledStore> {
        KvStore::new(SledBackend::open_journaled(dir, cache_bytes)?)
    }

    /// Bytes the database occupies on disk.
    pub fn size_on_disk(&self) -> StoreResult<u64> {
        let journaled = self.backend();
        Ok(journaled.inner().db.size_on_disk()? + journaled.journal_bytes()?)
    }
}

impl SledBackend {
    pub(super) fn open(dir: &Path, cache_bytes: u64) -> StoreResult<SledBackend> {
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .flush_every_ms(Some(1000));
        // A store of this process just closed may still have one of sled's
        // I/O threads finishing a write, holding the file and its lock for
        // a moment after the `Db` is dropped (a copy reopening what it
        // wrote, a test reopening its store): the lock is waited for a
        // little before it counts as another process's.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let opened = loop {
            match config.open() {
                Err(e) if lock_held(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => break other,
            }
        };
        let db = opened.map_err(|e| {
            if lock_held(&e) {
                // The server keeps sled in `<data_dir>/db`.
                let data_dir = match (dir.parent(), dir.file_name()) {
                    (Some(parent), Some(name)) if name == SLED_DIR => parent,
                    _ => dir,
                };
                StoreError::in_use(data_dir, dir)
            } else {
                StoreError::Backend(format!("opening {}: {e}", dir.display()))
            }
        })?;
        let trees = Table::ALL
            .iter()
            .map(|t| db.open_tree(t.name()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SledBackend { db, trees })
    }

    /// [`SledBackend::open`] with the contact journal in the directory:
    /// how the store is always opened.
    pub(super) fn open_journaled(
        dir: &Path,
        cache_bytes: u64,
    ) -> StoreResult<Journaled<SledBackend>> {
        Journaled::open(SledBackend::open(dir, cache_bytes)?, &dir.join(JOURNAL_DIR))
    }

    pub(super) fn tree(&self, t: Table) -> &sled::Tree {
        // `trees` is built from `Table::ALL`, whose order is the enum's.
        &self.trees[t as usize]
    }
}

/// A key and its new value (`None`: delete).
type Write = (Vec<u8>, Option<Vec<u8>>);

/// Tables whose writes of one batch sled gets one by one rather than in
/// an `apply_batch`. A batch takes sled's process-wide lock exclusively
/// (and from the first batch on, every read and write takes it shared), so
/// every other session's store access waits for it. With 64 sessions at
/// once, a new device's two search keys in a batch made its first contact
/// cost 2.2× what it does key by key (0.22 against 0.10 ms of CPU), and
/// the parameter cache's batches made a bootstrap with discovery cost 15 %
/// more (BENCHMARKS.md).
///
/// What these tables hold is worked out again: the search index from the
/// device records (rebuilt from them when it is empty), the parameter
/// cache by the device's next session. sled replays a prefix of its log
/// after a crash, so a cut between two of these writes leaves what a cut
/// between two tables of one batch already could; what was made durable
/// ([`Backend::flush`]) before the crash is all there.
const KEY_BY_KEY: [Table; 4] = [
    Table::Search,
    Table::Params,
    Table::Writable,
    Table::Subtrees,
];

impl Backend for SledBackend {
    fn get(&self, table: Table, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.tree(table).get(key)?.map(|v| v.to_vec()))
    }

    fn scan(&self, table: Table, scan: Scan<'_>, visit: &mut Visit<'_>) -> StoreResult<()> {
        let tree = self.tree(table);
        let mut start = scan.prefix.to_vec();
        if let Some(a) = scan.after {
            // Strictly after `a`: its first successor is `a` + 0.
            let mut after = a.to_vec();
            after.push(0);
            start = start.max(after);
        }
        let iter = tree.range(start..);
        if scan.reverse {
            // From the end down: keys above the prefix range are skipped,
            // the first key below it ends the scan.
            for kv in iter.rev() {
                let (k, v) = kv?;
                if !k.starts_with(scan.prefix) {
                    if k.as_ref() > scan.prefix {
                        continue;
                    }
                    break;
                }
                if !visit(&k, &v)? {
                    break;
                }
            }
        } else {
            for kv in iter {
                let (k, v) = kv?;
                if !k.starts_with(scan.prefix) || !visit(&k, &v)? {
                    break;
                }
            }
        }
        Ok(())
    }

    fn apply(&self, batch: Batch) -> StoreResult<()> {
        // Grouped per tree, in the order the trees first appear; a tree
        // with one write, or in `KEY_BY_KEY`, gets its writes straight, the
        // others one `apply_batch` each.
        let mut per_tree: Vec<(Table, Vec<Write>)> = Vec::new();
        for (t, k, v) in batch.ops {
            match per_tree.iter_mut().find(|(x, _)| *x == t) {
                Some((_, ops)) => ops.push((k, v)),
                None => per_tree.push((t, vec![(k, v)])),
            }
        }
        for (t, ops) in per_tree {
            let tree = self.tree(t);
            if ops.len() == 1 || KEY_BY_KEY.contains(&t) {
                for (k, v) in ops {
                    match v {
                        Some(v) => tree.insert(k, v)?,
                        None => tree.remove(k)?,
                    };
                }
                continue;
            }
            let mut b = sled::Batch::default();
            for (k, v) in ops {
                match v {
                    Some(v) => b.insert(k, v),
                    None => b.remove(k),
                }
            }
            tree.apply_batch(b)?;
        }
        Ok(())
    }

    fn next_id(&self) -> StoreResult<u64> {
        // sled ids are unique and increase across restarts.
        Ok(self.db.generate_id()? + 1)
    }

    fn flush(&self) -> StoreResult<()> {
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_applied_key_by_key_keep_the_batch_order() {
        let dir = tempfile::tempdir().unwrap();
        let b = SledBackend::open(dir.path(), 1 << 20).unwrap();
        let mut batch = Batch::default();
        batch.put(Table::Search, b"a".to_vec(), Vec::new());
        batch.put(Table::Search, b"b".to_vec(), Vec::new());
        batch.delete(Table::Search, b"a".to_vec());
        batch.put(Table::Params, b"p".to_vec(), b"1".to_vec());
        batch.delete(Table::Params, b"p".to_vec());
        batch.put(Table::Params, b"p".to_vec(), b"2".to_vec());
        batch.put(Table::Devices, b"d".to_vec(), b"1".to_vec());
        batch.put(Table::Devices, b"e".to_vec(), b"2".to_vec());
        b.apply(batch).unwrap();
        let mut keys = Vec::new();
        b.scan(Table::Search, Scan::default(), &mut |k, _| {
            keys.push(k.to_vec());
            Ok(true)
        })
        .unwrap();
        assert_eq!(keys, vec![b"b".to_vec()]);
        assert_eq!(b.get(Table::Params, b"p").unwrap(), Some(b"2".to_vec()));
        assert_eq!(b.get(Table::Devices, b"e").unwrap(), Some(b"2".to_vec()));
    }

    #[test]
    fn trees_are_in_table_order() {
        for (i, t) in Table::ALL.iter().enumerate() {
            assert_eq!(*t as usize, i, "{t:?}");
        }
    }
}
