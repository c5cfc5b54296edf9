//! The network edge: listeners, TLS, CPE authentication, limits, and the
//! glue from HTTP requests to the codec and the application's services
//! ([`crate::app`]).

pub mod auth;
mod body;
pub mod conn;
pub mod cwmp;
pub mod files;
mod forward;
mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use thiserror::Error;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::api;
use crate::app::Acs;
use crate::app::provisioning::{self, Provisioning};
use crate::config::{Config, CpeAuthMode};
use crate::connreq::ConnectionRequester;
use crate::events::webhook;
use crate::store::StoreError;
use auth::CpeAuthenticator;
use conn::{ConnLimits, Handler, accept_loop};
use cwmp::ConnState;

/// Checks that the TLS files load (for `check-config`).
pub fn check_tls(files: &crate::config::TlsFiles) -> Result<(), String> {
    tls::acceptor(files).map(|_| ())
}

/// Why the server could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StartError {
    #[error("data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen for {what} on {addr}: {reason}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        reason: String,
    },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("API token: {0}")]
    Token(String),
    #[error("provisioning: {0}")]
    Provisioning(String),
    #[error("connection requests: {0}")]
    ConnectionRequest(String),
    #[error("webhook: {0}")]
    Webhook(String),
    #[error("{0}")]
    Cluster(String),
}

#[derive(Clone)]
struct CwmpHandler(Arc<Acs>, Arc<CpeAuthenticator>, Arc<forward::Forwarder>);

impl Handler for CwmpHandler {
    type Conn = ConnState;
    type Body = files::CwmpBody;

    fn on_connect(&self, remote: SocketAddr) -> Arc<ConnState> {
        Arc::new(ConnState::new(remote))
    }

    fn call(
        &self,
        conn: Arc<ConnState>,
        req: Request<Incoming>,
    ) -> impl Future<Output = Response<files::CwmpBody>> + Send + 'static {
        let (acs, auth, forwarder) = (self.0.clone(), self.1.clone(), self.2.clone());
        async move {
            // Devices fetch firmware from the address they inform to.
            if files::is_file_request(&req) {
                return files::serve(acs, req).await;
            }
            cwmp::handle(acs, auth, forwarder, conn, req)
                .await
                .map(files::CwmpBody::Full)
        }
    }
}

#[derive(Clone)]
struct ApiHandler(Arc<Acs>, Arc<api::Access>);

impl Handler for ApiHandler {
    type Conn = SocketAddr;
    type Body = api::ApiBody;

    fn on_connect(&self, remote: SocketAddr) -> Arc<SocketAddr> {
        Arc::new(remote)
    }

    fn call(
        &self,
        conn: Arc<SocketAddr>,
        req: Request<Incoming>,
    ) -> impl Future<Output = Response<api::ApiBody>> + Send + 'static {
        api::handle(self.0.clone(), self.1.clone(), conn.ip(), req)
    }
}

#[derive(Clone)]
struct NbiHandler(Arc<crate::nbi::Nbi>);

impl Handler for NbiHandler {
    type Conn = SocketAddr;
    type Body = Full<Bytes>;

    fn on_connect(&self, remote: SocketAddr) -> Arc<SocketAddr> {
        Arc::new(remote)
    }

    fn call(
        &self,
        conn: Arc<SocketAddr>,
        req: Request<Incoming>,
    ) -> impl Future<Output = Response<Full<Bytes>>> + Send + 'static {
        crate::nbi::handle(self.0.clone(), *conn, req)
    }
}

/// Addresses the server actually listens on (useful with port 0).
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    pub cwmp: SocketAddr,
    pub api: SocketAddr,
    /// The GenieACS-compatible NBI's address, when `nbi_listen` is set.
    pub nbi: Option<SocketAddr>,
    /// The STUN server's UDP address, when `stun_listen` is set.
    pub stun: Option<SocketAddr>,
}

