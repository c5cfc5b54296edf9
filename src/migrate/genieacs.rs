//! GenieACS's `devices` collection, as `mongoexport` writes it, read into
//! the ACS's device records. Pure: the runner ([`super::genieacs_run`])
//! reads the file and writes the store.
//!
//! A GenieACS device document is its parameter tree as nested objects
//! (`InternetGatewayDevice.DeviceInfo.SoftwareVersion` is
//! `{"InternetGatewayDevice": {"DeviceInfo": {"SoftwareVersion": {"_value":
//! …, "_type": "xsd:string", "_writable": false, "_timestamp": …}}}}`)
//! beside GenieACS's own fields: `_id` (the id ERPNext holds in
//! `custom_cwmp_serial`, and the ACS's id: both escape it the same way),
//! `_deviceId._Manufacturer/_OUI/_ProductClass/_SerialNumber`,
//! `_lastInform`, `_registered`, `_lastBoot`, `_lastBootstrap`, `_tags`.
//! `mongoexport` writes dates as `{"$date": "…Z"}` (relaxed),
//! `{"$date": {"$numberLong": "…"}}` (canonical) or a plain string, and
//! numbers as JSON numbers or `{"$numberInt"/"$numberLong"/"$numberDouble":
//! "…"}`; all are read.
//!
//! What is taken: identity, dates, tags, the connection-request URL and
//! credentials (so a connection request works before the first session
//! here), `DeviceInfo` facts, and every parameter value with its type and
//! writability (secrets excepted: the ACS never caches them). The data
//! model is not taken: GenieACS only holds what it was asked for, so the
//! device's first session here discovers it, like a first contact.

use serde_json::{Map, Value};

use crate::cwmp::rpc::DeviceIdStruct;
use crate::cwmp::{CwmpVersion, ValueType, is_secret_parameter};
use crate::store::{CachedValue, DeviceRecord};

/// Parameters kept per device at most: a GenieACS tree with more is cut
/// (and said so), so that one odd document cannot fill the store.
pub const MAX_PARAMETERS: usize = 50_000;

/// Nesting deeper than this is not a data model.
const MAX_DEPTH: usize = 32;

/// One device read from a GenieACS document.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedDevice {
    pub record: DeviceRecord,
    /// Parameter values (no secrets), with their types.
    pub values: Vec<(String, CachedValue)>,
    /// Writability of the parameters and objects GenieACS knew.
    pub writability: Vec<(String, bool)>,
    /// Parameters beyond [`MAX_PARAMETERS`] that were left out.
    pub truncated: usize,
    /// GenieACS's `_id` when it is not the id the device's Inform gives
    /// (`OUI-ProductClass-Serial` escaped): the record takes the Inform's,
    /// or the device would come back as a stranger.
    pub genieacs_id: Option<String>,
}

/// Why a document cannot be imported. Never contains a parameter value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    #[error("not a JSON object")]
    NotAnObject,
    #[error("no `_id`")]
    NoId,
    #[error("`_id` {0:?} is not a device id (empty, too long or with control characters)")]
    BadId(String),
    #[error("`_deviceId.{0}` is missing")]
    NoIdentity(&'static str),
}

/// Milliseconds since the epoch of a date as mongoexport writes it.
pub fn date_ms(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => crate::cwmp::parse_datetime(s)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| u64::try_from(d.as_millis()).ok()),
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::Object(o) => o
            .get("$date")
            .and_then(date_ms)
            .or_else(|| o.get("$numberLong").and_then(number_text)),
        _ => None,
    }
}

fn number_text(v: &Value) -> Option<u64> {
    v.as_str().and_then(|s| s.trim().parse().ok())
}

/// A parameter's `_value` as the text the ACS stores.
fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null => None,
        Value::Object(o) => {
            if let Some(ms) = o.get("$date").and_then(date_ms) {
                return Some(crate::cwmp::format_datetime(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
                ));
            }
            [
                "$numberInt",
                "$numberLong",
                "$numberDouble",
                "$numberDecimal",
            ]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_str).map(str::to_owned))
        }
        // GenieACS of old kept `[value, type]`.
        Value::Array(a) => a.first().and_then(value_text),
    }
}

