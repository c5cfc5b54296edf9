//! GenieACS-shaped documents built from the ACS's records (pure): devices
//! (`_id`, `_deviceId`, dates, `_tags`, the parameter tree), tasks and
//! faults, and the projection of a document onto a list of paths.
//!
//! Dates are ISO-8601 with milliseconds (`2026-03-01T10:00:00.000Z`), as
//! GenieACS's NBI writes MongoDB dates in JSON.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::cwmp::{Body, ValueType, is_secret_parameter, parse_bool};
use crate::store::{DeviceRecord, FaultRecord, StoredParam, Task, TaskStatus};

/// What a secret parameter's value is shown as.
const MASK: &str = "********";

/// `2026-03-01T10:00:00.123Z` of Unix milliseconds.
pub fn iso_date(ms: u64) -> String {
    let whole = crate::cwmp::format_datetime(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms - ms % 1000),
    );
    match whole.strip_suffix('Z') {
        Some(head) => format!("{head}.{:03}Z", ms % 1000),
        None => whole,
    }
}

/// GenieACS task ids are 24-hex-digit MongoDB ObjectIds: ours, zero-padded.
pub fn task_object_id(id: u64) -> String {
    format!("{id:024x}")
}

/// A task id as the NBI shows it (24 hex digits) or, for convenience, as
/// the Ops API does (decimal).
pub fn parse_task_object_id(s: &str) -> Option<u64> {
    if s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        u64::try_from(u128::from_str_radix(s, 16).ok()?).ok()
    } else if !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// A stored value as GenieACS types it in JSON: booleans and integers
/// native, everything else (dates included) a string.
fn typed_value(value: &str, kind: &ValueType) -> Value {
    match kind {
        ValueType::Boolean => parse_bool(value).map_or_else(|| json!(value), Value::Bool),
        ValueType::Int | ValueType::Long => value
            .trim()
            .parse::<i64>()
            .map_or_else(|_| json!(value), |n| json!(n)),
        ValueType::UnsignedInt | ValueType::UnsignedLong => value
            .trim()
            .parse::<u64>()
            .map_or_else(|_| json!(value), |n| json!(n)),
        _ => json!(value),
    }
}

/// The object node at `segments` under `root`, created (as an object
/// node, `_object: true`) where missing.
fn node_at<'a>(
    root: &'a mut Map<String, Value>,
    segments: &[&str],
) -> Option<&'a mut Map<String, Value>> {
    let mut node = root;
    for seg in segments {
        let entry = node
            .entry((*seg).to_owned())
            .or_insert_with(|| json!({"_object": true}));
        if !entry.is_object() {
            *entry = json!({"_object": true});
        }
        node = entry.as_object_mut()?;
    }
    Some(node)
}

/// Raises an object's `_timestamp` to `ms` if later.
fn touch(node: &mut Map<String, Value>, ms: u64) {
    let later = match node.get("_timestamp").and_then(Value::as_str) {
        Some(t) => t < iso_date(ms).as_str(),
        None => true,
    };
    if later {
        node.insert("_timestamp".into(), json!(iso_date(ms)));
    }
}

