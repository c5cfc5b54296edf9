//! One provisioning run inside a CWMP session, as a state machine: it asks
//! for RPCs to send and for ERPNext's answer, and ends with an [`Outcome`].
//! Pure: the session feeds it the CPE's responses, the server feeds it
//! ERPNext's answer.
//!
//! Full run (bootstrap, boot, connection request, or not yet provisioned):
//! read identity and managed values (one GetParameterValues) → ERPNext →
//! one SetParameterValues with what differs → verify (one
//! GetParameterValues). Check run (periodic, already provisioned): ERPNext
//! first; if the record has not changed, no RPC at all.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use ring::hmac;
use serde::{Deserialize, Serialize};

use super::identity::{canonical_gpon_serial, canonical_mac};
use super::plan::{self, Desired, InvalidValue, ManagementConfig, SipServers};
use super::profile::Profile;
use crate::cwmp::rpc::GetParameterValues;
use crate::cwmp::{Body, Fault};

/// Identifiers read from the device, canonical.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadIdentity {
    pub mac: Option<String>,
    pub gpon_serial: Option<String>,
}

/// The MAC and GPON serial a device reports at its profile's identity
/// paths, canonical.
pub fn read_identity(profile: &Profile, values: &BTreeMap<String, String>) -> ReadIdentity {
    ReadIdentity {
        mac: profile
            .identity
            .mac
            .iter()
            .find_map(|path| values.get(path).and_then(|v| canonical_mac(v))),
        gpon_serial: profile
            .identity
            .gpon_serial
            .iter()
            .find_map(|path| values.get(path).and_then(|v| canonical_gpon_serial(v))),
    }
}

/// What the flow needs from ERPNext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredRequest {
    pub identity: ReadIdentity,
    /// Check run: the record already linked and its `modified` when last
    /// applied; `Unchanged` is a valid answer.
    pub check: Option<(String, Option<String>)>,
}

/// ERPNext's answer.
// Built once per provisioning run: boxing `Found` would save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DesiredOutcome {
    Found {
        equipment: String,
        modified: Option<String>,
        desired: Desired,
    },
    Unchanged,
    Unresolved,
    Ambiguous(Vec<String>),
    /// ERPNext down, breaker open, or too slow for the session: retry later.
    Unavailable(String),
    /// ERPNext refused us (credentials, permissions, a bad answer).
    Failed(String),
}

/// How a provisioning run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// Desired configuration applied and verified (or nothing to change).
    Provisioned {
        equipment: String,
        /// The record's customer, for Ops.
        #[serde(default)]
        customer: Option<String>,
        /// What the device reported (kept for search).
        #[serde(default)]
        identity: ReadIdentity,
        modified: Option<String>,
        key: String,
        pushed: usize,
        pending_reboot: bool,
    },
    /// Check run: ERPNext unchanged since the last run.
    Unchanged,
    /// The record has no WiFi or SIP data; the device was left alone.
    NoConfig {
        equipment: String,
        #[serde(default)]
        customer: Option<String>,
        #[serde(default)]
        identity: ReadIdentity,
        modified: Option<String>,
    },
    Unresolved {
        identity: ReadIdentity,
    },
    Ambiguous {
        identity: ReadIdentity,
        candidates: Vec<String>,
    },
    Deferred {
        reason: String,
    },
    Invalid {
        equipment: String,
        errors: Vec<InvalidValue>,
    },
    CpeFault {
        code: u32,
        message: String,
    },
    VerifyFailed {
        details: Vec<String>,
    },
    ReadFailed {
        reason: String,
    },
    ErpFailed {
        reason: String,
    },
}

impl Outcome {
    /// Whether the device now carries what ERPNext asks for.
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Provisioned { .. } | Outcome::Unchanged)
    }
}

/// What the session should do next for this flow.
#[derive(Clone, Debug, PartialEq)]
pub enum FlowStep {
    Send(Body),
    NeedDesired(DesiredRequest),
    Finished(Outcome),
}

