//! `cpe-sim`: simulated TR-069 CPEs (TP-Link Deco mesh, Raisecom RCMG and
//! TP-Link TPLG GPON ONTs) that talk to an ACS over HTTP exactly as real
//! devices do. One device (`run`) or thousands (`fleet`).
#![forbid(unsafe_code)]

mod cr;
mod datamodel;
mod device;
mod fleet;
mod http;
mod mesh;
mod model;
mod quirks;
mod runner;
mod session;
mod stun;
mod transfer;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use gigafibre_acs::cwmp::{CwmpVersion, ValueType};

use crate::http::{AuthMode, Credentials};
use crate::model::{Identity, ModelTemplate};
use crate::quirks::{MacCase, Quirks};

#[derive(Parser)]
#[command(
    name = "cpe-sim",
    version,
    about = "Simulated TR-069 CPEs (Deco mesh, RCMG and TPLG ONTs) for testing an ACS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one device until stopped: boot, periodic informs, connection requests, ACS RPCs.
    Run(RunArgs),
    /// Run a fleet of devices in one process and report sessions/s and latency.
    Fleet(FleetArgs),
    /// List the built-in models.
    Models,
    /// Print an ERPNext fixture (erpnext-sim format) matching a fleet, for rehearsals.
    Fixture(FixtureArgs),
}

#[derive(Args)]
struct FixtureArgs {
    /// A built-in model (`cpe-sim models`), mixed or all: as for `fleet`.
    #[arg(long, default_value = "mixed")]
    model: String,
    #[arg(long, default_value_t = 100)]
    count: u32,
    /// Serial number prefix used by the fleet.
    #[arg(long, default_value = "FLEET")]
    serial_prefix: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum Auth {
    None,
    Basic,
    Digest,
}

#[derive(Clone, Copy, ValueEnum)]
enum Case {
    AsIs,
    Upper,
    Lower,
}

#[derive(Args, Clone)]
struct Common {
    /// ACS URL (http://host:port/path or https://…).
    #[arg(long)]
    acs: String,
    /// PEM file of the CA(s) to trust for an https:// ACS.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// How to authenticate to the ACS.
    #[arg(long, value_enum, default_value = "none")]
    auth: Auth,
    #[arg(long, default_value = "")]
    username: String,
    #[arg(
        long,
        default_value = "",
        env = "CPE_SIM_PASSWORD",
        hide_env_values = true
    )]
    password: String,
    /// Seconds to wait for each ACS answer.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// SOAP envelope prefix the CPE writes (SOAP-ENV, soapenv, soap-env, ...).
    #[arg(long, default_value = "SOAP-ENV")]
    prefix: String,
    /// cwmp namespace version (1-0 ... 1-4).
    #[arg(long, default_value = "1-0")]
    cwmp: String,
    /// Report booleans as 0/1.
    #[arg(long)]
    numeric_booleans: bool,
    /// Case of reported MAC addresses.
    #[arg(long, value_enum, default_value = "as-is")]
    mac_case: Case,
    /// Omit the XML declaration.
    #[arg(long)]
    no_xml_declaration: bool,
    /// Write wrong, zero-padded arrayType counts.
    #[arg(long)]
    wrong_array_counts: bool,
    /// Never send the session cookie back.
    #[arg(long)]
    no_cookies: bool,
    /// Refuse partial paths in GetParameterValues (9005), as some firmware does.
    #[arg(long)]
    no_partial_paths: bool,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// Built-in model (`cpe-sim models` lists them).
    #[arg(long, default_value = "deco")]
    model: String,
    /// A GenieACS-export CSV to use as the model instead.
    #[arg(long)]
    model_file: Option<PathBuf>,
    /// DeviceInfo.SerialNumber.
    #[arg(long, default_value = "SIM0000001")]
    serial: String,
    /// Main MAC address (AA:BB:CC:DD:EE:FF).
    #[arg(long, default_value = "1C:61:B4:00:00:01")]
    mac: String,
    /// GPON serial for ONT models (ASCII form, e.g. TPLGB4FB2AC8).
    #[arg(long, default_value = "TPLG00000001")]
    gpon_sn: String,
    /// Directory for the device's saved state (BOOT instead of BOOTSTRAP after a restart).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Connection-request listener address (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    cr_listen: SocketAddr,
    /// Initial connection-request credentials, written into the model's
    /// ManagementServer.ConnectionRequestUsername/Password (default: the
    /// model's). The listener always checks the model's current values, so
    /// an ACS that changes them is obeyed; an empty username means no auth.
    #[arg(long)]
    cr_username: Option<String>,
    #[arg(long, env = "CPE_SIM_CR_PASSWORD", hide_env_values = true)]
    cr_password: Option<String>,
    /// ConnectionRequestURL to report instead of the listener's: a device
    /// behind NAT reports its private address, which the ACS cannot reach
    /// (then only a TR-111 UDP connection request gets through).
    #[arg(long)]
    cr_url: Option<String>,
    /// Periodic inform interval in seconds (default: from the model if PeriodicInformEnable).
    #[arg(long)]
    periodic_interval: Option<u64>,
    /// Exit after this many successful sessions.
    #[arg(long)]
    sessions: Option<u64>,
    /// The device was bootstrapped by another ACS (moved from GenieACS): no
    /// `0 BOOTSTRAP` at its first start, and its first session waits for a
    /// connection request or its periodic interval, as after the ISP points
    /// its ACS URL here.
    #[arg(long)]
    managed_before: bool,
    /// First retry wait after a failed session, milliseconds (doubles per failure).
    #[arg(long, default_value_t = 5000)]
    retry_base_ms: u64,
    /// How long a reboot takes, milliseconds.
    #[arg(long, default_value_t = 1000)]
    boot_delay_ms: u64,
    /// Deco: mesh satellites besides the controller.
    #[arg(long, default_value_t = 2)]
    satellites: u8,
    /// Deco: WiFi clients spread over the nodes and bands.
    #[arg(long, default_value_t = 12)]
    clients: u8,
    #[command(flatten)]
    stun: StunArgs,
    #[command(flatten)]
    downloads: DownloadArgs,
}

