//! When to provision, and what an outcome changes in the device's
//! provisioning state. Pure.

use super::flow::Outcome;
use crate::cwmp::rpc::EventStruct;
use crate::store::{ProvisionStatus, ProvisioningState};

/// The kind of run a session should make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunKind {
    /// Read the device, ask ERPNext, push what differs.
    Full,
    /// Ask ERPNext whether the linked record changed; touch the device
    /// only if it did.
    Check {
        equipment: String,
        modified: Option<String>,
    },
}

/// Events after which the device may have lost or changed its settings,
/// or after which someone explicitly asked for it.
fn is_contact_that_provisions(code: &str) -> bool {
    matches!(code, "0 BOOTSTRAP" | "1 BOOT" | "6 CONNECTION REQUEST")
}

/// Decides whether this session provisions, and how.
///
/// * `0 BOOTSTRAP` or an Ops request: a full run; with ERPNext configured,
///   also `1 BOOT` and `6 CONNECTION REQUEST`.
/// * Never attempted, or deferred while ERPNext was down: a full run.
/// * Provisioned (or no config): a check run every `recheck_ms` (0: every
///   contact) so that a change in ERPNext reaches the device on its next
///   periodic session.
/// * Unresolved, ambiguous or failed: a full run once the backoff is over.
pub fn decide(
    state: &ProvisioningState,
    events: &[EventStruct],
    erpnext: bool,
    now_ms: u64,
    recheck_ms: u64,
) -> Option<RunKind> {
    let bootstrap = events.iter().any(|e| e.event_code == "0 BOOTSTRAP");
    // Without ERPNext only the ACS's own settings are pushed, which a
    // bootstrap (factory state) is the time for.
    let contact = erpnext
        && events
            .iter()
            .any(|e| is_contact_that_provisions(&e.event_code));
    if state.requested || bootstrap || contact {
        return Some(RunKind::Full);
    }
    match state.status {
        ProvisionStatus::Pending => Some(RunKind::Full),
        ProvisionStatus::Deferred => erpnext.then_some(RunKind::Full),
        ProvisionStatus::Provisioned | ProvisionStatus::NoConfig => {
            let due = state
                .last_attempt_ms
                .is_none_or(|t| now_ms.saturating_sub(t) >= recheck_ms);
            match (&state.equipment, erpnext && due) {
                (Some(equipment), true) => Some(RunKind::Check {
                    equipment: equipment.clone(),
                    modified: state.erp_modified.clone(),
                }),
                _ => None,
            }
        }
        ProvisionStatus::Unresolved | ProvisionStatus::Ambiguous | ProvisionStatus::Fault => {
            (erpnext && state.next_attempt_ms.is_none_or(|t| now_ms >= t)).then_some(RunKind::Full)
        }
        ProvisionStatus::NoProfile => None,
    }
}

/// What the server must do besides storing the new state.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Consequences {
    /// Tell ERPNext that this record is now the device's ("Actif").
    pub writeback: Option<String>,
    /// A fault to list for Ops: code (CPE code, or 0) and message.
    pub fault: Option<(u32, String)>,
}

const MAX_BACKOFF_MS: u64 = 6 * 3600 * 1000;

fn backoff(attempts: u32, base_ms: u64) -> u64 {
    base_ms
        .saturating_mul(1u64 << attempts.saturating_sub(1).min(20))
        .min(MAX_BACKOFF_MS)
}

