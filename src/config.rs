//! Configuration: a flat TOML file whose every key can be overridden by an
//! `ACS_*` environment variable, with defaults that run out of the box.
//!
//! All keys are declared once in [`KEYS`]; loading, validation,
//! `check-config` output and the README's table all follow from it. A bad
//! value is an error naming the key and the variable, never a panic, and a
//! secret's value is never echoed.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

/// One configuration key.
pub struct KeySpec {
    /// Name in the TOML file.
    pub name: &'static str,
    /// Environment variable that overrides it.
    pub env: &'static str,
    /// Default value (`""` for none).
    pub default: &'static str,
    /// Never printed.
    pub secret: bool,
    pub help: &'static str,
}

macro_rules! keys {
    ($($name:literal, $env:literal, $default:literal, $secret:literal, $help:literal;)*) => {
        /// Every configuration key.
        pub const KEYS: &[KeySpec] = &[$(KeySpec { name: $name, env: $env, default: $default, secret: $secret, help: $help },)*];
    };
}

keys! {
    "data_dir", "ACS_DATA_DIR", "./data", false, "directory of the embedded database and generated API token";
    "cwmp_listen", "ACS_CWMP_LISTEN", "0.0.0.0:7547", false, "address of the CWMP (CPE-facing) listener";
    "api_listen", "ACS_API_LISTEN", "127.0.0.1:7557", false, "address of the Ops JSON API";
    "api_tokens", "ACS_API_TOKEN", "", true, "bearer tokens for the API, comma-separated; generated into data_dir/api-token when empty";
    "cpe_auth", "ACS_CPE_AUTH", "none", false, "CPE authentication: none, basic or digest";
    "cpe_username", "ACS_CPE_USERNAME", "", false, "username CPEs authenticate with (per-device credentials in the store take precedence)";
    "cpe_password", "ACS_CPE_PASSWORD", "", true, "password CPEs authenticate with";
    "digest_realm", "ACS_DIGEST_REALM", "gigafibre-acs", false, "realm of Basic/Digest challenges";
    "digest_algorithms", "ACS_DIGEST_ALGORITHMS", "MD5,SHA-256", false, "Digest algorithms offered, in order (MD5, SHA-256, MD5-sess, SHA-256-sess)";
    "digest_nonce_ttl_s", "ACS_DIGEST_NONCE_TTL_S", "300", false, "seconds a Digest nonce stays valid";
    "tls_cert", "ACS_TLS_CERT", "", false, "PEM certificate chain; with tls_key, the CWMP listener speaks HTTPS";
    "tls_key", "ACS_TLS_KEY", "", false, "PEM private key";
    "api_tls_cert", "ACS_API_TLS_CERT", "", false, "PEM certificate chain; with api_tls_key, the API listener (and the console) speaks HTTPS";
    "api_tls_key", "ACS_API_TLS_KEY", "", false, "PEM private key of the API listener";
    "session_timeout_s", "ACS_SESSION_TIMEOUT_S", "30", false, "seconds of silence after which a CWMP session is dropped";
    "max_body_bytes", "ACS_MAX_BODY_BYTES", "1048576", false, "largest CWMP request body accepted (after decompression); larger gets 413";
    "max_names_body_bytes", "ACS_MAX_NAMES_BODY_BYTES", "16777216", false, "largest body accepted where the ACS asked for a data model (GetParameterNamesResponse: a vendor tree may hold 10,000+ names)";
    "max_rpcs_per_session", "ACS_MAX_RPCS_PER_SESSION", "64", false, "queued requests sent in one session at most";
    "max_task_attempts", "ACS_MAX_TASK_ATTEMPTS", "3", false, "sessions a task may go unanswered before it fails";
    "max_sessions", "ACS_MAX_SESSIONS", "50000", false, "concurrent CWMP sessions; beyond, Informs get 503 + Retry-After";
    "max_connections", "ACS_MAX_CONNECTIONS", "20000", false, "concurrent CWMP connections; beyond, new ones get 503 and are closed";
    "header_read_timeout_s", "ACS_HEADER_READ_TIMEOUT_S", "10", false, "seconds a client has to send request headers";
    "body_read_timeout_s", "ACS_BODY_READ_TIMEOUT_S", "30", false, "seconds a client has to send a request body";
    "idle_timeout_s", "ACS_IDLE_TIMEOUT_S", "60", false, "seconds an idle keep-alive connection is kept";
    "store_cache_mb", "ACS_STORE_CACHE_MB", "256", false, "memory the embedded database may use as cache";
    "store_backend", "ACS_STORE_BACKEND", "sled", false, "embedded database: sled (data_dir/db) or redb (data_dir/store.redb, migrated from db at first start); see BENCHMARKS.md";
    "store_url", "ACS_STORE_URL", "", true, "PostgreSQL store instead of the embedded one (postgres://user:password@host:port/database); empty: embedded";
    "node_name", "ACS_NODE_NAME", "", false, "this node's name among several ACS nodes on one PostgreSQL store (default: the host name)";
    "node_url", "ACS_NODE_URL", "", false, "where the other nodes reach this node's CWMP listener, e.g. http://acs1:7547/ (default: the listener's own address, or the host name when it listens on all addresses)";
    "shutdown_grace_s", "ACS_SHUTDOWN_GRACE_S", "10", false, "seconds in-flight exchanges get to finish on SIGTERM/SIGINT";
    "log_format", "ACS_LOG_FORMAT", "text", false, "log output: text or json (filter with RUST_LOG)";
    "provisioning", "ACS_PROVISIONING", "on", false, "zero-touch provisioning (device profiles, ERPNext, ACS settings): on or off";
    "erpnext_url", "ERPNEXT_URL", "", false, "ERPNext base URL (http[s]://host[:port]); empty: no zero-touch provisioning from ERPNext";
    "erpnext_api_key", "ERPNEXT_API_KEY", "", false, "ERPNext API key (token auth)";
    "erpnext_api_secret", "ERPNEXT_API_SECRET", "", true, "ERPNext API secret";
    "erpnext_timeout_ms", "ACS_ERPNEXT_TIMEOUT_MS", "3000", false, "timeout of one ERPNext request";
    "erpnext_max_attempts", "ACS_ERPNEXT_MAX_ATTEMPTS", "3", false, "attempts per ERPNext request (retries on 5xx, 429 and connection errors)";
    "erpnext_session_budget_ms", "ACS_ERPNEXT_SESSION_BUDGET_MS", "2000", false, "longest a CWMP exchange waits for ERPNext; beyond, provisioning is deferred";
    "erpnext_breaker_failures", "ACS_ERPNEXT_BREAKER_FAILURES", "5", false, "consecutive ERPNext failures that stop calls for the cooldown";
    "erpnext_breaker_cooldown_s", "ACS_ERPNEXT_BREAKER_COOLDOWN_S", "30", false, "seconds ERPNext is left alone after the breaker opens";
    "erpnext_cache_ttl_s", "ACS_ERPNEXT_CACHE_TTL_S", "30", false, "seconds ERPNext answers are reused";
    "erpnext_provisioned_at_field", "ACS_ERPNEXT_PROVISIONED_AT_FIELD", "custom_provisioned_at", false, "Service Equipment field receiving the provisioning time";
    "profiles_dir", "ACS_PROFILES_DIR", "", false, "directory of extra device profiles (*.toml), added to the built-in ones";
    "provision_periodic_interval_s", "ACS_PROVISION_PERIODIC_INTERVAL_S", "300", false, "PeriodicInformInterval set on provisioned devices (0: leave as is)";
    "provision_recheck_s", "ACS_PROVISION_RECHECK_S", "0", false, "seconds between ERPNext checks of a provisioned device on periodic informs (0: every inform)";
    "provision_retry_s", "ACS_PROVISION_RETRY_S", "60", false, "first wait before retrying a failed or unresolved provisioning (doubles, up to 6 h)";
    "sip_registrar", "ACS_SIP_REGISTRAR", "", false, "SIP registrar pushed to ONT voice lines (empty: untouched)";
    "sip_registrar_port", "ACS_SIP_REGISTRAR_PORT", "", false, "SIP registrar port";
    "sip_proxy", "ACS_SIP_PROXY", "", false, "SIP proxy";
    "sip_proxy_port", "ACS_SIP_PROXY_PORT", "", false, "SIP proxy port";
    "sip_outbound_proxy", "ACS_SIP_OUTBOUND_PROXY", "", false, "SIP outbound proxy";
    "sip_outbound_proxy_port", "ACS_SIP_OUTBOUND_PROXY_PORT", "", false, "SIP outbound proxy port";
    "sip_domain", "ACS_SIP_DOMAIN", "", false, "SIP domain (UserAgentDomain; line URI sip:user@domain)";
    "cr_timeout_s", "ACS_CR_TIMEOUT_S", "5", false, "seconds a device has to answer a connection request";
    "cr_min_interval_s", "ACS_CR_MIN_INTERVAL_S", "10", false, "seconds between two connection requests to one device (more are refused as rate-limited)";
    "cr_allow_basic", "ACS_CR_ALLOW_BASIC", "false", false, "answer a device's Basic challenge to a connection request (sends the password in clear over http)";
    "cr_username", "ACS_CR_USERNAME", "", false, "connection-request username for devices the ACS has not given their own";
    "cr_password", "ACS_CR_PASSWORD", "", true, "connection-request password going with cr_username";
    "hosts_collect", "ACS_HOSTS_COLLECT", "on", false, "read host tables and ONT diagnostics on bootstrap, first contact and by age: on or off (on-demand refreshes work either way)";
    "hosts_max_age_s", "ACS_HOSTS_MAX_AGE_S", "3600", false, "host table and ONT diagnostics older than this are re-read in the device's next session (0: only on bootstrap and on demand)";
    "webhook_url", "ACS_WEBHOOK_URL", "", false, "URL receiving every event as a JSON POST (empty: no webhook)";
    "webhook_secret", "ACS_WEBHOOK_SECRET", "", true, "key of the X-Gigafibre-Signature HMAC-SHA256 header on webhook POSTs";
    "stun_listen", "ACS_STUN_LISTEN", "off", false, "UDP address of the built-in STUN server for TR-111 (off: none)";
    "nbi_listen", "ACS_NBI_LISTEN", "off", false, "address of the GenieACS-compatible NBI, e.g. 127.0.0.1:7558 (off: none); it takes the API's tokens";
    "alarm_rules", "ACS_ALARM_RULES", "", false, "TOML file of alarm rules (optical limits by ONT class, silence, boot loop, provisioning failures) replacing the built-in ones (`gigafibre-acs alarm-rules` prints them)";
    "optical_rx_min_dbm", "ACS_OPTICAL_RX_MIN_DBM", "-27", false, "received optical power below this raises an alarm, for ONTs of the rules' default class (GPON class B+: -27)";
    "optical_rx_max_dbm", "ACS_OPTICAL_RX_MAX_DBM", "-8", false, "received optical power above this raises an alarm (overload), for ONTs of the rules' default class (GPON class B+: -8)";
    "audit_retention_days", "ACS_AUDIT_RETENTION_DAYS", "365", false, "days the audit log keeps an entry (1-3650)";
    "history_retention_days", "ACS_HISTORY_RETENTION_DAYS", "30", false, "days a device's readings (optical power, WiFi, reboots, WAN addresses) are kept (1-3650)";
    "file_max_mb", "ACS_FILE_MAX_MB", "1024", false, "largest file (firmware image) the API accepts, MiB (1-65536)";
    "file_base_url", "ACS_FILE_BASE_URL", "", false, "where devices fetch the ACS's files, e.g. https://acs.example.net:7547 (empty: the address each device informs to)";
    "nbi_allow", "ACS_NBI_ALLOW", "", false, "comma-separated CIDRs (IPv4/IPv6) whose clients may use the NBI without a token";
}