fn text<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    o.get(k)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The id GenieACS and the ACS give a device: `OUI-ProductClass-Serial`,
/// each part escaped the same way.
fn expected_id(identity: &DeviceIdStruct) -> String {
    identity.device_id()
}

/// Walks the parameter tree under `node` (at `path`, with its trailing
/// dot for objects).
fn walk(node: &Map<String, Value>, path: &str, depth: usize, out: &mut Walked, now_ms: u64) {
    if depth > MAX_DEPTH {
        return;
    }
    for (key, child) in node {
        if key.starts_with('_') || key.is_empty() || key.contains('.') {
            continue;
        }
        let Value::Object(child) = child else {
            continue;
        };
        let is_object = child.get("_object").and_then(Value::as_bool) == Some(true)
            || (!child.contains_key("_value") && child.keys().any(|k| !k.starts_with('_')));
        let writable = child.get("_writable").and_then(Value::as_bool);
        if is_object {
            let obj = format!("{path}{key}.");
            if let Some(w) = writable {
                out.writability.push((obj.clone(), w));
            }
            walk(child, &obj, depth + 1, out, now_ms);
            continue;
        }
        let name = format!("{path}{key}");
        if out.values.len() + out.truncated >= MAX_PARAMETERS {
            out.truncated += 1;
            continue;
        }
        if let Some(w) = writable {
            out.writability.push((name.clone(), w));
        }
        let Some(value) = child.get("_value").and_then(value_text) else {
            continue;
        };
        if is_secret_parameter(&name) {
            out.secrets.push((name, value));
            continue;
        }
        let kind = child
            .get("_type")
            .and_then(Value::as_str)
            .map(ValueType::from_name)
            .unwrap_or(ValueType::String);
        let updated_ms = child.get("_timestamp").and_then(date_ms).unwrap_or(now_ms);
        out.values.push((
            name,
            CachedValue {
                value,
                kind,
                updated_ms,
            },
        ));
    }
}

#[derive(Default)]
struct Walked {
    values: Vec<(String, CachedValue)>,
    writability: Vec<(String, bool)>,
    /// Secret values (connection-request password): used, never stored
    /// as parameters.
    secrets: Vec<(String, String)>,
    truncated: usize,
}

