use super::*;
use crate::config::Secret;
use crate::cwmp::rpc::{GetParameterValuesResponse, SetParameterValuesResponse};
use crate::cwmp::{ParameterValue, SetParameterValuesFault, ValueType};
use crate::provision::plan::WifiConfig;
use crate::provision::targets::tests::export;

fn deco() -> (DataModelTree, Values) {
    export(include_str!("../../../simulators/models/deco.csv"))
}

fn ctx() -> FlowContext {
    FlowContext {
        profiles: Arc::new(Profiles::load(None).unwrap()),
        facts: Facts {
            manufacturer: "TP-Link".into(),
            oui: "1C61B4".into(),
            product_class: "Device2".into(),
            model_name: None,
            root: "Device.".into(),
        },
        key: Arc::new(hmac::Key::new(hmac::HMAC_SHA256, b"k")),
        management: Some(ManagementConfig {
            periodic_interval_s: Some(300),
            cr_username: "DECO1".into(),
            cr_password: Secret::new("cr-pass-0123"),
        }),
        sip_servers: SipServers::default(),
        applied_key: None,
    }
}

fn desired(pass: &str) -> Desired {
    Desired {
        wifi: Some(WifiConfig {
            ssid: "Gigafibre-Roy".into(),
            ssid_5g: "Gigafibre-Roy".into(),
            passphrase: Some(Secret::new(pass)),
            enabled: true,
        }),
        ..Desired::default()
    }
}

/// What the device answers to a GetParameterValues: its values for the
/// names asked for (as a strict CPE: every one must exist).
fn answer(values: &Values, req: &Body) -> Body {
    let Body::GetParameterValues(g) = req else {
        panic!("expected a GetParameterValues, got {}", req.name())
    };
    GetParameterValuesResponse {
        parameters: g
            .names
            .iter()
            .map(|n| {
                let v = values
                    .get(n)
                    .unwrap_or_else(|| panic!("asked for {n}, which the device lacks"));
                ParameterValue::new(n.as_str(), v.as_str(), ValueType::String)
            })
            .collect(),
    }
    .into()
}

fn sent(step: FlowStep) -> Body {
    match step {
        FlowStep::Send(b) => b,
        other => panic!("expected an RPC, got {other:?}"),
    }
}

fn fault(code: u32) -> Fault {
    Fault {
        soap_code: "Client".into(),
        soap_string: "CWMP fault".into(),
        code,
        string: "x".into(),
        set_parameter_values_faults: vec![],
    }
}

#[test]
fn full_run_read_resolve_set_verify_with_names_the_device_has() {
    let (tree, mut values) = deco();
    values.insert(
        "Device.Ethernet.Interface.1.MACAddress".into(),
        "1C:61:B4:00:00:01".into(),
    );
    let mut f = Flow::new(ctx(), None);
    let read = sent(f.begin(Some(&tree)));
    let step = f.on_response(answer(&values, &read), Some(&tree));
    let FlowStep::NeedDesired(req) = step else {
        panic!("{step:?}")
    };
    assert_eq!(req.identity.mac.as_deref(), Some("1c61b4000001"));
    assert_eq!(
        f.targets().unwrap().name,
        "tplink-deco",
        "the model name read picks the family"
    );
    let Body::SetParameterValues(spv) = sent(f.supply(
        DesiredOutcome::Found {
            equipment: "EQ-00001".into(),
            modified: Some("m1".into()),
            desired: desired("k7Hq2mZp9xWe"),
        },
        Some(&tree),
    )) else {
        panic!()
    };
    let names: Vec<&str> = spv.parameters.iter().map(|p| p.name.as_str()).collect();
    for n in &names {
        assert!(
            tree.can_write(n),
            "{n} is not a writable name of the device"
        );
    }
    for n in [
        "Device.WiFi.SSID.1.SSID",
        "Device.WiFi.SSID.3.SSID",
        "Device.WiFi.AccessPoint.1.Security.KeyPassphrase",
        "Device.WiFi.AccessPoint.3.Security.KeyPassphrase",
        "Device.ManagementServer.ConnectionRequestPassword",
    ] {
        assert!(names.contains(&n), "{n} not in {names:?}");
    }
    assert!(
        !names
            .iter()
            .any(|n| n.contains("SSID.9.") || n.contains("SSID.2."))
    );
    let verify = sent(f.on_response(SetParameterValuesResponse { status: 0 }.into(), Some(&tree)));
    let mut after = values.clone();
    for p in &spv.parameters {
        after.insert(p.name.clone(), p.value.clone());
    }
    after.insert(
        "Device.ManagementServer.ParameterKey".into(),
        spv.parameter_key.clone(),
    );
    let FlowStep::Finished(Outcome::Provisioned {
        equipment,
        key,
        pushed,
        ..
    }) = f.on_response(answer(&after, &verify), Some(&tree))
    else {
        panic!()
    };
    assert_eq!(equipment, "EQ-00001");
    assert_eq!(key, spv.parameter_key);
    assert_eq!(pushed, spv.parameters.len());
}

