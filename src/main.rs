//! `gigafibre-acs`: the TR-069/CWMP auto-configuration server.
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gigafibre_acs::config::{self, LogFormat};
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
    /// Move from GenieACS and the legacy tables (dry run unless --apply).
    Migrate {
        #[command(subcommand)]
        what: MigrateCommand,
    },
}

#[derive(Subcommand)]
enum MigrateCommand {
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
        Command::CheckConfig => {
            if let Some(files) = &config.tls {
                if let Err(e) = server::check_tls(files) {
                    eprintln!("gigafibre-acs: configuration error: tls: {e}");
                    return ExitCode::from(2);
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
        Command::Migrate { what } => match what {
            MigrateCommand::GenieacsDevices {
                file,
                apply,
                json,
                server,
            } => {
                let args = gigafibre_acs::migrate::genieacs_cli::Args {
                    file,
                    apply,
                    json,
                    server,
                };
                match gigafibre_acs::migrate::genieacs_cli::run(&config, &args) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("gigafibre-acs: migrate genieacs-devices: {e}");
                        ExitCode::from(e.exit_code())
                    }
                }
            }
        },
        Command::Serve => {
            init_logging(config.log_format);
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
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

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
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
