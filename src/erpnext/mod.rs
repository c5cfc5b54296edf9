//! The ERPNext client: reads `Service Equipment` records (and their
//! Password fields) over Frappe's REST API v1 and writes back what the ACS
//! learned when it provisioned a device.
//!
//! - [`ErpNextClient::find`] looks records up by name, CWMP serial, GPON
//!   serial or MAC. ERPNext stores serials and MACs in many spellings and its
//!   filters cannot canonicalise, so the query is broad (both serial fields
//!   in both the ASCII and the 16-hex form; a `like` pattern for MACs) and
//!   the rows are **re-checked locally** with
//!   [`crate::identity`]: only rows whose value canonicalises to
//!   the looked-up identifier are returned. Every matching row is returned,
//!   whatever its `status`; choosing is [`resolve()`]'s job.
//! - [`ErpNextClient::password`] reads a Password field through
//!   `frappe.client.get_password` (a plain GET only shows asterisks).
//! - [`ErpNextClient::mark_provisioned`] sends a partial `PUT` with exactly
//!   three fields: `status` = `Actif`, `custom_cwmp_serial` and the
//!   configured provisioned-at field (UTC, Frappe datetime text).
//! - [`ErpNextClient::list_equipment`] reads every record (paged), and
//!   [`ErpNextClient::update_fields`] sends a partial `PUT` of given fields:
//!   what bulk imports (`gigafibre-acs migrate …`) use.
//!
//! Resilience: every request has a connect and a total timeout; connection
//! errors, timeouts, 5xx and 429 are retried with jittered exponential
//! backoff (a `Retry-After` in seconds is honoured, capped at
//! [`MAX_RETRY_AFTER`]) up to [`ErpConfig::max_attempts`]; a circuit
//! breaker opens after [`ErpConfig::breaker_failures`] consecutive failed
//! attempts so that, while ERPNext is down, calls fail at once with
//! [`ErpError::Unavailable`] instead of waiting for timeouts; after
//! [`ErpConfig::breaker_cooldown`] one probe request is let through, and its
//! success closes the breaker. Lookups and passwords are kept in a TTL cache
//! ([`ErpConfig::cache_ttl`]), served even while the breaker is open; a write
//! invalidates the record's entries.
//!
//! Secrets (the API secret, passwords read from ERPNext) are held in
//! [`Secret`] and never appear in an error, a log line or a `Debug` output.

mod backoff;
mod breaker;
mod cache;
mod client;
mod frappe_error;
mod query;
pub mod resolve;

use std::time::Duration;

use crate::config::Secret;

pub use backoff::{MAX_BACKOFF, MAX_RETRY_AFTER, parse_retry_after};
pub use client::{ErpNextClient, decode_document, decode_list, decode_password};
pub use frappe_error::clean as clean_text;
pub use frappe_error::{FrappeError, MAX_TEXT};
pub use resolve::{DeviceKeys, Resolution, resolve};

/// The DocType of the records the ACS works with.
pub const SERVICE_EQUIPMENT: &str = "Service Equipment";

/// How to reach ERPNext and how patient to be with it.
#[derive(Clone, Debug)]
pub struct ErpConfig {
    /// Base URL of the site, e.g. `http://127.0.0.1:8000` or
    /// `https://erp.example.com/` (a path prefix is kept).
    pub url: String,
    pub api_key: String,
    pub api_secret: Secret,
    /// Per request: the connect timeout is the smaller of this and 2 s; the
    /// total (connect, send, whole answer) is this.
    pub timeout: Duration,
    /// Attempts per call, including the first (at least 1).
    pub max_attempts: u32,
    /// Consecutive failed attempts that open the breaker (at least 1).
    pub breaker_failures: u32,
    /// How long the breaker stays open before one probe is let through.
    pub breaker_cooldown: Duration,
    /// How long lookups and passwords are cached; zero disables the cache.
    pub cache_ttl: Duration,
    /// The Datetime field `mark_provisioned` writes (`custom_provisioned_at`).
    pub provisioned_at_field: String,
}

