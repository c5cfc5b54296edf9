//! Applying what a session decided to the store.

use crate::cwmp::ParameterValue;
use crate::session::{Effect, InformOutcome};
use crate::store::{CachedValue, NewFault, Store, StoreResult, TaskStatus};

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
