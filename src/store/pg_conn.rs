//! PostgreSQL connections for the store and the cluster coordination
//! ([`crate::cluster`]): TLS as the URL asks, a runtime of their own that
//! synchronous callers wait on, and clients that reconnect after the
//! database restarted or the network dropped (the query that saw the
//! failure fails; the next one gets a new connection).

use std::sync::Arc;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{StoreError, StoreResult};

/// A PostgreSQL error as the store reports it.
pub(crate) fn pg_error(what: &str, e: tokio_postgres::Error) -> StoreError {
    // The driver's text names the failing part (connection, SQL state);
    // the URL, which may carry a password, is never part of it.
    StoreError::Backend(format!("PostgreSQL {what}: {e}"))
}

/// A runtime for PostgreSQL's I/O, apart from the server's (whose
/// workers may be the threads waiting on it).
fn runtime(name: &str) -> StoreResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()
        .map_err(|e| StoreError::Backend(format!("PostgreSQL runtime: {e}")))
}

/// Runs a future on `runtime` from any thread and waits for its result
/// (never `block_on` inside a runtime: this works from its workers too).
fn on<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    f: impl Future<Output = StoreResult<T>> + Send + 'static,
) -> StoreResult<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = tx.send(f.await);
    });
    rx.recv()
        .map_err(|_| StoreError::Backend("PostgreSQL: the query was dropped".into()))?
}

/// The URL as the driver reads it, and the `sslrootcert` file if any:
/// `verify-ca`/`verify-full` become `require` (the driver knows only
/// that; the certificate is checked either way) and `sslrootcert` is
/// taken out (the driver does not know it).
fn split_tls_params(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut root = None;
    let kept: Vec<String> = query
        .split('&')
        .filter_map(|pair| match pair.split_once('=') {
            Some(("sslrootcert", file)) => {
                root = Some(percent_decode(file));
                None
            }
            Some(("sslmode", "verify-ca" | "verify-full")) => Some("sslmode=require".to_owned()),
            _ => Some(pair.to_owned()),
        })
        .collect();
    let url = match kept.is_empty() {
        true => base.to_owned(),
        false => format!("{base}?{}", kept.join("&")),
    };
    (url, root)
}

/// `%XX` escapes of a URL's query value (a file path may have them).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = || std::str::from_utf8(b.get(i + 1..i + 3)?).ok();
        match (b[i], hex().and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// rustls trusting only the CA certificates of a PEM file.
fn tls_with_roots(file: &str) -> StoreResult<rustls::ClientConfig> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let bad = |why: String| StoreError::Backend(format!("PostgreSQL sslrootcert {file}: {why}"));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(file).map_err(|e| bad(e.to_string()))? {
        roots
            .add(cert.map_err(|e| bad(e.to_string()))?)
            .map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A connection's driver (polled for its messages and notifications).
pub(crate) type Connection = tokio_postgres::Connection<
    tokio_postgres::Socket,
    <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>>::Stream,
>;

/// How to open a connection: the URL and its TLS settings.
pub(crate) struct Connector {
    url: String,
    tls: MakeRustlsConnect,
}

impl Connector {
    pub(crate) fn new(url: &str) -> StoreResult<Connector> {
        // TLS as the URL's `sslmode` asks: `prefer` (the default) falls
        // back to plain text when the server has no TLS; `require`,
        // `verify-ca` and `verify-full` insist. The server's certificate is
        // always checked — against `sslrootcert` when the URL names one
        // (libpq's parameter: a PEM file of the CA), else the system's
        // roots — so `require` is as strict as `verify-full`.
        let (url, root_file) = split_tls_params(url);
        let mut tls = match root_file {
            None => crate::http_client::tls_config(false)
                .map_err(|e| StoreError::Backend(format!("PostgreSQL {e}")))?,
            Some(file) => tls_with_roots(&file)?,
        };
        tls.alpn_protocols = Vec::new();
        Ok(Connector {
            url,
            tls: MakeRustlsConnect::new(tls),
        })
    }

    /// A new connection; its driver task runs on the current runtime.
    /// Notifications (LISTEN) are not delivered: see [`Connector::connect_raw`].
    pub(crate) async fn connect(&self) -> StoreResult<Client> {
        let (client, connection) = self.connect_raw().await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "PostgreSQL connection ended");
            }
        });
        Ok(client)
    }

    /// A new connection and its driver, for callers that poll it
    /// themselves (to receive notifications).
    pub(crate) async fn connect_raw(&self) -> StoreResult<(Client, Connection)> {
        tokio_postgres::connect(&self.url, self.tls.clone())
            .await
            .map_err(|e| pg_error("connection", e))
    }
}

/// A connection and the statements prepared on it: each SQL text is
/// parsed and planned once per connection, not at every call (that was
/// most of PostgreSQL's CPU per session).
pub(crate) struct Conn {
    client: Client,
    prepared: std::sync::Mutex<HashMap<&'static str, Statement>>,
}

impl Conn {
    fn new(client: Client) -> Conn {
        Conn {
            client,
            prepared: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    async fn statement(&self, sql: &'static str) -> Result<Statement, tokio_postgres::Error> {
        let cached = self
            .prepared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sql)
            .cloned();
        if let Some(s) = cached {
            return Ok(s);
        }
        let s = self.client.prepare(sql).await?;
        self.prepared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sql, s.clone());
        Ok(s)
    }

