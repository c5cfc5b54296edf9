//! The PostgreSQL backend (`ACS_STORE_URL=postgres://…`): the store's tables
//! as rows of one table `acs_kv (t, k, v)` keyed by (table, key), the same
//! bytes as the embedded backends, so `store copy` moves data either way.
//!
//! The [`Backend`] trait is synchronous (the embedded backends are, and
//! keep their speed); this backend runs tokio-postgres on a runtime of its
//! own and the calling thread waits for the answer, from a plain thread or
//! a runtime worker alike (never `block_on` inside a runtime).
//!
//! Every [`Backend::apply`] is one statement (deletes and upserts in one
//! CTE), so atomic and, with PostgreSQL's default `synchronous_commit`,
//! durable when it returns: [`Backend::flush`] has nothing left to do.
//!
//! TLS: `sslmode` in the URL (rustls, the system's roots).
//!
//! Schema migrations run at open under an advisory lock, versioned in
//! `acs_schema`, so two nodes starting together migrate once.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::kv::{Backend, Batch, KvStore, Scan, Table, Visit, highest_id, prefix_end};
use super::pg_conn::{Conn, Pool, pg_error};
use super::{StoreError, StoreResult};

/// The PostgreSQL store: [`KvStore`] over [`PgBackend`].
pub type PgStore = KvStore<PgBackend>;

/// Connections per node (see [`Pool`]).
const CONNECTIONS: usize = 4;
/// Rows fetched per scan query.
const PAGE: i64 = 1000;
/// Key of the advisory lock the schema migration holds.
const MIGRATION_LOCK: i64 = 0x0061_6373_6d69_6731; // "acsmig1"
/// The schema version this code writes.
const SCHEMA_VERSION: i32 = 2;

/// PostgreSQL's side of the store.
pub struct PgBackend {
    pool: Pool,
}

fn table_id(t: Table) -> i16 {
    t as i16
}

impl KvStore<PgBackend> {
    /// Connects to `url` (`postgres://user:pass@host:port/db`) and
    /// migrates the schema.
    pub fn connect(url: &str) -> StoreResult<PgStore> {
        KvStore::new(PgBackend::connect(url)?)
    }
}

impl PgBackend {
    pub(super) fn connect(url: &str) -> StoreResult<PgBackend> {
        let backend = PgBackend {
            pool: Pool::open("acs-postgres", url, CONNECTIONS)?,
        };
        backend.migrate()?;
        Ok(backend)
    }

