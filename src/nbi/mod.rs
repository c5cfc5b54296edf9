//! A GenieACS-compatible northbound interface (NBI), so tools written
//! against GenieACS keep working: `GET /devices/`, `/tasks/`, `/faults/`
//! with MongoDB-style `query`, `projection`, `sort`, `skip`, `limit` (and
//! the `total` header), tasks posted to `/devices/{id}/tasks`, tags,
//! task retry and deletion, fault and device deletion. Answers have
//! GenieACS's shapes and status codes; errors are plain text, as there.
//!
//! Unlike GenieACS's NBI, which has no authentication (CVE-2025-56015),
//! every request needs one of the Ops API's tokens — `Authorization:
//! Bearer <token>`, or Basic with the token as password — except from the
//! networks in `nbi_allow`.
//!
//! It is an adapter: documents are built from the store's records
//! ([`document`]), queries evaluated by a pure engine ([`query`]), tasks
//! translated into the Ops API's ([`tasks`]) and queued through the same
//! services ([`crate::app::service`]). Collections are evaluated by scanning the
//! store (devices in pages), which is fine for a fleet of tens of
//! thousands; an index would be the next step beyond.

pub mod document;
pub mod query;
mod regex;
pub mod tasks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use serde_json::Value;
use thiserror::Error;

use crate::api::{ApiTokens, Query, percent_decode};
use crate::app::Acs;
use crate::app::now_ms;
use crate::app::service::{self, WithdrawError};
use crate::config::Cidr;
use crate::store::Role;
use crate::store::{DeviceRecord, FaultRecord, StoreError, Task, TaskStatus};
use document::{device_document, fault_documents, fault_object_id, is_attribute_path, project};
use query::Filter;

/// Largest request body.
const MAX_BODY: usize = 1 << 20;
/// How long `POST …/tasks?connection_request` waits for the task when no
/// `timeout` is given (GenieACS's default), and at most.
const DEFAULT_TIMEOUT_MS: u64 = 3000;
const MAX_TIMEOUT_MS: u64 = 120_000;
/// Longest tag accepted.
const MAX_TAG: usize = 128;

/// What the NBI shares between requests.
pub struct Nbi {
    pub acs: Arc<Acs>,
    pub tokens: Arc<ApiTokens>,
    pub allow: Vec<Cidr>,
}

/// Why a request failed; the message goes to the client as plain text.
#[derive(Debug, Error)]
enum NbiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("405 Method Not Allowed")]
    MethodNotAllowed(&'static str),
    #[error("request body larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("internal error; see the ACS log")]
    Internal,
}

impl From<StoreError> for NbiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "NBI request failed");
        NbiError::Internal
    }
}

impl From<query::QueryError> for NbiError {
    fn from(e: query::QueryError) -> Self {
        NbiError::BadRequest(e.to_string())
    }
}

type Reply = Response<Full<Bytes>>;

fn text(status: StatusCode, message: &str) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(message.to_owned())));
    *r.status_mut() = status;
    if !message.is_empty() {
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    r
}

