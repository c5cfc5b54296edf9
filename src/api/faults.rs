//! Fault routes: list, and clear-and-retry.

use http::StatusCode;
use serde_json::{Value, json};

use super::tasks::task_view;
use super::{ApiError, ApiResult, Query, json_response, rfc3339};
use crate::app::Acs;
use crate::app::now_ms;
use crate::store::{FaultRecord, TaskAction, TaskRequest, TaskStatus};

fn fault_view(f: &FaultRecord) -> Value {
    json!({
        "id": f.id,
        "device_id": f.device_id,
        "at": rfc3339(f.at_ms),
        "source": f.source,
        "code": f.code,
        "message": f.message,
        "rpc": f.rpc,
        "task_id": f.task_id,
    })
}

/// `GET /api/v1/faults?device=&limit=`.
pub fn list(acs: &Acs, q: &Query) -> ApiResult {
    let limit = q.limit("limit", 100, 1000)?;
    let faults = acs
        .store
        .faults(q.get("device"), limit)
        .map_err(ApiError::internal)?;
    let out: Vec<Value> = faults.iter().map(fault_view).collect();
    Ok(json_response(StatusCode::OK, &json!({ "faults": out })))
}

/// `DELETE /api/v1/faults/{id}`: clears the fault and retries what
/// failed — the task again (as a new task), or a reprovision.
pub async fn retry(acs: &Acs, id: &str) -> ApiResult {
    let fault_id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("fault id `{id}` is not a number")))?;
    let fault = acs
        .store
        .fault(fault_id)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no fault {fault_id}")))?;
    let now = now_ms(std::time::SystemTime::now());
    let store = &acs.store;
    let pending_exists = |request: &TaskRequest| -> Result<bool, ApiError> {
        Ok(store
            .tasks(&fault.device_id)
            .map_err(ApiError::internal)?
            .iter()
            .any(|t| &t.request == request && t.status.is_runnable()))
    };
    let mut retry_task = None;
    if let Some(task_id) = fault.task_id {
        if let Some(old) = store.task(task_id).map_err(ApiError::internal)? {
            if old.status == TaskStatus::Failed && !pending_exists(&old.request)? {
                retry_task = Some(
                    store
                        .insert_task(&fault.device_id, old.request.clone(), &old.name, now)
                        .map_err(ApiError::internal)?,
                );
            }
        }
    } else if fault.source == "provisioning" {
        let request = TaskRequest::Action(TaskAction::Reprovision);
        if !pending_exists(&request)? {
            retry_task = Some(
                store
                    .insert_task(&fault.device_id, request, "reprovision", now)
                    .map_err(ApiError::internal)?,
            );
        }
    }
    store.delete_fault(fault_id).map_err(ApiError::internal)?;
    store.sync().await.map_err(ApiError::internal)?;
    if let Some(t) = &retry_task {
        acs.sessions.offer_task(t).await;
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "deleted": fault_view(&fault),
            "retry_task": retry_task.as_ref().map(task_view),
        }),
    ))
}
