//! `/api/v1/files`: the files devices download (firmware images). An
//! upload is the raw body, streamed to disk with its SHA-256; a file
//! served from elsewhere (a CDN) is declared with its URL, size and
//! SHA-256 in JSON. Devices fetch the ACS's own files from the CWMP
//! listener with signed links (`server::files`).

use std::sync::Arc;
use std::time::SystemTime;

use http::{StatusCode, header};
use http_body_util::BodyExt;
use hyper::Request;
use hyper::body::Incoming;
use serde::Deserialize;

use super::{ApiError, ApiResult, Query, json_response, read_json_body};
use crate::app::{Acs, now_ms};
use crate::firmware::files::{self, Upload, UploadError};
use crate::store::FileRecord;

pub fn view(f: &FileRecord) -> serde_json::Value {
    serde_json::json!({
        "id": f.id,
        "name": f.name,
        "model": f.model,
        "version": f.version,
        "size": f.size,
        "sha256": f.sha256,
        "url": f.url,
        "created": super::rfc3339(f.created_ms),
        "created_by": f.created_by,
    })
}

fn upload_error(e: UploadError) -> ApiError {
    match e {
        UploadError::TooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string())
        }
        UploadError::HashMismatch { .. } => ApiError::bad_request(e.to_string()),
        other => ApiError::internal(other),
    }
}

/// The optional text fields of a file.
fn field(q: &Query, name: &str) -> Result<Option<String>, ApiError> {
    match q.get(name).map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) if v.len() <= 128 && !v.chars().any(char::is_control) => Ok(Some(v.to_owned())),
        Some(_) => Err(ApiError::bad_request(format!(
            "`{name}` must be 1-128 printable characters"
        ))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct External {
    name: String,
    url: String,
    size: u64,
    sha256: String,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    version: Option<String>,
}

/// `POST /api/v1/files?name=&model=&version=&sha256=`: 201 with the file.
pub async fn create(acs: &Arc<Acs>, actor: &str, req: Request<Incoming>, q: &Query) -> ApiResult {
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let id = files::new_id().map_err(ApiError::internal)?;
    let record = match json {
        true => external(id, actor, read_json_body(req).await?)?,
        false => upload(acs, id, actor, req, q).await?,
    };
    acs.store.put_file(&record).map_err(ApiError::internal)?;
    tracing::info!(file = %record.id, name = %record.name, size = record.size, "file added");
    Ok(json_response(StatusCode::CREATED, &view(&record)))
}

fn external(id: String, actor: &str, body: serde_json::Value) -> Result<FileRecord, ApiError> {
    let e: External = serde_json::from_value(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is {{\"name\", \"url\", \"size\", \"sha256\"[, \"model\", \"version\"]}} for a file served elsewhere (or send the file itself, not JSON): {}",
            super::json_error_without_values(&e)
        ))
    })?;
    files::check_name(&e.name).map_err(|m| ApiError::bad_request(format!("name: {m}")))?;
    if !(e.url.starts_with("http://") || e.url.starts_with("https://")) || e.url.len() > 1024 {
        return Err(ApiError::bad_request(
            "url: an http:// or https:// URL of at most 1024 characters",
        ));
    }
    if !files::is_sha256(&e.sha256) {
        return Err(ApiError::bad_request("sha256: 64 hex digits"));
    }
    if e.size == 0 {
        return Err(ApiError::bad_request(
            "size: the file's size in bytes, not 0",
        ));
    }
    Ok(FileRecord {
        id,
        name: e.name,
        model: e.model,
        version: e.version,
        size: e.size,
        sha256: e.sha256.to_ascii_lowercase(),
        created_ms: now_ms(SystemTime::now()),
        created_by: actor.to_owned(),
        url: Some(e.url),
    })
}

async fn upload(
    acs: &Arc<Acs>,
    id: String,
    actor: &str,
    req: Request<Incoming>,
    q: &Query,
) -> Result<FileRecord, ApiError> {
    let name = q
        .get("name")
        .ok_or_else(|| ApiError::bad_request("`name` is required: the file name devices see"))?
        .to_owned();
    files::check_name(&name).map_err(|m| ApiError::bad_request(format!("name: {m}")))?;
    let declared = q.get("sha256");
    if let Some(h) = declared {
        if !files::is_sha256(h) {
            return Err(ApiError::bad_request("sha256: 64 hex digits"));
        }
    }
    let (model, version) = (field(q, "model")?, field(q, "version")?);
    // Refused before a byte is read when the client says it is too large.
    let declared_len = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared_len.is_some_and(|n| n > acs.config.file_max_bytes) {
        return Err(upload_error(UploadError::TooLarge {
            max: acs.config.file_max_bytes,
        }));
    }
    let data_dir = &acs.config.data_dir;
    let mut up = Upload::start(data_dir, &id, acs.config.file_max_bytes)
        .await
        .map_err(upload_error)?;
    let mut body = req.into_body();
    while let Some(frame) = body.frame().await {
        let written = match frame {
            Ok(f) => match f.into_data() {
                Ok(data) => up.write(&data).await.map_err(upload_error),
                Err(_) => Ok(()),
            },
            Err(e) => Err(ApiError::bad_request(format!(
                "reading the request body failed: {e}"
            ))),
        };
        if let Err(e) = written {
            up.abort().await;
            return Err(e);
        }
    }
    let (size, sha256) = up
        .finish(&files::path(data_dir, &id), declared)
        .await
        .map_err(upload_error)?;
    if size == 0 {
        let _ = tokio::fs::remove_file(files::path(data_dir, &id)).await;
        return Err(ApiError::bad_request(
            "the body is empty: send the file itself",
        ));
    }
    Ok(FileRecord {
        id,
        name,
        model,
        version,
        size,
        sha256,
        created_ms: now_ms(SystemTime::now()),
        created_by: actor.to_owned(),
        url: None,
    })
}

/// `GET /api/v1/files`.
pub fn list(acs: &Acs) -> ApiResult {
    let mut all = acs.store.files().map_err(ApiError::internal)?;
    all.sort_by_key(|f| std::cmp::Reverse(f.created_ms));
    let views: Vec<serde_json::Value> = all.iter().map(view).collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "files": views }),
    ))
}

fn load(acs: &Acs, id: &str) -> Result<FileRecord, ApiError> {
    acs.store
        .file(id)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no file {id}")))
}

/// `GET /api/v1/files/{id}`.
pub fn get(acs: &Acs, id: &str) -> ApiResult {
    Ok(json_response(StatusCode::OK, &view(&load(acs, id)?)))
}

/// `DELETE /api/v1/files/{id}`: the record, then the bytes.
pub async fn delete(acs: &Arc<Acs>, id: &str) -> ApiResult {
    let f = load(acs, id)?;
    acs.store.delete_file(id).map_err(ApiError::internal)?;
    if f.url.is_none() && files::is_id(id) {
        if let Err(e) = tokio::fs::remove_file(files::path(&acs.config.data_dir, id)).await {
            tracing::warn!(file = id, error = %e, "removing a deleted file's bytes failed");
        }
    }
    Ok(json_response(StatusCode::OK, &view(&f)))
}
