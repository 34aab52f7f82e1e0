//! The multipath probe (`pquic-host multipath`): server and client in one
//! process over two emulated paths on loopback, the same workload under
//! each arrangement in turn, and a table to compare them.
//!
//! Path A runs between 127.0.0.1 addresses (quinn's own sockets, path 0),
//! path B from the client's 127.0.0.3 to the server's 127.0.0.2 (the extra
//! sockets, path 1). Each socket impairs what it receives ([`Impairment`]:
//! half the round trip, loss, a rate limit), so each path is impaired both
//! ways and independently of the other. Cutting a path means cutting the
//! server's socket of it ([`crate::socket::FecSocketHandle::set_down`]):
//! nothing in either direction gets through.
//!
//! Arrangements, one run each, same seeds:
//! - `clean-alone`: path A only (clean), FEC;
//! - `lossy-fec`: path B's impairment alone (lossy), FEC;
//! - `multipath-plain`: both paths, no FEC;
//! - `multipath-fec`: both paths, FEC;
//! - `multipath-cut`: both paths, FEC, path A (the clean one) cut part-way;
//! - `bulk-single` / `bulk-multipath`: both paths clean and rate-limited,
//!   bulk only, one path versus both.

#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use fec_core::layer::paths::PathView;

use crate::builder::PathSpec;
use crate::congestion::{Algorithm, ChargeRule, Congestion};
use crate::demo::FecSetup;
use crate::identity::Identity;
use crate::impair::{ImpairConfig, Impairment, LossModel};
use crate::session::{run_client, ClientPlugins, Server, ServerPlugin};
use crate::workload::{BulkSource, WorkloadConfig, WorkloadReport};
use crate::Result;

/// The two paths and the workload.
#[derive(Debug, Clone)]
pub struct MultipathConfig {
    /// Round trip of each path.
    pub rtt: Duration,
    /// Loss per direction of the lossy path B, in percent.
    pub loss_percent: f64,
    /// Rate limit of each path in the bulk arrangements, Mbit/s.
    pub rate_mbps: f64,
    /// When the clean path is cut in `multipath-cut`.
    pub cut_at: Duration,
    /// Seed of the impairments.
    pub seed: u64,
    /// Plugin the server pushes in the FEC arrangements.
    pub plugin: String,
    /// The QUIC connection's congestion controller.
    pub congestion: Algorithm,
    /// Messages at 100/s plus bulk, in the message arrangements.
    pub workload: WorkloadConfig,
    /// Seconds of bulk in the bulk arrangements.
    pub bulk: Duration,
}

impl Default for MultipathConfig {
    fn default() -> Self {
        MultipathConfig {
            rtt: Duration::from_millis(20),
            loss_percent: 10.0,
            rate_mbps: 20.0,
            cut_at: Duration::from_secs(3),
            seed: 1,
            plugin: "multipath".into(),
            congestion: Algorithm::Cubic,
            workload: WorkloadConfig::default(),
            bulk: Duration::from_secs(5),
        }
    }
}

/// One arrangement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrangement {
    /// Path A alone, clean, with FEC.
    CleanAlone,
    /// The lossy path alone, with FEC.
    LossyFec,
    /// Both paths, no FEC.
    MultipathPlain,
    /// Both paths, FEC.
    MultipathFec,
    /// Both paths, FEC, the clean one cut part-way.
    MultipathCut,
    /// Bulk over one clean rate-limited path.
    BulkSingle,
    /// Bulk over two clean rate-limited paths.
    BulkMultipath,
}

impl Arrangement {
    /// Every arrangement, in the order they run.
    pub const ALL: [Arrangement; 7] = [
        Arrangement::CleanAlone,
        Arrangement::LossyFec,
        Arrangement::MultipathPlain,
        Arrangement::MultipathFec,
        Arrangement::MultipathCut,
        Arrangement::BulkSingle,
        Arrangement::BulkMultipath,
    ];

