//! The application: the state every request shares ([`Acs`]) and the
//! services around the protocol core that the network edge
//! ([`crate::server`]), the Ops API ([`crate::api`]) and the NBI
//! ([`crate::nbi`]) call: applying a session's effects to the store
//! ([`apply`]), the live session table ([`sessions`]), provisioning and the
//! ERPNext write-back loop ([`provisioning`]), tasks and connection
//! requests on demand ([`service`]). No listener and no HTTP here.

pub mod apply;
pub mod campaigns;
pub mod handoff;
pub mod housekeeping;
pub mod provisioning;
pub mod relay;
pub mod service;
pub mod sessions;
pub mod telemetry;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::cluster::{Cluster, ClusterMessage};
use crate::config::Config;
use crate::connreq::ConnectionRequester;
use crate::events::webhook::WebhookStats;
use crate::events::{EventBus, NewEvent};
use crate::metrics::Metrics;
use crate::session::SessionLimits;
use crate::store::Store;
use provisioning::Provisioning;
use sessions::SessionTable;

/// Unix milliseconds of a point in time (0 before the epoch).
pub fn now_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Everything request handlers share.
pub struct Acs {
    pub config: Config,
    pub store: Arc<dyn Store>,
    /// The other nodes on the same store, if any.
    pub cluster: Arc<dyn Cluster>,
    /// Discovered data models (shared per model and firmware).
    pub catalog: crate::catalog::Catalog,
    pub sessions: SessionTable,
    pub limits: SessionLimits,
    pub provisioning: Arc<Provisioning>,
    pub metrics: Metrics,
    pub events: EventBus,
    pub connreq: ConnectionRequester,
    pub webhook: Arc<WebhookStats>,
    /// The built-in STUN server's bindings (TR-111), when it runs.
    pub stun: Option<Arc<crate::stun::server::StunBindings>>,
    /// Turns true at shutdown (long-lived API streams end on it).
    pub stopping: watch::Receiver<bool>,
    /// Topologies built after a host-table read that an API request waits
    /// for.
    pub topologies: Arc<handoff::TopologyHandoff>,
}

impl Acs {
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        cluster: Arc<dyn Cluster>,
        provisioning: Arc<Provisioning>,
        connreq: ConnectionRequester,
        stopping: watch::Receiver<bool>,
    ) -> Acs {
        Acs {
            metrics: Metrics::default(),
            events: EventBus::new(),
            connreq,
            webhook: Arc::new(WebhookStats::default()),
            stun: None,
            stopping,
            topologies: Arc::default(),
            provisioning,
            catalog: crate::catalog::Catalog::new(),
            sessions: SessionTable::new(config.max_sessions),
            limits: SessionLimits {
                max_rpcs: config.max_rpcs_per_session,
                max_attempts: config.max_task_attempts,
            },
            config,
            store,
            cluster,
        }
    }

    /// Publishes events (durable by now) here and to the other nodes.
    pub fn publish(&self, events: Vec<NewEvent>, now_ms: u64) {
        if self.cluster.shared() {
            for e in &events {
                self.cluster.broadcast(ClusterMessage::Event {
                    kind: e.kind.as_str().to_owned(),
                    device_id: e.device_id.clone(),
                    at_ms: now_ms,
                    data: e.data.clone(),
                });
            }
        }
        self.events.publish(events, now_ms);
    }

    /// The session timeout: the configured one, or longer if the CPE
    /// announced a longer SessionTimeout (capped at ten minutes).
    pub fn session_timeout_ms(&self, cpe_announced_s: Option<u32>) -> u64 {
        let configured = self.config.session_timeout.as_millis() as u64;
        let cpe = u64::from(cpe_announced_s.unwrap_or(0)).min(600) * 1000;
        configured.max(cpe)
    }

    /// A device is online when it informed within two periodic intervals
    /// (the one the ACS sets, 300 s unless configured) plus a minute.
    pub fn online_window_ms(&self) -> u64 {
        let periodic = u64::from(self.config.provision_periodic_interval_s.unwrap_or(300));
        (2 * periodic + 60) * 1000
    }
}

/// An [`Acs`] over a sled store in `dir`, with the default configuration
/// changed by `edit`, for unit tests of the application services.
#[cfg(test)]
pub(crate) fn test_acs(
    dir: &std::path::Path,
    edit: impl FnOnce(&mut crate::config::Config),
) -> (Acs, Arc<dyn crate::store::Store>) {
    let (mut config, _) = crate::config::load(None, &|_| None).unwrap();
    config.data_dir = dir.to_path_buf();
    edit(&mut config);
    let store: Arc<dyn crate::store::Store> =
        Arc::new(crate::store::SledStore::open(&dir.join("db"), 1 << 20).unwrap());
    let cluster: Arc<dyn crate::cluster::Cluster> = Arc::new(crate::cluster::Solo::new());
    let provisioning =
        Arc::new(provisioning::Provisioning::new(&config, cluster.as_ref()).unwrap());
    let connreq =
        crate::connreq::ConnectionRequester::new(config.connection_request.clone(), None).unwrap();
    // The stop signal's sender goes: nothing in a unit test waits on it.
    let (_stop, stopping) = tokio::sync::watch::channel(false);
    let acs = Acs::new(
        config,
        store.clone(),
        cluster,
        provisioning,
        connreq,
        stopping,
    );
    (acs, store)
}
