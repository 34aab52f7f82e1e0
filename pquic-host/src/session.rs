//! One server (any number of clients) and one client session over
//! [`FecSocket`](crate::socket::FecSocket)s: handshake, the plugin exchange,
//! switching each peer's layer on, and the workload. Used by the demo, the
//! `server` and `client` subcommands and the end-to-end tests.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fec_plugin_sdk::package::TrustStore;
use fec_plugin_sdk::runtime::Plugin;

use crate::congestion::ChargeRule;
use crate::endpoint::{self, Identity, SocketOptions};
use crate::error::{Error, Result};
use crate::fec::{connection_keys, plugin_policy, QuicLayer, RepairedLosses};
use crate::impair::Impairment;
use crate::layer::LayerStats;
use crate::plugin::{accept_plugin, offer_nothing, offer_plugin, Offer, Outcome, PluginCache};
use crate::socket::{pass_through_factory, FecSocketHandle, PeerFec};
use crate::workload::{self, BulkSource, WorkloadConfig, WorkloadReport};

/// How long a client waits for the server's plugin offer.
pub const OFFER_TIMEOUT: Duration = Duration::from_secs(5);

/// Gives `connection`'s peer its FEC layer once the handshake produced the
/// keys: receive-only and authenticated. Before this the peer has no FEC
/// state at all (pass-through), so datagrams from spoofed sources cost none.
fn install_layer(
    socket: &FecSocketHandle,
    connection: &quinn::Connection,
    is_client: bool,
    repaired: RepairedLosses,
) -> Result<()> {
    let keys = connection_keys(connection, is_client)?;
    let layer = QuicLayer::for_connection(&keys, repaired);
    socket.set_layer(connection.remote_address(), Box::new(layer));
    follow_rtt(socket.clone(), connection.clone());
    Ok(())
}

/// Switches FEC on for `peer` under a fresh instance of `plugin`.
fn activate(socket: &FecSocketHandle, peer: SocketAddr, plugin: &Plugin) {
    if !socket.set_policy(peer, Box::new(plugin_policy(plugin, Instant::now()))) {
        tracing::warn!("no FEC layer for {peer}; it stays on plain QUIC");
    }
}

/// Keeps the layer serving `connection`'s peer told of quinn's RTT estimate,
/// once per report interval, while the connection lives.
fn follow_rtt(socket: FecSocketHandle, connection: quinn::Connection) {
    tokio::spawn(async move {
        let peer = connection.remote_address();
        while connection.close_reason().is_none() {
            socket.set_rtt(peer, connection.rtt());
            tokio::time::sleep(crate::fec::FEEDBACK_INTERVAL).await;
        }
    });
}

