//! Task routes: queue a named task (checked before anything is queued),
//! list, read, cancel, and wait for a task to finish.
//!
//! A task body names the task and its arguments, e.g.
//! `{"name": "setParameterValues", "parameterValues": [["Device.WiFi.SSID.1.SSID", "Maison"]]}`.
//! The raw codec form of an RPC (`{"GetParameterValues": {"names": [...]}}`)
//! is accepted too, for tools written against it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::devices::{CrView, load_device};
use super::mask::mask_body;
use super::{ApiError, ApiResult, Query, json_error_without_values, json_response, rfc3339};
use crate::app::service::{self, WithdrawError, withdraw_task};
use crate::app::{Acs, now_ms};
use crate::cwmp::path::{PathKind, check_path, check_value};
use crate::cwmp::rpc::{
    AddObject, DeleteObject, Download, FactoryReset, GetParameterNames, GetParameterValues,
    Password, Reboot, SetParameterValues,
};
use crate::cwmp::{Body, ParameterValue, ValueType};
use crate::session::is_queueable;
use crate::store::Role;
use crate::store::{DeviceRecord, Task, TaskRequest};

/// Longest `wait` accepted, seconds.
pub const MAX_WAIT_S: u64 = 120;

/// Task names the API accepts.
pub const TASK_NAMES: [&str; 9] = [
    "getParameterValues",
    "getParameterNames",
    "setParameterValues",
    "addObject",
    "deleteObject",
    "refresh",
    "reboot",
    "factoryReset",
    "download",
];

/// A checked task, ready to queue.
#[derive(Debug, PartialEq)]
pub struct ParsedTask {
    pub name: &'static str,
    pub request: TaskRequest,
}