#[derive(Debug)]
enum State {
    Start,
    /// `split`: after a 9005 on the combined read, one name at a time.
    Reading {
        split: Option<VecDeque<String>>,
    },
    AwaitDesired,
    Setting {
        expect: BTreeMap<String, String>,
        pushed: usize,
    },
    Verifying {
        expect: BTreeMap<String, String>,
        pushed: usize,
    },
    Done,
}

/// Inputs that do not come from the CPE or ERPNext.
#[derive(Clone)]
pub struct FlowContext {
    pub profile: Arc<Profile>,
    pub key: Arc<hmac::Key>,
    pub management: Option<ManagementConfig>,
    pub sip_servers: SipServers,
    /// ParameterKey of the configuration last verified on the device
    /// (ERPNext's settings and the ACS's), if any.
    pub applied_key: Option<String>,
}

/// A provisioning run.
pub struct Flow {
    ctx: FlowContext,
    check: Option<(String, Option<String>)>,
    state: State,
    values: BTreeMap<String, String>,
    /// The device's values have been read in this run.
    read_done: bool,
    identity: ReadIdentity,
    found: Option<(String, Option<String>, Desired)>,
    /// What the run ends with once the management settings are applied
    /// (ERPNext had nothing usable).
    after_set: Option<Outcome>,
}

impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow")
            .field("profile", &self.ctx.profile.name)
            .field("state", &self.state)
            .finish()
    }
}

impl Flow {
    /// A full run, or a check run against the record `check`.
    pub fn new(ctx: FlowContext, check: Option<(String, Option<String>)>) -> Flow {
        Flow {
            ctx,
            check,
            state: State::Start,
            values: BTreeMap::new(),
            read_done: false,
            identity: ReadIdentity::default(),
            found: None,
            after_set: None,
        }
    }

    pub fn profile(&self) -> &Profile {
        &self.ctx.profile
    }

    fn read(&mut self) -> FlowStep {
        self.state = State::Reading { split: None };
        FlowStep::Send(
            GetParameterValues {
                names: plan::read_names(&self.ctx.profile),
            }
            .into(),
        )
    }

    /// The first step.
    pub fn begin(&mut self) -> FlowStep {
        match &self.check {
            Some(check) => {
                self.state = State::AwaitDesired;
                FlowStep::NeedDesired(DesiredRequest {
                    identity: ReadIdentity::default(),
                    check: Some(check.clone()),
                })
            }
            None => self.read(),
        }
    }

    fn finish(&mut self, o: Outcome) -> FlowStep {
        self.state = State::Done;
        FlowStep::Finished(o)
    }

    /// The device still carries the configuration last verified on it.
    /// Without ERPNext's answer that configuration cannot be planned again,
    /// and a push of the ACS's settings alone would replace its
    /// ParameterKey, so the next run would push every secret once more.
    fn carries_applied_config(&self) -> bool {
        let key = self
            .values
            .get(&self.ctx.profile.management("ParameterKey"));
        matches!((key, &self.ctx.applied_key), (Some(k), Some(a)) if !k.is_empty() && k == a)
    }

    fn extract_identity(&mut self) {
        self.identity = read_identity(&self.ctx.profile, &self.values);
    }

    /// Values are read: plan with ERPNext's answer if we have it, else ask.
    fn after_read(&mut self) -> FlowStep {
        self.read_done = true;
        self.extract_identity();
        if self.found.is_some() || self.after_set.is_some() {
            return self.plan();
        }
        self.state = State::AwaitDesired;
        FlowStep::NeedDesired(DesiredRequest {
            identity: self.identity.clone(),
            check: None,
        })
    }