/// One GenieACS device document as a device record, its values and
/// writability. `now_ms` marks the import.
pub fn device(doc: &Value, now_ms: u64) -> Result<ImportedDevice, DocumentError> {
    let Value::Object(o) = doc else {
        return Err(DocumentError::NotAnObject);
    };
    let id = match o.get("_id") {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(_) | None => return Err(DocumentError::NoId),
    };
    if id.is_empty() || id.len() > 512 || id.chars().any(char::is_control) {
        return Err(DocumentError::BadId(id.chars().take(64).collect()));
    }
    let empty = Map::new();
    let did = o
        .get("_deviceId")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let part = |k: &'static str| -> Result<String, DocumentError> {
        text(did, k)
            .map(str::to_owned)
            .ok_or(DocumentError::NoIdentity(k))
    };
    let identity = DeviceIdStruct {
        manufacturer: text(did, "_Manufacturer").unwrap_or("").to_owned(),
        oui: part("_OUI")?,
        product_class: text(did, "_ProductClass").unwrap_or("").to_owned(),
        serial_number: part("_SerialNumber")?,
    };
    let expected = expected_id(&identity);
    let genieacs_id = (expected != id).then_some(id);
    let id = expected;
    let mut walked = Walked::default();
    walk(o, "", 0, &mut walked, now_ms);
    walked
        .values
        .retain(|(n, _)| n.starts_with("Device.") || n.starts_with("InternetGatewayDevice."));
    walked
        .writability
        .retain(|(n, _)| n.starts_with("Device.") || n.starts_with("InternetGatewayDevice."));
    let root = if o.contains_key("InternetGatewayDevice") {
        Some("InternetGatewayDevice.".to_owned())
    } else if o.contains_key("Device") {
        Some("Device.".to_owned())
    } else {
        None
    };
    let date = |k: &str| o.get(k).and_then(date_ms);
    let registered = date("_registered");
    let last_inform = date("_lastInform").or(registered).unwrap_or(now_ms);
    let mut record = DeviceRecord::new(
        id,
        identity,
        CwmpVersion::V1_0,
        registered.unwrap_or(last_inform),
    );
    record.last_inform_ms = last_inform;
    record.last_boot_ms = date("_lastBoot");
    record.last_bootstrap_ms = date("_lastBootstrap");
    record.root = root.clone();
    record.imported_ms = Some(now_ms);
    let mut tags: Vec<String> = o
        .get("_tags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    // GenieACS 1.1 kept tags as `Tags.<name>` parameters.
    if let Some(Value::Object(t)) = o.get("Tags") {
        tags.extend(
            t.keys()
                .filter(|k| !k.starts_with('_') && !k.trim().is_empty())
                .cloned(),
        );
    }
    tags.sort();
    tags.dedup();
    record.tags = tags;
    if let Some(root) = &root {
        let value = |leaf: &str| {
            let name = format!("{root}{leaf}");
            walked
                .values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, c)| c.value.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        record.software_version = value("DeviceInfo.SoftwareVersion");
        record.hardware_version = value("DeviceInfo.HardwareVersion");
        record.model_name = value("DeviceInfo.ModelName");
        record.parameter_key = value("ManagementServer.ParameterKey");
        record.connection_request_url = value("ManagementServer.ConnectionRequestURL");
        let cr_username = value("ManagementServer.ConnectionRequestUsername");
        let cr_password = walked
            .secrets
            .iter()
            .find(|(n, _)| *n == format!("{root}ManagementServer.ConnectionRequestPassword"))
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty());
        if cr_username.is_some() && cr_password.is_some() {
            record.provisioning.cr_username = cr_username;
            record.provisioning.cr_password = cr_password;
        }
    }
    Ok(ImportedDevice {
        record,
        values: walked.values,
        writability: walked.writability,
        truncated: walked.truncated,
        genieacs_id,
    })
}

/// A document of the file, or why it could not be read as JSON.
pub type Document = Result<Value, String>;