    pub(crate) async fn query(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let s = self.statement(sql).await?;
        self.client.query(&s, params).await
    }

    pub(crate) async fn query_opt(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        let s = self.statement(sql).await?;
        self.client.query_opt(&s, params).await
    }

    pub(crate) async fn query_one(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, tokio_postgres::Error> {
        let s = self.statement(sql).await?;
        self.client.query_one(&s, params).await
    }

    pub(crate) async fn execute(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, tokio_postgres::Error> {
        let s = self.statement(sql).await?;
        self.client.execute(&s, params).await
    }

    /// Several statements without parameters (schema changes).
    pub(crate) async fn batch_execute(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        self.client.batch_execute(sql).await
    }
}

/// One connection, opened again when it was lost.
pub(crate) struct Reconnecting {
    connector: Arc<Connector>,
    conn: tokio::sync::Mutex<Option<Arc<Conn>>>,
}

impl Reconnecting {
    /// Connected now (so a wrong URL fails at start, not later).
    pub(crate) async fn open(connector: Arc<Connector>) -> StoreResult<Reconnecting> {
        let conn = Arc::new(Conn::new(connector.connect().await?));
        Ok(Reconnecting {
            connector,
            conn: tokio::sync::Mutex::new(Some(conn)),
        })
    }

    /// The live connection, reconnecting first if the last one was lost.
    pub(crate) async fn get(&self) -> StoreResult<Arc<Conn>> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        *slot = None;
        let fresh = Arc::new(Conn::new(self.connector.connect().await?));
        tracing::info!("PostgreSQL connection re-established");
        *slot = Some(fresh.clone());
        Ok(fresh)
    }
}

/// A runtime of PostgreSQL's own and a few connections on it, for
/// synchronous callers (the store, the cluster): each call runs on the
/// runtime with the next connection, and the caller waits for its result.
/// tokio-postgres pipelines concurrent queries on one connection; a few
/// spread the work over PostgreSQL's backends.
pub(crate) struct Pool {
    /// Always `Some` until dropped (see the `Drop` impl).
    runtime: Option<tokio::runtime::Runtime>,
    connector: Arc<Connector>,
    conns: Vec<Arc<Reconnecting>>,
    next: AtomicUsize,
}

impl Pool {
    /// Connects `connections` times to `url` (at once: a wrong URL fails
    /// here), on a runtime whose thread is called `name`.
    pub(crate) fn open(name: &str, url: &str, connections: usize) -> StoreResult<Pool> {
        let runtime = runtime(name)?;
        let connector = Arc::new(Connector::new(url)?);
        let c = connector.clone();
        let conns = on(&runtime, async move {
            let mut conns = Vec::with_capacity(connections);
            for _ in 0..connections.max(1) {
                conns.push(Arc::new(Reconnecting::open(c.clone()).await?));
            }
            Ok(conns)
        })?;
        Ok(Pool {
            runtime: Some(runtime),
            connector,
            conns,
            next: AtomicUsize::new(0),
        })
    }

    /// How to open more connections (one of a caller's own, e.g. to LISTEN).
    pub(crate) fn connector(&self) -> Arc<Connector> {
        self.connector.clone()
    }

    /// The next connection, for a task of the caller's.
    pub(crate) fn conn(&self) -> Arc<Reconnecting> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len();
        self.conns[i].clone()
    }

    /// Runs `f` with a connection on the pool's runtime and waits for it.
    pub(crate) fn run<T, F>(
        &self,
        f: impl FnOnce(Arc<Conn>) -> F + Send + 'static,
    ) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Future<Output = StoreResult<T>> + Send + 'static,
    {
        let Some(rt) = &self.runtime else {
            return Err(StoreError::Backend("PostgreSQL: the pool is closed".into()));
        };
        let slot = self.conn();
        on(rt, async move { f(slot.get().await?).await })
    }

    /// Runs a task on the pool's runtime (it ends with the pool).
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        if let Some(rt) = &self.runtime {
            rt.spawn(task);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // The pool may be dropped on a runtime's thread, where a runtime
        // cannot be shut down blocking.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_the_driver_does_not_know_are_taken_out() {
        let (url, root) = split_tls_params("postgres://u:p@db/acs");
        assert_eq!((url.as_str(), root), ("postgres://u:p@db/acs", None));
        let (url, root) = split_tls_params(
            "postgres://u:p@db/acs?sslmode=verify-full&sslrootcert=/etc/acs/ca%20db.pem&application_name=acs",
        );
        assert_eq!(
            url,
            "postgres://u:p@db/acs?sslmode=require&application_name=acs"
        );
        assert_eq!(root.as_deref(), Some("/etc/acs/ca db.pem"));
        let (url, _) = split_tls_params("postgres://db/acs?sslrootcert=x.pem");
        assert_eq!(url, "postgres://db/acs");
    }

    #[test]
    fn a_bad_root_file_is_named() {
        let Err(e) = Connector::new("postgres://db/acs?sslrootcert=/nonexistent/ca.pem") else {
            panic!("a missing CA file accepted");
        };
        assert!(
            e.to_string().contains("sslrootcert /nonexistent/ca.pem"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate").unwrap();
        let Err(e) = Connector::new(&format!(
            "postgres://db/acs?sslrootcert={}",
            empty.display()
        )) else {
            panic!("a file without certificates accepted");
        };
        assert!(e.to_string().contains("no certificate"), "{e}");
    }
}
