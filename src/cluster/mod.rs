//! Several ACS nodes on one database: who holds a device's session, which
//! node drains a shared job (the ERPNext write-back outbox), and the
//! messages nodes pass each other (events for the API and SSE, tasks
//! queued for a session another node holds).
//!
//! With an embedded store there is one node: [`Solo`] grants everything
//! and passes nothing. On PostgreSQL, [`pg::PgCluster`] keeps leases and
//! heartbeats in tables and passes messages with LISTEN/NOTIFY.
//!
//! The rules, whatever the backend:
//! - a device is in one session at a time across all nodes: a node claims
//!   the device's lease when its session starts and releases it when the
//!   session ends; another node's lease stands while it is unexpired
//!   ([`SESSION_LEASE`], renewed as the session goes on) *and* its node
//!   is alive (a heartbeat every [`HEARTBEAT`]; silent for [`NODE_STALE`]
//!   means dead, e.g. `kill -9`), so a dead node's devices are free again
//!   within seconds;
//! - a session's exchanges reach the node holding it: another node that
//!   receives one (a CPE opening a new connection mid-session through the
//!   balancer) finds the holder by the session cookie and forwards it;
//! - a shared job runs on one node at a time, under a lease of the same
//!   kind ([`Cluster::lead`]).

pub mod pg;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::broadcast;

/// How often a node says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// A node silent this long is dead: its leases no longer count.
pub const NODE_STALE: Duration = Duration::from_secs(5);
/// How long a device's session lease lasts unless renewed. It guards the
/// ACS's side of an exchange (an ERPNext wait is bounded at a few
/// seconds), not the CPE's silences: a CPE sends no Inform while it is in
/// a session, so another node's Inform for the device after this long
/// means the CPE gave its session up, and that node may start a new one.
pub const SESSION_LEASE: Duration = Duration::from_secs(15);
/// A session renews its lease at its next exchange once this much of it
/// is used.
pub const SESSION_LEASE_RENEW: Duration = Duration::from_secs(5);

/// Why the cluster could not answer (the database is unreachable).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClusterError {
    #[error("cluster coordination: {0}")]
    Database(String),
}

/// The answer to a claim on a device's session.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// This node holds it now.
    Granted,
    /// Another live node holds it, for at most this long.
    Held { node: String, retry_after_s: u64 },
}

/// Another live node, and where its CWMP listener is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub node: String,
    pub url: String,
}

/// What nodes tell each other.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "m", rename_all = "snake_case")]
pub enum ClusterMessage {
    /// An event a node published (for the others' API and SSE; webhooks
    /// are sent once, by the node where it happened).
    Event {
        kind: String,
        device_id: String,
        at_ms: u64,
        data: serde_json::Value,
    },
    /// A task queued through this node for a device in session elsewhere:
    /// the node holding the session hands it to the session.
    TaskQueued { device_id: String, task_id: u64 },
}

/// A message from another node.
#[derive(Clone, Debug, PartialEq)]
pub struct Remote {
    pub node: String,
    pub message: ClusterMessage,
}

/// Coordination between the nodes sharing a store.
pub trait Cluster: Send + Sync {
    /// This node's id (unique per run of the process).
    fn node_id(&self) -> &str;

    /// Whether other nodes may share the store (false: [`Solo`]).
    fn shared(&self) -> bool;

