//! What the `pquic-host` binary runs over the [library API](crate::builder):
//! a server (any number of clients) and a client session of the demo's
//! workload. Used by the demo, the `server` and `client` subcommands and the
//! end-to-end tests; not an API for applications.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fec_plugin_sdk::package::TrustStore;
use fec_plugin_sdk::runtime::Plugin;

use crate::builder::{ClientBuilder, FecMode, FecServer, FecState, PathSpec, ServerBuilder};
use crate::congestion::Congestion;
use crate::endpoint::Identity;
use crate::error::{Error, Result};
use crate::impair::Impairment;
use crate::layer::LayerStats;
use crate::plugin::{Offer, PluginCache};
use crate::socket::{FecSocketHandle, PeerFec};
use crate::workload::{self, BulkSource, WorkloadConfig, WorkloadReport};

/// How long a client waits for the server's plugin offer.
pub const OFFER_TIMEOUT: Duration = crate::builder::EXCHANGE_TIMEOUT;

/// What a server offers.
#[derive(Debug, Clone)]
pub struct ServerPlugin {
    /// The offer sent to clients.
    pub offer: Offer,
    /// The plugin as the server loaded (and verified) it.
    pub plugin: Plugin,
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    /// The quinn endpoint.
    pub endpoint: quinn::Endpoint,
    /// Its socket's control and counters.
    pub socket: FecSocketHandle,
    /// Where it listens.
    pub addr: SocketAddr,
    server: Arc<FecServer>,
    connections: Arc<Mutex<Vec<quinn::Connection>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Binds `bind` (and the extra `paths`) and serves every client:
    /// optional plugin offer (none: the server says so), then the workload
    /// protocol. `multipath`: clients may open extra paths even without FEC.
    pub fn start(
        bind: SocketAddr,
        impairment: Option<Impairment>,
        identity: &Identity,
        plugin: Option<ServerPlugin>,
        congestion: impl Into<Congestion>,
        paths: &[PathSpec],
        multipath: bool,
    ) -> Result<Self> {
        let congestion = congestion.into();
        let mut builder = ServerBuilder::new(bind.to_string());
        builder
            .identity(identity.clone())
            .charge_rule(congestion.charge)
            .congestion(congestion.algorithm)
            .multipath(multipath);
        for path in paths {
            builder.path(path.clone());
        }
        if let Some(impairment) = impairment {
            builder.impairment(impairment);
        }
        if let Some(ServerPlugin { offer, plugin }) = plugin {
            builder.offer(offer, plugin);
        }
        let server = Arc::new(builder.bind_addr(bind)?);
        let connections: Arc<Mutex<Vec<quinn::Connection>>> = Arc::default();
        let task = tokio::spawn(accept_loop(server.clone(), connections.clone()));
        Ok(Self {
            endpoint: server.endpoint().clone(),
            socket: server.socket().clone(),
            addr: server.local_addr(),
            server,
            connections,
            task,
        })
    }

    /// Packets quinn declared lost on all server connections so far.
    pub fn lost_packets(&self) -> u64 {
        self.connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|c| c.stats().path.lost_packets)
            .sum()
    }

    /// Closes the endpoint and stops accepting.
    pub async fn shutdown(self) {
        self.task.abort();
        self.server.shutdown().await;
    }
}

async fn accept_loop(server: Arc<FecServer>, connections: Arc<Mutex<Vec<quinn::Connection>>>) {
    while let Some(incoming) = server.accept().await {
        let connections = connections.clone();
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            let accepted = match incoming.await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("connection from {remote}: {e}");
                    return;
                }
            };
            connections
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(accepted.connection.clone());
            let fec = accepted.fec.clone();
            let probe: workload::StatusProbe =
                Arc::new(move || FecStatus::of(fec.socket().peer_fec(fec.peer())).to_json());
            let peer = accepted.connection.remote_address();
            match workload::serve_connection(accepted.connection, Some(probe)).await {
                Ok(()) => tracing::info!("connection from {peer} closed"),
                Err(e) => tracing::warn!("connection from {peer}: {e}"),
            }
        });
    }
}

/// The client's plugin settings.
#[derive(Debug, Clone)]
pub struct ClientPlugins {
    /// Cache (`None`: run no plugins, decline every offer).
    pub cache: Option<PluginCache>,
    /// Trusted validators.
    pub trust: TrustStore,
}

/// One end's FEC state at the end of a transfer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FecStatus {
    /// True while that end protected what it sent.
    pub protecting: bool,
    /// Why it stopped (a faulting plugin), if it did.
    pub stopped_because: Option<String>,
    /// Times its policy failed.
    pub fallbacks: u64,
}

impl FecStatus {
    /// The status of a socket's layer for one peer (none: plain QUIC).
    pub fn of(peer: Option<PeerFec>) -> Self {
        peer.map_or_else(FecStatus::default, |p| FecStatus {
            protecting: p.protecting,
            stopped_because: p.failure,
            fallbacks: p.stats.fallbacks,
        })
    }

    /// What the server sends on the status stream.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "protecting": self.protecting,
            "stopped_because": self.stopped_because,
            "fallbacks": self.fallbacks,
        })
    }

    /// The status stream's reply, read back.
    pub fn from_json(value: &serde_json::Value) -> Self {
        FecStatus {
            protecting: value["protecting"].as_bool().unwrap_or(false),
            stopped_because: value["stopped_because"].as_str().map(str::to_string),
            fallbacks: value["fallbacks"].as_u64().unwrap_or(0),
        }
    }

    /// True when that end protected all along: protecting now, never failed.
    pub fn held(&self) -> bool {
        self.protecting && self.stopped_because.is_none() && self.fallbacks == 0
    }
}