/// The parameter tree of a device as nested objects: parameters carry
/// `_value`, `_type`, `_timestamp`, `_writable` (when known) and
/// `_object: false`; objects carry `_object: true`, `_writable` (when
/// known) and the latest `_timestamp` below them. Secret values (keys,
/// passwords) are masked, as the Ops API masks them.
pub fn parameter_tree(params: &[(String, StoredParam)]) -> Map<String, Value> {
    let mut root = Map::new();
    for (path, p) in params {
        if path.is_empty() || path.split('.').any(|s| s.starts_with('_')) {
            // Not a TR-069 path; never let it overwrite an attribute.
            continue;
        }
        let is_object = path.ends_with('.');
        let segments: Vec<&str> = path.trim_end_matches('.').split('.').collect();
        if segments.iter().any(|s| s.is_empty()) {
            continue;
        }
        let Some(node) = node_at(&mut root, &segments) else {
            continue;
        };
        if let Some(w) = p.writable {
            node.insert("_writable".into(), json!(w));
        }
        if is_object {
            node.insert("_object".into(), json!(true));
            continue;
        }
        node.insert("_object".into(), json!(false));
        if let Some(v) = &p.value {
            let value = if is_secret_parameter(path) && !v.value.is_empty() {
                json!(MASK)
            } else {
                typed_value(&v.value, &v.kind)
            };
            node.insert("_value".into(), value);
            node.insert("_type".into(), json!(format!("xsd:{}", v.kind)));
            node.insert("_timestamp".into(), json!(iso_date(v.updated_ms)));
            // Objects above are as recent as their newest parameter.
            for depth in 1..segments.len() {
                if let Some(above) = node_at(&mut root, &segments[..depth]) {
                    touch(above, v.updated_ms);
                }
            }
        }
    }
    root
}

/// A device document as GenieACS's NBI returns it. `params` is `None` when
/// the caller needs no parameter (query and projection name only `_…`
/// attributes): the tree is then left out.
pub fn device_document(d: &DeviceRecord, params: Option<&[(String, StoredParam)]>) -> Value {
    let mut doc = match params {
        Some(p) => parameter_tree(p),
        None => Map::new(),
    };
    doc.insert("_id".into(), json!(d.id));
    doc.insert(
        "_deviceId".into(),
        json!({
            "_Manufacturer": d.identity.manufacturer,
            "_OUI": d.identity.oui,
            "_ProductClass": d.identity.product_class,
            "_SerialNumber": d.identity.serial_number,
        }),
    );
    doc.insert("_registered".into(), json!(iso_date(d.first_seen_ms)));
    doc.insert("_lastInform".into(), json!(iso_date(d.last_inform_ms)));
    if let Some(ms) = d.last_boot_ms {
        doc.insert("_lastBoot".into(), json!(iso_date(ms)));
    }
    if let Some(ms) = d.last_bootstrap_ms {
        doc.insert("_lastBootstrap".into(), json!(iso_date(ms)));
    }
    // GenieACS leaves `_tags` out rather than writing an empty array.
    if !d.tags.is_empty() {
        doc.insert("_tags".into(), json!(d.tags));
    }
    Value::Object(doc)
}

/// Whether a path names a device attribute (`_id`, `_deviceId._OUI`, …)
/// rather than something in the parameter tree.
pub fn is_attribute_path(path: &str) -> bool {
    path.starts_with('_')
}

/// The document cut down to `paths` (dotted; a path to an object keeps its
/// whole subtree); `_id` is always kept, as MongoDB does.
pub fn project(doc: &Value, paths: &[String]) -> Value {
    let mut out = Map::new();
    if let Some(id) = doc.get("_id") {
        out.insert("_id".into(), id.clone());
    }
    for path in paths {
        let segments: Vec<&str> = path.split('.').filter(|s| !s.is_empty()).collect();
        let Some((last, parents)) = segments.split_last() else {
            continue;
        };
        let mut src = doc;
        let mut found = true;
        for seg in &segments {
            match src.get(*seg) {
                Some(v) => src = v,
                None => {
                    found = false;
                    break;
                }
            }
        }
        if !found {
            continue;
        }
        let mut dst = Some(&mut out);
        for seg in parents {
            dst = dst.and_then(|d| {
                let entry = d
                    .entry((*seg).to_owned())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                entry.as_object_mut()
            });
        }
        if let Some(d) = dst {
            d.insert((*last).to_owned(), src.clone());
        }
    }
    Value::Object(out)
}

