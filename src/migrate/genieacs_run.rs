//! `gigafibre-acs migrate genieacs-devices FILE`: GenieACS's devices into
//! the store (the I/O around [`super::genieacs`]).
//!
//! Idempotent: a device already imported with the same data is left
//! unchanged; one imported before with other data is updated; one that has
//! since informed this ACS is never overwritten (it is live here: what it
//! reported is newer than the export).

use serde::{Deserialize, Serialize};

use super::genieacs::{self, ExportError};
use crate::store::{DeviceRecord, Store, StoreError};

/// What an import did (or, in a dry run, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    pub dry_run: bool,
    /// Documents in the file.
    pub documents: usize,
    /// Distinct devices among them.
    pub devices: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Devices that have informed this ACS since: left as they are.
    pub live_here: Vec<String>,
    /// Documents that could not be imported: position and reason.
    pub invalid: Vec<InvalidDocument>,
    /// Parameter values taken (created and updated devices).
    pub parameters: usize,
    /// Devices whose tree was cut at [`genieacs::MAX_PARAMETERS`].
    pub truncated: Vec<String>,
    /// Devices whose GenieACS `_id` is not the id their Inform gives: kept
    /// under the Inform's id.
    #[serde(default)]
    pub renamed: Vec<Renamed>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Renamed {
    pub genieacs_id: String,
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidDocument {
    /// Line (JSON lines) or element (array) of the document, from 1.
    pub document: usize,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Whether two records hold the same imported data (the import time
/// aside).
fn same(a: &DeviceRecord, b: &DeviceRecord) -> bool {
    let mut a = a.clone();
    a.imported_ms = b.imported_ms;
    a == *b
}

/// Reads the export and writes each device into `store` when `apply`.
/// `progress` is called with the number of documents read so far.
pub fn import(
    input: impl std::io::BufRead,
    store: &dyn Store,
    apply: bool,
    now_ms: u64,
    progress: &mut dyn FnMut(usize),
) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport {
        dry_run: !apply,
        ..ImportReport::default()
    };
    let mut seen = std::collections::HashSet::new();
    let mut failure: Option<StoreError> = None;
    genieacs::documents(input, &mut |position, doc| {
        if failure.is_some() {
            return;
        }
        report.documents += 1;
        progress(report.documents);
        let parsed = doc.and_then(|d| genieacs::device(&d, now_ms).map_err(|e| e.to_string()));
        let imported = match parsed {
            Ok(d) => d,
            Err(reason) => {
                report.invalid.push(InvalidDocument {
                    document: position,
                    reason,
                });
                return;
            }
        };
        let id = imported.record.id.clone();
        if !seen.insert(id.clone()) {
            report.invalid.push(InvalidDocument {
                document: position,
                reason: format!("device {id} appears again; the first document was taken"),
            });
            return;
        }
        report.devices += 1;
        if imported.truncated > 0 {
            report.truncated.push(id.clone());
        }
        if let Some(g) = &imported.genieacs_id {
            report.renamed.push(Renamed {
                genieacs_id: g.clone(),
                id: id.clone(),
            });
        }
        let existing = match store.device(&id) {
            Ok(e) => e,
            Err(e) => {
                failure = Some(e);
                return;
            }
        };
        match &existing {
            Some(e) if e.imported_ms.is_none() => {
                report.live_here.push(id);
                return;
            }
            Some(e) if same(e, &imported.record) => {
                report.unchanged += 1;
                return;
            }
            Some(_) => report.updated += 1,
            None => report.created += 1,
        }
        report.parameters += imported.values.len();
        if !apply {
            return;
        }
        let written = store
            .put_device(&imported.record)
            .and_then(|()| store.put_writability(&id, &imported.writability))
            .and_then(|()| store.put_values(&id, &imported.values));
        if let Err(e) = written {
            failure = Some(e);
        }
    })?;
    if let Some(e) = failure {
        return Err(ImportError::Store(e));
    }
    if apply {
        store.flush_blocking()?;
    }
    Ok(report)
}

impl ImportReport {
    /// The report for a person.
    pub fn human(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} documents, {} devices: {} created, {} updated, {} unchanged, {} live here (left alone), {} invalid{}",
            self.documents,
            self.devices,
            self.created,
            self.updated,
            self.unchanged,
            self.live_here.len(),
            self.invalid.len(),
            if self.dry_run {
                " (dry run: nothing written; --apply to write)"
            } else {
                ""
            }
        );
        for i in &self.invalid {
            let _ = writeln!(s, "  document {}: {}", i.document, i.reason);
        }
        for id in &self.live_here {
            let _ = writeln!(s, "  {id}: has informed this ACS since; not overwritten");
        }
        for r in &self.renamed {
            let _ = writeln!(
                s,
                "  {}: GenieACS's id; the device informs as {}, kept under that",
                r.genieacs_id, r.id
            );
        }
        for id in &self.truncated {
            let _ = writeln!(
                s,
                "  {id}: more than {} parameters; the rest were left out",
                genieacs::MAX_PARAMETERS
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    fn export() -> String {
        let a = serde_json::json!({
            "_id": "202BC1-BM632w-0001",
            "_deviceId": {"_Manufacturer": "X", "_OUI": "202BC1", "_ProductClass": "BM632w", "_SerialNumber": "0001"},
            "_lastInform": "2026-11-30T10:00:00Z",
            "_tags": ["a"],
            "Device": {"_object": true, "DeviceInfo": {"SoftwareVersion": {"_value": "1.0", "_type": "xsd:string", "_writable": false}}}
        });
        let mut b = a.clone();
        b["_id"] = "202BC1-BM632w-0002".into();
        b["_deviceId"]["_SerialNumber"] = "0002".into();
        format!("{a}\n{b}\n{a}\nnot json\n")
    }

    #[test]
    fn dry_run_then_apply_then_nothing_and_live_devices_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path(), 1 << 20).unwrap();
        let run = |apply| {
            import(
                std::io::Cursor::new(export().into_bytes()),
                &store,
                apply,
                1_000,
                &mut |_| {},
            )
            .unwrap()
        };
        let dry = run(false);
        assert_eq!((dry.documents, dry.devices, dry.created), (4, 2, 2));
        assert_eq!(dry.invalid.len(), 2, "{dry:?}");
        assert!(store.device("202BC1-BM632w-0001").unwrap().is_none());
        let applied = run(true);
        assert_eq!((applied.created, applied.parameters), (2, 2));
        let d = store.device("202BC1-BM632w-0001").unwrap().unwrap();
        assert_eq!(d.tags, vec!["a".to_owned()]);
        assert_eq!(d.software_version.as_deref(), Some("1.0"));
        let again = run(true);
        assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 2));
        // The device informs this ACS: a later import leaves it alone.
        let mut live = d.clone();
        live.imported_ms = None;
        store.put_device(&live).unwrap();
        let later = run(true);
        assert_eq!(later.live_here, vec!["202BC1-BM632w-0001".to_owned()]);
        assert_eq!(store.device("202BC1-BM632w-0001").unwrap().unwrap(), live);
    }
}
