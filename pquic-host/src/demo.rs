//! `pquic-host demo`: the same workload over plain QUIC and over QUIC with
//! FEC, server and client in one process on loopback, both directions
//! impaired by the same seeded model.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::endpoint::{self, Identity, SocketOptions};
use crate::error::{Error, Result};
use crate::impair::{ImpairConfig, Impairment, LossModel};
use crate::socket::{pass_through_factory, LayerFactory};
use crate::workload::{self, BulkSource, WorkloadConfig, WorkloadReport};

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

/// Runs the workload once with the given layer factories on both ends.
pub async fn run_mode(
    config: &DemoConfig,
    server_layers: LayerFactory,
    client_layers: LayerFactory,
    progress: &(dyn Fn(f64) + Sync),
) -> Result<ModeReport> {
    let identity = Identity::generate()?;
    let (server, server_socket) = endpoint::server(
        SocketOptions {
            bind: loopback(),
            factory: server_layers,
            impairment: Some(config.impairment(1)),
        },
        &identity,
    )?;
    let server_addr = server_socket.local_addr()?;
    let server_connection: Arc<Mutex<Option<quinn::Connection>>> = Arc::default();
    let slot = server_connection.clone();
    let accept = tokio::spawn(async move {
        if let Some(incoming) = server.accept().await {
            match incoming.await {
                Ok(connection) => {
                    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(connection.clone());
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
            factory: client_layers,
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
        ..ModeReport::default()
    })
}

/// Plain QUIC: pass-through layers on both ends.
pub async fn run_plain(config: &DemoConfig, progress: &(dyn Fn(f64) + Sync)) -> Result<ModeReport> {
    run_mode(
        config,
        pass_through_factory(),
        pass_through_factory(),
        progress,
    )
    .await
}

/// QUIC with FEC on both ends.
pub async fn run_fec(config: &DemoConfig, progress: &(dyn Fn(f64) + Sync)) -> Result<ModeReport> {
    let factory: LayerFactory = Arc::new(|_| {
        Box::new(crate::fec::ProtectedLayer::native_xor(
            crate::fec::RepairedLosses::default(),
        ))
    });
    run_mode(config, factory.clone(), factory, progress).await
}
