//! `pquic-host`: QUIC with an FEC layer; see `pquic-host --help`.

use std::time::Duration;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use pquic_host::builder::{ClientBuilder, FecMode, FecState, PathSpec, ServerBuilder};
use pquic_host::congestion::{Algorithm, ChargeRule};
use pquic_host::endpoint::{self, Identity};
use pquic_host::identity::{self, StoredIdentity};
use pquic_host::impair::{ImpairConfig, Impairment, LossModel};
use pquic_host::plugin::{self as plugins, PluginCache, DEFAULT_CACHE_BYTES};
use pquic_host::session::{self, ClientPlugins, Server, ServerPlugin};
use pquic_host::tunnel::{self, Counters, FlowConfig, TunnelStats, TUNNEL_ALPN};
use pquic_host::workload::BulkSource;
use pquic_host::{files, Error};
use std::sync::Arc;

use pquic_host::demo::{self, DemoConfig, ModeReport};
use pquic_host::workload::WorkloadConfig;

#[derive(Parser, Debug)]
#[command(
    name = "pquic-host",
    version,
    about = "QUIC endpoint with an in-band FEC plugin"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug, Clone)]
struct ImpairArgs {
    /// Random loss per direction, in percent (0 to below 100).
    #[arg(long, default_value_t = 3.0, value_parser = loss_percent, allow_hyphen_values = true)]
    loss: f64,
    /// Mean loss burst length in packets, at least 1 (Gilbert-Elliott when > 1).
    #[arg(long, default_value_t = 1.0, value_parser = burst_length, allow_hyphen_values = true)]
    burst: f64,
    /// Round-trip time added by the emulated path, in milliseconds.
    #[arg(long = "rtt-ms", default_value_t = 40)]
    rtt_ms: u64,
    /// Seed of the impairment (same seed, same loss pattern).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(clap::Args, Debug, Clone)]
struct PathArgs {
    /// Random loss of received packets, in percent (0 to below 100).
    #[arg(long, default_value_t = 0.0, value_parser = loss_percent, allow_hyphen_values = true)]
    loss: f64,
    /// Mean loss burst length in packets, at least 1 (Gilbert-Elliott when > 1).
    #[arg(long, default_value_t = 1.0, value_parser = burst_length, allow_hyphen_values = true)]
    burst: f64,
    /// Round-trip time added (half in each direction), in milliseconds.
    #[arg(long = "rtt-ms", default_value_t = 0)]
    rtt_ms: u64,
    /// Extra uniform delay per packet, up to this many milliseconds.
    #[arg(long = "jitter-ms", default_value_t = 0)]
    jitter_ms: u64,
    /// Percentage of packets held back by 5 ms (reordering), 0 to 100.
    #[arg(long, default_value_t = 0.0, value_parser = percent, allow_hyphen_values = true)]
    reorder: f64,
    /// Bottleneck rate in Mbit/s (0: unlimited).
    #[arg(long = "rate-mbps", default_value_t = 0.0, value_parser = non_negative, allow_hyphen_values = true)]
    rate_mbps: f64,
    /// Seed of the impairment.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

impl PathArgs {
    fn config(&self) -> ImpairConfig {
        ImpairConfig {
            loss: LossModel::from_percent(self.loss, self.burst),
            delay: Duration::from_millis(self.rtt_ms) / 2,
            jitter: Duration::from_millis(self.jitter_ms),
            reorder_rate: self.reorder / 100.0,
            rate_bps: (self.rate_mbps > 0.0).then_some((self.rate_mbps * 1e6) as u64),
            ..ImpairConfig::default()
        }
    }

    fn impairment(&self, salt: u64) -> Option<Impairment> {
        Some(Impairment::new(
            self.config(),
            self.seed.wrapping_mul(2).wrapping_add(salt),
        ))
    }
}

#[derive(clap::Args, Debug, Clone)]
struct StoreArgs {
    /// Plugin cache directory.
    #[arg(long, default_value_os_t = default_dir("cache").join("plugins"))]
    cache: PathBuf,
    /// Trust store file (one hex ed25519 public key per line).
    #[arg(long, default_value_os_t = default_dir("config").join("trusted_keys"))]
    trust: PathBuf,
}

fn number(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text} is not a number"))?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(format!("{text} is not a finite number"))
    }
}

/// An extra path: `LOCAL[=REMOTE][,key=value...]` (see `--path`).
fn path_spec(text: &str) -> Result<PathSpec, String> {
    let mut parts = text.split(',');
    let addrs = parts.next().unwrap_or_default().trim();
    let (local, remote) = match addrs.split_once('=') {
        Some((local, remote)) => (local, Some(remote)),
        None => (addrs, None),
    };
    let socket_addr = |s: &str| -> Result<SocketAddr, String> {
        let s = s.trim();
        s.parse::<SocketAddr>()
            .or_else(|_| {
                s.parse::<std::net::IpAddr>()
                    .map(|ip| SocketAddr::new(ip, 0))
            })
            .map_err(|_| format!("{s}: not an IP address or IP:port"))
    };
    let local = socket_addr(local)?;
    let remote = remote
        .map(|r| {
            r.trim()
                .parse::<SocketAddr>()
                .map_err(|_| format!("{r}: the path's remote end must be IP:port"))
        })
        .transpose()?;
    let mut impair = PathArgs {
        loss: 0.0,
        burst: 1.0,
        rtt_ms: 0,
        jitter_ms: 0,
        reorder: 0.0,
        rate_mbps: 0.0,
        seed: 1,
    };
    for option in parts {
        let (key, value) = option
            .split_once('=')
            .ok_or_else(|| format!("{option}: path options are key=value"))?;
        let whole = |v: &str| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| format!("{key}={v}: not a whole number"))
        };
        match key.trim() {
            "loss" => impair.loss = loss_percent(value)?,
            "burst" => impair.burst = burst_length(value)?,
            "rtt-ms" => impair.rtt_ms = whole(value)?,
            "jitter-ms" => impair.jitter_ms = whole(value)?,
            "rate-mbps" => impair.rate_mbps = non_negative(value)?,
            "seed" => impair.seed = whole(value)?,
            other => {
                return Err(format!(
                    "{other}: unknown path option (loss, burst, rtt-ms, jitter-ms, rate-mbps, seed)"
                ))
            }
        }
    }
    // Each local address gets its own loss pattern under one seed.
    let salt = match local.ip() {
        std::net::IpAddr::V4(ip) => u64::from(u32::from(ip)),
        std::net::IpAddr::V6(ip) => u128::from(ip) as u64,
    } ^ (u64::from(local.port()) << 32);
    Ok(PathSpec {
        local,
        remote,
        impairment: impair.impairment(salt),
    })
}

/// A loss rate in percent: 0 <= x < 100 (100% would be no path at all).
fn loss_percent(text: &str) -> Result<f64, String> {
    let value = number(text)?;
    if (0.0..100.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{text}: a loss rate is a percentage, at least 0 and below 100"
        ))
    }
}

