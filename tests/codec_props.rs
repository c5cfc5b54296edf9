//! Property tests for the codec: any message we can build survives
//! encode → decode unchanged, and no input makes the decoder panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gigafibre_acs::cwmp::rpc::*;
use gigafibre_acs::cwmp::{
    Body, CwmpVersion, Envelope, Fault, Header, ParameterValue, SetParameterValuesFault, ValueType,
};
use proptest::collection::vec;
use proptest::prelude::*;

/// Text without surrounding whitespace (decoders trim structural fields).
fn word() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ._:/&<>\"'=%#éß漢😀-]{0,16}".prop_map(|s| s.trim().to_owned())
}

fn nonempty_word() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._&<>é漢-]{1,24}"
}

/// A string value: whitespace, CR/LF and markup preserved.
fn string_value() -> impl Strategy<Value = String> {
    "[ a-zA-Z0-9\r\n\t&<>\"'\\]\\[é漢😀-]{0,24}"
}

fn parameter_value() -> impl Strategy<Value = ParameterValue> {
    let typed = prop_oneof![
        string_value().prop_map(|v| (v, ValueType::String)),
        any::<i32>().prop_map(|n| (n.to_string(), ValueType::Int)),
        any::<u32>().prop_map(|n| (n.to_string(), ValueType::UnsignedInt)),
        any::<i64>().prop_map(|n| (n.to_string(), ValueType::Long)),
        any::<u64>().prop_map(|n| (n.to_string(), ValueType::UnsignedLong)),
        prop_oneof![Just("0"), Just("1"), Just("true"), Just("false")]
            .prop_map(|b| (b.to_owned(), ValueType::Boolean)),
        Just(("2024-05-01T12:00:00Z".to_owned(), ValueType::DateTime)),
        "[A-Za-z0-9+/]{0,12}={0,2}".prop_map(|v| (v, ValueType::Base64)),
        "[0-9A-F]{0,12}".prop_map(|v| (v, ValueType::HexBinary)),
        word().prop_map(|v| (v, ValueType::Other("IPAddress".into()))),
    ];
    (nonempty_word(), typed).prop_map(|(name, (value, kind))| ParameterValue { name, value, kind })
}

fn transfer_fault() -> impl Strategy<Value = TransferFault> {
    (any::<u32>(), word()).prop_map(|(fault_code, fault_string)| TransferFault {
        fault_code,
        fault_string,
    })
}

fn du_result(autonomous: bool) -> impl Strategy<Value = DuOpResult> {
    (
        word(),
        word(),
        word(),
        word(),
        any::<bool>(),
        word(),
        any::<u32>(),
        word(),
    )
        .prop_map(
            move |(
                uuid,
                deployment_unit_ref,
                version,
                current_state,
                resolved,
                t,
                fault_code,
                fault_string,
            )| DuOpResult {
                uuid,
                deployment_unit_ref,
                version,
                current_state,
                resolved,
                execution_unit_ref_list: t.clone(),
                start_time: t.clone(),
                complete_time: t,
                fault_code,
                fault_string,
                operation_performed: autonomous.then(|| "Install".to_owned()),
            },
        )
}