/// Which embedded database backs the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreBackend {
    Sled,
    Redb,
}

/// CPE authentication scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpeAuthMode {
    None,
    Basic,
    Digest,
}

/// Digest hash algorithms (RFC 7616).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAlgorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl DigestAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Md5Sess => "MD5-sess",
            DigestAlgorithm::Sha256 => "SHA-256",
            DigestAlgorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    pub fn parse(s: &str) -> Option<DigestAlgorithm> {
        [
            DigestAlgorithm::Md5,
            DigestAlgorithm::Md5Sess,
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Sha256Sess,
        ]
        .into_iter()
        .find(|a| a.name().eq_ignore_ascii_case(s.trim()))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A secret string: compared and used, never printed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"********\""
        })
    }
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub cwmp_listen: SocketAddr,
    pub api_listen: SocketAddr,
    pub api_tokens: Vec<Secret>,
    pub cpe_auth: CpeAuthMode,
    pub cpe_username: String,
    pub cpe_password: Secret,
    pub digest_realm: String,
    pub digest_algorithms: Vec<DigestAlgorithm>,
    pub digest_nonce_ttl: Duration,
    pub tls: Option<TlsFiles>,
    /// `api_tls_cert`/`api_tls_key`: HTTPS on the API listener.
    pub api_tls: Option<TlsFiles>,
    pub session_timeout: Duration,
    pub max_body_bytes: usize,
    /// `ACS_FILE_MAX_MB`: largest file upload, bytes.
    pub file_max_bytes: u64,
    /// `ACS_FILE_BASE_URL`: the base of firmware links (`None`: the
    /// address each device informs to).
    pub file_base_url: Option<String>,
    /// Largest body answering a GetParameterNames (a whole data model).
    pub max_names_body_bytes: usize,
    pub max_rpcs_per_session: u32,
    pub max_task_attempts: u32,
    pub max_sessions: usize,
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub store_cache_bytes: u64,
    pub store_backend: StoreBackend,
    /// `ACS_STORE_URL`: a PostgreSQL store replaces the embedded one.
    pub store_url: Option<Secret>,
    /// `ACS_NODE_NAME`: this node's name in a cluster.
    pub node_name: Option<String>,
    /// `ACS_NODE_URL`: where other nodes forward this node's sessions.
    pub node_url: Option<String>,
    pub shutdown_grace: Duration,
    pub log_format: LogFormat,
    pub provisioning: bool,
    pub erpnext: Option<ErpNextSettings>,
    pub profiles_dir: Option<PathBuf>,
    pub provision_periodic_interval_s: Option<u32>,
    pub provision_recheck: Duration,
    pub provision_retry: Duration,
    pub sip: SipSettings,
    pub connection_request: ConnectionRequestSettings,
    /// Host tables are collected without being asked (bootstrap, age).
    pub hosts_collect: bool,
    /// Age after which the host table is re-read (`None`: never by age).
    pub hosts_max_age: Option<Duration>,
    /// The alarm rules (built in, or `alarm_rules`; the default class's
    /// optical limits from `optical_rx_min_dbm`/`optical_rx_max_dbm` when
    /// those are set).
    pub alarm_rules: crate::alarms::AlarmRules,
    /// `ACS_AUDIT_RETENTION_DAYS`: how long audit entries are kept.
    pub audit_retention: Duration,
    /// `ACS_HISTORY_RETENTION_DAYS`: how long readings are kept.
    pub history_retention: Duration,
    pub webhook: Option<WebhookSettings>,
    pub stun_listen: Option<SocketAddr>,
    /// The GenieACS-compatible NBI's address (`None`: not served).
    pub nbi_listen: Option<SocketAddr>,
    /// Networks whose clients need no token on the NBI.
    pub nbi_allow: Vec<Cidr>,
}