#[test]
fn a_9005_relearns_the_subtree_once_and_asks_again() {
    let (tree, values) = deco();
    let mut f = Flow::new(ctx(), None);
    sent(f.begin(Some(&tree)));
    let FlowStep::Relearn(path) = f.on_response(Body::Fault(fault(9005)), Some(&tree)) else {
        panic!()
    };
    assert_eq!(path, "Device.");
    // The device lost its 5 GHz network since the discovery.
    let mut smaller = tree.clone();
    smaller.replace_subtree("Device.WiFi.SSID.3.", Vec::new());
    let read = sent(f.relearned(Some(&smaller)));
    let Body::GetParameterValues(g) = &read else {
        panic!()
    };
    assert!(!g.names.iter().any(|n| n.starts_with("Device.WiFi.SSID.3.")));
    let FlowStep::NeedDesired(_) = f.on_response(answer(&values, &read), Some(&smaller)) else {
        panic!()
    };
    // A second 9005 in the same run ends it instead of looping.
    let mut f = Flow::new(ctx(), None);
    sent(f.begin(Some(&tree)));
    f.on_response(Body::Fault(fault(9005)), Some(&tree));
    sent(f.relearned(Some(&tree)));
    assert!(matches!(
        f.on_response(Body::Fault(fault(9005)), Some(&tree)),
        FlowStep::Finished(Outcome::ReadFailed { .. })
    ));
}

#[test]
fn an_unknown_data_model_is_learned_first() {
    let (tree, _) = deco();
    let mut f = Flow::new(ctx(), None);
    assert_eq!(f.begin(None), FlowStep::Relearn("Device.".into()));
    assert_eq!(sent(f.relearned(Some(&tree))).name(), "GetParameterValues");
    let mut f = Flow::new(ctx(), None);
    f.begin(None);
    assert!(matches!(
        f.relearned(None),
        FlowStep::Finished(Outcome::ReadFailed { .. })
    ));
}

#[test]
fn invalid_erpnext_values_are_not_pushed() {
    let (tree, values) = deco();
    let mut f = Flow::new(ctx(), None);
    let read = sent(f.begin(Some(&tree)));
    f.on_response(answer(&values, &read), Some(&tree));
    let FlowStep::Finished(Outcome::Invalid { errors, .. }) = f.supply(
        DesiredOutcome::Found {
            equipment: "EQ-1".into(),
            modified: None,
            desired: desired("seven77"),
        },
        Some(&tree),
    ) else {
        panic!()
    };
    assert_eq!(errors[0].field, "custom_wifi_password");
}

#[test]
fn unknown_device_still_gets_the_acs_settings() {
    let (tree, values) = deco();
    let mut f = Flow::new(ctx(), None);
    let read = sent(f.begin(Some(&tree)));
    f.on_response(answer(&values, &read), Some(&tree));
    let Body::SetParameterValues(spv) = sent(f.supply(DesiredOutcome::Unresolved, Some(&tree)))
    else {
        panic!()
    };
    assert!(
        spv.parameters
            .iter()
            .all(|p| p.name.starts_with("Device.ManagementServer.")),
        "{spv:?}"
    );
    // Applied at reboot (status 1): no verification, the run ends as
    // what ERPNext said.
    assert!(matches!(
        f.on_response(SetParameterValuesResponse { status: 1 }.into(), Some(&tree)),
        FlowStep::Finished(Outcome::Unresolved { .. })
    ));
}

