//! `POST /api/v1/import/genieacs-devices`: GenieACS's devices imported
//! through the running ACS (the store is the server's; the CLI's
//! `migrate genieacs-devices --server` sends here). The body is streamed
//! to a file in the data dir, then imported from it, so an export of any
//! size costs no more memory than one document.

use std::sync::Arc;
use std::time::SystemTime;

use http::StatusCode;
use http_body_util::BodyExt;
use hyper::Request;
use hyper::body::Incoming;
use tokio::io::AsyncWriteExt;

use super::{ApiError, ApiResult, Query, json_response};
use crate::app::{Acs, now_ms};
use crate::migrate::genieacs::ExportError;
use crate::migrate::genieacs_run::{self, ImportError};

/// Largest export accepted over HTTP.
pub const MAX_IMPORT_BYTES: u64 = 16 << 30;

pub async fn genieacs_devices(acs: &Arc<Acs>, req: Request<Incoming>, q: &Query) -> ApiResult {
    let apply = q.flag("apply", false)?;
    let dir = acs.config.data_dir.join("imports");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| ApiError::internal(format!("cannot create {}: {e}", dir.display())))?;
    let path = dir.join(format!(
        "genieacs-devices-{}-{}.json",
        std::process::id(),
        now_ms(SystemTime::now())
    ));
    let received = receive(req, &path).await;
    let result = match received {
        Ok(()) => {
            let store = acs.store.clone();
            let file = path.clone();
            let now = now_ms(SystemTime::now());
            tokio::task::spawn_blocking(move || {
                let input = std::fs::File::open(&file)
                    .map(std::io::BufReader::new)
                    .map_err(|e| ImportError::Export(ExportError::Io(e)))?;
                genieacs_run::import(input, store.as_ref(), apply, now, &mut |_| {})
            })
            .await
            .map_err(ApiError::internal)
            .and_then(|r| {
                r.map_err(|e| match e {
                    // Our spool file or the store failed: not the client's doing.
                    ImportError::Export(ExportError::Io(_)) | ImportError::Store(_) => {
                        ApiError::internal(e)
                    }
                    other => ApiError::bad_request(other.to_string()),
                })
            })
        }
        Err(e) => Err(e),
    };
    let _ = tokio::fs::remove_file(&path).await;
    let report = result?;
    tracing::info!(
        created = report.created,
        updated = report.updated,
        unchanged = report.unchanged,
        invalid = report.invalid.len(),
        dry_run = report.dry_run,
        "GenieACS devices imported"
    );
    Ok(json_response(StatusCode::OK, &report))
}

/// Streams the request body into `path`, at most [`MAX_IMPORT_BYTES`].
async fn receive(req: Request<Incoming>, path: &std::path::Path) -> Result<(), ApiError> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    // The export holds connection-request passwords: owner only.
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .await
        .map_err(|e| ApiError::internal(format!("cannot create {}: {e}", path.display())))?;
    let mut body = req.into_body();
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::bad_request(format!("reading the request body failed: {e}")))?;
        if let Ok(data) = frame.into_data() {
            total += data.len() as u64;
            if total > MAX_IMPORT_BYTES {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("the export is larger than {MAX_IMPORT_BYTES} bytes"),
                ));
            }
            file.write_all(&data)
                .await
                .map_err(|e| ApiError::internal(format!("writing the export failed: {e}")))?;
        }
    }
    file.flush()
        .await
        .map_err(|e| ApiError::internal(format!("writing the export failed: {e}")))
}
