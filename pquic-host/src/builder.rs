//! The library API: FEC-protected QUIC endpoints for applications.
//!
//! [`ServerBuilder`] and [`ClientBuilder`] make quinn endpoints with the
//! FEC layer under quinn: the address (any: IPv4, IPv6, wildcards, host
//! names), the TLS identity or trust, the application's own ALPN, the
//! plugin the server offers or the trust store and cache the client accepts
//! plugins with, and whether FEC is off, on when both ends agree, or
//! required. Every connection is an ordinary [`quinn::Connection`] plus an
//! [`FecHandle`] saying whether FEC is active (which plugin) or why not,
//! with its counters.
//!
//! What happens per connection: the handshake runs on plain QUIC; then the
//! connection gets its own FEC layer (keyed from the TLS exporter) and its
//! own congestion-controller counter of repaired losses (RFC 9265); the
//! server offers its plugin on a control stream it opens (or says it offers
//! none), the client verifies it (hash, trusted signature, static
//! verifier), and both switch the layer on. [`FecServer::accept`] and
//! [`ClientBuilder::connect`] return once that exchange has settled, so an
//! application's own streams never meet the control stream.
//!
//! An echo over loopback, FEC on, with the shipped `realtime` plugin:
//!
//! ```
//! use pquic_host::builder::{ClientBuilder, FecMode, FecState, ServerBuilder};
//! use pquic_host::identity::Identity;
//! use pquic_host::plugin::{prepare_offer, PluginCache, DEFAULT_CACHE_BYTES};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> pquic_host::Result<()> {
//! let validator = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
//! let (offer, plugin) = prepare_offer("realtime", Some(&validator))?;
//! let identity = Identity::self_signed(&["localhost"])?;
//! let server = ServerBuilder::new("127.0.0.1:0")
//!     .identity(identity.clone())
//!     .alpn(b"echo/1")
//!     .offer(offer, plugin)
//!     .bind()
//!     .await?;
//! let addr = server.local_addr();
//! tokio::spawn(async move {
//!     while let Some(incoming) = server.accept().await {
//!         let Ok(accepted) = incoming.await else { continue };
//!         let (mut send, mut recv) = accepted.connection.accept_bi().await.unwrap();
//!         let message = recv.read_to_end(1024).await.unwrap();
//!         send.write_all(&message).await.unwrap();
//!         send.finish().unwrap();
//!         let _ = accepted.connection.closed().await;
//!     }
//! });
//!
//! let mut trust = fec_plugin_sdk::package::TrustStore::new();
//! trust.add(validator.verifying_key());
//! let cache_dir = std::env::temp_dir().join(format!("pquic-doc-{}", std::process::id()));
//! let client = ClientBuilder::new()
//!     .roots(identity.roots()?)
//!     .alpn(b"echo/1")
//!     .plugins(PluginCache::open(&cache_dir, DEFAULT_CACHE_BYTES)?, trust)
//!     .fec(FecMode::Required)
//!     .connect(&addr.to_string())
//!     .await?;
//! assert!(matches!(client.fec.state(), FecState::Active { .. }));
//! let (mut send, mut recv) = client.connection.open_bi().await?;
//! send.write_all(b"hello").await?;
//! send.finish()?;
//! assert_eq!(recv.read_to_end(1024).await?, b"hello");
//! println!("{:?}", client.fec.stats());
//! client.close().await;
//! # let _ = std::fs::remove_dir_all(cache_dir);
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fec_plugin_sdk::package::TrustStore;
use fec_plugin_sdk::runtime::Plugin;

use crate::congestion::{Algorithm, ChargeRule, Congestion};
use crate::endpoint::{self, SocketOptions, ALPN};
use crate::error::{Error, Result};
use crate::fec::{connection_keys, plugin_policy, QuicLayer, RepairedLosses};
use crate::identity::{self, Identity};
use crate::impair::Impairment;
use crate::layer::LayerStats;
use crate::plugin::{accept_plugin, offer_nothing, offer_plugin, Offer, Outcome, PluginCache};
use crate::socket::{ExtraSocket, FecSocketHandle, LayerId, PeerLimits};