/// Runs the ACS until `shutdown` completes, then drains in-flight
/// exchanges (up to the grace period) and flushes the store.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
    on_ready: impl FnOnce(Bound),
) -> Result<(), StartError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| StartError::DataDir {
        path: config.data_dir.display().to_string(),
        reason: e.to_string(),
    })?;
    let tls = match &config.tls {
        Some(files) => Some(tls::acceptor(files).map_err(StartError::Tls)?),
        None => None,
    };
    let api_tls = match &config.api_tls {
        Some(files) => Some(
            tls::acceptor(files).map_err(|e| StartError::Tls(format!("the API listener: {e}")))?,
        ),
        None => None,
    };
    let tokens = Arc::new(api::load_or_create_tokens(&config).map_err(StartError::Token)?);
    // sled by default (measured faster here, BENCHMARKS.md); redb's
    // `<data_dir>/store.redb` is migrated from sled's `<data_dir>/db`.
    let store = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || crate::store::open_configured(&config))
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))??
    };
    if config.store_url.is_some() {
        info!("store: PostgreSQL (ACS_STORE_URL)");
    }
    if config.cpe_auth == CpeAuthMode::None {
        warn!("CPE authentication is off (ACS_CPE_AUTH=none): any client can act as a CPE");
    }

    let bind = |what, addr| async move {
        TcpListener::bind(addr).await.map_err(|e| StartError::Bind {
            what,
            addr,
            reason: e.to_string(),
        })
    };
    let cwmp_listener = bind("CWMP", config.cwmp_listen).await?;
    let api_listener = bind("the API", config.api_listen).await?;
    let nbi_listener = match config.nbi_listen {
        None => None,
        Some(addr) => Some(bind("the NBI", addr).await?),
    };
    let stun_socket = match config.stun_listen {
        None => None,
        Some(addr) => Some(Arc::new(UdpSocket::bind(addr).await.map_err(|e| {
            StartError::Bind {
                what: "STUN (UDP)",
                addr,
                reason: e.to_string(),
            }
        })?)),
    };
    let bound = Bound {
        cwmp: cwmp_listener.local_addr().unwrap_or(config.cwmp_listen),
        api: api_listener.local_addr().unwrap_or(config.api_listen),
        nbi: nbi_listener
            .as_ref()
            .zip(config.nbi_listen)
            .map(|(l, configured)| l.local_addr().unwrap_or(configured)),
        stun: stun_socket
            .as_ref()
            .zip(config.stun_listen)
            .map(|(s, configured)| s.local_addr().unwrap_or(configured)),
    };
    if let Some(addr) = bound.stun {
        info!(addr = %addr, "STUN server ready at udp://{addr}/");
    }
    // Before the CWMP and API lines: whoever waits for those (the tests)
    // has then seen this one too.
    if let Some(addr) = bound.nbi {
        info!(addr = %addr, "NBI listener ready at http://{addr}/");
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    info!(addr = %bound.cwmp, "CWMP listener ready at {scheme}://{}/", bound.cwmp);
    let api_scheme = if api_tls.is_some() { "https" } else { "http" };
    info!(addr = %bound.api, "API listener ready at {api_scheme}://{}/", bound.api);

    let node_url = config
        .node_url
        .clone()
        .unwrap_or_else(|| default_node_url(bound.cwmp, tls.is_some()));
    let cluster = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || crate::cluster::open_configured(&config, &node_url))
            .await
            .map_err(|e| StartError::Cluster(e.to_string()))?
            .map_err(|e| StartError::Cluster(e.to_string()))?
    };
    let provisioning = {
        let (config, cluster) = (config.clone(), cluster.clone());
        tokio::task::spawn_blocking(move || Provisioning::new(&config, cluster.as_ref()))
            .await
            .map_err(|e| StartError::Provisioning(e.to_string()))?
            .map(Arc::new)
            .map_err(StartError::Provisioning)?
    };
    if provisioning.erp.is_none() {
        warn!(
            "ERPNEXT_URL is not set: devices get the ACS's own settings but no WiFi/SIP configuration from ERPNext"
        );
    }

    let limits = ConnLimits {
        max_connections: config.max_connections,
        header_read_timeout: config.header_read_timeout,
        idle_timeout: config.idle_timeout,
    };
    let api_limits = ConnLimits {
        max_connections: 1024,
        ..limits
    };
    let grace = config.shutdown_grace;
    let (stop_tx, stop_rx) = watch::channel(false);
    let connreq = ConnectionRequester::new(config.connection_request.clone(), stun_socket.clone())
        .map_err(StartError::ConnectionRequest)?;
    let mut acs = Acs::new(
        config,
        store.clone(),
        cluster.clone(),
        provisioning.clone(),
        connreq,
        stop_rx.clone(),
    );
    let stun_task = stun_socket.map(|socket| {
        let bindings = Arc::new(crate::stun::server::StunBindings::new(
            crate::stun::server::DEFAULT_MAX_BINDINGS,
        ));
        acs.stun = Some(bindings.clone());
        tokio::spawn(crate::stun::server::serve(
            socket,
            bindings,
            stop_rx.clone(),
        ))
    });
    let acs = Arc::new(acs);
    let webhook_task = match &acs.config.webhook {
        None => None,
        Some(w) => {
            let url = reqwest::Url::parse(&w.url)
                .map_err(|_| StartError::Webhook("webhook_url is not a URL".into()))?;
            Some(
                webhook::spawn(
                    webhook::WebhookConfig {
                        url,
                        secret: w.secret.clone(),
                        timeout: Duration::from_secs(10),
                    },
                    &acs.events,
                    acs.webhook.clone(),
                    stop_rx.clone(),
                )
                .map_err(StartError::Webhook)?,
            )
        }
    };
    let (drain_tx, mut drain_rx) = mpsc::channel::<()>(1);

    let cwmp_task = tokio::spawn(accept_loop(
        cwmp_listener,
        tls,
        CwmpHandler(
            acs.clone(),
            Arc::new(CpeAuthenticator::new(&acs.config)),
            Arc::new(
                forward::Forwarder::new(acs.config.body_read_timeout + acs.config.session_timeout)
                    .map_err(StartError::Cluster)?,
            ),
        ),
        limits,
        stop_rx.clone(),
        drain_tx.clone(),
    ));
    let nbi_task = nbi_listener.map(|listener| {
        let nbi = crate::nbi::Nbi {
            acs: acs.clone(),
            tokens: tokens.clone(),
            allow: acs.config.nbi_allow.clone(),
        };
        tokio::spawn(accept_loop(
            listener,
            None,
            NbiHandler(Arc::new(nbi)),
            api_limits,
            stop_rx.clone(),
            drain_tx.clone(),
        ))
    });
    let secure_cookie = api_tls.is_some();
    let api_task = tokio::spawn(accept_loop(
        api_listener,
        api_tls,
        ApiHandler(
            acs.clone(),
            Arc::new(api::Access::new(tokens, secure_cookie)),
        ),
        api_limits,
        stop_rx.clone(),
        drain_tx.clone(),
    ));
    drop(drain_tx);
    let writebacks = tokio::spawn(provisioning::writeback_loop(
        store.clone(),
        provisioning,
        cluster.clone(),
        stop_rx.clone(),
    ));
    let relay = tokio::spawn(crate::app::relay::relay(acs.clone(), stop_rx.clone()));
    let housekeeping = tokio::spawn(crate::app::housekeeping::housekeeping(
        acs.clone(),
        stop_rx.clone(),
    ));
    let silence = tokio::spawn(crate::app::housekeeping::silence_watch(
        acs.clone(),
        stop_rx.clone(),
    ));
    let campaigns = tokio::spawn(crate::app::campaigns::run(acs.clone(), stop_rx.clone()));
    let reaper = tokio::spawn(reap_sessions(acs.clone(), stop_rx));
    on_ready(bound);

    shutdown.await;
    info!("shutting down: finishing in-flight exchanges");
    let _ = stop_tx.send(true);
    let _ = cwmp_task.await;
    let _ = api_task.await;
    if let Some(t) = nbi_task {
        let _ = t.await;
    }
    let _ = reaper.await;
    let _ = writebacks.await;
    let _ = relay.await;
    let _ = housekeeping.await;
    let _ = silence.await;
    let _ = campaigns.await;
    if let Some(t) = stun_task {
        let _ = t.await;
    }
    if let Some(t) = webhook_task {
        let _ = t.await;
    }
    if tokio::time::timeout(grace, drain_rx.recv()).await.is_err() {
        warn!(
            ?grace,
            "connections still open after the grace period; closing them"
        );
    }
    let _ = tokio::task::spawn_blocking(move || cluster.leave()).await;
    let store2 = store.clone();
    match tokio::task::spawn_blocking(move || store2.flush_blocking()).await {
        Ok(Ok(())) => info!("store flushed; bye"),
        Ok(Err(e)) => warn!(error = %e, "final store flush failed"),
        Err(e) => warn!(error = %e, "final store flush panicked"),
    }
    Ok(())
}

/// Where other nodes reach this one's CWMP listener when `node_url` is not
/// set: its own address, or the host's name when it listens on all
/// addresses (as in a container).
fn default_node_url(cwmp: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    if cwmp.ip().is_unspecified() {
        let host = crate::cluster::host_name().unwrap_or_else(|| "localhost".to_owned());
        format!("{scheme}://{host}:{}/", cwmp.port())
    } else {
        format!("{scheme}://{cwmp}/")
    }
}

async fn reap_sessions(acs: Arc<Acs>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let now = crate::app::now_ms(SystemTime::now());
        for (device, key) in acs.sessions.reap(now) {
            debug!(device = %device, "session timed out");
            acs.cluster.release_device(&device, &key);
        }
    }
}
