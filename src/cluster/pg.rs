//! The cluster on PostgreSQL: leases and heartbeats in the UNLOGGED tables
//! `acs_lease` and `acs_node` (created by the store's schema migration),
//! times from the database's clock (nodes' clocks may disagree), messages
//! over `LISTEN/NOTIFY acs_cluster`.
//!
//! A claim is one conditional upsert: it takes the lease when it is free,
//! expired, this node's, or held by a node whose heartbeat stopped. Two
//! nodes claiming at once are serialised by the row: one wins.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio_postgres::AsyncMessage;
use tracing::{debug, info, warn};

use super::{Claim, Cluster, ClusterError, ClusterMessage, HEARTBEAT, Holder, NODE_STALE, Remote};
use crate::store::StoreError;
use crate::store::pg_conn::{self, Conn, Connector, Pool, Reconnecting};

/// The NOTIFY channel.
const CHANNEL: &str = "acs_cluster";
/// PostgreSQL refuses NOTIFY payloads from 8000 bytes.
const MAX_PAYLOAD: usize = 7900;
/// Messages waiting to be sent, at most (then the newest are dropped).
const OUTBOX: usize = 8192;
/// Messages from other nodes waiting for slow local readers.
const INBOX: usize = 4096;

fn db_error(e: StoreError) -> ClusterError {
    ClusterError::Database(e.to_string())
}

/// Milliseconds as SQL multiplies an interval with (double precision).
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn device_lease(device_id: &str) -> String {
    format!("d:{device_id}")
}

fn job_lease(job: &str) -> String {
    format!("j:{job}")
}

/// What a node sends: its id and the message.
#[derive(serde::Serialize, serde::Deserialize)]
struct Wire {
    n: String,
    #[serde(flatten)]
    m: ClusterMessage,
}

/// [`Cluster`] on PostgreSQL.
pub struct PgCluster {
    node: String,
    /// One connection: claims, lookups, heartbeats and NOTIFY (LISTEN has
    /// a connection of its own).
    pool: Pool,
    outbox: mpsc::Sender<ClusterMessage>,
    inbox: broadcast::Sender<Arc<Remote>>,
}

impl PgCluster {
    /// Joins the cluster on the database at `url` as `node`, reachable by
    /// the other nodes at `url_of_node` (its CWMP listener).
    pub fn connect(
        url: &str,
        node: String,
        url_of_node: String,
    ) -> Result<PgCluster, ClusterError> {
        let pool = Pool::open("acs-cluster", url, 1).map_err(db_error)?;
        // Alive before the first claim: a node without a heartbeat row
        // counts as dead.
        let (n, u, conn) = (node.clone(), url_of_node.clone(), pool.conn());
        pool.run(move |_| async move { heartbeat(&conn, &n, &u).await })
            .map_err(db_error)?;
        let (outbox, out_rx) = mpsc::channel(OUTBOX);
        let (inbox, _) = broadcast::channel(INBOX);
        pool.spawn(heartbeat_loop(pool.conn(), node.clone(), url_of_node));
        pool.spawn(send_loop(pool.conn(), node.clone(), out_rx));
        pool.spawn(listen_loop(pool.connector(), node.clone(), inbox.clone()));
        info!(node = %node, "joined the ACS cluster on PostgreSQL");
        Ok(PgCluster {
            node,
            pool,
            outbox,
            inbox,
        })
    }