fn json(status: StatusCode, value: &Value) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(value.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

impl NbiError {
    fn into_reply(self) -> Reply {
        let status = match &self {
            NbiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            NbiError::NotFound(_) => StatusCode::NOT_FOUND,
            NbiError::Conflict(_) => StatusCode::CONFLICT,
            NbiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            NbiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            NbiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut r = text(status, &self.to_string());
        if let NbiError::MethodNotAllowed(allow) = self {
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        r
    }
}

fn unauthorized() -> Reply {
    let mut r = text(
        StatusCode::UNAUTHORIZED,
        "missing or invalid token (Authorization: Bearer <token>, or Basic with the token as password)",
    );
    for challenge in [
        "Bearer realm=\"gigafibre-acs\"",
        "Basic realm=\"gigafibre-acs\"",
    ] {
        r.headers_mut().append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    r
}

/// Handles one NBI request from `peer`.
///
/// A token's role applies: writes need `ops`. A client of the allow list
/// without a token counts as `ops`, named by its address in the audit log,
/// where every write goes.
pub async fn handle(nbi: Arc<Nbi>, peer: SocketAddr, req: Request<Incoming>) -> Reply {
    let token = match nbi.tokens.resolve(
        nbi.acs.store.as_ref(),
        req.headers().get(header::AUTHORIZATION),
        true,
    ) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "NBI: looking up an issued token failed");
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "503 Service Unavailable: the store did not answer; try again",
            );
        }
    };
    let allowed = nbi.allow.iter().any(|net| net.contains(peer.ip()));
    let (role, actor) = match (token, allowed) {
        (Some(found), _) => found,
        (None, true) => (Role::Ops, format!("nbi@{}", peer.ip())),
        (None, false) => return unauthorized(),
    };
    let write = !matches!(*req.method(), Method::GET | Method::HEAD);
    if write && role < Role::Ops {
        return text(
            StatusCode::FORBIDDEN,
            "403 Forbidden: this token's role (technician) may not write through the NBI",
        );
    }
    let audit_device = match write {
        true => req
            .uri()
            .path()
            .strip_prefix("/devices/")
            .and_then(|rest| rest.split('/').next())
            .and_then(percent_decode),
        false => None,
    };
    let action = match write {
        true => format!("nbi {} {}", req.method(), first_segment(req.uri().path())),
        false => String::new(),
    };
    let reply = match route(&nbi.acs, req).await {
        Ok(r) => r,
        Err(e) => e.into_reply(),
    };
    if write {
        let now = crate::app::now_ms(std::time::SystemTime::now());
        crate::api::access::audit(
            &nbi.acs,
            &actor,
            role,
            &action,
            audit_device,
            reply.status().as_u16(),
            now,
        );
    }
    reply
}

/// `devices`, `tasks`, `faults`… of a path, for the audit log.
fn first_segment(path: &str) -> &str {
    path.trim_start_matches('/').split('/').next().unwrap_or("")
}

async fn route(acs: &Arc<Acs>, req: Request<Incoming>) -> Result<Reply, NbiError> {
    let segments = req
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_decode(s)
                .ok_or_else(|| NbiError::BadRequest("the path has invalid percent-encoding".into()))
        })
        .collect::<Result<Vec<String>, _>>()?;
    let q = Query::parse(req.uri().query())
        .map_err(|e| NbiError::BadRequest(e.message().to_owned()))?;
    let method = req.method().clone();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let read = method == Method::GET || method == Method::HEAD;
    match (seg.as_slice(), &method) {
        (["devices" | "tasks" | "faults"], _) if !read => {
            Err(NbiError::MethodNotAllowed("GET, HEAD"))
        }
        ([collection @ ("devices" | "tasks" | "faults")], _) => {
            let (total, docs) = collect(acs, collection, &q).await?;
            let mut r = if method == Method::HEAD {
                let mut r = text(StatusCode::OK, "");
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                r
            } else {
                json(StatusCode::OK, &Value::Array(docs))
            };
            r.headers_mut().insert("total", HeaderValue::from(total));
            Ok(r)
        }
        (["devices", id], &Method::DELETE) => delete_device(acs, id).await,
        (["devices", _], _) => Err(NbiError::MethodNotAllowed("DELETE")),
        (["devices", id, "tasks"], &Method::POST) => {
            let body = read_body(req).await?;
            post_task(acs, id, &body, &q).await
        }
        (["devices", _, "tasks"], _) => Err(NbiError::MethodNotAllowed("POST")),
        (["devices", id, "tags", tag], &Method::POST) => set_tag(acs, id, tag, true).await,
        (["devices", id, "tags", tag], &Method::DELETE) => set_tag(acs, id, tag, false).await,
        (["devices", _, "tags", _], _) => Err(NbiError::MethodNotAllowed("POST, DELETE")),
        (["tasks", id], &Method::DELETE) => delete_task(acs, id).await,
        (["tasks", _], _) => Err(NbiError::MethodNotAllowed("DELETE")),
        (["tasks", id, "retry"], &Method::POST) => retry_task(acs, id).await,
        (["tasks", _, "retry"], _) => Err(NbiError::MethodNotAllowed("POST")),
        (["faults", id], &Method::DELETE) => delete_fault(acs, id).await,
        (["faults", _], _) => Err(NbiError::MethodNotAllowed("DELETE")),
        _ => Err(NbiError::NotFound("404 Not Found".into())),
    }
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, NbiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(NbiError::TooLarge);
    }
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(NbiError::TooLarge),
        Err(e) => Err(NbiError::BadRequest(format!(
            "reading the request body failed: {e}"
        ))),
    }
}