/// A percentage: 0 <= x <= 100.
fn percent(text: &str) -> Result<f64, String> {
    let value = number(text)?;
    if (0.0..=100.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{text}: a percentage is from 0 to 100"))
    }
}

/// A mean burst length in packets: at least 1.
fn burst_length(text: &str) -> Result<f64, String> {
    let value = number(text)?;
    if value >= 1.0 {
        Ok(value)
    } else {
        Err(format!("{text}: a mean burst length is at least 1 packet"))
    }
}

fn non_negative(text: &str) -> Result<f64, String> {
    let value = number(text)?;
    if value >= 0.0 {
        Ok(value)
    } else {
        Err(format!("{text}: must not be negative"))
    }
}

/// A rate per second, more than 0 (at most a million).
fn positive_rate(text: &str) -> Result<f64, String> {
    let value = number(text)?;
    if value > 0.0 && value <= 1e6 {
        Ok(value)
    } else {
        Err(format!(
            "{text}: a rate per second, more than 0 and at most 1000000"
        ))
    }
}

/// A multipath arrangement by name.
fn arrangement(text: &str) -> Result<pquic_host::multipath::Arrangement, String> {
    use pquic_host::multipath::Arrangement;
    Arrangement::from_name(text).ok_or_else(|| {
        format!(
            "{text}: no such arrangement (one of {})",
            Arrangement::ALL.map(Arrangement::name).join(", ")
        )
    })
}

/// A rate in Mbit/s, more than 0.
fn positive_mbps(text: &str) -> Result<f64, String> {
    let value = number(text)?;
    if value > 0.0 && value <= 1e6 {
        Ok(value)
    } else {
        Err(format!(
            "{text}: a rate in Mbit/s, more than 0 and at most 1000000"
        ))
    }
}

/// Seconds, more than 0 (and at most a day).
fn positive_seconds(text: &str) -> Result<f64, String> {
    let value = number(text)?;
    if value > 0.0 && value <= 86_400.0 {
        Ok(value)
    } else {
        Err(format!(
            "{text}: a duration in seconds, more than 0 and at most 86400"
        ))
    }
}

/// Seconds, 0 or more (and at most a day).
fn seconds(text: &str) -> Result<f64, String> {
    let value = number(text)?;
    if (0.0..=86_400.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{text}: a duration in seconds, from 0 to 86400"))
    }
}

fn default_dir(kind: &str) -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let base = match kind {
        "cache" => std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or(home.join(".cache")),
        _ => std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .unwrap_or(home.join(".config")),
    };
    base.join("pquic-host")
}

#[derive(clap::Args, Debug)]
struct ServerArgs {
    /// Address to listen on: an address (`10.0.0.1:4433`, `[::]:4433` for
    /// every interface, IPv6 and IPv4) or a host name with a port
    /// (`localhost:4433`; the first address that binds).
    #[arg(long, default_value = "[::]:4433")]
    listen: String,
    /// The server's certificate chain (PEM, leaf first); with --key.
    /// Without both, a self-signed certificate for --name, kept in
    /// --identity-dir and reused.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// The private key of --cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// A name (DNS name or IP address) of the self-signed certificate;
    /// repeat for several.
    #[arg(long = "name", default_value = "localhost", conflicts_with = "cert")]
    names: Vec<String>,
    /// Where the self-signed certificate and its key (mode 0600) are kept.
    #[arg(long = "identity-dir", default_value_os_t = default_dir("config").join("identity"))]
    identity_dir: PathBuf,
    /// Also write the server's certificate (DER) here, for clients' --ca.
    #[arg(long = "cert-out")]
    cert_out: Option<PathBuf>,
    /// Plugin to offer: realtime, adaptive, rlc-window, rs-block, tunnel, or
    /// a .fecp file (default: realtime for `server`, tunnel for `tunnel
    /// server`).
    #[arg(long)]
    plugin: Option<String>,
    /// Validator key file (hex secret, see `plugin keygen`) to sign the plugin with.
    #[arg(long = "sign-key")]
    sign_key: Option<PathBuf>,
    /// Serve plain QUIC, offer nothing.
    #[arg(long = "no-plugin")]
    no_plugin: bool,
    #[command(flatten)]
    path: PathArgs,
    /// Listen on one more local address for clients' extra paths
    /// (multipath; repeatable): ADDR[,loss=P][,burst=B][,rtt-ms=N]
    /// [,jitter-ms=N][,rate-mbps=R][,seed=S], the options impairing what
    /// arrives there. Implies --multipath.
    #[arg(long = "path", value_parser = path_spec)]
    paths: Vec<PathSpec>,
    /// Let clients open extra paths even without FEC (plain multipath).
    #[arg(long)]
    multipath: bool,
}

/// How a client reaches a server and what it accepts: address, trust,
/// plugins, impairment (shared by `client` and `tunnel client`).
#[derive(clap::Args, Debug)]
struct ConnectArgs {
    /// Server address or host name with a port; every address of a name is
    /// tried in turn.
    #[arg(long, default_value = "localhost:4433")]
    connect: String,
    /// Name expected in the server's certificate (default: the host part of
    /// --connect when it is a name, else `localhost`).
    #[arg(long = "server-name")]
    server_name: Option<String>,
    /// Local address to send from (default: the unspecified address of the
    /// server's family, any port).
    #[arg(long)]
    bind: Option<SocketAddr>,
    /// Certificates to accept the server's from (PEM or DER), for example
    /// the server's self-signed one; default: the system's roots.
    #[arg(long = "ca", visible_alias = "cert")]
    ca: Option<PathBuf>,
    /// Decline every plugin.
    #[arg(long = "no-plugin", conflicts_with = "require_fec")]
    no_plugin: bool,
    /// Exit non-zero unless FEC was active for the whole transfer (a
    /// plugin accepted before it began, neither end stopping before it
    /// ended).
    #[arg(long = "require-fec")]
    require_fec: bool,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    path: PathArgs,
    /// Open one more path once connected (multipath; repeatable):
    /// LOCAL[=REMOTE][,loss=P][,burst=B][,rtt-ms=N][,jitter-ms=N]
    /// [,rate-mbps=R][,seed=S]. LOCAL is the local address to send from
    /// (an IP, or IP:port), REMOTE the server's address on that path
    /// (default: --connect's); the options impair what arrives on it.
    #[arg(long = "path", value_parser = path_spec)]
    paths: Vec<PathSpec>,
}

impl ConnectArgs {
    fn roots(&self) -> pquic_host::Result<rustls::RootCertStore> {
        match &self.ca {
            Some(path) => identity::roots_from_file(path),
            None => identity::system_roots(),
        }
    }

    fn plugins(&self) -> pquic_host::Result<ClientPlugins> {
        let store = &self.store;
        Ok(ClientPlugins {
            cache: (!self.no_plugin)
                .then(|| PluginCache::open(&store.cache, DEFAULT_CACHE_BYTES))
                .transpose()?,
            trust: plugins::load_trust_store(&store.trust)?,
        })
    }
}

