use super::*;
use crate::cwmp::rpc::*;
use crate::cwmp::{SetParameterValuesFault, ValueType};
use crate::store::TaskRequest;

fn task(id: u64, request: impl Into<Body>) -> Task {
    Task {
        id,
        device_id: "D".into(),
        request: TaskRequest::Rpc(request.into()),
        name: String::new(),
        status: TaskStatus::Pending,
        created_ms: 0,
        updated_ms: 0,
        attempts: 0,
        response: None,
        fault: None,
        outcome: None,
    }
}

fn gpv(names: &[&str]) -> GetParameterValues {
    GetParameterValues {
        names: names.iter().map(|s| s.to_string()).collect(),
    }
}

fn start(tasks: Vec<Task>) -> Session {
    let (s, effects) = Session::start(
        "D".into(),
        CwmpVersion::V1_2,
        tasks,
        SessionLimits::default(),
        10,
    );
    assert!(effects.is_empty());
    s
}

fn cpe(id: &str, body: impl Into<Body>) -> Input {
    Input::Envelope(Envelope::new(CwmpVersion::V1_2, Some(id.into()), body))
}

fn sent(step: &Step) -> &Envelope {
    match &step.reply {
        Reply::Envelope(e) => e,
        Reply::NoContent => panic!("expected an envelope, got 204"),
        Reply::NeedDesired(r) => panic!("expected an envelope, got a request for ERPNext {r:?}"),
    }
}

fn task_effects(step: &Step) -> Vec<&Task> {
    step.effects
        .iter()
        .filter_map(|e| match e {
            Effect::Task(t) => Some(t),
            _ => None,
        })
        .collect()
}

#[test]
fn empty_post_without_tasks_ends_the_session() {
    let mut s = start(vec![]);
    let step = s.handle(Input::Empty, 11);
    assert_eq!(step.reply, Reply::NoContent);
    assert!(step.ends_session());
    assert!(s.is_ended());
}

#[test]
fn queued_requests_go_out_one_per_response_and_are_recorded() {
    let mut s = start(vec![
        task(1, gpv(&["Device.WiFi.SSID.1.SSID"])),
        task(2, Reboot::default()),
    ]);
    let step = s.handle(Input::Empty, 11);
    let env = sent(&step);
    assert_eq!(env.body.name(), "GetParameterValues");
    assert_eq!(env.version, CwmpVersion::V1_2);
    let id = env.header.id.clone().unwrap();
    assert_eq!(task_effects(&step)[0].status, TaskStatus::Sent);
    assert_eq!(task_effects(&step)[0].attempts, 1);
    assert_eq!(s.in_flight_task(), Some(1));

    let response = GetParameterValuesResponse {
        parameters: vec![ParameterValue::new(
            "Device.WiFi.SSID.1.SSID",
            "Home",
            ValueType::String,
        )],
    };
    let step = s.handle(cpe(&id, response.clone()), 12);
    let done = task_effects(&step);
    assert_eq!(done[0].id, 1);
    assert_eq!(done[0].status, TaskStatus::Done);
    assert_eq!(done[0].response, Some(response.clone().into()));
    assert!(
        step.effects
            .contains(&Effect::ParameterValues(response.parameters))
    );
    assert_eq!(sent(&step).body.name(), "Reboot");

    let step = s.handle(cpe("x", RebootResponse {}), 13);
    assert_eq!(task_effects(&step)[0].status, TaskStatus::Done);
    assert_eq!(step.reply, Reply::NoContent);
}

