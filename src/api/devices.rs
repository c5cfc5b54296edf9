//! Device, parameter, task and fault routes.

use http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use super::mask::{mask_body, mask_value};
use super::{
    ApiError, ApiResult, Query, decode_cursor, encode_cursor, json_error_without_values,
    json_response,
};
use crate::cwmp::{Body, format_datetime};
use crate::server::Acs;
use crate::server::cwmp::now_ms;
use crate::session::is_queueable;
use crate::store::{DeviceRecord, FaultRecord, Task};

fn rfc3339(ms: u64) -> String {
    format_datetime(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
}

#[derive(Serialize)]
struct EventView<'a> {
    code: &'a str,
    command_key: &'a str,
    at: String,
}

/// A device as the API shows it.
#[derive(Serialize)]
struct DeviceView<'a> {
    id: &'a str,
    manufacturer: &'a str,
    oui: &'a str,
    product_class: &'a str,
    serial_number: &'a str,
    model_name: Option<&'a str>,
    software_version: Option<&'a str>,
    hardware_version: Option<&'a str>,
    cwmp_version: String,
    first_seen: String,
    last_inform: String,
    last_boot: Option<String>,
    last_bootstrap: Option<String>,
    remote_addr: Option<&'a str>,
    connection_request_url: Option<&'a str>,
    parameter_key: Option<&'a str>,
    inform_count: u64,
    session_active: bool,
    provisioning: ProvisioningView<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recent_events: Option<Vec<EventView<'a>>>,
}

/// Provisioning state as Ops sees it (no credentials).
#[derive(Serialize)]
struct ProvisioningView<'a> {
    status: crate::store::ProvisionStatus,
    reason: Option<&'a str>,
    equipment: Option<&'a str>,
    candidates: &'a [String],
    profile: Option<&'a str>,
    mac: Option<&'a str>,
    gpon_serial: Option<&'a str>,
    attempts: u32,
    last_attempt: Option<String>,
    next_attempt: Option<String>,
    provisioned_at: Option<String>,
}

fn provisioning_view(p: &crate::store::ProvisioningState) -> ProvisioningView<'_> {
    ProvisioningView {
        status: p.status,
        reason: p.reason.as_deref(),
        equipment: p.equipment.as_deref(),
        candidates: &p.candidates,
        profile: p.profile.as_deref(),
        mac: p.mac.as_deref(),
        gpon_serial: p.gpon_serial.as_deref(),
        attempts: p.attempts,
        last_attempt: p.last_attempt_ms.map(rfc3339),
        next_attempt: p.next_attempt_ms.map(rfc3339),
        provisioned_at: p.provisioned_ms.map(rfc3339),
    }
}

fn view<'a>(acs: &Acs, d: &'a DeviceRecord, with_events: bool) -> DeviceView<'a> {
    DeviceView {
        id: &d.id,
        manufacturer: &d.identity.manufacturer,
        oui: &d.identity.oui,
        product_class: &d.identity.product_class,
        serial_number: &d.identity.serial_number,
        model_name: d.model_name.as_deref(),
        software_version: d.software_version.as_deref(),
        hardware_version: d.hardware_version.as_deref(),
        cwmp_version: d.cwmp_version.to_string(),
        first_seen: rfc3339(d.first_seen_ms),
        last_inform: rfc3339(d.last_inform_ms),
        last_boot: d.last_boot_ms.map(rfc3339),
        last_bootstrap: d.last_bootstrap_ms.map(rfc3339),
        remote_addr: d.remote_addr.as_deref(),
        connection_request_url: d.connection_request_url.as_deref(),
        parameter_key: d.parameter_key.as_deref(),
        inform_count: d.inform_count,
        session_active: acs.sessions.has_device(&d.id),
        provisioning: provisioning_view(&d.provisioning),
        recent_events: with_events.then(|| {
            d.recent_events
                .iter()
                .map(|e| EventView {
                    code: &e.code,
                    command_key: &e.command_key,
                    at: rfc3339(e.at_ms),
                })
                .collect()
        }),
    }
}

fn load_device(acs: &Acs, id: &str) -> Result<DeviceRecord, ApiError> {
    acs.store
        .device(id)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no device `{id}`")))
}

