//! Applying what a session decided to the store.

use std::collections::HashMap;

use crate::cwmp::rpc::ParameterInfo;
use crate::cwmp::{ParameterValue, ValueType};
use crate::session::{Effect, InformOutcome};
use crate::store::{NewFault, Store, StoreResult, StoredParam, TaskStatus};

/// Finished tasks kept per device for Ops to look at.
const FINISHED_TASKS_KEPT: usize = 50;

/// Writes an accepted Inform: forget on bootstrap, then parameters, then the
/// device record, so the record (what the API lists) is written last.
pub fn apply_inform(store: &dyn Store, outcome: &InformOutcome) -> StoreResult<()> {
    let id = &outcome.device.id;
    if outcome.bootstrap {
        store.clear_parameters(id)?;
    }
    merge_parameters(store, id, &outcome.parameters)?;
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
                let params: Vec<(String, StoredParam)> = values
                    .into_iter()
                    .map(|ParameterValue { name, value, kind }| {
                        (
                            name,
                            StoredParam {
                                value,
                                kind,
                                writable: None,
                                updated_ms: now_ms,
                            },
                        )
                    })
                    .collect();
                merge_parameters(store, device_id, &params)?;
            }
            Effect::ParameterInfo(infos) => merge_writability(store, device_id, &infos, now_ms)?,
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

/// Writes values, keeping writability already known for each parameter.
fn merge_parameters(
    store: &dyn Store,
    device_id: &str,
    params: &[(String, StoredParam)],
) -> StoreResult<()> {
    if params.is_empty() {
        return Ok(());
    }
    let known: HashMap<String, StoredParam> = if params.iter().all(|(_, p)| p.writable.is_some()) {
        HashMap::new()
    } else {
        let prefix = common_prefix(params.iter().map(|(n, _)| n.as_str()));
        store.parameters(device_id, prefix)?.into_iter().collect()
    };
    let merged: Vec<(String, StoredParam)> = params
        .iter()
        .map(|(name, p)| {
            let mut p = p.clone();
            if p.writable.is_none() {
                p.writable = known.get(name).and_then(|k| k.writable);
            }
            (name.clone(), p)
        })
        .collect();
    store.put_parameters(device_id, &merged)
}

/// Records writability from GetParameterNames, keeping cached values.
fn merge_writability(
    store: &dyn Store,
    device_id: &str,
    infos: &[ParameterInfo],
    now_ms: u64,
) -> StoreResult<()> {
    if infos.is_empty() {
        return Ok(());
    }
    let prefix = common_prefix(infos.iter().map(|i| i.name.as_str()));
    let known: HashMap<String, StoredParam> =
        store.parameters(device_id, prefix)?.into_iter().collect();
    let merged: Vec<(String, StoredParam)> = infos
        .iter()
        .map(|i| {
            let mut p = known.get(&i.name).cloned().unwrap_or(StoredParam {
                value: String::new(),
                kind: ValueType::String,
                writable: None,
                updated_ms: now_ms,
            });
            p.writable = Some(i.writable);
            (i.name.clone(), p)
        })
        .collect();
    store.put_parameters(device_id, &merged)
}

/// Longest common prefix of the names, cut back to a whole path segment.
fn common_prefix<'a>(mut names: impl Iterator<Item = &'a str>) -> &'a str {
    let Some(first) = names.next() else {
        return "";
    };
    let mut len = first.len();
    for n in names {
        len = first
            .bytes()
            .zip(n.bytes())
            .take(len)
            .take_while(|(a, b)| a == b)
            .count();
    }
    let cut = first[..len].rfind('.').map_or(0, |i| i + 1);
    &first[..cut]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefix_stops_at_a_segment() {
        assert_eq!(
            common_prefix(["Device.WiFi.SSID.1.SSID", "Device.WiFi.SSID.10.SSID"].into_iter()),
            "Device.WiFi.SSID."
        );
        assert_eq!(
            common_prefix(["Device.A", "InternetGatewayDevice.A"].into_iter()),
            ""
        );
        assert_eq!(common_prefix(["Device.X.Y"].into_iter()), "Device.X.");
        assert_eq!(common_prefix(std::iter::empty()), "");
    }
}