/// How long either end waits for the plugin exchange to settle.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a handshake with one of several addresses of a server may take
/// before the client tries the next one.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a handshake with the last (or only) address may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Application error code a side closes with when FEC was required and
/// could not be had.
pub const FEC_REQUIRED_CLOSE: u32 = 0x46_45_43; // "FEC"

/// Whether an endpoint uses FEC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FecMode {
    /// Plain QUIC: a server offers nothing (and says so), a client declines
    /// every offer.
    Off,
    /// FEC when both ends agree; otherwise plain QUIC, and the handle says
    /// why.
    #[default]
    On,
    /// FEC or no connection: the connection is closed (code
    /// [`FEC_REQUIRED_CLOSE`]) and an error returned unless the plugin
    /// exchange activated FEC.
    Required,
}

/// A connection's FEC state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FecState {
    /// The plugin exchange has not settled yet.
    Negotiating,
    /// Both ends protect their packets under this plugin.
    Active {
        /// Plugin name.
        name: String,
        /// Plugin version.
        version: String,
        /// Hex SHA-256 of the package.
        sha256: String,
        /// True when the client fetched the package (its cache missed).
        fetched: bool,
        /// Hex public keys of the client's trusted validators that signed
        /// it (empty on the server).
        trusted_by: Vec<String>,
    },
    /// Plain QUIC from the start, and why.
    Off {
        /// Why (declined, nothing offered, FEC off, ...).
        reason: String,
    },
    /// FEC was active and stopped (a faulting plugin); plain QUIC since.
    Stopped {
        /// Why.
        reason: String,
    },
}

/// A connection's FEC state and counters, shared with the socket adapter.
#[derive(Clone)]
pub struct FecHandle {
    socket: FecSocketHandle,
    peer: SocketAddr,
    settled: Arc<Mutex<FecState>>,
}

impl std::fmt::Debug for FecHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FecHandle")
            .field("peer", &self.peer)
            .field("state", &self.state())
            .finish()
    }
}

impl FecHandle {
    fn new(socket: FecSocketHandle, peer: SocketAddr) -> Self {
        FecHandle {
            socket,
            peer,
            settled: Arc::new(Mutex::new(FecState::Negotiating)),
        }
    }

    fn settle(&self, state: FecState) {
        *self.settled.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }

    /// The state now: what the exchange settled, turned into
    /// [`FecState::Stopped`] once this end's layer stopped protecting (after
    /// the connection closed, the last state it had while open).
    pub fn state(&self) -> FecState {
        let settled = self
            .settled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let FecState::Active { .. } = settled {
            // No layer any more: the connection closed; it was active.
            let layer = self.socket.peer_fec(self.peer);
            if let Some(layer) = layer.filter(|l| !l.protecting || l.failure.is_some()) {
                return FecState::Stopped {
                    reason: layer
                        .failure
                        .unwrap_or_else(|| "the FEC layer stopped protecting".into()),
                };
            }
        }
        settled
    }

    /// True while FEC is active.
    pub fn is_active(&self) -> bool {
        matches!(self.state(), FecState::Active { .. })
    }

    /// This end's FEC counters for the connection (zero before its layer
    /// was installed or after it was removed).
    pub fn stats(&self) -> LayerStats {
        self.socket.layer_stats(self.peer).unwrap_or_default()
    }

    /// The peer's address (the key of its layer in the socket).
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The socket adapter serving the connection.
    pub fn socket(&self) -> &FecSocketHandle {
        &self.socket
    }
}

/// A QUIC connection with FEC under it.
#[derive(Debug)]
pub struct FecConnection {
    /// The quinn connection: streams, datagrams, stats.
    pub connection: quinn::Connection,
    /// Its FEC state and counters.
    pub fec: FecHandle,
    /// A client's own endpoint, kept while the connection lives.
    endpoint: Option<quinn::Endpoint>,
}

impl FecConnection {
    /// Closes the connection (code 0) and, on a client, waits up to 2 s for
    /// the close to reach the server.
    pub async fn close(self) {
        self.connection.close(0u32.into(), b"done");
        if let Some(endpoint) = self.endpoint {
            let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
        }
    }
}