    /// The SetParameterValues for what is known, or the end.
    fn plan(&mut self) -> FlowStep {
        let (desired, done) = match &self.found {
            Some((equipment, modified, d)) => {
                let mut d = d.clone();
                d.management = self.ctx.management.clone();
                d.sip_servers = self.ctx.sip_servers.clone();
                let no_config = d.wifi.is_none() && d.sip.is_none();
                let done = no_config.then(|| Outcome::NoConfig {
                    equipment: equipment.clone(),
                    customer: d.customer.clone(),
                    identity: self.identity.clone(),
                    modified: modified.clone(),
                });
                (d, done)
            }
            None => (
                Desired {
                    management: self.ctx.management.clone(),
                    ..Desired::default()
                },
                self.after_set.clone(),
            ),
        };
        let key = plan::parameter_key(&self.ctx.key, &self.ctx.profile, &desired);
        match plan::plan_set(&self.ctx.profile, &desired, &self.values, &key) {
            Some(spv) => {
                if done.is_some() {
                    self.after_set = done;
                }
                let expect = plan::verify_expectations(&self.ctx.profile, &spv);
                let pushed = spv.parameters.len();
                self.state = State::Setting { expect, pushed };
                FlowStep::Send(spv.into())
            }
            None => {
                let outcome = done.unwrap_or_else(|| self.provisioned(key, 0, false));
                self.finish(outcome)
            }
        }
    }

    fn provisioned(&self, key: String, pushed: usize, pending_reboot: bool) -> Outcome {
        match &self.found {
            Some((equipment, modified, d)) => Outcome::Provisioned {
                equipment: equipment.clone(),
                customer: d.customer.clone(),
                identity: self.identity.clone(),
                modified: modified.clone(),
                key,
                pushed,
                pending_reboot,
            },
            None => self.after_set.clone().unwrap_or(Outcome::Deferred {
                reason: "no ERPNext record".into(),
            }),
        }
    }

    /// ERPNext's answer to a [`FlowStep::NeedDesired`].
    pub fn supply(&mut self, answer: DesiredOutcome) -> FlowStep {
        if !matches!(self.state, State::AwaitDesired) {
            return self.finish(Outcome::ErpFailed {
                reason: "ERPNext answer out of order".into(),
            });
        }
        let identity = self.identity.clone();
        match answer {
            DesiredOutcome::Unchanged => self.finish(Outcome::Unchanged),
            DesiredOutcome::Found {
                equipment,
                modified,
                desired,
            } => {
                let errors = plan::validate(&desired);
                if !errors.is_empty() {
                    return self.finish(Outcome::Invalid { equipment, errors });
                }
                self.found = Some((equipment, modified, desired));
                if !self.read_done {
                    return self.read();
                }
                self.plan()
            }
            other => {
                let no_answer = matches!(
                    other,
                    DesiredOutcome::Unavailable(_) | DesiredOutcome::Failed(_)
                );
                let outcome = match other {
                    DesiredOutcome::Unresolved => Outcome::Unresolved { identity },
                    DesiredOutcome::Ambiguous(candidates) => Outcome::Ambiguous {
                        identity,
                        candidates,
                    },
                    DesiredOutcome::Unavailable(reason) => Outcome::Deferred { reason },
                    DesiredOutcome::Failed(reason) => Outcome::ErpFailed { reason },
                    DesiredOutcome::Found { .. } | DesiredOutcome::Unchanged => {
                        unreachable_outcome()
                    }
                };
                // A check run has not read the device: nothing more to do.
                // A full run still applies the ACS's own settings, unless
                // ERPNext did not answer and the device keeps what was
                // verified on it (its settings are retried at the next
                // contact).
                if !self.read_done
                    || self.ctx.management.is_none()
                    || (no_answer && self.carries_applied_config())
                {
                    return self.finish(outcome);
                }
                self.after_set = Some(outcome);
                self.plan()
            }
        }
    }