/// The matching documents, selected, sorted, paged and projected.
struct Selection {
    filter: Filter,
    sort: Option<Vec<(String, bool)>>,
    skip: usize,
    limit: Option<usize>,
    projection: Option<Vec<String>>,
    total: usize,
    kept: Vec<Value>,
}

fn count_param(q: &Query, key: &str) -> Result<Option<usize>, NbiError> {
    match q.get(key) {
        None | Some("") => Ok(None),
        Some(v) => v.trim().parse::<usize>().map(Some).map_err(|_| {
            NbiError::BadRequest(format!(
                "`{key}` must be a whole number, got `{}`",
                v.chars().take(32).collect::<String>()
            ))
        }),
    }
}

impl Selection {
    fn new(q: &Query) -> Result<Selection, NbiError> {
        let projection = q.get("projection").map(|p| {
            p.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        });
        Ok(Selection {
            filter: query::parse(q.get("query").unwrap_or(""))?,
            sort: q.get("sort").map(query::parse_sort).transpose()?,
            skip: count_param(q, "skip")?.unwrap_or(0),
            // `limit=0` means no limit, as in MongoDB.
            limit: count_param(q, "limit")?.filter(|n| *n > 0),
            projection,
            total: 0,
            kept: Vec::new(),
        })
    }

    /// Whether documents need their parameter tree: something outside the
    /// `_…` attributes is queried, sorted on or projected.
    fn needs_parameters(&self) -> bool {
        self.filter.paths().iter().any(|p| !is_attribute_path(p))
            || self
                .sort
                .as_ref()
                .is_some_and(|s| s.iter().any(|(p, _)| !is_attribute_path(p)))
            || self
                .projection
                .as_ref()
                .is_none_or(|p| p.iter().any(|p| !is_attribute_path(p)))
    }

    fn project(&self, doc: Value, extra: &[(String, bool)]) -> Value {
        match &self.projection {
            None => doc,
            Some(p) if extra.is_empty() => project(&doc, p),
            Some(p) => {
                let mut paths = p.clone();
                paths.extend(extra.iter().map(|(s, _)| s.clone()));
                project(&doc, &paths)
            }
        }
    }

    fn push(&mut self, doc: Value) {
        if !self.filter.matches(&doc) {
            return;
        }
        self.total += 1;
        if let Some(sort) = &self.sort {
            // Sorting needs every match; keep only what is shown or sorted on.
            let kept = self.project(doc, sort);
            self.kept.push(kept);
        } else if self.total > self.skip && self.limit.is_none_or(|l| self.kept.len() < l) {
            let kept = self.project(doc, &[]);
            self.kept.push(kept);
        }
    }

    fn finish(mut self) -> (usize, Vec<Value>) {
        let Some(sort) = self.sort.take() else {
            return (self.total, self.kept);
        };
        self.kept.sort_by(|a, b| query::compare_docs(a, b, &sort));
        let limit = self.limit.unwrap_or(usize::MAX);
        let kept = std::mem::take(&mut self.kept)
            .into_iter()
            .skip(self.skip)
            .take(limit)
            .map(|d| self.project(d, &[]))
            .collect();
        (self.total, kept)
    }
}

/// Tasks GenieACS would still hold: a finished task leaves its collection
/// (done, or deleted), a faulted one stays until retried or deleted.
fn is_visible(t: &Task) -> bool {
    !matches!(t.status, TaskStatus::Done | TaskStatus::Cancelled)
}

