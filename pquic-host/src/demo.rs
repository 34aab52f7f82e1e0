//! `pquic-host demo`: the same workload over plain QUIC and over QUIC with
//! FEC, server and client in one process on loopback, both directions
//! impaired by the same seeded model.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::Duration;

use fec_plugin_sdk::package::TrustStore;

use crate::congestion::ChargeRule;
use crate::endpoint::Identity;
use crate::error::Result;
use crate::impair::{ImpairConfig, Impairment, LossModel};
use crate::plugin::{named_package, verify_package, Offer, PluginCache, DEFAULT_CACHE_BYTES};
use crate::session::{run_client, ClientPlugins, Server, ServerPlugin};
use crate::workload::{BulkSource, WorkloadConfig, WorkloadReport};

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
    /// When losses FEC repaired count as congestion.
    pub charge_rule: ChargeRule,
    /// Plugin the server pushes (see [`FecSetup::named`]).
    pub plugin: String,
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
    /// The client's trusted validators that signed the plugin.
    pub plugin_trusted_by: Vec<String>,
    /// Why the FEC mode ran plain QUIC, when it did.
    pub plain_because: Option<String>,
    /// Why the mode did not complete (for instance `timed out: workload`
    /// under heavy loss); `None` when it did.
    pub failed: Option<String>,
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

    /// A mode that did not complete, and why.
    pub fn failure(error: &crate::Error) -> Self {
        ModeReport {
            failed: Some(error.to_string()),
            ..ModeReport::default()
        }
    }

    /// The JSON object of the demo's contract; `outcome` is `ok` or why the
    /// mode did not complete (its figures are then 0).
    pub fn to_json(&self) -> serde_json::Value {
        let w = &self.workload;
        serde_json::json!({
            "outcome": self.failed.as_deref().unwrap_or("ok"),
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
    /// The server's plugin.
    pub server: ServerPlugin,
    /// The client's cache and trust store.
    pub client: ClientPlugins,
}

impl FecSetup {
    /// The shipped `realtime` plugin signed by a fresh validator the client
    /// trusts, and an empty client cache in `cache_dir` (so the client must
    /// fetch the plugin over the connection).
    pub fn realtime(cache_dir: &std::path::Path) -> Result<Self> {
        Self::named("realtime", cache_dir)
    }

    /// Like [`realtime`](Self::realtime) for any plugin of this crate
    /// (`realtime`) or of `fec-plugins` (`adaptive`, `rlc-window`,
    /// `rs-block`).
    pub fn named(name: &str, cache_dir: &std::path::Path) -> Result<Self> {
        let validator = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let bytes = named_package(name, &validator)?
            .ok_or_else(|| crate::Error::Plugin(format!("no shipped plugin named {name}")))?;
        let offer = Offer::new(bytes)?;
        let mut trust = TrustStore::new();
        trust.add(validator.verifying_key());
        let plugin = verify_package(&offer.bytes, &offer.sha256, &trust)?;
        Ok(Self {
            server: ServerPlugin { offer, plugin },
            client: ClientPlugins {
                cache: Some(PluginCache::open(cache_dir, DEFAULT_CACHE_BYTES)?),
                trust,
            },
        })
    }
}

/// Runs the workload once: plain QUIC when `fec` is `None`, otherwise with
/// the plugin exchange first and FEC on wherever it succeeded.
pub async fn run_mode(
    config: &DemoConfig,
    fec: Option<FecSetup>,
    progress: &(dyn Fn(f64) + Sync),
) -> Result<ModeReport> {
    let identity = Identity::generate()?;
    let (server_plugin, client_plugins) = match fec {
        Some(setup) => (Some(setup.server), Some(setup.client)),
        None => (None, None),
    };
    let server = Server::start(
        loopback(),
        Some(config.impairment(1)),
        &identity,
        server_plugin,
        config.charge_rule,
        &[],
        false,
    )?;
    let client = run_client(
        Some(loopback()),
        Some(config.impairment(2)),
        &identity.roots()?,
        &[server.addr],
        "localhost",
        client_plugins,
        config.charge_rule,
        &config.workload,
        BulkSource::Generated,
        progress,
        &[],
    )
    .await;
    let server_stats = server.socket.total_stats();
    let server_lost = server.lost_packets();
    server.shutdown().await;
    let client = client?;
    let both = client.fec.sum(server_stats);
    Ok(ModeReport {
        workload: client.workload,
        recovered: both.recovered,
        retransmitted: client.lost_packets + server_lost,
        repair_bytes: both.repair_bytes,
        source_bytes: both.source_bytes,
        plugin_sha256: client.plugin_sha256,
        plugin_fetched: client.plugin_fetched,
        plugin_trusted_by: client.trusted_by,
        plain_because: client.declined,
        failed: None,
    })
}

/// Plain QUIC: pass-through layers on both ends.
pub async fn run_plain(config: &DemoConfig, progress: &(dyn Fn(f64) + Sync)) -> Result<ModeReport> {
    run_mode(config, None, progress).await
}

/// QUIC with the configured plugin pushed to a client with an empty cache.
pub async fn run_fec(config: &DemoConfig, progress: &(dyn Fn(f64) + Sync)) -> Result<ModeReport> {
    let cache_dir = demo_cache_dir(config);
    let setup = FecSetup::named(&config.plugin, &cache_dir)?;
    run_fec_with(config, setup, progress).await
}

/// Where [`run_fec`] keeps the client's (emptied) cache.
pub fn demo_cache_dir(config: &DemoConfig) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "pquic-host-demo-cache-{}-{}",
        std::process::id(),
        config.seed
    ))
}

