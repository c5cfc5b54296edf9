//! A real PostgreSQL for the store's tests: `initdb` into a temp dir, the
//! server on a random loopback port, one database per test. Started once
//! per test process; a watchdog shell stops it when the process ends.
//! `initdb` refuses to run as root: as root, the server runs as the
//! package's `postgres` user (`runuser`). Without PostgreSQL's binaries
//! (Debian's `postgresql` package) the tests say so and skip.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// Shared with the integration tests (`tests/common`), which use all of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A PostgreSQL server of the tests' own, stopped (immediately) when the
/// test process ends or the value is dropped.
pub struct PgServer {
    port: u16,
    bin: PathBuf,
    data: PathBuf,
    _dir: tempfile::TempDir,
    /// The watchdog shell (it outlives nothing: it ends with this process).
    _watchdog: std::process::Child,
}

fn bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p).find(|d| {
            ["initdb", "postgres", "pg_ctl"]
                .iter()
                .all(|b| d.join(b).is_file())
        })
    });
    on_path.or_else(|| {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("pg_ctl").is_file())
            .collect();
        versions.sort();
        versions.pop()
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A command run as the `postgres` user when we are root.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl PgServer {
    /// Initialises and starts a server on a free loopback port; `None`
    /// (with the reason on stderr) when PostgreSQL is not installed.
    pub fn start() -> Option<PgServer> {
        let Some(bin) = bin_dir() else {
            eprintln!(
                "PostgreSQL tests skipped: no initdb/postgres (install Debian's postgresql package)"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !ok {
                eprintln!(
                    "PostgreSQL tests skipped: cannot give the temp dir to the postgres user"
                );
                return None;
            }
        }
        let init = as_server_user(&bin.join("initdb"))
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        if !init.status.success() {
            eprintln!(
                "PostgreSQL tests skipped: initdb failed: {}",
                String::from_utf8_lossy(&init.stderr)
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // The server's options live in its configuration, so a restart
        // (`pg_ctl restart`) keeps them.
        let conf = format!(
            "port = {port}\nunix_socket_directories = '{}'\nlisten_addresses = '127.0.0.1'\n\
             fsync = off\nmax_connections = 300\n",
            dir.path().display()
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, conf.as_bytes()))
            .unwrap();
        // A watchdog: the server stops when this test process ends (`/proc`,
        // not `kill -0`: the postgres user may not signal a root process),
        // and its directory goes (a server in a `static` is never dropped:
        // without this, every run left its data directory behind).
        let script = format!(
            "while [ -d /proc/{} ]; do sleep 1; done; {} -D {} stop -m immediate; rm -rf '{}'",
            std::process::id(),
            bin.join("pg_ctl").display(),
            data.display(),
            dir.path().display(),
        );
        let watchdog = as_server_user(Path::new("/bin/sh"))
            .args(["-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = PgServer {
            port,
            bin,
            data,
            _dir: dir,
            _watchdog: watchdog,
        };
        server.pg_ctl(&["start", "-w", "-l"], true);
        server.wait_ready();
        Some(server)
    }

    fn pg_ctl(&self, args: &[&str], log: bool) {
        let mut c = as_server_user(&self.bin.join("pg_ctl"));
        c.arg("-D").arg(&self.data).args(args);
        if log {
            c.arg(self.data.join("server.log"));
        }
        let out = c
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        // Ready when it answers a query (accepting connections comes first).
        let url = self.url("postgres");
        while let Err(e) = sql(&url, "SELECT 1") {
            if Instant::now() > deadline {
                // Installed but not starting is a failure, not a skip.
                panic!("PostgreSQL did not start on port {}: {e}", self.port);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The URL of database `name` (see [`PgServer::create`]).
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates database `name` (if new) and returns its URL.
    pub fn create(&self, name: &str) -> String {
        // Created once; a reopen in the same test finds it.
        let _ = sql(
            &self.url("postgres"),
            &format!("CREATE DATABASE \"{name}\""),
        );
        self.url(name)
    }

    /// Turns TLS on with this PEM certificate and key (copied into the
    /// data dir, readable by the server only) and restarts the server;
    /// plain connections stay allowed.
    pub fn enable_tls(&self, cert: &Path, key: &Path) {
        for (from, name) in [(cert, "server.crt"), (key, "server.key")] {
            let to = self.data.join(name);
            std::fs::copy(from, &to).unwrap();
            if is_root() {
                let ok = Command::new("chown")
                    .args(["postgres:postgres"])
                    .arg(&to)
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false);
                assert!(ok, "chown {}", to.display());
            }
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(self.data.join("postgresql.conf"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"ssl = on\n"))
            .unwrap();
        self.pg_ctl(&["restart", "-w", "-m", "fast", "-l"], true);
        self.wait_ready();
    }

    /// Stops the server at once (clients see their connections drop).
    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "immediate", "-w"], false);
    }

    /// Starts the stopped server again on the same port.
    pub fn start_again(&self) {
        self.pg_ctl(&["start", "-w", "-l"], true);
        self.wait_ready();
    }

    /// The first column of a query's rows, as text, on database `name`.
    pub fn column(&self, name: &str, query: &str) -> Vec<String> {
        simple_query(&self.url(name), query).unwrap()
    }

    /// Runs SQL statements on database `name`.
    pub fn execute(&self, name: &str, statements: &str) -> Result<(), String> {
        sql(&self.url(name), statements)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = as_server_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["stop", "-m", "immediate"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Statements, on a thread of its own (callers may be inside a runtime,
/// where blocking on another is refused).
fn sql(url: &str, statements: &str) -> Result<(), String> {
    simple_query(url, statements).map(drop)
}

/// Runs statements (simple protocol: several at once, no parameters) and
/// returns the first column of the rows they give, as text.
fn simple_query(url: &str, statements: &str) -> Result<Vec<String>, String> {
    let (url, statements) = (url.to_owned(), statements.to_owned());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async move {
            let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            let messages = c
                .simple_query(&statements)
                .await
                .map_err(|e| e.to_string())?;
            Ok(messages
                .into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                    _ => None,
                })
                .collect())
        })
    })
    .join()
    .map_err(|_| "the SQL thread panicked".to_owned())?
}

/// The URL of a fresh database named `name` on the test server, or None
/// (skipped) when PostgreSQL is not installed.
pub fn database(name: &str) -> Option<String> {
    static SERVER: OnceLock<Option<PgServer>> = OnceLock::new();
    Some(SERVER.get_or_init(PgServer::start).as_ref()?.create(name))
}

/// Runs SQL on database `name` of the shared test server.
pub fn execute(name: &str, statements: &str) {
    let url = database(name).expect("the test server runs");
    sql(&url, statements).unwrap();
}
