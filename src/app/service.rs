//! Device operations shared by the northbound interfaces — the Ops API
//! ([`crate::api`]) and the GenieACS-compatible NBI ([`crate::nbi`]) — so
//! both queue, poke, wait and withdraw exactly the same way: queueing a
//! task (durably, handed to a live session if there is one), sending a
//! connection request, waiting for a task to finish, withdrawing a task
//! not yet sent.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use thiserror::Error;

use crate::app::Acs;
use crate::app::now_ms;
use crate::cluster::ClusterMessage;
use crate::connreq::{CrResult, WAIT_FOR_SESSION_END};
use crate::events::EventKind;
use crate::store::{DeviceRecord, StoreError, StoreResult, Task, TaskRequest, TaskStatus};

/// A STUN binding older than this is not used: the NAT has probably
/// forgotten it (TR-111 keep-alives come every few seconds to minutes).
const STUN_BINDING_MAX_AGE_MS: u64 = 3_600_000;

/// Where a TR-111 UDP connection request would reach the device, and
/// whether it says it is behind NAT: the built-in STUN server's binding
/// for its STUN username (`ManagementServer.STUNUsername`, else its
/// serial number, as TR-111 CPEs do) if fresh, else the
/// `ManagementServer.UDPConnectionRequestAddress` it reported.
fn udp_reach(acs: &Acs, device: &DeviceRecord, now_ms: u64) -> (Option<SocketAddr>, bool) {
    let Some(root) = device.root.as_deref() else {
        return (None, false);
    };
    let prefix = format!("{root}ManagementServer.");
    let params = acs
        .store
        .parameters(&device.id, &prefix)
        .unwrap_or_default();
    let value = |name: &str| -> Option<String> {
        params
            .iter()
            .find(|(n, _)| n.strip_prefix(&prefix) == Some(name))
            .and_then(|(_, p)| p.value.as_ref())
            .map(|v| v.value.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let nat_detected =
        value("NATDetected").is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    let username = value("STUNUsername").unwrap_or_else(|| device.identity.serial_number.clone());
    let bound = acs
        .stun
        .as_ref()
        .and_then(|b| b.get(&username))
        .filter(|b| now_ms.saturating_sub(b.last_seen_ms) <= STUN_BINDING_MAX_AGE_MS)
        .map(|b| b.addr);
    // `host:port` with a name is not resolved: CPEs report addresses.
    let reported = || value("UDPConnectionRequestAddress")?.parse().ok();
    (bound.or_else(reported), nat_detected)
}

/// Whether another node holds the device's session (a database error
/// counts as no: the caller's fallback is the single-node behaviour).
fn held_elsewhere(acs: &Acs, device_id: &str) -> bool {
    acs.cluster.shared()
        && match acs.cluster.holder(device_id) {
            Ok(h) => h.is_some(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell which node holds a session");
                false
            }
        }
}

/// Whether the device is in a session here or on another node.
pub fn in_session_anywhere(acs: &Acs, device_id: &str) -> bool {
    acs.sessions.has_device(device_id) || held_elsewhere(acs, device_id)
}

/// Sends the device a connection request. With `after_session`, first
/// waits (bounded) for the device's open session to end: a session decides
/// at its start what it does, and a CPE ignores a request while in one.
pub async fn poke(acs: &Acs, device: &DeviceRecord, after_session: bool) -> CrResult {
    if after_session {
        let deadline = tokio::time::Instant::now() + WAIT_FOR_SESSION_END;
        while in_session_anywhere(acs, &device.id) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Re-read: the session that just ended may have given the device its
    // connection-request credentials.
    let fresh = acs
        .store
        .device(&device.id)
        .ok()
        .flatten()
        .unwrap_or_else(|| device.clone());
    let now = now_ms(SystemTime::now());
    let (udp, nat_detected) = udp_reach(acs, &fresh, now);
    let target = acs.connreq.target(&fresh, udp, nat_detected);
    acs.connreq.request(&target, now).await
}

/// Queues a checked task for a device and makes it durable; hands it to
/// the device's live session if one is open, otherwise, with
/// `connection_request`, asks the device to connect. Returns the task and
/// the connection request's result when one was sent.
pub async fn queue_task(
    acs: &Acs,
    device: &DeviceRecord,
    request: TaskRequest,
    name: &str,
    connection_request: bool,
) -> StoreResult<(Task, Option<CrResult>)> {
    let now = now_ms(SystemTime::now());
    let task = acs.store.insert_task(&device.id, request, name, now)?;
    acs.store.sync().await?;
    let mut in_session = acs.sessions.offer_task(&task).await;
    if !in_session && held_elsewhere(acs, &device.id) {
        // The node holding the session hands it over.
        acs.cluster.broadcast(ClusterMessage::TaskQueued {
            device_id: device.id.clone(),
            task_id: task.id,
        });
        in_session = true;
    }
    let cr = if connection_request && !in_session {
        Some(poke(acs, device, false).await)
    } else {
        None
    };
    Ok((task, cr))
}

/// Waits up to `wait` for a task to finish; returns its latest state
/// (`None`: the task is gone).
pub async fn wait_for_task(acs: &Acs, task_id: u64, wait: Duration) -> StoreResult<Option<Task>> {
    // Subscribe before looking, so a finish in between is not missed.
    let mut rx = acs.events.subscribe();
    let mut stopping = acs.stopping.clone();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let Some(task) = acs.store.task(task_id)? else {
            return Ok(None);
        };
        if task.status.is_finished() || wait.is_zero() {
            return Ok(Some(task));
        }
        // Another node's events come over the network and may be lost:
        // there, the store is looked at again every second too.
        let recheck = match acs.cluster.shared() {
            true => tokio::time::Instant::now() + Duration::from_secs(1),
            false => deadline,
        };
        loop {
            let event = tokio::select! {
                e = rx.recv() => e,
                _ = tokio::time::sleep_until(deadline) => return acs.store.task(task_id),
                _ = tokio::time::sleep_until(recheck), if recheck < deadline => break,
                _ = stopping.changed() => return acs.store.task(task_id),
            };
            match event {
                Ok(e) if e.kind == EventKind::TaskDone && e.data["task_id"] == task_id => break,
                Ok(_) => {}
                // Missed events: look at the store again.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    return acs.store.task(task_id);
                }
            }
        }
    }
}

/// Why a task could not be withdrawn.
#[derive(Debug, Error)]
pub enum WithdrawError {
    #[error("task {0} is already finished")]
    Finished(u64),
    #[error("task {0} has been sent to the device and cannot be withdrawn")]
    Sent(u64),
    #[error("task {0} is being sent to the device and cannot be withdrawn")]
    InSession(u64),
    #[error("task {0} was sent to the device meanwhile")]
    SentMeanwhile(u64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Withdraws a task not yet sent (marks it cancelled, durably, and
/// announces it); returns it as it now is.
pub async fn withdraw_task(acs: &Acs, task: &Task) -> Result<Task, WithdrawError> {
    let id = task.id;
    match task.status {
        TaskStatus::Pending => {}
        s if s.is_finished() => return Err(WithdrawError::Finished(id)),
        _ => return Err(WithdrawError::Sent(id)),
    }
    // A live session holding it in its queue must not send it; one on
    // another node may be about to, and cannot be asked in time.
    if !acs.sessions.withdraw_task(task).await || held_elsewhere(acs, &task.device_id) {
        return Err(WithdrawError::InSession(id));
    }
    // Re-read: the session may have finished it before letting go.
    let mut task = match acs.store.task(id)? {
        Some(t) if t.status == TaskStatus::Pending => t,
        _ => return Err(WithdrawError::SentMeanwhile(id)),
    };
    task.status = TaskStatus::Cancelled;
    task.updated_ms = now_ms(SystemTime::now());
    acs.store.put_task(&task)?;
    acs.store.sync().await?;
    acs.publish(
        vec![crate::app::apply::task_done_event(&task)],
        task.updated_ms,
    );
    Ok(task)
}