/// How Downloads are checked and what firmware does once installed.
#[derive(Args, Clone)]
struct DownloadArgs {
    /// Expected SHA-256 (hex) of every downloaded file: another one fails
    /// the download with 9018.
    #[arg(long, value_name = "HEX")]
    download_sha256: Option<String>,
    /// What every firmware image does once installed, whatever its header's
    /// `behaviour=` says: normal, boot-loop, old-version, vanish or fail-9010.
    #[arg(long, value_name = "BEHAVIOUR")]
    download_behaviour: Option<transfer::Behaviour>,
    /// Milliseconds between two boots of a boot-looping device.
    #[arg(long, default_value_t = 5000)]
    boot_loop_period_ms: u64,
}

impl DownloadArgs {
    fn config(
        &self,
        tls: Option<Arc<rustls::ClientConfig>>,
        timeout: Duration,
    ) -> Result<Arc<transfer::DownloadConfig>, String> {
        let sha256 = self
            .download_sha256
            .as_deref()
            .map(transfer::parse_sha256)
            .transpose()
            .map_err(|e| format!("--download-sha256: {e}"))?;
        Ok(Arc::new(transfer::DownloadConfig {
            sha256,
            behaviour: self.download_behaviour,
            tls,
            timeout,
            boot_loop_period: Duration::from_millis(self.boot_loop_period_ms.max(1)),
        }))
    }
}

/// TR-111 (devices behind NAT).
#[derive(Args, Clone)]
struct StunArgs {
    /// STUN server (HOST:PORT): keep a NAT binding open with it from one UDP
    /// socket and take UDP connection requests on that socket (TR-111).
    #[arg(long)]
    stun_server: Option<String>,
    /// Seconds between STUN keep-alives (default: the model's
    /// STUNMinimumKeepAlivePeriod, else 30).
    #[arg(long)]
    stun_keepalive: Option<u64>,
    /// Local address of that UDP socket (default: loopback for a loopback
    /// server, else any; port 0: any free port).
    #[arg(long)]
    udp_listen: Option<SocketAddr>,
}

impl StunArgs {
    /// The STUN task's options (server resolved), if there is a server.
    async fn options(&self) -> Result<Option<stun::StunOptions>, String> {
        let Some(server) = &self.stun_server else {
            return Ok(None);
        };
        let resolved = tokio::net::lookup_host(server.as_str())
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| format!("--stun-server `{server}` is not a reachable HOST:PORT"))?;
        let bind = self
            .udp_listen
            .unwrap_or_else(|| stun::default_bind(resolved));
        Ok(Some(stun::StunOptions {
            server: resolved,
            bind,
            keepalive: self.stun_keepalive.map(|s| Duration::from_secs(s.max(1))),
        }))
    }
}

