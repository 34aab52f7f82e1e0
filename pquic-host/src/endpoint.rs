//! quinn endpoints over a [`FecSocket`]: TLS identity, transport settings
//! that leave room for the FEC layer, and the demultiplexing precondition
//! (`grease_quic_bit(false)` on both ends).

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Endpoint, EndpointConfig, MtuDiscoveryConfig, TransportConfig};

use crate::congestion::{ChargeRule, Congestion, FecAwareFactory};
use crate::error::{Error, Result};
use crate::fec::RepairedLosses;
pub use crate::fec::{LAYER_OVERHEAD, MAX_QUIC_PACKET};
use crate::impair::Impairment;
use crate::socket::{FecSocket, FecSocketHandle, PeerLimits};

/// How long quinn waits after a suspected MTU black hole before probing
/// again (quinn's default: 60 s).
pub const BLACK_HOLE_COOLDOWN: Duration = Duration::from_secs(3);

/// ALPN of our application protocol (workloads and plugin exchange).
pub const ALPN: &[u8] = b"pquic-fec/1";

pub use crate::identity::Identity;

/// Where to bind and what sits between quinn and the socket.
#[derive(Clone)]
pub struct SocketOptions {
    /// Local address (any: a wildcard such as `0.0.0.0:4433` or `[::]:0`,
    /// or one interface's).
    pub bind: SocketAddr,
    /// Bounds of the socket's peer table.
    pub limits: PeerLimits,
    /// Receive-side impairment.
    pub impairment: Option<Impairment>,
    /// Extra sockets for more paths ([`FecSocket::bind_paths`]).
    pub extra: Vec<crate::socket::ExtraSocket>,
    /// The repaired-loss counter of the default transport configuration
    /// ([`server`] and [`client`]); the builders of [`crate::builder`] give
    /// each connection its own instead.
    pub repaired: RepairedLosses,
    /// When those count as congestion events.
    pub charge_rule: ChargeRule,
}

impl std::fmt::Debug for SocketOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketOptions")
            .field("bind", &self.bind)
            .field("impairment", &self.impairment)
            .finish_non_exhaustive()
    }
}

/// Resolves `target` to its addresses, in the resolver's order: an address
/// (`10.0.0.1:4433`, `[::1]:4433`, `0.0.0.0:4433`) as it is, a host name
/// with a port (`localhost:4433`) through the system resolver.
pub async fn resolve(target: &str) -> Result<Vec<SocketAddr>> {
    if let Ok(addr) = target.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(target)
        .await
        .map_err(|source| Error::Resolve {
            target: target.to_string(),
            source,
        })?
        .collect();
    if addrs.is_empty() {
        return Err(Error::NoAddress {
            target: target.to_string(),
        });
    }
    Ok(addrs)
}

/// The host part of `target` (`host:port`) when it is a name rather than an
/// IP address: the name a client expects in the server's certificate.
///
/// ```
/// use pquic_host::endpoint::host_name;
/// assert_eq!(host_name("example.net:4433"), Some("example.net"));
/// assert_eq!(host_name("10.0.0.1:4433"), None);
/// assert_eq!(host_name("[::1]:4433"), None);
/// ```
pub fn host_name(target: &str) -> Option<&str> {
    if target.parse::<SocketAddr>().is_ok() {
        return None;
    }
    let host = target.rsplit_once(':').map_or(target, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty() && host.parse::<std::net::IpAddr>().is_err()).then_some(host)
}