impl ErpConfig {
    /// A configuration with the default timeouts, retries, breaker and cache.
    pub fn new(
        url: impl Into<String>,
        api_key: impl Into<String>,
        api_secret: Secret,
    ) -> ErpConfig {
        ErpConfig {
            url: url.into(),
            api_key: api_key.into(),
            api_secret,
            timeout: Duration::from_secs(5),
            max_attempts: 3,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
            cache_ttl: Duration::from_secs(60),
            provisioned_at_field: "custom_provisioned_at".to_string(),
        }
    }
}

impl From<&crate::config::ErpNextSettings> for ErpConfig {
    /// The client settings of a loaded configuration (what `serve` uses;
    /// the session budget is the server's business, not the client's).
    fn from(e: &crate::config::ErpNextSettings) -> ErpConfig {
        ErpConfig {
            url: e.url.clone(),
            api_key: e.api_key.clone(),
            api_secret: e.api_secret.clone(),
            timeout: e.timeout,
            max_attempts: e.max_attempts,
            breaker_failures: e.breaker_failures,
            breaker_cooldown: e.breaker_cooldown,
            cache_ttl: e.cache_ttl,
            provisioned_at_field: e.provisioned_at_field.clone(),
        }
    }
}

/// One `Service Equipment` record, as the ACS needs it. Password fields are
/// not included: `has_*_password` says whether one is set (the masked value
/// is non-empty) and [`ErpNextClient::password`] reads it.
///
/// Null, omitted and empty (or blank) text fields are `None`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Equipment {
    pub name: String,
    pub customer: Option<String>,
    pub service_location: Option<String>,
    pub equipment_type: Option<String>,
    pub brand: Option<String>,
    pub model: Option<String>,
    pub serial_number: Option<String>,
    pub mac_address: Option<String>,
    pub status: Option<String>,
    /// `custom_wifi_ssid`
    pub wifi_ssid: Option<String>,
    /// `custom_wifi_ssid_5g`
    pub wifi_ssid_5g: Option<String>,
    /// `custom_wifi_enabled`
    pub wifi_enabled: Option<bool>,
    /// `custom_wifi_password` is set.
    pub has_wifi_password: bool,
    /// `custom_sip_username`
    pub sip_username: Option<String>,
    /// `custom_sip_password` is set.
    pub has_sip_password: bool,
    /// `custom_sip_line`
    pub sip_line: Option<u32>,
    /// `custom_gpon_serial`
    pub gpon_serial: Option<String>,
    /// `custom_cwmp_serial`
    pub cwmp_serial: Option<String>,
    /// `custom_radius_user`: the PPPoE username.
    #[serde(default)]
    pub radius_user: Option<String>,
    /// `custom_radius_password` (the PPPoE password) is set.
    #[serde(default)]
    pub has_radius_password: bool,
    pub modified: Option<String>,
}

impl Equipment {
    /// A record with a name and nothing else (tests build on it).
    pub fn named(name: impl Into<String>) -> Equipment {
        Equipment {
            name: name.into(),
            customer: None,
            service_location: None,
            equipment_type: None,
            brand: None,
            model: None,
            serial_number: None,
            mac_address: None,
            status: None,
            wifi_ssid: None,
            wifi_ssid_5g: None,
            wifi_enabled: None,
            has_wifi_password: false,
            sip_username: None,
            has_sip_password: false,
            sip_line: None,
            gpon_serial: None,
            cwmp_serial: None,
            radius_user: None,
            has_radius_password: false,
            modified: None,
        }
    }
}

