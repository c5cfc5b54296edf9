//! What an Inform changes in the device record: pure, so it is tested
//! without a store.

use crate::cwmp::rpc::Inform;
use crate::cwmp::{CwmpVersion, Header};
use crate::store::{CachedValue, DeviceRecord, EventRecord, MAX_RECENT_EVENTS};

/// Event codes with special meaning.
pub const EVENT_BOOTSTRAP: &str = "0 BOOTSTRAP";
pub const EVENT_BOOT: &str = "1 BOOT";
/// The event of a check-in with nothing to tell.
pub const EVENT_PERIODIC: &str = "2 PERIODIC";

/// The device record and cached parameters after an Inform.
#[derive(Debug)]
pub struct InformOutcome {
    pub device: DeviceRecord,
    /// `0 BOOTSTRAP`: the device was reset or is new; the parameter cache
    /// must be forgotten before `parameters` are written.
    pub bootstrap: bool,
    pub parameters: Vec<(String, CachedValue)>,
}

/// Merges an Inform into what was known about the device.
pub fn apply_inform(
    existing: Option<DeviceRecord>,
    inform: &Inform,
    header: &Header,
    version: CwmpVersion,
    remote_addr: Option<String>,
    now_ms: u64,
) -> InformOutcome {
    let id = inform.device_id.device_id();
    let bootstrap = inform.has_event(EVENT_BOOTSTRAP);
    let mut device = existing
        .unwrap_or_else(|| DeviceRecord::new(id, inform.device_id.clone(), version, now_ms));
    if bootstrap {
        // A bootstrapped device has forgotten its configuration: forget what
        // we cached about it too, keeping identity and history.
        device.software_version = None;
        device.hardware_version = None;
        device.model_name = None;
        device.parameter_key = None;
        device.connection_request_url = None;
        device.last_bootstrap_ms = Some(now_ms);
    }
    if inform.has_event(EVENT_BOOT) || bootstrap {
        device.last_boot_ms = Some(now_ms);
    }
    // Manufacturer may change spelling across firmware; keep the newest.
    device.identity = inform.device_id.clone();
    device.cwmp_version = version;
    device.last_inform_ms = now_ms;
    device.inform_count += 1;
    // Imported from GenieACS until it talks to this ACS.
    device.imported_ms = None;
    if remote_addr.is_some() {
        device.remote_addr = remote_addr;
    }
    if let Some(root) = inform.parameters.iter().find_map(|p| {
        ["Device.", "InternetGatewayDevice."]
            .into_iter()
            .find(|r| p.name.starts_with(r))
    }) {
        device.root = Some(root.to_owned());
    }
    if header.session_timeout.is_some() {
        device.cpe_session_timeout_s = header.session_timeout;
    }
    record_events(&mut device.recent_events, inform, now_ms);

    for p in &inform.parameters {
        let Some(field) = known_field(&p.name) else {
            continue;
        };
        let v = Some(p.value.clone());
        match field {
            Field::SoftwareVersion => device.software_version = v,
            Field::HardwareVersion => device.hardware_version = v,
            Field::ModelName => device.model_name = v,
            Field::ConnectionRequestUrl => device.connection_request_url = v,
            Field::ParameterKey => device.parameter_key = v,
        }
    }

    let parameters = inform
        .parameters
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                CachedValue {
                    value: p.value.clone(),
                    kind: p.kind.clone(),
                    updated_ms: now_ms,
                },
            )
        })
        .collect();
    InformOutcome {
        device,
        bootstrap,
        parameters,
    }
}

/// Adds an Inform's events to the recent ones. A periodic Inform with no
/// other event, after one like it, extends that entry (its count and
/// time) instead of adding one: the list keeps the last boots, faults and
/// transfers rather than filling with check-ins, and a periodic session
/// changes only the device record's last entry, which the store writes
/// apart from the rest (`store/contact.rs`).
fn record_events(recent: &mut Vec<EventRecord>, inform: &Inform, now_ms: u64) {
    let only_periodic = matches!(inform.events.as_slice(), [e] if e.event_code == EVENT_PERIODIC);
    if only_periodic {
        if let Some(last) = recent.last_mut().filter(|l| l.code == EVENT_PERIODIC) {
            last.first_ms.get_or_insert(last.at_ms);
            last.count = last.count.saturating_add(1);
            last.at_ms = now_ms;
            last.command_key.clone_from(&inform.events[0].command_key);
            return;
        }
    }
    for e in &inform.events {
        recent.push(EventRecord::new(
            e.event_code.clone(),
            e.command_key.clone(),
            now_ms,
        ));
    }
    let excess = recent.len().saturating_sub(MAX_RECENT_EVENTS);
    recent.drain(..excess);
}

enum Field {
    SoftwareVersion,
    HardwareVersion,
    ModelName,
    ConnectionRequestUrl,
    ParameterKey,
}