/// [`run_fec`] with a prepared setup (its cache directory is emptied first
/// and removed after).
pub async fn run_fec_with(
    config: &DemoConfig,
    setup: FecSetup,
    progress: &(dyn Fn(f64) + Sync),
) -> Result<ModeReport> {
    let cache_dir = demo_cache_dir(config);
    let _ = std::fs::remove_dir_all(&cache_dir);
    let setup = FecSetup {
        client: ClientPlugins {
            cache: Some(PluginCache::open(&cache_dir, DEFAULT_CACHE_BYTES)?),
            ..setup.client
        },
        ..setup
    };
    let report = run_mode(config, Some(setup), progress).await;
    let _ = std::fs::remove_dir_all(&cache_dir);
    report
}

/// The plugin exchange of a FEC run, step by step, for people: what the
/// server offered, where the client got the bytes, whose signature it
/// trusted, what the static verifier accepted, and the outcome.
pub fn exchange_steps(setup: &FecSetup, fec: &ModeReport) -> Vec<String> {
    let offer = &setup.server.offer;
    let short = |key: &str| format!("{}...", &key[..key.len().min(16)]);
    let mut steps = vec![format!(
        "offer     server offers {} {} ({} bytes), sha256 {}, signed by {}",
        offer.name,
        offer.version,
        offer.bytes.len(),
        offer.sha256,
        offer
            .signers
            .iter()
            .map(|k| short(k))
            .collect::<Vec<_>>()
            .join(", ")
    )];
    let Some(sha) = &fec.plugin_sha256 else {
        steps.push(format!(
            "outcome   not activated: {}; the FEC column is plain QUIC",
            fec.plain_because
                .as_deref()
                .or(fec.failed.as_deref())
                .unwrap_or("unknown")
        ));
        return steps;
    };
    steps.push(if fec.plugin_fetched {
        format!(
            "cache     the client had no copy of {}: fetched it over the connection",
            short(sha)
        )
    } else {
        format!(
            "cache     the client had {} cached and used its copy",
            short(sha)
        )
    });
    steps.push(format!(
        "trust     signature by trusted validator {} verifies; digest matches the offer",
        fec.plugin_trusted_by
            .iter()
            .map(|k| short(k))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if let Ok(package) = fec_plugin_sdk::package::Package::parse(&offer.bytes) {
        let pluglets: Vec<String> = package
            .manifest
            .pluglets
            .iter()
            .map(|p| format!("{} ({} instructions)", p.name, p.code.len() / 8))
            .collect();
        steps.push(format!(
            "verifier  accepted {} pluglet(s): {}; {} helper(s) declared; {} bytes of instance memory",
            pluglets.len(),
            pluglets.join(", "),
            package.manifest.helpers.len(),
            package.manifest.memory_size
        ));
    }
    steps.push(format!(
        "active    both ends protect their packets with {}",
        setup.server.plugin.name()
    ));
    steps
}

/// Writes an SVG plot of the message latency CDF of each mode that
/// completed (`modes`: label and report) to `path`.
pub fn plot_latency_cdf(
    path: &std::path::Path,
    title: &str,
    modes: &[(&str, &ModeReport)],
) -> Result<()> {
    use plotters::prelude::*;
    let plot_error = |e: String| crate::Error::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    };
    let series: Vec<(&str, &[f64])> = modes
        .iter()
        .filter(|(_, m)| m.failed.is_none() && !m.workload.latency_cdf_ms.is_empty())
        .map(|(label, m)| (*label, &m.workload.latency_cdf_ms[..]))
        .collect();
    let max = series
        .iter()
        .filter_map(|(_, v)| v.last().copied())
        .fold(1.0f64, f64::max)
        * 1.05;
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..max, 0.0..1.0)
        .map_err(|e| plot_error(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("message latency (ms), send to delivery")
        .y_desc("fraction of messages delivered within")
        .draw()
        .map_err(|e| plot_error(e.to_string()))?;
    let colours = [RGBColor(31, 119, 180), RGBColor(214, 39, 40)];
    for (i, (label, values)) in series.iter().enumerate() {
        let colour = colours[i % colours.len()];
        let n = values.len() as f64;
        let points = values
            .iter()
            .enumerate()
            .map(|(k, &latency)| (latency, (k + 1) as f64 / n));
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(|e| plot_error(e.to_string()))?
            .label(*label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| plot_error(e.to_string()))?;
    root.present().map_err(|e| plot_error(e.to_string()))?;
    Ok(())
}