async fn collect(
    acs: &Arc<Acs>,
    collection: &str,
    q: &Query,
) -> Result<(usize, Vec<Value>), NbiError> {
    let mut sel = Selection::new(q)?;
    let acs = acs.clone();
    let collection = collection.to_owned();
    // A scan of the store: off the async workers.
    tokio::task::spawn_blocking(move || -> Result<(usize, Vec<Value>), NbiError> {
        match collection.as_str() {
            "devices" => {
                let with_params = sel.needs_parameters();
                crate::store::each_device(acs.store.as_ref(), |d| {
                    let params = if with_params {
                        Some(acs.store.parameters(&d.id, "")?)
                    } else {
                        None
                    };
                    sel.push(device_document(&d, params.as_deref()));
                    Ok(())
                })?;
            }
            "tasks" => {
                crate::store::each_device(acs.store.as_ref(), |d| {
                    for t in acs.store.tasks(&d.id)?.iter().filter(|t| is_visible(t)) {
                        sel.push(document::task_document(t));
                    }
                    Ok(())
                })?;
            }
            _ => {
                for doc in fault_documents(&acs.store.faults(None, usize::MAX)?) {
                    sel.push(doc);
                }
            }
        }
        Ok(sel.finish())
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "NBI scan failed");
        NbiError::Internal
    })?
}

fn load_device(acs: &Acs, id: &str) -> Result<DeviceRecord, NbiError> {
    acs.store
        .device(id)?
        .ok_or_else(|| NbiError::NotFound("No such device".into()))
}

/// `POST /devices/{id}/tasks[?connection_request][&timeout=ms]`.
async fn post_task(acs: &Arc<Acs>, id: &str, body: &[u8], q: &Query) -> Result<Reply, NbiError> {
    // GenieACS looks only at whether the parameter is there.
    let want_cr = q.get("connection_request").is_some();
    let timeout_ms = match count_param(q, "timeout")? {
        None | Some(0) => DEFAULT_TIMEOUT_MS,
        Some(n) => (n as u64).min(MAX_TIMEOUT_MS),
    };
    let device = load_device(acs, id)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        if !want_cr {
            return Err(NbiError::BadRequest("the request has no task".into()));
        }
        // No task: only the connection request.
        let r = service::poke(acs, &device, false).await;
        return Ok(if r.ok {
            text(StatusCode::OK, "")
        } else {
            text(StatusCode::GATEWAY_TIMEOUT, &r.detail)
        });
    }
    let task: Value = serde_json::from_slice(body).map_err(|e| {
        NbiError::BadRequest(format!(
            "the task is not valid JSON: {}",
            crate::api::json_error_without_values(&e)
        ))
    })?;
    let ops_body = tasks::translate(&task).map_err(|e| NbiError::BadRequest(e.to_string()))?;
    let parsed = crate::api::tasks::parse_task_for(acs, &device, &ops_body)
        .map_err(|e| NbiError::BadRequest(e.message().to_owned()))?;
    let (task, cr) =
        service::queue_task(acs, &device, parsed.request, parsed.name, want_cr).await?;
    if !want_cr || cr.as_ref().is_some_and(|r| !r.ok) {
        return Ok(json(StatusCode::ACCEPTED, &document::task_document(&task)));
    }
    let task = service::wait_for_task(acs, task.id, Duration::from_millis(timeout_ms))
        .await?
        .unwrap_or(task);
    let status = if task.status == TaskStatus::Done {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok(json(status, &document::task_document(&task)))
}

async fn set_tag(acs: &Acs, id: &str, tag: &str, add: bool) -> Result<Reply, NbiError> {
    if tag.is_empty() || tag.chars().count() > MAX_TAG || tag.chars().any(char::is_control) {
        return Err(NbiError::BadRequest(format!(
            "a tag is 1 to {MAX_TAG} characters without control characters"
        )));
    }
    let mut device = load_device(acs, id)?;
    let had = device.tags.iter().any(|t| t == tag);
    if add && !had {
        device.tags.push(tag.to_owned());
        device.tags.sort();
    } else if !add && had {
        device.tags.retain(|t| t != tag);
    } else {
        return Ok(text(StatusCode::OK, ""));
    }
    acs.store.put_device(&device)?;
    acs.store.sync().await?;
    Ok(text(StatusCode::OK, ""))
}