#[test]
fn check_run_without_changes_sends_nothing() {
    let (tree, values) = deco();
    let mut f = Flow::new(ctx(), Some(("EQ-1".into(), Some("m1".into()))));
    let FlowStep::NeedDesired(req) = f.begin(Some(&tree)) else {
        panic!()
    };
    assert_eq!(req.check, Some(("EQ-1".into(), Some("m1".into()))));
    assert_eq!(
        f.supply(DesiredOutcome::Unchanged, Some(&tree)),
        FlowStep::Finished(Outcome::Unchanged)
    );
    // A changed record: read, then set.
    let mut f = Flow::new(ctx(), Some(("EQ-1".into(), Some("m1".into()))));
    f.begin(Some(&tree));
    let read = sent(f.supply(
        DesiredOutcome::Found {
            equipment: "EQ-1".into(),
            modified: Some("m2".into()),
            desired: desired("n3wPassphrase"),
        },
        Some(&tree),
    ));
    assert_eq!(read.name(), "GetParameterValues");
    assert_eq!(
        sent(f.on_response(answer(&values, &read), Some(&tree))).name(),
        "SetParameterValues"
    );
    // ERPNext down during a check: deferred, device untouched.
    let mut f = Flow::new(ctx(), Some(("EQ-1".into(), None)));
    f.begin(Some(&tree));
    assert_eq!(
        f.supply(DesiredOutcome::Unavailable("down".into()), Some(&tree)),
        FlowStep::Finished(Outcome::Deferred {
            reason: "down".into()
        })
    );
}

#[test]
fn a_refused_set_is_a_fault_and_a_missing_name_in_it_is_relearned() {
    let (tree, values) = deco();
    let run = || {
        let mut f = Flow::new(ctx(), None);
        let read = sent(f.begin(Some(&tree)));
        f.on_response(answer(&values, &read), Some(&tree));
        sent(f.supply(
            DesiredOutcome::Found {
                equipment: "EQ-1".into(),
                modified: None,
                desired: desired("k7Hq2mZp9xWe"),
            },
            Some(&tree),
        ));
        f
    };
    let mut f = run();
    let spv_fault = Fault {
        set_parameter_values_faults: vec![SetParameterValuesFault {
            parameter_name: "Device.WiFi.SSID.1.SSID".into(),
            code: 9007,
            string: "Invalid parameter value".into(),
        }],
        ..fault(9003)
    };
    let FlowStep::Finished(Outcome::CpeFault { code, message }) =
        f.on_response(Body::Fault(spv_fault), Some(&tree))
    else {
        panic!()
    };
    assert_eq!(code, 9003);
    assert!(message.contains("Device.WiFi.SSID.1.SSID 9007"));
    let mut f = run();
    let missing = Fault {
        set_parameter_values_faults: vec![SetParameterValuesFault {
            parameter_name: "Device.WiFi.SSID.3.SSID".into(),
            code: 9005,
            string: "Invalid parameter name".into(),
        }],
        ..fault(9003)
    };
    assert_eq!(
        f.on_response(Body::Fault(missing), Some(&tree)),
        FlowStep::Relearn("Device.WiFi.SSID.3.".into())
    );
    let mut smaller = tree.clone();
    smaller.replace_subtree("Device.WiFi.SSID.3.", Vec::new());
    let Body::SetParameterValues(again) = sent(f.relearned(Some(&smaller))) else {
        panic!()
    };
    assert!(again.parameters.iter().all(|p| smaller.can_write(&p.name)));
}

#[test]
fn erpnext_down_leaves_a_provisioned_device_alone() {
    let (tree, mut values) = deco();
    let key_path = "Device.ManagementServer.ParameterKey";
    let read_with = |values: &Values, c: FlowContext| {
        let mut f = Flow::new(c, None);
        let read = sent(f.begin(Some(&tree)));
        f.on_response(answer(values, &read), Some(&tree));
        f
    };
    // Never provisioned (factory ParameterKey): the ACS's own settings.
    values.insert(key_path.into(), String::new());
    let mut f = read_with(&values, ctx());
    let Body::SetParameterValues(mgmt) =
        sent(f.supply(DesiredOutcome::Unavailable("down".into()), Some(&tree)))
    else {
        panic!()
    };
    // Provisioned (it carries the key last verified on it): nothing is
    // pushed, whether ERPNext is down or refuses us.
    values.insert(key_path.into(), "full-key".into());
    for answer in [
        DesiredOutcome::Unavailable("down".into()),
        DesiredOutcome::Failed("HTTP 417".into()),
    ] {
        let mut c = ctx();
        c.applied_key = Some("full-key".into());
        let mut f = read_with(&values, c);
        assert!(
            matches!(f.supply(answer, Some(&tree)), FlowStep::Finished(_)),
            "pushed to a provisioned device"
        );
    }
    // A device that does not carry it (another key, e.g. the ACS's
    // settings alone) still gets them.
    values.insert(key_path.into(), "other-key".into());
    let mut c = ctx();
    c.applied_key = Some("full-key".into());
    let mut f = read_with(&values, c);
    let Body::SetParameterValues(again) =
        sent(f.supply(DesiredOutcome::Unavailable("down".into()), Some(&tree)))
    else {
        panic!()
    };
    assert_eq!(again.parameter_key, mgmt.parameter_key);
}