/// Gives `connection`'s peer its own FEC layer once the handshake produced
/// the keys: receive-only, authenticated, charging the peer's repaired
/// losses to `repaired` (this connection's congestion controller). Before
/// this the peer has no FEC state at all (pass-through), so datagrams from
/// spoofed sources cost none.
fn install_layer(
    socket: &FecSocketHandle,
    connection: &quinn::Connection,
    is_client: bool,
    repaired: RepairedLosses,
) -> Result<LayerId> {
    let keys = connection_keys(connection, is_client)?;
    let layer = QuicLayer::for_connection(&keys, repaired);
    let peer = connection.remote_address();
    let Some(id) = socket.set_layer(peer, Box::new(layer)) else {
        return Err(Error::Plugin(format!(
            "the socket's peer table is full; {peer} stays on plain QUIC"
        )));
    };
    follow_connection(socket.clone(), connection.clone(), id);
    Ok(id)
}

/// Switches FEC on for `peer` under a fresh instance of `plugin`.
fn activate(socket: &FecSocketHandle, peer: SocketAddr, plugin: &Plugin) -> bool {
    socket.set_policy(peer, Box::new(plugin_policy(plugin, Instant::now())))
}

/// While `connection` lives, keeps its layer told of quinn's RTT estimate
/// once per report interval; when it closes, removes the layer.
fn follow_connection(socket: FecSocketHandle, connection: quinn::Connection, id: LayerId) {
    tokio::spawn(async move {
        let peer = connection.remote_address();
        while connection.close_reason().is_none() {
            socket.set_rtt(peer, connection.rtt());
            tokio::select! {
                () = tokio::time::sleep(crate::fec::FEEDBACK_INTERVAL) => {}
                _ = connection.closed() => {}
            }
        }
        // A closed connection holds no per-peer state; its counters stay
        // in the socket's totals.
        socket.remove_layer(id);
    });
}

fn active_state(plugin: &Plugin, fetched: bool, trusted_by: Vec<String>) -> FecState {
    FecState::Active {
        name: plugin.name().to_string(),
        version: plugin.version().to_string(),
        sha256: hex::encode(plugin.digest()),
        fetched,
        trusted_by,
    }
}

fn socket_options(
    bind: SocketAddr,
    impairment: Option<Impairment>,
    charge_rule: ChargeRule,
    paths: &[PathSpec],
) -> SocketOptions {
    SocketOptions {
        bind,
        limits: PeerLimits::default(),
        impairment,
        extra: paths
            .iter()
            .map(|p| ExtraSocket {
                addr: p.local,
                impairment: p.impairment.clone(),
            })
            .collect(),
        repaired: RepairedLosses::default(),
        charge_rule,
    }
}

/// An extra path (multipath, [`crate::socket`]): a local address of its
/// own and, for a client, the server's address for it (default: the one
/// it connected to), with the emulated impairment of what arrives on it.
#[derive(Debug, Clone)]
pub struct PathSpec {
    /// Local address of the path's socket (port 0: any).
    pub local: SocketAddr,
    /// The server's address on this path (clients; `None`: the address
    /// connected to).
    pub remote: Option<SocketAddr>,
    /// Receive-side impairment of this path alone.
    pub impairment: Option<Impairment>,
}

/// Opens the extra paths `paths` (socket 1, 2, ...) to `server` once its
/// layer is installed; logs those that cannot be opened.
fn open_paths(socket: &FecSocketHandle, server: SocketAddr, paths: &[PathSpec]) {
    for (i, spec) in paths.iter().enumerate() {
        let remote = spec.remote.unwrap_or(server);
        match socket.open_path(server, i + 1, remote) {
            Some(path) => tracing::info!("path {path} to {remote} from {} opening", spec.local),
            None => tracing::warn!(
                "path from {} to {remote} not opened: no FEC layer with a free path",
                spec.local
            ),
        }
    }
}

/// Builds a [`FecServer`].
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    listen: String,
    identity: Option<Identity>,
    alpn: Vec<Vec<u8>>,
    offer: Option<(Offer, Plugin)>,
    fec: FecMode,
    impairment: Option<Impairment>,
    congestion: Congestion,
    min_mtu: Option<u16>,
    paths: Vec<PathSpec>,
    multipath: bool,
}