/// What a client session measured.
#[derive(Debug, Clone, Default)]
pub struct ClientReport {
    /// The workload's results as the server confirmed them.
    pub workload: WorkloadReport,
    /// SHA-256 of the plugin in use, if one was activated.
    pub plugin_sha256: Option<String>,
    /// True when the plugin had to be fetched.
    pub plugin_fetched: bool,
    /// Why the connection runs plain QUIC, when it does: the plugin was
    /// declined, nothing was offered, or FEC stopped during the transfer
    /// (`FEC stopped on the client|server: REASON`).
    pub declined: Option<String>,
    /// Hex public keys of the trusted validators that signed the plugin.
    pub trusted_by: Vec<String>,
    /// True when FEC was on for the whole transfer: the plugin was accepted
    /// before the workload began and neither end stopped protecting before
    /// it ended.
    pub fec_throughout: bool,
    /// Why FEC stopped during the transfer, if it did.
    pub fec_stopped: Option<String>,
    /// The client's FEC state at the end.
    pub client_fec: FecStatus,
    /// The server's FEC state at the end, as it reported it (`None`: it did
    /// not answer the status request).
    pub server_fec: Option<FecStatus>,
    /// The client socket's FEC counters.
    pub fec: LayerStats,
    /// Packets quinn declared lost on the client side.
    pub lost_packets: u64,
    /// The client's paths at the end (multipath; empty on one path).
    pub paths: Vec<fec_core::layer::paths::PathView>,
    /// The client socket's counters (path events among them).
    pub socket: crate::socket::SocketStats,
}

/// A client session: connect to the first of `servers` that answers
/// (expecting a certificate for `server_name`), take part in the plugin
/// exchange when `plugins` is given (otherwise FEC is off), run `workload`,
/// close.
#[allow(clippy::too_many_arguments)]
pub async fn run_client(
    bind: Option<SocketAddr>,
    impairment: Option<Impairment>,
    roots: &rustls::RootCertStore,
    servers: &[SocketAddr],
    server_name: &str,
    plugins: Option<ClientPlugins>,
    congestion: impl Into<Congestion>,
    workload_config: &WorkloadConfig,
    bulk: BulkSource,
    progress: &(dyn Fn(f64) + Sync),
    paths: &[PathSpec],
) -> Result<ClientReport> {
    let mut builder = ClientBuilder::new();
    let congestion = congestion.into();
    builder
        .roots(roots.clone())
        .charge_rule(congestion.charge)
        .congestion(congestion.algorithm);
    for path in paths {
        builder.path(path.clone());
    }
    if let Some(bind) = bind {
        builder.bind(bind);
    }
    if let Some(impairment) = impairment {
        builder.impairment(impairment);
    }
    match &plugins {
        None => {
            builder.fec(FecMode::Off);
        }
        Some(plugins) => {
            builder.trust(plugins.trust.clone());
            if let Some(cache) = &plugins.cache {
                builder.cache(cache.clone());
            }
        }
    }
    let connected = builder.connect_addrs(servers, server_name).await?;
    let connection = connected.connection.clone();
    let mut report = ClientReport::default();
    match connected.fec.state() {
        FecState::Active {
            sha256,
            fetched,
            trusted_by,
            ..
        } => {
            report.plugin_sha256 = Some(sha256);
            report.plugin_fetched = fetched;
            report.trusted_by = trusted_by;
        }
        FecState::Off { reason } | FecState::Stopped { reason } => {
            if plugins.is_some() {
                report.declined = Some(reason);
            }
        }
        FecState::Negotiating => {}
    }
    let budget = workload_config.realtime + workload_config.bulk + Duration::from_secs(60);
    report.workload = tokio::time::timeout(
        budget,
        workload::run_client(&connection, workload_config, bulk, progress),
    )
    .await
    .map_err(|_| Error::Timeout("workload"))??;
    let socket = connected.fec.socket().clone();
    report.client_fec = FecStatus::of(socket.peer_fec(connected.fec.peer()));
    report.paths = socket.paths(connected.fec.peer());
    report.server_fec =
        match tokio::time::timeout(Duration::from_secs(5), workload::fec_status(&connection)).await
        {
            Ok(Ok(value)) => Some(FecStatus::from_json(&value)),
            _ => None,
        };
    if report.plugin_sha256.is_some() {
        let stopped = |end: &str, status: &FecStatus| {
            (!status.held()).then(|| {
                let why = status
                    .stopped_because
                    .as_deref()
                    .unwrap_or("not protecting");
                format!("FEC stopped on the {end}: {why}")
            })
        };
        report.fec_stopped =
            stopped("client", &report.client_fec).or_else(|| match &report.server_fec {
                Some(server) => stopped("server", server),
                None => Some("the server did not report its FEC state".into()),
            });
        report.fec_throughout = report.fec_stopped.is_none();
        if let Some(why) = &report.fec_stopped {
            tracing::warn!("client: {why}");
            report.declined = Some(why.clone());
        }
    }
    report.lost_packets = connection.stats().path.lost_packets;
    connected.close().await;
    report.fec = socket.total_stats();
    report.socket = socket.socket_stats();
    Ok(report)
}