#[test]
fn a_cpe_fault_fails_that_task_only() {
    let mut s = start(vec![
        task(
            1,
            SetParameterValues {
                parameters: vec![ParameterValue::new(
                    "Device.WiFi.AccessPoint.1.Security.KeyPassphrase",
                    "short",
                    ValueType::String,
                )],
                parameter_key: "k".into(),
            },
        ),
        task(2, gpv(&["Device.DeviceInfo."])),
    ]);
    s.handle(Input::Empty, 11);
    let fault = Fault {
        soap_code: "Client".into(),
        soap_string: "CWMP fault".into(),
        code: 9003,
        string: "Invalid arguments".into(),
        set_parameter_values_faults: vec![SetParameterValuesFault {
            parameter_name: "Device.WiFi.AccessPoint.1.Security.KeyPassphrase".into(),
            code: 9007,
            string: "Invalid parameter value".into(),
        }],
    };
    let step = s.handle(cpe("acs-1-1", Body::Fault(fault)), 12);
    let failed = task_effects(&step)[0];
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(failed.fault.as_ref().unwrap().code, 9003);
    assert!(failed.fault.as_ref().unwrap().message.contains("9007"));
    assert!(step.effects.iter().any(|e| matches!(
        e,
        Effect::Fault {
            source: "cpe",
            code: 9003,
            task_id: Some(1),
            ..
        }
    )));
    // The session goes on with the next task.
    assert_eq!(sent(&step).body.name(), "GetParameterValues");
}

#[test]
fn cpe_requests_are_answered_with_their_id() {
    let mut s = start(vec![]);
    let tc = TransferComplete {
        command_key: "fw-1".into(),
        fault: TransferFault {
            fault_code: 9010,
            fault_string: "checksum".into(),
        },
        ..Default::default()
    };
    let step = s.handle(cpe("77", tc), 11);
    let env = sent(&step);
    assert_eq!(env.body.name(), "TransferCompleteResponse");
    assert_eq!(env.header.id.as_deref(), Some("77"));
    assert!(
        matches!(&step.effects[0], Effect::Completion { command_key, fault: Some(f) } if command_key == "fw-1" && f.code == 9010)
    );

    let step = s.handle(cpe("78", GetRPCMethods {}), 12);
    let Body::GetRPCMethodsResponse(r) = &sent(&step).body else {
        panic!()
    };
    assert!(r.methods.iter().any(|m| m == "Inform"));
    assert!(!s.is_ended());
}

#[test]
fn unknown_and_misdirected_methods_get_fault_8000() {
    let mut s = start(vec![]);
    let step = s.handle(cpe("5", Body::Unknown("FrobnicateWidget".into())), 11);
    let Body::Fault(f) = &sent(&step).body else {
        panic!()
    };
    assert_eq!(f.code, 8000);
    assert_eq!(sent(&step).header.id.as_deref(), Some("5"));
    let step = s.handle(cpe("6", Reboot::default()), 12);
    let Body::Fault(f) = &sent(&step).body else {
        panic!()
    };
    assert_eq!(f.code, 8000);
    let step = s.handle(cpe("7", Inform::default()), 13);
    let Body::Fault(f) = &sent(&step).body else {
        panic!()
    };
    assert_eq!(f.code, 8003);
}

#[test]
fn a_mismatched_response_fails_the_task() {
    let mut s = start(vec![task(1, gpv(&["Device."]))]);
    s.handle(Input::Empty, 11);
    let step = s.handle(cpe("x", RebootResponse {}), 12);
    let t = task_effects(&step)[0];
    assert_eq!(t.status, TaskStatus::Failed);
    assert!(
        t.fault
            .as_ref()
            .unwrap()
            .message
            .contains("expected GetParameterValuesResponse")
    );
    assert_eq!(step.reply, Reply::NoContent);
}

#[test]
fn rpc_cap_ends_the_session_and_leaves_the_rest_queued() {
    let limits = SessionLimits {
        max_rpcs: 2,
        max_attempts: 3,
    };
    let tasks = (1..=4).map(|i| task(i, Reboot::default())).collect();
    let (mut s, _) = Session::start("D".into(), CwmpVersion::V1_0, tasks, limits, 0);
    let mut step = s.handle(Input::Empty, 1);
    let mut sent_count = 0;
    while step.reply != Reply::NoContent {
        sent_count += 1;
        step = s.handle(cpe("x", RebootResponse {}), 2);
    }
    assert_eq!(sent_count, 2);
}