/// An IPv4 or IPv6 network, `address/prefix-length` (a bare address is
/// one host).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `fd00::/8`, `127.0.0.1`; the host bits need not
    /// be zero (they are ignored).
    pub fn parse(s: &str) -> Option<Cidr> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => {
                let p = p.trim();
                // Digits only: `u8::from_str` would take `+8`.
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (
                    a.trim().parse::<IpAddr>().ok()?,
                    Some(p.parse::<u8>().ok()?),
                )
            }
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    /// Whether `ip` is in the network. An IPv4-mapped IPv6 address
    /// (`::ffff:10.1.2.3`, how a dual-stack socket shows an IPv4 peer)
    /// counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// How the ACS asks devices to open a session.
#[derive(Clone, Debug)]
pub struct ConnectionRequestSettings {
    pub timeout: Duration,
    pub min_interval: Duration,
    pub allow_basic: bool,
    /// Fallback credentials for devices without their own.
    pub username: Option<String>,
    pub password: Secret,
}

/// Where events are POSTed.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    pub url: String,
    pub secret: Option<Secret>,
}

/// Connection to ERPNext.
#[derive(Clone, Debug)]
pub struct ErpNextSettings {
    pub url: String,
    pub api_key: String,
    pub api_secret: Secret,
    pub timeout: Duration,
    pub max_attempts: u32,
    pub session_budget: Duration,
    pub breaker_failures: u32,
    pub breaker_cooldown: Duration,
    pub cache_ttl: Duration,
    pub provisioned_at_field: String,
}