fn du_operation() -> impl Strategy<Value = DuOperation> {
    prop_oneof![
        (word(), word(), word(), word(), word()).prop_map(
            |(url, uuid, username, p, execution_env_ref)| {
                DuOperation::Install {
                    url,
                    uuid,
                    username,
                    password: Password(p),
                    execution_env_ref,
                }
            }
        ),
        (word(), word(), word(), word(), word()).prop_map(|(uuid, version, url, username, p)| {
            DuOperation::Update {
                uuid,
                version,
                url,
                username,
                password: Password(p),
            }
        }),
        (word(), word(), word()).prop_map(|(uuid, version, execution_env_ref)| {
            DuOperation::Uninstall {
                uuid,
                version,
                execution_env_ref,
            }
        }),
    ]
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        (
            word(),
            word(),
            word(),
            nonempty_word(),
            vec((nonempty_word(), word()), 0..4),
            any::<u32>(),
            word(),
            any::<u32>(),
            vec(parameter_value(), 0..6)
        )
            .prop_map(
                |(
                    manufacturer,
                    oui,
                    product_class,
                    serial_number,
                    events,
                    max_envelopes,
                    current_time,
                    retry_count,
                    parameters,
                )| {
                    Body::Inform(Inform {
                        device_id: DeviceIdStruct {
                            manufacturer,
                            oui,
                            product_class,
                            serial_number,
                        },
                        events: events
                            .into_iter()
                            .map(|(c, k)| EventStruct::new(c, k))
                            .collect(),
                        max_envelopes,
                        current_time,
                        retry_count,
                        parameters,
                    })
                }
            ),
        any::<u32>()
            .prop_map(|max_envelopes| Body::InformResponse(InformResponse { max_envelopes })),
        (word(), transfer_fault(), word(), word()).prop_map(
            |(command_key, fault, start_time, complete_time)| {
                Body::TransferComplete(TransferComplete {
                    command_key,
                    fault,
                    start_time,
                    complete_time,
                })
            }
        ),
        (
            word(),
            word(),
            any::<bool>(),
            word(),
            any::<u64>(),
            word(),
            transfer_fault(),
            word()
        )
            .prop_map(
                |(
                    announce_url,
                    transfer_url,
                    is_download,
                    file_type,
                    file_size,
                    target_file_name,
                    fault,
                    t,
                )| {
                    Body::AutonomousTransferComplete(AutonomousTransferComplete {
                        announce_url,
                        transfer_url,
                        is_download,
                        file_type,
                        file_size,
                        target_file_name,
                        fault,
                        start_time: t.clone(),
                        complete_time: t,
                    })
                }
            ),
        (word(), vec((word(), word()), 0..3)).prop_map(|(file_type, args)| Body::RequestDownload(
            RequestDownload {
                file_type,
                file_type_args: args
                    .into_iter()
                    .map(|(name, value)| FileTypeArg { name, value })
                    .collect(),
            }
        )),
        (vec(du_result(false), 0..3), word()).prop_map(|(results, command_key)| {
            Body::DUStateChangeComplete(DUStateChangeComplete {
                results,
                command_key,
            })
        }),
        vec(du_result(true), 0..3).prop_map(|results| Body::AutonomousDUStateChangeComplete(
            AutonomousDUStateChangeComplete { results }
        )),
        Just(Body::GetRPCMethods(GetRPCMethods {})),
        vec(word(), 0..5)
            .prop_map(|methods| Body::GetRPCMethodsResponse(GetRPCMethodsResponse { methods })),
        (word(), any::<bool>()).prop_map(|(parameter_path, next_level)| Body::GetParameterNames(
            GetParameterNames {
                parameter_path,
                next_level
            }
        )),
        vec((nonempty_word(), any::<bool>()), 0..5).prop_map(|ps| Body::GetParameterNamesResponse(
            GetParameterNamesResponse {
                parameters: ps
                    .into_iter()
                    .map(|(name, writable)| ParameterInfo { name, writable })
                    .collect(),
            }
        )),
        vec(word(), 0..5).prop_map(|names| Body::GetParameterValues(GetParameterValues { names })),
        vec(parameter_value(), 0..6).prop_map(|parameters| Body::GetParameterValuesResponse(
            GetParameterValuesResponse { parameters }
        )),
        (vec(parameter_value(), 0..6), word()).prop_map(|(parameters, parameter_key)| {
            Body::SetParameterValues(SetParameterValues {
                parameters,
                parameter_key,
            })
        }),
        any::<u32>().prop_map(|status| Body::SetParameterValuesResponse(
            SetParameterValuesResponse { status }
        )),
        vec(word(), 0..5)
            .prop_map(|names| Body::GetParameterAttributes(GetParameterAttributes { names })),
        vec((nonempty_word(), any::<u32>(), vec(word(), 0..3)), 0..4).prop_map(|ps| {
            Body::GetParameterAttributesResponse(GetParameterAttributesResponse {
                parameters: ps
                    .into_iter()
                    .map(|(name, notification, access_list)| ParameterAttribute {
                        name,
                        notification,
                        access_list,
                    })
                    .collect(),
            })
        }),
        vec(
            (
                word(),
                any::<bool>(),
                any::<u32>(),
                any::<bool>(),
                vec(word(), 0..2)
            ),
            0..4
        )
        .prop_map(|ps| Body::SetParameterAttributes(SetParameterAttributes {
            parameters: ps
                .into_iter()
                .map(
                    |(name, notification_change, notification, access_list_change, access_list)| {
                        SetParameterAttribute {
                            name,
                            notification_change,
                            notification,
                            access_list_change,
                            access_list,
                        }
                    }
                )
                .collect(),
        })),
        Just(Body::SetParameterAttributesResponse(
            SetParameterAttributesResponse {}
        )),
        (word(), word()).prop_map(|(object_name, parameter_key)| Body::AddObject(AddObject {
            object_name,
            parameter_key
        })),
        (any::<u32>(), any::<u32>()).prop_map(|(instance_number, status)| Body::AddObjectResponse(
            AddObjectResponse {
                instance_number,
                status
            }
        )),
        (word(), word()).prop_map(|(object_name, parameter_key)| Body::DeleteObject(
            DeleteObject {
                object_name,
                parameter_key
            }
        )),
        any::<u32>().prop_map(|status| Body::DeleteObjectResponse(DeleteObjectResponse { status })),
        word().prop_map(|command_key| Body::Reboot(Reboot { command_key })),
        Just(Body::RebootResponse(RebootResponse {})),
        (
            word(),
            word(),
            word(),
            word(),
            word(),
            any::<u64>(),
            any::<u32>()
        )
            .prop_map(
                |(command_key, file_type, url, username, p, file_size, delay_seconds)| {
                    Body::Download(Download {
                        command_key,
                        file_type,
                        url: url.clone(),
                        username,
                        password: Password(p),
                        file_size,
                        target_file_name: url.clone(),
                        delay_seconds,
                        success_url: url.clone(),
                        failure_url: url,
                    })
                }
            ),
        (any::<u32>(), word()).prop_map(|(status, t)| Body::DownloadResponse(DownloadResponse(
            TransferResponse {
                status,
                start_time: t.clone(),
                complete_time: t
            }
        ))),
        (word(), word(), word(), word(), word(), any::<u32>()).prop_map(
            |(command_key, file_type, url, username, p, delay_seconds)| {
                Body::Upload(Upload {
                    command_key,
                    file_type,
                    url,
                    username,
                    password: Password(p),
                    delay_seconds,
                })
            }
        ),
        (any::<u32>(), word()).prop_map(|(status, t)| Body::UploadResponse(UploadResponse(
            TransferResponse {
                status,
                start_time: t.clone(),
                complete_time: t
            }
        ))),
        Just(Body::FactoryReset(FactoryReset {})),
        Just(Body::FactoryResetResponse(FactoryResetResponse {})),
        (any::<u32>(), word()).prop_map(|(delay_seconds, command_key)| Body::ScheduleInform(
            ScheduleInform {
                delay_seconds,
                command_key
            }
        )),
        Just(Body::ScheduleInformResponse(ScheduleInformResponse {})),
        (
            word(),
            word(),
            any::<u64>(),
            vec(
                (any::<u32>(), any::<u32>(), word(), word(), any::<i32>()),
                0..3
            )
        )
            .prop_map(|(command_key, url, file_size, tw)| {
                Body::ScheduleDownload(ScheduleDownload {
                    command_key,
                    file_type: "1 Firmware Upgrade Image".into(),
                    url,
                    username: String::new(),
                    password: Password::default(),
                    file_size,
                    target_file_name: String::new(),
                    time_windows: tw
                        .into_iter()
                        .map(
                            |(window_start, window_end, window_mode, user_message, max_retries)| {
                                TimeWindow {
                                    window_start,
                                    window_end,
                                    window_mode,
                                    user_message,
                                    max_retries,
                                }
                            },
                        )
                        .collect(),
                })
            }),
        word().prop_map(|command_key| Body::CancelTransfer(CancelTransfer { command_key })),
        Just(Body::GetQueuedTransfers(GetQueuedTransfers {})),
        vec((word(), any::<u32>()), 0..3).prop_map(|t| Body::GetQueuedTransfersResponse(
            GetQueuedTransfersResponse {
                transfers: t
                    .into_iter()
                    .map(|(command_key, state)| QueuedTransfer { command_key, state })
                    .collect(),
            }
        )),
        Just(Body::GetAllQueuedTransfers(GetAllQueuedTransfers {})),
        vec(
            (word(), any::<u32>(), any::<bool>(), word(), any::<u64>()),
            0..3
        )
        .prop_map(
            |t| Body::GetAllQueuedTransfersResponse(GetAllQueuedTransfersResponse {
                transfers: t
                    .into_iter()
                    .map(|(command_key, state, is_download, file_type, file_size)| {
                        AllQueuedTransfer {
                            command_key,
                            state,
                            is_download,
                            file_type: file_type.clone(),
                            file_size,
                            target_file_name: file_type,
                        }
                    })
                    .collect(),
            })
        ),
        (vec(du_operation(), 0..3), word()).prop_map(|(operations, command_key)| {
            Body::ChangeDUState(ChangeDUState {
                operations,
                command_key,
            })
        }),
        Just(Body::ChangeDUStateResponse(ChangeDUStateResponse {})),
        proptest::sample::select(vec![
            Body::TransferCompleteResponse(TransferCompleteResponse {}),
            Body::AutonomousTransferCompleteResponse(AutonomousTransferCompleteResponse {}),
            Body::RequestDownloadResponse(RequestDownloadResponse {}),
            Body::DUStateChangeCompleteResponse(DUStateChangeCompleteResponse {}),
            Body::AutonomousDUStateChangeCompleteResponse(
                AutonomousDUStateChangeCompleteResponse {}
            ),
            Body::ScheduleDownloadResponse(ScheduleDownloadResponse {}),
            Body::CancelTransferResponse(CancelTransferResponse {}),
        ]),
        (
            word(),
            word(),
            any::<u32>(),
            word(),
            vec((nonempty_word(), any::<u32>(), word()), 0..3)
        )
            .prop_map(|(soap_code, soap_string, code, string, spv)| {
                Body::Fault(Fault {
                    soap_code,
                    soap_string,
                    code,
                    string,
                    set_parameter_values_faults: spv
                        .into_iter()
                        .map(|(parameter_name, code, string)| SetParameterValuesFault {
                            parameter_name,
                            code,
                            string,
                        })
                        .collect(),
                })
            }),
    ]
}

