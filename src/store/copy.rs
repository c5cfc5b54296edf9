//! `gigafibre-acs store copy --from SPEC --to SPEC`: every table of one
//! store into another, whatever their backends (the records are the same
//! bytes everywhere), then a check. A store is named by a spec:
//! `sled:DATA_DIR` (its `db` directory), `redb:DATA_DIR` (its `store.redb`),
//! or a `postgres://` URL.
//!
//! The destination must be empty: a copy never merges. The id counter of
//! the destination is raised above every task and fault id copied, so new
//! tasks never reuse one.

use std::path::PathBuf;

use serde::Serialize;

use super::kv::{Backend, Batch, Scan, Table, highest_id};
use super::pg_store::PgBackend;
use super::redb_store::{FILE_NAME, RedbBackend};
use super::sled_store::{SLED_DIR, SledBackend};
use super::{StoreError, StoreResult};

/// Entries written per batch.
const BATCH: usize = 4096;

/// Where a store is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreSpec {
    Sled(PathBuf),
    Redb(PathBuf),
    /// A `postgres://` URL (it may hold a password: never shown whole).
    Postgres(String),
}

impl std::str::FromStr for StoreSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<StoreSpec, String> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(StoreSpec::Postgres(s.to_owned()));
        }
        let (kind, path) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}` is not a store: write sled:DATA_DIR or redb:DATA_DIR"))?;
        if path.trim().is_empty() {
            return Err(format!("`{s}` names no directory"));
        }
        let path = PathBuf::from(path);
        match kind {
            "sled" => Ok(StoreSpec::Sled(path)),
            "redb" => Ok(StoreSpec::Redb(path)),
            other => Err(format!(
                "unknown store kind `{other}` in `{s}` (sled or redb)"
            )),
        }
    }
}

impl std::fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreSpec::Sled(p) => write!(f, "sled:{}", p.display()),
            StoreSpec::Redb(p) => write!(f, "redb:{}", p.display()),
            // Host and database only: the user and password stay out.
            StoreSpec::Postgres(url) => {
                let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
                let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
                write!(f, "postgres://{}", host.split('?').next().unwrap_or(host))
            }
        }
    }
}

impl StoreSpec {
    /// Opens the backend (creating an empty store if there is none).
    /// A redb data dir is opened as is: an old sled directory beside it is
    /// not migrated here (that is `serve`'s first start).
    pub fn open(&self, cache_bytes: u64) -> StoreResult<Box<dyn Backend>> {
        Ok(match self {
            StoreSpec::Sled(dir) => Box::new(SledBackend::open_journaled(
                &dir.join(SLED_DIR),
                cache_bytes,
            )?),
            StoreSpec::Redb(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Backend(format!("creating {}: {e}", dir.display())))?;
                Box::new(RedbBackend::open_journaled(
                    &dir.join(FILE_NAME),
                    cache_bytes,
                )?)
            }
            StoreSpec::Postgres(url) => Box::new(PgBackend::connect(url)?),
        })
    }
}

/// What a copy did, per table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CopyReport {
    /// Table name → entries copied (and found in the destination after).
    pub tables: std::collections::BTreeMap<String, u64>,
    /// The destination's next task/fault id is above this.
    pub highest_id: u64,
}

impl CopyReport {
    pub fn total(&self) -> u64 {
        self.tables.values().sum()
    }
}

fn count(b: &dyn Backend, t: Table) -> StoreResult<u64> {
    let mut n = 0u64;
    b.scan(t, Scan::default(), &mut |_, _| {
        n += 1;
        Ok(true)
    })?;
    Ok(n)
}

/// Copies every table of `from` into `to` (which must be empty), checks
/// the counts, raises `to`'s id counter and makes it durable.
/// `progress(table, copied)` is called as it goes.
pub fn copy(
    from: &dyn Backend,
    to: &dyn Backend,
    progress: &mut dyn FnMut(&str, u64),
) -> StoreResult<CopyReport> {
    for t in Table::ALL {
        let n = count(to, t)?;
        if n > 0 {
            return Err(StoreError::Backend(format!(
                "the destination is not empty ({n} entries in its {} table): copy into an empty store",
                t.name()
            )));
        }
    }
    let mut report = CopyReport::default();
    for t in Table::ALL {
        let mut batch = Batch::default();
        let mut copied = 0u64;
        let mut failed: Option<StoreError> = None;
        from.scan(t, Scan::default(), &mut |k, v| {
            batch.put(t, k, v);
            copied += 1;
            if batch.ops.len() >= BATCH {
                if let Err(e) = to.apply(std::mem::take(&mut batch)) {
                    failed = Some(e);
                    return Ok(false);
                }
                progress(t.name(), copied);
            }
            Ok(true)
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        if !batch.is_empty() {
            to.apply(batch)?;
        }
        progress(t.name(), copied);
        let (in_source, in_copy) = (count(from, t)?, count(to, t)?);
        if in_source != copied || in_copy != copied {
            return Err(StoreError::Backend(format!(
                "table {}: {in_source} entries in the source, {copied} copied, {in_copy} in the destination (was the source written to during the copy?)",
                t.name()
            )));
        }
        report.tables.insert(t.name().to_owned(), copied);
    }
    for t in Table::ID_TABLES {
        report.highest_id = report.highest_id.max(highest_id(from, t)?);
    }
    to.raise_ids_above(report.highest_id)?;
    to.flush()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cwmp::CwmpVersion;
    use crate::cwmp::rpc::{DeviceIdStruct, Reboot};
    use crate::store::{CachedValue, DeviceRecord, NewFault, RedbStore, SledStore, Store};

    fn fill(s: &dyn Store) -> (u64, u64) {
        for i in 0..50 {
            let id = format!("OUI-PC-{i:03}");
            s.put_device(&DeviceRecord::new(
                id.clone(),
                DeviceIdStruct {
                    serial_number: format!("{i:03}"),
                    ..DeviceIdStruct::default()
                },
                CwmpVersion::V1_0,
                1,
            ))
            .unwrap();
            s.put_values(
                &id,
                &[(
                    "Device.DeviceInfo.UpTime".into(),
                    CachedValue {
                        value: i.to_string(),
                        kind: crate::cwmp::ValueType::UnsignedInt,
                        updated_ms: 1,
                    },
                )],
            )
            .unwrap();
        }
        // A check-in of every fifth: a contact of its own (a journal on
        // sled and redb, a table on PostgreSQL).
        for i in (0..50).step_by(5) {
            let mut d = s.device(&format!("OUI-PC-{i:03}")).unwrap().unwrap();
            d.last_inform_ms = 5;
            d.inform_count = 2;
            s.put_device(&d).unwrap();
        }
        let task = s
            .insert_task(
                "OUI-PC-007",
                crate::cwmp::Body::from(Reboot::default()).into(),
                "reboot",
                1,
            )
            .unwrap();
        let fault = s
            .record_fault(NewFault {
                device_id: "OUI-PC-007".into(),
                at_ms: 2,
                source: "cpe",
                code: 9002,
                message: "x".into(),
                rpc: None,
                task_id: Some(task.id),
            })
            .unwrap();
        s.flush_blocking().unwrap();
        (task.id, fault.id)
    }

    #[test]
    fn sled_to_redb_and_back_keeps_everything_and_ids_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            StoreSpec::Sled(dir.path().join("a")),
            StoreSpec::Redb(dir.path().join("b")),
            StoreSpec::Sled(dir.path().join("c")),
        );
        let (task, fault) = {
            let s = SledStore::open(&dir.path().join("a/db"), 8 << 20).unwrap();
            fill(&s)
        };
        for (from, to) in [(&a, &b), (&b, &c)] {
            let (src, dst) = (from.open(8 << 20).unwrap(), to.open(8 << 20).unwrap());
            let r = copy(src.as_ref(), dst.as_ref(), &mut |_, _| {}).unwrap();
            assert_eq!(r.highest_id, task.max(fault));
            assert_eq!(r.tables.get("devices"), Some(&50), "{r:?}");
            assert_eq!(r.tables.get("contacts"), Some(&10), "{r:?}");
            // Never into a store that holds something.
            let again = copy(src.as_ref(), dst.as_ref(), &mut |_, _| {}).unwrap_err();
            assert!(again.to_string().contains("not empty"), "{again}");
        }
        let r = RedbStore::open_file(&dir.path().join("b").join(FILE_NAME), 8 << 20).unwrap();
        assert_eq!(r.list_devices(None, 100).unwrap().len(), 50);
        drop(r);
        let s = SledStore::open(&dir.path().join("c/db"), 8 << 20).unwrap();
        assert_eq!(s.list_devices(None, 100).unwrap().len(), 50);
        assert_eq!(s.device("OUI-PC-005").unwrap().unwrap().inform_count, 2);
        assert_eq!(s.task(task).unwrap().unwrap().name, "reboot");
        assert_eq!(
            s.search_devices(&["007".into()], None, 10).unwrap(),
            ["OUI-PC-007"]
        );
        let next = s
            .insert_task(
                "OUI-PC-001",
                crate::cwmp::Body::from(Reboot::default()).into(),
                "reboot",
                3,
            )
            .unwrap();
        assert!(next.id > task.max(fault), "{} reuses an id", next.id);
    }

    #[test]
    fn sled_to_postgres_and_back() {
        let Some(url) = crate::store::pg_test::database("acs_copy_test") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let (task, _) = {
            let s = SledStore::open(&dir.path().join("a/db"), 8 << 20).unwrap();
            fill(&s)
        };
        let a = StoreSpec::Sled(dir.path().join("a"));
        let p = StoreSpec::Postgres(url.clone());
        let c = StoreSpec::Sled(dir.path().join("c"));
        for (from, to) in [(&a, &p), (&p, &c)] {
            let (src, dst) = (from.open(8 << 20).unwrap(), to.open(8 << 20).unwrap());
            let r = copy(src.as_ref(), dst.as_ref(), &mut |_, _| {}).unwrap();
            assert_eq!(r.tables.get("devices"), Some(&50), "{r:?}");
            assert_eq!(r.tables.get("contacts"), Some(&10), "{r:?}");
        }
        let pg = crate::store::PgStore::connect(&url).unwrap();
        assert_eq!(pg.list_devices(None, 100).unwrap().len(), 50);
        let next = pg
            .insert_task(
                "OUI-PC-002",
                crate::cwmp::Body::from(Reboot::default()).into(),
                "reboot",
                4,
            )
            .unwrap();
        assert!(next.id > task);
        // The password of a URL is never shown.
        let shown =
            StoreSpec::Postgres("postgres://acs:s3cret@db.example:5432/acs".into()).to_string();
        assert_eq!(shown, "postgres://db.example:5432/acs");
    }

    #[test]
    fn specs_are_parsed_with_clear_errors() {
        assert_eq!(
            "sled:./data".parse::<StoreSpec>(),
            Ok(StoreSpec::Sled("./data".into()))
        );
        assert!(
            "./data"
                .parse::<StoreSpec>()
                .unwrap_err()
                .contains("sled:DATA_DIR")
        );
        assert!(
            "mongo:x"
                .parse::<StoreSpec>()
                .unwrap_err()
                .contains("mongo")
        );
        assert!(
            "redb:"
                .parse::<StoreSpec>()
                .unwrap_err()
                .contains("no directory")
        );
    }
}
