//! How records are laid out as bytes, for both backends.
//!
//! MessagePack with field names (`rmp_serde::to_vec_named`): self-describing
//! like JSON, so `#[serde(default)]` fields added later, skipped fields and
//! untagged enums (a [`super::TaskRequest`]) read back the same way, but
//! without JSON's string escaping and number formatting, which were ~9 % of a
//! periodic session's CPU.
//!
//! Records written before the switch are JSON. A JSON record starts with `{`
//! or `[` (every record is a struct or a list); a MessagePack struct or list
//! starts with a map or array marker (0x80–0x9f, 0xdc–0xdf), never with an
//! ASCII byte, so [`decode`] tells them apart by the first byte and a data
//! directory needs no migration: each record is rewritten in the new form
//! the next time it changes.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{CachedValue, StoreError, StoreResult};

pub(super) fn corrupt(what: &'static str, key: &[u8], e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        key: String::from_utf8_lossy(key).replace('\0', "/"),
        reason: e.to_string(),
    }
}

/// The record's bytes as they are stored.
pub(super) fn encode<T: Serialize>(v: &T) -> StoreResult<Vec<u8>> {
    rmp_serde::to_vec_named(v)
        .map_err(|e| StoreError::Backend(format!("serialising a record: {e}")))
}

/// Parameter values (one, or a list of `(path, value)` rows: an Inform's
/// ParameterList, a table snapshot of thousands of rows) are written
/// without field names — MessagePack arrays, a third of the bytes of the
/// named form for a host table. [`CachedValue`]'s fields must therefore
/// keep their order (new ones go last, with `#[serde(default)]`); the
/// derived `Deserialize` still reads the named and JSON forms.
pub(super) fn encode_value(v: &CachedValue) -> StoreResult<Vec<u8>> {
    rmp_serde::to_vec(v).map_err(|e| StoreError::Backend(format!("serialising a value: {e}")))
}

/// A device's [`super::contact::Contact`], without field names (it is
/// written at every Inform).
pub(super) fn encode_contact(c: &super::contact::Contact) -> StoreResult<Vec<u8>> {
    rmp_serde::to_vec(c).map_err(|e| StoreError::Backend(format!("serialising a contact: {e}")))
}

/// See [`encode_value`].
pub(super) fn encode_rows(rows: &[(String, CachedValue)]) -> StoreResult<Vec<u8>> {
    rmp_serde::to_vec(rows).map_err(|e| StoreError::Backend(format!("serialising values: {e}")))
}

/// [`encode_rows`] with every row's `updated_ms` replaced by `at_ms`,
/// without copying the rows (the same bytes as the rows so updated).
pub(super) fn encode_rows_at(rows: &[(String, CachedValue)], at_ms: u64) -> StoreResult<Vec<u8>> {
    let rows: Vec<(&str, (&str, &crate::cwmp::ValueType, u64))> = rows
        .iter()
        .map(|(n, v)| (n.as_str(), (v.value.as_str(), &v.kind, at_ms)))
        .collect();
    rmp_serde::to_vec(&rows).map_err(|e| StoreError::Backend(format!("serialising values: {e}")))
}