/// A task as a GenieACS task document: `_id`, `name`, `device`,
/// `timestamp`, the task's own fields, `fault` (and `retries`) when it
/// failed. Secret values set by the task are masked.
pub fn task_document(t: &Task) -> Value {
    let mut doc = Map::new();
    doc.insert("_id".into(), json!(task_object_id(t.id)));
    doc.insert("device".into(), json!(t.device_id));
    doc.insert("timestamp".into(), json!(iso_date(t.created_ms)));
    let name = match (t.name.as_str(), t.request.rpc()) {
        ("refresh", Some(Body::GetParameterValues(g))) => {
            doc.insert(
                "objectName".into(),
                json!(g.names.first().cloned().unwrap_or_default()),
            );
            "refreshObject".to_owned()
        }
        (_, Some(Body::GetParameterValues(g))) => {
            doc.insert("parameterNames".into(), json!(g.names));
            "getParameterValues".to_owned()
        }
        (_, Some(Body::GetParameterNames(g))) => {
            doc.insert("parameterPath".into(), json!(g.parameter_path));
            doc.insert("nextLevel".into(), json!(g.next_level));
            "getParameterNames".to_owned()
        }
        (_, Some(Body::SetParameterValues(s))) => {
            let values: Vec<Value> = s
                .parameters
                .iter()
                .map(|p| {
                    let v = if p.is_secret() {
                        json!(MASK)
                    } else {
                        typed_value(&p.value, &p.kind)
                    };
                    json!([p.name, v, format!("xsd:{}", p.kind)])
                })
                .collect();
            doc.insert("parameterValues".into(), Value::Array(values));
            "setParameterValues".to_owned()
        }
        (_, Some(Body::AddObject(a))) => {
            doc.insert("objectName".into(), json!(a.object_name));
            "addObject".to_owned()
        }
        (_, Some(Body::DeleteObject(d))) => {
            doc.insert("objectName".into(), json!(d.object_name));
            "deleteObject".to_owned()
        }
        (_, Some(Body::Reboot(_))) => "reboot".to_owned(),
        (_, Some(Body::FactoryReset(_))) => "factoryReset".to_owned(),
        (_, Some(Body::Download(d))) => {
            doc.insert("fileType".into(), json!(d.file_type));
            doc.insert("fileName".into(), json!(d.url));
            if !d.target_file_name.is_empty() {
                doc.insert("targetFileName".into(), json!(d.target_file_name));
            }
            "download".to_owned()
        }
        _ => crate::app::apply::task_name(t),
    };
    doc.insert("name".into(), json!(name));
    if t.status == TaskStatus::Failed {
        let (code, message) = t
            .fault
            .as_ref()
            .map(|f| (f.code, f.message.as_str()))
            .unwrap_or((0, ""));
        doc.insert(
            "fault".into(),
            json!({
                "code": fault_code(if code == 0 { "acs" } else { "cpe" }, code),
                "message": message,
                "detail": {"faultCode": code.to_string(), "faultString": message},
                "timestamp": iso_date(t.updated_ms),
            }),
        );
        doc.insert("retries".into(), json!(t.attempts.saturating_sub(1)));
    }
    Value::Object(doc)
}

/// GenieACS-style fault code: `cwmp.9002` for a CPE fault, else the
/// source (`acs`, `provisioning`) with our code when there is one.
fn fault_code(source: &str, code: u32) -> String {
    match (source, code) {
        ("cpe", c) => format!("cwmp.{c}"),
        (s, 0) => s.to_owned(),
        (s, c) => format!("{s}.{c}"),
    }
}

/// The GenieACS channel a fault belongs to: `task_<task _id>` for a task's
/// fault (as GenieACS names them), `default` for the rest.
pub fn fault_channel(f: &FaultRecord) -> String {
    match f.task_id {
        Some(t) => format!("task_{}", task_object_id(t)),
        None => "default".to_owned(),
    }
}

/// GenieACS fault `_id`: `<device id>:<channel>`.
pub fn fault_object_id(f: &FaultRecord) -> String {
    format!("{}:{}", f.device_id, fault_channel(f))
}