/// Applies an outcome to the state.
pub fn record(
    state: &mut ProvisioningState,
    outcome: &Outcome,
    now_ms: u64,
    retry_base_ms: u64,
) -> Consequences {
    let mut c = Consequences::default();
    state.last_attempt_ms = Some(now_ms);
    state.requested = false;
    let failed = |state: &mut ProvisioningState, status: ProvisionStatus, reason: String| {
        state.status = status;
        state.reason = Some(reason);
        state.attempts = state.attempts.saturating_add(1);
        state.next_attempt_ms = Some(now_ms + backoff(state.attempts, retry_base_ms));
    };
    match outcome {
        Outcome::Provisioned {
            equipment,
            customer,
            identity,
            modified,
            key,
            pushed,
            pending_reboot,
            key_ignored,
        } => {
            let newly = state.status != ProvisionStatus::Provisioned
                || state.equipment.as_deref() != Some(equipment.as_str());
            if newly || *pushed > 0 {
                c.writeback = Some(equipment.clone());
                state.provisioned_ms = Some(now_ms);
            }
            state.status = ProvisionStatus::Provisioned;
            state.reason = if *pending_reboot {
                Some("applied by the device at its next reboot".to_owned())
            } else if *key_ignored {
                Some("the device does not keep the ParameterKey: its secrets are sent again at each full run".to_owned())
            } else {
                None
            };
            state.equipment = Some(equipment.clone());
            state.customer = customer.clone();
            state.mac = identity.mac.clone().or(state.mac.take());
            state.gpon_serial = identity.gpon_serial.clone().or(state.gpon_serial.take());
            state.erp_modified = modified.clone();
            state.applied_key = Some(key.clone());
            state.candidates.clear();
            state.attempts = 0;
            state.next_attempt_ms = None;
        }
        Outcome::Unchanged => {
            state.attempts = 0;
        }
        Outcome::NoConfig {
            equipment,
            customer,
            identity,
            modified,
        } => {
            state.mac = identity.mac.clone().or(state.mac.take());
            state.gpon_serial = identity.gpon_serial.clone().or(state.gpon_serial.take());
            if state.status != ProvisionStatus::NoConfig
                || state.equipment.as_deref() != Some(equipment.as_str())
            {
                c.writeback = Some(equipment.clone());
            }
            state.status = ProvisionStatus::NoConfig;
            state.reason = Some("no WiFi, SIP or PPPoE configuration in ERPNext: the device's settings are left as they are".into());
            state.equipment = Some(equipment.clone());
            state.customer = customer.clone();
            state.erp_modified = modified.clone();
            state.candidates.clear();
            state.attempts = 0;
            state.next_attempt_ms = None;
        }
        Outcome::Unresolved { identity } => {
            state.mac = identity.mac.clone().or(state.mac.take());
            state.gpon_serial = identity.gpon_serial.clone().or(state.gpon_serial.take());
            state.candidates.clear();
            let keys: Vec<String> = [
                identity.mac.as_ref().map(|m| format!("MAC {m}")),
                identity
                    .gpon_serial
                    .as_ref()
                    .map(|g| format!("GPON serial {g}")),
            ]
            .into_iter()
            .flatten()
            .collect();
            let reason = if keys.is_empty() {
                "no Service Equipment in ERPNext matches the device's serial number".to_owned()
            } else {
                format!(
                    "no Service Equipment in ERPNext matches the device's serial number or {}",
                    keys.join(" or ")
                )
            };
            failed(state, ProvisionStatus::Unresolved, reason);
        }
        Outcome::Ambiguous {
            identity,
            candidates,
        } => {
            state.mac = identity.mac.clone().or(state.mac.take());
            state.gpon_serial = identity.gpon_serial.clone().or(state.gpon_serial.take());
            state.candidates = candidates.clone();
            failed(
                state,
                ProvisionStatus::Ambiguous,
                format!(
                    "{} Service Equipment records match; not guessing: {}",
                    candidates.len(),
                    candidates.join(", ")
                ),
            );
        }
        Outcome::Deferred { reason } => {
            state.status = ProvisionStatus::Deferred;
            state.reason = Some(reason.clone());
        }
        Outcome::Invalid { equipment, errors } => {
            state.equipment = Some(equipment.clone());
            let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            let msg = format!(
                "ERPNext record {equipment} has values that cannot be pushed: {}",
                list.join("; ")
            );
            c.fault = Some((0, msg.clone()));
            failed(state, ProvisionStatus::Fault, msg);
        }
        Outcome::CpeFault { code, message } => {
            let msg = format!("the device refused the configuration: {message}");
            c.fault = Some((*code, msg.clone()));
            failed(state, ProvisionStatus::Fault, msg);
        }
        Outcome::VerifyFailed { details } => {
            let msg = format!(
                "the device did not keep the configuration: {}",
                details.join("; ")
            );
            c.fault = Some((0, msg.clone()));
            failed(state, ProvisionStatus::Fault, msg);
        }
        Outcome::ReadFailed { reason } => {
            let msg = format!("reading the device failed: {reason}");
            c.fault = Some((0, msg.clone()));
            failed(state, ProvisionStatus::Fault, msg);
        }
        Outcome::ErpFailed { reason } => {
            let msg = format!("ERPNext: {reason}");
            c.fault = Some((0, msg.clone()));
            failed(state, ProvisionStatus::Fault, msg);
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::flow::ReadIdentity;

    fn ev(code: &str) -> Vec<EventStruct> {
        vec![EventStruct::new(code, "")]
    }

    #[test]
    fn bootstrap_boot_and_connection_requests_always_run() {
        let mut s = ProvisioningState {
            status: ProvisionStatus::Provisioned,
            equipment: Some("EQ-1".into()),
            last_attempt_ms: Some(100),
            ..Default::default()
        };
        for code in ["0 BOOTSTRAP", "1 BOOT", "6 CONNECTION REQUEST"] {
            assert_eq!(
                decide(&s, &ev(code), true, 101, 3_600_000),
                Some(RunKind::Full),
                "{code}"
            );
        }
        assert_eq!(
            decide(&s, &ev("0 BOOTSTRAP"), false, 101, 0),
            Some(RunKind::Full)
        );
        assert_eq!(
            decide(&s, &ev("1 BOOT"), false, 101, 0),
            None,
            "without ERPNext a reboot changes nothing"
        );
        assert_eq!(decide(&s, &ev("2 PERIODIC"), true, 101, 3_600_000), None);
        assert_eq!(
            decide(&s, &ev("2 PERIODIC"), true, 101, 0),
            Some(RunKind::Check {
                equipment: "EQ-1".into(),
                modified: None
            })
        );
        assert_eq!(
            decide(&s, &ev("2 PERIODIC"), false, 101, 0),
            None,
            "no ERPNext, nothing to check"
        );
        s.requested = true;
        assert_eq!(
            decide(&s, &ev("2 PERIODIC"), true, 101, 3_600_000),
            Some(RunKind::Full)
        );
    }

    #[test]
    fn failures_back_off_and_deferrals_do_not() {
        let mut s = ProvisioningState::default();
        assert_eq!(
            decide(&s, &ev("2 PERIODIC"), true, 0, 0),
            Some(RunKind::Full)
        );
        let c = record(
            &mut s,
            &Outcome::Unresolved {
                identity: ReadIdentity {
                    mac: Some("aabbccddeeff".into()),
                    gpon_serial: None,
                    other_macs: Vec::new(),
                },
            },
            1_000,
            60_000,
        );
        assert_eq!(c, Consequences::default());
        assert_eq!(s.status, ProvisionStatus::Unresolved);
        assert!(s.reason.as_deref().unwrap().contains("MAC aabbccddeeff"));
        assert_eq!(s.next_attempt_ms, Some(61_000));
        assert_eq!(decide(&s, &ev("2 PERIODIC"), true, 30_000, 0), None);
        assert_eq!(
            decide(&s, &ev("2 PERIODIC"), true, 61_000, 0),
            Some(RunKind::Full)
        );
        record(
            &mut s,
            &Outcome::Unresolved {
                identity: ReadIdentity::default(),
            },
            61_000,
            60_000,
        );
        assert_eq!(s.next_attempt_ms, Some(61_000 + 120_000));
        assert_eq!(s.mac.as_deref(), Some("aabbccddeeff"), "identity kept");
        record(
            &mut s,
            &Outcome::Deferred {
                reason: "ERPNext down".into(),
            },
            70_000,
            60_000,
        );
        assert_eq!(
            decide(&s, &ev("2 PERIODIC"), true, 70_001, 0),
            Some(RunKind::Full)
        );
        assert_eq!(decide(&s, &ev("2 PERIODIC"), false, 70_001, 0), None);
    }

    #[test]
    fn success_asks_for_a_writeback_once() {
        let mut s = ProvisioningState::default();
        let ok = Outcome::Provisioned {
            equipment: "EQ-7".into(),
            customer: None,
            identity: Default::default(),
            modified: Some("m".into()),
            key: "gacs-1".into(),
            pushed: 4,
            pending_reboot: false,
            key_ignored: false,
        };
        assert_eq!(
            record(&mut s, &ok, 5, 60_000).writeback.as_deref(),
            Some("EQ-7")
        );
        assert_eq!(s.applied_key.as_deref(), Some("gacs-1"));
        let again = Outcome::Provisioned {
            equipment: "EQ-7".into(),
            customer: None,
            identity: Default::default(),
            modified: Some("m".into()),
            key: "gacs-1".into(),
            pushed: 0,
            pending_reboot: false,
            key_ignored: false,
        };
        assert_eq!(record(&mut s, &again, 6, 60_000).writeback, None);
        let c = record(
            &mut s,
            &Outcome::CpeFault {
                code: 9007,
                message: "9003 Invalid arguments; X 9007".into(),
            },
            7,
            60_000,
        );
        assert_eq!(c.fault.as_ref().unwrap().0, 9007);
        assert_eq!(s.status, ProvisionStatus::Fault);
    }
}