#[test]
fn tasks_out_of_attempts_fail_at_session_start() {
    let mut t = task(1, Reboot::default());
    t.status = TaskStatus::Sent;
    t.attempts = 3;
    let (mut s, effects) = Session::start(
        "D".into(),
        CwmpVersion::V1_0,
        vec![t, task(2, FactoryReset {})],
        SessionLimits::default(),
        5,
    );
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Task(t) if t.id == 1 && t.status == TaskStatus::Failed))
    );
    assert_eq!(sent(&s.handle(Input::Empty, 6)).body.name(), "FactoryReset");
}

#[test]
fn transfers_get_a_command_key_and_wait_for_completion() {
    let mut s = start(vec![task(
        9,
        Download {
            file_type: "1 Firmware Upgrade Image".into(),
            url: "http://fw/x.bin".into(),
            ..Default::default()
        },
    )]);
    let step = s.handle(Input::Empty, 1);
    let Body::Download(d) = &sent(&step).body else {
        panic!()
    };
    assert_eq!(d.command_key, "acs-task-9");
    let step = s.handle(
        cpe(
            "x",
            DownloadResponse(TransferResponse {
                status: 1,
                ..Default::default()
            }),
        ),
        2,
    );
    assert_eq!(
        task_effects(&step)[0].status,
        TaskStatus::AwaitingCompletion
    );
}

#[test]
fn a_response_in_the_cpe_turn_hands_over_the_turn() {
    let mut s = start(vec![task(1, Reboot::default())]);
    // No empty POST: a stray response means the CPE has no requests.
    let step = s.handle(cpe("x", RebootResponse {}), 1);
    assert!(
        step.effects
            .iter()
            .any(|e| matches!(e, Effect::Fault { source: "acs", .. }))
    );
    assert_eq!(sent(&step).body.name(), "Reboot");
}

#[test]
fn inform_response_echoes_namespace_id_and_negotiates_version() {
    let mut inform = Envelope::new(CwmpVersion::V1_0, Some("abc".into()), Inform::default());
    let r = inform_response(&inform);
    assert_eq!(r.version, CwmpVersion::V1_0);
    assert_eq!(r.header.id.as_deref(), Some("abc"));
    assert_eq!(r.header.use_cwmp_version, None);
    assert_eq!(
        r.body,
        Body::InformResponse(InformResponse { max_envelopes: 1 })
    );
    inform.header.supported_cwmp_versions = Some("1.0,1.1,1.2,1.3,1.4,1.5".into());
    assert_eq!(
        inform_response(&inform).header.use_cwmp_version.as_deref(),
        Some("1.4")
    );
}

mod discovery {
    use super::*;
    use crate::config::Secret;
    use crate::provision::flow::{Facts, FlowContext};
    use crate::provision::plan::{ManagementConfig, SipServers};
    use crate::provision::profile::Profiles;
    use crate::provision::targets::tests::export;
    use std::sync::Arc;

    fn facts() -> Facts {
        Facts {
            manufacturer: "TP-Link".into(),
            oui: "1C61B4".into(),
            product_class: "Device2".into(),
            model_name: None,
            root: "Device.".into(),
        }
    }

