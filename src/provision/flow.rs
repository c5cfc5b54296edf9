//! One provisioning run inside a CWMP session, as a state machine: it asks
//! for RPCs to send, for ERPNext's answer and for parts of the device's
//! data model to be learned again, and ends with an [`Outcome`]. Pure: the
//! session feeds it the CPE's responses and the discovered data model, the
//! server feeds it ERPNext's answer.
//!
//! Full run (bootstrap, boot, connection request, or not yet provisioned):
//! read what the analysis needs and the managed values, names taken from
//! the device's data model (one GetParameterValues) → work out the
//! effective profile ([`super::targets`]) → ERPNext → the voice lines'
//! values when ERPNext asks for SIP, the PPP interfaces' when it asks for
//! PPPoE (one GetParameterValues) → one
//! SetParameterValues with what differs → verify (one GetParameterValues).
//! Check run (periodic, already provisioned): ERPNext first; if the record
//! has not changed, no RPC at all.
//!
//! Every name the run asks for or sets is one the device reported; a
//! device answering 9005 anyway (its data model changed) makes the run ask
//! for that subtree to be learned again ([`FlowStep::Relearn`]), once, and
//! retry with what the device has now.

use std::collections::BTreeMap;
use std::sync::Arc;

use ring::hmac;
use serde::{Deserialize, Serialize};

use super::datamodel::{DataModelTree, common_object};
use super::plan::{self, Desired, InvalidValue, ManagementConfig, SipServers};
use super::profile::{DeviceFacts, Profile, Profiles};
use super::targets::{self, Values};
use crate::cwmp::rpc::GetParameterValues;
use crate::cwmp::{Body, Fault};
use crate::identity::{canonical_gpon_serial, canonical_mac};

/// CWMP fault: invalid parameter name.
const INVALID_PARAMETER_NAME: u32 = 9005;

/// Identifiers read from the device, canonical.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadIdentity {
    pub mac: Option<String>,
    pub gpon_serial: Option<String>,
    /// The device's other MACs (WAN side, other interfaces), for ERPNext
    /// records that carry one of those.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_macs: Vec<String>,
}

/// MACs looked up in ERPNext per device at most (the first one found wins).
const MAX_MACS: usize = 4;

/// The MACs and GPON serial a device reports at its profile's identity
/// paths, canonical.
pub fn read_identity(profile: &Profile, values: &BTreeMap<String, String>) -> ReadIdentity {
    let mut macs: Vec<String> = Vec::new();
    for path in &profile.identity.mac {
        if let Some(m) = values.get(path).and_then(|v| canonical_mac(v)) {
            if !macs.contains(&m) {
                macs.push(m);
            }
        }
    }
    macs.truncate(MAX_MACS);
    let mut macs = macs.into_iter();
    ReadIdentity {
        mac: macs.next(),
        other_macs: macs.collect(),
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
        /// The device did not keep the ParameterKey sent with the values
        /// (some firmware ignores it): the values are verified, but secrets
        /// cannot be told applied and go again at each full run.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        key_ignored: bool,
    },
    /// Check run: ERPNext unchanged since the last run.
    Unchanged,
    /// The record has no WiFi, SIP or PPPoE data; the device was left alone.
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
    /// Learn this part of the device's data model again (GetParameterNames
    /// of the object path; `""` or the root: all of it), then call
    /// [`Flow::relearned`].
    Relearn(String),
    Finished(Outcome),
}

/// What a state waits for; kept to retry it after a re-learn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Asked {
    Read,
    Accounts,
    Set,
    Verify,
}

#[derive(Debug)]
enum State {
    Start,
    Reading,
    AwaitDesired,
    ReadingAccounts,
    Setting {
        expect: BTreeMap<String, String>,
        pushed: usize,
    },
    Verifying {
        expect: BTreeMap<String, String>,
        pushed: usize,
    },
    /// Waiting for [`Flow::relearned`]; then `Asked` is asked again.
    Relearning(Asked, Option<(BTreeMap<String, String>, usize)>),
    Done,
}

/// What the device says about itself (from its Inform and earlier reads).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    pub manufacturer: String,
    pub oui: String,
    pub product_class: String,
    /// `DeviceInfo.ModelName`, once read.
    pub model_name: Option<String>,
    /// `Device.` or `InternetGatewayDevice.`.
    pub root: String,
}

impl Facts {
    /// The family profile for these facts, if one matches.
    pub fn family<'a>(&self, profiles: &'a Profiles) -> Option<&'a Profile> {
        profiles.find(&DeviceFacts {
            manufacturer: &self.manufacturer,
            oui: &self.oui,
            product_class: &self.product_class,
            model_name: self.model_name.as_deref().unwrap_or(""),
            root: &self.root,
        })
    }
}