#[derive(clap::Args, Debug)]
struct ClientArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// File to send as the bulk transfer (default: generated data).
    #[arg(long)]
    file: Option<PathBuf>,
    /// Seconds of real-time messages (more than 0).
    #[arg(long = "messages-s", default_value_t = 5.0, value_parser = positive_seconds, allow_hyphen_values = true)]
    messages_s: f64,
    /// Seconds of generated bulk data (0: none; ignored with --file).
    #[arg(long = "bulk-s", default_value_t = 3.0, value_parser = seconds, allow_hyphen_values = true)]
    bulk_s: f64,
}

#[derive(clap::Args, Debug)]
struct MultipathArgs {
    /// Round trip of each path, in milliseconds.
    #[arg(long = "rtt-ms", default_value_t = 20)]
    rtt_ms: u64,
    /// Loss per direction of the lossy path, in percent.
    #[arg(long, default_value_t = 10.0, value_parser = loss_percent, allow_hyphen_values = true)]
    loss: f64,
    /// Rate limit of each path in the bulk arrangements, in Mbit/s.
    #[arg(long = "rate-mbps", default_value_t = 20.0, value_parser = positive_mbps, allow_hyphen_values = true)]
    rate_mbps: f64,
    /// When the clean path is cut in multipath-cut, in seconds.
    #[arg(long = "cut-s", default_value_t = 3.0, value_parser = positive_seconds, allow_hyphen_values = true)]
    cut_s: f64,
    /// Seconds of messages (100/s, bulk alongside for the first half).
    #[arg(long = "messages-s", default_value_t = 8.0, value_parser = positive_seconds, allow_hyphen_values = true)]
    messages_s: f64,
    /// Plugin the server pushes in the FEC arrangements.
    #[arg(long, default_value = "multipath")]
    plugin: String,
    /// The QUIC connection's congestion controller: cubic (the default of
    /// server and client) or bbr.
    #[arg(long, default_value = "cubic")]
    congestion: Algorithm,
    /// Only these arrangements (comma-separated names; default: all).
    #[arg(long, value_delimiter = ',', value_parser = arrangement)]
    only: Vec<pquic_host::multipath::Arrangement>,
    /// Seed of the impairments.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// One JSON object per arrangement instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Server and client in one process over impaired loopback: plain QUIC
    /// versus QUIC with FEC, same workload, then a comparison table.
    Demo {
        #[command(flatten)]
        impair: ImpairArgs,
        /// Seconds per mode (two thirds real-time messages, one third bulk).
        #[arg(long = "duration-s", default_value_t = 12.0, value_parser = positive_seconds, allow_hyphen_values = true)]
        duration_s: f64,
        /// Print one JSON object instead of the table.
        #[arg(long)]
        json: bool,
        /// When losses FEC repaired count as congestion: always, or
        /// window-limited (only while the sender fills its window).
        #[arg(long = "cc-repaired", default_value = "window-limited")]
        cc_repaired: ChargeRule,
        /// Plugin the server pushes: realtime, adaptive, rlc-window or rs-block.
        #[arg(long, default_value = "realtime")]
        plugin: String,
        /// Also write the message latency CDF of both modes here (SVG).
        #[arg(long)]
        plot: Option<PathBuf>,
    },
    /// Serve the workload protocol (and offer an FEC plugin).
    Server(ServerArgs),
    /// Connect, accept the server's plugin if trusted, send a file or a
    /// message stream, and verify what the server received.
    Client(ClientArgs),
    /// Multipath with FEC, measured: server and client in one process
    /// over two emulated paths on loopback (path A clean, path B lossy, each
    /// with --rtt-ms), the same message stream plus bulk over path A alone,
    /// the lossy path alone with FEC, both paths without FEC, both with FEC,
    /// both with FEC and path A cut part-way; then bulk over one and over
    /// two rate-limited clean paths. Prints a table (or JSON lines).
    Multipath(MultipathArgs),
    /// Relay UDP from --listen to --to, impairing both directions.
    Relay {
        /// Address clients send to (address or host name with a port).
        #[arg(long)]
        listen: String,
        /// Server address (address or host name with a port).
        #[arg(long)]
        to: String,
        #[command(flatten)]
        path: PathArgs,
    },
    /// The QUIC VPN: UDP port forwarding over QUIC datagrams (RFC 9221)
    /// with FEC under them.
    Tunnel {
        #[command(subcommand)]
        action: TunnelAction,
    },
    /// Plugin cache and trust store management.
    Plugin {
        #[command(subcommand)]
        action: PluginAction,
    },
}

/// Settings of a tunnel end: flow table bounds, the outer path's MTU.
#[derive(clap::Args, Debug, Clone, Copy)]
struct FlowArgs {
    /// QUIC packet size the outer path is known to carry, 1200 to 1419
    /// (default 1200, what every QUIC path carries, with path MTU
    /// discovery above it). quinn starts there and never goes below it,
    /// even when loss trips its MTU black-hole detector; payloads up to
    /// about 40 bytes less fit from the first datagram on.
    #[arg(long = "min-mtu", value_parser = clap::value_parser!(u16).range(1200..=i64::from(pquic_host::endpoint::MAX_QUIC_PACKET)))]
    min_mtu: Option<u16>,
    /// Most UDP flows (source addresses) at once; a full table drops its
    /// idle flows first, then refuses new ones.
    #[arg(long = "max-flows", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    max_flows: u32,
    /// Seconds without traffic after which a flow is forgotten.
    #[arg(long = "flow-idle-s", default_value_t = 60.0, value_parser = positive_seconds, allow_hyphen_values = true)]
    flow_idle_s: f64,
    /// Congestion controller of the tunnel's QUIC connection: bbr (paces
    /// to the measured rate, holds up under random loss) or cubic (halves
    /// its window on loss; under heavy random loss the tunnelled datagrams
    /// queue behind it).
    #[arg(long, default_value = "bbr")]
    congestion: Algorithm,
}

impl FlowArgs {
    fn config(&self) -> FlowConfig {
        FlowConfig {
            max_flows: self.max_flows as usize,
            idle_timeout: Duration::from_secs_f64(self.flow_idle_s),
        }
    }
}

#[derive(clap::Args, Debug)]
struct TunnelServerArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Where the tunnelled UDP datagrams go (address or host name with a
    /// port); each flow gets its own UDP socket towards it.
    #[arg(long, required_unless_present = "tun", conflicts_with = "tun")]
    forward: Option<String>,
    #[command(flatten)]
    flows: FlowArgs,
    #[command(flatten)]
    tun: TunArgs,
}

/// The IP tunnel instead of UDP forwarding.
#[derive(clap::Args, Debug, Clone)]
struct TunArgs {
    /// Carry IP packets of a TUN device of this name (Linux, needs
    /// CAP_NET_ADMIN) instead of UDP; with --address. Routes are the
    /// operator's.
    #[arg(long, requires = "address")]
    tun: Option<String>,
    /// The TUN device's address and prefix, like 10.99.0.1/24.
    #[arg(long, requires = "tun")]
    address: Option<String>,
}

