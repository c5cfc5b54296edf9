//! What a session does when it opens, decided from the device record, its
//! Inform and its queued tasks: discover the data model, provision (and
//! how), collect the host table, start or fail Ops actions. Pure: the
//! server loads the inputs, calls [`open`], and writes what it returns.

use std::sync::Arc;

use ring::hmac;

use super::{CollectPlan, Effect, SessionWork};
use crate::config::Secret;
use crate::cwmp::rpc::Inform;
use crate::provision::flow::{Facts, Flow, FlowContext};
use crate::provision::plan::{ManagementConfig, SipServers};
use crate::provision::policy::{self, RunKind};
use crate::provision::profile::Profiles;
use crate::store::{
    DeviceRecord, ProvisionStatus, Task, TaskAction, TaskFault, TaskRequest, TaskStatus,
};

use super::inform::EVENT_BOOTSTRAP;

/// The provisioning settings a session needs (cheap to clone: shared
/// parts are reference-counted).
#[derive(Clone)]
pub struct ProvisioningPolicy {
    /// `ACS_PROVISIONING`.
    pub enabled: bool,
    /// An ERPNext is configured.
    pub erpnext: bool,
    /// Family profiles (quirks), matched on the learned model name.
    pub profiles: Arc<Profiles>,
    /// Key of the ParameterKey HMACs.
    pub key: Arc<hmac::Key>,
    pub sip_servers: SipServers,
    /// PeriodicInformInterval set on provisioned devices.
    pub periodic_interval_s: Option<u32>,
    /// Milliseconds between ERPNext checks of a provisioned device.
    pub recheck_ms: u64,
}

/// Everything [`open`] decides with besides the device.
pub struct SessionPolicy<'a> {
    pub provisioning: &'a ProvisioningPolicy,
    /// `ACS_HOSTS_COLLECT`.
    pub hosts_collect: bool,
    /// `ACS_HOSTS_MAX_AGE_S` in ms (`None`: only on bootstrap and demand).
    pub hosts_max_age_ms: Option<u64>,
    /// Sessions an action may go unanswered before it fails.
    pub max_attempts: u32,
}

/// What [`open`] decided.
#[derive(Debug)]
pub struct Opening {
    /// The session's own work; its `tree` is for the caller to fill in
    /// when [`Opening::needs_tree`].
    pub work: SessionWork,
    /// The stored data model is needed (provisioning or collection without
    /// a discovery).
    pub needs_tree: bool,
    /// Ops actions started or failed.
    pub effects: Vec<Effect>,
}

/// How long a device that refused GetParameterNames is left alone.
const DISCOVERY_RETRY_MS: u64 = 3_600_000;

/// Why the device's data model must be (re)discovered in this session:
/// never learned, factory reset (`0 BOOTSTRAP`), or new firmware.
pub fn discovery_due(device: &DeviceRecord, inform: &Inform, now_ms: u64) -> Option<&'static str> {
    if inform.has_event(EVENT_BOOTSTRAP) {
        return Some("bootstrap");
    }
    let Some(model) = &device.data_model else {
        // A device that refused is asked again an hour later, not at
        // every session.
        return match device.discovery_failed_ms {
            Some(at) if now_ms.saturating_sub(at) < DISCOVERY_RETRY_MS => None,
            Some(_) => Some("retry after a refusal"),
            None => Some("first contact"),
        };
    };
    match (&device.software_version, &model.software_version) {
        (Some(now), Some(then)) if now != then => Some("new firmware"),
        _ => None,
    }
}

/// Whether the host table is older than the configured age.
fn hosts_due(device: &DeviceRecord, max_age_ms: Option<u64>, now_ms: u64) -> bool {
    match (device.hosts_collected_ms, max_age_ms) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(at), Some(age)) => now_ms.saturating_sub(at) >= age,
    }
}

/// The device's facts for profile matching.
pub fn facts(device: &DeviceRecord) -> Facts {
    Facts {
        manufacturer: device.identity.manufacturer.clone(),
        oui: device.identity.oui.clone(),
        product_class: device.identity.product_class.clone(),
        model_name: device.model_name.clone(),
        root: device.root.clone().unwrap_or_default(),
    }
}