/// What to look a `Service Equipment` record up by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// The document name (a direct GET).
    Name(&'a str),
    /// `custom_cwmp_serial`, compared case-insensitively after trimming.
    CwmpSerial(&'a str),
    /// A GPON serial (canonical ASCII `RCMG1A2B3C4D`; the 16-hex form is
    /// accepted too), found in `serial_number` or `custom_gpon_serial` in
    /// either form.
    GponSerial(&'a str),
    /// A MAC (canonical 12 hex digits; any spelling is accepted), found in
    /// `mac_address` in any spelling.
    Mac(&'a str),
    /// `serial_number` equal to the serial the device uses in CWMP (the
    /// sticker serial of a router), compared case-insensitively after
    /// trimming.
    SerialNumber(&'a str),
}

/// Why a call to ERPNext failed. The texts are short, name the operation
/// and never contain a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErpError {
    /// ERPNext cannot be used right now: the breaker is open, or the
    /// connection failed / timed out / got 5xx or 429 on every attempt.
    #[error("ERPNext unavailable: {reason}")]
    Unavailable { reason: String },
    /// 401/403: the API key or secret is wrong, or lacks permission.
    /// `message` is the complete sentence.
    #[error("{message}")]
    Auth { status: u16, message: String },
    /// The document (`"Service Equipment EQ-00099"`) does not exist.
    #[error("ERPNext has no {what}")]
    NotFound { what: String },
    /// ERPNext refused the request (417 ValidationError, 409
    /// DuplicateEntryError, …). `message` is the complete sentence, e.g.
    /// `ERPNext refused the update of EQ-00012 (ValidationError): Invalid
    /// value for status`.
    #[error("{message}")]
    Rejected {
        status: u16,
        exc_type: String,
        message: String,
    },
    /// The answer could not be understood.
    #[error("unexpected answer from ERPNext: {reason}")]
    Protocol { reason: String },
    /// [`ErpNextClient::new`] was given an unusable configuration.
    #[error("invalid ERPNext configuration: {reason}")]
    Config { reason: String },
}

impl ErpError {
    /// True for errors that say nothing about the data (ERPNext is down or
    /// overloaded): worth retrying later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, ErpError::Unavailable { .. })
    }

    /// The same error with each of `secrets` (values the caller sent)
    /// replaced by `********`: an answer may quote what it was sent
    /// (Frappe's "Value too big" message quotes the value).
    pub fn redact(self, secrets: &[&str]) -> ErpError {
        let scrub = |text: String| {
            secrets
                .iter()
                .filter(|s| !s.is_empty())
                .fold(text, |t, s| t.replace(s, "********"))
        };
        match self {
            ErpError::Unavailable { reason } => ErpError::Unavailable {
                reason: scrub(reason),
            },
            ErpError::Auth { status, message } => ErpError::Auth {
                status,
                message: scrub(message),
            },
            ErpError::NotFound { what } => ErpError::NotFound { what: scrub(what) },
            ErpError::Rejected {
                status,
                exc_type,
                message,
            } => ErpError::Rejected {
                status,
                exc_type,
                message: scrub(message),
            },
            ErpError::Protocol { reason } => ErpError::Protocol {
                reason: scrub(reason),
            },
            ErpError::Config { reason } => ErpError::Config {
                reason: scrub(reason),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_replaces_every_sent_secret() {
        let e = ErpError::Rejected {
            status: 417,
            exc_type: "CharacterLengthExceededError".into(),
            message: "SIP Password: 'hunter2hunter2' (hunter2hunter2) too big".into(),
        }
        .redact(&["hunter2hunter2", ""]);
        assert_eq!(e.to_string(), "SIP Password: '********' (********) too big");
        let e = ErpError::Unavailable { reason: "x".into() }.redact(&[]);
        assert!(e.is_unavailable());
    }
}

/// Counters for metrics. All counts since the client was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErpStats {
    /// Calls that needed ERPNext (cache hits excluded).
    pub calls: u64,
    /// HTTP requests sent (first attempts and retries).
    pub attempts: u64,
    /// Calls that ended in an [`ErpError`].
    pub errors: u64,
    /// Attempts after the first.
    pub retries: u64,
    /// Transitions of the breaker to open.
    pub breaker_opens: u64,
    /// Calls refused at once because the breaker was open.
    pub breaker_rejections: u64,
    /// Calls answered from the cache.
    pub cache_hits: u64,
    /// Duration of the last HTTP attempt (answered or failed).
    pub last_latency: Option<Duration>,
}
