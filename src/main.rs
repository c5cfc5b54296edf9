//! `gigafibre-acs`: the TR-069/CWMP auto-configuration server.
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gigafibre_acs::config::{self, Config, LogFormat};
use gigafibre_acs::erpnext::{ErpConfig, ErpNextClient};
use gigafibre_acs::migrate::{self, Kind, MigrateError};
use gigafibre_acs::server;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc malloc: a CWMP session is dozens of small,
/// short-lived allocations on two threads, where glibc's arena locks and
/// chunk consolidation cost a fifth of the CPU (BENCHMARKS.md, profile).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "gigafibre-acs",
    version,
    about = "TR-069/CWMP auto-configuration server for a fibre ISP"
)]
struct Cli {
    /// TOML configuration file; every key can be overridden by its ACS_* variable.
    #[arg(long, short, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the ACS (CWMP listener and Ops API).
    Serve,
    /// Validate the configuration and print the effective values (secrets masked).
    CheckConfig,
    /// Print the alarm rules in force (built in, or `alarm_rules`, with the
    /// optical_rx_* overrides), as a file `alarm_rules` accepts.
    AlarmRules,
    /// Import data from the systems the ACS replaces: the legacy tables into
    /// ERPNext (same ERPNext settings as `serve`), GenieACS's devices into
    /// the store. Dry runs unless --apply.
    Migrate {
        #[command(subcommand)]
        what: MigrateCommand,
    },
    /// Work on a store with the ACS stopped.
    Store {
        #[command(subcommand)]
        what: StoreCommand,
    },
    /// People's accounts for the API and the console (on the configured
    /// store; with an embedded store, stop the ACS first).
    User {
        #[command(subcommand)]
        what: UserCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user: the first admin is made here (there is no default
    /// password). The password is asked twice, or read from stdin.
    Add {
        name: String,
        /// technician, ops or admin.
        #[arg(long)]
        role: String,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password (unlocks it, ends its console sessions).
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user (its console sessions end).
    Disable { name: String },
    /// Enable a disabled user.
    Enable { name: String },
    /// List users: name, role, state.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy every record of one store into another, empty one (any backends),
    /// then check the counts: `--from sled:./data --to redb:/srv/acs`.
    Copy {
        /// The source: sled:DATA_DIR or redb:DATA_DIR.
        #[arg(long, value_name = "STORE")]
        from: gigafibre_acs::store::copy::StoreSpec,
        /// The destination (empty or new): sled:DATA_DIR or redb:DATA_DIR.
        #[arg(long, value_name = "STORE")]
        to: gigafibre_acs::store::copy::StoreSpec,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

// The `Legacy` prefix names where the data comes from; sources other than
// the old provisioning tables (GenieACS) join as other variants.
#[allow(clippy::enum_variant_names)]
#[derive(Subcommand)]
enum MigrateCommand {
    /// Legacy WiFi table (columns serial,ssid,password,ssid_5g,updated_at; serial = Deco MAC)
    /// into Service Equipment custom_wifi_ssid / _password / _ssid_5g.
    LegacyWifi(LegacyArgs),
    /// Legacy VoIP table (columns serial,sip_username,sip_password,line,updated_at; serial =
    /// ONT serial) into Service Equipment custom_sip_username / _password / _line.
    LegacyVoip(LegacyArgs),
    /// Legacy RADIUS table (columns serial,radius_user,radius_password,updated_at) into
    /// Service Equipment custom_radius_user / _password.
    LegacyRadius(LegacyArgs),
    /// Import a mongoexport of GenieACS's `devices` collection (JSON lines
    /// or an array) into the data dir's store, or through the running ACS
    /// with --server.
    GenieacsDevices {
        /// The export file.
        file: PathBuf,
        /// Write (default: report what would be written).
        #[arg(long)]
        apply: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Import through the running ACS's Ops API at this URL
        /// (e.g. http://127.0.0.1:7557), with its API token.
        #[arg(long, value_name = "URL")]
        server: Option<String>,
    },
}

#[derive(clap::Args)]
struct LegacyArgs {
    /// The table as CSV (UTF-8, header line first).
    file: PathBuf,
    /// Columns named otherwise in the header: FIELD=COLUMN[,FIELD=COLUMN…].
    #[arg(long, value_name = "FIELD=COLUMN,…", value_delimiter = ',')]
    map: Vec<String>,
    /// Write to ERPNext (without it: a dry run that writes nothing).
    #[arg(long)]
    apply: bool,
    /// Replace fields that already hold a different value.
    #[arg(long)]
    overwrite: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = |k: &str| std::env::var(k).ok();
    let (config, effective) = match config::load(cli.config.as_deref(), &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gigafibre-acs: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Migrate { what } => {
            init_logging(config.log_format, "warn");
            let (kind, args) = match what {
                MigrateCommand::LegacyWifi(a) => (Kind::Wifi, a),
                MigrateCommand::LegacyVoip(a) => (Kind::Voip, a),
                MigrateCommand::LegacyRadius(a) => (Kind::Radius, a),
                MigrateCommand::GenieacsDevices {
                    file,
                    apply,
                    json,
                    server,
                } => return migrate_genieacs(&config, file, apply, json, server),
            };
            migrate_legacy(&config, kind, &args)
        }
        Command::Store {
            what: StoreCommand::Copy { from, to, json },
        } => store_copy(&config, &from, &to, json),
        Command::User { what } => {
            init_logging(config.log_format, "warn");
            use gigafibre_acs::accounts::cli::{UserAction, main as user_main};
            let (action, stdin) = match what {
                UserCommand::Add {
                    name,
                    role,
                    password_stdin,
                } => match gigafibre_acs::store::Role::parse(&role) {
                    Some(role) => (UserAction::Add { name, role }, password_stdin),
                    None => {
                        eprintln!(
                            "gigafibre-acs: user add: --role `{role}` is not technician, ops or admin"
                        );
                        return ExitCode::from(2);
                    }
                },
                UserCommand::Passwd {
                    name,
                    password_stdin,
                } => (UserAction::Passwd { name }, password_stdin),
                UserCommand::Disable { name } => (UserAction::Disable { name }, false),
                UserCommand::Enable { name } => (UserAction::Enable { name }, false),
                UserCommand::List { json } => (UserAction::List { json }, false),
            };
            ExitCode::from(user_main(&config, action, stdin))
        }
        Command::AlarmRules => {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            match out.write_all(config.alarm_rules.render().as_bytes()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("gigafibre-acs: cannot write the alarm rules: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::CheckConfig => {
            for (what, files) in [("tls", &config.tls), ("api_tls", &config.api_tls)] {
                if let Some(files) = files {
                    if let Err(e) = server::check_tls(files) {
                        eprintln!("gigafibre-acs: configuration error: {what}: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            // Written with `writeln!` rather than `println!`: a closed stdout (`| head`) must
            // end the listing quietly, not panic.
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            let mut listing = writeln!(out, "configuration OK");
            for (key, env, value, source) in effective.rows() {
                listing = listing
                    .and_then(|()| writeln!(out, "{key:<22} {env:<26} {value:<28} ({source})"));
            }
            match listing.and_then(|()| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("gigafibre-acs: cannot write the configuration listing: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve => {
            init_logging(config.log_format, "info");
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if config.store_url.is_some() {
                // The store's calls are synchronous: on PostgreSQL each
                // waits for a network round trip, holding its worker. More
                // workers than cores keep sessions in flight meanwhile
                // (measured in BENCHMARKS.md: one worker per core left two
                // sessions in flight per node).
                let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
                builder.worker_threads((cores * 8).max(16));
            }
            let runtime = match builder.enable_all().build() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("gigafibre-acs: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(server::run(config, shutdown_signal(), |_| {})) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("gigafibre-acs: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `gigafibre-acs store copy`: exit 0 when copied and checked, 2 when a
/// store cannot be opened (in use, not a store), 1 when the copy failed.
fn store_copy(
    config: &config::Config,
    from: &gigafibre_acs::store::copy::StoreSpec,
    to: &gigafibre_acs::store::copy::StoreSpec,
    json: bool,
) -> ExitCode {
    use gigafibre_acs::store::copy::copy;
    use std::io::Write as _;
    if from == to {
        eprintln!("gigafibre-acs: store copy: --from and --to are the same store ({from})");
        return ExitCode::from(2);
    }
    let open = |spec: &gigafibre_acs::store::copy::StoreSpec| {
        spec.open(config.store_cache_bytes)
            .map_err(|e| eprintln!("gigafibre-acs: store copy: {spec}: {e}"))
    };
    let (Ok(source), Ok(destination)) = (open(from), open(to)) else {
        return ExitCode::from(2);
    };
    let mut progress = gigafibre_acs::migrate::Progress::new(std::io::stderr().is_terminal());
    let result = copy(source.as_ref(), destination.as_ref(), &mut |table, n| {
        progress.count(table, n as usize)
    });
    progress.clear();
    match result {
        Ok(report) => {
            let text = if json {
                serde_json::to_string_pretty(&report).unwrap_or_default()
            } else {
                let mut t = format!(
                    "copied {} entries from {from} to {to}, counts checked:\n",
                    report.total()
                );
                for (table, n) in &report.tables {
                    t.push_str(&format!("  {table:<14} {n}\n"));
                }
                t.push_str(&format!("  next task/fault id above {}", report.highest_id));
                t
            };
            let _ = writeln!(std::io::stdout(), "{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gigafibre-acs: store copy from {from} to {to}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `gigafibre-acs migrate genieacs-devices`: exit 0 when the import
/// completed (even with invalid documents), 2 for usage and configuration
/// errors (the store in use names `--server`), 1 when the run failed.
fn migrate_genieacs(
    config: &config::Config,
    file: PathBuf,
    apply: bool,
    json: bool,
    server: Option<String>,
) -> ExitCode {
    use gigafibre_acs::migrate::genieacs_cli::{Args, run};
    let args = Args {
        file,
        apply,
        json,
        server,
    };
    match run(config, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gigafibre-acs: migrate genieacs-devices: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// `gigafibre-acs migrate legacy-*`: exit 0 when the run completed (even
/// with unmatched or invalid rows), 2 for usage / file / configuration
/// errors, 1 when ERPNext failed mid-run (the report then says what was
/// written).
fn migrate_legacy(config: &Config, kind: Kind, args: &LegacyArgs) -> ExitCode {
    let opts = migrate::Options {
        map: args.map.clone(),
        apply: args.apply,
        overwrite: args.overwrite,
    };
    let run = || -> Result<migrate::Report, MigrateError> {
        let settings = config.erpnext.as_ref().ok_or(MigrateError::NotConfigured)?;
        let client = ErpNextClient::new(ErpConfig::from(settings)).map_err(MigrateError::Client)?;
        let text = migrate::read_text(&args.file)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(MigrateError::Runtime)?;
        let mut progress = migrate::Progress::new(std::io::stderr().is_terminal());
        runtime.block_on(migrate::run_legacy(
            &client,
            kind,
            &text,
            &opts,
            &mut progress,
        ))
    };
    let result = run();
    // When ERPNext failed mid-run the report says what was written until then.
    let report = match &result {
        Ok(r) => Some(r),
        Err(MigrateError::Erp { report, .. }) => Some(&**report),
        Err(_) => None,
    };
    if let Some(report) = report {
        for w in &report.warnings {
            eprintln!("gigafibre-acs: warning: {w}");
        }
        let text = if args.json {
            serde_json::to_string_pretty(report).map(|j| j + "\n")
        } else {
            Ok(report.to_text(kind))
        };
        use std::io::Write as _;
        let written = text
            .map_err(std::io::Error::other)
            .and_then(|t| std::io::stdout().lock().write_all(t.as_bytes()));
        if let Err(e) = written {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                eprintln!("gigafibre-acs: cannot write the report: {e}");
            }
        }
    }
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gigafibre-acs: migrate {}: {e}", kind.command());
            ExitCode::from(e.exit_code())
        }
    }
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