    /// Its name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Arrangement::CleanAlone => "clean-alone",
            Arrangement::LossyFec => "lossy-fec",
            Arrangement::MultipathPlain => "multipath-plain",
            Arrangement::MultipathFec => "multipath-fec",
            Arrangement::MultipathCut => "multipath-cut",
            Arrangement::BulkSingle => "bulk-single",
            Arrangement::BulkMultipath => "bulk-multipath",
        }
    }

    /// The arrangement called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    fn is_bulk(self) -> bool {
        matches!(self, Arrangement::BulkSingle | Arrangement::BulkMultipath)
    }

    fn fec(self) -> bool {
        !matches!(
            self,
            Arrangement::MultipathPlain | Arrangement::BulkSingle | Arrangement::BulkMultipath
        )
    }

    fn two_paths(self) -> bool {
        matches!(
            self,
            Arrangement::MultipathPlain
                | Arrangement::MultipathFec
                | Arrangement::MultipathCut
                | Arrangement::BulkMultipath
        )
    }
}

/// What one arrangement measured.
#[derive(Debug, Clone)]
pub struct ArrangementReport {
    /// Which.
    pub arrangement: Arrangement,
    /// The workload's results.
    pub workload: WorkloadReport,
    /// True when FEC was on for the whole transfer.
    pub fec: bool,
    /// The client's paths at the end.
    pub paths: Vec<PathView>,
    /// Path events at the client: opened, validated, failed, abandoned.
    pub path_events: [u64; 4],
    /// Packets the client's layer rebuilt.
    pub recovered: u64,
    /// Packets quinn declared lost at the client.
    pub lost_packets: u64,
    /// `multipath-cut`: the messages sent from [`SWITCH_BEFORE`] before the
    /// cut to [`SWITCH_AFTER`] after it, and their p99 and worst latency.
    pub switch: Option<Switch>,
}

/// From how long before a cut messages count as sent during the switch.
pub const SWITCH_BEFORE: Duration = Duration::from_millis(100);
/// Until how long after it.
pub const SWITCH_AFTER: Duration = Duration::from_millis(1000);

/// Latency of the messages sent while a path was being given up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Switch {
    /// Messages sent in the window.
    pub messages: usize,
    /// Their 99th percentile latency.
    pub p99_ms: f64,
    /// Their worst latency.
    pub max_ms: f64,
}

impl Switch {
    /// The messages of `series` (send time in wall-clock microseconds,
    /// latency) sent around a cut at `cut_us`.
    pub fn around(series: &[(u64, f64)], cut_us: u64) -> Option<Self> {
        let from = cut_us.saturating_sub(SWITCH_BEFORE.as_micros() as u64);
        let to = cut_us + SWITCH_AFTER.as_micros() as u64;
        let mut window: Vec<f64> = series
            .iter()
            .filter(|(at, _)| (from..to).contains(at))
            .map(|(_, ms)| *ms)
            .collect();
        window.sort_by(f64::total_cmp);
        let max_ms = *window.last()?;
        Some(Switch {
            messages: window.len(),
            p99_ms: crate::workload::percentile(&window, 0.99),
            max_ms,
        })
    }
}

impl ArrangementReport {
    /// The report as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let w = &self.workload;
        serde_json::json!({
            "arrangement": self.arrangement.name(),
            "fec": self.fec,
            "messages_sent": w.sent,
            "messages_delivered": w.delivered,
            "latency_p50_ms": w.latency_p50_ms,
            "latency_p99_ms": w.latency_p99_ms,
            "latency_max_ms": w.latency_max_ms,
            "goodput_mbps": w.goodput_mbps,
            "bulk_bytes": w.bulk_bytes,
            "bulk_intact": w.bulk_intact,
            "recovered": self.recovered,
            "lost_packets": self.lost_packets,
            "path_events": events_json(self.path_events),
            "switch": self.switch.map(|s| serde_json::json!({
                "messages": s.messages,
                "latency_p99_ms": s.p99_ms,
                "latency_max_ms": s.max_ms,
            })),
            "paths": paths_json(&self.paths),
        })
    }
}