/// The transport of a connection whose path is known to carry `min_mtu`.
fn floored(
    repaired: &RepairedLosses,
    congestion: Congestion,
    min_mtu: Option<u16>,
) -> Option<Arc<quinn::TransportConfig>> {
    min_mtu.map(|floor| {
        Arc::new(endpoint::transport_config_with_floor(
            repaired.clone(),
            congestion,
            floor,
        ))
    })
}

impl ServerBuilder {
    /// A server for `listen`: an address (`0.0.0.0:4433`, `[::]:4433`,
    /// `10.0.0.1:4433`) or a host name with a port (the first address that
    /// binds).
    pub fn new(listen: impl Into<String>) -> Self {
        ServerBuilder {
            listen: listen.into(),
            identity: None,
            alpn: Vec::new(),
            offer: None,
            fec: FecMode::On,
            impairment: None,
            paths: Vec::new(),
            multipath: false,
            congestion: Congestion::default(),
            min_mtu: None,
        }
    }

    /// The TLS identity (default: a fresh self-signed one for `localhost`).
    pub fn identity(&mut self, identity: Identity) -> &mut Self {
        self.identity = Some(identity);
        self
    }

    /// Adds an ALPN protocol the server accepts (default: only
    /// [`endpoint::ALPN`], the binary's workload protocol).
    pub fn alpn(&mut self, protocol: &[u8]) -> &mut Self {
        self.alpn.push(protocol.to_vec());
        self
    }

    /// The plugin offered to every client (see
    /// [`crate::plugin::prepare_offer`]); without one the server offers
    /// nothing and says so.
    pub fn offer(&mut self, offer: Offer, plugin: Plugin) -> &mut Self {
        self.offer = Some((offer, plugin));
        self
    }

    /// Off, on (default) or required.
    pub fn fec(&mut self, mode: FecMode) -> &mut Self {
        self.fec = mode;
        self
    }

    /// Emulated impairment of every received datagram (tests and demos;
    /// off by default).
    pub fn impairment(&mut self, impairment: Impairment) -> &mut Self {
        self.impairment = Some(impairment);
        self
    }

    /// Listens on one more local address too (its `remote` is ignored):
    /// clients' extra paths may arrive there, or on any other of the
    /// server's sockets. Implies [`multipath`](Self::multipath).
    pub fn path(&mut self, path: PathSpec) -> &mut Self {
        self.paths.push(path);
        self
    }

    /// Keeps a layer for every connection, with or without FEC, so clients
    /// can open extra paths (plain multipath when no plugin is accepted).
    pub fn multipath(&mut self, on: bool) -> &mut Self {
        self.multipath = on;
        self
    }

    /// The QUIC packet size the path is known to carry (1200 to
    /// [`endpoint::MAX_QUIC_PACKET`]; default: 1200, what every QUIC path
    /// carries, with path MTU discovery above it). quinn starts there and
    /// never falls below it, even when loss trips its black-hole detector.
    pub fn min_mtu(&mut self, bytes: u16) -> &mut Self {
        self.min_mtu = Some(bytes);
        self
    }

    /// When repaired losses count as congestion (RFC 9265).
    pub fn charge_rule(&mut self, rule: ChargeRule) -> &mut Self {
        self.congestion.charge = rule;
        self
    }

    /// The congestion controller (default: Cubic; see [`Algorithm`]).
    pub fn congestion(&mut self, algorithm: Algorithm) -> &mut Self {
        self.congestion.algorithm = algorithm;
        self
    }

    /// Resolves the address and binds the first that binds.
    pub async fn bind(&self) -> Result<FecServer> {
        let mut last = None;
        for addr in endpoint::resolve(&self.listen).await? {
            match self.bind_addr(addr) {
                Ok(server) => return Ok(server),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::NoAddress {
            target: self.listen.clone(),
        }))
    }