/// SIP servers pushed with every voice line.
#[derive(Clone, Debug, Default)]
pub struct SipSettings {
    pub registrar: Option<String>,
    pub registrar_port: Option<u16>,
    pub proxy: Option<String>,
    pub proxy_port: Option<u16>,
    pub outbound_proxy: Option<String>,
    pub outbound_proxy_port: Option<u16>,
    pub domain: Option<String>,
}

#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Where an effective value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    File,
    Env,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Default => "default",
            Source::File => "config file",
            Source::Env => "environment",
        })
    }
}

/// The raw effective value of every key, for `check-config`.
pub struct Effective {
    values: BTreeMap<&'static str, (String, Source)>,
}

impl Effective {
    /// `(key, env, shown value, source)` rows, secrets masked.
    pub fn rows(&self) -> Vec<(&'static str, &'static str, String, Source)> {
        KEYS.iter()
            .map(|k| {
                let (v, src) = self
                    .values
                    .get(k.name)
                    .cloned()
                    .unwrap_or((String::new(), Source::Default));
                let shown = if k.secret && !v.is_empty() {
                    "******** (set)".to_owned()
                } else if v.is_empty() {
                    "(unset)".to_owned()
                } else {
                    v
                };
                (k.name, k.env, shown, src)
            })
            .collect()
    }
}

/// A configuration problem, naming the key and its variable.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("config file {path} is not valid TOML: {reason}")]
    Syntax { path: String, reason: String },
    #[error("config file {path}: unknown key `{key}` (known keys: {known})")]
    UnknownKey {
        path: String,
        key: String,
        known: String,
    },
    #[error("{key} ({env}): {message}")]
    Invalid {
        key: &'static str,
        env: &'static str,
        message: String,
    },
}

fn spec(name: &str) -> &'static KeySpec {
    KEYS.iter().find(|k| k.name == name).unwrap_or(&KEYS[0])
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        env: spec(key).env,
        message: message.into(),
    }
}

/// Loads the configuration from an optional TOML file and the environment.
/// `env` looks a variable up (the process environment in production, a map
/// in tests).
pub fn load(
    file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Config, Effective), ConfigError> {
    let mut values: BTreeMap<&'static str, (String, Source)> = KEYS
        .iter()
        .map(|k| (k.name, (k.default.to_owned(), Source::Default)))
        .collect();

    if let Some(path) = file {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Syntax {
            path: shown.clone(),
            reason: e.message().to_owned(),
        })?;
        for (key, value) in table {
            let Some(k) = KEYS.iter().find(|k| k.name == key) else {
                return Err(ConfigError::UnknownKey {
                    path: shown,
                    key,
                    known: KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", "),
                });
            };
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Array(items) => {
                    let mut parts = Vec::new();
                    for item in items {
                        match item {
                            toml::Value::String(s) => parts.push(s),
                            _ => return Err(invalid(k.name, "expected a list of strings")),
                        }
                    }
                    parts.join(",")
                }
                _ => {
                    return Err(invalid(
                        k.name,
                        "expected a string, number or list of strings",
                    ));
                }
            };
            values.insert(k.name, (text, Source::File));
        }
    }
    for k in KEYS {
        if let Some(v) = env(k.env) {
            values.insert(k.name, (v, Source::Env));
        }
    }

    let config = parse(&values)?;
    Ok((config, Effective { values }))
}