    /// Runs `f` with a connection on the backend's runtime and waits for it.
    fn run<T, F>(&self, f: impl FnOnce(Arc<Conn>) -> F + Send + 'static) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Future<Output = StoreResult<T>> + Send + 'static,
    {
        self.pool.run(f)
    }

    fn migrate(&self) -> StoreResult<()> {
        self.run(move |c| async move {
            c.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
                .await
                .map_err(|e| pg_error("schema lock", e))?;
            let result = async {
                c.batch_execute(
                    "CREATE TABLE IF NOT EXISTS acs_schema (version integer NOT NULL)",
                )
                .await?;
                let version: i32 = c
                    .query_one("SELECT coalesce(max(version), 0) FROM acs_schema", &[])
                    .await?
                    .get(0);
                if version < 1 {
                    c.batch_execute(
                        "CREATE TABLE IF NOT EXISTS acs_kv (
                             t smallint NOT NULL,
                             k bytea NOT NULL,
                             v bytea NOT NULL,
                             PRIMARY KEY (t, k)
                         );
                         CREATE SEQUENCE IF NOT EXISTS acs_ids;
                         INSERT INTO acs_schema (version) VALUES (1);",
                    )
                    .await?;
                }
                if version < 2 {
                    // Coordination between nodes (crate::cluster). Leases
                    // and heartbeats are UNLOGGED: rewritten every session
                    // and every second, they need no WAL; after a crash of
                    // the database they are empty, which frees every
                    // device, as the crash ended every session anyway.
                    c.batch_execute(
                        "CREATE UNLOGGED TABLE IF NOT EXISTS acs_node (
                             node text PRIMARY KEY,
                             url text NOT NULL,
                             seen timestamptz NOT NULL
                         );
                         CREATE UNLOGGED TABLE IF NOT EXISTS acs_lease (
                             name text PRIMARY KEY,
                             node text NOT NULL,
                             token text NOT NULL,
                             expires timestamptz NOT NULL
                         );
                         CREATE INDEX IF NOT EXISTS acs_lease_token ON acs_lease (token);
                         CREATE TABLE IF NOT EXISTS acs_setting (
                             name text PRIMARY KEY,
                             value text NOT NULL
                         );
                         INSERT INTO acs_schema (version) VALUES (2);",
                    )
                    .await?;
                }
                Ok::<i32, tokio_postgres::Error>(version.max(SCHEMA_VERSION))
            }
            .await;
            let _ = c
                .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
                .await;
            let version = result.map_err(|e| pg_error("schema migration", e))?;
            if version > SCHEMA_VERSION {
                return Err(StoreError::Backend(format!(
                    "the database's schema is version {version}, newer than this ACS's ({SCHEMA_VERSION}): upgrade the ACS"
                )));
            }
            Ok(())
        })?;
        // Ids continue above every task and fault id already stored.
        let mut highest = 0;
        for t in Table::ID_TABLES {
            highest = highest.max(highest_id(self, t)?);
        }
        if highest > 0 {
            self.raise_ids_above(highest)?;
        }
        Ok(())
    }

    /// One page of a scan: rows strictly beyond `cursor` (after it going
    /// forward, before it in reverse), within `[lower, upper)`.
    fn page(
        &self,
        t: Table,
        lower: Vec<u8>,
        upper: Option<Vec<u8>>,
        cursor: Option<Vec<u8>>,
        reverse: bool,
    ) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        // Plain range conditions only, so every statement (prepared once
        // per connection, then planned generically) is an index range
        // scan: `k > cursor` is `k >= cursor || 0x00`, and a cursor in
        // reverse is the new upper bound.
        let (lower, upper) = match (cursor, reverse) {
            (None, _) => (lower, upper),
            (Some(mut c), false) => {
                c.push(0);
                (c.max(lower), upper)
            }
            (Some(c), true) => (lower, Some(upper.map_or(c.clone(), |u| u.min(c)))),
        };
        let sql = match (reverse, upper.is_some()) {
            (false, true) => {
                "SELECT k, v FROM acs_kv WHERE t = $1 AND k >= $2 AND k < $3 ORDER BY k LIMIT $4"
            }
            (false, false) => {
                "SELECT k, v FROM acs_kv WHERE t = $1 AND k >= $2 ORDER BY k LIMIT $3"
            }
            (true, true) => {
                "SELECT k, v FROM acs_kv WHERE t = $1 AND k >= $2 AND k < $3 ORDER BY k DESC LIMIT $4"
            }
            (true, false) => {
                "SELECT k, v FROM acs_kv WHERE t = $1 AND k >= $2 ORDER BY k DESC LIMIT $3"
            }
        };
        let id = table_id(t);
        self.run(move |c| async move {
            let rows = match &upper {
                Some(u) => c.query(sql, &[&id, &lower, u, &PAGE]).await,
                None => c.query(sql, &[&id, &lower, &PAGE]).await,
            }
            .map_err(|e| pg_error("scan", e))?;
            Ok(rows
                .into_iter()
                .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
                .collect())
        })
    }
}

impl Backend for PgBackend {
    fn get(&self, table: Table, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        let (id, key) = (table_id(table), key.to_vec());
        self.run(move |c| async move {
            let row = c
                .query_opt("SELECT v FROM acs_kv WHERE t = $1 AND k = $2", &[&id, &key])
                .await
                .map_err(|e| pg_error("read", e))?;
            Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
        })
    }

    fn scan(&self, table: Table, scan: Scan<'_>, visit: &mut Visit<'_>) -> StoreResult<()> {
        let lower = scan.prefix.to_vec();
        let upper = prefix_end(scan.prefix);
        // Forward, `after` is where the first page starts; in reverse it
        // is not used (the store scans backwards from the end only).
        let mut cursor = if scan.reverse {
            None
        } else {
            scan.after.map(<[u8]>::to_vec)
        };
        loop {
            let rows = self.page(
                table,
                lower.clone(),
                upper.clone(),
                cursor.clone(),
                scan.reverse,
            )?;
            let full = rows.len() as i64 == PAGE;
            for (k, v) in &rows {
                if !visit(k, v)? {
                    return Ok(());
                }
            }
            match rows.into_iter().last() {
                Some((k, _)) if full => cursor = Some(k),
                _ => return Ok(()),
            }
        }
    }