    /// The CPE's answer to the flow's last RPC.
    pub fn on_response(&mut self, body: Body) -> FlowStep {
        let state = std::mem::replace(&mut self.state, State::Done);
        match (state, body) {
            (State::Reading { split: None }, Body::GetParameterValuesResponse(r)) => {
                self.values
                    .extend(r.parameters.into_iter().map(|p| (p.name, p.value)));
                self.after_read()
            }
            (State::Reading { split: None }, Body::Fault(f)) if f.code == 9005 => {
                // Some managed parameter does not exist on this unit: read
                // them one by one and skip the missing ones.
                let mut names: VecDeque<String> = plan::read_names(&self.ctx.profile).into();
                let first = names.pop_front();
                self.state = State::Reading { split: Some(names) };
                match first {
                    Some(n) => FlowStep::Send(GetParameterValues { names: vec![n] }.into()),
                    None => self.after_read(),
                }
            }
            (
                State::Reading {
                    split: Some(mut rest),
                },
                body,
            ) => {
                match body {
                    Body::GetParameterValuesResponse(r) => self
                        .values
                        .extend(r.parameters.into_iter().map(|p| (p.name, p.value))),
                    Body::Fault(f) if f.code == 9005 => {}
                    Body::Fault(f) => {
                        return self.finish(Outcome::ReadFailed {
                            reason: f.to_string(),
                        });
                    }
                    other => {
                        return self.finish(Outcome::ReadFailed {
                            reason: format!("unexpected {}", other.name()),
                        });
                    }
                }
                match rest.pop_front() {
                    Some(n) => {
                        self.state = State::Reading { split: Some(rest) };
                        FlowStep::Send(GetParameterValues { names: vec![n] }.into())
                    }
                    None => self.after_read(),
                }
            }
            (State::Reading { .. }, Body::Fault(f)) => self.finish(Outcome::ReadFailed {
                reason: f.to_string(),
            }),
            (State::Setting { expect, pushed }, Body::SetParameterValuesResponse(r)) => {
                let key = expect
                    .get(&self.ctx.profile.management("ParameterKey"))
                    .cloned()
                    .unwrap_or_default();
                if r.status == 1 {
                    // Applied at the next reboot: reading back now would
                    // show the old values.
                    let o = self.provisioned(key, pushed, true);
                    return self.finish(o);
                }
                let names: Vec<String> = expect.keys().cloned().collect();
                self.state = State::Verifying { expect, pushed };
                FlowStep::Send(GetParameterValues { names }.into())
            }
            (State::Setting { .. }, Body::Fault(f)) => self.finish(cpe_fault(&f)),
            (State::Verifying { expect, pushed }, Body::GetParameterValuesResponse(r)) => {
                let read: BTreeMap<String, String> = r
                    .parameters
                    .into_iter()
                    .map(|p| (p.name, p.value))
                    .collect();
                let details = plan::verify(&expect, &read);
                if !details.is_empty() {
                    return self.finish(Outcome::VerifyFailed { details });
                }
                let key = expect
                    .get(&self.ctx.profile.management("ParameterKey"))
                    .cloned()
                    .unwrap_or_default();
                let o = self.provisioned(key, pushed, false);
                self.finish(o)
            }
            (State::Verifying { .. }, Body::Fault(f)) => self.finish(Outcome::VerifyFailed {
                details: vec![f.to_string()],
            }),
            (_, other) => self.finish(Outcome::ReadFailed {
                reason: format!("unexpected {} in provisioning", other.name()),
            }),
        }
    }
}

fn unreachable_outcome() -> Outcome {
    Outcome::ErpFailed {
        reason: "internal: unexpected ERPNext answer".into(),
    }
}