pub fn list(acs: &Acs, q: &Query) -> ApiResult {
    let limit = q.limit("limit", 50, 1000)?;
    let after = q.get("cursor").map(decode_cursor).transpose()?;
    let devices = acs
        .store
        .list_devices(after.as_deref(), limit)
        .map_err(ApiError::internal)?;
    let next_cursor = (devices.len() == limit)
        .then(|| devices.last().map(|d| encode_cursor(&d.id)))
        .flatten();
    let views: Vec<DeviceView<'_>> = devices.iter().map(|d| view(acs, d, false)).collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "devices": views, "next_cursor": next_cursor }),
    ))
}

pub fn get(acs: &Acs, id: &str) -> ApiResult {
    let d = load_device(acs, id)?;
    Ok(json_response(StatusCode::OK, &view(acs, &d, true)))
}

pub fn parameters(acs: &Acs, id: &str, q: &Query) -> ApiResult {
    load_device(acs, id)?;
    let prefix = q.get("prefix").unwrap_or("");
    let now = now_ms(std::time::SystemTime::now());
    let params = acs
        .store
        .parameters(id, prefix)
        .map_err(ApiError::internal)?;
    let out: Vec<Value> = params
        .iter()
        .map(|(name, p)| {
            let v = p.value.as_ref();
            serde_json::json!({
                "name": name,
                "value": v.map(|v| mask_value(name, &v.value)),
                "type": v.map(|v| v.kind.as_str()),
                "writable": p.writable,
                "updated": v.map(|v| rfc3339(v.updated_ms)),
                "age_s": v.map(|v| now.saturating_sub(v.updated_ms) / 1000),
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "parameters": out }),
    ))
}

fn task_view(task: &Task) -> Value {
    let mut t = task.clone();
    mask_body(&mut t.request);
    if let Some(r) = t.response.as_mut() {
        mask_body(r);
    }
    serde_json::json!({
        "id": t.id,
        "device_id": t.device_id,
        "rpc": t.request.name(),
        "request": t.request,
        "status": t.status,
        "created": rfc3339(t.created_ms),
        "updated": rfc3339(t.updated_ms),
        "attempts": t.attempts,
        "response": t.response,
        "fault": t.fault,
    })
}

pub fn tasks(acs: &Acs, id: &str) -> ApiResult {
    load_device(acs, id)?;
    let tasks = acs.store.tasks(id).map_err(ApiError::internal)?;
    let out: Vec<Value> = tasks.iter().map(task_view).collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "tasks": out }),
    ))
}

pub fn task(acs: &Acs, id: &str) -> ApiResult {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("task id `{id}` is not a number")))?;
    let task = acs
        .store
        .task(id)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no task {id}")))?;
    Ok(json_response(StatusCode::OK, &task_view(&task)))
}

/// Queues an RPC given in the codec's JSON form, e.g.
/// `{"GetParameterValues": {"names": ["Device.DeviceInfo."]}}`. It goes out
/// in the device's open session, if any, or its next one.
pub async fn create_task(acs: &Acs, id: &str, body: Value) -> ApiResult {
    load_device(acs, id)?;
    let request: Body = serde_json::from_value(body).map_err(|e| {
        ApiError::bad_request(format!(
            "body is not an RPC such as {{\"GetParameterValues\": {{\"names\": [\"Device.\"]}}}}: {}",
            json_error_without_values(&e)
        ))
    })?;
    if !is_queueable(&request) {
        return Err(ApiError::bad_request(format!(
            "{} is not a request the ACS can send to a CPE",
            request.name()
        )));
    }
    let now = now_ms(std::time::SystemTime::now());
    let task = acs
        .store
        .insert_task(id, request, now)
        .map_err(ApiError::internal)?;
    acs.store.sync().await.map_err(ApiError::internal)?;
    acs.sessions.offer_task(&task).await;
    Ok(json_response(StatusCode::CREATED, &task_view(&task)))
}

pub fn faults(acs: &Acs, q: &Query) -> ApiResult {
    let limit = q.limit("limit", 100, 1000)?;
    let device = q.get("device");
    let faults: Vec<FaultRecord> = acs
        .store
        .faults(device, limit)
        .map_err(ApiError::internal)?;
    let out: Vec<Value> = faults
        .iter()
        .map(|f| {
            serde_json::json!({
                "id": f.id,
                "device_id": f.device_id,
                "at": rfc3339(f.at_ms),
                "source": f.source,
                "code": f.code,
                "message": f.message,
                "rpc": f.rpc,
                "task_id": f.task_id,
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "faults": out }),
    ))
}