/// Path events (opened, validated, failed, abandoned) as JSON.
pub fn events_json(events: [u64; 4]) -> serde_json::Value {
    serde_json::json!({
        "opened": events[0],
        "validated": events[1],
        "failed": events[2],
        "abandoned": events[3],
    })
}

/// The paths in use, as JSON (index = path id; unused ones left out at the
/// end).
pub fn paths_json(paths: &[PathView]) -> serde_json::Value {
    let used = paths
        .iter()
        .rposition(|p| p.state != fec_core::layer::paths::PathState::Unused)
        .map_or(0, |i| i + 1);
    paths[..used]
        .iter()
        .map(|p| {
            serde_json::json!({
                "state": format!("{:?}", p.state).to_lowercase(),
                "loss_permille": p.loss_permille,
                "rtt_ms": p.rtt.map(|r| r.as_secs_f64() * 1000.0),
                "sent_datagrams": p.sent_datagrams,
                "sent_bytes": p.sent_bytes,
                "source_packets": p.source_packets,
                "repair_packets": p.repair_packets,
                "received_datagrams": p.received_datagrams,
                "received_bytes": p.received_bytes,
            })
        })
        .collect()
}

fn addr(last: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), 0)
}

fn impairment(rtt: Duration, loss: f64, rate_mbps: Option<f64>, seed: u64) -> Impairment {
    let config = ImpairConfig {
        loss: LossModel::from_percent(loss, 1.0),
        delay: rtt / 2,
        rate_bps: rate_mbps.map(|r| (r * 1e6) as u64),
        ..ImpairConfig::default()
    };
    Impairment::new(config, seed)
}

/// Runs `arrangement` once.
pub async fn run(
    config: &MultipathConfig,
    arrangement: Arrangement,
    progress: &(dyn Fn(f64) + Sync),
) -> Result<ArrangementReport> {
    let seed = config.seed.wrapping_mul(16);
    let rate = arrangement.is_bulk().then_some(config.rate_mbps);
    let (loss_a, loss_b) = match arrangement {
        Arrangement::LossyFec => (config.loss_percent, 0.0),
        a if a.is_bulk() => (0.0, 0.0),
        _ => (0.0, config.loss_percent),
    };
    let path_a = |end: u64| impairment(config.rtt, loss_a, rate, seed + end);
    let path_b = |end: u64| impairment(config.rtt, loss_b, rate, seed + 2 + end);
    let cache_dir = std::env::temp_dir().join(format!(
        "pquic-host-multipath-cache-{}-{}",
        std::process::id(),
        config.seed
    ));
    let _ = std::fs::remove_dir_all(&cache_dir);
    let (server_plugin, client_plugins): (Option<ServerPlugin>, Option<ClientPlugins>) =
        if arrangement.fec() {
            let setup = FecSetup::named(&config.plugin, &cache_dir)?;
            (Some(setup.server), Some(setup.client))
        } else {
            (None, None)
        };
    let two = arrangement.two_paths();
    let server_paths: Vec<PathSpec> = if two {
        vec![PathSpec {
            local: addr(2),
            remote: None,
            impairment: Some(path_b(0)),
        }]
    } else {
        Vec::new()
    };
    let identity = Identity::generate()?;
    let server = Server::start(
        addr(1),
        Some(path_a(0)),
        &identity,
        server_plugin,
        Congestion {
            algorithm: config.congestion,
            charge: ChargeRule::default(),
        },
        &server_paths,
        two,
    )?;
    let client_paths: Vec<PathSpec> = match server.socket.local_addrs().get(1) {
        Some(&remote) if two => vec![PathSpec {
            local: addr(3),
            remote: Some(remote),
            impairment: Some(path_b(1)),
        }],
        _ => Vec::new(),
    };
    let workload = if arrangement.is_bulk() {
        WorkloadConfig {
            realtime: Duration::from_millis(500),
            bulk: config.bulk,
            ..config.workload.clone()
        }
    } else {
        config.workload.clone()
    };
    let cut = (arrangement == Arrangement::MultipathCut).then(|| {
        let socket = server.socket.clone();
        let at = config.cut_at;
        tokio::spawn(async move {
            tokio::time::sleep(at).await;
            socket.set_down(0, true);
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as u64)
        })
    });
    let plugins = client_plugins;
    let report = run_client(
        Some(addr(1)),
        Some(path_a(1)),
        &identity.roots()?,
        &[server.addr],
        "localhost",
        plugins,
        Congestion {
            algorithm: config.congestion,
            charge: ChargeRule::default(),
        },
        &workload,
        BulkSource::Generated,
        progress,
        &client_paths,
    )
    .await;
    let cut_us = match cut {
        Some(cut) if cut.is_finished() => cut.await.ok(),
        Some(cut) => {
            cut.abort();
            None
        }
        None => None,
    };
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&cache_dir);
    let report = report?;
    let s = report.socket;
    Ok(ArrangementReport {
        arrangement,
        fec: report.fec_throughout,
        paths: report.paths,
        path_events: [
            s.paths_opened,
            s.paths_validated,
            s.paths_failed,
            s.paths_abandoned,
        ],
        recovered: report.fec.recovered,
        lost_packets: report.lost_packets,
        switch: cut_us.and_then(|at| Switch::around(&report.workload.latency_series, at)),
        workload: report.workload,
    })
}