fn header() -> impl Strategy<Value = Header> {
    (
        proptest::option::of(word()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(word()),
        proptest::option::of(word()),
    )
        .prop_map(
            |(
                id,
                hold_requests,
                no_more_requests,
                session_timeout,
                supported_cwmp_versions,
                use_cwmp_version,
            )| Header {
                id,
                hold_requests,
                no_more_requests,
                session_timeout,
                supported_cwmp_versions,
                use_cwmp_version,
            },
        )
}

fn envelope() -> impl Strategy<Value = Envelope> {
    (
        proptest::sample::select(CwmpVersion::ALL.to_vec()),
        header(),
        body(),
    )
        .prop_map(|(version, header, body)| Envelope {
            version,
            header,
            body,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn encode_then_decode_is_identity(env in envelope()) {
        let xml = env.encode();
        let back = Envelope::decode(xml.as_bytes());
        prop_assert_eq!(back.as_ref().ok(), Some(&env), "xml: {}", xml);
    }

    #[test]
    fn decoder_never_panics_on_bytes(bytes in vec(any::<u8>(), 0..512)) {
        let _ = Envelope::decode(&bytes);
    }

    #[test]
    fn decoder_never_panics_on_mangled_envelopes(env in envelope(), cut in any::<proptest::sample::Index>(), junk in "[<>&;/\"'a-z:= ]{0,8}") {
        let xml = env.encode();
        let at = cut.index(xml.len() + 1);
        let at = (0..=at).rev().find(|i| xml.is_char_boundary(*i)).unwrap_or(0);
        let mangled = format!("{}{}{}", &xml[..at], junk, &xml[at..]);
        let _ = Envelope::decode(mangled.as_bytes());
        let _ = Envelope::decode(&xml.as_bytes()[..at]);
    }
}

#[test]
fn every_message_type_is_generated() {
    // Guards the strategy above against silently dropping a message type.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = body();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20_000 {
        let b = strategy.new_tree(&mut runner).unwrap().current();
        seen.insert(b.name().to_owned());
    }
    for name in Body::MESSAGE_NAMES {
        assert!(seen.contains(*name), "no strategy generates {name}");
    }
    assert!(seen.contains("Fault"));
}
