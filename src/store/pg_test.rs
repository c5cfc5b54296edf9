//! A real PostgreSQL for the store's tests: `initdb` into a temp dir, the
//! server on a random loopback port, one database per test. Started once
//! per test process; a watchdog shell stops it when the process ends.
//! `initdb` refuses to run as root: as root, the server runs as the
//! package's `postgres` user (`runuser`). Without PostgreSQL's binaries
//! (Debian's `postgresql` package) the tests say so and skip.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

struct Server {
    port: u16,
    _dir: tempfile::TempDir,
    /// The watchdog shell (it outlives nothing: it ends with this process).
    _watchdog: std::process::Child,
}

/// Where PostgreSQL's server binaries are: on PATH, else Debian's
/// versioned directory.
fn bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .find(|d| d.join("initdb").is_file() && d.join("postgres").is_file())
    });
    on_path.or_else(|| {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").is_file())
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

fn start() -> Option<Server> {
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
            eprintln!("PostgreSQL tests skipped: cannot give the temp dir to the postgres user");
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
    // A watchdog: the server stops when this test process ends (`/proc`,
    // not `kill -0`: the postgres user may not signal a root process).
    let script = format!(
        "{} -D {} -p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 & pg=$!; \
         while [ -d /proc/{} ]; do sleep 1; done; kill $pg",
        bin.join("postgres").display(),
        data.display(),
        dir.path().display(),
        std::process::id()
    );
    let mut sh = as_server_user(Path::new("/bin/sh"));
    let watchdog = sh
        .args(["-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    // Ready when it answers a query (accepting connections comes first).
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    while let Err(e) = sql(&url, "SELECT 1") {
        if Instant::now() > deadline {
            // Installed but not starting is a failure, not a skip.
            panic!("PostgreSQL did not start on port {port}: {e}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(Server {
        port,
        _dir: dir,
        _watchdog: watchdog,
    })
}

/// One statement, on a thread of its own (callers may be inside a
/// runtime, where blocking on another is refused).
fn sql(url: &str, statement: &str) -> Result<(), String> {
    let (url, statement) = (url.to_owned(), statement.to_owned());
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
            c.batch_execute(&statement).await.map_err(|e| e.to_string())
        })
    })
    .join()
    .map_err(|_| "the SQL thread panicked".to_owned())?
}

/// The URL of a fresh database named `name` on the test server, or None
/// (skipped) when PostgreSQL is not installed.
pub fn database(name: &str) -> Option<String> {
    static SERVER: OnceLock<Option<Server>> = OnceLock::new();
    let server = SERVER.get_or_init(start).as_ref()?;
    let base = format!("postgres://postgres@127.0.0.1:{}", server.port);
    // Created once; a reopen in the same test finds it.
    let _ = sql(
        &format!("{base}/postgres"),
        &format!("CREATE DATABASE \"{name}\""),
    );
    Some(format!("{base}/{name}"))
}