#[derive(clap::Args, Debug)]
struct TunnelClientArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// UDP address whose datagrams go through the tunnel; replies come
    /// back to each sender.
    #[arg(
        long = "udp-listen",
        required_unless_present = "tun",
        conflicts_with = "tun"
    )]
    udp_listen: Option<String>,
    #[command(flatten)]
    flows: FlowArgs,
    #[command(flatten)]
    tun: TunArgs,
}

#[derive(clap::Args, Debug)]
struct ProbeArgs {
    /// Datagrams per second.
    #[arg(long, default_value_t = 200.0, value_parser = positive_rate, allow_hyphen_values = true)]
    rate: f64,
    /// UDP payload bytes per datagram (at least 28).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(28..))]
    size: u16,
    /// Seconds of stream.
    #[arg(long = "duration-s", default_value_t = 10.0, value_parser = positive_seconds, allow_hyphen_values = true)]
    duration_s: f64,
    /// Plugin the tunnel server offers: tunnel, realtime, adaptive,
    /// rlc-window, rs-block, or none (plain QUIC).
    #[arg(long, default_value = "tunnel")]
    plugin: String,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    path: PathArgs,
    #[command(flatten)]
    flows: FlowArgs,
}

#[derive(Subcommand, Debug)]
enum TunnelAction {
    /// Accept tunnel clients and send their UDP datagrams on to --forward
    /// (offering an FEC plugin, like `server`).
    Server(TunnelServerArgs),
    /// Connect to a tunnel server and carry the UDP datagrams arriving at
    /// --udp-listen through it.
    Client(TunnelClientArgs),
    /// Measure a tunnel in this process over loopback (server, client,
    /// echo; the outer path impaired in both directions): residual loss,
    /// one-way latency, outer bytes per payload byte, and the same with
    /// no tunnel.
    Probe(ProbeArgs),
}

