//! `pquic-host demo`: the same workload over plain QUIC and over QUIC with
//! FEC, server and client in one process on loopback, both directions
//! impaired by the same seeded model.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::endpoint::{self, Identity, SocketOptions};
use crate::error::{Error, Result};
use crate::fec::{CodeChoice, ProtectedLayer, RepairedLosses};
use crate::impair::{ImpairConfig, Impairment, LossModel};
use crate::plugin::{
    accept_plugin, offer_plugin, realtime_package, verify_package, Offer, Outcome, PluginCache,
    PluginPolicy, DEFAULT_CACHE_BYTES,
};
use crate::socket::{pass_through_factory, LayerFactory};
use crate::workload::{self, BulkSource, WorkloadConfig, WorkloadReport};
use fec_plugin_sdk::package::TrustStore;
use fec_plugin_sdk::runtime::Plugin;

/// Impairment and workload of a demo run.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Random loss per direction, in percent.
    pub loss_percent: f64,
    /// Mean loss burst length; Gilbert-Elliott when > 1.
    pub burst: f64,
    /// Round-trip time added by the emulated path.
    pub rtt: Duration,
    /// Seed of the impairment.
    pub seed: u64,
    /// What the client sends.
    pub workload: WorkloadConfig,
}

impl DemoConfig {
    /// The impairment of one direction (half the RTT each way).
    pub fn impairment(&self, direction: u64) -> Impairment {
        let config = ImpairConfig {
            loss: LossModel::from_percent(self.loss_percent, self.burst),
            delay: self.rtt / 2,
            ..ImpairConfig::default()
        };
        Impairment::new(config, self.seed.wrapping_mul(2).wrapping_add(direction))
    }
}

/// Results of one mode.
#[derive(Debug, Clone, Default)]
pub struct ModeReport {
    /// What the workload measured.
    pub workload: WorkloadReport,
    /// Packets rebuilt by FEC (both directions).
    pub recovered: u64,
    /// Packets quinn declared lost (both directions), each one retransmitted
    /// if it carried retransmittable frames.
    pub retransmitted: u64,
    /// Repair bytes sent.
    pub repair_bytes: u64,
    /// Bytes of QUIC packets protected.
    pub source_bytes: u64,
    /// SHA-256 of the FEC plugin in use, if any.
    pub plugin_sha256: Option<String>,
    /// True when the client had to fetch the plugin over the connection.
    pub plugin_fetched: bool,
}

impl ModeReport {
    /// Repair bytes per protected byte.
    pub fn redundancy(&self) -> f64 {
        if self.source_bytes == 0 {
            0.0
        } else {
            self.repair_bytes as f64 / self.source_bytes as f64
        }
    }