/// One value of `setParameterValues`: `[path, value]`, `[path, value,
/// type]` or `{"name", "value", "type"}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum ValueArg {
    Pair(String, String),
    Triple(String, String, String),
    Object {
        name: String,
        value: String,
        #[serde(rename = "type", default)]
        kind: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GpvArgs {
    #[allow(dead_code)]
    name: String,
    parameter_names: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GpnArgs {
    #[allow(dead_code)]
    name: String,
    parameter_path: String,
    #[serde(default)]
    next_level: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SpvArgs {
    #[allow(dead_code)]
    name: String,
    parameter_values: Vec<ValueArg>,
    #[serde(default)]
    parameter_key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ObjectArgs {
    #[allow(dead_code)]
    name: String,
    object_name: String,
    #[serde(default)]
    parameter_key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CommandKeyArgs {
    #[allow(dead_code)]
    name: String,
    #[serde(default)]
    command_key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NameOnly {
    #[allow(dead_code)]
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DownloadArgs {
    #[allow(dead_code)]
    name: String,
    file_type: String,
    url: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    file_size: u64,
    #[serde(default)]
    target_file_name: String,
    #[serde(default)]
    delay_seconds: u32,
    #[serde(default)]
    success_url: String,
    #[serde(default)]
    failure_url: String,
    #[serde(default)]
    command_key: String,
}

fn args<T: for<'de> Deserialize<'de>>(name: &str, body: &Value) -> Result<T, ApiError> {
    serde_json::from_value(body.clone())
        .map_err(|e| ApiError::bad_request(format!("{name}: {}", json_error_without_values(&e))))
}

/// The paths of a request must use the device's data model.
fn check_root(field: &str, path: &str, root: Option<&str>) -> Result<(), ApiError> {
    if let Some(root) = root {
        if !path.starts_with(root) {
            return Err(ApiError::bad_request(format!(
                "{field}: `{}` is not in this device's data model, which starts with `{root}`",
                shorten(path)
            )));
        }
    }
    Ok(())
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s.to_owned()
    }
}

fn path_arg(field: &str, path: &str, kind: PathKind, root: Option<&str>) -> Result<(), ApiError> {
    check_path(path, kind)
        .map_err(|e| ApiError::bad_request(format!("{field}: `{}`: {e}", shorten(path))))?;
    check_root(field, path, root)
}

/// At most this many names or values in one task.
const MAX_ITEMS: usize = 1024;

/// Checks a task body and builds the request. `root` is the device's
/// data-model root when known; `known_type` gives the cached type of a
/// parameter (for `setParameterValues` values given without one).
pub fn parse_task(
    body: &Value,
    root: Option<&str>,
    known_type: &dyn Fn(&str) -> Option<ValueType>,
) -> Result<ParsedTask, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::bad_request(
            "the body must be a JSON object such as {\"name\": \"reboot\"}",
        ));
    };
    let Some(name_value) = obj.get("name") else {
        return parse_raw_rpc(body);
    };
    let Some(name) = name_value.as_str() else {
        return Err(ApiError::bad_request("name: must be a string"));
    };
    let Some(name) = TASK_NAMES.iter().copied().find(|n| *n == name) else {
        return Err(ApiError::bad_request(format!(
            "name: unknown task `{}`; one of {}",
            shorten(name),
            TASK_NAMES.join(", ")
        )));
    };
    let rpc: Body = match name {
        "getParameterValues" => {
            let a: GpvArgs = args(name, body)?;
            if a.parameter_names.is_empty() || a.parameter_names.len() > MAX_ITEMS {
                return Err(ApiError::bad_request(format!(
                    "parameterNames: give 1 to {MAX_ITEMS} paths"
                )));
            }
            for (i, p) in a.parameter_names.iter().enumerate() {
                path_arg(&format!("parameterNames[{i}]"), p, PathKind::Any, root)?;
            }
            GetParameterValues {
                names: a.parameter_names,
            }
            .into()
        }
        "refresh" => {
            let a: ObjectArgs = args(name, body)?;
            if !a.parameter_key.is_empty() {
                return Err(ApiError::bad_request(
                    "parameterKey: not an argument of refresh",
                ));
            }
            path_arg("objectName", &a.object_name, PathKind::Any, root)?;
            GetParameterValues {
                names: vec![a.object_name],
            }
            .into()
        }
        "getParameterNames" => {
            let a: GpnArgs = args(name, body)?;
            path_arg("parameterPath", &a.parameter_path, PathKind::Any, root)?;
            GetParameterNames {
                parameter_path: a.parameter_path,
                next_level: a.next_level,
            }
            .into()
        }
        "setParameterValues" => {
            let a: SpvArgs = args(name, body)?;
            if a.parameter_values.is_empty() || a.parameter_values.len() > MAX_ITEMS {
                return Err(ApiError::bad_request(format!(
                    "parameterValues: give 1 to {MAX_ITEMS} values"
                )));
            }
            parameter_key_arg(&a.parameter_key)?;
            let mut parameters = Vec::with_capacity(a.parameter_values.len());
            for (i, v) in a.parameter_values.into_iter().enumerate() {
                let field = format!("parameterValues[{i}]");
                let (path, value, kind) = match v {
                    ValueArg::Pair(p, v) => (p, v, None),
                    ValueArg::Triple(p, v, t) => (p, v, Some(t)),
                    ValueArg::Object { name, value, kind } => (name, value, kind),
                };
                path_arg(&field, &path, PathKind::Parameter, root)?;
                if parameters.iter().any(|p: &ParameterValue| p.name == path) {
                    return Err(ApiError::bad_request(format!(
                        "{field}: `{}` is set twice",
                        shorten(&path)
                    )));
                }
                let kind = match kind {
                    Some(t) => {
                        let k = ValueType::from_name(&t);
                        if matches!(k, ValueType::Other(_)) || t.trim().is_empty() {
                            return Err(ApiError::bad_request(format!(
                                "{field}: type `{}` is not an XML Schema type such as xsd:string, xsd:boolean, xsd:unsignedInt",
                                shorten(&t)
                            )));
                        }
                        k
                    }
                    None => known_type(&path).unwrap_or(ValueType::String),
                };
                check_value(&path, &kind, &value)
                    .map_err(|e| ApiError::bad_request(format!("{field}: {e}")))?;
                parameters.push(ParameterValue::new(path, value, kind));
            }
            SetParameterValues {
                parameters,
                parameter_key: a.parameter_key,
            }
            .into()
        }
        "addObject" | "deleteObject" => {
            let a: ObjectArgs = args(name, body)?;
            path_arg("objectName", &a.object_name, PathKind::Object, root)?;
            parameter_key_arg(&a.parameter_key)?;
            if name == "addObject" {
                AddObject {
                    object_name: a.object_name,
                    parameter_key: a.parameter_key,
                }
                .into()
            } else {
                let instance = a
                    .object_name
                    .trim_end_matches('.')
                    .rsplit('.')
                    .next()
                    .unwrap_or("");
                if instance.is_empty() || !instance.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ApiError::bad_request(
                        "objectName: deleteObject needs an instance path ending in its number, e.g. `Device.WiFi.SSID.4.`",
                    ));
                }
                DeleteObject {
                    object_name: a.object_name,
                    parameter_key: a.parameter_key,
                }
                .into()
            }
        }
        "reboot" => {
            let a: CommandKeyArgs = args(name, body)?;
            command_key_arg(&a.command_key)?;
            Reboot {
                command_key: a.command_key,
            }
            .into()
        }
        "factoryReset" => {
            let _: NameOnly = args(name, body)?;
            FactoryReset {}.into()
        }
        "download" => {
            let a: DownloadArgs = args(name, body)?;
            let standard = [
                "1 Firmware Upgrade Image",
                "2 Web Content",
                "3 Vendor Configuration File",
                "4 Tone File",
                "5 Ringer File",
            ];
            if !standard.contains(&a.file_type.as_str()) && !a.file_type.starts_with("X ") {
                return Err(ApiError::bad_request(format!(
                    "fileType: `{}` is not one of {} or a vendor type `X <OUI> <name>`",
                    shorten(&a.file_type),
                    standard.join(", ")
                )));
            }
            // `/files/…`: one of the ACS's own files, completed with the
            // ACS's address when sent (`server::cwmp::absolute_link`).
            let url_ok = a.url.starts_with("/files/")
                || reqwest::Url::parse(&a.url).is_ok_and(|u| {
                    matches!(u.scheme(), "http" | "https" | "ftp") && u.host().is_some()
                });
            if !url_ok || a.url.len() > 256 {
                return Err(ApiError::bad_request(
                    "url: must be an http, https or ftp URL of at most 256 characters",
                ));
            }
            command_key_arg(&a.command_key)?;
            Download {
                command_key: a.command_key,
                file_type: a.file_type,
                url: a.url,
                username: a.username,
                password: Password(a.password),
                file_size: a.file_size,
                target_file_name: a.target_file_name,
                delay_seconds: a.delay_seconds,
                success_url: a.success_url,
                failure_url: a.failure_url,
            }
            .into()
        }
        _ => {
            return Err(ApiError::bad_request(format!(
                "name: unknown task `{name}`"
            )));
        }
    };
    Ok(ParsedTask {
        name,
        request: TaskRequest::Rpc(rpc),
    })
}

fn parameter_key_arg(k: &str) -> Result<(), ApiError> {
    if k.len() > 32 {
        return Err(ApiError::bad_request(
            "parameterKey: at most 32 characters (CWMP string(32))",
        ));
    }
    Ok(())
}

fn command_key_arg(k: &str) -> Result<(), ApiError> {
    if k.len() > 32 {
        return Err(ApiError::bad_request(
            "commandKey: at most 32 characters (CWMP string(32))",
        ));
    }
    Ok(())
}

/// The codec's own JSON form of an RPC.
fn parse_raw_rpc(body: &Value) -> Result<ParsedTask, ApiError> {
    let request: Body = serde_json::from_value(body.clone()).map_err(|e| {
        ApiError::bad_request(format!(
            "name: missing; the body is {{\"name\": \"<task>\", ...}} with <task> one of {} (or an RPC in the codec form such as {{\"GetParameterValues\": {{\"names\": [\"Device.\"]}}}}): {}",
            TASK_NAMES.join(", "),
            json_error_without_values(&e)
        ))
    })?;
    if !is_queueable(&request) {
        return Err(ApiError::bad_request(format!(
            "{} is not a request the ACS can send to a CPE",
            request.name()
        )));
    }
    Ok(ParsedTask {
        name: "",
        request: TaskRequest::Rpc(request),
    })
}

/// A task as the API shows it (secrets masked).
pub fn task_view(task: &Task) -> Value {
    let mut t = task.clone();
    if let Some(body) = t.request.rpc_mut() {
        mask_body(body);
    }
    if let Some(r) = t.response.as_mut() {
        mask_body(r);
    }
    let name = crate::app::apply::task_name(&t);
    json!({
        "id": t.id,
        "device_id": t.device_id,
        "name": name,
        "rpc": t.request.name(),
        "request": t.request,
        "status": t.status,
        "created": rfc3339(t.created_ms),
        "updated": rfc3339(t.updated_ms),
        "attempts": t.attempts,
        "response": t.response,
        "fault": t.fault,
        "outcome": t.outcome,
    })
}

/// `GET /api/v1/devices/{id}/tasks`.
pub fn list(acs: &Acs, id: &str) -> ApiResult {
    load_device(acs, id)?;
    let tasks = acs.store.tasks(id).map_err(ApiError::internal)?;
    let out: Vec<Value> = tasks.iter().map(task_view).collect();
    Ok(json_response(StatusCode::OK, &json!({ "tasks": out })))
}

fn parse_task_id(id: &str) -> Result<u64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_request(format!("task id `{}` is not a number", shorten(id))))
}