/// Inputs that do not come from the CPE or ERPNext.
#[derive(Clone)]
pub struct FlowContext {
    /// Family profiles (vendor quirks), matched on the model name.
    pub profiles: Arc<Profiles>,
    pub facts: Facts,
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
    values: Values,
    /// The device's values have been read in this run.
    read_done: bool,
    /// A 9005 already made this run re-learn the data model once.
    relearned: bool,
    identity: ReadIdentity,
    /// The effective profile, once the device's values are read.
    targets: Option<Profile>,
    found: Option<(String, Option<String>, Desired)>,
    /// What the run ends with once the management settings are applied
    /// (ERPNext had nothing usable).
    after_set: Option<Outcome>,
    /// Names of the request in flight (what a 9005 is about).
    asked: Vec<String>,
    /// The types the device reported with the values it read.
    types: BTreeMap<String, crate::cwmp::ValueType>,
}

impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow")
            .field("targets", &self.targets.as_ref().map(|t| &t.name))
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
            values: Values::new(),
            read_done: false,
            relearned: false,
            identity: ReadIdentity::default(),
            targets: None,
            found: None,
            after_set: None,
            asked: Vec::new(),
            types: BTreeMap::new(),
        }
    }

    fn gpv(&mut self, names: Vec<String>) -> FlowStep {
        self.asked = names.clone();
        FlowStep::Send(GetParameterValues { names }.into())
    }

    /// The effective profile worked out in this run, if it got that far.
    pub fn targets(&self) -> Option<&Profile> {
        self.targets.as_ref()
    }

    fn root(&self) -> &str {
        &self.ctx.facts.root
    }

    /// The device's model name, as read in this run (or known before it).
    pub fn model_name(&self) -> Option<&str> {
        self.ctx.facts.model_name.as_deref()
    }

    fn management(&self, leaf: &str) -> String {
        format!("{}ManagementServer.{leaf}", self.root())
    }

    /// Names of the first read: what the analysis needs, the managed
    /// values, the ParameterKey, and what the family profiles of this root
    /// name, all as the device has them.
    fn read_names(&self, tree: &DataModelTree) -> Vec<String> {
        let root = self.root().to_owned();
        let mut names = targets::analysis_inputs(tree, &root);
        for leaf in plan::MANAGEMENT_READ {
            names.push(self.management(leaf));
        }
        for p in self.ctx.profiles.all().iter().filter(|p| p.root == root) {
            names.extend(plan::read_names(p));
        }
        let mut seen = std::collections::BTreeSet::new();
        names.retain(|n| tree.has_leaf(n) && seen.insert(n.clone()));
        names
    }

    fn read(&mut self, tree: Option<&DataModelTree>) -> FlowStep {
        let Some(tree) = tree else {
            // Not discovered yet (a check run of a device whose data model
            // is not stored): learn all of it first.
            self.state = State::Relearning(Asked::Read, None);
            return FlowStep::Relearn(self.root().to_owned());
        };
        self.state = State::Reading;
        self.gpv(self.read_names(tree))
    }

    /// The first step. A full run needs the device's data model.
    pub fn begin(&mut self, tree: Option<&DataModelTree>) -> FlowStep {
        match &self.check {
            Some(check) => {
                self.state = State::AwaitDesired;
                FlowStep::NeedDesired(DesiredRequest {
                    identity: ReadIdentity::default(),
                    check: Some(check.clone()),
                })
            }
            None => self.read(tree),
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
        let key = self.values.get(&self.management("ParameterKey"));
        matches!((key, &self.ctx.applied_key), (Some(k), Some(a)) if !k.is_empty() && k == a)
    }

    /// Keeps what the device read back: values and their types.
    fn record(&mut self, read: Vec<crate::cwmp::ParameterValue>) {
        for p in read {
            self.types.insert(p.name.clone(), p.kind);
            self.values.insert(p.name, p.value);
        }
    }

    /// The effective profile from the tree and the values read so far.
    fn work_out_targets(&mut self, tree: &DataModelTree) {
        let model = self
            .values
            .get(&format!("{}DeviceInfo.ModelName", self.root()))
            .filter(|m| !m.trim().is_empty())
            .cloned();
        if model.is_some() {
            self.ctx.facts.model_name = model;
        }
        let family = self.ctx.facts.family(&self.ctx.profiles).cloned();
        let root = self.root().to_owned();
        self.targets = Some(targets::effective(
            tree,
            &self.values,
            family.as_ref(),
            &root,
        ));
    }

    /// Values are read: plan with ERPNext's answer if we have it, else ask.
    fn after_read(&mut self, tree: &DataModelTree) -> FlowStep {
        self.read_done = true;
        self.work_out_targets(tree);
        if let Some(t) = &self.targets {
            self.identity = read_identity(t, &self.values);
        }
        if self.found.is_some() || self.after_set.is_some() {
            return self.read_accounts_or_plan(tree);
        }
        self.state = State::AwaitDesired;
        FlowStep::NeedDesired(DesiredRequest {
            identity: self.identity.clone(),
            check: None,
        })
    }

    /// The current values of the accounts ERPNext asks for, where the
    /// device has them: the voice line (SIP) and the PPP interfaces with
    /// what tells the Internet one from the others (PPPoE); else the plan.
    fn read_accounts_or_plan(&mut self, tree: &DataModelTree) -> FlowStep {
        let desired = self.found.as_ref().map(|(_, _, d)| d);
        let line = desired.and_then(|d| d.sip.as_ref()).map(|s| s.line);
        let wants_ppp = desired.is_some_and(|d| d.ppp.is_some());
        let sip = self.targets.as_ref().and_then(|t| t.sip.clone());
        let root = self.root().to_owned();
        let mut names = Vec::new();
        if let (Some(line), Some(sip)) = (line, sip) {
            names.extend(targets::sip_inputs(tree, &sip, line));
            names.extend(tree.expand(&format!(
                "{root}Services.VoiceService.*.SIP.Client.*.Network"
            )));
        }
        if wants_ppp {
            names.extend(super::ppp::ppp_inputs(tree, &root));
        }
        names.retain(|n| !self.values.contains_key(n));
        let mut seen = std::collections::BTreeSet::new();
        names.retain(|n| seen.insert(n.clone()));
        if !names.is_empty() {
            self.state = State::ReadingAccounts;
            return self.gpv(names);
        }
        self.plan(tree)
    }

    /// The SetParameterValues for what is known, or the end.
    fn plan(&mut self, tree: &DataModelTree) -> FlowStep {
        let Some(targets) = self.targets.clone() else {
            return self.finish(Outcome::ReadFailed {
                reason: "internal: planning before the device was read".into(),
            });
        };
        let (desired, done) = match &self.found {
            Some((equipment, modified, d)) => {
                let mut d = d.clone();
                d.management = self.ctx.management.clone();
                d.sip_servers = self.ctx.sip_servers.clone();
                let no_config = d.wifi.is_none() && d.sip.is_none() && d.ppp.is_none();
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
        let key = plan::parameter_key(&self.ctx.key, &targets, &desired);
        let can_write = |n: &str| tree.can_write(n);
        match plan::plan_set(&targets, &desired, &self.values, &key, &can_write) {
            Some(mut spv) => {
                plan::fit_types(&mut spv, &self.types, targets.booleans());
                if done.is_some() {
                    self.after_set = done;
                }
                let mut expect = plan::verify_expectations(&targets, &spv);
                expect.retain(|n, _| tree.has_leaf(n));
                let pushed = spv.parameters.len();
                self.asked = spv.parameters.iter().map(|p| p.name.clone()).collect();
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
                key_ignored: false,
            },
            None => self.after_set.clone().unwrap_or(Outcome::Deferred {
                reason: "no ERPNext record".into(),
            }),
        }
    }

    /// ERPNext's answer to a [`FlowStep::NeedDesired`].
    pub fn supply(&mut self, answer: DesiredOutcome, tree: Option<&DataModelTree>) -> FlowStep {
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
                match (self.read_done, tree) {
                    (true, Some(tree)) => self.read_accounts_or_plan(tree),
                    _ => self.read(tree),
                }
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
                let Some(tree) = tree.filter(|_| self.read_done) else {
                    return self.finish(outcome);
                };
                if self.ctx.management.is_none() || (no_answer && self.carries_applied_config()) {
                    return self.finish(outcome);
                }
                self.after_set = Some(outcome);
                self.plan(tree)
            }
        }
    }

    /// Asks for a subtree to be learned again after a 9005, once per run.
    fn relearn(
        &mut self,
        asked: Asked,
        names: &[String],
        keep: Option<(BTreeMap<String, String>, usize)>,
        fault: &Fault,
    ) -> FlowStep {
        if self.relearned {
            return self.finish(Outcome::ReadFailed {
                reason: format!("the device refused names it had reported: {fault}"),
            });
        }
        self.relearned = true;
        self.state = State::Relearning(asked, keep);
        let mut prefix = common_object(names);
        if prefix.len() < self.root().len() {
            prefix = self.root().to_owned();
        }
        FlowStep::Relearn(prefix)
    }

    /// The session learned the subtree asked for by [`FlowStep::Relearn`]
    /// (or failed to: `tree` is then what it had): ask again, with only
    /// names the device has now.
    pub fn relearned(&mut self, tree: Option<&DataModelTree>) -> FlowStep {
        let state = std::mem::replace(&mut self.state, State::Done);
        let State::Relearning(asked, keep) = state else {
            return self.finish(Outcome::ReadFailed {
                reason: "internal: data model learned out of order".into(),
            });
        };
        let Some(tree) = tree else {
            return self.finish(Outcome::ReadFailed {
                reason: "the device's data model could not be discovered".into(),
            });
        };
        match asked {
            Asked::Read => {
                self.state = State::Reading;
                self.gpv(self.read_names(tree))
            }
            Asked::Accounts => {
                self.work_out_targets(tree);
                self.read_accounts_or_plan(tree)
            }
            Asked::Set => {
                self.work_out_targets(tree);
                self.plan(tree)
            }
            Asked::Verify => {
                let (mut expect, pushed) = keep.unwrap_or_default();
                expect.retain(|n, _| tree.has_leaf(n));
                let names: Vec<String> = expect.keys().cloned().collect();
                self.state = State::Verifying { expect, pushed };
                self.gpv(names)
            }
        }
    }

    /// The CPE's answer to the flow's last RPC. `tree` is the device's data
    /// model as the session knows it.
    pub fn on_response(&mut self, body: Body, tree: Option<&DataModelTree>) -> FlowStep {
        let state = std::mem::replace(&mut self.state, State::Done);
        let Some(tree) = tree else {
            return self.finish(Outcome::ReadFailed {
                reason: "the device's data model is unknown".into(),
            });
        };
        match (state, body) {
            (State::Reading, Body::GetParameterValuesResponse(r)) => {
                self.record(r.parameters);
                self.after_read(tree)
            }
            (State::ReadingAccounts, Body::GetParameterValuesResponse(r)) => {
                self.record(r.parameters);
                // The v2 client's network and the PPP layers are known now.
                self.work_out_targets(tree);
                self.plan(tree)
            }
            (State::Reading, Body::Fault(f)) if f.code == INVALID_PARAMETER_NAME => {
                let names = std::mem::take(&mut self.asked);
                self.relearn(Asked::Read, &names, None, &f)
            }
            (State::ReadingAccounts, Body::Fault(f)) if f.code == INVALID_PARAMETER_NAME => {
                let names = std::mem::take(&mut self.asked);
                self.relearn(Asked::Accounts, &names, None, &f)
            }
            (State::Reading | State::ReadingAccounts, Body::Fault(f)) => {
                self.finish(Outcome::ReadFailed {
                    reason: f.to_string(),
                })
            }
            (State::Setting { expect, pushed }, Body::SetParameterValuesResponse(r)) => {
                let key = expect
                    .get(&self.management("ParameterKey"))
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
                self.gpv(names)
            }
            (State::Setting { .. }, Body::Fault(f)) => {
                let missing: Vec<String> = f
                    .set_parameter_values_faults
                    .iter()
                    .filter(|p| p.code == INVALID_PARAMETER_NAME)
                    .map(|p| p.parameter_name.clone())
                    .collect();
                if f.code == INVALID_PARAMETER_NAME || !missing.is_empty() {
                    let names = if missing.is_empty() {
                        std::mem::take(&mut self.asked)
                    } else {
                        missing
                    };
                    return self.relearn(Asked::Set, &names, None, &f);
                }
                self.finish(cpe_fault(&f))
            }
            (State::Verifying { expect, pushed }, Body::GetParameterValuesResponse(r)) => {
                let read: BTreeMap<String, String> = r
                    .parameters
                    .into_iter()
                    .map(|p| (p.name, p.value))
                    .collect();
                let key_path = self.management("ParameterKey");
                let key = expect.get(&key_path).cloned().unwrap_or_default();
                let key_ignored = read.get(&key_path).is_some_and(|k| *k != key);
                let mut values = expect;
                values.remove(&key_path);
                let details = plan::verify(&values, &read);
                if !details.is_empty() {
                    return self.finish(Outcome::VerifyFailed { details });
                }
                let mut o = self.provisioned(key, pushed, false);
                if let Outcome::Provisioned { key_ignored: k, .. } = &mut o {
                    *k = key_ignored;
                }
                self.finish(o)
            }
            (State::Verifying { expect, pushed }, Body::Fault(f))
                if f.code == INVALID_PARAMETER_NAME =>
            {
                let names: Vec<String> = expect.keys().cloned().collect();
                self.relearn(Asked::Verify, &names, Some((expect, pushed)), &f)
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
mod tests;