    /// Binds exactly `addr`.
    pub fn bind_addr(&self, addr: SocketAddr) -> Result<FecServer> {
        let identity = match &self.identity {
            Some(identity) => identity.clone(),
            None => Identity::generate()?,
        };
        let alpn = if self.alpn.is_empty() {
            vec![ALPN.to_vec()]
        } else {
            self.alpn.clone()
        };
        let options = socket_options(
            addr,
            self.impairment.clone(),
            self.congestion.charge,
            &self.paths,
        );
        let repaired = RepairedLosses::default();
        let mut default =
            endpoint::server_config(&identity, &alpn, repaired.clone(), self.congestion)?;
        if let Some(transport) = floored(&repaired, self.congestion, self.min_mtu) {
            default.transport_config(transport);
        }
        let (endpoint, socket) = endpoint::endpoint(options, Some(default))?;
        let local = socket
            .local_addr()
            .map_err(|source| Error::Socket { addr, source })?;
        tracing::info!("listening on {local}");
        Ok(FecServer {
            endpoint,
            socket,
            local,
            identity,
            alpn,
            offer: self.offer.clone().filter(|_| self.fec != FecMode::Off),
            fec: self.fec,
            congestion: self.congestion,
            min_mtu: self.min_mtu,
            multipath: self.multipath || !self.paths.is_empty(),
        })
    }
}

/// A server endpoint with FEC; see the [module docs](self).
#[derive(Debug)]
pub struct FecServer {
    endpoint: quinn::Endpoint,
    socket: FecSocketHandle,
    local: SocketAddr,
    identity: Identity,
    alpn: Vec<Vec<u8>>,
    offer: Option<(Offer, Plugin)>,
    fec: FecMode,
    congestion: Congestion,
    min_mtu: Option<u16>,
    /// Keep a layer for every connection (its paths), FEC or not.
    multipath: bool,
}

/// A connection attempt: `.await` it for the [`FecConnection`], after the
/// handshake and the plugin exchange. Awaiting each in its own task lets a
/// server accept the next while one is still settling.
pub struct FecIncoming {
    inner: Pin<Box<dyn Future<Output = Result<FecConnection>> + Send>>,
    remote: SocketAddr,
}

impl std::fmt::Debug for FecIncoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FecIncoming")
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

impl FecIncoming {
    /// Where the attempt comes from.
    pub fn remote_address(&self) -> SocketAddr {
        self.remote
    }
}

impl IntoFuture for FecIncoming {
    type Output = Result<FecConnection>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<FecConnection>> + Send>>;
    fn into_future(self) -> Self::IntoFuture {
        self.inner
    }
}