    /// Runs `f` with the connection on the cluster's runtime and waits.
    fn run<T, F>(&self, f: impl FnOnce(Arc<Conn>) -> F + Send + 'static) -> Result<T, ClusterError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, tokio_postgres::Error>> + Send + 'static,
    {
        self.pool
            .run(move |c| async move { f(c).await.map_err(|e| pg_conn::pg_error("cluster", e)) })
            .map_err(db_error)
    }

    fn claim(&self, name: String, token: String, ttl: Duration) -> Result<Claim, ClusterError> {
        let node = self.node.clone();
        let (ttl, stale) = (ms(ttl), ms(NODE_STALE));
        self.run(move |c| async move {
            // Twice at most: a lease released between the two statements
            // is simply claimed again.
            for _ in 0..2 {
                let won = c
                    .query_opt(
                        "INSERT INTO acs_lease AS l (name, node, token, expires)
                         VALUES ($1, $2, $3, now() + $4 * interval '1 millisecond')
                         ON CONFLICT (name) DO UPDATE
                         SET node = EXCLUDED.node, token = EXCLUDED.token, expires = EXCLUDED.expires
                         WHERE l.node = EXCLUDED.node OR l.expires < now()
                            OR NOT EXISTS (SELECT 1 FROM acs_node n WHERE n.node = l.node
                                           AND n.seen > now() - $5 * interval '1 millisecond')
                         RETURNING 1",
                        &[&name, &node, &token, &ttl, &stale],
                    )
                    .await?;
                if won.is_some() {
                    return Ok(Claim::Granted);
                }
                let held = c
                    .query_opt(
                        "SELECT node, ceil(extract(epoch FROM expires - now()))::bigint
                         FROM acs_lease WHERE name = $1",
                        &[&name],
                    )
                    .await?;
                if let Some(row) = held {
                    let secs: i64 = row.get(1);
                    return Ok(Claim::Held {
                        node: row.get(0),
                        // At most a heartbeat's staleness when the node
                        // dies; the expiry when it lives.
                        retry_after_s: u64::try_from(secs)
                            .unwrap_or(1)
                            .clamp(1, NODE_STALE.as_secs().max(1) + 1),
                    });
                }
            }
            Ok(Claim::Held {
                node: String::new(),
                retry_after_s: 1,
            })
        })
    }

    /// The other live node holding the lease found by `sql` (by name or
    /// by token).
    fn holder_where(
        &self,
        sql: &'static str,
        value: String,
    ) -> Result<Option<Holder>, ClusterError> {
        let node = self.node.clone();
        let stale = ms(NODE_STALE);
        self.run(move |c| async move {
            let row = c.query_opt(sql, &[&value, &node, &stale]).await?;
            Ok(row.map(|r| Holder {
                node: r.get(0),
                url: r.get(1),
            }))
        })
    }
}

const HOLDER_BY_NAME: &str =
    "SELECT l.node, n.url FROM acs_lease l JOIN acs_node n ON n.node = l.node
     WHERE l.name = $1 AND l.node <> $2 AND l.expires > now()
       AND n.seen > now() - $3 * interval '1 millisecond' LIMIT 1";
const HOLDER_BY_TOKEN: &str =
    "SELECT l.node, n.url FROM acs_lease l JOIN acs_node n ON n.node = l.node
     WHERE l.token = $1 AND l.node <> $2 AND l.expires > now()
       AND n.seen > now() - $3 * interval '1 millisecond' LIMIT 1";

impl Cluster for PgCluster {
    fn node_id(&self) -> &str {
        &self.node
    }

    fn shared(&self) -> bool {
        true
    }