fn parse(values: &BTreeMap<&'static str, (String, Source)>) -> Result<Config, ConfigError> {
    let get =
        |name: &'static str| -> &str { values.get(name).map(|(v, _)| v.as_str()).unwrap_or("") };
    let addr = |key: &'static str| -> Result<SocketAddr, ConfigError> {
        get(key).trim().parse().map_err(|_| {
            invalid(
                key,
                format!("`{}` is not an address like 0.0.0.0:7547", get(key)),
            )
        })
    };
    let number = |key: &'static str, min: u64, max: u64| -> Result<u64, ConfigError> {
        let raw = get(key).trim();
        let n: u64 = raw
            .parse()
            .map_err(|_| invalid(key, format!("`{raw}` is not a whole number")))?;
        if n < min || n > max {
            return Err(invalid(key, format!("{n} is outside {min}..={max}")));
        }
        Ok(n)
    };
    let secs = |key: &'static str, max: u64| -> Result<Duration, ConfigError> {
        number(key, 1, max).map(Duration::from_secs)
    };

    let store_backend = match get("store_backend").trim().to_ascii_lowercase().as_str() {
        "sled" => StoreBackend::Sled,
        "redb" => StoreBackend::Redb,
        other => {
            return Err(invalid(
                "store_backend",
                format!("`{other}` is not one of sled, redb"),
            ));
        }
    };
    let cpe_auth = match get("cpe_auth").trim().to_ascii_lowercase().as_str() {
        "none" => CpeAuthMode::None,
        "basic" => CpeAuthMode::Basic,
        "digest" => CpeAuthMode::Digest,
        other => {
            return Err(invalid(
                "cpe_auth",
                format!("`{other}` is not one of none, basic, digest"),
            ));
        }
    };
    let cpe_username = get("cpe_username").to_owned();
    let cpe_password = Secret::new(get("cpe_password"));
    if cpe_auth != CpeAuthMode::None && (cpe_username.is_empty() || cpe_password.is_empty()) {
        return Err(invalid(
            "cpe_password",
            "ACS_CPE_USERNAME and ACS_CPE_PASSWORD must both be set when CPE authentication is enabled",
        ));
    }
    let mut digest_algorithms = Vec::new();
    for part in get("digest_algorithms")
        .split(',')
        .filter(|p| !p.trim().is_empty())
    {
        let alg = DigestAlgorithm::parse(part).ok_or_else(|| {
            invalid(
                "digest_algorithms",
                format!(
                    "`{}` is not one of MD5, SHA-256, MD5-sess, SHA-256-sess",
                    part.trim()
                ),
            )
        })?;
        if !digest_algorithms.contains(&alg) {
            digest_algorithms.push(alg);
        }
    }
    if digest_algorithms.is_empty() {
        return Err(invalid(
            "digest_algorithms",
            "at least one algorithm is needed",
        ));
    }
    let realm = get("digest_realm").to_owned();
    if realm.is_empty() || realm.contains('"') || realm.contains('\\') {
        return Err(invalid(
            "digest_realm",
            "must be non-empty and contain no quotes or backslashes",
        ));
    }
    let tls_pair = |cert_key: &'static str, key_key: &'static str| match (
        get(cert_key).trim(),
        get(key_key).trim(),
    ) {
        ("", "") => Ok(None),
        (cert, key) if !cert.is_empty() && !key.is_empty() => Ok(Some(TlsFiles {
            cert: cert.into(),
            key: key.into(),
        })),
        ("", _) => Err(invalid(
            cert_key,
            format!("{key_key} is set but {cert_key} is not"),
        )),
        _ => Err(invalid(
            key_key,
            format!("{cert_key} is set but {key_key} is not"),
        )),
    };
    let tls = tls_pair("tls_cert", "tls_key")?;
    let api_tls = tls_pair("api_tls_cert", "api_tls_key")?;
    let api_tokens: Vec<Secret> = get("api_tokens")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(Secret::new)
        .collect();
    if api_tokens.iter().any(|t| t.expose().len() < 16) {
        return Err(invalid(
            "api_tokens",
            "every token must be at least 16 characters",
        ));
    }
    let data_dir = PathBuf::from(get("data_dir").trim());
    if data_dir.as_os_str().is_empty() {
        return Err(invalid("data_dir", "must not be empty"));
    }
    let log_format = match get("log_format").trim().to_ascii_lowercase().as_str() {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            return Err(invalid(
                "log_format",
                format!("`{other}` is not text or json"),
            ));
        }
    };

    let text = |key: &'static str| -> Option<String> {
        let v = get(key).trim();
        (!v.is_empty()).then(|| v.to_owned())
    };
    let port = |key: &'static str| -> Result<Option<u16>, ConfigError> {
        match text(key) {
            None => Ok(None),
            Some(v) => v
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .map(Some)
                .ok_or_else(|| invalid(key, format!("`{v}` is not a port number"))),
        }
    };
    let erpnext = match text("erpnext_url") {
        None => None,
        Some(url) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
                return Err(invalid(
                    "erpnext_url",
                    format!("`{url}` is not an http:// or https:// URL"),
                ));
            }
            let api_key = text("erpnext_api_key").ok_or_else(|| {
                invalid(
                    "erpnext_api_key",
                    "ERPNEXT_API_KEY is needed with ERPNEXT_URL",
                )
            })?;
            let api_secret = text("erpnext_api_secret").ok_or_else(|| {
                invalid(
                    "erpnext_api_secret",
                    "ERPNEXT_API_SECRET is needed with ERPNEXT_URL",
                )
            })?;
            let field = get("erpnext_provisioned_at_field").trim().to_owned();
            if field.is_empty() || !field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(invalid(
                    "erpnext_provisioned_at_field",
                    format!("`{field}` is not a field name"),
                ));
            }
            Some(ErpNextSettings {
                url: url.trim_end_matches('/').to_owned(),
                api_key,
                api_secret: Secret::new(api_secret),
                timeout: Duration::from_millis(number("erpnext_timeout_ms", 50, 120_000)?),
                max_attempts: number("erpnext_max_attempts", 1, 10)? as u32,
                session_budget: Duration::from_millis(number(
                    "erpnext_session_budget_ms",
                    10,
                    60_000,
                )?),
                breaker_failures: number("erpnext_breaker_failures", 1, 1000)? as u32,
                breaker_cooldown: Duration::from_secs(number(
                    "erpnext_breaker_cooldown_s",
                    1,
                    3600,
                )?),
                cache_ttl: Duration::from_secs(number("erpnext_cache_ttl_s", 0, 3600)?),
                provisioned_at_field: field,
            })
        }
    };
    let periodic = number("provision_periodic_interval_s", 0, 86_400 * 7)? as u32;
    let sip = SipSettings {
        registrar: text("sip_registrar"),
        registrar_port: port("sip_registrar_port")?,
        proxy: text("sip_proxy"),
        proxy_port: port("sip_proxy_port")?,
        outbound_proxy: text("sip_outbound_proxy"),
        outbound_proxy_port: port("sip_outbound_proxy_port")?,
        domain: text("sip_domain"),
    };

    let provisioning = match get("provisioning").trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" => true,
        "off" | "false" | "0" => false,
        other => {
            return Err(invalid(
                "provisioning",
                format!("`{other}` is not on or off"),
            ));
        }
    };

    let boolean = |key: &'static str| -> Result<bool, ConfigError> {
        match get(key).trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "1" | "yes" => Ok(true),
            "off" | "false" | "0" | "no" => Ok(false),
            other => Err(invalid(key, format!("`{other}` is not true or false"))),
        }
    };
    let connection_request = ConnectionRequestSettings {
        timeout: secs("cr_timeout_s", 120)?,
        min_interval: Duration::from_secs(number("cr_min_interval_s", 0, 3600)?),
        allow_basic: boolean("cr_allow_basic")?,
        username: text("cr_username"),
        password: Secret::new(get("cr_password")),
    };
    if connection_request.username.is_some() == connection_request.password.is_empty() {
        return Err(invalid(
            "cr_password",
            "ACS_CR_USERNAME and ACS_CR_PASSWORD go together: set both or neither",
        ));
    }
    let hosts_max_age = number("hosts_max_age_s", 0, 86_400 * 30)?;
    let audit_retention = Duration::from_secs(number("audit_retention_days", 1, 3650)? * 86_400);
    let history_retention =
        Duration::from_secs(number("history_retention_days", 1, 3650)? * 86_400);
    let dbm = |key: &'static str| -> Result<f64, ConfigError> {
        let raw = get(key).trim();
        match raw.parse::<f64>() {
            Ok(v) if (-60.0..=10.0).contains(&v) => Ok(v),
            _ => Err(invalid(
                key,
                format!("`{raw}` is not a power in dBm from -60 to 10"),
            )),
        }
    };
    let mut alarm_rules = match text("alarm_rules") {
        None => crate::alarms::AlarmRules::builtin(),
        Some(path) => {
            let body = std::fs::read_to_string(&path)
                .map_err(|e| invalid("alarm_rules", format!("cannot read `{path}`: {e}")))?;
            crate::alarms::AlarmRules::parse(&body)
                .map_err(|e| invalid("alarm_rules", format!("`{path}`: {e}")))?
        }
    };
    let explicit = |key: &str| values.get(key).is_some_and(|(_, s)| *s != Source::Default);
    if explicit("optical_rx_min_dbm") || explicit("optical_rx_max_dbm") {
        let default = alarm_rules.optical_class_named(&alarm_rules.default_class.clone());
        let limits = crate::alarms::OpticalLimits {
            rx_min_dbm: match explicit("optical_rx_min_dbm") {
                true => dbm("optical_rx_min_dbm")?,
                false => default.rx_min_dbm,
            },
            rx_max_dbm: match explicit("optical_rx_max_dbm") {
                true => dbm("optical_rx_max_dbm")?,
                false => default.rx_max_dbm,
            },
        };
        if limits.rx_min_dbm >= limits.rx_max_dbm {
            return Err(invalid(
                "optical_rx_min_dbm",
                "must be below optical_rx_max_dbm",
            ));
        }
        alarm_rules.set_default_limits(limits);
    }
    let file_base_url = text("file_base_url");
    if let Some(u) = &file_base_url {
        if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() > 128 {
            return Err(invalid(
                "file_base_url",
                format!("`{u}` is not an http:// or https:// URL of at most 128 characters"),
            ));
        }
    }
    let node_url = text("node_url");
    if let Some(u) = &node_url {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(invalid(
                "node_url",
                format!("`{u}` is not an http:// or https:// URL"),
            ));
        }
    }
    let store_url = match text("store_url") {
        None => None,
        Some(url) => {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                // Never echoed: it may hold a password.
                return Err(invalid(
                    "store_url",
                    "not a postgres:// (or postgresql://) URL",
                ));
            }
            Some(Secret::new(url))
        }
    };
    let webhook = match text("webhook_url") {
        None => None,
        Some(url) => {
            let ok = (url.starts_with("http://") || url.starts_with("https://"))
                && url.len() > 10
                && reqwest::Url::parse(&url).is_ok();
            if !ok {
                return Err(invalid("webhook_url", "not an http:// or https:// URL"));
            }
            Some(WebhookSettings {
                url,
                secret: text("webhook_secret").map(Secret::new),
            })
        }
    };
    let stun_listen = match get("stun_listen").trim() {
        "" | "off" => None,
        _ => Some(addr("stun_listen")?),
    };

    let nbi_listen = match get("nbi_listen").trim() {
        "" | "off" => None,
        _ => Some(addr("nbi_listen")?),
    };
    let mut nbi_allow = Vec::new();
    for part in get("nbi_allow").split(',').filter(|p| !p.trim().is_empty()) {
        nbi_allow.push(Cidr::parse(part).ok_or_else(|| {
            invalid(
                "nbi_allow",
                format!(
                    "`{}` is not a network like 10.0.0.0/8, 127.0.0.1/32 or fd00::/8",
                    part.trim()
                ),
            )
        })?);
    }

    Ok(Config {
        nbi_listen,
        nbi_allow,
        connection_request,
        hosts_collect: boolean("hosts_collect")?,
        hosts_max_age: (hosts_max_age > 0).then(|| Duration::from_secs(hosts_max_age)),
        audit_retention,
        history_retention,
        alarm_rules,
        webhook,
        stun_listen,
        provisioning,
        erpnext,
        profiles_dir: text("profiles_dir").map(PathBuf::from),
        provision_periodic_interval_s: (periodic > 0).then_some(periodic),
        provision_recheck: Duration::from_secs(number("provision_recheck_s", 0, 86_400 * 30)?),
        provision_retry: Duration::from_secs(number("provision_retry_s", 1, 86_400)?),
        sip,
        data_dir,
        cwmp_listen: addr("cwmp_listen")?,
        api_listen: addr("api_listen")?,
        api_tokens,
        cpe_auth,
        cpe_username,
        cpe_password,
        digest_realm: realm,
        digest_algorithms,
        digest_nonce_ttl: secs("digest_nonce_ttl_s", 86_400)?,
        tls,
        api_tls,
        session_timeout: secs("session_timeout_s", 3600)?,
        max_body_bytes: number("max_body_bytes", 1024, 256 << 20)? as usize,
        file_max_bytes: number("file_max_mb", 1, 65_536)? << 20,
        file_base_url,
        max_names_body_bytes: number("max_names_body_bytes", 1024, 256 << 20)? as usize,
        max_rpcs_per_session: number("max_rpcs_per_session", 1, 10_000)? as u32,
        max_task_attempts: number("max_task_attempts", 1, 100)? as u32,
        max_sessions: number("max_sessions", 1, 10_000_000)? as usize,
        max_connections: number("max_connections", 1, 10_000_000)? as usize,
        header_read_timeout: secs("header_read_timeout_s", 3600)?,
        body_read_timeout: secs("body_read_timeout_s", 3600)?,
        idle_timeout: secs("idle_timeout_s", 86_400)?,
        store_cache_bytes: number("store_cache_mb", 8, 1 << 20)? << 20,
        store_backend,
        store_url,
        node_name: text("node_name"),
        node_url,
        shutdown_grace: secs("shutdown_grace_s", 3600)?,
        log_format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load_with(file: Option<&str>, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acs.toml");
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
        }
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        load(file.map(|_| path.as_path()), &|k| env.get(k).cloned()).map(|(c, _)| c)
    }

    #[test]
    fn defaults_run_out_of_the_box() {
        let c = load_with(None, &[]).unwrap();
        assert_eq!(c.cwmp_listen.to_string(), "0.0.0.0:7547");
        assert_eq!(c.api_listen.to_string(), "127.0.0.1:7557");
        assert_eq!(c.cpe_auth, CpeAuthMode::None);
        assert_eq!(c.session_timeout, Duration::from_secs(30));
        assert_eq!(c.max_body_bytes, 1 << 20);
        assert!(c.tls.is_none());
        assert!(c.nbi_listen.is_none() && c.nbi_allow.is_empty());
    }

    #[test]
    fn alarm_rules_from_a_file_and_the_default_class_overrides() {
        let c = load_with(None, &[]).unwrap();
        assert_eq!(c.alarm_rules, crate::alarms::AlarmRules::builtin());
        // One limit set: the other stays the default class's.
        let c = load_with(None, &[("ACS_OPTICAL_RX_MIN_DBM", "-29")]).unwrap();
        let b = &c.alarm_rules.classes["gpon-b+"].limits;
        assert_eq!((b.rx_min_dbm, b.rx_max_dbm), (-29.0, -8.0));
        assert_eq!(c.alarm_rules.classes["gpon-c+"].limits.rx_min_dbm, -30.0);
        let e = load_with(None, &[("ACS_OPTICAL_RX_MIN_DBM", "-7")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("optical_rx_min_dbm"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rules.toml");
        let text = crate::alarms::rules::BUILTIN
            .replace("default_class = \"gpon-b+\"", "default_class = \"gpon-c+\"");
        std::fs::write(&file, text).unwrap();
        let path = file.to_str().unwrap();
        let c = load_with(None, &[("ACS_ALARM_RULES", path)]).unwrap();
        assert_eq!(c.alarm_rules.default_class, "gpon-c+");
        // The override goes to the file's default class.
        let c = load_with(
            None,
            &[("ACS_ALARM_RULES", path), ("ACS_OPTICAL_RX_MAX_DBM", "-6")],
        )
        .unwrap();
        assert_eq!(c.alarm_rules.classes["gpon-c+"].limits.rx_max_dbm, -6.0);
        assert_eq!(c.alarm_rules.classes["gpon-b+"].limits.rx_max_dbm, -8.0);

        std::fs::write(&file, "hysteresis_db = 0.5\n[silent]\nintervals = x\n").unwrap();
        let e = load_with(None, &[("ACS_ALARM_RULES", path)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("alarm_rules") && e.contains("line 3"), "{e}");
        let e = load_with(None, &[("ACS_ALARM_RULES", "/nonexistent/rules.toml")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("alarm_rules") && e.contains("/nonexistent/rules.toml"),
            "{e}"
        );
    }

    #[test]
    fn nbi_settings() {
        let c = load_with(
            Some("nbi_listen = \"127.0.0.1:7558\"\nnbi_allow = [\"10.0.0.0/8\", \"::1\"]"),
            &[],
        )
        .unwrap();
        assert_eq!(c.nbi_listen.unwrap().to_string(), "127.0.0.1:7558");
        assert_eq!(c.nbi_allow.len(), 2);
        let c = load_with(None, &[("ACS_NBI_ALLOW", "192.168.1.0/24, fd00::/8")]).unwrap();
        assert_eq!(c.nbi_allow[1].to_string(), "fd00::/8");
        for bad in [
            "10.0.0.0/33",
            "10.0.0/8",
            "::/129",
            "10.0.0.0/+8",
            "x",
            "10.0.0.0/",
        ] {
            let e = load_with(None, &[("ACS_NBI_ALLOW", bad)])
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("nbi_allow") && e.contains("ACS_NBI_ALLOW"),
                "{bad}: {e}"
            );
        }
        let e = load_with(None, &[("ACS_NBI_LISTEN", "nowhere")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("ACS_NBI_LISTEN"), "{e}");
    }

    #[test]
    fn cidr_membership() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains(ip("10.1.255.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.2.3")));
        assert!(!net.contains(ip("fd00::1")));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        let host = Cidr::parse("127.0.0.1").unwrap();
        assert!(host.contains(ip("127.0.0.1")) && !host.contains(ip("127.0.0.2")));
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("2001:db8::1")));
    }

    #[test]
    fn environment_overrides_file() {
        let c = load_with(
            Some("session_timeout_s = 45\ncpe_auth = \"digest\"\ncpe_username = \"acs\"\ncpe_password = \"pw\"\napi_tokens = [\"0123456789abcdef\", \"fedcba9876543210\"]"),
            &[("ACS_SESSION_TIMEOUT_S", "50")],
        )
        .unwrap();
        assert_eq!(c.session_timeout, Duration::from_secs(50));
        assert_eq!(c.cpe_auth, CpeAuthMode::Digest);
        assert_eq!(c.api_tokens.len(), 2);
    }

    #[test]
    fn bad_values_name_the_key_and_never_echo_secrets() {
        let e = load_with(None, &[("ACS_SESSION_TIMEOUT_S", "abc")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("session_timeout_s")
                && e.contains("ACS_SESSION_TIMEOUT_S")
                && e.contains("abc"),
            "{e}"
        );
        let e = load_with(None, &[("ACS_CWMP_LISTEN", "nowhere")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("ACS_CWMP_LISTEN"), "{e}");
        let e = load_with(
            None,
            &[("ACS_CPE_AUTH", "digest"), ("ACS_CPE_PASSWORD", "hunter2")],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("ACS_CPE_USERNAME") && !e.contains("hunter2"),
            "{e}"
        );
        let e = load_with(None, &[("ACS_API_TOKEN", "short-secret")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ACS_API_TOKEN") && !e.contains("short-secret"),
            "{e}"
        );
        let e = load_with(Some("sesion_timeout_s = 3"), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key `sesion_timeout_s`"), "{e}");
        let e = load_with(Some("x = "), &[]).unwrap_err().to_string();
        assert!(e.contains("not valid TOML"), "{e}");
        let e = load_with(None, &[("ACS_TLS_CERT", "/x.pem")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("ACS_TLS_KEY"), "{e}");
        let e = load_with(None, &[("ACS_DIGEST_ALGORITHMS", "MD5,SHA-1")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("SHA-1"), "{e}");
        let e = load_with(None, &[("ACS_MAX_BODY_BYTES", "0")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("outside"), "{e}");
    }

    #[test]
    fn check_config_rows_mask_secrets() {
        let env: HashMap<&str, &str> = [("ACS_API_TOKEN", "0123456789abcdef-secret")].into();
        let (_, eff) = load(None, &|k| env.get(k).map(|v| v.to_string())).unwrap();
        let rows = eff.rows();
        let token = rows.iter().find(|r| r.0 == "api_tokens").unwrap();
        assert!(!token.2.contains("secret"));
        assert_eq!(token.3, Source::Env);
        assert_eq!(rows.len(), KEYS.len());
    }
}

#[cfg(test)]
mod readme_tests {
    use super::KEYS;

    #[test]
    fn readme_documents_every_key_with_its_default() {
        let readme = include_str!("../README.md");
        for k in KEYS {
            let default = if k.default.is_empty() {
                String::new()
            } else {
                format!("{} ", k.default)
            };
            let row = format!("| {} | {} | {default}|", k.name, k.env);
            assert!(
                readme.contains(&row),
                "README configuration table lacks `{row}`"
            );
        }
    }
}
