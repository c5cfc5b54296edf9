//! Replays the quirky-envelope corpus (`tests/corpus/`) through the codec and
//! checks every fact the manifest states about each file, then checks that
//! every accepted envelope survives encode → decode unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use gigafibre_acs::cwmp::{Body, CwmpVersion, Envelope, ValueType, parse_bool, parse_datetime};
use toml::Value;

/// A field as the typed message holds it, for comparison with the
/// manifest's string.
enum Field {
    Str(String),
    Bool(bool),
    Num(u64),
}

fn field(body: &Body, env: &Envelope, key: &str) -> Option<Field> {
    use Field::*;
    let s = |v: &str| Some(Str(v.to_owned()));
    match body {
        Body::Inform(_) if key == "supported_cwmp_versions" => {
            env.header.supported_cwmp_versions.as_deref().and_then(s)
        }
        Body::TransferComplete(t) => match key {
            "command_key" => s(&t.command_key),
            "fault_code" => Some(Num(t.fault.fault_code.into())),
            "fault_string" => s(&t.fault.fault_string),
            "start_time" => s(&t.start_time),
            "complete_time" => s(&t.complete_time),
            _ => None,
        },
        Body::AutonomousTransferComplete(t) => match key {
            "announce_url" => s(&t.announce_url),
            "transfer_url" => s(&t.transfer_url),
            "is_download" => Some(Bool(t.is_download)),
            "file_type" => s(&t.file_type),
            "file_size" => Some(Num(t.file_size)),
            "target_file_name" => s(&t.target_file_name),
            "fault_code" => Some(Num(t.fault.fault_code.into())),
            _ => None,
        },
        Body::RequestDownload(r) => match key {
            "file_type" => s(&r.file_type),
            "arg_count" => Some(Num(r.file_type_args.len() as u64)),
            k if k.starts_with("arg.") => r
                .file_type_args
                .iter()
                .find(|a| a.name == k["arg.".len()..])
                .map(|a| Str(a.value.clone())),
            _ => None,
        },
        Body::DUStateChangeComplete(d) => {
            let r = |i: usize| d.results.get(i - 1);
            match key {
                "command_key" => s(&d.command_key),
                "result_count" => Some(Num(d.results.len() as u64)),
                "uuid_1" => r(1).map(|r| Str(r.uuid.clone())),
                "current_state_1" => r(1).map(|r| Str(r.current_state.clone())),
                "resolved_1" => r(1).map(|r| Bool(r.resolved)),
                "fault_code_1" => r(1).map(|r| Num(r.fault_code.into())),
                "fault_code_2" => r(2).map(|r| Num(r.fault_code.into())),
                "complete_time_2" => r(2).map(|r| Str(r.complete_time.clone())),
                _ => None,
            }
        }
        Body::GetParameterNamesResponse(g) => match key {
            "count" => Some(Num(g.parameters.len() as u64)),
            "writable_count" => Some(Num(
                g.parameters.iter().filter(|p| p.writable).count() as u64
            )),
            "writable_raw_6" => g.parameters.get(5).map(|p| Bool(p.writable)),
            _ => None,
        },
        Body::SetParameterValuesResponse(r) if key == "status" => Some(Num(r.status.into())),
        Body::DeleteObjectResponse(r) if key == "status" => Some(Num(r.status.into())),
        Body::AddObjectResponse(r) => match key {
            "status" => Some(Num(r.status.into())),
            "instance_number" => Some(Num(r.instance_number.into())),
            _ => None,
        },
        Body::DownloadResponse(r) => match key {
            "status" => Some(Num(r.0.status.into())),
            "start_time" => s(&r.0.start_time),
            "complete_time" => s(&r.0.complete_time),
            _ => None,
        },
        Body::GetParameterAttributesResponse(g) => match key {
            "count" => Some(Num(g.parameters.len() as u64)),
            "name_1" => g.parameters.first().map(|p| Str(p.name.clone())),
            "notification_1" => g.parameters.first().map(|p| Num(p.notification.into())),
            "notification_2" => g.parameters.get(1).map(|p| Num(p.notification.into())),
            "access_list_2" => g.parameters.get(1).map(|p| Str(p.access_list.join(","))),
            _ => None,
        },
        Body::GetRPCMethodsResponse(g) => match key {
            "count" => Some(Num(g.methods.len() as u64)),
            "methods" => Some(Str(g.methods.join(","))),
            _ => None,
        },
        Body::Fault(f) => match key {
            "soap_faultcode" => s(&f.soap_code),
            "soap_faultstring" => s(&f.soap_string),
            _ => None,
        },
        _ => None,
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn check_ok(file: &str, entry: &Value, env: &Envelope) {
    let ctx = |what: &str| format!("{file}: {what}");
    assert_eq!(
        env.body.name(),
        str_of(entry, "method").unwrap(),
        "{}",
        ctx("method")
    );
    if let Some(v) = str_of(entry, "cwmp") {
        assert_eq!(
            env.version,
            CwmpVersion::from_short(v).unwrap(),
            "{}",
            ctx("cwmp version")
        );
    }
    assert_eq!(
        env.header.id.as_deref(),
        str_of(entry, "id"),
        "{}",
        ctx("cwmp:ID")
    );
    if let Some(b) = entry.get("hold_requests").and_then(Value::as_bool) {
        assert_eq!(env.header.hold_requests, Some(b), "{}", ctx("HoldRequests"));
    }
    if let Some(b) = entry.get("no_more_requests").and_then(Value::as_bool) {
        assert_eq!(
            env.header.no_more_requests,
            Some(b),
            "{}",
            ctx("NoMoreRequests")
        );
    }
    if let Some(t) = entry.get("session_timeout").and_then(Value::as_integer) {
        assert_eq!(
            env.header.session_timeout,
            Some(t as u32),
            "{}",
            ctx("SessionTimeout")
        );
    }

    let params = match &env.body {
        Body::Inform(inform) => {
            let d = &inform.device_id;
            assert_eq!(
                d.manufacturer,
                str_of(entry, "manufacturer").unwrap(),
                "{}",
                ctx("Manufacturer")
            );
            assert_eq!(d.oui, str_of(entry, "oui").unwrap(), "{}", ctx("OUI"));
            assert_eq!(
                d.product_class,
                str_of(entry, "product_class").unwrap(),
                "{}",
                ctx("ProductClass")
            );
            assert_eq!(
                d.serial_number,
                str_of(entry, "serial_number").unwrap(),
                "{}",
                ctx("SerialNumber")
            );
            let list = |k: &str| -> Vec<String> {
                entry[k]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect()
            };
            let codes: Vec<String> = inform.events.iter().map(|e| e.event_code.clone()).collect();
            assert_eq!(codes, list("events"), "{}", ctx("events"));
            let keys: Vec<String> = inform
                .events
                .iter()
                .map(|e| e.command_key.clone())
                .collect();
            assert_eq!(keys, list("command_keys"), "{}", ctx("command keys"));
            assert_eq!(
                i64::from(inform.max_envelopes),
                entry["max_envelopes"].as_integer().unwrap(),
                "{}",
                ctx("MaxEnvelopes")
            );
            assert_eq!(
                i64::from(inform.retry_count),
                entry["retry_count"].as_integer().unwrap(),
                "{}",
                ctx("RetryCount")
            );
            assert_eq!(
                parse_datetime(&inform.current_time).is_some(),
                entry["current_time_valid"].as_bool().unwrap(),
                "{}: CurrentTime {:?}",
                file,
                inform.current_time
            );
            Some(&inform.parameters)
        }
        Body::GetParameterValuesResponse(r) => Some(&r.parameters),
        Body::Fault(f) => {
            assert_eq!(
                i64::from(f.code),
                entry["fault_code"].as_integer().unwrap(),
                "{}",
                ctx("FaultCode")
            );
            assert_eq!(
                f.string,
                str_of(entry, "fault_string").unwrap(),
                "{}",
                ctx("FaultString")
            );
            let expected: Vec<(String, u32)> = entry
                .get("spv_faults")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|f| {
                            (
                                f["name"].as_str().unwrap().to_owned(),
                                f["code"].as_integer().unwrap() as u32,
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let got: Vec<(String, u32)> = f
                .set_parameter_values_faults
                .iter()
                .map(|s| (s.parameter_name.clone(), s.code))
                .collect();
            assert_eq!(got, expected, "{}", ctx("SetParameterValuesFault list"));
            None
        }
        _ => None,
    };
    if let Some(params) = params {
        if let Some(n) = entry.get("parameter_count").and_then(Value::as_integer) {
            assert_eq!(params.len() as i64, n, "{}", ctx("parameter count"));
        }
        let find = |name: &str| params.iter().find(|p| p.name == name);
        for (name, value) in entry
            .get("values")
            .and_then(Value::as_table)
            .into_iter()
            .flatten()
        {
            let p = find(name).unwrap_or_else(|| panic!("{file}: no parameter {name}"));
            assert_eq!(p.value, value.as_str().unwrap(), "{}", ctx(name));
        }
        for (name, ty) in entry
            .get("types")
            .and_then(Value::as_table)
            .into_iter()
            .flatten()
        {
            let p = find(name).unwrap_or_else(|| panic!("{file}: no parameter {name}"));
            assert_eq!(
                p.kind,
                ValueType::from_name(ty.as_str().unwrap()),
                "{}",
                ctx(name)
            );
        }
    }
    for (key, want) in entry
        .get("fields")
        .and_then(Value::as_table)
        .into_iter()
        .flatten()
    {
        let want = want.as_str().unwrap();
        match field(&env.body, env, key) {
            Some(Field::Str(got)) => assert_eq!(got, want, "{}", ctx(key)),
            Some(Field::Bool(got)) => assert_eq!(Some(got), parse_bool(want), "{}", ctx(key)),
            Some(Field::Num(got)) => assert_eq!(got.to_string(), want, "{}", ctx(key)),
            None => panic!("{file}: field {key} not found in {}", env.body.name()),
        }
    }
}

#[test]
fn corpus_matches_manifest() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let manifest = Value::Table(
        toml::from_str(&std::fs::read_to_string(dir.join("manifest.toml")).unwrap()).unwrap(),
    );
    let entries = manifest["envelope"].as_array().unwrap();
    assert!(
        entries.len() >= 15,
        "the corpus must hold at least 15 envelopes"
    );

    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".xml"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = entries
        .iter()
        .map(|e| str_of(e, "file").unwrap().to_owned())
        .collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "every corpus file is described in the manifest and vice versa"
    );

    for entry in entries {
        let file = str_of(entry, "file").unwrap();
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let decoded = Envelope::decode(&bytes);
        match str_of(entry, "expect").unwrap() {
            "error" => assert!(
                decoded.is_err(),
                "{file}: must be rejected, got {decoded:?}"
            ),
            "unknown_method" => {
                let env = decoded.unwrap_or_else(|e| panic!("{file}: {e}"));
                assert_eq!(
                    env.body,
                    Body::Unknown(str_of(entry, "method").unwrap().to_owned()),
                    "{file}"
                );
                assert_eq!(
                    env.header.id.as_deref(),
                    str_of(entry, "id"),
                    "{file}: cwmp:ID"
                );
            }
            "ok" => {
                let env = decoded.unwrap_or_else(|e| panic!("{file}: {e}"));
                check_ok(file, entry, &env);
                // What we write we must read back identically.
                let again = Envelope::decode(env.encode().as_bytes()).unwrap();
                assert_eq!(again, env, "{file}: encode/decode round trip");
            }
            other => panic!("{file}: unknown expect {other}"),
        }
    }
}