impl FecServer {
    /// The next connection attempt, or `None` once the endpoint is closed.
    pub async fn accept(&self) -> Option<FecIncoming> {
        let incoming = self.endpoint.accept().await?;
        let remote = incoming.remote_address();
        // Each connection gets its own congestion-controller counter,
        // which its own layer feeds (RFC 9265).
        let repaired = RepairedLosses::default();
        let floor = floored(&repaired, self.congestion, self.min_mtu);
        let config = endpoint::server_config(
            &self.identity,
            &self.alpn,
            repaired.clone(),
            self.congestion,
        )
        .map(|mut config| {
            if let Some(transport) = floor {
                config.transport_config(transport);
            }
            config
        });
        let socket = self.socket.clone();
        let offer = self.offer.clone();
        let mode = self.fec;
        let multipath = self.multipath;
        let inner = Box::pin(async move {
            let connecting = incoming
                .accept_with(Arc::new(config?))
                .map_err(Error::Connection)?;
            let connection = connecting.await.map_err(Error::Connection)?;
            let peer = connection.remote_address();
            let fec = FecHandle::new(socket.clone(), peer);
            tracing::info!(
                "connection from {peer} (ALPN {})",
                alpn_of(&connection).unwrap_or_else(|| "-".into())
            );
            match offer {
                None => {
                    let reason = match mode {
                        FecMode::Off => "FEC is off on the server",
                        _ => "the server offers no plugin",
                    };
                    if multipath {
                        // Plain multipath: a layer without a policy.
                        if let Err(e) = install_layer(&socket, &connection, false, repaired) {
                            tracing::warn!("{peer}: no extra paths: {e}");
                        }
                    }
                    fec.settle(FecState::Off {
                        reason: reason.into(),
                    });
                    let connection = connection.clone();
                    tokio::spawn(async move {
                        let _ = offer_nothing(&connection, "the server runs plain QUIC").await;
                    });
                }
                Some((offer, plugin)) => {
                    let state = match install_layer(&socket, &connection, false, repaired) {
                        Err(e) => FecState::Off {
                            reason: e.to_string(),
                        },
                        Ok(id) => {
                            let exchange = offer_plugin(&connection, &offer, &plugin);
                            let state = match tokio::time::timeout(EXCHANGE_TIMEOUT, exchange).await
                            {
                                Ok(Ok(Outcome::Active { plugin, .. })) => {
                                    if activate(&socket, peer, &plugin) {
                                        tracing::info!(
                                            "FEC on for {peer}: plugin {} {} sha256 {}",
                                            plugin.name(),
                                            plugin.version(),
                                            hex::encode(plugin.digest())
                                        );
                                        active_state(&plugin, false, Vec::new())
                                    } else {
                                        FecState::Off {
                                            reason: "no FEC layer for the peer".into(),
                                        }
                                    }
                                }
                                Ok(Ok(Outcome::Declined(reason))) => FecState::Off { reason },
                                Ok(Err(e)) => FecState::Off {
                                    reason: format!("plugin exchange failed: {e}"),
                                },
                                Err(_) => FecState::Off {
                                    reason: "the client did not answer the plugin offer".into(),
                                },
                            };
                            if matches!(state, FecState::Off { .. }) && !multipath {
                                // Plain QUIC: no decoder state for this peer.
                                socket.remove_layer(id);
                            }
                            state
                        }
                    };
                    if let FecState::Off { reason } = &state {
                        tracing::warn!("plain QUIC with {peer}: {reason}");
                    }
                    fec.settle(state);
                }
            }
            if mode == FecMode::Required && !fec.is_active() {
                connection.close(FEC_REQUIRED_CLOSE.into(), b"FEC required");
                let why = match fec.state() {
                    FecState::Off { reason } | FecState::Stopped { reason } => reason,
                    other => format!("{other:?}"),
                };
                return Err(Error::FecRequired(why));
            }
            Ok(FecConnection {
                connection,
                fec,
                endpoint: None,
            })
        });
        Some(FecIncoming { inner, remote })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The quinn endpoint.
    pub fn endpoint(&self) -> &quinn::Endpoint {
        &self.endpoint
    }

    /// The socket adapter (all peers' FEC layers and counters).
    pub fn socket(&self) -> &FecSocketHandle {
        &self.socket
    }

    /// The server's certificate chain and key.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Closes every connection and waits (at most 2 s) until they are gone.
    pub async fn shutdown(&self) {
        self.endpoint.close(0u32.into(), b"bye");
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
    }
}

fn alpn_of(connection: &quinn::Connection) -> Option<String> {
    let data = connection.handshake_data()?;
    let data = data
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .ok()?;
    data.protocol
        .map(|p| String::from_utf8_lossy(&p).into_owned())
}

/// Builds client connections with FEC; see the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct ClientBuilder {
    bind: Option<SocketAddr>,
    roots: Option<rustls::RootCertStore>,
    server_name: Option<String>,
    alpn: Vec<Vec<u8>>,
    cache: Option<PluginCache>,
    trust: TrustStore,
    fec: FecMode,
    impairment: Option<Impairment>,
    congestion: Congestion,
    min_mtu: Option<u16>,
    paths: Vec<PathSpec>,
}

impl ClientBuilder {
    /// A client with the defaults: system roots, [`endpoint::ALPN`], FEC on
    /// but no plugin cache (so every offer is declined until
    /// [`plugins`](Self::plugins) is set).
    pub fn new() -> Self {
        Self::default()
    }

    /// The local address (default: the unspecified address of the server's
    /// family, any port).
    pub fn bind(&mut self, addr: SocketAddr) -> &mut Self {
        self.bind = Some(addr);
        self
    }

    /// Roots to accept the server's certificate from (default: the system's,
    /// [`identity::system_roots`]).
    pub fn roots(&mut self, roots: rustls::RootCertStore) -> &mut Self {
        self.roots = Some(roots);
        self
    }

    /// The name expected in the server's certificate (default: the host
    /// part of the target when it is a name, else `localhost`).
    pub fn server_name(&mut self, name: impl Into<String>) -> &mut Self {
        self.server_name = Some(name.into());
        self
    }