/// The wildcard address of `peer`'s family, any port: where a client
/// socket that talks to `peer` binds.
pub fn unspecified_for(peer: SocketAddr) -> SocketAddr {
    match peer {
        SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        SocketAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Transport settings shared by both ends; the congestion controller is
/// Cubic, also told (under `rule`) about the losses counted in `repaired`.
pub fn transport_config(repaired: RepairedLosses, congestion: Congestion) -> TransportConfig {
    let mut transport = TransportConfig::default();
    transport.congestion_controller_factory(Arc::new(FecAwareFactory::new(congestion, repaired)));
    let mut mtu = MtuDiscoveryConfig::default();
    // Random loss (what FEC is for) also trips quinn's black-hole
    // detector, which then holds packets at 1200 bytes for a minute by
    // default: on a tunnel, a minute of datagrams too large to carry.
    mtu.upper_bound(MAX_QUIC_PACKET)
        .black_hole_cooldown(BLACK_HOLE_COOLDOWN);
    transport
        .mtu_discovery_config(Some(mtu))
        .keep_alive_interval(Some(Duration::from_secs(2)))
        .max_idle_timeout(Some(
            Duration::from_secs(30)
                .try_into()
                .expect("30 s is a valid idle timeout"),
        ))
        .datagram_receive_buffer_size(Some(1 << 20));
    transport
}

/// [`transport_config`] on a path known to carry QUIC packets of `floor`
/// bytes (1200 to [`MAX_QUIC_PACKET`], clamped): quinn starts there
/// instead of at 1200 and its MTU black-hole detector never goes below it,
/// so random loss cannot shrink the largest datagram under what the
/// operator said the path carries.
pub fn transport_config_with_floor(
    repaired: RepairedLosses,
    congestion: Congestion,
    floor: u16,
) -> TransportConfig {
    let floor = floor.clamp(1200, MAX_QUIC_PACKET);
    let mut transport = transport_config(repaired, congestion);
    transport.min_mtu(floor).initial_mtu(floor);
    transport
}

fn endpoint_config() -> EndpointConfig {
    let mut config = EndpointConfig::default();
    // The FEC layer tells its datagrams from QUIC packets by the fixed bit.
    config.grease_quic_bit(false);
    config
}

fn bind(options: SocketOptions) -> Result<(Arc<FecSocket>, FecSocketHandle)> {
    let addr = options.bind;
    FecSocket::bind_paths(addr, options.limits, options.impairment, options.extra)
        .map_err(|source| Error::Bind { addr, source })
}

/// A quinn server configuration: `identity`, TLS 1.3, `alpn` (the
/// protocols offered, in preference order), and [`transport_config`] with
/// a congestion controller charged the losses counted in `repaired`.
pub fn server_config(
    identity: &Identity,
    alpn: &[Vec<u8>],
    repaired: RepairedLosses,
    congestion: Congestion,
) -> Result<quinn::ServerConfig> {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(identity.chain().to_vec(), identity.key())?;
    tls.alpn_protocols = alpn.to_vec();
    let crypto = QuicServerConfig::try_from(tls).map_err(|e| Error::QuicConfig(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport_config(repaired, congestion)));
    Ok(config)
}

/// A quinn client configuration: server certificates issued by `roots`
/// (see [`crate::identity`]), TLS 1.3, `alpn`, and [`transport_config`]
/// with a congestion controller charged the losses counted in `repaired`.
pub fn client_config(
    roots: rustls::RootCertStore,
    alpn: &[Vec<u8>],
    repaired: RepairedLosses,
    congestion: Congestion,
) -> Result<quinn::ClientConfig> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = alpn.to_vec();
    let crypto = QuicClientConfig::try_from(tls).map_err(|e| Error::QuicConfig(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport_config(repaired, congestion)));
    Ok(config)
}

/// A quinn endpoint on a new [`FecSocket`] bound as `options` say, serving
/// with `server` when given.
pub fn endpoint(
    options: SocketOptions,
    server: Option<quinn::ServerConfig>,
) -> Result<(Endpoint, FecSocketHandle)> {
    let addr = options.bind;
    let (socket, handle) = bind(options)?;
    let endpoint = Endpoint::new_with_abstract_socket(
        endpoint_config(),
        server,
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|source| Error::Socket { addr, source })?;
    Ok((endpoint, handle))
}

/// A server endpoint that accepts [`ALPN`] connections; their congestion
/// controllers share `options.repaired` (the builders in
/// [`crate::builder`] give each connection its own).
pub fn server(options: SocketOptions, identity: &Identity) -> Result<(Endpoint, FecSocketHandle)> {
    let config = server_config(
        identity,
        &[ALPN.to_vec()],
        options.repaired.clone(),
        options.charge_rule.into(),
    )?;
    endpoint(options, Some(config))
}

/// A client endpoint for [`ALPN`] that accepts server certificates issued
/// by `roots` (see [`crate::identity`]).
pub fn client(
    options: SocketOptions,
    roots: rustls::RootCertStore,
) -> Result<(Endpoint, FecSocketHandle)> {
    let config = client_config(
        roots,
        &[ALPN.to_vec()],
        options.repaired.clone(),
        options.charge_rule.into(),
    )?;
    let (mut endpoint, handle) = endpoint(options, None)?;
    endpoint.set_default_client_config(config);
    Ok((endpoint, handle))
}

/// Connects `endpoint` to `addr`, expecting a certificate for
/// `server_name`.
pub async fn connect(
    endpoint: &Endpoint,
    addr: SocketAddr,
    server_name: &str,
) -> Result<quinn::Connection> {
    let connecting = endpoint
        .connect(addr, server_name)
        .map_err(|source| Error::Connect { addr, source })?;
    connecting.await.map_err(|source| Error::Handshake {
        addr,
        server_name: server_name.to_string(),
        source,
    })
}