/// Recognises the identity parameters of both data-model roots
/// (`Device.` and `InternetGatewayDevice.`).
fn known_field(path: &str) -> Option<Field> {
    let rest = path
        .strip_prefix("Device.")
        .or_else(|| path.strip_prefix("InternetGatewayDevice."))?;
    Some(match rest {
        "DeviceInfo.SoftwareVersion" => Field::SoftwareVersion,
        "DeviceInfo.HardwareVersion" => Field::HardwareVersion,
        "DeviceInfo.ModelName" => Field::ModelName,
        "ManagementServer.ConnectionRequestURL" => Field::ConnectionRequestUrl,
        "ManagementServer.ParameterKey" => Field::ParameterKey,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cwmp::rpc::{DeviceIdStruct, EventStruct};
    use crate::cwmp::{ParameterValue, ValueType};

    fn inform(events: &[&str], params: &[(&str, &str)]) -> Inform {
        Inform {
            device_id: DeviceIdStruct {
                manufacturer: "TP-Link".into(),
                oui: "1C61B4".into(),
                product_class: "Device2".into(),
                serial_number: "SN1".into(),
            },
            events: events.iter().map(|e| EventStruct::new(*e, "")).collect(),
            max_envelopes: 1,
            current_time: String::new(),
            retry_count: 0,
            parameters: params
                .iter()
                .map(|(n, v)| ParameterValue::new(*n, *v, ValueType::String))
                .collect(),
        }
    }

    #[test]
    fn first_inform_creates_the_record() {
        let i = inform(
            &["0 BOOTSTRAP", "1 BOOT"],
            &[
                ("Device.DeviceInfo.SoftwareVersion", "1.0"),
                (
                    "Device.ManagementServer.ConnectionRequestURL",
                    "http://10.0.0.2:7547/",
                ),
            ],
        );
        let out = apply_inform(
            None,
            &i,
            &Header::default(),
            CwmpVersion::V1_2,
            Some("127.0.0.1".into()),
            1000,
        );
        assert!(out.bootstrap);
        assert_eq!(out.device.id, "1C61B4-Device2-SN1");
        assert_eq!(out.device.first_seen_ms, 1000);
        assert_eq!(out.device.software_version.as_deref(), Some("1.0"));
        assert_eq!(
            out.device.connection_request_url.as_deref(),
            Some("http://10.0.0.2:7547/")
        );
        assert_eq!(out.device.last_boot_ms, Some(1000));
        assert_eq!(out.device.recent_events.len(), 2);
        assert_eq!(out.parameters.len(), 2);
    }

    #[test]
    fn later_informs_keep_history_and_cap_events() {
        let first = apply_inform(
            None,
            &inform(&["0 BOOTSTRAP"], &[]),
            &Header::default(),
            CwmpVersion::V1_0,
            None,
            1,
        )
        .device;
        let mut d = first;
        for t in 2..50 {
            let event = if t % 2 == 0 {
                "2 PERIODIC"
            } else {
                "4 VALUE CHANGE"
            };
            d = apply_inform(
                Some(d),
                &inform(&[event], &[]),
                &Header::default(),
                CwmpVersion::V1_0,
                None,
                t,
            )
            .device;
        }
        assert_eq!(d.first_seen_ms, 1);
        assert_eq!(d.last_inform_ms, 49);
        assert_eq!(d.inform_count, 49);
        assert_eq!(d.recent_events.len(), MAX_RECENT_EVENTS);
        assert_eq!(d.recent_events.last().unwrap().at_ms, 49);
        assert!(d.recent_events.iter().all(|e| e.count == 1));
        assert_eq!(d.last_bootstrap_ms, Some(1));
    }

    #[test]
    fn a_run_of_periodic_informs_is_one_entry() {
        let step = |d: Option<DeviceRecord>, events: &[&str], t: u64| {
            let i = inform(events, &[]);
            apply_inform(d, &i, &Header::default(), CwmpVersion::V1_0, None, t).device
        };
        let mut d = step(None, &["1 BOOT"], 1);
        for t in 2..=40 {
            d = step(Some(d), &["2 PERIODIC"], t);
        }
        let codes = |d: &DeviceRecord| -> Vec<(String, u32)> {
            d.recent_events
                .iter()
                .map(|e| (e.code.clone(), e.count))
                .collect()
        };
        assert_eq!(
            codes(&d),
            [("1 BOOT".to_owned(), 1), ("2 PERIODIC".to_owned(), 39)]
        );
        let run = &d.recent_events[1];
        assert_eq!((run.first_ms, run.at_ms), (Some(2), 40));
        assert_eq!(d.inform_count, 40);
        // Anything else starts a new entry, and so does the next check-in.
        d = step(Some(d), &["2 PERIODIC", "4 VALUE CHANGE"], 41);
        d = step(Some(d), &["2 PERIODIC"], 42);
        d = step(Some(d), &["2 PERIODIC"], 43);
        assert_eq!(
            codes(&d)[2..],
            [
                ("2 PERIODIC".to_owned(), 1),
                ("4 VALUE CHANGE".to_owned(), 1),
                ("2 PERIODIC".to_owned(), 2)
            ]
        );
        assert_eq!(d.recent_events[4].first_ms, Some(42));
    }

    #[test]
    fn bootstrap_forgets_cached_state_but_not_identity() {
        let i = inform(
            &["1 BOOT"],
            &[("InternetGatewayDevice.ManagementServer.ParameterKey", "k1")],
        );
        let d = apply_inform(None, &i, &Header::default(), CwmpVersion::V1_0, None, 1).device;
        assert_eq!(d.parameter_key.as_deref(), Some("k1"));
        let d = apply_inform(
            Some(d),
            &inform(&["0 BOOTSTRAP"], &[]),
            &Header::default(),
            CwmpVersion::V1_0,
            None,
            2,
        )
        .device;
        assert_eq!(d.parameter_key, None);
        assert_eq!(d.first_seen_ms, 1);
        assert_eq!(d.last_bootstrap_ms, Some(2));
    }
}