    fn claim_device(
        &self,
        device_id: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<Claim, ClusterError> {
        self.claim(device_lease(device_id), token.to_owned(), ttl)
    }

    fn release_device(&self, device_id: &str, token: &str) {
        // Not waited for: the session's answer does not depend on it, and
        // a claim by this node replaces the lease anyway.
        let (name, token, slot) = (device_lease(device_id), token.to_owned(), self.pool.conn());
        self.pool.spawn(async move {
            let r = match slot.get().await {
                Ok(c) => c
                    .execute(
                        "DELETE FROM acs_lease WHERE name = $1 AND token = $2",
                        &[&name, &token],
                    )
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = r {
                debug!(error = %e, "releasing a session lease failed (it expires)");
            }
        });
    }

    fn holder(&self, device_id: &str) -> Result<Option<Holder>, ClusterError> {
        self.holder_where(HOLDER_BY_NAME, device_lease(device_id))
    }

    fn held_elsewhere(&self, device_ids: &[&str]) -> Result<Vec<String>, ClusterError> {
        if device_ids.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<String> = device_ids.iter().map(|d| device_lease(d)).collect();
        let node = self.node.clone();
        let stale = ms(NODE_STALE);
        self.run(move |c| async move {
            let rows = c
                .query(
                    "SELECT substr(l.name, 3) FROM acs_lease l JOIN acs_node n ON n.node = l.node
                     WHERE l.name = ANY($1) AND l.node <> $2 AND l.expires > now()
                       AND n.seen > now() - $3 * interval '1 millisecond'",
                    &[&names, &node, &stale],
                )
                .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn session_holder(&self, token: &str) -> Result<Option<Holder>, ClusterError> {
        self.holder_where(HOLDER_BY_TOKEN, token.to_owned())
    }

    fn lead(&self, job: &str, ttl: Duration) -> bool {
        match self.claim(job_lease(job), self.node.clone(), ttl) {
            Ok(claim) => claim == Claim::Granted,
            Err(e) => {
                debug!(error = %e, job, "cannot claim a shared job");
                false
            }
        }
    }

    fn broadcast(&self, message: ClusterMessage) {
        if self.outbox.try_send(message).is_err() {
            debug!("cluster outbox full: a message to the other nodes was dropped");
        }
    }

    fn subscribe(&self) -> Option<broadcast::Receiver<Arc<Remote>>> {
        Some(self.inbox.subscribe())
    }

    fn shared_setting(&self, name: &str, candidate: String) -> Result<String, ClusterError> {
        let name = name.to_owned();
        self.run(move |c| async move {
            c.execute(
                "INSERT INTO acs_setting (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&name, &candidate],
            )
            .await?;
            let row = c
                .query_one("SELECT value FROM acs_setting WHERE name = $1", &[&name])
                .await?;
            Ok(row.get(0))
        })
    }

    fn leave(&self) {
        let node = self.node.clone();
        let r = self.run(move |c| async move {
            c.execute("DELETE FROM acs_lease WHERE node = $1", &[&node])
                .await?;
            c.execute("DELETE FROM acs_node WHERE node = $1", &[&node])
                .await?;
            Ok(())
        });
        if let Err(e) = r {
            warn!(error = %e, "leaving the cluster: the leases will expire instead");
        }
    }
}

async fn heartbeat(client: &Reconnecting, node: &str, url: &str) -> Result<(), StoreError> {
    let c = client.get().await?;
    c.execute(
        "INSERT INTO acs_node (node, url, seen) VALUES ($1, $2, now())
         ON CONFLICT (node) DO UPDATE SET seen = now(), url = EXCLUDED.url",
        &[&node, &url],
    )
    .await
    .map_err(|e| pg_conn::pg_error("heartbeat", e))?;
    Ok(())
}

async fn heartbeat_loop(client: Arc<Reconnecting>, node: String, url: String) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut beats: u64 = 0;
    loop {
        tick.tick().await;
        if let Err(e) = heartbeat(&client, &node, &url).await {
            warn!(error = %e, "cluster heartbeat failed");
            continue;
        }
        beats += 1;
        // Now and then, forget long-dead nodes and their leases.
        if beats % 60 == 0 {
            if let Ok(c) = client.get().await {
                let _ = c
                    .batch_execute(
                        "DELETE FROM acs_lease WHERE expires < now() - interval '1 minute';
                         DELETE FROM acs_node WHERE seen < now() - interval '1 hour';",
                    )
                    .await;
            }
        }
    }
}

async fn send_loop(
    client: Arc<Reconnecting>,
    node: String,
    mut rx: mpsc::Receiver<ClusterMessage>,
) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 256).await > 0 {
        let payloads: Vec<String> = batch
            .drain(..)
            .filter_map(|m| {
                let text = serde_json::to_string(&Wire { n: node.clone(), m }).ok()?;
                if text.len() > MAX_PAYLOAD {
                    debug!(
                        bytes = text.len(),
                        "a message too big for NOTIFY was not sent"
                    );
                    return None;
                }
                Some(text)
            })
            .collect();
        let sent = match client.get().await {
            Ok(c) => c
                .execute(
                    "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p",
                    &[&CHANNEL, &payloads],
                )
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = sent {
            debug!(error = %e, count = payloads.len(), "messages to the other nodes lost");
        }
    }
}

async fn listen_loop(
    connector: Arc<Connector>,
    node: String,
    inbox: broadcast::Sender<Arc<Remote>>,
) {
    loop {
        match listen(&connector, &node, &inbox).await {
            Ok(()) => debug!("cluster listener connection closed"),
            Err(e) => debug!(error = %e, "cluster listener failed"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Listens on one connection until it drops.
async fn listen(
    connector: &Connector,
    node: &str,
    inbox: &broadcast::Sender<Arc<Remote>>,
) -> Result<(), StoreError> {
    let (client, mut connection) = connector.connect_raw().await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let driver = tokio::spawn(async move {
        while let Some(m) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            match m {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    debug!(error = %e, "cluster listener connection failed");
                    return;
                }
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(|e| pg_conn::pg_error("listen", e))?;
    while let Some(payload) = rx.recv().await {
        let Ok(wire) = serde_json::from_str::<Wire>(&payload) else {
            debug!("an unreadable cluster message was ignored");
            continue;
        };
        if wire.n == node {
            continue;
        }
        let _ = inbox.send(Arc::new(Remote {
            node: wire.n,
            message: wire.m,
        }));
    }
    driver.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(30);

    /// A database with the store's schema, and a node joining it.
    fn database(name: &str) -> Option<String> {
        let url = crate::store::pg_test::database(name)?;
        crate::store::PgStore::connect(&url).expect("schema");
        Some(url)
    }

    fn join(url: &str, name: &str) -> PgCluster {
        PgCluster::connect(
            url,
            format!("{name}-test"),
            format!("http://{name}.invalid/"),
        )
        .expect("join")
    }

    #[test]
    fn one_session_per_device_across_nodes() {
        let Some(url) = database("acs_cluster_claims") else {
            return;
        };
        let (a, b) = (join(&url, "a"), join(&url, "b"));
        assert_eq!(a.claim_device("D", "k1", TTL).unwrap(), Claim::Granted);
        // A node's own claim replaces its previous one (a new Inform).
        assert_eq!(a.claim_device("D", "k2", TTL).unwrap(), Claim::Granted);
        match b.claim_device("D", "k3", TTL).unwrap() {
            Claim::Held {
                node,
                retry_after_s,
            } => {
                assert_eq!(node, "a-test");
                assert!((1..=6).contains(&retry_after_s), "{retry_after_s}");
            }
            Claim::Granted => panic!("two nodes hold D"),
        }
        // Who holds what, as the other node sees it.
        let holder = b.holder("D").unwrap().expect("a holds D");
        assert_eq!(holder.url, "http://a.invalid/");
        assert_eq!(b.session_holder("k2").unwrap(), Some(holder));
        assert_eq!(b.session_holder("k1").unwrap(), None, "replaced");
        assert_eq!(a.holder("D").unwrap(), None, "not another node");
        assert_eq!(b.held_elsewhere(&["D", "X"]).unwrap(), ["D"]);
        assert!(a.held_elsewhere(&["D"]).unwrap().is_empty());
        // A release under an old key does nothing; the right one frees D.
        a.release_device("D", "k1");
        a.release_device("D", "k2");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while b.claim_device("D", "k3", TTL).unwrap() != Claim::Granted {
            assert!(std::time::Instant::now() < deadline, "D never freed");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(a.session_holder("k3").unwrap().unwrap().node, "b-test");
        // An expired lease is free even while its node lives.
        assert_eq!(
            a.claim_device("E", "e1", Duration::from_millis(1)).unwrap(),
            Claim::Granted
        );
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(b.claim_device("E", "e2", TTL).unwrap(), Claim::Granted);
    }

    #[test]
    fn a_dead_nodes_devices_and_jobs_are_free() {
        let Some(url) = database("acs_cluster_dead") else {
            return;
        };
        let (a, b) = (join(&url, "a"), join(&url, "b"));
        assert_eq!(a.claim_device("D", "k", TTL).unwrap(), Claim::Granted);
        assert!(a.lead("writeback", TTL));
        assert!(!b.lead("writeback", TTL));
        // `kill -9`: the heartbeats stop, the rows stay. Silence beyond
        // NODE_STALE is written directly rather than waited for.
        drop(a);
        crate::store::pg_test::execute(
            "acs_cluster_dead",
            "UPDATE acs_node SET seen = now() - interval '1 minute' WHERE node = 'a-test'",
        );
        assert_eq!(b.holder("D").unwrap(), None);
        assert_eq!(b.claim_device("D", "k2", TTL).unwrap(), Claim::Granted);
        assert!(b.lead("writeback", TTL));
        // A node that leaves frees its leases at once.
        let c = join(&url, "c");
        assert!(!c.lead("writeback", TTL));
        b.leave();
        assert!(c.lead("writeback", TTL));
        assert_eq!(c.claim_device("D", "k3", TTL).unwrap(), Claim::Granted);
    }

    #[test]
    fn messages_reach_the_other_nodes_only_and_settings_are_shared() {
        let Some(url) = database("acs_cluster_messages") else {
            return;
        };
        let (a, b) = (join(&url, "a"), join(&url, "b"));
        let (mut from_a, mut from_b) = (a.subscribe().unwrap(), b.subscribe().unwrap());
        let message = ClusterMessage::TaskQueued {
            device_id: "D".into(),
            task_id: 7,
        };
        // The listener may still be starting: send until one arrives.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let got = rt.block_on(async {
            for _ in 0..50 {
                a.broadcast(message.clone());
                if let Ok(Ok(r)) =
                    tokio::time::timeout(Duration::from_millis(100), from_b.recv()).await
                {
                    return Some(r);
                }
            }
            None
        });
        let got = got.expect("b hears a");
        assert_eq!(got.node, "a-test");
        assert_eq!(got.message, message);
        assert!(from_a.try_recv().is_err(), "a does not hear itself");
        // A payload too big for NOTIFY is dropped, not an error.
        a.broadcast(ClusterMessage::Event {
            kind: "task.done".into(),
            device_id: "D".into(),
            at_ms: 1,
            data: serde_json::json!({ "x": "y".repeat(10_000) }),
        });

        assert_eq!(a.shared_setting("k", "from-a".into()).unwrap(), "from-a");
        assert_eq!(b.shared_setting("k", "from-b".into()).unwrap(), "from-a");
    }
}