#[derive(Subcommand, Debug)]
enum PluginAction {
    /// List cached packages (digest, size).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Add a package file to the cache (verified against the trust store).
    Add {
        /// The .fecp file.
        file: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove a cached package by digest.
    Remove {
        /// Hex SHA-256.
        digest: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Trust a validator's public key (hex).
    Trust {
        /// Hex ed25519 public key.
        key: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Make a validator key: writes the secret (hex) to --out with mode
    /// 0600, prints the public key. An existing file is kept unless --force.
    Keygen {
        /// Where to write the secret key.
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing key file.
        #[arg(long)]
        force: bool,
    },
    /// Build the shipped `realtime` plugin signed with a key file.
    BuildRealtime {
        /// Validator secret key file (hex).
        #[arg(long)]
        key: PathBuf,
        /// Output .fecp file.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Progress of one run: a bar on a terminal, a line per 10% on stderr when
/// it is piped, nothing when hidden.
enum Progress {
    Bar(ProgressBar),
    Lines {
        label: String,
        decile: std::sync::atomic::AtomicU32,
    },
    Hidden,
}

impl Progress {
    fn new(hidden: bool, label: &str) -> Self {
        use std::io::IsTerminal;
        if hidden {
            Progress::Hidden
        } else if std::io::stderr().is_terminal() {
            Progress::Bar(progress_bar(label))
        } else {
            Progress::Lines {
                label: label.to_string(),
                decile: std::sync::atomic::AtomicU32::new(0),
            }
        }
    }

    fn set(&self, fraction: f64) {
        match self {
            Progress::Bar(bar) => bar.set_position((fraction * 1000.0) as u64),
            Progress::Lines { label, decile } => {
                let now = (fraction.clamp(0.0, 1.0) * 10.0) as u32;
                let before = decile.fetch_max(now, std::sync::atomic::Ordering::Relaxed);
                if now > before {
                    eprintln!("{label}: {}%", now * 10);
                }
            }
            Progress::Hidden => {}
        }
    }

    fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish();
        }
    }
}

fn progress_bar(label: &str) -> ProgressBar {
    let bar = ProgressBar::new(1000);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>6} [{bar:40}] {percent:>3}% {elapsed}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    bar
}

fn print_table(config: &DemoConfig, plain: &ModeReport, fec: &ModeReport) {
    println!(
        "\nloss {}% (mean burst {}), RTT {} ms, seed {}",
        config.loss_percent,
        config.burst,
        config.rtt.as_millis(),
        config.seed
    );
    println!("{:<28} {:>12} {:>12}", "", "plain QUIC", "QUIC + FEC");
    // Each cell is formatted once, from either mode's report, so the two
    // columns cannot drift apart.
    let row = |name: &str, cell: &dyn Fn(&ModeReport) -> String| {
        let shown = |m: &ModeReport| match m.failed {
            Some(_) => "-".to_string(),
            None => cell(m),
        };
        println!("{name:<28} {:>12} {:>12}", shown(plain), shown(fec));
    };
    for (mode, report) in [("plain QUIC", plain), ("QUIC + FEC", fec)] {
        if let Some(reason) = &report.failed {
            println!("{mode} did not complete: {reason}");
        }
    }
    row("messages sent / delivered", &|m| {
        format!("{}/{}", m.workload.sent, m.workload.delivered)
    });
    row("message latency p50 (ms)", &|m| {
        format!("{:.1}", m.workload.latency_p50_ms)
    });
    row("message latency p99 (ms)", &|m| {
        format!("{:.1}", m.workload.latency_p99_ms)
    });
    row("message latency max (ms)", &|m| {
        format!("{:.1}", m.workload.latency_max_ms)
    });
    row("datagrams sent / delivered", &|m| {
        let w = &m.workload;
        format!("{}/{}", w.datagrams_sent, w.datagrams_delivered)
    });
    row("packets retransmitted", &|m| m.retransmitted.to_string());
    row("packets recovered by FEC", &|m| m.recovered.to_string());
    row("bulk goodput (Mbit/s)", &|m| {
        format!("{:.1}", m.workload.goodput_mbps)
    });
    row("bulk data intact", &|m| m.workload.bulk_intact.to_string());
    row("redundancy (repair/source)", &|m| {
        format!("{:.3}", m.redundancy())
    });
    match &fec.plugin_sha256 {
        Some(sha) => println!(
            "plugin {} sha256 {sha} ({})",
            config.plugin,
            if fec.plugin_fetched {
                "fetched over the connection"
            } else {
                "from the client's cache"
            }
        ),
        None => println!(
            "plugin {} was not activated: FEC column is plain QUIC",
            config.plugin
        ),
    }
}

fn print_legend() {
    println!(
        "\nwhat the rows mean:
  messages sent / delivered   real-time messages (100/s, 200 bytes) on one reliable stream; the
                              server checks every byte and the order
  message latency             send to delivery at the server, per message (both ends share a clock)
  datagrams sent / delivered  the same rate as unreliable QUIC datagrams: FEC can rebuild lost ones,
                              plain QUIC cannot
  packets retransmitted       packets quinn declared lost (both directions): each costs a round trip
  packets recovered by FEC    lost packets rebuilt from repair symbols, without a round trip
  bulk goodput                a bulk stream after the messages, at the server; 'intact' means its
                              length and SHA-256 matched
  redundancy                  repair bytes sent per protected byte (small packets cost the most)"
    );
}

async fn demo(
    impair: ImpairArgs,
    duration_s: f64,
    json: bool,
    charge_rule: ChargeRule,
    plugin: String,
    plot: Option<PathBuf>,
) -> pquic_host::Result<()> {
    let total = Duration::from_secs_f64(duration_s);
    let config = DemoConfig {
        loss_percent: impair.loss,
        burst: impair.burst,
        rtt: Duration::from_millis(impair.rtt_ms),
        seed: impair.seed,
        charge_rule,
        plugin,
        workload: WorkloadConfig {
            realtime: total * 2 / 3,
            bulk: total / 3,
            ..WorkloadConfig::default()
        },
    };
    let bar = Progress::new(json, "plain QUIC");
    // Each mode reports its own outcome: one that fails (plain QUIC missing
    // its deadline under heavy loss, say) is a row that says so, and the
    // other mode still runs.
    let plain = demo::run_plain(&config, &|f| bar.set(f))
        .await
        .unwrap_or_else(|e| ModeReport::failure(&e));
    bar.finish();
    let setup = demo::FecSetup::named(&config.plugin, &demo::demo_cache_dir(&config))?;
    let bar = Progress::new(json, "QUIC + FEC");
    let fec_result = demo::run_fec_with(&config, setup.clone(), &|f| bar.set(f)).await;
    let fec = fec_result
        .as_ref()
        .map_or_else(ModeReport::failure, Clone::clone);
    bar.finish();
    if let Some(path) = &plot {
        let title = format!(
            "message latency CDF: loss {}% (burst {}), RTT {} ms, plugin {}",
            config.loss_percent, config.burst, impair.rtt_ms, config.plugin
        );
        demo::plot_latency_cdf(
            path,
            &title,
            &[("plain QUIC", &plain), ("QUIC + FEC", &fec)],
        )?;
        if !json {
            eprintln!("latency CDF written to {}", path.display());
        }
    }
    if json {
        let object = serde_json::json!({
            "plain": plain.to_json(),
            "fec": fec.to_json(),
            "plugin_sha256": fec.plugin_sha256,
            "plugin_fetched": fec.plugin_fetched,
            "loss_percent": config.loss_percent,
            "burst": config.burst,
            "rtt_ms": impair.rtt_ms,
            "seed": config.seed,
            "cc_repaired": format!("{:?}", config.charge_rule),
            "plugin": config.plugin,
        });
        println!("{object}");
    } else {
        println!("\nplugin exchange (QUIC + FEC run):");
        for (i, step) in demo::exchange_steps(&setup, &fec).iter().enumerate() {
            println!("  {}. {step}", i + 1);
        }
        print_table(&config, &plain, &fec);
        print_legend();
    }
    // The main job is the FEC mode: the command fails when it did.
    fec_result.map(|_| ())
}

/// The server's identity: the operator's PEM pair, or the stored
/// self-signed one (still to be written if new).
fn server_identity(args: &ServerArgs) -> pquic_host::Result<(Identity, Option<StoredIdentity>)> {
    match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => Ok((Identity::from_pem_files(cert, key)?, None)),
        _ => {
            let stored = StoredIdentity::load_or_generate(&args.identity_dir, &args.names)?;
            Ok((stored.identity().clone(), Some(stored)))
        }
    }
}

/// The plugin `args` say to offer (none with --no-plugin), signed as they
/// say.
/// The plugin a server offers: `--plugin`, or `default`.
fn server_offer(args: &ServerArgs, default: &str) -> pquic_host::Result<Option<ServerPlugin>> {
    if args.no_plugin {
        return Ok(None);
    }
    let plugin = args.plugin.as_deref().unwrap_or(default);
    let shipped = plugins::SHIPPED.contains(&plugin);
    let key = match &args.sign_key {
        Some(path) => Some(plugins::read_signing_key(path)?),
        // A shipped plugin is signed with this server's own validator
        // key, made once and kept, so clients trust it once.
        None if shipped => {
            let path = default_dir("config").join("validator.key");
            match path.exists() {
                true => Some(plugins::read_signing_key(&path)?),
                false => {
                    let key = plugins::create_signing_key(&path, false)?;
                    eprintln!("new validator key in {}", path.display());
                    Some(key)
                }
            }
        }
        // A package file is offered with its own signatures.
        None => None,
    };
    let (offer, loaded) = plugins::prepare_offer(plugin, key.as_ref())?;
    eprintln!(
        "offering {} {} sha256 {}; signed by validator(s) {}: clients must trust one \
         (pquic-host plugin trust KEY)",
        offer.name,
        offer.version,
        offer.sha256,
        offer.signers.join(", ")
    );
    Ok(Some(ServerPlugin {
        offer,
        plugin: loaded,
    }))
}

/// Once the server bound: writes a new self-signed identity and
/// --cert-out; the certificate's path, for the log line. A failed start
/// leaves both as they were.
fn persist_identity(
    args: &ServerArgs,
    identity: &Identity,
    stored: &mut Option<StoredIdentity>,
) -> pquic_host::Result<String> {
    let certificate = match stored {
        Some(stored) => {
            if stored.is_new() {
                stored.persist()?;
                eprintln!(
                    "new self-signed certificate for {} in {}",
                    args.names.join(", "),
                    stored.cert_path().display()
                );
            }
            stored.cert_path().display().to_string()
        }
        None => args
            .cert
            .as_deref()
            .unwrap_or(Path::new(""))
            .display()
            .to_string(),
    };
    if let Some(out) = &args.cert_out {
        pquic_host::files::write(out, identity.cert().as_ref())?;
    }
    Ok(certificate)
}

async fn server(args: &ServerArgs) -> pquic_host::Result<()> {
    let (identity, mut stored) = server_identity(args)?;
    let offered = server_offer(args, "realtime")?;
    let mut started = Err(Error::NoAddress {
        target: args.listen.clone(),
    });
    for addr in endpoint::resolve(&args.listen).await? {
        started = Server::start(
            addr,
            args.path.impairment(1),
            &identity,
            offered.clone(),
            ChargeRule::default(),
            &args.paths,
            args.multipath,
        );
        if started.is_ok() {
            break;
        }
    }
    let server = started?;
    let certificate = persist_identity(args, &identity, &mut stored)?;
    eprintln!(
        "listening on {}; certificate {certificate} (clients: --ca {certificate}); Ctrl-C or SIGTERM to stop",
        server.addr
    );
    stop_signal().await;
    server.shutdown().await;
    Ok(())
}

async fn client(args: &ClientArgs) -> pquic_host::Result<()> {
    let roots = args.connect.roots()?;
    let plugins = args.connect.plugins()?;
    let bulk = match &args.file {
        Some(f) => BulkSource::Bytes(pquic_host::files::read(f)?.into()),
        None => BulkSource::Generated,
    };
    let workload = WorkloadConfig {
        realtime: Duration::from_secs_f64(args.messages_s),
        bulk: Duration::from_secs_f64(args.bulk_s),
        ..WorkloadConfig::default()
    };
    let bar = Progress::new(false, "client");
    let connect = &args.connect;
    let servers = endpoint::resolve(&connect.connect).await?;
    let server_name = connect
        .server_name
        .as_deref()
        .or_else(|| endpoint::host_name(&connect.connect))
        .unwrap_or("localhost");
    let report = session::run_client(
        connect.bind,
        connect.path.impairment(2),
        &roots,
        &servers,
        server_name,
        Some(plugins),
        ChargeRule::default(),
        &workload,
        bulk,
        &|f| bar.set(f),
        &connect.paths,
    )
    .await?;
    bar.finish();
    let w = &report.workload;
    let verified = w.delivered == w.sent && w.bulk_intact;
    let fec_state = match (&report.plugin_sha256, report.fec_throughout) {
        (None, _) => "off",
        (Some(_), true) => "active",
        (Some(_), false) => "stopped",
    };
    println!(
        "{}",
        serde_json::json!({
            "verified": verified,
            "sent": w.sent,
            "delivered": w.delivered,
            "latency_p50_ms": w.latency_p50_ms,
            "latency_p99_ms": w.latency_p99_ms,
            "datagrams_sent": w.datagrams_sent,
            "datagrams_delivered": w.datagrams_delivered,
            "bulk_bytes": w.bulk_bytes,
            "bulk_sha256_matches": w.bulk_intact,
            "goodput_mbps": w.goodput_mbps,
            "plugin_sha256": report.plugin_sha256,
            "plugin_fetched": report.plugin_fetched,
            "plain_quic_because": report.declined,
            "fec": fec_state,
            "fec_stopped_because": report.fec_stopped,
            "fec_required": connect.require_fec,
            "trusted_validators": report.trusted_by,
            "recovered": report.fec.recovered,
            "paths": pquic_host::multipath::paths_json(&report.paths),
            "path_events": pquic_host::multipath::events_json([
                report.socket.paths_opened,
                report.socket.paths_validated,
                report.socket.paths_failed,
                report.socket.paths_abandoned,
            ]),
        })
    );
    if !verified {
        return Err(Error::Protocol(
            "the server did not receive everything intact".into(),
        ));
    }
    if connect.require_fec && !report.fec_throughout {
        let why = report.declined.as_deref().unwrap_or("FEC was not active");
        return Err(Error::FecRequired(why.to_string()));
    }
    Ok(())
}

/// Ctrl-C (SIGINT) or, on Unix, SIGTERM (what service managers send).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn multipath(args: &MultipathArgs) -> pquic_host::Result<()> {
    use pquic_host::multipath::{self, Arrangement, MultipathConfig};
    let arrangements = if args.only.is_empty() {
        Arrangement::ALL.to_vec()
    } else {
        args.only.clone()
    };
    let config = MultipathConfig {
        rtt: Duration::from_millis(args.rtt_ms),
        loss_percent: args.loss,
        rate_mbps: args.rate_mbps,
        cut_at: Duration::from_secs_f64(args.cut_s),
        seed: args.seed,
        plugin: args.plugin.clone(),
        congestion: args.congestion,
        workload: WorkloadConfig {
            realtime: Duration::from_secs_f64(args.messages_s),
            bulk: Duration::from_secs_f64(args.messages_s / 2.0),
            ..WorkloadConfig::default()
        },
        ..MultipathConfig::default()
    };
    let mut reports = Vec::new();
    for arrangement in arrangements {
        let bar = Progress::new(args.json, arrangement.name());
        let report = multipath::run(&config, arrangement, &|f| bar.set(f)).await?;
        drop(bar);
        if args.json {
            println!("{}", report.to_json());
        }
        reports.push(report);
    }
    if !args.json {
        print!("{}", multipath::table(&reports));
    }
    Ok(())
}