    /// The JSON object of the demo's contract.
    pub fn to_json(&self) -> serde_json::Value {
        let w = &self.workload;
        serde_json::json!({
            "sent": w.sent,
            "delivered": w.delivered,
            "latency_p50_ms": round3(w.latency_p50_ms),
            "latency_p99_ms": round3(w.latency_p99_ms),
            "latency_max_ms": round3(w.latency_max_ms),
            "recovered": self.recovered,
            "retransmitted": self.retransmitted,
            "datagrams_sent": w.datagrams_sent,
            "datagrams_delivered": w.datagrams_delivered,
            "goodput_mbps": round3(w.goodput_mbps),
            "bulk_bytes": w.bulk_bytes,
            "bulk_intact": w.bulk_intact,
            "redundancy": round3(self.redundancy()),
        })
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The FEC side of a run: what the server offers and how the client judges it.
#[derive(Debug, Clone)]
pub struct FecSetup {
    /// The server's offer.
    pub offer: Offer,
    /// The plugin as the server loaded it.
    pub server_plugin: Plugin,
    /// The client's cache (`None`: the client runs no plugins).
    pub client_cache: Option<PluginCache>,
    /// The client's trust store.
    pub client_trust: TrustStore,
}

impl FecSetup {
    /// The shipped `realtime` plugin signed by a fresh validator the client
    /// trusts, and an empty client cache in `cache_dir` (so the client must
    /// fetch the plugin over the connection).
    pub fn realtime(cache_dir: &std::path::Path) -> Result<Self> {
        let validator = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let bytes = realtime_package(&validator)?;
        let offer = Offer::new(bytes)?;
        let mut trust = TrustStore::new();
        trust.add(validator.verifying_key());
        let server_plugin = verify_package(&offer.bytes, &offer.sha256, &trust)?;
        Ok(Self {
            offer,
            server_plugin,
            client_cache: Some(PluginCache::open(cache_dir, DEFAULT_CACHE_BYTES)?),
            client_trust: trust,
        })
    }
}

/// A layer protecting under a freshly configured instance of `plugin`.
pub fn plugin_layer(plugin: &Plugin) -> Box<dyn crate::layer::FecLayer> {
    let (policy, plan) = PluginPolicy::new(plugin, std::time::Instant::now());
    let mut layer = ProtectedLayer::new(
        Box::new(policy),
        CodeChoice::default(),
        RepairedLosses::default(),
    );
    layer.apply_plan(plan);
    Box::new(layer)
}

fn receive_only_factory() -> LayerFactory {
    Arc::new(|_| Box::new(ProtectedLayer::receive_only()))
}

/// Runs the workload once: plain QUIC when `fec` is `None`, otherwise with
/// the plugin exchange first and FEC on wherever it succeeded.
pub async fn run_mode(
    config: &DemoConfig,
    fec: Option<FecSetup>,
    progress: &(dyn Fn(f64) + Sync),
) -> Result<ModeReport> {
    let factory = if fec.is_some() {
        receive_only_factory()
    } else {
        pass_through_factory()
    };
    let identity = Identity::generate()?;
    let (server, server_socket) = endpoint::server(
        SocketOptions {
            bind: loopback(),
            factory: factory.clone(),
            impairment: Some(config.impairment(1)),
        },
        &identity,
    )?;
    let server_addr = server_socket.local_addr()?;
    let server_connection: Arc<Mutex<Option<quinn::Connection>>> = Arc::default();
    let slot = server_connection.clone();
    let server_fec = fec.clone();
    let server_layers = server_socket.clone();
    let accept = tokio::spawn(async move {
        if let Some(incoming) = server.accept().await {
            match incoming.await {
                Ok(connection) => {
                    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(connection.clone());
                    if let Some(setup) = server_fec {
                        match offer_plugin(&connection, &setup.offer, &setup.server_plugin).await {
                            Ok(Outcome::Active { plugin, .. }) => server_layers
                                .set_layer(connection.remote_address(), plugin_layer(&plugin)),
                            Ok(Outcome::Declined(reason)) => {
                                tracing::warn!("server: plain QUIC: {reason}")
                            }
                            Err(e) => tracing::warn!("server: plugin exchange failed: {e}"),
                        }
                    }
                    if let Err(e) = workload::serve_connection(connection).await {
                        tracing::warn!("server connection: {e}");
                    }
                }
                Err(e) => tracing::warn!("server handshake: {e}"),
            }
        }
        server
    });
    let (client, client_socket) = endpoint::client(
        SocketOptions {
            bind: loopback(),
            factory,
            impairment: Some(config.impairment(2)),
        },
        &identity.cert,
    )?;
    let connection = tokio::time::timeout(
        Duration::from_secs(10),
        endpoint::connect(&client, server_addr),
    )
    .await
    .map_err(|_| Error::Timeout("handshake"))??;
    let mut plugin_sha256 = None;
    let mut plugin_fetched = false;
    if let Some(setup) = &fec {
        let exchange = accept_plugin(
            &connection,
            setup.client_cache.as_ref(),
            &setup.client_trust,
        );
        match tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .map_err(|_| Error::Timeout("plugin exchange"))??
        {
            Outcome::Active { plugin, fetched } => {
                client_socket.set_layer(server_addr, plugin_layer(&plugin));
                plugin_sha256 = Some(hex::encode(plugin.digest()));
                plugin_fetched = fetched;
            }
            Outcome::Declined(reason) => tracing::warn!("client: plain QUIC: {reason}"),
        }
    }
    let budget = config.workload.realtime + config.workload.bulk + Duration::from_secs(30);
    let report = tokio::time::timeout(
        budget,
        workload::run_client(
            &connection,
            &config.workload,
            BulkSource::Generated,
            progress,
        ),
    )
    .await
    .map_err(|_| Error::Timeout("workload"))??;
    let mut retransmitted = connection.stats().path.lost_packets;
    if let Some(server_side) = server_connection
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
    {
        retransmitted += server_side.stats().path.lost_packets;
    }
    connection.close(0u32.into(), b"done");
    client.wait_idle().await;
    if let Ok(server) = accept.await {
        server.close(0u32.into(), b"done");
    }
    let (c, s) = (client_socket.total_stats(), server_socket.total_stats());
    Ok(ModeReport {
        workload: report,
        recovered: c.recovered + s.recovered,
        retransmitted,
        repair_bytes: c.repair_bytes + s.repair_bytes,
        source_bytes: c.source_bytes + s.source_bytes,
        plugin_sha256,
        plugin_fetched,
    })
}

/// Plain QUIC: pass-through layers on both ends.
pub async fn run_plain(config: &DemoConfig, progress: &(dyn Fn(f64) + Sync)) -> Result<ModeReport> {
    run_mode(config, None, progress).await
}

/// QUIC with the `realtime` plugin pushed to a client with an empty cache.
pub async fn run_fec(config: &DemoConfig, progress: &(dyn Fn(f64) + Sync)) -> Result<ModeReport> {
    let cache_dir = std::env::temp_dir().join(format!(
        "pquic-host-demo-cache-{}-{}",
        std::process::id(),
        config.seed
    ));
    let _ = std::fs::remove_dir_all(&cache_dir);
    let setup = FecSetup::realtime(&cache_dir)?;
    let report = run_mode(config, Some(setup), progress).await;
    let _ = std::fs::remove_dir_all(&cache_dir);
    report
}
