//! Applying what a session decided to the store.

use serde_json::json;

use crate::catalog::Catalog;
use crate::cwmp::ParameterValue;
use crate::events::{EventKind, NewEvent};
use crate::provision::flow::Outcome;
use crate::provision::policy;
use crate::session::{Effect, InformOutcome};
use crate::store::{
    CachedValue, FaultRecord, NewFault, ProvisionStatus, Store, StoreResult, Task, TaskAction,
    TaskFault, TaskRequest, TaskStatus, Writeback,
};

/// Finished tasks kept per device for Ops to look at.
const FINISHED_TASKS_KEPT: usize = 50;

/// Writes an accepted Inform: forget on bootstrap, then parameters, then the
/// device record, so the record (what the API lists) is written last.
pub fn apply_inform(store: &dyn Store, outcome: &InformOutcome) -> StoreResult<()> {
    let id = &outcome.device.id;
    if outcome.bootstrap {
        store.clear_parameters(id)?;
    }
    store.put_inform_values(id, &outcome.parameters)?;
    store.put_device(&outcome.device)
}

/// What applying effects did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Something was written (a sync is due before the reply).
    pub wrote: bool,
    /// Events to publish once the writes are durable.
    pub events: Vec<NewEvent>,
}

/// The `task.done` event of a finished task.
pub fn task_done_event(task: &Task) -> NewEvent {
    NewEvent::new(
        EventKind::TaskDone,
        &task.device_id,
        json!({
            "task_id": task.id,
            "name": task_name(task),
            "status": task.status,
            "fault": task.fault,
            "outcome": task.outcome,
        }),
    )
}

/// The `device.fault` event of a recorded fault.
pub fn fault_event(f: &FaultRecord) -> NewEvent {
    NewEvent::new(
        EventKind::DeviceFault,
        &f.device_id,
        json!({
            "fault_id": f.id,
            "source": f.source,
            "code": f.code,
            "message": f.message,
            "rpc": f.rpc,
            "task_id": f.task_id,
        }),
    )
}

/// The name a task is shown with: its API name, else its RPC's.
pub fn task_name(task: &Task) -> String {
    if task.name.is_empty() {
        task.request.name().to_owned()
    } else {
        task.name.clone()
    }
}

/// Writes a task and, if it just finished, queues its event.
fn put_task(store: &dyn Store, task: &Task, applied: &mut Applied) -> StoreResult<()> {
    store.put_task(task)?;
    if task.status.is_finished() {
        applied.events.push(task_done_event(task));
    }
    Ok(())
}

/// Finishes the device's tasks of one action kind that this session
/// started (marked sent at its start). One queued while the session was
/// already running stays pending for the next session: this run read
/// ERPNext (or the host table) before it was asked for.
fn finish_actions(
    store: &dyn Store,
    device_id: &str,
    action: TaskAction,
    ok: bool,
    outcome: &str,
    now_ms: u64,
    applied: &mut Applied,
) -> StoreResult<bool> {
    let mut any = false;
    for mut task in store.tasks(device_id)? {
        if task.request != TaskRequest::Action(action) || task.status != TaskStatus::Sent {
            continue;
        }
        task.status = if ok {
            TaskStatus::Done
        } else {
            TaskStatus::Failed
        };
        task.outcome = Some(outcome.to_owned());
        task.fault = (!ok).then(|| TaskFault {
            code: 0,
            message: outcome.to_owned(),
        });
        task.updated_ms = now_ms;
        put_task(store, &task, applied)?;
        any = true;
    }
    Ok(any)
}