async fn relay(listen: &str, to: &str, path: &PathArgs) -> pquic_host::Result<()> {
    let listen = endpoint::resolve(listen).await?[0];
    let to = endpoint::resolve(to).await?[0];
    let stats = pquic_host::relay::RelayStats::default();
    let run =
        pquic_host::relay::run_with_stats(listen, to, path.config(), path.seed, stats.clone());
    tokio::select! {
        outcome = run => outcome,
        () = stop_signal() => {
            eprintln!("relay stopped: {}", stats.snapshot());
            Ok(())
        }
    }
}

async fn tunnel_server(args: &TunnelServerArgs) -> pquic_host::Result<()> {
    let settings = &args.server;
    let (identity, mut stored) = server_identity(settings)?;
    let offered = server_offer(settings, "tunnel")?;
    let target = match &args.forward {
        Some(forward) => Target::Udp(endpoint::resolve(forward).await?[0]),
        None => Target::Tun(open_tun(&args.tun, args.flows.min_mtu)?),
    };
    let mut builder = ServerBuilder::new(settings.listen.clone());
    builder.identity(identity.clone()).alpn(TUNNEL_ALPN);
    match offered {
        Some(ServerPlugin { offer, plugin }) => builder.offer(offer, plugin),
        None => builder.fec(FecMode::Off),
    };
    if let Some(bytes) = args.flows.min_mtu {
        builder.min_mtu(bytes);
    }
    builder.congestion(args.flows.congestion);
    if let Some(impairment) = settings.path.impairment(1) {
        builder.impairment(impairment);
    }
    for path in &settings.paths {
        builder.path(path.clone());
    }
    builder.multipath(settings.multipath);
    let server = Arc::new(builder.bind().await?);
    let certificate = persist_identity(settings, &identity, &mut stored)?;
    eprintln!(
        "tunnel on {}, {}; certificate {certificate} (clients: --ca \
         {certificate}); Ctrl-C or SIGTERM to stop",
        server.local_addr(),
        match &target {
            Target::Udp(forward) => format!("forwarding to {forward}"),
            Target::Tun(_) => format!("TUN device {}", args.tun.tun.as_deref().unwrap_or("")),
        }
    );
    let counters = Arc::new(Counters::default());
    let serve = async {
        match target {
            Target::Udp(forward) => {
                tunnel::udp::serve(
                    server.clone(),
                    forward,
                    args.flows.config(),
                    counters.clone(),
                )
                .await
            }
            Target::Tun(device) => serve_tun(&server, device, &counters).await,
        }
    };
    tokio::select! {
        () = serve => {}
        () = stop_signal() => {}
    }
    eprintln!(
        "tunnel stopped: {}",
        tunnel_summary(
            &counters.snapshot(),
            &server.socket().socket_stats(),
            &server.socket().total_stats()
        )
    );
    server.shutdown().await;
    Ok(())
}

/// What a tunnel end carries.
enum Target {
    /// UDP to this address (server) or from the client's socket.
    Udp(SocketAddr),
    /// IP packets of a TUN device.
    #[cfg(target_os = "linux")]
    Tun(Arc<tun_rs::AsyncDevice>),
    #[cfg(not(target_os = "linux"))]
    #[allow(dead_code)]
    Tun(std::convert::Infallible),
}