    /// Claims the device's session for this node, under `token` (the
    /// session key), for `ttl`; a claim by this node replaces its own.
    fn claim_device(
        &self,
        device_id: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<Claim, ClusterError>;

    /// Gives the device's session up (only if still under `token`).
    fn release_device(&self, device_id: &str, token: &str);

    /// The other live node holding the device's session, if any.
    fn holder(&self, device_id: &str) -> Result<Option<Holder>, ClusterError>;

    /// Of these devices, those another live node holds a session for.
    fn held_elsewhere(&self, device_ids: &[&str]) -> Result<Vec<String>, ClusterError>;

    /// The other live node holding the session with this key, if any.
    fn session_holder(&self, token: &str) -> Result<Option<Holder>, ClusterError>;

    /// Whether this node runs the shared job `job` now (claimed or
    /// renewed for `ttl`; call again before it runs out).
    fn lead(&self, job: &str, ttl: Duration) -> bool;

    /// Tells the other nodes (best effort, never blocks).
    fn broadcast(&self, message: ClusterMessage);

    /// Messages from the other nodes (`None`: there are none).
    fn subscribe(&self) -> Option<broadcast::Receiver<Arc<Remote>>>;

    /// A setting every node must share (e.g. the provisioning key): the
    /// stored one, else `candidate`, stored for the others.
    fn shared_setting(&self, name: &str, candidate: String) -> Result<String, ClusterError>;

    /// Leaves the cluster at shutdown: this node's leases are freed.
    fn leave(&self);
}

/// One node alone on its (embedded) store.
pub struct Solo {
    node: String,
}

impl Solo {
    pub fn new() -> Solo {
        Solo {
            node: node_id(None),
        }
    }
}

impl Default for Solo {
    fn default() -> Self {
        Solo::new()
    }
}

impl Cluster for Solo {
    fn node_id(&self) -> &str {
        &self.node
    }

    fn shared(&self) -> bool {
        false
    }

    fn claim_device(&self, _: &str, _: &str, _: Duration) -> Result<Claim, ClusterError> {
        // The session table already keeps one session per device.
        Ok(Claim::Granted)
    }

    fn release_device(&self, _: &str, _: &str) {}

    fn holder(&self, _: &str) -> Result<Option<Holder>, ClusterError> {
        Ok(None)
    }

    fn held_elsewhere(&self, _: &[&str]) -> Result<Vec<String>, ClusterError> {
        Ok(Vec::new())
    }

    fn session_holder(&self, _: &str) -> Result<Option<Holder>, ClusterError> {
        Ok(None)
    }

    fn lead(&self, _: &str, _: Duration) -> bool {
        true
    }

    fn broadcast(&self, _: ClusterMessage) {}

    fn subscribe(&self) -> Option<broadcast::Receiver<Arc<Remote>>> {
        None
    }

    fn shared_setting(&self, _: &str, candidate: String) -> Result<String, ClusterError> {
        Ok(candidate)
    }

    fn leave(&self) {}
}

/// A node id: the configured name, else the host's name, with the process
/// id and a random suffix (a restarted node is a new node: the old one's
/// leases are a dead node's).
pub fn node_id(configured: Option<&str>) -> String {
    use ring::rand::SecureRandom;
    let base = configured
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .or_else(host_name)
        .unwrap_or_else(|| "acs".to_owned());
    let mut b = [0u8; 3];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    format!("{base}-{}-{}", std::process::id(), crate::digest::hex(&b))
}

/// This host's name (`/etc/hostname`; a container's is its id or the
/// name compose gives it), if it has one.
pub fn host_name() -> Option<String> {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

/// The cluster a configuration names: PostgreSQL's when the store is
/// there, else this node alone.
pub fn open_configured(
    config: &crate::config::Config,
    cwmp_url: &str,
) -> Result<Arc<dyn Cluster>, ClusterError> {
    Ok(match &config.store_url {
        Some(url) => Arc::new(pg::PgCluster::connect(
            url.expose(),
            node_id(config.node_name.as_deref()),
            cwmp_url.to_owned(),
        )?),
        None => Arc::new(Solo::new()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_json() {
        for m in [
            ClusterMessage::Event {
                kind: "task.done".into(),
                device_id: "D".into(),
                at_ms: 5,
                data: serde_json::json!({"task_id": 3}),
            },
            ClusterMessage::TaskQueued {
                device_id: "D".into(),
                task_id: 9,
            },
        ] {
            let text = serde_json::to_string(&m).unwrap();
            assert_eq!(serde_json::from_str::<ClusterMessage>(&text).unwrap(), m);
        }
    }

    #[test]
    fn node_ids_differ_per_run() {
        let (a, b) = (node_id(Some("acs1")), node_id(Some("acs1")));
        assert!(a.starts_with("acs1-"), "{a}");
        assert_ne!(a, b);
    }
}