fn load_task(acs: &Acs, id: u64) -> Result<Task, ApiError> {
    acs.store
        .task(id)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no task {id}")))
}

/// `GET /api/v1/tasks/{id}`.
pub fn get(acs: &Acs, id: &str) -> ApiResult {
    let task = load_task(acs, parse_task_id(id)?)?;
    Ok(json_response(StatusCode::OK, &task_view(&task)))
}

/// `DELETE /api/v1/tasks/{id}`: only a task not yet sent.
pub async fn cancel(acs: &Acs, id: &str) -> ApiResult {
    let id = parse_task_id(id)?;
    let task = load_task(acs, id)?;
    if task.status.is_finished() {
        return Err(ApiError::conflict(format!(
            "task {id} is already {}",
            serde_json::to_value(task.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        )));
    }
    let task = withdraw_task(acs, &task).await.map_err(|e| match e {
        WithdrawError::Store(e) => ApiError::internal(e),
        e => ApiError::conflict(e.to_string()),
    })?;
    Ok(json_response(StatusCode::OK, &task_view(&task)))
}

/// Waits up to `wait_s` for a task to finish; returns its latest state.
pub async fn wait_for_task(acs: &Acs, task_id: u64, wait_s: u64) -> Result<Task, ApiError> {
    service::wait_for_task(acs, task_id, Duration::from_secs(wait_s))
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no task {task_id}")))
}

/// Checks a task body against a device: its data-model root, and the
/// cached types of the parameters it sets.
pub fn parse_task_for(
    acs: &Acs,
    device: &DeviceRecord,
    body: &Value,
) -> Result<ParsedTask, ApiError> {
    let cached = acs
        .store
        .parameters(&device.id, "")
        .map_err(ApiError::internal)?;
    let known_type = |path: &str| -> Option<ValueType> {
        cached
            .binary_search_by(|(n, _)| n.as_str().cmp(path))
            .ok()
            .and_then(|i| cached[i].1.value.as_ref().map(|v| v.kind.clone()))
    };
    match with_file(acs, device, body)? {
        Some(expanded) => parse_task(&expanded, device.root.as_deref(), &known_type),
        None => parse_task(body, device.root.as_deref(), &known_type),
    }
}

/// A `download` naming one of the ACS's files (`"file": ID`) gets its
/// URL (a link signed for this device, or the file's own URL when it is
/// served elsewhere), size and name; the file type defaults to a firmware
/// image. `None` for any other body.
fn with_file(acs: &Acs, device: &DeviceRecord, body: &Value) -> Result<Option<Value>, ApiError> {
    let Some(obj) = body.as_object() else {
        return Ok(None);
    };
    if obj.get("name").and_then(Value::as_str) != Some("download") {
        return Ok(None);
    }
    let Some(file) = obj.get("file") else {
        return Ok(None);
    };
    let id = file
        .as_str()
        .ok_or_else(|| ApiError::bad_request("file: the id of a file of /api/v1/files"))?;
    if obj.contains_key("url") {
        return Err(ApiError::bad_request("give `file` or `url`, not both"));
    }
    let f = acs
        .store
        .file(id)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::bad_request(format!("file: no file {id} in /api/v1/files")))?;
    let url = crate::firmware::files::download_url(
        acs.provisioning.file_link_key(),
        &f,
        &device.id,
        now_ms(SystemTime::now()),
    );
    let mut out = obj.clone();
    out.remove("file");
    out.insert("url".into(), Value::String(url));
    out.insert("fileSize".into(), Value::from(f.size));
    out.entry("targetFileName")
        .or_insert_with(|| Value::String(f.name.clone()));
    out.entry("fileType")
        .or_insert_with(|| Value::String("1 Firmware Upgrade Image".into()));
    Ok(Some(Value::Object(out)))
}