/// Applies a session's effects; the caller syncs if `wrote` and then
/// publishes the events.
pub fn apply_effects(
    store: &dyn Store,
    catalog: &Catalog,
    device_id: &str,
    effects: Vec<Effect>,
    now_ms: u64,
    retry_ms: u64,
) -> StoreResult<Applied> {
    let mut applied = Applied {
        wrote: !effects.is_empty(),
        events: Vec::new(),
    };
    let mut prune = false;
    for effect in effects {
        match effect {
            Effect::Task(task) => {
                prune |= task.status.is_finished();
                put_task(store, &task, &mut applied)?;
            }
            Effect::ParameterValues(values) => {
                store.put_values(device_id, &cached(values, now_ms))?;
            }
            Effect::SubtreeValues { prefixes, values } => {
                store.replace_subtrees(device_id, &prefixes, &cached(values, now_ms))?;
            }
            Effect::DataModel(tree) => {
                if let Some(mut device) = store.device(device_id)? {
                    let info = catalog.store(store, &device, &tree, now_ms)?;
                    tracing::info!(device = %device_id, names = info.names, base = %info.base, delta = info.has_delta, "data model stored");
                    device.data_model = Some(info);
                    device.discovery_failed_ms = None;
                    store.put_device(&device)?;
                }
            }
            Effect::DiscoveryFailed => {
                if let Some(mut device) = store.device(device_id)? {
                    device.discovery_failed_ms = Some(now_ms);
                    store.put_device(&device)?;
                }
            }
            Effect::Profile(name) => {
                if let Some(mut device) = store.device(device_id)? {
                    if device.provisioning.profile.as_deref() != Some(name.as_str()) {
                        device.provisioning.profile = Some(name);
                        store.put_device(&device)?;
                    }
                }
            }
            Effect::ModelName(name) => {
                if let Some(mut device) = store.device(device_id)? {
                    if device.model_name.as_deref() != Some(name.as_str()) {
                        device.model_name = Some(name);
                        store.put_device(&device)?;
                    }
                }
            }
            Effect::ParameterInfo(infos) => {
                let names: Vec<(String, bool)> =
                    infos.into_iter().map(|i| (i.name, i.writable)).collect();
                store.put_writability(device_id, &names)?;
            }
            Effect::Provisioning(outcome) => {
                prune |=
                    apply_provisioning(store, device_id, &outcome, now_ms, retry_ms, &mut applied)?;
            }
            Effect::HostsCollected { ok, detail } => {
                if let Some(mut device) = store.device(device_id)? {
                    // Also on failure: the next attempt waits for the
                    // configured age instead of every session retrying.
                    device.hosts_collected_ms = Some(now_ms);
                    store.put_device(&device)?;
                }
                if !ok {
                    tracing::info!(device = %device_id, %detail, "host table collection failed");
                }
                prune |= finish_actions(
                    store,
                    device_id,
                    TaskAction::CollectHosts,
                    ok,
                    &detail,
                    now_ms,
                    &mut applied,
                )?;
            }
            Effect::Completion { command_key, fault } => {
                for mut task in store.tasks(device_id)? {
                    if task.status != TaskStatus::AwaitingCompletion
                        || task.request.rpc().and_then(command_key_of) != Some(command_key.as_str())
                    {
                        continue;
                    }
                    task.status = if fault.is_some() {
                        TaskStatus::Failed
                    } else {
                        TaskStatus::Done
                    };
                    task.fault = fault.clone();
                    task.updated_ms = now_ms;
                    prune = true;
                    put_task(store, &task, &mut applied)?;
                }
            }
            Effect::AutonomousTransfer {
                is_download,
                file_type,
                target_file_name,
                file_size,
                fault,
            } => {
                applied.events.push(NewEvent::new(
                    EventKind::DeviceTransfer,
                    device_id,
                    serde_json::json!({
                        "autonomous": true,
                        "direction": if is_download { "download" } else { "upload" },
                        "file_type": file_type,
                        "target_file_name": target_file_name,
                        "file_size": file_size,
                        "fault": fault.map(|f| serde_json::json!({"code": f.code, "message": f.message})),
                    }),
                ));
            }
            Effect::Fault {
                source,
                code,
                message,
                rpc,
                task_id,
            } => {
                let f = store.record_fault(NewFault {
                    device_id: device_id.to_owned(),
                    at_ms: now_ms,
                    source,
                    code,
                    message,
                    rpc,
                    task_id,
                })?;
                applied.events.push(fault_event(&f));
            }
        }
    }
    if prune {
        store.prune_finished_tasks(device_id, FINISHED_TASKS_KEPT)?;
    }
    Ok(applied)
}