/// Writes the STUN server into a factory tree (STUNEnable, address, port),
/// as an ACS or the CPE's web page would.
fn enable_stun(tree: &mut datamodel::DataModel, server: SocketAddr) {
    for (leaf, value, kind) in [
        ("STUNEnable", "true".to_owned(), ValueType::Boolean),
        (
            "STUNServerAddress",
            server.ip().to_string(),
            ValueType::String,
        ),
        (
            "STUNServerPort",
            server.port().to_string(),
            ValueType::UnsignedInt,
        ),
    ] {
        device::set_management(tree, leaf, &value, kind, true);
    }
}

#[derive(Args)]
struct FleetArgs {
    #[command(flatten)]
    common: Common,
    /// A built-in model (`cpe-sim models`), mixed (Deco, RCMG and TPLG ONTs in
    /// turn) or all (every built-in model in turn).
    #[arg(long, default_value = "deco")]
    model: String,
    /// A GenieACS-export CSV to use as the model instead.
    #[arg(long)]
    model_file: Option<PathBuf>,
    #[arg(long, default_value_t = 100)]
    count: u32,
    /// Directory for per-device state (a second run boots instead of bootstrapping).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Give each device a Digest-protected connection-request listener on
    /// 127.0.0.1 (initially user = serial, password = `cr-<serial>`; then
    /// whatever the ACS sets in the model).
    #[arg(long)]
    connection_requests: bool,
    /// Sessions in flight at most.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Seconds between a device's informs (0: back to back).
    #[arg(long, default_value_t = 300)]
    inform_interval: u64,
    /// Seconds to run.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Serial number prefix (devices are PREFIX0000000, PREFIX0000001, ...).
    #[arg(long, default_value = "FLEET")]
    serial_prefix: String,
    /// Deco: mesh satellites per home.
    #[arg(long, default_value_t = 2)]
    satellites: u8,
    /// Deco: WiFi clients per home.
    #[arg(long, default_value_t = 12)]
    clients: u8,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    stun: StunArgs,
    /// Exit with status 1 if any session failed.
    #[arg(long)]
    fail_on_error: bool,
    /// Each device stops after one successful session (a bootstrap wave;
    /// the run ends when every device is done, or at --duration).
    #[arg(long)]
    once: bool,
    #[command(flatten)]
    downloads: DownloadArgs,
    /// Every Nth device (index i with i % N == N-1) is another hardware
    /// revision: its DeviceInfo.HardwareVersion ends in `-B`.
    #[arg(long, value_name = "N")]
    hardware_variant_every: Option<u32>,
}

impl Common {
    fn credentials(&self) -> Result<Credentials, String> {
        let mode = match self.auth {
            Auth::None => AuthMode::None,
            Auth::Basic => AuthMode::Basic,
            Auth::Digest => AuthMode::Digest,
        };
        if mode != AuthMode::None && self.username.is_empty() {
            return Err("--username is needed with --auth basic/digest".into());
        }
        Ok(Credentials {
            mode,
            username: self.username.clone(),
            password: self.password.clone(),
        })
    }