    fn apply(&self, batch: Batch) -> StoreResult<()> {
        // The last write to a key wins, as on the embedded backends; one
        // statement cannot touch a row twice.
        let mut last: BTreeMap<(i16, Vec<u8>), Option<Vec<u8>>> = BTreeMap::new();
        for (t, k, v) in batch.ops {
            last.insert((table_id(t), k), v);
        }
        let (mut dt, mut dk) = (Vec::new(), Vec::new());
        let (mut pt, mut pk, mut pv) = (Vec::new(), Vec::new(), Vec::new());
        for ((t, k), v) in last {
            match v {
                Some(v) => {
                    pt.push(t);
                    pk.push(k);
                    pv.push(v);
                }
                None => {
                    dt.push(t);
                    dk.push(k);
                }
            }
        }
        self.run(move |c| async move {
            c.execute(
                "WITH gone AS (
                     DELETE FROM acs_kv USING unnest($1::smallint[], $2::bytea[]) AS d(t, k)
                     WHERE acs_kv.t = d.t AND acs_kv.k = d.k
                 )
                 INSERT INTO acs_kv (t, k, v)
                 SELECT * FROM unnest($3::smallint[], $4::bytea[], $5::bytea[])
                 ON CONFLICT (t, k) DO UPDATE SET v = EXCLUDED.v",
                &[&dt, &dk, &pt, &pk, &pv],
            )
            .await
            .map_err(|e| pg_error("write", e))?;
            Ok(())
        })
    }

    fn next_id(&self) -> StoreResult<u64> {
        self.run(move |c| async move {
            let id: i64 = c
                .query_one("SELECT nextval('acs_ids')", &[])
                .await
                .map_err(|e| pg_error("id", e))?
                .get(0);
            Ok(u64::try_from(id).unwrap_or(0))
        })
    }

    fn raise_ids_above(&self, floor: u64) -> StoreResult<()> {
        let floor = i64::try_from(floor).unwrap_or(i64::MAX);
        self.run(move |c| async move {
            c.query_one(
                "SELECT setval('acs_ids', greatest($1, (SELECT last_value FROM acs_ids)))",
                &[&floor],
            )
            .await
            .map_err(|e| pg_error("id counter", e))?;
            Ok(())
        })
    }

    fn flush(&self) -> StoreResult<()> {
        // Every write committed durably when it returned.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn nodes_starting_together_migrate_the_schema_once() {
        let Some(url) = crate::store::pg_test::database("acs_two_nodes") else {
            return;
        };
        let nodes: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || PgStore::connect(&url))
            })
            .collect();
        let stores: Vec<PgStore> = nodes
            .into_iter()
            .map(|h| h.join().expect("thread").expect("connect"))
            .collect();
        let versions = stores[0]
            .backend()
            .run(move |c| async move {
                let rows = c
                    .query("SELECT version FROM acs_schema ORDER BY version", &[])
                    .await
                    .map_err(|e| pg_error("test", e))?;
                Ok(rows.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>())
            })
            .expect("schema versions");
        assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
        // Every node sees what another wrote, and ids never repeat.
        let mut ids: Vec<u64> = stores
            .iter()
            .map(|s| s.backend().next_id().expect("id"))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), stores.len());
        stores[1]
            .put_cpe_credential(&crate::store::CpeCredential {
                username: "node-1".into(),
                password: "x".into(),
                device_id: None,
            })
            .expect("write");
        assert!(stores[2].cpe_credential("node-1").expect("read").is_some());
    }

    #[test]
    fn tls_is_negotiated_as_the_url_asks() {
        let Some(url) = crate::store::pg_test::database("acs_tls") else {
            return;
        };
        // The test server has no TLS: `prefer` falls back, `require` fails.
        PgStore::connect(&format!("{url}?sslmode=prefer")).expect("prefer falls back");
        let Err(e) = PgStore::connect(&format!("{url}?sslmode=require")) else {
            panic!("TLS required from a server without it");
        };
        assert!(e.to_string().contains("PostgreSQL connection"), "{e}");
    }

    #[test]
    fn tls_against_the_databases_own_ca() {
        let Some(pg) = crate::store::pg_test::PgServer::start() else {
            return;
        };
        let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        pg.enable_tls(&data.join("test-cert.pem"), &data.join("test-key.pem"));
        let url = pg.create("acs_tls_ca");
        // The system's roots do not know the test CA: refused, even with
        // `require` (which libpq would accept unchecked).
        let Err(e) = PgStore::connect(&format!("{url}?sslmode=require")) else {
            panic!("a certificate from an unknown CA accepted");
        };
        assert!(e.to_string().contains("PostgreSQL connection"), "{e}");
        // With the CA named, `verify-full` connects, over TLS.
        let ca = data.join("test-ca.pem");
        let store = PgStore::connect(&format!(
            "{url}?sslmode=verify-full&sslrootcert={}",
            ca.display()
        ))
        .expect("TLS with sslrootcert");
        let ssl = store
            .backend()
            .run(|c| async move {
                let row = c
                    .query_one(
                        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                        &[],
                    )
                    .await
                    .map_err(|e| pg_error("test", e))?;
                Ok(row.get::<_, bool>(0))
            })
            .expect("pg_stat_ssl");
        assert!(ssl, "the connection is not encrypted");
    }

    #[test]
    fn a_wrong_address_is_a_clear_error_without_the_password() {
        let Err(e) = PgStore::connect("postgres://acs:hunter2-secret@127.0.0.1:1/acs") else {
            panic!("a store on port 1");
        };
        let text = e.to_string();
        assert!(text.contains("PostgreSQL connection"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
