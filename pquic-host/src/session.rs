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
use rustls::pki_types::CertificateDer;

use crate::congestion::ChargeRule;
use crate::endpoint::{self, Identity, SocketOptions};
use crate::error::{Error, Result};
use crate::fec::{QuicLayer, RepairedLosses};
use crate::impair::Impairment;
use crate::layer::{FecLayer, LayerStats};
use crate::plugin::{accept_plugin, offer_plugin, Offer, Outcome, PluginCache};
use crate::socket::{pass_through_factory, FecSocketHandle, LayerFactory};
use crate::workload::{self, BulkSource, WorkloadConfig, WorkloadReport};

/// How long a client waits for the server's plugin offer.
pub const OFFER_TIMEOUT: Duration = Duration::from_secs(5);

/// A layer protecting under a freshly configured instance of `plugin`,
/// reporting the peer's repaired losses into `repaired`.
pub fn plugin_layer(plugin: &Plugin, repaired: RepairedLosses) -> Box<dyn FecLayer> {
    Box::new(QuicLayer::with_plugin(plugin, repaired, Instant::now()))
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

fn receive_only_factory() -> LayerFactory {
    Arc::new(|_| Box::new(QuicLayer::receive_only()))
}

/// Socket options for one end, and the repaired-loss counter its layers
/// share: with a plugin exchange ahead, peers start receive-only (ready to
/// decode what the other end protects); without one, plain QUIC.
fn socket_options(
    bind: SocketAddr,
    impairment: Option<Impairment>,
    charge_rule: ChargeRule,
    plugin_exchange: bool,
) -> (SocketOptions, RepairedLosses) {
    let factory = if plugin_exchange {
        receive_only_factory()
    } else {
        pass_through_factory()
    };
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
    /// Binds `bind` (loopback) and serves every client: optional plugin
    /// offer, then the workload protocol.
    pub fn start(
        bind: SocketAddr,
        impairment: Option<Impairment>,
        identity: &Identity,
        plugin: Option<ServerPlugin>,
        charge_rule: ChargeRule,
    ) -> Result<Self> {
        let (options, repaired) = socket_options(bind, impairment, charge_rule, plugin.is_some());
        let (endpoint, socket) = endpoint::server(options, identity)?;
        let addr = socket.local_addr()?;
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
            if let Some(plugin) = plugin {
                let connection = connection.clone();
                tokio::spawn(async move {
                    let peer = connection.remote_address();
                    match offer_plugin(&connection, &plugin.offer, &plugin.plugin).await {
                        Ok(Outcome::Active { plugin, .. }) => {
                            tracing::info!("server: FEC on for {peer} with {}", plugin.name());
                            socket.set_layer(peer, plugin_layer(&plugin, repaired));
                            follow_rtt(socket, connection);
                        }
                        Ok(Outcome::Declined(reason)) => {
                            tracing::warn!("server: plain QUIC with {peer}: {reason}")
                        }
                        Err(e) => tracing::warn!("server: plugin exchange with {peer} failed: {e}"),
                    }
                });
            }
            if let Err(e) = workload::serve_connection(connection).await {
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

/// What a client session measured.
#[derive(Debug, Clone, Default)]
pub struct ClientReport {
    /// The workload's results as the server confirmed them.
    pub workload: WorkloadReport,
    /// SHA-256 of the plugin in use, if one was activated.
    pub plugin_sha256: Option<String>,
    /// True when the plugin had to be fetched.
    pub plugin_fetched: bool,
    /// Why the connection runs plain QUIC, when it does.
    pub declined: Option<String>,
    /// The client socket's FEC counters.
    pub fec: LayerStats,
    /// Packets quinn declared lost on the client side.
    pub lost_packets: u64,
}

/// A client session: connect to `server`, take part in the plugin exchange
/// when `plugins` is given, run `workload`, close.
#[allow(clippy::too_many_arguments)]
pub async fn run_client(
    bind: SocketAddr,
    impairment: Option<Impairment>,
    server_cert: &CertificateDer<'static>,
    server: SocketAddr,
    plugins: Option<ClientPlugins>,
    charge_rule: ChargeRule,
    workload_config: &WorkloadConfig,
    bulk: BulkSource,
    progress: &(dyn Fn(f64) + Sync),
) -> Result<ClientReport> {
    let (options, repaired) = socket_options(bind, impairment, charge_rule, plugins.is_some());
    let (client, socket) = endpoint::client(options, server_cert)?;
    let connection =
        tokio::time::timeout(Duration::from_secs(10), endpoint::connect(&client, server))
            .await
            .map_err(|_| Error::Timeout("handshake"))??;
    let mut report = ClientReport::default();
    if let Some(plugins) = &plugins {
        let exchange = accept_plugin(&connection, plugins.cache.as_ref(), &plugins.trust);
        match tokio::time::timeout(OFFER_TIMEOUT, exchange).await {
            Ok(Ok(Outcome::Active { plugin, fetched })) => {
                socket.set_layer(server, plugin_layer(&plugin, repaired.clone()));
                follow_rtt(socket.clone(), connection.clone());
                report.plugin_sha256 = Some(hex::encode(plugin.digest()));
                report.plugin_fetched = fetched;
            }
            Ok(Ok(Outcome::Declined(reason))) => report.declined = Some(reason),
            Ok(Err(e)) => report.declined = Some(format!("plugin exchange failed: {e}")),
            Err(_) => report.declined = Some("the server offered no plugin".into()),
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
    report.lost_packets = connection.stats().path.lost_packets;
    connection.close(0u32.into(), b"done");
    let _ = tokio::time::timeout(Duration::from_secs(2), client.wait_idle()).await;
    report.fec = socket.total_stats();
    Ok(report)
}