/// Decides the session's work. `device` is the record after the Inform
/// (its provisioning state is updated here: an Ops request, the
/// connection-request credentials the device is given the first time,
/// which `new_secret` makes).
pub fn open(
    device: &mut DeviceRecord,
    inform: &Inform,
    tasks: &[Task],
    policy: &SessionPolicy<'_>,
    now_ms: u64,
    new_secret: &mut dyn FnMut() -> String,
) -> Opening {
    let pending = |action: TaskAction| -> Vec<Task> {
        tasks
            .iter()
            .filter(|t| t.request == TaskRequest::Action(action) && t.status.is_runnable())
            .cloned()
            .collect()
    };
    let reprovisions = pending(TaskAction::Reprovision);
    let host_requests = pending(TaskAction::CollectHosts);
    if !reprovisions.is_empty() {
        device.provisioning.requested = true;
    }
    let prov = policy.provisioning;
    // Learned when something uses it: provisioning, the collector, or an
    // Ops refresh of the host table.
    let uses_model = prov.enabled || policy.hosts_collect || !host_requests.is_empty();
    let discover = discovery_due(device, inform, now_ms).filter(|_| uses_model);
    let flow = if prov.enabled {
        flow_for(device, inform, prov, now_ms, new_secret)
    } else {
        None
    };
    let why_not = if !prov.enabled {
        "provisioning is off (ACS_PROVISIONING=off)".to_owned()
    } else {
        device
            .provisioning
            .reason
            .clone()
            .unwrap_or_else(|| "no provisioning run for this device".into())
    };
    let mut effects = Vec::new();
    start_actions(
        reprovisions,
        flow.is_some(),
        &why_not,
        policy.max_attempts,
        now_ms,
        &mut effects,
    );
    let collect = !host_requests.is_empty()
        || (policy.hosts_collect
            && (discover.is_some()
                || inform.has_event(EVENT_BOOTSTRAP)
                || hosts_due(device, policy.hosts_max_age_ms, now_ms)));
    start_actions(
        host_requests,
        collect,
        "",
        policy.max_attempts,
        now_ms,
        &mut effects,
    );
    let root = device.root.clone().unwrap_or_default();
    let needs_tree = discover.is_none() && (flow.is_some() || collect);
    Opening {
        work: SessionWork {
            discover: discover.map(|_| root),
            tree: None,
            flow,
            collect: collect.then(|| CollectPlan {
                profiles: prov.profiles.clone(),
                facts: facts(device),
            }),
        },
        needs_tree,
        effects,
    }
}

/// The provisioning run for this session, if any. Gives the device its
/// connection-request credentials the first time.
fn flow_for(
    device: &mut DeviceRecord,
    inform: &Inform,
    prov: &ProvisioningPolicy,
    now_ms: u64,
    new_secret: &mut dyn FnMut() -> String,
) -> Option<Flow> {
    let facts = facts(device);
    let p = &mut device.provisioning;
    // Records from before discovery: every device is provisioned now.
    if p.status == ProvisionStatus::NoProfile {
        p.status = ProvisionStatus::Pending;
        p.reason = None;
    }
    p.profile = Some(
        facts
            .family(&prov.profiles)
            .map(|f| f.name.clone())
            .unwrap_or_else(|| crate::provision::targets::generic_name(&facts.root).to_owned()),
    );
    let kind = policy::decide(p, &inform.events, prov.erpnext, now_ms, prov.recheck_ms)?;
    let cr_username = p
        .cr_username
        .get_or_insert_with(|| device.identity.serial_number.clone())
        .clone();
    let cr_password = p.cr_password.get_or_insert_with(new_secret).clone();
    let ctx = FlowContext {
        profiles: prov.profiles.clone(),
        facts,
        key: prov.key.clone(),
        management: Some(ManagementConfig {
            periodic_interval_s: prov.periodic_interval_s,
            cr_username,
            cr_password: Secret::new(cr_password),
        }),
        sip_servers: prov.sip_servers.clone(),
        applied_key: p.applied_key.clone(),
    };
    let check = match kind {
        RunKind::Full => None,
        RunKind::Check {
            equipment,
            modified,
        } => Some((equipment, modified)),
    };
    Some(Flow::new(ctx, check))
}

/// Starts (or fails) Ops actions: marks them sent when the session will
/// carry them out, fails them when it cannot or when they already had
/// their attempts.
fn start_actions(
    tasks: Vec<Task>,
    runs: bool,
    why_not: &str,
    max_attempts: u32,
    now_ms: u64,
    effects: &mut Vec<Effect>,
) {
    for mut task in tasks {
        task.updated_ms = now_ms;
        if !runs || task.attempts >= max_attempts {
            let message = if runs {
                format!("not completed after {} sessions", task.attempts)
            } else {
                why_not.to_owned()
            };
            task.status = TaskStatus::Failed;
            task.outcome = Some(message.clone());
            task.fault = Some(TaskFault { code: 0, message });
        } else {
            task.status = TaskStatus::Sent;
            task.attempts += 1;
        }
        effects.push(Effect::Task(task));
    }
}

#[cfg(test)]
mod tests;
