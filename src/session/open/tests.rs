use super::*;
use crate::cwmp::CwmpVersion;
use crate::cwmp::rpc::{DeviceIdStruct, EventStruct};
use crate::provision::plan::SipServers;
use crate::store::{DataModelInfo, ProvisionStatus, ProvisioningState};

fn inform(events: &[&str]) -> Inform {
    Inform {
        device_id: DeviceIdStruct {
            manufacturer: "Huawei".into(),
            oui: "00E0FC".into(),
            product_class: "HG8245H".into(),
            serial_number: "4857544300000001".into(),
        },
        events: events.iter().map(|e| EventStruct::new(*e, "")).collect(),
        max_envelopes: 1,
        current_time: String::new(),
        retry_count: 0,
        parameters: vec![],
    }
}

fn device() -> DeviceRecord {
    let i = inform(&[]);
    let mut d = DeviceRecord::new("00E0FC-HG8245H-X".into(), i.device_id, CwmpVersion::V1_0, 0);
    d.root = Some("InternetGatewayDevice.".into());
    d.software_version = Some("V5R019".into());
    d
}

fn discovered(mut d: DeviceRecord) -> DeviceRecord {
    d.data_model = Some(DataModelInfo {
        base: "b".into(),
        has_delta: false,
        names: 900,
        software_version: Some("V5R019".into()),
        discovered_ms: 1,
    });
    d.hosts_collected_ms = Some(1_000);
    d
}

fn policy(enabled: bool) -> ProvisioningPolicy {
    ProvisioningPolicy {
        enabled,
        erpnext: true,
        profiles: Arc::new(Profiles::load(None).unwrap()),
        key: Arc::new(hmac::Key::new(hmac::HMAC_SHA256, b"k")),
        sip_servers: SipServers::default(),
        periodic_interval_s: Some(300),
        recheck_ms: 3_600_000,
    }
}

fn decide(d: &mut DeviceRecord, events: &[&str], tasks: &[Task], enabled: bool) -> Opening {
    let p = policy(enabled);
    let sp = SessionPolicy {
        provisioning: &p,
        hosts_collect: true,
        hosts_max_age_ms: Some(3_600_000),
        max_attempts: 3,
    };
    open(d, &inform(events), tasks, &sp, 2_000, &mut || {
        "secret-xyz".into()
    })
}

#[test]
fn first_contact_discovers_provisions_and_collects_whatever_its_events() {
    // A device moved from another ACS: no BOOTSTRAP, just a periodic inform.
    let mut d = device();
    let o = decide(&mut d, &["2 PERIODIC"], &[], true);
    assert_eq!(o.work.discover.as_deref(), Some("InternetGatewayDevice."));
    assert!(o.work.flow.is_some());
    assert!(o.work.collect.is_some());
    assert!(!o.needs_tree, "discovered in the session, not loaded");
    assert_eq!(d.provisioning.cr_password.as_deref(), Some("secret-xyz"));
    assert_eq!(d.provisioning.profile.as_deref(), Some("generic-tr098"));
}

#[test]
fn a_known_device_rediscovers_only_after_a_bootstrap_or_new_firmware() {
    let mut d = discovered(device());
    d.provisioning = ProvisioningState {
        status: ProvisionStatus::Provisioned,
        equipment: Some("EQ-1".into()),
        last_attempt_ms: Some(1_900),
        ..Default::default()
    };
    let o = decide(&mut d, &["2 PERIODIC"], &[], true);
    assert_eq!(o.work.discover, None);
    assert!(o.work.flow.is_none(), "recheck not due");
    assert!(o.work.collect.is_none(), "hosts fresh");
    assert!(!o.needs_tree, "a periodic session loads nothing");
    let o = decide(&mut d, &["1 BOOT"], &[], true);
    assert_eq!(o.work.discover, None);
    assert!(o.work.flow.is_some());
    assert!(o.needs_tree, "a full run reads names from the stored model");
    let o = decide(&mut d, &["0 BOOTSTRAP"], &[], true);
    assert!(o.work.discover.is_some());
    d.software_version = Some("V5R020".into());
    let o = decide(&mut d, &["2 PERIODIC"], &[], true);
    assert!(o.work.discover.is_some(), "new firmware");
}

#[test]
fn ops_actions_start_or_fail_with_a_reason() {
    let action = |id, a| Task {
        id,
        device_id: "D".into(),
        request: TaskRequest::Action(a),
        name: String::new(),
        status: TaskStatus::Pending,
        created_ms: 0,
        updated_ms: 0,
        attempts: 0,
        response: None,
        fault: None,
        outcome: None,
    };
    let tasks = [
        action(1, TaskAction::Reprovision),
        action(2, TaskAction::CollectHosts),
    ];
    let mut d = discovered(device());
    let o = decide(&mut d, &["6 CONNECTION REQUEST"], &tasks, true);
    assert!(d.provisioning.requested);
    assert!(o.work.flow.is_some() && o.work.collect.is_some());
    let statuses: Vec<TaskStatus> = o
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Task(t) => Some(t.status),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, [TaskStatus::Sent, TaskStatus::Sent]);
    let mut d = discovered(device());
    let o = decide(&mut d, &["6 CONNECTION REQUEST"], &tasks, false);
    assert!(o.work.flow.is_none());
    let Some(Effect::Task(t)) = o.effects.first() else {
        panic!()
    };
    assert_eq!(t.status, TaskStatus::Failed);
    assert!(
        t.outcome
            .as_deref()
            .unwrap()
            .contains("ACS_PROVISIONING=off")
    );
}
