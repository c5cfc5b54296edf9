//! Applying what a session decided to the store.

use crate::cwmp::ParameterValue;
use crate::provision::flow::Outcome;
use crate::provision::policy;
use crate::session::{Effect, InformOutcome};
use crate::store::{CachedValue, NewFault, Store, StoreResult, TaskStatus, Writeback};

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

/// Applies a session's effects. Returns whether anything was written (and
/// so needs a sync before the reply).
pub fn apply_effects(
    store: &dyn Store,
    device_id: &str,
    effects: Vec<Effect>,
    now_ms: u64,
    retry_ms: u64,
) -> StoreResult<bool> {
    let wrote = !effects.is_empty();
    let mut prune = false;
    for effect in effects {
        match effect {
            Effect::Task(task) => {
                prune |= task.status.is_finished();
                store.put_task(&task)?;
            }
            Effect::ParameterValues(values) => {
                let values: Vec<(String, CachedValue)> = values
                    .into_iter()
                    .map(|ParameterValue { name, value, kind }| {
                        let updated_ms = now_ms;
                        (
                            name,
                            CachedValue {
                                value,
                                kind,
                                updated_ms,
                            },
                        )
                    })
                    .collect();
                store.put_values(device_id, &values)?;
            }
            Effect::ParameterInfo(infos) => {
                let names: Vec<(String, bool)> =
                    infos.into_iter().map(|i| (i.name, i.writable)).collect();
                store.put_writability(device_id, &names)?;
            }
            Effect::Provisioning(outcome) => {
                apply_provisioning(store, device_id, &outcome, now_ms, retry_ms)?
            }
            Effect::Completion { command_key, fault } => {
                for mut task in store.tasks(device_id)? {
                    if task.status != TaskStatus::AwaitingCompletion
                        || command_key_of(&task.request) != Some(command_key.as_str())
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
                    store.put_task(&task)?;
                }
            }
            Effect::Fault {
                source,
                code,
                message,
                rpc,
                task_id,
            } => {
                store.record_fault(NewFault {
                    device_id: device_id.to_owned(),
                    at_ms: now_ms,
                    source,
                    code,
                    message,
                    rpc,
                    task_id,
                })?;
            }
        }
    }
    if prune {
        store.prune_finished_tasks(device_id, FINISHED_TASKS_KEPT)?;
    }
    Ok(wrote)
}

/// Records a provisioning outcome in the device record, queues the ERPNext
/// write-back it calls for, and lists its fault for Ops.
fn apply_provisioning(
    store: &dyn Store,
    device_id: &str,
    outcome: &Outcome,
    now_ms: u64,
    retry_ms: u64,
) -> StoreResult<()> {
    let Some(mut device) = store.device(device_id)? else {
        return Ok(());
    };
    let c = policy::record(&mut device.provisioning, outcome, now_ms, retry_ms);
    tracing::info!(device = %device_id, status = ?device.provisioning.status, equipment = device.provisioning.equipment.as_deref().unwrap_or("-"), "provisioning");
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
        store.record_fault(NewFault {
            device_id: device_id.to_owned(),
            at_ms: now_ms,
            source: "provisioning",
            code,
            message,
            rpc: None,
            task_id: None,
        })?;
    }
    store.put_device(&device)
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