async fn delete_device(acs: &Acs, id: &str) -> Result<Reply, NbiError> {
    if !acs.store.delete_device(id)? {
        return Err(NbiError::NotFound("No such device".into()));
    }
    acs.store.sync().await?;
    tracing::info!(device = %id, "device deleted through the NBI");
    Ok(text(StatusCode::OK, ""))
}

fn visible_task(acs: &Acs, id: &str) -> Result<Task, NbiError> {
    document::parse_task_object_id(id)
        .map(|n| acs.store.task(n))
        .transpose()?
        .flatten()
        .filter(is_visible)
        .ok_or_else(|| NbiError::NotFound("Task not found".into()))
}

/// Drops the fault records of a task.
fn delete_task_faults(acs: &Acs, task: &Task) -> Result<(), StoreError> {
    for f in acs.store.faults(Some(&task.device_id), usize::MAX)? {
        if f.task_id == Some(task.id) {
            acs.store.delete_fault(f.id)?;
        }
    }
    Ok(())
}

/// A faulted task leaves GenieACS's collection when deleted: here it is
/// marked cancelled (the record stays for the Ops API's history).
fn forget_failed(acs: &Acs, task: &Task) -> Result<(), StoreError> {
    let mut t = task.clone();
    t.status = TaskStatus::Cancelled;
    t.updated_ms = now_ms(SystemTime::now());
    acs.store.put_task(&t)
}

/// `DELETE /tasks/{id}`.
async fn delete_task(acs: &Acs, id: &str) -> Result<Reply, NbiError> {
    let task = visible_task(acs, id)?;
    if task.status == TaskStatus::Failed {
        forget_failed(acs, &task)?;
    } else {
        service::withdraw_task(acs, &task)
            .await
            .map_err(|e| match e {
                WithdrawError::Store(e) => NbiError::from(e),
                e => NbiError::Conflict(e.to_string()),
            })?;
    }
    delete_task_faults(acs, &task)?;
    acs.store.sync().await?;
    Ok(text(StatusCode::OK, ""))
}

/// `POST /tasks/{id}/retry`: a faulted task is queued again (same id),
/// its faults cleared.
async fn retry_task(acs: &Acs, id: &str) -> Result<Reply, NbiError> {
    let mut task = visible_task(acs, id)?;
    delete_task_faults(acs, &task)?;
    if task.status == TaskStatus::Failed {
        task.status = TaskStatus::Pending;
        task.attempts = 0;
        task.fault = None;
        task.response = None;
        task.updated_ms = now_ms(SystemTime::now());
        acs.store.put_task(&task)?;
    }
    acs.store.sync().await?;
    if task.status == TaskStatus::Pending {
        acs.sessions.offer_task(&task).await;
    }
    Ok(text(StatusCode::OK, ""))
}

/// `DELETE /faults/{device}:{channel}`: every record behind that fault;
/// a task's fault takes the faulted task with it, as in GenieACS.
async fn delete_fault(acs: &Acs, id: &str) -> Result<Reply, NbiError> {
    let Some((device, _)) = id.split_once(':') else {
        return Err(NbiError::NotFound("Fault not found".into()));
    };
    let matching: Vec<FaultRecord> = acs
        .store
        .faults(Some(device), usize::MAX)?
        .into_iter()
        .filter(|f| fault_object_id(f) == id)
        .collect();
    if matching.is_empty() {
        return Err(NbiError::NotFound("Fault not found".into()));
    }
    for f in &matching {
        acs.store.delete_fault(f.id)?;
    }
    if let Some(task_id) = matching.iter().find_map(|f| f.task_id) {
        if let Some(task) = acs.store.task(task_id)? {
            if task.status == TaskStatus::Failed {
                forget_failed(acs, &task)?;
            }
        }
    }
    acs.store.sync().await?;
    Ok(text(StatusCode::OK, ""))
}