fn cpe_fault(f: &Fault) -> Outcome {
    Outcome::CpeFault {
        code: f.code,
        message: f.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::cwmp::rpc::{GetParameterValuesResponse, SetParameterValuesResponse};
    use crate::cwmp::{ParameterValue, SetParameterValuesFault, ValueType};
    use crate::provision::plan::WifiConfig;
    use crate::provision::profile::Profiles;

    fn ctx() -> FlowContext {
        FlowContext {
            profile: Arc::new(
                Profiles::load(None)
                    .unwrap()
                    .get("tplink-deco")
                    .unwrap()
                    .clone(),
            ),
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

    fn gpv_response(pairs: &[(&str, &str)]) -> Body {
        GetParameterValuesResponse {
            parameters: pairs
                .iter()
                .map(|(n, v)| ParameterValue::new(*n, *v, ValueType::String))
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

    #[test]
    fn full_run_read_resolve_set_verify() {
        let mut f = Flow::new(ctx(), None);
        let read = sent(f.begin());
        assert_eq!(read.name(), "GetParameterValues");
        let step = f.on_response(gpv_response(&[
            (
                "Device.Ethernet.Interface.1.MACAddress",
                "1C:61:B4:00:00:01",
            ),
            ("Device.WiFi.SSID.1.SSID", "TP-Link_9E1E"),
        ]));
        let FlowStep::NeedDesired(req) = step else {
            panic!()
        };
        assert_eq!(req.identity.mac.as_deref(), Some("1c61b4000001"));
        let Body::SetParameterValues(spv) = sent(f.supply(DesiredOutcome::Found {
            equipment: "EQ-00001".into(),
            modified: Some("m1".into()),
            desired: desired("k7Hq2mZp9xWe"),
        })) else {
            panic!()
        };
        assert!(
            spv.parameters
                .iter()
                .any(|p| p.name == "Device.ManagementServer.ConnectionRequestPassword")
        );
        let Body::GetParameterValues(verify) =
            sent(f.on_response(SetParameterValuesResponse { status: 0 }.into()))
        else {
            panic!()
        };
        let readback: Vec<(String, String)> = spv
            .parameters
            .iter()
            .filter(|p| !p.is_secret())
            .map(|p| (p.name.clone(), p.value.clone()))
            .chain([(
                "Device.ManagementServer.ParameterKey".to_owned(),
                spv.parameter_key.clone(),
            )])
            .collect();
        assert_eq!(verify.names.len(), readback.len());
        let pairs: Vec<(&str, &str)> = readback
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let FlowStep::Finished(Outcome::Provisioned {
            equipment,
            key,
            pushed,
            ..
        }) = f.on_response(gpv_response(&pairs))
        else {
            panic!()
        };
        assert_eq!(equipment, "EQ-00001");
        assert_eq!(key, spv.parameter_key);
        assert_eq!(pushed, spv.parameters.len());
    }

    #[test]
    fn invalid_erpnext_values_are_not_pushed() {
        let mut f = Flow::new(ctx(), None);
        f.begin();
        f.on_response(gpv_response(&[]));
        let FlowStep::Finished(Outcome::Invalid { errors, .. }) = f.supply(DesiredOutcome::Found {
            equipment: "EQ-1".into(),
            modified: None,
            desired: desired("seven77"),
        }) else {
            panic!()
        };
        assert_eq!(errors[0].field, "custom_wifi_password");
    }

    #[test]
    fn unknown_device_still_gets_the_acs_settings() {
        let mut f = Flow::new(ctx(), None);
        f.begin();
        f.on_response(gpv_response(&[]));
        let Body::SetParameterValues(spv) = sent(f.supply(DesiredOutcome::Unresolved)) else {
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
            f.on_response(SetParameterValuesResponse { status: 1 }.into()),
            FlowStep::Finished(Outcome::Unresolved { .. })
        ));
    }

    #[test]
    fn check_run_without_changes_sends_nothing() {
        let mut f = Flow::new(ctx(), Some(("EQ-1".into(), Some("m1".into()))));
        let FlowStep::NeedDesired(req) = f.begin() else {
            panic!()
        };
        assert_eq!(req.check, Some(("EQ-1".into(), Some("m1".into()))));
        assert_eq!(
            f.supply(DesiredOutcome::Unchanged),
            FlowStep::Finished(Outcome::Unchanged)
        );
        // A changed record: read, then set.
        let mut f = Flow::new(ctx(), Some(("EQ-1".into(), Some("m1".into()))));
        f.begin();
        let read = sent(f.supply(DesiredOutcome::Found {
            equipment: "EQ-1".into(),
            modified: Some("m2".into()),
            desired: desired("n3wPassphrase"),
        }));
        assert_eq!(read.name(), "GetParameterValues");
        assert_eq!(
            sent(f.on_response(gpv_response(&[]))).name(),
            "SetParameterValues"
        );
        // ERPNext down during a check: deferred, device untouched.
        let mut f = Flow::new(ctx(), Some(("EQ-1".into(), None)));
        f.begin();
        assert_eq!(
            f.supply(DesiredOutcome::Unavailable("down".into())),
            FlowStep::Finished(Outcome::Deferred {
                reason: "down".into()
            })
        );
    }

    #[test]
    fn a_missing_parameter_splits_the_read_and_cpe_faults_end_the_run() {
        let mut f = Flow::new(ctx(), None);
        f.begin();
        let fault = Fault {
            soap_code: "Client".into(),
            soap_string: "CWMP fault".into(),
            code: 9005,
            string: "Invalid parameter name".into(),
            set_parameter_values_faults: vec![],
        };
        let one = sent(f.on_response(Body::Fault(fault.clone())));
        let Body::GetParameterValues(g) = one else {
            panic!()
        };
        assert_eq!(g.names.len(), 1);
        let mut step = f.on_response(Body::Fault(fault));
        while let FlowStep::Send(_) = step {
            step = f.on_response(gpv_response(&[]));
        }
        assert!(matches!(step, FlowStep::NeedDesired(_)));
        sent(f.supply(DesiredOutcome::Found {
            equipment: "EQ-1".into(),
            modified: None,
            desired: desired("k7Hq2mZp9xWe"),
        }));
        let spv_fault = Fault {
            soap_code: "Client".into(),
            soap_string: "CWMP fault".into(),
            code: 9003,
            string: "Invalid arguments".into(),
            set_parameter_values_faults: vec![SetParameterValuesFault {
                parameter_name: "Device.WiFi.SSID.1.SSID".into(),
                code: 9007,
                string: "Invalid parameter value".into(),
            }],
        };
        let FlowStep::Finished(Outcome::CpeFault { code, message }) =
            f.on_response(Body::Fault(spv_fault))
        else {
            panic!()
        };
        assert_eq!(code, 9003);
        assert!(message.contains("Device.WiFi.SSID.1.SSID 9007"));
    }

    #[test]
    fn erpnext_down_leaves_a_provisioned_device_alone() {
        let key_path = "Device.ManagementServer.ParameterKey";
        // Never provisioned (factory ParameterKey): the ACS's own settings.
        let mut f = Flow::new(ctx(), None);
        f.begin();
        f.on_response(gpv_response(&[(key_path, "")]));
        let Body::SetParameterValues(mgmt) =
            sent(f.supply(DesiredOutcome::Unavailable("down".into())))
        else {
            panic!()
        };
        // Provisioned (it carries the key last verified on it): nothing is
        // pushed, whether ERPNext is down or refuses us.
        for answer in [
            DesiredOutcome::Unavailable("down".into()),
            DesiredOutcome::Failed("HTTP 417".into()),
        ] {
            let mut c = ctx();
            c.applied_key = Some("full-key".into());
            let mut f = Flow::new(c, None);
            f.begin();
            f.on_response(gpv_response(&[(key_path, "full-key")]));
            assert!(
                matches!(f.supply(answer), FlowStep::Finished(_)),
                "pushed to a provisioned device"
            );
        }
        // A device that does not carry it (another key, e.g. the ACS's
        // settings alone) still gets them.
        let mut c = ctx();
        c.applied_key = Some("full-key".into());
        let mut f = Flow::new(c, None);
        f.begin();
        f.on_response(gpv_response(&[(key_path, "other-key")]));
        let Body::SetParameterValues(again) =
            sent(f.supply(DesiredOutcome::Unavailable("down".into())))
        else {
            panic!()
        };
        assert_eq!(again.parameter_key, mgmt.parameter_key);
    }
}
