//! The stacks the QUIC benchmark runs, each from a fresh server and client:
//! stock quinn and noq with their defaults, and `pquic-host` with FEC off or
//! with a shipped plugin (`realtime` unless the caller names another) pushed
//! to the client.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pquic_host::builder::{ClientBuilder, FecMode, ServerBuilder};
use pquic_host::identity::Identity;
use pquic_host::impair::ImpairConfig;
use pquic_host::plugin::{prepare_offer, PluginCache, DEFAULT_CACHE_BYTES};

use super::workload::{BulkReceipt, Done, Latencies};
use super::{noq_workload, process_cpu_seconds, quinn_workload, BenchError};

/// A QUIC stack under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// quinn 0.11 as an application would use it: `Endpoint::server` and
    /// `Endpoint::client` on its own UDP sockets (GSO, GRO), default
    /// transport settings.
    Quinn,
    /// noq 1.x (the quinn fork maintained for iroh) the same way: its own
    /// `Endpoint::server` and `Endpoint::client` on its own UDP sockets (GSO,
    /// GRO), default transport settings, so one path (multipath is off by
    /// default).
    Noq,
    /// `pquic-host`'s endpoint (the FEC socket adapter under quinn) with FEC
    /// off at both ends.
    FecOff,
    /// `pquic-host` with a shipped plugin active at both ends.
    Plugin,
}

impl Stack {
    /// Every stack, in report order.
    pub const ALL: [Stack; 4] = [Stack::Quinn, Stack::Noq, Stack::FecOff, Stack::Plugin];