/// Fault documents: GenieACS keeps one fault per device and channel, so
/// our records are grouped by `_id`; the newest gives code, message and
/// timestamp, and the older ones count as `retries`. `faults` is newest
/// first (as the store returns them).
pub fn fault_documents(faults: &[FaultRecord]) -> Vec<Value> {
    let mut groups: BTreeMap<String, (&FaultRecord, u32)> = BTreeMap::new();
    for f in faults {
        groups
            .entry(fault_object_id(f))
            .and_modify(|(_, n)| *n += 1)
            .or_insert((f, 0));
    }
    let mut docs: Vec<(u64, Value)> = groups
        .into_iter()
        .map(|(id, (f, retries))| {
            (
                f.id,
                json!({
                    "_id": id,
                    "device": f.device_id,
                    "channel": fault_channel(f),
                    "code": fault_code(&f.source, f.code),
                    "message": f.message,
                    "detail": {
                        "faultCode": f.code.to_string(),
                        "faultString": f.message,
                        "rpc": f.rpc,
                    },
                    "timestamp": iso_date(f.at_ms),
                    "retries": retries,
                    "provisions": [],
                }),
            )
        })
        .collect();
    // Oldest first, as GenieACS's natural order.
    docs.sort_by_key(|(id, _)| *id);
    docs.into_iter().map(|(_, d)| d).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cwmp::rpc::{DeviceIdStruct, SetParameterValues};
    use crate::cwmp::{CwmpVersion, ParameterValue};
    use crate::store::{CachedValue, TaskFault, TaskRequest};

    fn p(value: &str, kind: ValueType, writable: Option<bool>) -> StoredParam {
        StoredParam {
            value: Some(CachedValue {
                value: value.into(),
                kind,
                updated_ms: 1_772_359_200_123,
            }),
            writable,
        }
    }

    #[test]
    fn dates_and_ids() {
        assert_eq!(iso_date(1_772_359_200_123), "2026-03-01T10:00:00.123Z");
        assert_eq!(iso_date(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(task_object_id(42), "00000000000000000000002a");
        assert_eq!(parse_task_object_id("00000000000000000000002a"), Some(42));
        assert_eq!(parse_task_object_id("42"), Some(42));
        assert_eq!(parse_task_object_id("ffffffffffffffffffffffff"), None);
        assert_eq!(parse_task_object_id("zz"), None);
        assert_eq!(parse_task_object_id(""), None);
    }

    #[test]
    fn device_document_has_genieacs_shape() {
        let mut d = DeviceRecord::new(
            "00259E-HG8245H-4857%2D5443".into(),
            DeviceIdStruct {
                manufacturer: "Huawei".into(),
                oui: "00259E".into(),
                product_class: "HG8245H".into(),
                serial_number: "4857-5443".into(),
            },
            CwmpVersion::V1_0,
            1_772_359_200_000,
        );
        let params = vec![
            (
                "InternetGatewayDevice.DeviceInfo.".to_owned(),
                StoredParam {
                    value: None,
                    writable: Some(false),
                },
            ),
            (
                "InternetGatewayDevice.DeviceInfo.SoftwareVersion".to_owned(),
                p("V3R017", ValueType::String, Some(false)),
            ),
            (
                "InternetGatewayDevice.DeviceInfo.UpTime".to_owned(),
                p("3600", ValueType::UnsignedInt, None),
            ),
            (
                "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.KeyPassphrase".to_owned(),
                p("hunter22", ValueType::String, Some(true)),
            ),
            (
                "InternetGatewayDevice.X.Enable".to_owned(),
                p("1", ValueType::Boolean, Some(true)),
            ),
        ];
        let doc = device_document(&d, Some(&params));
        assert_eq!(doc["_id"], "00259E-HG8245H-4857%2D5443");
        assert_eq!(doc["_deviceId"]["_SerialNumber"], "4857-5443");
        assert_eq!(doc["_lastInform"], "2026-03-01T10:00:00.000Z");
        assert!(doc.get("_tags").is_none() && doc.get("_lastBoot").is_none());
        let info = &doc["InternetGatewayDevice"]["DeviceInfo"];
        assert_eq!(info["_object"], true);
        assert_eq!(info["_writable"], false);
        assert_eq!(info["_timestamp"], "2026-03-01T10:00:00.123Z");
        assert_eq!(
            info["SoftwareVersion"],
            json!({"_object": false, "_writable": false, "_value": "V3R017", "_type": "xsd:string", "_timestamp": "2026-03-01T10:00:00.123Z"})
        );
        assert_eq!(info["UpTime"]["_value"], 3600);
        assert_eq!(doc["InternetGatewayDevice"]["X"]["Enable"]["_value"], true);
        let wifi = &doc["InternetGatewayDevice"]["LANDevice"]["1"]["WLANConfiguration"]["1"];
        assert_eq!(wifi["KeyPassphrase"]["_value"], MASK);
        assert!(!doc.to_string().contains("hunter22"));

        d.tags = vec!["lab".into()];
        d.last_boot_ms = Some(5);
        let doc = device_document(&d, None);
        assert_eq!(doc["_tags"], json!(["lab"]));
        assert_eq!(doc["_lastBoot"], "1970-01-01T00:00:00.005Z");
        assert!(doc.get("InternetGatewayDevice").is_none());

        let projected = project(
            &device_document(&d, Some(&params)),
            &[
                "_deviceId._SerialNumber".into(),
                "InternetGatewayDevice.DeviceInfo.UpTime".into(),
                "Nope.X".into(),
            ],
        );
        assert_eq!(
            projected,
            json!({
                "_id": "00259E-HG8245H-4857%2D5443",
                "_deviceId": {"_SerialNumber": "4857-5443"},
                "InternetGatewayDevice": {"DeviceInfo": {"UpTime": info["UpTime"].clone()}},
            })
        );
    }

    #[test]
    fn task_and_fault_documents() {
        let mut t = Task {
            id: 7,
            device_id: "D".into(),
            request: TaskRequest::Rpc(
                SetParameterValues {
                    parameters: vec![
                        ParameterValue::new("Device.WiFi.SSID.1.SSID", "Maison", ValueType::String),
                        ParameterValue::new(
                            "Device.WiFi.AccessPoint.1.Security.KeyPassphrase",
                            "hunter22",
                            ValueType::String,
                        ),
                    ],
                    parameter_key: String::new(),
                }
                .into(),
            ),
            name: "setParameterValues".into(),
            status: TaskStatus::Failed,
            created_ms: 1000,
            updated_ms: 2000,
            attempts: 1,
            response: None,
            fault: Some(TaskFault {
                code: 9007,
                message: "Invalid parameter value".into(),
            }),
            outcome: None,
        };
        let doc = task_document(&t);
        assert_eq!(doc["_id"], "000000000000000000000007");
        assert_eq!(doc["name"], "setParameterValues");
        assert_eq!(doc["device"], "D");
        assert_eq!(
            doc["parameterValues"][0],
            json!(["Device.WiFi.SSID.1.SSID", "Maison", "xsd:string"])
        );
        assert!(!doc.to_string().contains("hunter22"));
        assert_eq!(doc["fault"]["code"], "cwmp.9007");
        t.status = TaskStatus::Pending;
        assert!(task_document(&t).get("fault").is_none());

        let f = |id, task_id, code| FaultRecord {
            id,
            device_id: "D".into(),
            at_ms: id * 1000,
            source: "cpe".into(),
            code,
            message: format!("m{id}"),
            rpc: None,
            task_id,
        };
        // Newest first, as the store gives them.
        let docs = fault_documents(&[f(3, Some(7), 9002), f(2, None, 9001), f(1, Some(7), 9002)]);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["_id"], "D:default");
        assert_eq!(docs[1]["_id"], "D:task_000000000000000000000007");
        assert_eq!(docs[1]["channel"], "task_000000000000000000000007");
        assert_eq!(docs[1]["retries"], 1);
        assert_eq!(docs[1]["message"], "m3");
        assert_eq!(docs[1]["code"], "cwmp.9002");
        assert_eq!(docs[1]["timestamp"], "1970-01-01T00:00:03.000Z");
    }
}