    fn tls(&self) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
        self.ca_file
            .as_deref()
            .map(http::tls_config)
            .transpose()
            .map_err(|e| e.to_string())
    }

    fn quirks(&self) -> Result<Quirks, String> {
        let cwmp_version = CwmpVersion::from_short(&self.cwmp)
            .ok_or_else(|| format!("--cwmp `{}` is not one of 1-0 ... 1-4", self.cwmp))?;
        if self.prefix.is_empty()
            || !self
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!("--prefix `{}` is not an XML prefix", self.prefix));
        }
        Ok(Quirks {
            envelope_prefix: self.prefix.clone(),
            cwmp_version,
            numeric_booleans: self.numeric_booleans,
            mac_case: match self.mac_case {
                Case::AsIs => MacCase::AsIs,
                Case::Upper => MacCase::Upper,
                Case::Lower => MacCase::Lower,
            },
            no_xml_declaration: self.no_xml_declaration,
            wrong_array_counts: self.wrong_array_counts,
            send_cookies: !self.no_cookies,
            no_partial_paths: self.no_partial_paths,
        })
    }
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let hex: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    if hex.len() != 12
        || s.chars()
            .any(|c| !(c.is_ascii_hexdigit() || c == ':' || c == '-'))
    {
        return Err(format!("--mac `{s}` is not a MAC address"));
    }
    let mut mac = [0u8; 6];
    for (i, m) in mac.iter_mut().enumerate() {
        *m = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(mac)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(fleet::is_terminal())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cpe-sim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Models => {
            for (name, what, _) in model::BUILTIN {
                println!("{name:<10} {what}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Fixture(args) => {
            let names: Vec<String> = if args.model == "mixed" {
                ["deco", "rcmg-ont", "tplg-ont"].map(String::from).to_vec()
            } else if args.model == "all" {
                model::BUILTIN
                    .iter()
                    .map(|(n, _, _)| n.to_string())
                    .collect()
            } else if model::BUILTIN.iter().any(|(n, _, _)| *n == args.model) {
                vec![args.model.clone()]
            } else {
                let known: Vec<&str> = model::BUILTIN.iter().map(|(n, _, _)| *n).collect();
                eprintln!(
                    "cpe-sim: unknown model `{}` (built in: {}, or mixed, or all)",
                    args.model,
                    known.join(", ")
                );
                return ExitCode::from(2);
            };
            println!(
                "{}",
                fleet::erpnext_fixture(&names, &args.serial_prefix, args.count)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => runtime.block_on(run_one(args)),
        Command::Fleet(args) => runtime.block_on(run_fleet(args)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cpe-sim: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run_one(args: RunArgs) -> Result<ExitCode, String> {
    let creds = args.common.credentials()?;
    let quirks = args.common.quirks()?;
    let template = match &args.model_file {
        Some(f) => ModelTemplate::from_file(f),
        None => ModelTemplate::builtin(&args.model),
    }
    .map_err(|e| e.to_string())?;
    let mut shared = template.tree();
    if template.name == "deco" {
        mesh::generate(&mut shared, args.satellites, args.clients);
    }
    // Whatever the model file says, this device is reached at its own
    // listener and talks to the ACS it was given (a real export holds the
    // addresses of the unit it was taken from).
    device::set_management(
        &mut shared,
        "ConnectionRequestURL",
        "{{CR_URL}}",
        ValueType::String,
        false,
    );
    device::set_management(&mut shared, "URL", "{{ACS_URL}}", ValueType::String, true);
    // The flags are the factory values of the model's connection-request
    // credentials: the ACS may change them later (and a factory reset
    // restores them), exactly as on a real CPE.
    for (leaf, value) in [
        ("ConnectionRequestUsername", &args.cr_username),
        ("ConnectionRequestPassword", &args.cr_password),
    ] {
        if let Some(v) = value {
            device::set_management(&mut shared, leaf, v, ValueType::String, true);
        }
    }
    let stun = args.stun.options().await?;
    if let Some(o) = &stun {
        enable_stun(&mut shared, o.server);
    }
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let root = shared.root().to_owned();
    let model_value = |leaf: &str| {
        shared
            .get(&format!("{root}{leaf}"))
            .map(|v| v.into_owned())
            .unwrap_or_default()
    };
    // Start with the factory credentials (never an open listener), then
    // follow the device's model (a saved state may hold the ACS's ones).
    let listeners = runner::Listeners {
        credentials: cr::CrCredentials::new(
            &model_value("ManagementServer.ConnectionRequestUsername"),
            &model_value("ManagementServer.ConnectionRequestPassword"),
        ),
        stun: stun::StunSettings::default(),
    };
    let cr_addr = cr::serve(args.cr_listen, listeners.credentials.clone(), tx.clone())
        .await
        .map_err(|e| format!("connection-request listener on {}: {e}", args.cr_listen))?;
    let identity = Identity {
        serial: args.serial.clone(),
        mac: parse_mac(&args.mac)?,
        gpon_sn: args.gpon_sn.clone(),
        acs_url: args.common.acs.clone(),
        cr_url: args
            .cr_url
            .clone()
            .unwrap_or_else(|| format!("http://{cr_addr}/")),
        wan_ip: cr_addr.ip().to_string(),
    };
    let state_file = match &args.state_dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| format!("state dir {}: {e}", d.display()))?;
            Some(d.join(format!("{}.json", args.serial)))
        }
        None => None,
    };
    let model = model::personalise(&shared, &identity);
    let mut dev = device::Device::new(model, quirks, state_file)?;
    if args.managed_before {
        dev.managed_before();
    }
    runner::sync_listeners(&dev, &listeners);
    let periodic = match args.periodic_interval {
        Some(0) => None,
        Some(s) => Some(Duration::from_secs(s)),
        None => {
            let enabled = gigafibre_acs::cwmp::parse_bool(&model_value(
                "ManagementServer.PeriodicInformEnable",
            ))
            .unwrap_or(false);
            let secs: u64 = model_value("ManagementServer.PeriodicInformInterval")
                .parse()
                .unwrap_or(0);
            (enabled && secs > 0).then(|| Duration::from_secs(secs))
        }
    };
    println!(
        "cpe-sim: device {} connection request URL http://{cr_addr}/",
        dev.device_id.device_id()
    );
    let tls = args.common.tls()?;
    let downloads = args
        .downloads
        .config(tls.clone(), Duration::from_secs(args.common.timeout))?;
    let mut client = http::AcsClient::new(
        &args.common.acs,
        creds,
        Duration::from_secs(args.common.timeout),
        tls,
    )
    .map_err(|e| e.to_string())?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if let Some(options) = stun {
        let bind = options.bind;
        let socket = tokio::net::UdpSocket::bind(bind)
            .await
            .map_err(|e| format!("UDP socket on {bind}: {e}"))?;
        tracing::info!(local = %socket.local_addr().map_err(|e| e.to_string())?, server = %options.server, "STUN client and UDP connection-request listener");
        tokio::spawn(stun::run(
            socket,
            options,
            listeners.stun.clone(),
            listeners.credentials.clone(),
            tx,
            stop_rx.clone(),
        ));
    } else {
        drop(tx);
    }
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop_tx.send(true);
    });
    let opts = runner::RunOptions {
        periodic,
        max_sessions: args.sessions,
        retry_base: Duration::from_millis(args.retry_base_ms.max(1)),
        boot_delay: Duration::from_millis(args.boot_delay_ms),
        wait_first: args.managed_before && dev.pending_events().is_empty(),
        downloads,
    };
    runner::run(&mut dev, &mut client, rx, listeners, opts, stop_rx).await;
    Ok(ExitCode::SUCCESS)
}

async fn run_fleet(args: FleetArgs) -> Result<ExitCode, String> {
    let creds = args.common.credentials()?;
    let quirks = args.common.quirks()?;
    if args.count == 0 {
        return Err("--count must be at least 1".into());
    }
    let models =
        fleet::load_models(&args.model, args.model_file.as_deref()).map_err(|e| e.to_string())?;
    if let Some(d) = &args.state_dir {
        std::fs::create_dir_all(d).map_err(|e| format!("state dir {}: {e}", d.display()))?;
    }
    let stun = args.stun.options().await?;
    if stun.as_ref().is_some_and(|o| o.bind.port() != 0) {
        return Err("--udp-listen needs port 0 in fleet mode (one socket per device)".into());
    }
    let models = models
        .into_iter()
        .map(|(name, t)| {
            let mut tree = t.tree();
            if name == "deco" {
                mesh::generate(&mut tree, args.satellites, args.clients);
            }
            if let Some(o) = &stun {
                enable_stun(&mut tree, o.server);
            }
            (name, Arc::new(tree))
        })
        .collect();
    let tls = args.common.tls()?;
    let downloads = args
        .downloads
        .config(tls.clone(), Duration::from_secs(args.common.timeout))?;
    if args.hardware_variant_every == Some(0) {
        return Err("--hardware-variant-every must be at least 1".into());
    }
    http::AcsClient::new(
        &args.common.acs,
        creds.clone(),
        Duration::from_secs(1),
        tls.clone(),
    )
    .map_err(|e| e.to_string())?;
    let report = fleet::run(fleet::FleetOptions {
        acs_url: args.common.acs.clone(),
        tls,
        models,
        count: args.count,
        concurrency: args.concurrency,
        inform_interval: Duration::from_secs(args.inform_interval),
        duration: Duration::from_secs(args.duration.max(1)),
        credentials: creds,
        quirks,
        serial_prefix: args.serial_prefix.clone(),
        timeout: Duration::from_secs(args.common.timeout),
        progress: fleet::is_terminal() && !args.json,
        state_dir: args.state_dir.clone(),
        connection_requests: args.connection_requests,
        stun,
        once: args.once,
        downloads,
        hardware_variant_every: args.hardware_variant_every,
    })
    .await;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        report.print_text();
    }
    Ok(if args.fail_on_error && report.error_count() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