/// The TUN device `args` name, its MTU what a QUIC datagram carries on a
/// path of `min_mtu` (default 1200) after quinn's and our headers.
#[cfg(target_os = "linux")]
fn open_tun(args: &TunArgs, min_mtu: Option<u16>) -> pquic_host::Result<Arc<tun_rs::AsyncDevice>> {
    use pquic_host::tunnel::tun;
    let name = args.tun.as_deref().unwrap_or("pquic0");
    let text = args.address.as_deref().unwrap_or("");
    let address: tun::Cidr = text.parse().map_err(|reason| Error::Tun {
        name: name.to_string(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, reason),
    })?;
    tun::open(name, address, min_mtu.unwrap_or(1200) - TUN_HEADROOM)
}

#[cfg(not(target_os = "linux"))]
fn open_tun(args: &TunArgs, _: Option<u16>) -> pquic_host::Result<std::convert::Infallible> {
    Err(Error::Tun {
        name: args.tun.clone().unwrap_or_default(),
        source: std::io::Error::new(std::io::ErrorKind::Unsupported, "TUN needs Linux"),
    })
}

/// Bytes of a QUIC packet that are not the tunnelled IP packet: flags,
/// connection id (quinn: 8), packet number (at most 4), AEAD tag (16),
/// DATAGRAM frame type and length (quinn's bound: 9), our flow id (1).
const TUN_HEADROOM: u16 = 1 + 8 + 4 + 16 + 9 + 1;

/// A TUN server serves one client at a time: the device is one link.
#[cfg(target_os = "linux")]
async fn serve_tun(
    server: &pquic_host::builder::FecServer,
    device: Arc<tun_rs::AsyncDevice>,
    counters: &Arc<Counters>,
) {
    while let Some(incoming) = server.accept().await {
        let remote = incoming.remote_address();
        let accepted = match incoming.await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("tunnel connection from {remote}: {e}");
                continue;
            }
        };
        tracing::info!("IP tunnel with {remote}: FEC {:?}", accepted.fec.state());
        match tunnel::tun::run(accepted.connection, device.clone(), counters.clone()).await {
            Ok(()) => tracing::info!("IP tunnel with {remote} closed"),
            Err(e) => tracing::warn!("IP tunnel with {remote}: {e}"),
        }
    }
}

#[cfg(not(target_os = "linux"))]
async fn serve_tun(
    _: &pquic_host::builder::FecServer,
    device: std::convert::Infallible,
    _: &Arc<Counters>,
) {
    match device {}
}

/// One line of counters, JSON.
fn tunnel_summary(
    tunnel: &TunnelStats,
    socket: &pquic_host::socket::SocketStats,
    fec: &pquic_host::layer::LayerStats,
) -> serde_json::Value {
    serde_json::json!({
        "tunnel": tunnel,
        "outer_datagrams_sent": socket.sent_datagrams,
        "outer_bytes_sent": socket.sent_bytes,
        "fec_recovered": fec.recovered,
        "fec_repair_bytes": fec.repair_bytes,
    })
}

async fn tunnel_client(args: &TunnelClientArgs) -> pquic_host::Result<()> {
    // Bound first: a taken --udp-listen fails before anything else.
    let (target, socket) = match &args.udp_listen {
        Some(udp_listen) => {
            let udp_listen = endpoint::resolve(udp_listen).await?[0];
            (
                Target::Udp(udp_listen),
                Some(tunnel::udp::bind_udp(udp_listen)?),
            )
        }
        None => (Target::Tun(open_tun(&args.tun, args.flows.min_mtu)?), None),
    };
    let settings = &args.connect;
    let ClientPlugins { cache, trust } = settings.plugins()?;
    let mut builder = ClientBuilder::new();
    builder.roots(settings.roots()?).alpn(TUNNEL_ALPN).fec(
        match (settings.require_fec, settings.no_plugin) {
            (true, _) => FecMode::Required,
            (false, true) => FecMode::Off,
            (false, false) => FecMode::On,
        },
    );
    if let Some(cache) = cache {
        builder.plugins(cache, trust);
    }
    if let Some(bind) = settings.bind {
        builder.bind(bind);
    }
    if let Some(bytes) = args.flows.min_mtu {
        builder.min_mtu(bytes);
    }
    builder.congestion(args.flows.congestion);
    if let Some(name) = &settings.server_name {
        builder.server_name(name);
    }
    if let Some(impairment) = settings.path.impairment(2) {
        builder.impairment(impairment);
    }
    for path in &settings.paths {
        builder.path(path.clone());
    }
    let connection = builder.connect(&settings.connect).await?;
    let fec = connection.fec.clone();
    eprintln!(
        "tunnel from {} through {}: FEC {}; Ctrl-C or SIGTERM to stop",
        match &target {
            Target::Udp(udp_listen) => udp_listen.to_string(),
            Target::Tun(_) => format!("TUN device {}", args.tun.tun.as_deref().unwrap_or("")),
        },
        connection.connection.remote_address(),
        match fec.state() {
            FecState::Active { name, sha256, .. } => format!("on, plugin {name} sha256 {sha256}"),
            FecState::Off { reason } | FecState::Stopped { reason } => format!("off ({reason})"),
            FecState::Negotiating => "negotiating".into(),
        }
    );
    let counters = Arc::new(Counters::default());
    let run = async {
        match (target, socket) {
            (Target::Udp(_), Some(socket)) => {
                tunnel::udp::run_client(
                    connection.connection.clone(),
                    socket,
                    args.flows.config(),
                    counters.clone(),
                )
                .await
            }
            #[cfg(target_os = "linux")]
            (Target::Tun(device), _) => {
                tunnel::tun::run(connection.connection.clone(), device, counters.clone()).await
            }
            _ => Ok(()),
        }
    };
    // With --require-fec the tunnel ends the moment FEC stops.
    let watch = async {
        if !settings.require_fec {
            return std::future::pending().await;
        }
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if let FecState::Stopped { reason } = fec.state() {
                return Err(Error::FecRequired(reason));
            }
        }
    };
    let outcome = tokio::select! {
        outcome = run => outcome,
        outcome = watch => outcome,
        () = stop_signal() => Ok(()),
    };
    eprintln!(
        "tunnel stopped: {}",
        tunnel_summary(
            &counters.snapshot(),
            &fec.socket().socket_stats(),
            &fec.stats()
        )
    );
    connection.close().await;
    outcome
}

