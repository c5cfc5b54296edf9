//! Technician tools: what provisioning would push, reprovision now, and
//! connection requests.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{Value, json};

use super::devices::{CrView, cached_values, effective_profile, load_device, not_discovered};
use super::mask::mask_value;
use super::tasks::{MAX_WAIT_S, task_view, wait_for_task};
use super::{ApiError, ApiResult, Query, json_response};
use crate::app::Acs;
use crate::app::now_ms;
use crate::app::provisioning::PreviewError;
use crate::app::service::poke;
use crate::store::{TaskAction, TaskRequest};

fn erp_unavailable(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "erpnext_unavailable",
        message,
    )
}

/// `POST /api/v1/devices/{id}/connection-request`.
pub async fn connection_request(acs: &Arc<Acs>, id: &str) -> ApiResult {
    let device = load_device(acs, id)?;
    let r = poke(acs, &device, false).await;
    if !r.sent && r.detail.starts_with("rate-limited") {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            r.detail,
        ));
    }
    Ok(json_response(StatusCode::OK, &CrView::from(r)))
}

/// `POST /api/v1/devices/{id}/reprovision?wait=&connection_request=`.
pub async fn reprovision(acs: &Arc<Acs>, id: &str, q: &Query) -> ApiResult {
    let wait_s = q.wait_s(MAX_WAIT_S)?;
    let send_cr = q.flag("connection_request", true)?;
    let device = load_device(acs, id)?;
    if !acs.provisioning.enabled() {
        return Err(ApiError::conflict(
            "provisioning is off on this ACS (ACS_PROVISIONING=off)",
        ));
    }
    if acs
        .provisioning
        .erp
        .as_ref()
        .is_some_and(|c| c.breaker_open())
    {
        return Err(erp_unavailable(
            "ERPNext is failing and calls to it are paused; retry in a minute",
        ));
    }
    acs.provisioning.forget_cached(&device);
    let existing = acs
        .store
        .tasks(id)
        .map_err(ApiError::internal)?
        .into_iter()
        .find(|t| {
            t.request == TaskRequest::Action(TaskAction::Reprovision)
                && t.status == crate::store::TaskStatus::Pending
        });
    let task = match existing {
        Some(t) => t,
        None => {
            let t = acs
                .store
                .insert_task(
                    id,
                    TaskRequest::Action(TaskAction::Reprovision),
                    "reprovision",
                    now_ms(std::time::SystemTime::now()),
                )
                .map_err(ApiError::internal)?;
            acs.store.sync().await.map_err(ApiError::internal)?;
            t
        }
    };
    let cr = if send_cr {
        Some(CrView::from(poke(acs, &device, true).await))
    } else {
        None
    };
    action_answer(acs, task.id, wait_s, cr).await
}

/// 200 with the finished task, or 202 with the pending one.
pub async fn action_answer(
    acs: &Acs,
    task_id: u64,
    wait_s: u64,
    connection_request: Option<CrView>,
) -> ApiResult {
    let task = wait_for_task(acs, task_id, wait_s).await?;
    let status = if task.status.is_finished() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok(json_response(
        status,
        &json!({
            "task": task_view(&task),
            "connection_request": connection_request,
        }),
    ))
}

/// `GET /api/v1/devices/{id}/provision`.
pub async fn preview(acs: &Arc<Acs>, id: &str) -> ApiResult {
    let device = load_device(acs, id)?;
    let values = cached_values(acs, id)?;
    let Some((profile, tree)) = effective_profile(acs, &device, &values)? else {
        return Err(not_discovered());
    };
    // An explicit question gets ERPNext's current answer, not a cached one.
    acs.provisioning.forget_cached(&device);
    let p = match acs
        .provisioning
        .preview(&device, &profile, &tree, &values)
        .await
    {
        Ok(p) => p,
        Err(PreviewError::Unresolved) => {
            return Err(ApiError::conflict(
                "no Service Equipment in ERPNext matches this device (serial, MAC or GPON serial)",
            ));
        }
        Err(PreviewError::Ambiguous(c)) => {
            return Err(ApiError::conflict(format!(
                "{} Service Equipment records match this device: {}",
                c.len(),
                c.join(", ")
            )));
        }
        Err(PreviewError::Unavailable(r)) => return Err(erp_unavailable(r)),
        Err(PreviewError::Failed(r)) => {
            return Err(ApiError::new(StatusCode::BAD_GATEWAY, "erpnext_error", r));
        }
    };
    let changes: Vec<Value> = p
        .changes
        .iter()
        .map(|v| {
            json!({
                "name": v.name,
                "value": mask_value(&v.name, &v.value),
                "type": v.kind.as_str(),
                "secret": crate::cwmp::is_secret_parameter(&v.name),
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "device_id": device.id,
            "profile": profile.name,
            "equipment": p.equipment,
            "customer": p.customer,
            "parameter_key": p.parameter_key,
            "up_to_date": changes.is_empty(),
            "changes": changes,
            "invalid": p.invalid,
            "note": p.note,
        }),
    ))
}