    /// Adds an ALPN protocol to offer (default: only [`endpoint::ALPN`]).
    pub fn alpn(&mut self, protocol: &[u8]) -> &mut Self {
        self.alpn.push(protocol.to_vec());
        self
    }

    /// The cache plugins are kept in and the validators whose signatures
    /// make a plugin acceptable.
    pub fn plugins(&mut self, cache: PluginCache, trust: TrustStore) -> &mut Self {
        self.cache = Some(cache);
        self.trust = trust;
        self
    }

    /// The validators whose signatures make a plugin acceptable (default:
    /// none, so every offer is declined).
    pub fn trust(&mut self, trust: TrustStore) -> &mut Self {
        self.trust = trust;
        self
    }

    /// The cache plugins are kept in (without one, offers are declined:
    /// the client runs no plugins).
    pub fn cache(&mut self, cache: PluginCache) -> &mut Self {
        self.cache = Some(cache);
        self
    }

    /// Off, on (default) or required.
    pub fn fec(&mut self, mode: FecMode) -> &mut Self {
        self.fec = mode;
        self
    }

    /// Emulated impairment of every received datagram (tests and demos).
    pub fn impairment(&mut self, impairment: Impairment) -> &mut Self {
        self.impairment = Some(impairment);
        self
    }

    /// Opens one more path to the server once connected, from its own
    /// local address (multipath; the server must run with
    /// [`ServerBuilder::multipath`] or extra paths of its own). With paths
    /// the client keeps its FEC layer even when no plugin is accepted
    /// (plain multipath).
    pub fn path(&mut self, path: PathSpec) -> &mut Self {
        self.paths.push(path);
        self
    }

    /// The QUIC packet size the path is known to carry (1200 to
    /// [`endpoint::MAX_QUIC_PACKET`]; default: 1200, what every QUIC path
    /// carries, with path MTU discovery above it). quinn starts there and
    /// never falls below it, even when loss trips its black-hole detector.
    pub fn min_mtu(&mut self, bytes: u16) -> &mut Self {
        self.min_mtu = Some(bytes);
        self
    }

    /// When repaired losses count as congestion (RFC 9265).
    pub fn charge_rule(&mut self, rule: ChargeRule) -> &mut Self {
        self.congestion.charge = rule;
        self
    }

    /// The congestion controller (default: Cubic; see [`Algorithm`]).
    pub fn congestion(&mut self, algorithm: Algorithm) -> &mut Self {
        self.congestion.algorithm = algorithm;
        self
    }

    /// Connects to `target` (`host:port` or an address): every address it
    /// resolves to is tried in turn, then the plugin exchange settles.
    pub async fn connect(&self, target: &str) -> Result<FecConnection> {
        let servers = endpoint::resolve(target).await?;
        let name = self
            .server_name
            .clone()
            .or_else(|| endpoint::host_name(target).map(str::to_string))
            .unwrap_or_else(|| "localhost".into());
        self.connect_addrs(&servers, &name).await
    }

    /// Connects to the first of `servers` that completes a handshake,
    /// expecting a certificate for `server_name`, then settles the plugin
    /// exchange.
    pub async fn connect_addrs(
        &self,
        servers: &[SocketAddr],
        server_name: &str,
    ) -> Result<FecConnection> {
        let roots = match &self.roots {
            Some(roots) => roots.clone(),
            None => identity::system_roots()?,
        };
        let alpn = if self.alpn.is_empty() {
            vec![ALPN.to_vec()]
        } else {
            self.alpn.clone()
        };
        let mut last_error = None;
        for (i, &server) in servers.iter().enumerate() {
            let local = self
                .bind
                .unwrap_or_else(|| endpoint::unspecified_for(server));
            let options = socket_options(
                local,
                self.impairment.clone(),
                self.congestion.charge,
                &self.paths,
            );
            let (client, socket) = endpoint::endpoint(options, None)?;
            // This connection's own congestion-controller counter, fed by
            // its own layer (RFC 9265).
            let repaired = RepairedLosses::default();
            let mut config =
                endpoint::client_config(roots.clone(), &alpn, repaired.clone(), self.congestion)?;
            if let Some(transport) = floored(&repaired, self.congestion, self.min_mtu) {
                config.transport_config(transport);
            }
            let limit = if i + 1 == servers.len() {
                HANDSHAKE_TIMEOUT
            } else {
                ATTEMPT_TIMEOUT
            };
            let attempt = async {
                let connecting =
                    client
                        .connect_with(config, server, server_name)
                        .map_err(|source| Error::Connect {
                            addr: server,
                            source,
                        })?;
                connecting.await.map_err(|source| Error::Handshake {
                    addr: server,
                    server_name: server_name.to_string(),
                    source,
                })
            };
            let error = match tokio::time::timeout(limit, attempt).await {
                Ok(Ok(connection)) => {
                    tracing::info!("connected to {server} ({server_name})");
                    return self.settle(client, socket, connection, repaired).await;
                }
                Ok(Err(e)) => e,
                Err(_) => Error::Timeout("handshake"),
            };
            tracing::info!("{server}: {error}");
            last_error = Some(error);
        }
        Err(last_error.unwrap_or(Error::Timeout("handshake")))
    }

