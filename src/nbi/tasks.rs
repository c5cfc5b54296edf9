//! GenieACS task JSON (what NBI clients POST to `/devices/{id}/tasks`)
//! translated into the Ops API's task body, so that the same checks
//! ([`crate::api::tasks::parse_task`]) and the same queue serve both.

use serde_json::{Map, Value, json};
use thiserror::Error;

/// Why a GenieACS task was refused.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{0}")]
pub struct TaskError(pub String);

fn bad<T>(m: impl Into<String>) -> Result<T, TaskError> {
    Err(TaskError(m.into()))
}

/// Task names the NBI accepts.
pub const NBI_TASK_NAMES: [&str; 9] = [
    "getParameterValues",
    "setParameterValues",
    "refreshObject",
    "addObject",
    "deleteObject",
    "reboot",
    "factoryReset",
    "download",
    "getParameterNames",
];

/// Fields GenieACS itself puts on a task (clients echo them back): ignored.
const GENIEACS_FIELDS: [&str; 4] = ["_id", "device", "timestamp", "expiry"];

fn take_str(obj: &Map<String, Value>, name: &str, field: &str) -> Result<String, TaskError> {
    match obj.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => bad(format!("{name}: `{field}` must be a string")),
        None => bad(format!("{name}: `{field}` is missing")),
    }
}

/// A `setParameterValues` value as text: GenieACS clients send booleans
/// and numbers as JSON values.
fn value_text(name: &str, i: usize, v: &Value) -> Result<String, TaskError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        _ => bad(format!(
            "{name}: parameterValues[{i}]: the value must be a string, number or boolean"
        )),
    }
}