/// Socket options for one end, and the repaired-loss counter its layers
/// share. Every peer starts on pass-through; with a plugin exchange ahead a
/// connection gets its FEC layer once its handshake is done.
fn socket_options(
    bind: SocketAddr,
    impairment: Option<Impairment>,
    charge_rule: ChargeRule,
) -> (SocketOptions, RepairedLosses) {
    let factory = pass_through_factory();
    let repaired = RepairedLosses::default();
    let options = SocketOptions {
        bind,
        factory,
        impairment,
        repaired: repaired.clone(),
        charge_rule,
    };
    (options, repaired)
}

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
    connections: Arc<Mutex<Vec<quinn::Connection>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Binds `bind` and serves every client: optional plugin
    /// offer, then the workload protocol.
    pub fn start(
        bind: SocketAddr,
        impairment: Option<Impairment>,
        identity: &Identity,
        plugin: Option<ServerPlugin>,
        charge_rule: ChargeRule,
    ) -> Result<Self> {
        let (options, repaired) = socket_options(bind, impairment, charge_rule);
        let (endpoint, socket) = endpoint::server(options, identity)?;
        let addr = socket
            .local_addr()
            .map_err(|source| Error::Socket { addr: bind, source })?;
        let connections: Arc<Mutex<Vec<quinn::Connection>>> = Arc::default();
        let task = tokio::spawn(accept_loop(
            endpoint.clone(),
            socket.clone(),
            connections.clone(),
            plugin,
            repaired,
        ));
        Ok(Self {
            endpoint,
            socket,
            addr,
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
        self.endpoint.close(0u32.into(), b"bye");
        self.task.abort();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
    }
}

async fn accept_loop(
    endpoint: quinn::Endpoint,
    socket: FecSocketHandle,
    connections: Arc<Mutex<Vec<quinn::Connection>>>,
    plugin: Option<ServerPlugin>,
    repaired: RepairedLosses,
) {
    while let Some(incoming) = endpoint.accept().await {
        let socket = socket.clone();
        let connections = connections.clone();
        let plugin = plugin.clone();
        let repaired = repaired.clone();
        tokio::spawn(async move {
            let connection = match incoming.await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("server handshake: {e}");
                    return;
                }
            };
            connections
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(connection.clone());
            let peer = connection.remote_address();
            let probe_socket = socket.clone();
            let probe: workload::StatusProbe =
                Arc::new(move || FecStatus::of(probe_socket.peer_fec(peer)).to_json());
            if plugin.is_none() {
                // Say so at once: the client need not wait for an offer.
                let connection = connection.clone();
                tokio::spawn(async move {
                    let _ = offer_nothing(&connection, "the server runs plain QUIC").await;
                });
            }
            if let Some(plugin) = plugin {
                if let Err(e) = install_layer(&socket, &connection, false, repaired) {
                    tracing::warn!("server: no FEC for {}: {e}", connection.remote_address());
                }
                let connection = connection.clone();
                tokio::spawn(async move {
                    let peer = connection.remote_address();
                    match offer_plugin(&connection, &plugin.offer, &plugin.plugin).await {
                        Ok(Outcome::Active { plugin, .. }) => {
                            tracing::info!("server: FEC on for {peer} with {}", plugin.name());
                            activate(&socket, peer, &plugin);
                        }
                        Ok(Outcome::Declined(reason)) => {
                            tracing::warn!("server: plain QUIC with {peer}: {reason}")
                        }
                        Err(e) => tracing::warn!("server: plugin exchange with {peer} failed: {e}"),
                    }
                });
            }
            if let Err(e) = workload::serve_connection(connection, Some(probe)).await {
                tracing::warn!("server connection: {e}");
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
}

/// How long a handshake with one of several addresses of a server may take
/// before the client tries the next one.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a handshake with the last (or only) address may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to the first of `servers` that completes a handshake, each
/// from a socket bound to `bind` (default: the unspecified address of that
/// server's family). Returns the endpoint, its socket handle, the
/// connection and the repaired-loss counter of its layers.
async fn connect_first(
    bind: Option<SocketAddr>,
    impairment: Option<Impairment>,
    roots: &rustls::RootCertStore,
    servers: &[SocketAddr],
    server_name: &str,
    charge_rule: ChargeRule,
) -> Result<(
    quinn::Endpoint,
    FecSocketHandle,
    quinn::Connection,
    RepairedLosses,
)> {
    let mut last_error = None;
    for (i, &server) in servers.iter().enumerate() {
        let local = bind.unwrap_or_else(|| endpoint::unspecified_for(server));
        let (options, repaired) = socket_options(local, impairment.clone(), charge_rule);
        let (client, socket) = endpoint::client(options, roots.clone())?;
        let limit = if i + 1 == servers.len() {
            HANDSHAKE_TIMEOUT
        } else {
            ATTEMPT_TIMEOUT
        };
        let attempt = endpoint::connect(&client, server, server_name);
        let error = match tokio::time::timeout(limit, attempt).await {
            Ok(Ok(connection)) => return Ok((client, socket, connection, repaired)),
            Ok(Err(e)) => e,
            Err(_) => Error::Timeout("handshake"),
        };
        tracing::info!("client: {server}: {error}");
        last_error = Some(error);
    }
    Err(last_error.unwrap_or(Error::Timeout("handshake")))
}

/// A client session: connect to the first of `servers` that answers
/// (expecting a certificate for `server_name`), take part in the plugin
/// exchange when `plugins` is given, run `workload`, close.
#[allow(clippy::too_many_arguments)]
pub async fn run_client(
    bind: Option<SocketAddr>,
    impairment: Option<Impairment>,
    roots: &rustls::RootCertStore,
    servers: &[SocketAddr],
    server_name: &str,
    plugins: Option<ClientPlugins>,
    charge_rule: ChargeRule,
    workload_config: &WorkloadConfig,
    bulk: BulkSource,
    progress: &(dyn Fn(f64) + Sync),
) -> Result<ClientReport> {
    let (client, socket, connection, repaired) =
        connect_first(bind, impairment, roots, servers, server_name, charge_rule).await?;
    let server = connection.remote_address();
    let mut report = ClientReport::default();
    if let Some(plugins) = &plugins {
        install_layer(&socket, &connection, true, repaired.clone())?;
        let exchange = accept_plugin(&connection, plugins.cache.as_ref(), &plugins.trust);
        match tokio::time::timeout(OFFER_TIMEOUT, exchange).await {
            Ok(Ok(Outcome::Active {
                plugin,
                fetched,
                trusted_by,
            })) => {
                activate(&socket, server, &plugin);
                report.plugin_sha256 = Some(hex::encode(plugin.digest()));
                report.plugin_fetched = fetched;
                report.trusted_by = trusted_by;
            }
            Ok(Ok(Outcome::Declined(reason))) => report.declined = Some(reason),
            Ok(Err(e)) => report.declined = Some(format!("plugin exchange failed: {e}")),
            Err(_) => {
                report.declined = Some(format!(
                    "the server sent no plugin offer within {} s",
                    OFFER_TIMEOUT.as_secs()
                ))
            }
        }
        if let Some(reason) = &report.declined {
            tracing::warn!("client: plain QUIC: {reason}");
        }
    }
    let budget = workload_config.realtime + workload_config.bulk + Duration::from_secs(60);
    report.workload = tokio::time::timeout(
        budget,
        workload::run_client(&connection, workload_config, bulk, progress),
    )
    .await
    .map_err(|_| Error::Timeout("workload"))??;
    report.client_fec = FecStatus::of(socket.peer_fec(server));
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
    connection.close(0u32.into(), b"done");
    let _ = tokio::time::timeout(Duration::from_secs(2), client.wait_idle()).await;
    report.fec = socket.total_stats();
    Ok(report)
}