    fn work(flow: bool) -> SessionWork {
        let profiles = Arc::new(Profiles::load(None).unwrap());
        let flow = flow.then(|| {
            Flow::new(
                FlowContext {
                    profiles: profiles.clone(),
                    facts: facts(),
                    key: Arc::new(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"k")),
                    management: Some(ManagementConfig {
                        periodic_interval_s: Some(300),
                        cr_username: "D".into(),
                        cr_password: Secret::new("cr-pass-0123"),
                    }),
                    sip_servers: SipServers::default(),
                    applied_key: None,
                },
                None,
            )
        });
        SessionWork {
            discover: Some("Device.".into()),
            tree: None,
            flow,
            collect: Some(CollectPlan {
                profiles,
                facts: facts(),
            }),
        }
    }

    fn names_answer(
        tree: &crate::provision::datamodel::DataModelTree,
    ) -> GetParameterNamesResponse {
        GetParameterNamesResponse {
            parameters: tree
                .iter()
                .map(|(n, w)| ParameterInfo {
                    name: n.to_owned(),
                    writable: w,
                })
                .collect(),
        }
    }

    #[test]
    fn discovery_then_model_name_then_collection_by_name() {
        let (tree, values) = export(include_str!("../../simulators/models/deco.csv"));
        let (mut s, _) = Session::start_with(
            "D".into(),
            CwmpVersion::V1_0,
            vec![],
            SessionLimits::default(),
            work(false),
            0,
        );
        let step = s.handle(Input::Empty, 1);
        let Body::GetParameterNames(g) = &sent(&step).body else {
            panic!("{:?}", step.reply)
        };
        assert_eq!(
            (g.parameter_path.as_str(), g.next_level),
            ("Device.", false)
        );
        let step = s.handle(cpe("n", names_answer(&tree)), 2);
        assert!(
            step.effects
                .iter()
                .any(|e| matches!(e, Effect::DataModel(t) if t.len() == tree.len()))
        );
        let Body::GetParameterValues(g) = &sent(&step).body else {
            panic!()
        };
        assert_eq!(g.names, ["Device.DeviceInfo.ModelName"]);
        let model = GetParameterValuesResponse {
            parameters: vec![ParameterValue::new(
                "Device.DeviceInfo.ModelName",
                "EX220",
                ValueType::String,
            )],
        };
        let step = s.handle(cpe("m", model), 3);
        assert!(step.effects.contains(&Effect::ModelName("EX220".into())));
        // Discovered in this session: the collector reads by name at once,
        // names the device has, no partial path.
        let Body::GetParameterValues(g) = &sent(&step).body else {
            panic!()
        };
        assert!(g.names.iter().all(|n| tree.has_leaf(n)), "{:?}", g.names);
        assert!(g.names.iter().any(|n| n.starts_with("Device.Hosts.Host.")));
        let answer = GetParameterValuesResponse {
            parameters: g
                .names
                .iter()
                .map(|n| ParameterValue::new(n.as_str(), values[n].as_str(), ValueType::String))
                .collect(),
        };
        let step = s.handle(cpe("h", answer), 4);
        assert!(
            step.effects
                .iter()
                .any(|e| matches!(e, Effect::HostsCollected { ok: true, .. }))
        );
        assert_eq!(step.reply, Reply::NoContent);
    }

    #[test]
    fn a_device_refusing_discovery_is_asked_twice_at_most_and_nothing_else_by_name() {
        let (mut s, _) = Session::start_with(
            "D".into(),
            CwmpVersion::V1_0,
            vec![],
            SessionLimits::default(),
            work(true),
            0,
        );
        let refuse = || {
            Body::Fault(Fault {
                code: 9000,
                string: "Method not supported".into(),
                ..Fault::default()
            })
        };
        let mut paths = Vec::new();
        let mut effects = Vec::new();
        let mut step = s.handle(Input::Empty, 1);
        while let Reply::Envelope(env) = &step.reply {
            match &env.body {
                Body::GetParameterNames(g) => paths.push(g.parameter_path.clone()),
                other => panic!("asked {} of a device whose names are unknown", other.name()),
            }
            step = s.handle(cpe("x", refuse()), 2);
            effects.extend(std::mem::take(&mut step.effects));
        }
        assert_eq!(paths, ["Device.", ""], "the root, then the empty path");
        assert!(effects.contains(&Effect::DiscoveryFailed));
        assert!(
            effects
                .iter()
                .any(|e| matches!(e, Effect::Provisioning(o) if !o.is_success()))
        );
        assert!(
            effects
                .iter()
                .any(|e| matches!(e, Effect::HostsCollected { ok: false, .. }))
        );
    }
}
