//! Messages from the other nodes on the same store ([`crate::cluster`]):
//! their events join this node's bus (the API's SSE shows every node's),
//! and a task queued through another node for a session held here goes
//! into that session.

use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tracing::{debug, warn};

use super::Acs;
use crate::cluster::ClusterMessage;

/// Runs until the server stops (at once when there are no other nodes).
pub async fn relay(acs: Arc<Acs>, mut stop: watch::Receiver<bool>) {
    let Some(mut rx) = acs.cluster.subscribe() else {
        return;
    };
    loop {
        let remote = tokio::select! {
            r = rx.recv() => r,
            _ = stop.changed() => return,
        };
        let remote = match remote {
            Ok(r) => r,
            Err(RecvError::Lagged(n)) => {
                warn!(missed = n, "messages from other nodes were missed");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        match &remote.message {
            ClusterMessage::Event {
                kind,
                device_id,
                at_ms,
                data,
            } => acs
                .events
                .publish_remote(kind, device_id.clone(), *at_ms, data.clone()),
            ClusterMessage::TaskQueued { device_id, task_id } => {
                if !acs.sessions.has_device(device_id) {
                    continue;
                }
                let task = match acs.store.task(*task_id) {
                    Ok(Some(t)) if t.status == crate::store::TaskStatus::Pending => t,
                    Ok(_) => continue,
                    Err(e) => {
                        warn!(error = %e, task = task_id, "reading a task queued on another node failed");
                        continue;
                    }
                };
                if acs.sessions.offer_task(&task).await {
                    debug!(device = %device_id, task = task_id, from = %remote.node, "task from another node handed to the session here");
                }
            }
        }
    }
}
