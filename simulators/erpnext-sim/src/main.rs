//! `erpnext-sim`: an ERPNext simulator faithful to Frappe's REST API v1, for
//! testing gigafibre-acs. See README.md.

#![forbid(unsafe_code)]

mod api;
mod doctypes;
mod error;
mod faults;
mod query;
mod store;
mod util;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::Parser;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::api::{ApiKey, App};
use crate::faults::{FaultConfig, Faults, OutageMode, Stats};
use crate::store::{Persister, Store};

const ABOUT: &str =
    "ERPNext simulator faithful to Frappe's REST API v1 (for testing gigafibre-acs)";

const LONG_ABOUT: &str = "\
ERPNext simulator faithful to Frappe's REST API v1 (for testing gigafibre-acs).

Serves the DocTypes Customer, Service Location and Service Equipment over
Frappe's REST API v1:

  GET    /api/resource/{DocType}?filters=…&or_filters=…&fields=…&order_by=…
                                 &limit_start=…&limit_page_length=… (or limit=…)
  GET    /api/resource/{DocType}/{name}
  POST   /api/resource/{DocType}           create (200, {\"data\": doc})
  PUT    /api/resource/{DocType}/{name}    partial update
  DELETE /api/resource/{DocType}/{name}    202 {\"data\": \"ok\"}
  GET|POST /api/method/frappe.client.get_password?doctype=…&name=…&fieldname=…
  also frappe.client.get_list, frappe.client.get_count, frappe.auth.get_logged_user,
  frappe.ping; /api/v1/… is the same as /api/….

Authentication: `Authorization: token KEY:SECRET` or `Basic base64(KEY:SECRET)`.
Give one or more key pairs with --api-key/--api-secret (repeat the flags, or
comma-separate the values); the n-th key goes with the n-th secret (and the
n-th --api-user, default Administrator). With no key at all the simulator
accepts erpnext-sim-key:erpnext-sim-secret and says so on stderr.

Errors are Frappe-shaped: exc_type, exception, exc and _server_messages (a JSON
string holding a list of JSON strings).

On start the first line on stdout is
  erpnext-sim listening on http://ADDR:PORT
(--listen 127.0.0.1:0 picks a free port); logs go to stderr (RUST_LOG or
--log sets the level).

Data: --fixture FILE seeds {\"Customer\": [...], \"Service Location\": [...],
\"Service Equipment\": [...]}. With --data-dir DIR every change is written to
DIR/erpnext-sim-state.json (temp file, fsync, rename) before the answer is
sent, and that file, once it exists, is loaded instead of the fixture.

Fault injection (start-up flags below, or at run time on the same address,
loopback clients only, no Frappe auth):
  GET  /_admin/faults               current faults
  POST /_admin/faults               {\"latency_ms\":200,\"latency_jitter_ms\":50,
                                     \"error_rate\":0.1,\"rate_limit_rate\":0.1,
                                     \"retry_after_s\":2,\"outage_s\":5,
                                     \"outage_mode\":\"503\"|\"close\",
                                     \"error_next\":3,\"rate_limit_next\":1,
                                     \"seed\":42,\"clear\":true}  (all optional)
  GET  /_admin/stats                requests by route and status, recent requests
  DELETE /_admin/stats              zero the counters
  POST /_admin/reset                {\"faults\":true,\"stats\":true,\"data\":false}
  GET  /_admin/health               document counts";

#[derive(Debug, Parser)]
#[command(name = "erpnext-sim", version, about = ABOUT, long_about = LONG_ABOUT)]
struct Cli {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "ERPNEXT_SIM_LISTEN", default_value = "127.0.0.1:8000")]
    listen: SocketAddr,

    /// JSON fixture to seed the documents from.
    #[arg(long, env = "ERPNEXT_SIM_FIXTURE")]
    fixture: Option<PathBuf>,

    /// Directory where the state is persisted (loaded in preference to the fixture).
    #[arg(long, env = "ERPNEXT_SIM_DATA_DIR")]
    data_dir: Option<PathBuf>,

    /// API key (repeatable, or comma-separated).
    #[arg(long = "api-key", env = "ERPNEXT_SIM_API_KEY", value_delimiter = ',')]
    api_keys: Vec<String>,

    /// API secret of the API key in the same position.
    #[arg(
        long = "api-secret",
        env = "ERPNEXT_SIM_API_SECRET",
        value_delimiter = ','
    )]
    api_secrets: Vec<String>,

    /// User the API key in the same position logs in as (default Administrator).
    #[arg(long = "api-user", env = "ERPNEXT_SIM_API_USER", value_delimiter = ',')]
    api_users: Vec<String>,

    /// Added latency on every API request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,

    /// Extra random latency, uniform in 0..=N milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_jitter_ms: u64,

    /// Probability (0..1) that an API request gets a Frappe-style 500.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,

    /// Probability (0..1) that an API request gets a 429 with Retry-After.
    #[arg(long, default_value_t = 0.0)]
    rate_limit_rate: f64,

    /// Retry-After seconds sent with injected 429s.
    #[arg(long, default_value_t = 1)]
    retry_after_s: u64,

    /// Start with an outage lasting this many seconds.
    #[arg(long, default_value_t = 0.0)]
    outage_s: f64,

    /// What an outage does: 503 (answer 503) or close (drop the connection).
    #[arg(long, value_enum, default_value = "503")]
    outage_mode: OutageMode,

    /// Seed for random faults (reproducible runs).
    #[arg(long)]
    fault_seed: Option<u64>,

    /// Log filter when RUST_LOG is not set (error, warn, info, debug, trace).
    #[arg(long, default_value = "info")]
    log: String,
}

fn keys(cli: &Cli) -> Result<Vec<ApiKey>, String> {
    if cli.api_keys.len() != cli.api_secrets.len() {
        return Err(format!(
            "{} --api-key value(s) but {} --api-secret value(s): give one secret per key",
            cli.api_keys.len(),
            cli.api_secrets.len()
        ));
    }
    if cli.api_users.len() > cli.api_keys.len() {
        return Err("more --api-user values than --api-key values".into());
    }
    let mut out = Vec::new();
    for (i, (k, s)) in cli.api_keys.iter().zip(&cli.api_secrets).enumerate() {
        if k.is_empty() || s.is_empty() || k.contains([':', ' ']) || s.contains([':', ' ']) {
            return Err(format!(
                "API key #{} is invalid: key and secret must be non-empty, without ':' or spaces",
                i + 1
            ));
        }
        out.push(ApiKey {
            key: k.clone(),
            secret: s.clone(),
            user: cli
                .api_users
                .get(i)
                .cloned()
                .unwrap_or_else(|| "Administrator".into()),
        });
    }
    if out.is_empty() {
        warn!("no --api-key given: accepting the default key erpnext-sim-key:erpnext-sim-secret");
        out.push(ApiKey {
            key: "erpnext-sim-key".into(),
            secret: "erpnext-sim-secret".into(),
            user: "Administrator".into(),
        });
    }
    Ok(out)
}

/// Loads the initial state: the persisted state if any, else the fixture.
fn initial_state(cli: &Cli) -> Result<(Store, Option<Persister>), String> {
    let persister = match &cli.data_dir {
        Some(dir) => {
            Some(Persister::new(dir).map_err(|e| format!("data dir {}: {e}", dir.display()))?)
        }
        None => None,
    };
    if let Some(p) = &persister {
        if let Some(store) = p.load()? {
            info!(path = %p.state_path().display(), "loaded persisted state");
            if cli.fixture.is_some() {
                info!("persisted state takes precedence over --fixture");
            }
            return Ok((store, persister));
        }
    }
    let store = match &cli.fixture {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("fixture {}: {e}", path.display()))?;
            let store = Store::load_fixture(&text)
                .map_err(|e| format!("fixture {}: {e}", path.display()))?;
            info!(path = %path.display(), "loaded fixture");
            store
        }
        None => Store::new(),
    };
    if let Some(p) = &persister {
        p.save(&store)
            .map_err(|e| format!("cannot write {}: {e}", p.state_path().display()))?;
    }
    Ok((store, persister))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn serve(listener: TcpListener, app: Arc<App>) {
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = Arc::clone(&app);
                tokio::spawn(async move {
                    let svc = service_fn(move |req| api::handle(Arc::clone(&app), peer, req));
                    if let Err(e) = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await
                    {
                        debug!(%peer, error = %e, "connection ended");
                    }
                });
            }
            _ = &mut shutdown => {
                info!("shutting down");
                break;
            }
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let keys = keys(&cli)?;
    let faults = Faults::from_config(
        &FaultConfig {
            latency_ms: cli.latency_ms,
            latency_jitter_ms: cli.latency_jitter_ms,
            error_rate: cli.error_rate,
            rate_limit_rate: cli.rate_limit_rate,
            retry_after_s: cli.retry_after_s,
            outage_s: cli.outage_s,
            outage_mode: cli.outage_mode,
            seed: cli.fault_seed,
        },
        Instant::now(),
    )?;
    let (store, persister) = initial_state(&cli)?;
    let counts: Vec<String> = doctypes::DOCTYPES
        .iter()
        .map(|d| format!("{}: {}", d.name, store.len(d)))
        .collect();
    info!(documents = %counts.join(", "), "ready");
    let app = Arc::new(App {
        keys,
        initial: store.clone(),
        store: Mutex::new(store),
        persister,
        faults: Mutex::new(faults),
        stats: Mutex::new(Stats::default()),
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(cli.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", cli.listen))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot read the bound address: {e}"))?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "erpnext-sim listening on http://{addr}")
                .and_then(|()| out.flush())
                .map_err(|e| format!("cannot write to stdout: {e}"))?;
        }
        info!(%addr, "listening");
        serve(listener, app).await;
        Ok(())
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cli.log))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("erpnext-sim: error: {e}");
            ExitCode::FAILURE
        }
    }
}
