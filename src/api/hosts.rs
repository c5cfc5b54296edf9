//! `GET /api/v1/devices/{id}/hosts`: the mesh topology built from the
//! cached host tables, optionally re-read first.

use std::sync::Arc;

use http::StatusCode;
use serde_json::json;

use super::devices::{CrView, cached_values, effective_profile, load_device, not_discovered};
use super::tasks::{MAX_WAIT_S, task_view, wait_for_task};
use super::{ApiError, ApiResult, Query, json_response, rfc3339};
use crate::app::Acs;
use crate::app::now_ms;
use crate::app::service::poke;
use crate::store::{TaskAction, TaskRequest, TaskStatus};

/// Wait for a refresh when the caller gives none, seconds.
const DEFAULT_REFRESH_WAIT_S: u64 = 30;

pub async fn get(acs: &Arc<Acs>, id: &str, q: &Query) -> ApiResult {
    let refresh = q.flag("refresh", false)?;
    let wait_s = match q.get("wait") {
        Some(_) => q.wait_s(MAX_WAIT_S)?,
        None => DEFAULT_REFRESH_WAIT_S,
    };
    let device = load_device(acs, id)?;
    if device.data_model.is_none() {
        return Err(not_discovered());
    }
    let mut refreshed = serde_json::Value::Null;
    // The session that reads the tables builds the topology anyway: it
    // leaves it here instead of this request building it again.
    let waiting = refresh.then(|| acs.topologies.wait(id));
    if refresh {
        let pending = acs
            .store
            .tasks(id)
            .map_err(ApiError::internal)?
            .into_iter()
            .find(|t| {
                t.request == TaskRequest::Action(TaskAction::CollectHosts)
                    && t.status == TaskStatus::Pending
            });
        let task = match pending {
            Some(t) => t,
            None => {
                let t = acs
                    .store
                    .insert_task(
                        id,
                        TaskRequest::Action(TaskAction::CollectHosts),
                        "collectHosts",
                        now_ms(std::time::SystemTime::now()),
                    )
                    .map_err(ApiError::internal)?;
                acs.store.sync().await.map_err(ApiError::internal)?;
                t
            }
        };
        let cr = CrView::from(poke(acs, &device, true).await);
        let task = wait_for_task(acs, task.id, wait_s).await?;
        refreshed = json!({
            "task": task_view(&task),
            "connection_request": cr,
        });
    }
    // Re-read: the refresh updated the collection time.
    let device = load_device(acs, id)?;
    let fresh = waiting.and_then(|w| w.take(device.hosts_collected_ms));
    let (profile, topology) = match fresh {
        Some(f) => (f.profile, f.topology),
        None => {
            let values = cached_values(acs, id)?;
            let Some((profile, _)) = effective_profile(acs, &device, &values)? else {
                return Err(not_discovered());
            };
            let topology = crate::topology::build(&values, &profile);
            (profile.name, Arc::new(topology))
        }
    };
    let now = now_ms(std::time::SystemTime::now());
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "device_id": device.id,
            "profile": profile,
            "collected_at": device.hosts_collected_ms.map(rfc3339),
            "age_s": device.hosts_collected_ms.map(|t| now.saturating_sub(t) / 1000),
            "nodes": topology.nodes,
            "unplaced": topology.unplaced,
            "totals": topology.totals,
            "refresh": refreshed,
        }),
    ))
}