/// The Ops API body for a GenieACS task, or why it cannot be one.
pub fn translate(task: &Value) -> Result<Value, TaskError> {
    let Some(obj) = task.as_object() else {
        return bad("the task must be a JSON object such as {\"name\": \"reboot\"}");
    };
    let name = match obj.get("name") {
        Some(Value::String(n)) => n.as_str(),
        Some(_) => return bad("`name` must be a string"),
        None => return bad("`name` is missing"),
    };
    let Some(name) = NBI_TASK_NAMES.iter().copied().find(|n| *n == name) else {
        return bad(format!(
            "unknown task name `{}`; one of {}",
            name.chars().take(64).collect::<String>(),
            NBI_TASK_NAMES.join(", ")
        ));
    };
    let known: &[&str] = match name {
        "getParameterValues" => &["parameterNames"],
        "setParameterValues" => &["parameterValues", "parameterKey"],
        "refreshObject" => &["objectName"],
        "addObject" => &["objectName", "parameterValues", "parameterKey"],
        "deleteObject" => &["objectName", "parameterKey"],
        "reboot" | "factoryReset" => &["commandKey"],
        "download" => &[
            "fileType",
            "fileName",
            // GenieACS 1.1's name of `fileName`.
            "file",
            "url",
            "targetFileName",
            "commandKey",
        ],
        "getParameterNames" => &["parameterPath", "nextLevel"],
        _ => &[],
    };
    if let Some(extra) = obj.keys().find(|k| {
        *k != "name" && !known.contains(&k.as_str()) && !GENIEACS_FIELDS.contains(&k.as_str())
    }) {
        return bad(format!(
            "{name}: unknown field `{}`",
            extra.chars().take(64).collect::<String>()
        ));
    }
    let mut out = Map::new();
    match name {
        "getParameterValues" => {
            out.insert("name".into(), json!(name));
            if let Some(names) = obj.get("parameterNames") {
                out.insert("parameterNames".into(), names.clone());
            }
        }
        "setParameterValues" => {
            let Some(values) = obj.get("parameterValues").and_then(Value::as_array) else {
                return bad(
                    "setParameterValues: `parameterValues` must be an array of [name, value, type?]",
                );
            };
            let mut list = Vec::with_capacity(values.len());
            for (i, v) in values.iter().enumerate() {
                let Some(items) = v.as_array().filter(|a| (2..=3).contains(&a.len())) else {
                    return bad(format!(
                        "setParameterValues: parameterValues[{i}] must be [name, value] or [name, value, type]"
                    ));
                };
                let Some(path) = items[0].as_str() else {
                    return bad(format!(
                        "setParameterValues: parameterValues[{i}]: the name must be a string"
                    ));
                };
                let value = value_text(name, i, &items[1])?;
                let mut entry = vec![json!(path), json!(value)];
                match items.get(2) {
                    None => {
                        // Untyped booleans and numbers keep their JSON type,
                        // as GenieACS infers xsd:boolean / xsd:int from them.
                        match &items[1] {
                            Value::Bool(_) => entry.push(json!("xsd:boolean")),
                            Value::Number(n) if n.is_u64() => entry.push(json!("xsd:unsignedInt")),
                            Value::Number(n) if n.is_i64() => entry.push(json!("xsd:int")),
                            _ => {}
                        }
                    }
                    Some(Value::String(t)) => entry.push(json!(t)),
                    Some(_) => {
                        return bad(format!(
                            "setParameterValues: parameterValues[{i}]: the type must be a string such as \"xsd:string\""
                        ));
                    }
                }
                list.push(Value::Array(entry));
            }
            out.insert("name".into(), json!(name));
            out.insert("parameterValues".into(), Value::Array(list));
            if let Some(k) = obj.get("parameterKey") {
                out.insert("parameterKey".into(), k.clone());
            }
        }
        "refreshObject" => {
            let mut path = take_str(obj, name, "objectName")?;
            // GenieACS refreshes a whole subtree; `""` means everything,
            // which our GetParameterValues spells as the root object.
            if !path.is_empty() && !path.ends_with('.') && !path.contains('.') {
                path.push('.');
            }
            out.insert("name".into(), json!("refresh"));
            out.insert("objectName".into(), json!(path));
        }
        "addObject" | "deleteObject" => {
            let mut path = take_str(obj, name, "objectName")?;
            if !path.ends_with('.') {
                path.push('.');
            }
            if name == "addObject"
                && obj
                    .get("parameterValues")
                    .is_some_and(|v| v.as_array().is_none_or(|a| !a.is_empty()))
            {
                return bad(
                    "addObject: `parameterValues` (setting the new instance's values) is not supported; queue a setParameterValues once the instance exists",
                );
            }
            out.insert("name".into(), json!(name));
            out.insert("objectName".into(), json!(path));
            if let Some(k) = obj.get("parameterKey") {
                out.insert("parameterKey".into(), k.clone());
            }
        }
        "reboot" | "factoryReset" => {
            out.insert("name".into(), json!(name));
            if name == "reboot" {
                if let Some(k) = obj.get("commandKey") {
                    out.insert("commandKey".into(), k.clone());
                }
            } else if obj.contains_key("commandKey") {
                return bad("factoryReset: `commandKey` is not an argument of FactoryReset");
            }
        }
        "download" => {
            // GenieACS serves `fileName` from its own file server; this ACS
            // has none, so the file must be named by a URL.
            let url = match (
                obj.get("url"),
                obj.get("fileName").or_else(|| obj.get("file")),
            ) {
                (Some(Value::String(u)), _) => u.clone(),
                (None, Some(Value::String(f))) if f.contains("://") => f.clone(),
                (None, Some(Value::String(_))) => {
                    return bad(
                        "download: `fileName` (or `file`) must be an http(s) URL: this ACS has no file server (GenieACS's /files)",
                    );
                }
                _ => return bad("download: `url` or `fileName` (a URL) is missing"),
            };
            out.insert("name".into(), json!(name));
            out.insert("fileType".into(), json!(take_str(obj, name, "fileType")?));
            out.insert("url".into(), json!(url));
            if let Some(t) = obj.get("targetFileName") {
                out.insert("targetFileName".into(), t.clone());
            }
            if let Some(k) = obj.get("commandKey") {
                out.insert("commandKey".into(), k.clone());
            }
        }
        "getParameterNames" => {
            out.insert("name".into(), json!(name));
            out.insert(
                "parameterPath".into(),
                json!(take_str(obj, name, "parameterPath")?),
            );
            if let Some(n) = obj.get("nextLevel") {
                out.insert("nextLevel".into(), n.clone());
            }
        }
        _ => return bad(format!("unknown task name `{name}`")),
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tasks::parse_task;

    fn ok(v: Value) -> Value {
        translate(&v).unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    #[test]
    fn genieacs_tasks_become_ops_tasks_that_parse() {
        for (task, expect) in [
            (
                json!({"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo.SoftwareVersion"], "device": "x"}),
                "getParameterValues",
            ),
            (
                json!({"name": "setParameterValues", "parameterValues": [["Device.WiFi.SSID.1.SSID", "Maison", "xsd:string"], ["Device.WiFi.SSID.1.Enable", true], ["Device.ManagementServer.PeriodicInformInterval", 300]]}),
                "setParameterValues",
            ),
            (
                json!({"name": "refreshObject", "objectName": "Device.WiFi."}),
                "refresh",
            ),
            (
                json!({"name": "refreshObject", "objectName": "Device"}),
                "refresh",
            ),
            (
                json!({"name": "addObject", "objectName": "Device.WiFi.SSID"}),
                "addObject",
            ),
            (
                json!({"name": "deleteObject", "objectName": "Device.WiFi.SSID.4"}),
                "deleteObject",
            ),
            (json!({"name": "reboot"}), "reboot"),
            (json!({"name": "factoryReset"}), "factoryReset"),
            (
                json!({"name": "download", "fileType": "1 Firmware Upgrade Image", "fileName": "http://fw.example.net/x.bin", "targetFileName": "x.bin"}),
                "download",
            ),
        ] {
            let body = ok(task.clone());
            let parsed = parse_task(&body, Some("Device."), &|_| None)
                .unwrap_or_else(|e| panic!("{task}: {}", e.message()));
            assert_eq!(parsed.name, expect, "{task}");
        }
        let spv = ok(
            json!({"name": "setParameterValues", "parameterValues": [["A.B", true], ["A.C", 5], ["A.D", -5]]}),
        );
        assert_eq!(
            spv["parameterValues"],
            json!([
                ["A.B", "true", "xsd:boolean"],
                ["A.C", "5", "xsd:unsignedInt"],
                ["A.D", "-5", "xsd:int"]
            ])
        );
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        for (task, what) in [
            (json!([1]), "JSON object"),
            (json!({}), "`name` is missing"),
            (
                json!({"name": "frobnicate"}),
                "unknown task name `frobnicate`",
            ),
            (
                json!({"name": "reboot", "delay": 3}),
                "unknown field `delay`",
            ),
            (json!({"name": "setParameterValues"}), "parameterValues"),
            (
                json!({"name": "setParameterValues", "parameterValues": [["A.B"]]}),
                "parameterValues[0]",
            ),
            (
                json!({"name": "setParameterValues", "parameterValues": [["A.B", {"x": 1}]]}),
                "parameterValues[0]",
            ),
            (json!({"name": "refreshObject"}), "`objectName` is missing"),
            (
                json!({"name": "addObject", "objectName": "A.B.", "parameterValues": [["x", "1"]]}),
                "not supported",
            ),
            (
                json!({"name": "download", "fileType": "1 Firmware Upgrade Image", "fileName": "fw.bin"}),
                "no file server",
            ),
            (
                json!({"name": "download", "file": "5f1e0c2a9b"}),
                "no file server",
            ),
        ] {
            let e = translate(&task).unwrap_err().to_string();
            assert!(e.contains(what), "{task}: {e}");
        }
    }
}