/// Longest line of a JSON-lines export (a device of a few thousand
/// parameters is about a megabyte).
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// Why the file cannot be read at all (a bad document is not this: it is
/// reported and the others are read).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    #[error("cannot read the export: {0}")]
    Io(#[from] std::io::Error),
    #[error("the JSON array is malformed at line {line}, column {column}: {reason}")]
    Array {
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("line {0} is longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong(usize),
}

/// Calls `each` with every document of a mongoexport file, in order, with
/// its position (line of a JSON-lines file, index of an array element,
/// both from 1): JSON lines (the default of mongoexport) or one JSON array
/// (`--jsonArray`), read as a stream (a file of any size).
pub fn documents(
    mut input: impl std::io::BufRead,
    each: &mut dyn FnMut(usize, Document),
) -> Result<(), ExportError> {
    let starts_array = loop {
        let buf = input.fill_buf()?;
        let Some(&b) = buf.first() else {
            return Ok(());
        };
        if b.is_ascii_whitespace() || b == 0xEF || b == 0xBB || b == 0xBF {
            // Whitespace and a UTF-8 byte-order mark before the first value.
            input.consume(1);
            continue;
        }
        break b == b'[';
    };
    if starts_array {
        return array(input, each);
    }
    use std::io::{BufRead as _, Read as _};
    let mut line = Vec::new();
    let mut number = 0usize;
    loop {
        line.clear();
        number += 1;
        let n = (&mut input)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        if line.len() > MAX_LINE_BYTES {
            return Err(ExportError::LineTooLong(number));
        }
        let text = String::from_utf8_lossy(&line);
        let t = text.trim();
        if t.is_empty() {
            continue;
        }
        each(
            number,
            serde_json::from_str::<Value>(t).map_err(|e| format!("not JSON: {e}")),
        );
    }
}

fn array(
    input: impl std::io::Read,
    each: &mut dyn FnMut(usize, Document),
) -> Result<(), ExportError> {
    use serde::de::{DeserializeSeed, SeqAccess, Visitor};

    struct Each<'a>(&'a mut dyn FnMut(usize, Document));

    impl<'de> Visitor<'de> for Each<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array of device documents")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut index = 0;
            while let Some(doc) = seq.next_element::<Value>()? {
                index += 1;
                (self.0)(index, Ok(doc));
            }
            Ok(())
        }
    }

    impl<'de> DeserializeSeed<'de> for Each<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }

    let mut de = serde_json::Deserializer::from_reader(input);
    let to_error = |e: serde_json::Error| {
        if e.is_io() {
            ExportError::Io(std::io::Error::other(e.to_string()))
        } else {
            ExportError::Array {
                line: e.line(),
                column: e.column(),
                reason: e.to_string(),
            }
        }
    };
    Each(each).deserialize(&mut de).map_err(to_error)?;
    de.end().map_err(to_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "_id": "00259E-EG8145V5-48575443A1B2C3D4",
            "_deviceId": {
                "_Manufacturer": "Huawei Technologies Co., Ltd",
                "_OUI": "00259E",
                "_ProductClass": "EG8145V5",
                "_SerialNumber": "48575443A1B2C3D4"
            },
            "_lastInform": {"$date": "2026-11-30T10:00:00.000Z"},
            "_registered": {"$date": {"$numberLong": "1700000000000"}},
            "_lastBoot": "2026-11-29T08:00:00Z",
            "_tags": ["ont", "Montreal", "ont"],
            "_timestamp": {"$date": "2026-11-30T10:00:00.000Z"},
            "InternetGatewayDevice": {
                "_object": true, "_writable": false,
                "DeviceInfo": {
                    "_object": true, "_writable": false,
                    "SoftwareVersion": {"_value": "V5R019C10S125", "_type": "xsd:string", "_writable": false,
                        "_timestamp": {"$date": "2026-11-30T10:00:00.000Z"}},
                    "ModelName": {"_value": "EG8145V5", "_type": "xsd:string", "_writable": false},
                    "UpTime": {"_value": {"$numberInt": "86400"}, "_type": "xsd:unsignedInt", "_writable": false}
                },
                "ManagementServer": {
                    "_object": true,
                    "ConnectionRequestURL": {"_value": "http://100.64.1.2:7547/", "_type": "xsd:string", "_writable": false},
                    "ConnectionRequestUsername": {"_value": "cr-user", "_type": "xsd:string", "_writable": true},
                    "ConnectionRequestPassword": {"_value": "cr-secret-9", "_type": "xsd:string", "_writable": true},
                    "PeriodicInformEnable": {"_value": true, "_type": "xsd:boolean", "_writable": true}
                },
                "WANDevice": {
                    "_object": true, "_writable": false,
                    "1": {"_object": true, "_writable": false,
                        "WANConnectionDevice": {"_object": true, "_writable": true}}
                }
            },
            "Events": {"Inform": {"_value": {"$date": "2026-11-30T10:00:00.000Z"}}},
            "VirtualParameters": {"pppoeUser": {"_value": "x"}}
        })
    }

    #[test]
    fn a_genieacs_document_becomes_a_record_values_and_writability() {
        let d = device(&doc(), 1_800_000_000_000).unwrap();
        let r = &d.record;
        assert_eq!(r.id, "00259E-EG8145V5-48575443A1B2C3D4");
        assert_eq!(r.identity.serial_number, "48575443A1B2C3D4");
        assert_eq!(r.first_seen_ms, 1_700_000_000_000);
        assert_eq!(
            crate::cwmp::format_datetime(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(r.last_inform_ms)
            ),
            "2026-11-30T10:00:00Z"
        );
        assert!(r.last_boot_ms.is_some());
        assert_eq!(r.tags, vec!["Montreal".to_owned(), "ont".to_owned()]);
        assert_eq!(r.root.as_deref(), Some("InternetGatewayDevice."));
        assert_eq!(r.software_version.as_deref(), Some("V5R019C10S125"));
        assert_eq!(r.model_name.as_deref(), Some("EG8145V5"));
        assert_eq!(
            r.connection_request_url.as_deref(),
            Some("http://100.64.1.2:7547/")
        );
        assert_eq!(r.provisioning.cr_username.as_deref(), Some("cr-user"));
        assert_eq!(r.provisioning.cr_password.as_deref(), Some("cr-secret-9"));
        assert_eq!(r.imported_ms, Some(1_800_000_000_000));
        assert!(
            r.data_model.is_none(),
            "discovered at the first session here"
        );
        let v = |n: &str| {
            d.values
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, c)| c.clone())
        };
        assert_eq!(
            v("InternetGatewayDevice.DeviceInfo.UpTime").unwrap().value,
            "86400"
        );
        assert_eq!(
            v("InternetGatewayDevice.DeviceInfo.UpTime").unwrap().kind,
            ValueType::UnsignedInt
        );
        assert_eq!(
            v("InternetGatewayDevice.ManagementServer.PeriodicInformEnable")
                .unwrap()
                .value,
            "true"
        );
        assert!(
            v("InternetGatewayDevice.ManagementServer.ConnectionRequestPassword").is_none(),
            "secrets are never cached as parameters"
        );
        assert!(
            d.values
                .iter()
                .all(|(n, _)| n.starts_with("InternetGatewayDevice."))
        );
        assert!(d.writability.contains(&(
            "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.".to_owned(),
            true
        )));
        assert!(d.writability.contains(&(
            "InternetGatewayDevice.ManagementServer.ConnectionRequestUsername".to_owned(),
            true
        )));
    }

    #[test]
    fn bad_documents_are_named_errors_without_values() {
        assert_eq!(device(&json!([1]), 0), Err(DocumentError::NotAnObject));
        assert_eq!(device(&json!({"x": 1}), 0), Err(DocumentError::NoId));
        let mut d = doc();
        d["_deviceId"]
            .as_object_mut()
            .unwrap()
            .remove("_SerialNumber");
        assert_eq!(
            device(&d, 0),
            Err(DocumentError::NoIdentity("_SerialNumber"))
        );
        // An `_id` that is not the one the Inform gives: the record takes
        // the Inform's, GenieACS's is reported.
        let mut d = doc();
        d["_id"] = json!("00259E-EG8145V5-OTHER");
        d["Tags"] = json!({"_object": true, "legacy": {"_value": true}});
        let imported = device(&d, 0).unwrap();
        assert_eq!(imported.record.id, "00259E-EG8145V5-48575443A1B2C3D4");
        assert_eq!(
            imported.genieacs_id.as_deref(),
            Some("00259E-EG8145V5-OTHER")
        );
        assert!(imported.record.tags.contains(&"legacy".to_owned()));
        // GenieACS escapes `-` in a product class as %2D, as the ACS does.
        let mut d = doc();
        d["_deviceId"]["_ProductClass"] = json!("HG8-245");
        d["_id"] = json!("00259E-HG8%2D245-48575443A1B2C3D4");
        assert_eq!(device(&d, 0).unwrap().genieacs_id, None);
    }

    fn read(text: &str) -> (Vec<(usize, bool)>, Result<(), String>) {
        let mut seen = Vec::new();
        let r = documents(std::io::Cursor::new(text.as_bytes()), &mut |n, d| {
            seen.push((n, d.is_ok()))
        })
        .map_err(|e| e.to_string());
        (seen, r)
    }

    #[test]
    fn json_lines_and_arrays_are_read_as_streams() {
        let one = doc().to_string();
        let lines = format!("{one}\n\n{{not json\n{one}\r\n");
        assert_eq!(
            read(&lines),
            (vec![(1, true), (3, false), (4, true)], Ok(()))
        );
        let arr = format!("\u{feff} [ {one}, {one} ]\n");
        assert_eq!(read(&arr), (vec![(1, true), (2, true)], Ok(())));
        let (seen, r) = read(&format!("[{one}, {{\"a\": ]"));
        assert_eq!(seen, vec![(1, true)]);
        assert!(r.unwrap_err().contains("line 1"));
        assert_eq!(read(""), (vec![], Ok(())));
        assert_eq!(read("[]"), (vec![], Ok(())));
    }
}