/// Records a provisioning outcome in the device record, queues the ERPNext
/// write-back it calls for, lists its fault for Ops and finishes the
/// device's reprovision tasks. Returns whether a task finished.
fn apply_provisioning(
    store: &dyn Store,
    device_id: &str,
    outcome: &Outcome,
    now_ms: u64,
    retry_ms: u64,
    applied: &mut Applied,
) -> StoreResult<bool> {
    let Some(mut device) = store.device(device_id)? else {
        return Ok(false);
    };
    let c = policy::record(&mut device.provisioning, outcome, now_ms, retry_ms);
    tracing::info!(device = %device_id, status = ?device.provisioning.status, equipment = device.provisioning.equipment.as_deref().unwrap_or("-"), "provisioning");
    let wrote_back = c.writeback.is_some();
    if let Some(equipment) = c.writeback {
        store.put_writeback(&Writeback {
            device_id: device_id.to_owned(),
            equipment,
            cwmp_serial: device.identity.serial_number.clone(),
            at_ms: now_ms,
            attempts: 0,
        })?;
    }
    if let Some((code, message)) = c.fault {
        let f = store.record_fault(NewFault {
            device_id: device_id.to_owned(),
            at_ms: now_ms,
            source: "provisioning",
            code,
            message,
            rpc: None,
            task_id: None,
        })?;
        applied.events.push(fault_event(&f));
    }
    store.put_device(&device)?;
    let p = &device.provisioning;
    let ok = matches!(
        p.status,
        ProvisionStatus::Provisioned | ProvisionStatus::NoConfig
    );
    let text = match (&p.reason, &p.equipment) {
        (Some(r), _) => format!("{}: {r}", status_word(p.status)),
        (None, Some(e)) => format!("{} from {e}", status_word(p.status)),
        (None, None) => status_word(p.status).to_owned(),
    };
    let finished = finish_actions(
        store,
        device_id,
        TaskAction::Reprovision,
        ok,
        &text,
        now_ms,
        applied,
    )?;
    // A check run that found nothing to change is not news.
    if p.status == ProvisionStatus::Provisioned && (wrote_back || finished) {
        applied.events.push(NewEvent::new(
            EventKind::DeviceProvisioned,
            device_id,
            json!({
                "equipment": p.equipment,
                "profile": p.profile,
                "parameter_key": p.applied_key,
                "reason": p.reason,
            }),
        ));
    }
    Ok(finished)
}

fn status_word(s: ProvisionStatus) -> &'static str {
    match s {
        ProvisionStatus::Pending => "pending",
        ProvisionStatus::Provisioned => "provisioned",
        ProvisionStatus::NoConfig => "no configuration in ERPNext",
        ProvisionStatus::Unresolved => "unresolved",
        ProvisionStatus::Ambiguous => "ambiguous",
        ProvisionStatus::Deferred => "deferred",
        ProvisionStatus::Fault => "fault",
        ProvisionStatus::NoProfile => "no device profile",
    }
}

fn cached(values: Vec<ParameterValue>, now_ms: u64) -> Vec<(String, CachedValue)> {
    values
        .into_iter()
        .map(|ParameterValue { name, value, kind }| {
            (
                name,
                CachedValue {
                    value,
                    kind,
                    updated_ms: now_ms,
                },
            )
        })
        .collect()
}

fn command_key_of(request: &crate::cwmp::Body) -> Option<&str> {
    use crate::cwmp::Body;
    match request {
        Body::Download(d) => Some(&d.command_key),
        Body::Upload(u) => Some(&u.command_key),
        Body::ScheduleDownload(s) => Some(&s.command_key),
        Body::ChangeDUState(c) => Some(&c.command_key),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cwmp::CwmpVersion;
    use crate::cwmp::rpc::DeviceIdStruct;
    use crate::provision::flow::ReadIdentity;
    use crate::store::{DeviceRecord, SledStore};

    #[test]
    fn a_provisioning_run_finishes_only_the_reprovisions_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path(), 1 << 20).unwrap();
        let id = "1C61B4-Device2-X1";
        let identity = DeviceIdStruct {
            manufacturer: "TP-Link".into(),
            oui: "1C61B4".into(),
            product_class: "Device2".into(),
            serial_number: "X1".into(),
        };
        store
            .put_device(&DeviceRecord::new(
                id.into(),
                identity,
                CwmpVersion::V1_0,
                1,
            ))
            .unwrap();
        let reprovision = || TaskRequest::Action(TaskAction::Reprovision);
        // Started by this session...
        let mut started = store
            .insert_task(id, reprovision(), "reprovision", 1)
            .unwrap();
        started.status = TaskStatus::Sent;
        started.attempts = 1;
        store.put_task(&started).unwrap();
        // ...and asked for while it was running.
        let later = store
            .insert_task(id, reprovision(), "reprovision", 2)
            .unwrap();
        let outcome = Outcome::Provisioned {
            equipment: "EQ-1".into(),
            customer: None,
            identity: ReadIdentity::default(),
            modified: None,
            key: "k".into(),
            pushed: 1,
            pending_reboot: false,
            key_ignored: false,
        };
        let applied = apply_effects(
            &store,
            &Catalog::new(),
            id,
            vec![Effect::Provisioning(outcome)],
            3,
            60_000,
        )
        .unwrap();
        assert_eq!(
            store.task(started.id).unwrap().unwrap().status,
            TaskStatus::Done
        );
        assert_eq!(
            store.task(later.id).unwrap().unwrap().status,
            TaskStatus::Pending
        );
        assert_eq!(
            applied
                .events
                .iter()
                .filter(|e| e.kind == EventKind::TaskDone)
                .count(),
            1
        );
    }
}