async fn tunnel_probe(args: &ProbeArgs) -> pquic_host::Result<()> {
    use pquic_host::tunnel::probe::{self, StreamConfig, StreamReport, TunnelSetup};
    let stream = StreamConfig {
        rate: args.rate,
        size: usize::from(args.size),
        duration: Duration::from_secs_f64(args.duration_s),
        drain: Duration::from_millis(500) + Duration::from_millis(args.path.rtt_ms),
    };
    let setup = TunnelSetup {
        plugin: (args.plugin != "none").then(|| args.plugin.clone()),
        server_impairment: args.path.impairment(1),
        client_impairment: args.path.impairment(2),
        flows: args.flows.config(),
        min_mtu: args.flows.min_mtu,
        congestion: args.flows.congestion,
    };
    let baseline = probe::run_baseline(stream).await?;
    let tunnel = probe::run_tunnel(&setup, stream).await?;
    let path = &args.path;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "rate": args.rate,
                "size": args.size,
                "duration_s": args.duration_s,
                "plugin": args.plugin,
                "loss_percent": path.loss,
                "burst": path.burst,
                "rtt_ms": path.rtt_ms,
                "seed": path.seed,
                "min_mtu": args.flows.min_mtu,
                "baseline": baseline,
                "tunnel": tunnel,
                "tunnel_up_loss": tunnel.stream.up_loss(),
                "tunnel_down_loss": tunnel.stream.down_loss(),
                "outer_bytes_per_payload_byte": tunnel.outer_per_payload(),
            })
        );
        return Ok(());
    }
    println!(
        "{} datagrams/s x {} B for {} s; outer path: loss {}% (mean burst {}) each direction, \
         RTT {} ms, seed {}; plugin {}",
        args.rate,
        args.size,
        args.duration_s,
        path.loss,
        path.burst,
        path.rtt_ms,
        path.seed,
        args.plugin
    );
    println!(
        "{:<10} {:>4} {:>9} {:>8} {:>8} {:>8} {:>10}",
        "", "dir", "loss", "p50 ms", "p99 ms", "max ms", "outer/B"
    );
    let rows = |name: &str, report: &StreamReport, outer: [String; 2]| {
        for (dir, loss, latency, outer) in [
            ("up", report.up_loss(), report.up, &outer[0]),
            ("down", report.down_loss(), report.down, &outer[1]),
        ] {
            println!(
                "{name:<10} {dir:>4} {:>8.3}% {:>8.2} {:>8.2} {:>8.2} {outer:>10}",
                loss * 100.0,
                latency.p50_ms,
                latency.p99_ms,
                latency.max_ms
            );
        }
    };
    let ratio = |outer: u64, payload: u64| match payload {
        0 => "-".to_string(),
        _ => format!("{:.3}", outer as f64 / payload as f64),
    };
    rows("no tunnel", &baseline, ["1.000".into(), "1.000".into()]);
    rows(
        "tunnel",
        &tunnel.stream,
        [
            ratio(
                tunnel.client.outer_bytes,
                tunnel.client.tunnel.tunnelled_bytes,
            ),
            ratio(
                tunnel.server.outer_bytes,
                tunnel.server.tunnel.tunnelled_bytes,
            ),
        ],
    );
    println!(
        "outer bytes per payload byte, both directions: {:.3}; FEC recovered {} (server) + {} \
         (client); too large {}",
        tunnel.outer_per_payload(),
        tunnel.server.recovered,
        tunnel.client.recovered,
        tunnel.client.tunnel.too_large + tunnel.server.tunnel.too_large,
    );
    let quic = &tunnel.client_quic;
    println!(
        "client's quinn: {} packets sent, {} declared lost, {} congestion events, window {} B, \
         RTT {:.2} ms",
        quic.sent_packets,
        quic.lost_packets,
        quic.congestion_events,
        quic.cwnd,
        quic.rtt_us as f64 / 1000.0
    );
    Ok(())
}

fn plugin_command(action: PluginAction) -> pquic_host::Result<()> {
    match action {
        PluginAction::List { store } => {
            let cache = PluginCache::open(&store.cache, DEFAULT_CACHE_BYTES)?;
            for (digest, size) in cache.list()? {
                println!("{digest} {size}");
            }
        }
        PluginAction::Add { file, store } => {
            let bytes = files::read(&file)?;
            let digest = plugins::package_digest(&bytes)?;
            let trust = plugins::load_trust_store(&store.trust)?;
            plugins::verify_package(&bytes, &digest, &trust)
                .map_err(|e| Error::Plugin(format!("{}: {e}", file.display())))?;
            PluginCache::open(&store.cache, DEFAULT_CACHE_BYTES)?.put(&bytes)?;
            println!("{digest}");
        }
        PluginAction::Remove { digest, store } => {
            let removed = PluginCache::open(&store.cache, DEFAULT_CACHE_BYTES)?.remove(&digest)?;
            println!("{}", if removed { "removed" } else { "not cached" });
        }
        PluginAction::Trust { key, store } => {
            fec_plugin_sdk::package::TrustStore::new()
                .add_hex(&key)
                .map_err(|e| Error::Plugin(format!("{key} is not an ed25519 public key: {e}")))?;
            if let Some(dir) = store.trust.parent().filter(|d| !d.as_os_str().is_empty()) {
                files::create_dir_all(dir)?;
            }
            let mut text = match std::fs::read_to_string(&store.trust) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(source) => {
                    return Err(Error::Read {
                        path: store.trust.clone(),
                        source,
                    })
                }
            };
            let already = plugins::load_trust_store(&store.trust)?;
            let trusted = already
                .keys()
                .iter()
                .any(|k| hex::encode(k.as_bytes()).eq_ignore_ascii_case(key.trim()));
            if !trusted {
                text.push_str(key.trim());
                text.push('\n');
                files::write(&store.trust, text.as_bytes())?;
            }
            println!("trusted {} in {}", key.trim(), store.trust.display());
        }
        PluginAction::Keygen { out, force } => {
            let key = plugins::create_signing_key(&out, force)?;
            println!("{}", hex::encode(key.verifying_key().as_bytes()));
        }
        PluginAction::BuildRealtime { key, out } => {
            let bytes = plugins::realtime_package(&plugins::read_signing_key(&key)?)?;
            files::write(&out, &bytes)?;
            println!("{}", plugins::package_digest(&bytes)?);
        }
    }
    Ok(())
}

/// Logs to stderr: colour only on a terminal; `RUST_LOG` overrides the
/// level. Services (server, client, relay) log a line per connection and
/// per plugin activation (info); the demo only warnings, so its table
/// stays readable.
fn init_logging(command: &Command) {
    use std::io::IsTerminal;
    let default = match command {
        Command::Server(_)
        | Command::Client(_)
        | Command::Relay { .. }
        | Command::Tunnel {
            action: TunnelAction::Server(_) | TunnelAction::Client(_),
        } => "warn,pquic_host=info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    init_logging(&cli.command);
    let outcome = match cli.command {
        Command::Demo {
            impair,
            duration_s,
            json,
            cc_repaired,
            plugin,
            plot,
        } => demo(impair, duration_s, json, cc_repaired, plugin, plot).await,
        Command::Server(args) => server(&args).await,
        Command::Client(args) => client(&args).await,
        Command::Relay { listen, to, path } => relay(&listen, &to, &path).await,
        Command::Multipath(args) => multipath(&args).await,
        Command::Tunnel { action } => match action {
            TunnelAction::Server(args) => tunnel_server(&args).await,
            TunnelAction::Client(args) => tunnel_client(&args).await,
            TunnelAction::Probe(args) => tunnel_probe(&args).await,
        },
        Command::Plugin { action } => plugin_command(action),
    };
    if let Err(e) = outcome {
        eprintln!("pquic-host: {e}");
        std::process::exit(1);
    }
}