/// Reads a record in either layout; `what` and `key` name it in the error.
pub(super) fn decode<T: DeserializeOwned>(
    what: &'static str,
    key: &[u8],
    bytes: &[u8],
) -> StoreResult<T> {
    match bytes.first() {
        Some(b'{' | b'[') => serde_json::from_slice(bytes).map_err(|e| corrupt(what, key, e)),
        _ => rmp_serde::from_slice(bytes).map_err(|e| corrupt(what, key, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cwmp::rpc::{Body, GetParameterValues};
    use crate::cwmp::{Fault, SetParameterValuesFault};
    use crate::store::{
        CachedValue, DeviceRecord, EventRecord, FaultRecord, Task, TaskAction, TaskRequest,
    };

    fn device() -> DeviceRecord {
        let mut d: DeviceRecord = serde_json::from_value(serde_json::json!({
            "id": "00AABB-Deco%20X20-SN1",
            "identity": {"manufacturer": "TP-Link", "oui": "00AABB", "product_class": "Deco X20", "serial_number": "SN1"},
            "cwmp_version": "1-0",
            "first_seen_ms": 1,
            "last_inform_ms": 2
        }))
        .expect("a minimal JSON-era record");
        d.recent_events.push(EventRecord::new("2 PERIODIC", "", 3));
        let mut run = EventRecord::new("2 PERIODIC", "", 9);
        run.count = 4;
        run.first_ms = Some(5);
        d.recent_events.push(run);
        d.software_version = Some("1.2.3 \"quoted\" é".into());
        d
    }

    #[test]
    fn records_round_trip_and_are_not_json() {
        let d = device();
        let bytes = encode(&d).unwrap();
        assert!(
            !matches!(bytes[0], b'{' | b'['),
            "first byte {:#x}",
            bytes[0]
        );
        assert_eq!(decode::<DeviceRecord>("device", b"k", &bytes).unwrap(), d);

        let values = vec![(
            "Device.DeviceInfo.UpTime".to_string(),
            serde_json::from_value::<CachedValue>(
                serde_json::json!({"value": "42", "type": "xsd:unsignedInt", "updated_ms": 5}),
            )
            .unwrap(),
        )];
        let bytes = encode(&values).unwrap();
        assert!(matches!(bytes[0], 0x90..=0x9f | 0xdc | 0xdd));
        assert_eq!(
            decode::<Vec<(String, CachedValue)>>("values", b"k", &bytes).unwrap(),
            values
        );
    }

    #[test]
    fn rows_encoded_at_a_time_are_the_rows_with_that_time() {
        let v = |value: &str, at| CachedValue {
            value: value.into(),
            kind: crate::cwmp::ValueType::String,
            updated_ms: at,
        };
        let rows = vec![
            ("A.x".to_string(), v("1", 5)),
            ("A.y".to_string(), v("é", 7)),
        ];
        let dated: Vec<(String, CachedValue)> = rows
            .iter()
            .map(|(n, c)| (n.clone(), v(&c.value, 9)))
            .collect();
        assert_eq!(
            encode_rows_at(&rows, 9).unwrap(),
            encode_rows(&dated).unwrap()
        );
    }

    #[test]
    fn values_are_compact_and_every_earlier_layout_still_reads() {
        let value = CachedValue {
            value: "Salon \"TV\"".into(),
            kind: crate::cwmp::ValueType::UnsignedInt,
            updated_ms: 1_764_484_000_000,
        };
        let rows = vec![("Device.Hosts.Host.1.HostName".to_string(), value.clone())];
        let compact = encode_rows(&rows).unwrap();
        let named = encode(&rows).unwrap();
        assert!(compact.len() < named.len());
        for bytes in [compact, named, serde_json::to_vec(&rows).unwrap()] {
            let back: Vec<(String, CachedValue)> = decode("values", b"k", &bytes).unwrap();
            assert_eq!(back, rows);
        }
        for bytes in [encode_value(&value).unwrap(), encode(&value).unwrap()] {
            assert_eq!(decode::<CachedValue>("value", b"k", &bytes).unwrap(), value);
        }
    }

    #[test]
    fn events_are_written_as_lists_and_named_events_still_read() {
        let d = device();
        let bytes = encode(&d).unwrap();
        let named = b"\xa4code";
        assert!(!bytes.windows(named.len()).any(|w| w == named));
        let json = serde_json::json!({
            "id": "x", "cwmp_version": "1-0", "first_seen_ms": 1, "last_inform_ms": 2,
            "identity": {"manufacturer": "M", "oui": "O", "product_class": "P", "serial_number": "S"},
            "recent_events": [
                {"code": "1 BOOT", "command_key": "", "at_ms": 7},
                {"code": "M Reboot", "at_ms": 8}
            ]
        });
        let old: DeviceRecord =
            decode("device", b"x", &serde_json::to_vec(&json).unwrap()).unwrap();
        assert_eq!(old.recent_events[1].code, "M Reboot");
        assert_eq!(old.recent_events[1].command_key, "");
        assert_eq!(old.recent_events[1].at_ms, 8);
        assert_eq!(
            (old.recent_events[1].count, old.recent_events[1].first_ms),
            (1, None)
        );
        // A single event is the three-element list records had before
        // runs existed; a run appends its count and first time.
        let single = encode(&EventRecord::new("1 BOOT", "", 7)).unwrap();
        assert_eq!(single[0], 0x93, "{single:?}");
        let run = d.recent_events.last().unwrap();
        assert_eq!(encode(run).unwrap()[0], 0x95);
        assert_eq!(
            decode::<EventRecord>("event", b"k", &single).unwrap().count,
            1
        );
        let named_mp = rmp_serde::to_vec_named(&json).unwrap();
        let again: DeviceRecord = decode("device", b"x", &named_mp).unwrap();
        assert_eq!(again, old);
    }

    #[test]
    fn json_records_written_before_the_switch_still_read() {
        let d = device();
        let json = serde_json::to_vec(&d).unwrap();
        assert_eq!(decode::<DeviceRecord>("device", b"k", &json).unwrap(), d);
        let tokens = serde_json::to_vec(&vec!["sn1".to_string()]).unwrap();
        assert_eq!(
            decode::<Vec<String>>("search tokens", b"k", &tokens).unwrap(),
            vec!["sn1".to_string()]
        );
    }

    #[test]
    fn untagged_and_skipped_fields_survive() {
        for request in [
            TaskRequest::Action(TaskAction::Reprovision),
            TaskRequest::Rpc(Body::GetParameterValues(GetParameterValues {
                names: vec!["Device.".into()],
            })),
        ] {
            let task: Task = serde_json::from_value(serde_json::json!({
                "id": 7, "device_id": "d", "request": request, "status": "pending",
                "created_ms": 1, "updated_ms": 1
            }))
            .expect("a JSON-era task");
            let back: Task = decode("task", b"7", &encode(&task).unwrap()).unwrap();
            assert_eq!(back, task);
        }
        // A CPE fault with its (skipped when empty) SetParameterValuesFault
        // list, as a task's response.
        for spv_faults in [
            Vec::new(),
            vec![SetParameterValuesFault {
                parameter_name: "Device.WiFi.SSID.1.SSID".into(),
                code: 9007,
                string: "Invalid parameter value".into(),
            }],
        ] {
            let mut task: Task = serde_json::from_value(serde_json::json!({
                "id": 8, "device_id": "d", "request": TaskRequest::Action(TaskAction::CollectHosts),
                "status": "failed", "created_ms": 1, "updated_ms": 2
            }))
            .expect("a JSON-era task");
            task.response = Some(Body::Fault(Fault {
                soap_code: "Client".into(),
                soap_string: "CWMP fault".into(),
                code: 9003,
                string: "Invalid arguments".into(),
                set_parameter_values_faults: spv_faults,
            }));
            let back: Task = decode("task", b"8", &encode(&task).unwrap()).unwrap();
            assert_eq!(back, task);
        }
        let fault: FaultRecord = serde_json::from_value(serde_json::json!({
            "id": 1, "device_id": "d", "at_ms": 1, "source": "cpe", "code": 9002,
            "message": "Internal error"
        }))
        .expect("a JSON-era fault");
        let back: FaultRecord = decode("fault", b"1", &encode(&fault).unwrap()).unwrap();
        assert_eq!(back, fault);
    }

    #[test]
    fn garbage_is_a_corrupt_record_naming_the_key() {
        for bytes in [&b"{not json"[..], &[0x93, 0x01][..], &[0xc1][..], &[][..]] {
            let e = decode::<DeviceRecord>("device", b"dev\0x", bytes).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains("device") && msg.contains("dev/x"), "{msg}");
        }
    }
}