    /// The name in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Stack::Quinn => "quinn",
            Stack::Noq => "noq",
            Stack::FecOff => "fec-off",
            Stack::Plugin => "plugin",
        }
    }

    /// The stack named `name`.
    pub fn from_name(name: &str) -> Option<Stack> {
        Stack::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// What one run does once connected.
#[derive(Debug, Clone)]
pub enum Job {
    /// Send these bytes on one stream.
    Bulk(Bytes),
    /// `count` messages of `size` bytes at `rate` per second.
    Messages {
        /// Messages per second.
        rate: u32,
        /// Payload bytes.
        size: usize,
        /// How many.
        count: u64,
    },
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The bulk receipt (bulk jobs).
    pub bulk: Option<BulkReceipt>,
    /// Message latencies (message jobs).
    pub latencies: Option<Latencies>,
    /// Process CPU seconds spent in the job (both ends, and the relay when
    /// there is one).
    pub cpu_seconds: f64,
    /// Source packets recovered by FEC (both ends; 0 without FEC).
    pub recovered: u64,
    /// Repair bytes / source bytes sent (both ends; 0 without FEC).
    pub repair_share: f64,
}

/// The path between client and server: direct, or through an impairing
/// relay (each direction seeded from `seed`).
#[derive(Debug, Clone)]
pub struct PathConfig {
    /// The relay's impairment; `None` for a direct path.
    pub impairment: Option<ImpairConfig>,
    /// Seed of the impairment.
    pub seed: u64,
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A free loopback port for the relay (bound, read and released: the relay
/// binds it again at once).
fn free_port() -> Result<SocketAddr, BenchError> {
    Ok(std::net::UdpSocket::bind(loopback())?.local_addr()?)
}

/// Starts the relay towards `server` when the path has one; the address a
/// client connects to, and the relay's task.
async fn start_path(
    path: &PathConfig,
    server: SocketAddr,
) -> Result<(SocketAddr, Option<tokio::task::JoinHandle<()>>), BenchError> {
    let Some(config) = path.impairment.clone() else {
        return Ok((server, None));
    };
    let listen = free_port()?;
    let seed = path.seed;
    let task = tokio::spawn(async move {
        if let Err(e) = pquic_host::relay::run(listen, server, config, seed).await {
            eprintln!("relay on {listen} failed: {e}");
        }
    });
    // The relay binds on its first poll.
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    Ok((listen, Some(task)))
}

type Shared = Arc<Mutex<Vec<f64>>>;

/// Measures `work`, the client side of `job` (the CPU it takes, and the
/// latencies the server recorded meanwhile).
async fn measure(
    work: impl Future<Output = Result<Done, BenchError>>,
    latencies: &Shared,
) -> Result<Outcome, BenchError> {
    let cpu = process_cpu_seconds()?;
    let mut outcome = Outcome {
        bulk: None,
        latencies: None,
        cpu_seconds: 0.0,
        recovered: 0,
        repair_share: 0.0,
    };
    match work.await? {
        Done::Bulk(receipt) => outcome.bulk = Some(receipt),
        Done::Messages { sent, delivered } => {
            let mut ms = latencies.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if delivered != ms.len() as u64 {
                return Err(BenchError::Protocol(format!(
                    "server counted {delivered} messages but timed {}",
                    ms.len()
                )));
            }
            ms.sort_by(f64::total_cmp);
            outcome.latencies = Some(Latencies { sent, ms });
        }
    }
    outcome.cpu_seconds = process_cpu_seconds()? - cpu;
    Ok(outcome)
}

/// Runs `job` once on `stack` over `path`, within `deadline`; `plugin` names
/// the shipped plugin of [`Stack::Plugin`] (`realtime`, `adaptive`,
/// `rlc-window`, `rs-block`).
pub async fn run(
    stack: Stack,
    job: &Job,
    path: &PathConfig,
    plugin: &str,
    deadline: Duration,
) -> Result<Outcome, BenchError> {
    match tokio::time::timeout(deadline, run_unbounded(stack, job, path, plugin)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(BenchError::Timeout(deadline)),
    }
}

async fn run_unbounded(
    stack: Stack,
    job: &Job,
    path: &PathConfig,
    plugin: &str,
) -> Result<Outcome, BenchError> {
    match stack {
        Stack::Quinn => run_quinn(job, path).await,
        Stack::Noq => run_noq(job, path).await,
        Stack::FecOff => run_pquic(None, job, path).await,
        Stack::Plugin => run_pquic(Some(plugin), job, path).await,
    }
}

/// One body for the stock stacks, whose APIs are the same: `$run` runs a job
/// on a fresh `$stack` server and client, as an application would set them
/// up (`Endpoint::server` and `Endpoint::client`, default configurations, the
/// same identity as `pquic-host`), with the workloads of `$workload`.
macro_rules! stock_stack {
    ($run:ident, $stack:ident, $workload:ident) => {
        async fn $run(job: &Job, path: &PathConfig) -> Result<Outcome, BenchError> {
            let identity = Identity::generate()?;
            let config =
                $stack::ServerConfig::with_single_cert(identity.chain().to_vec(), identity.key())
                    .map_err(BenchError::quic)?;
            let server = $stack::Endpoint::server(config, loopback())?;
            let server_addr = server.local_addr()?;
            let epoch = Instant::now();
            let latencies = Shared::default();
            let accepting = {
                let server = server.clone();
                let latencies = latencies.clone();
                tokio::spawn(async move {
                    while let Some(incoming) = server.accept().await {
                        let latencies = latencies.clone();
                        tokio::spawn(async move {
                            if let Ok(connection) = incoming.await {
                                $workload::serve(connection, epoch, latencies).await;
                            }
                        });
                    }
                })
            };
            let (target, relay) = start_path(path, server_addr).await?;
            let client = $stack::Endpoint::client(loopback())?;
            let client_config =
                $stack::ClientConfig::with_root_certificates(Arc::new(identity.roots()?))
                    .map_err(BenchError::quic)?;
            let outcome = async {
                let connection = client
                    .connect_with(client_config, target, "localhost")
                    .map_err(BenchError::quic)?
                    .await
                    .map_err(BenchError::quic)?;
                let outcome = measure($workload::run(&connection, job, epoch), &latencies).await;
                connection.close(0u32.into(), b"done");
                outcome
            }
            .await;
            client.wait_idle().await;
            server.close(0u32.into(), b"done");
            accepting.abort();
            if let Some(relay) = relay {
                relay.abort();
            }
            outcome
        }
    };
}

stock_stack!(run_quinn, quinn, quinn_workload);
stock_stack!(run_noq, noq, noq_workload);

async fn run_pquic(
    plugin: Option<&str>,
    job: &Job,
    path: &PathConfig,
) -> Result<Outcome, BenchError> {
    let identity = Identity::generate()?;
    let validator = ed25519_dalek::SigningKey::from_bytes(&[0x51; 32]);
    let mut server = ServerBuilder::new("127.0.0.1:0");
    server.identity(identity.clone());
    if let Some(name) = plugin {
        let (offer, verified) = prepare_offer(name, Some(&validator))?;
        server.offer(offer, verified).fec(FecMode::Required);
    } else {
        server.fec(FecMode::Off);
    }
    let server = Arc::new(server.bind_addr(loopback())?);
    let server_addr = server.local_addr();
    let epoch = Instant::now();
    let latencies = Shared::default();
    let server_stats: Arc<Mutex<Vec<pquic_host::builder::FecHandle>>> = Arc::default();
    let accepting = {
        let server = server.clone();
        let latencies = latencies.clone();
        let server_stats = server_stats.clone();
        tokio::spawn(async move {
            while let Some(incoming) = server.accept().await {
                let latencies = latencies.clone();
                let server_stats = server_stats.clone();
                tokio::spawn(async move {
                    if let Ok(accepted) = incoming.await {
                        server_stats
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(accepted.fec.clone());
                        quinn_workload::serve(accepted.connection, epoch, latencies).await;
                    }
                });
            }
        })
    };
    let (target, relay) = start_path(path, server_addr).await?;
    let cache_dir = tempfile::tempdir()?;
    let mut client = ClientBuilder::new();
    client.roots(identity.roots()?);
    if plugin.is_some() {
        let mut trust = fec_plugin_sdk::package::TrustStore::new();
        trust.add(validator.verifying_key());
        client
            .plugins(
                PluginCache::open(cache_dir.path(), DEFAULT_CACHE_BYTES)?,
                trust,
            )
            .fec(FecMode::Required);
    } else {
        client.fec(FecMode::Off);
    }
    let outcome = async {
        let connection = client.connect_addrs(&[target], "localhost").await?;
        let mut outcome = measure(
            quinn_workload::run(&connection.connection, job, epoch),
            &latencies,
        )
        .await;
        if let Ok(outcome) = outcome.as_mut() {
            let handles = server_stats
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let both = handles
                .iter()
                .fold(connection.fec.stats(), |acc, h| acc.sum(h.stats()));
            outcome.recovered = both.recovered;
            outcome.repair_share = both.repair_bytes as f64 / both.source_bytes.max(1) as f64;
        }
        connection.close().await;
        outcome
    }
    .await;
    server.shutdown().await;
    accepting.abort();
    if let Some(relay) = relay {
        relay.abort();
    }
    outcome
}
