//! `gigafibre-acs migrate legacy-wifi | legacy-voip | legacy-radius`: the
//! old provisioning tables (CSV) into `Service Equipment` fields.
//! [`super::legacy`] is the pure part (columns, validation, dedupe,
//! matching, the plan); [`run_legacy`]
//!   does the I/O: one paged listing of every record, the stored passwords
//!   the plan must compare with, then one partial `PUT` per record that
//!   changes. A dry run (the default) stops before the writes.
//!
//! ERPNext's 429/5xx and connection errors are retried by the client (with
//! backoff); an error that outlasts the retries ends the run with what was
//! written so far ([`MigrateError::Erp`]). Re-running is safe: fields that
//! already hold the value are not written again.

use std::path::Path;

use thiserror::Error;

use super::legacy::{self, Kind, LegacyError, Report};
use super::progress::Progress;
use crate::erpnext::{ErpError, ErpNextClient};

/// Records per page of the listing: a few requests for the whole fleet
/// (thousands of records), each answer well under the client's size cap.
pub const PAGE_LENGTH: usize = 500;

/// What the command line asked for.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `FIELD=COLUMN` items of `--map`.
    pub map: Vec<String>,
    /// Write (otherwise a dry run).
    pub apply: bool,
    /// Replace fields that hold another value.
    pub overwrite: bool,
}

/// Why a migration did not complete.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MigrateError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error(transparent)]
    Legacy(#[from] LegacyError),
    #[error(
        "ERPNext is not configured: set ERPNEXT_URL, ERPNEXT_API_KEY and ERPNEXT_API_SECRET \
         (or erpnext_url, erpnext_api_key and erpnext_api_secret in the configuration file)"
    )]
    NotConfigured,
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// The ERPNext settings were refused by the client.
    #[error("{0}")]
    Client(ErpError),
    /// ERPNext failed mid-run; `report` says what was done until then.
    #[error("ERPNext failed, the run stopped ({} field(s) written before): {source}", report.written)]
    Erp {
        source: ErpError,
        report: Box<Report>,
    },
}

impl MigrateError {
    /// 1 when ERPNext failed during the run (or the process could not
    /// run), 2 for usage, file, column and configuration errors.
    pub fn exit_code(&self) -> u8 {
        match self {
            MigrateError::Erp { .. } | MigrateError::Runtime(_) => 1,
            _ => 2,
        }
    }
}

/// The file's text. Not guessed when not UTF-8: a password decoded with the
/// wrong code page would be written wrong without anyone noticing.
pub fn read_text(path: &Path) -> Result<String, MigrateError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| MigrateError::Read {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    String::from_utf8(bytes).map_err(|e| MigrateError::Read {
        path: shown,
        reason: format!(
            "not UTF-8 text (byte {}); export it as UTF-8",
            e.utf8_error().valid_up_to()
        ),
    })
}

/// Runs one legacy import against ERPNext: reads `text`, lists the records,
/// reads the passwords to compare, and (with `apply`) writes.
pub async fn run_legacy(
    client: &ErpNextClient,
    kind: Kind,
    text: &str,
    opts: &Options,
    progress: &mut Progress,
) -> Result<Report, MigrateError> {
    let data = legacy::read(kind, text, &opts.map)?;
    let dry_run = !opts.apply;
    let before_matching = || {
        let matching = legacy::Matching::default();
        Box::new(Report::new(
            &data,
            &matching,
            &legacy::Plan::default(),
            dry_run,
        ))
    };
    let equipment = client
        .list_equipment(&kind.listing_fields(), PAGE_LENGTH)
        .await
        .map_err(|source| MigrateError::Erp {
            source,
            report: before_matching(),
        })?;
    let matching = legacy::match_devices(kind, &data.latest, &equipment);
    let reads = legacy::password_reads(&matching.matched);
    let mut passwords = legacy::Passwords::new();
    for (i, (name, field)) in reads.iter().enumerate() {
        progress.show("comparing passwords", i, reads.len());
        match client.password(name, field).await {
            Ok(p) => {
                passwords.insert((name.clone(), *field), p);
            }
            Err(source) => {
                progress.clear();
                return Err(MigrateError::Erp {
                    source,
                    report: before_matching(),
                });
            }
        }
    }
    progress.clear();
    let plan = legacy::plan(&matching.matched, &passwords, opts.overwrite);
    let mut report = Report::new(&data, &matching, &plan, dry_run);
    report.overwrite = opts.overwrite;
    if dry_run {
        return Ok(report);
    }
    report.written = 0;
    for (i, w) in plan.writes.iter().enumerate() {
        progress.show("writing", i, plan.writes.len());
        let fields: Vec<(&str, serde_json::Value)> =
            w.fields.iter().map(|(k, v)| (*k, v.to_json())).collect();
        if let Err(source) = client.update_fields(&w.equipment, &fields).await {
            progress.clear();
            let sent: Vec<&str> = w
                .fields
                .iter()
                .filter_map(|(_, v)| match v {
                    legacy::FieldValue::Secret(s) => Some(s.expose()),
                    _ => None,
                })
                .collect();
            return Err(MigrateError::Erp {
                source: source.redact(&sent),
                report: Box::new(report),
            });
        }
        report.written += w.fields.len();
    }
    progress.clear();
    Ok(report)
}