/// A full run on a real export whose ERPNext record has PPPoE credentials
/// only, up to the request that reads the accounts.
fn pppoe_run(file: &str) -> (DataModelTree, Values, Flow, Body) {
    let (tree, values) = export(&crate::provision::export::real_export(file));
    let mut f = Flow::new(ctx(), None);
    let read = sent(f.begin(Some(&tree)));
    let FlowStep::NeedDesired(_) = f.on_response(answer(&values, &read), Some(&tree)) else {
        panic!("ERPNext is asked after the first read")
    };
    let ppp = Desired {
        ppp: Some(crate::provision::plan::PppConfig {
            username: "b1234567@gigafibre.ca".into(),
            password: Some(Secret::new("radius-pass-77")),
        }),
        ..Desired::default()
    };
    let accounts = sent(f.supply(
        DesiredOutcome::Found {
            equipment: "EQ-ONT".into(),
            modified: None,
            desired: ppp,
        },
        Some(&tree),
    ));
    (tree, values, f, accounts)
}

#[test]
fn pppoe_credentials_go_to_the_wan_ppp_interface_of_a_real_ont_and_are_verified() {
    let (tree, values, mut f, accounts) = pppoe_run("tplink-xx230v-gpon-ont.csv");
    let Body::GetParameterValues(g) = &accounts else {
        panic!("{accounts:?}")
    };
    assert!(
        g.names
            .contains(&"Device.PPP.Interface.3.LowerLayers".to_owned())
    );
    assert!(!g.names.iter().any(|n| n.ends_with("Password")));
    let Body::SetParameterValues(spv) =
        sent(f.on_response(answer(&values, &accounts), Some(&tree)))
    else {
        panic!()
    };
    let get = |n: &str| {
        spv.parameters
            .iter()
            .find(|p| p.name == n)
            .map(|p| p.value.as_str())
    };
    assert_eq!(
        get("Device.PPP.Interface.3.Username"),
        Some("b1234567@gigafibre.ca")
    );
    assert_eq!(
        get("Device.PPP.Interface.3.Password"),
        Some("radius-pass-77")
    );
    assert!(
        !spv.parameters
            .iter()
            .any(|p| p.name.starts_with("Device.PPP.Interface.1.")),
        "never the USB dongle's PPP"
    );
    let verify = sent(f.on_response(SetParameterValuesResponse { status: 0 }.into(), Some(&tree)));
    let Body::GetParameterValues(v) = &verify else {
        panic!()
    };
    assert!(
        v.names
            .contains(&"Device.PPP.Interface.3.Username".to_owned())
    );
    assert!(!v.names.iter().any(|n| n.ends_with("Password")));
    let mut after = values.clone();
    for p in &spv.parameters {
        after.insert(p.name.clone(), p.value.clone());
    }
    after.insert(
        "Device.ManagementServer.ParameterKey".into(),
        spv.parameter_key.clone(),
    );
    assert!(matches!(
        f.on_response(answer(&after, &verify), Some(&tree)),
        FlowStep::Finished(Outcome::Provisioned { .. })
    ));
}

#[test]
fn pppoe_credentials_are_never_sent_to_a_device_without_a_wan_ppp() {
    // The EX220 mesh router's only PPP interface is on its USB port.
    let (tree, values, mut f, accounts) = pppoe_run("tplink-ex220-tr181-mesh.csv");
    let step = f.on_response(answer(&values, &accounts), Some(&tree));
    if let FlowStep::Send(Body::SetParameterValues(spv)) = &step {
        assert!(
            !spv.parameters.iter().any(|p| p.name.contains("PPP.")),
            "{spv:?}"
        );
    }
}