    async fn settle(
        &self,
        client: quinn::Endpoint,
        socket: FecSocketHandle,
        connection: quinn::Connection,
        repaired: RepairedLosses,
    ) -> Result<FecConnection> {
        let server = connection.remote_address();
        let fec = FecHandle::new(socket.clone(), server);
        let cache = self.cache.as_ref().filter(|_| self.fec != FecMode::Off);
        let multipath = !self.paths.is_empty();
        // With FEC off the client still answers the server's control stream
        // (so the application never meets it), but keeps no FEC state
        // unless it runs extra paths (plain multipath).
        let installed = match cache {
            Some(_) => install_layer(&socket, &connection, true, repaired).map(Some),
            None if multipath => {
                install_layer(&socket, &connection, true, repaired.clone()).map(Some)
            }
            None => Ok(None),
        };
        let state = match installed {
            Err(e) => FecState::Off {
                reason: e.to_string(),
            },
            Ok(id) => {
                let exchange = accept_plugin(&connection, cache, &self.trust);
                let state = match tokio::time::timeout(EXCHANGE_TIMEOUT, exchange).await {
                    Ok(Ok(Outcome::Active {
                        plugin,
                        fetched,
                        trusted_by,
                    })) => {
                        if activate(&socket, server, &plugin) {
                            active_state(&plugin, fetched, trusted_by)
                        } else {
                            FecState::Off {
                                reason: "no FEC layer for the server".into(),
                            }
                        }
                    }
                    Ok(Ok(Outcome::Declined(reason))) => FecState::Off { reason },
                    Ok(Err(e)) => FecState::Off {
                        reason: format!("plugin exchange failed: {e}"),
                    },
                    Err(_) => FecState::Off {
                        reason: format!(
                            "the server sent no plugin offer within {} s",
                            EXCHANGE_TIMEOUT.as_secs()
                        ),
                    },
                };
                match (&state, id) {
                    (FecState::Off { .. }, Some(id)) if !multipath => {
                        socket.remove_layer(id);
                    }
                    (_, Some(_)) if multipath => open_paths(&socket, server, &self.paths),
                    _ => {}
                }
                state
            }
        };
        let state = match state {
            // Off by choice: the exchange only kept the control stream away
            // from the application.
            FecState::Off { .. } if self.fec == FecMode::Off => FecState::Off {
                reason: "FEC is off on this client".into(),
            },
            state => state,
        };
        match &state {
            FecState::Active { name, sha256, .. } => {
                tracing::info!("FEC on with {server}: plugin {name} sha256 {sha256}")
            }
            FecState::Off { reason } if self.fec == FecMode::Off => {
                tracing::info!("plain QUIC with {server}: {reason}")
            }
            FecState::Off { reason } => tracing::warn!("plain QUIC with {server}: {reason}"),
            _ => {}
        }
        fec.settle(state);
        if self.fec == FecMode::Required && !fec.is_active() {
            connection.close(FEC_REQUIRED_CLOSE.into(), b"FEC required");
            let why = match fec.state() {
                FecState::Off { reason } | FecState::Stopped { reason } => reason,
                other => format!("{other:?}"),
            };
            return Err(Error::FecRequired(why));
        }
        Ok(FecConnection {
            connection,
            fec,
            endpoint: Some(client),
        })
    }
}