/// The comparison table of `reports` (ratios to `clean-alone` p99 and to
/// `bulk-single` goodput).
pub fn table(reports: &[ArrangementReport]) -> String {
    let p99_of = |a: Arrangement| {
        reports
            .iter()
            .find(|r| r.arrangement == a)
            .map(|r| r.workload.latency_p99_ms)
    };
    let clean = p99_of(Arrangement::CleanAlone);
    let single = reports
        .iter()
        .find(|r| r.arrangement == Arrangement::BulkSingle)
        .map(|r| r.workload.goodput_mbps);
    let mut out = String::from(
        "arrangement      msgs      p50 ms  p99 ms  x clean  max ms   Mbit/s  x single  recovered  quinn lost  datagrams A/B    repairs A/B  failed\n",
    );
    for r in reports {
        let w = &r.workload;
        let ratio = |v: f64, base: Option<f64>| {
            base.filter(|b| *b > 0.0)
                .map_or_else(|| "-".into(), |b| format!("{:.2}", v / b))
        };
        let bulk = r.arrangement.is_bulk();
        let path = |i: usize| r.paths.get(i).copied().unwrap_or_default();
        out.push_str(&format!(
            "{:<16} {:>4}/{:<4} {:>6} {:>7} {:>8} {:>7} {:>8.1} {:>9} {:>10} {:>11} {:>7}/{:<7} {:>6}/{:<6} {:>6}\n",
            r.arrangement.name(),
            w.delivered,
            w.sent,
            if bulk { "-".into() } else { format!("{:.1}", w.latency_p50_ms) },
            if bulk { "-".into() } else { format!("{:.1}", w.latency_p99_ms) },
            if bulk { "-".into() } else { ratio(w.latency_p99_ms, clean) },
            if bulk { "-".into() } else { format!("{:.1}", w.latency_max_ms) },
            w.goodput_mbps,
            if bulk { ratio(w.goodput_mbps, single) } else { "-".into() },
            r.recovered,
            r.lost_packets,
            path(0).sent_datagrams,
            path(1).sent_datagrams,
            path(0).repair_packets,
            path(1).repair_packets,
            r.path_events[2],
        ));
    }
    for r in reports {
        if let Some(s) = r.switch {
            out.push_str(&format!(
                "{}: the {} messages sent from {} ms before the cut to {} ms after it: p99 {:.1} ms ({} x clean), worst {:.1} ms\n",
                r.arrangement.name(),
                s.messages,
                SWITCH_BEFORE.as_millis(),
                SWITCH_AFTER.as_millis(),
                s.p99_ms,
                clean
                    .filter(|c| *c > 0.0)
                    .map_or_else(|| "-".into(), |c| format!("{:.2}", s.p99_ms / c)),
                s.max_ms,
            ));
        }
    }
    out
}