/// `POST /api/v1/devices/{id}/tasks?connection_request=&wait=`.
///
/// A technician may queue a reboot; any other task needs the ops role.
pub async fn create(acs: &Arc<Acs>, id: &str, body: Value, q: &Query, role: Role) -> ApiResult {
    let wait_s = q.wait_s(MAX_WAIT_S)?;
    let poke = q.flag("connection_request", false)?;
    let device = load_device(acs, id)?;
    let parsed = parse_task_for(acs, &device, &body)?;
    let reboot = parsed
        .request
        .rpc()
        .is_some_and(|b| matches!(b, crate::cwmp::Body::Reboot(_)));
    if role < Role::Ops && !reboot {
        return Err(super::access::forbidden(Role::Ops));
    }
    let (task, cr) = service::queue_task(acs, &device, parsed.request, parsed.name, poke)
        .await
        .map_err(ApiError::internal)?;
    let connection_request = cr.map(CrView::from);
    let task = wait_for_task(acs, task.id, wait_s).await?;
    let status = if task.status.is_finished() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(json_response(
        status,
        &json!({
            "task": task_view(&task),
            "connection_request": connection_request,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<ParsedTask, String> {
        parse_task(&v, Some("Device."), &|p: &str| {
            (p == "Device.ManagementServer.PeriodicInformInterval")
                .then_some(ValueType::UnsignedInt)
        })
        .map_err(|e| e.message().to_owned())
    }

    fn rpc(t: ParsedTask) -> Body {
        match t.request {
            TaskRequest::Rpc(b) => b,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_task_name_parses() {
        let ok = [
            json!({"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo.", "Device.WiFi.SSID.1.SSID"]}),
            json!({"name": "getParameterNames", "parameterPath": "Device.WiFi.", "nextLevel": true}),
            json!({"name": "setParameterValues", "parameterValues": [["Device.WiFi.SSID.1.SSID", "Maison"], ["Device.WiFi.SSID.1.Enable", "true", "xsd:boolean"], {"name": "Device.ManagementServer.PeriodicInformInterval", "value": "300"}]}),
            json!({"name": "addObject", "objectName": "Device.WiFi.SSID."}),
            json!({"name": "deleteObject", "objectName": "Device.WiFi.SSID.4."}),
            json!({"name": "refresh", "objectName": "Device.Hosts."}),
            json!({"name": "reboot"}),
            json!({"name": "factoryReset"}),
            json!({"name": "download", "fileType": "1 Firmware Upgrade Image", "url": "http://fw.example.net/x.bin", "password": "s3cret"}),
        ];
        for (v, name) in ok.iter().zip(TASK_NAMES) {
            let t = parse(v.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(t.name, name);
        }
        // Types: given, cached, default string.
        let Body::SetParameterValues(spv) = rpc(parse(ok[2].clone()).unwrap()) else {
            panic!()
        };
        assert_eq!(spv.parameters[0].kind, ValueType::String);
        assert_eq!(spv.parameters[1].kind, ValueType::Boolean);
        assert_eq!(spv.parameters[2].kind, ValueType::UnsignedInt);
        let Body::GetParameterValues(g) = rpc(parse(ok[5].clone()).unwrap()) else {
            panic!()
        };
        assert_eq!(g.names, ["Device.Hosts."]);
        // The raw codec form still works.
        let raw = parse(json!({"Reboot": {"command_key": "k"}})).unwrap();
        assert_eq!(raw.name, "");
    }

    #[test]
    fn bad_input_names_the_field() {
        for (body, field) in [
            (
                json!({"name": "frobnicate"}),
                "name: unknown task `frobnicate`",
            ),
            (json!({"name": 3}), "name: must be a string"),
            (json!([1]), "JSON object"),
            (
                json!({"name": "getParameterValues"}),
                "missing field `parameterNames`",
            ),
            (
                json!({"name": "getParameterValues", "parameterNames": []}),
                "parameterNames",
            ),
            (
                json!({"name": "getParameterValues", "parameterNames": ["Device..X"]}),
                "parameterNames[0]",
            ),
            (
                json!({"name": "getParameterValues", "parameterNames": ["InternetGatewayDevice.X."]}),
                "data model",
            ),
            (
                json!({"name": "reboot", "delay": 5}),
                "unknown field `delay`",
            ),
            (
                json!({"name": "setParameterValues", "parameterValues": [["Device.WiFi.SSID.1.SSID", "x".repeat(33)]]}),
                "parameterValues[0]: an SSID must be 1 to 32 bytes",
            ),
            (
                json!({"name": "setParameterValues", "parameterValues": [["Device.WiFi.SSID.1.", "x"]]}),
                "parameterValues[0]",
            ),
            (
                json!({"name": "setParameterValues", "parameterValues": [["Device.X.Enable", "maybe", "xsd:boolean"]]}),
                "not a valid boolean",
            ),
            (
                json!({"name": "setParameterValues", "parameterValues": [["Device.X.A", "1", "xsd:float"]]}),
                "type `xsd:float`",
            ),
            (
                json!({"name": "setParameterValues", "parameterValues": [["Device.X.A", "1"], ["Device.X.A", "2"]]}),
                "set twice",
            ),
            (
                json!({"name": "deleteObject", "objectName": "Device.WiFi.SSID."}),
                "instance path",
            ),
            (
                json!({"name": "addObject", "objectName": "Device.WiFi.SSID"}),
                "objectName",
            ),
            (
                json!({"name": "download", "fileType": "9 Nope", "url": "http://x.example/"}),
                "fileType",
            ),
            (
                json!({"name": "download", "fileType": "1 Firmware Upgrade Image", "url": "file:///etc/passwd"}),
                "url",
            ),
            (
                json!({"InformResponse": {"max_envelopes": 1}}),
                "not a request the ACS can send",
            ),
            (json!({"Frobnicate": {}}), "name: missing"),
        ] {
            let e = parse(body.clone()).expect_err(&body.to_string());
            assert!(e.contains(field), "{body}: {e}");
        }
    }

    #[test]
    fn secrets_stay_out_of_errors() {
        let e = parse(json!({"name": "setParameterValues", "parameterValues": [["Device.WiFi.AccessPoint.1.Security.KeyPassphrase", "short1"]]}))
            .unwrap_err();
        assert!(!e.contains("short1"), "{e}");
        let e = parse(json!({"name": "download", "fileType": "1 Firmware Upgrade Image", "url": "http://x.example/", "password": 123456789}))
            .unwrap_err();
        assert!(!e.contains("123456789"), "{e}");
    }
}
