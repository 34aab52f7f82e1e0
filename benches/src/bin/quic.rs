//! The QUIC benchmark: stock quinn and noq (its fork maintained for iroh,
//! single-path) against `pquic-host` with FEC off and with a plugin active, in
//! one process and one run, on loopback.
//!
//! ```text
//! cargo run --release -p fec-benches --bin quic -- [--json] [--rounds N] [--mib N] [--only bulk,loss1,loss5] [--stacks quinn,noq,fec-off,plugin] [--plugin NAME]
//! ```
//!
//! Cases:
//! - `bulk`: lossless bulk transfer of `--mib` MiB (seeded bytes, SHA-256
//!   checked at the receiver) on a direct path; goodput at the receiver and
//!   CPU seconds per GiB of this process (client and server both run here).
//! - `loss1`, `loss5`: 1% and 5% random loss plus `--rtt-ms` of delay, by
//!   `pquic-host`'s impairing relay, the same seeds for every stack:
//!   bulk goodput (`--loss-mib` MiB) and the latency of `--messages` small
//!   messages at 100 per second.
//!
//! Stacks run interleaved within each round (the first one rotates); the
//! table shows medians of the rounds and each figure's ratio to stock quinn.
//! With `--json`, stdout carries one JSON object per case and stack and the
//! table goes to stderr.

use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use fec_benches::quic::stacks::{run, Job, Outcome, PathConfig, Stack};
use fec_benches::quic::{median, BenchError};
use pquic_host::impair::{ImpairConfig, LossModel};

/// Stock quinn and noq against pquic-host (FEC off, plugin active) on loopback.
#[derive(Parser)]
#[command(name = "quic")]
struct Options {
    /// One JSON object per case and stack on stdout; the table on stderr.
    #[arg(long)]
    json: bool,
    /// Interleaved rounds (medians are reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// MiB of the lossless bulk transfer.
    #[arg(long, default_value_t = 256)]
    mib: usize,
    /// MiB of the bulk transfers under loss.
    #[arg(long, default_value_t = 4)]
    loss_mib: usize,
    /// Messages per loss case (100 per second, 200 bytes each).
    #[arg(long, default_value_t = 1000)]
    messages: u64,
    /// Round-trip time the relay adds in the loss cases, ms.
    #[arg(long, default_value_t = 20)]
    rtt_ms: u64,
    /// Cases to run, comma-separated: bulk, loss1, loss5. Default: all.
    #[arg(long, value_delimiter = ',')]
    only: Option<Vec<String>>,
    /// The shipped plugin of the `plugin` stack: realtime, adaptive,
    /// rlc-window or rs-block.
    #[arg(long, default_value = "realtime")]
    plugin: String,
    /// Stacks to run, comma-separated: quinn, noq, fec-off, plugin. Default: all.
    #[arg(long, value_delimiter = ',')]
    stacks: Option<Vec<String>>,
}

/// One case's medians for one stack.
struct Row {
    case: String,
    stack: Stack,
    goodput_mbps: Option<f64>,
    cpu_s_per_gib: Option<f64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    recovered: u64,
    repair_share: f64,
    intact: bool,
    failures: Vec<String>,
}

fn seeded_bytes(len: usize, seed: u64) -> Bytes {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        // SplitMix64: cheap, and the bytes only need to be incompressible.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

fn loss_path(percent: f64, rtt_ms: u64, seed: u64) -> PathConfig {
    PathConfig {
        impairment: Some(ImpairConfig {
            loss: LossModel::Bernoulli {
                rate: percent / 100.0,
            },
            delay: Duration::from_millis(rtt_ms / 2),
            // Room for a full window at loopback speed.
            queue_limit_bytes: 64 << 20,
            ..ImpairConfig::default()
        }),
        seed,
    }
}

/// How long a run may take: the bulk at 20 Mbit/s on a direct path and at
/// 1 Mbit/s through a lossy one (loss-based congestion control at 5% loss
/// and 20 ms runs at about 3), plus the handshake.
fn deadline_for(job: &Job, lossy: bool) -> Duration {
    let floor_bps: u64 = if lossy { 1_000_000 } else { 20_000_000 };
    match job {
        Job::Bulk(data) => Duration::from_secs(30 + data.len() as u64 * 8 / floor_bps),
        Job::Messages { rate, count, .. } => {
            Duration::from_secs(30 + count / u64::from((*rate).max(1)))
        }
    }
}

struct Case {
    name: String,
    path: PathConfig,
    job: Job,
}

fn main() -> ExitCode {
    let options = Options::parse();
    let wanted = |name: &str| {
        options
            .only
            .as_ref()
            .is_none_or(|only| only.iter().any(|o| o == name))
    };
    let stacks: Vec<Stack> = match &options.stacks {
        None => Stack::ALL.to_vec(),
        Some(names) => {
            let mut stacks = Vec::new();
            for name in names {
                match Stack::from_name(name) {
                    Some(stack) => stacks.push(stack),
                    None => {
                        eprintln!("unknown stack {name} (quinn, noq, fec-off, plugin)");
                        return ExitCode::from(2);
                    }
                }
            }
            stacks
        }
    };
    let messages = Job::Messages {
        rate: 100,
        size: 200,
        count: options.messages,
    };
    let mut cases = Vec::new();
    if wanted("bulk") {
        cases.push(Case {
            name: "bulk".into(),
            path: PathConfig {
                impairment: None,
                seed: 0,
            },
            job: Job::Bulk(seeded_bytes(options.mib << 20, 1)),
        });
    }
    for (name, percent) in [("loss1", 1.0), ("loss5", 5.0)] {
        if wanted(name) {
            cases.push(Case {
                name: format!("{name}-bulk"),
                path: loss_path(percent, options.rtt_ms, 7),
                job: Job::Bulk(seeded_bytes(options.loss_mib << 20, 2)),
            });
            cases.push(Case {
                name: format!("{name}-msg"),
                path: loss_path(percent, options.rtt_ms, 9),
                job: messages.clone(),
            });
        }
    }
    if cases.is_empty() {
        eprintln!("no case selected (bulk, loss1, loss5)");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut rows = Vec::new();
    for case in &cases {
        // outcomes[stack] = one Outcome per successful round.
        let mut outcomes: Vec<Vec<Outcome>> = vec![Vec::new(); stacks.len()];
        let mut failures: Vec<Vec<String>> = vec![Vec::new(); stacks.len()];
        for round in 0..options.rounds.max(1) {
            for k in 0..stacks.len() {
                let i = (k + round) % stacks.len();
                eprint!(
                    "\r{:<10} round {}/{}: {:<8}",
                    case.name,
                    round + 1,
                    options.rounds,
                    stacks[i].name(),
                );
                let result: Result<Outcome, BenchError> = runtime.block_on(run(
                    stacks[i],
                    &case.job,
                    &case.path,
                    &options.plugin,
                    deadline_for(&case.job, case.path.impairment.is_some()),
                ));
                match result {
                    Ok(outcome) => outcomes[i].push(outcome),
                    Err(e) => failures[i].push(e.to_string()),
                }
            }
        }
        eprintln!();
        for (i, stack) in stacks.iter().enumerate() {
            rows.push(summarise(&case.name, *stack, &outcomes[i], &failures[i]));
        }
    }
    let table = render(&rows);
    if options.json {
        for row in &rows {
            println!("{}", json_line(row, &rows));
        }
        eprint!("{table}");
    } else {
        print!("{table}");
    }
    if rows.iter().any(|r| !r.failures.is_empty() || !r.intact) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn summarise(case: &str, stack: Stack, outcomes: &[Outcome], failures: &[String]) -> Row {
    let mut row = Row {
        case: case.into(),
        stack,
        goodput_mbps: None,
        cpu_s_per_gib: None,
        p50_ms: None,
        p99_ms: None,
        recovered: 0,
        repair_share: 0.0,
        intact: true,
        failures: failures.to_vec(),
    };
    let (mut shares, mut recovered) = (Vec::new(), Vec::new());
    let (mut goodput, mut cpu, mut p50, mut p99) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for outcome in outcomes {
        if let Some(bulk) = outcome.bulk {
            row.intact &= bulk.intact;
            goodput.push(bulk.bytes as f64 * 8.0 / bulk.seconds / 1e6);
            cpu.push(outcome.cpu_seconds / (bulk.bytes.max(1) as f64 / f64::from(1u32 << 30)));
        }
        if let Some(latencies) = &outcome.latencies {
            row.intact &= latencies.ms.len() as u64 == latencies.sent;
            p50.push(latencies.quantile(0.50));
            p99.push(latencies.quantile(0.99));
        }
        shares.push(outcome.repair_share);
        recovered.push(outcome.recovered as f64);
    }
    if !goodput.is_empty() {
        row.goodput_mbps = Some(median(&goodput));
        row.cpu_s_per_gib = Some(median(&cpu));
    }
    if !p99.is_empty() {
        row.p50_ms = Some(median(&p50));
        row.p99_ms = Some(median(&p99));
    }
    row.repair_share = median(&shares);
    row.recovered = median(&recovered) as u64;
    row
}

/// The stock-quinn row of the same case.
fn baseline<'a>(row: &Row, rows: &'a [Row]) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.case == row.case && r.stack == Stack::Quinn)
}

fn ratio(ours: Option<f64>, theirs: Option<f64>) -> Option<f64> {
    match (ours, theirs) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn json_line(row: &Row, rows: &[Row]) -> String {
    let base = baseline(row, rows);
    let value = serde_json::json!({
        "bench": "quic",
        "case": row.case,
        "stack": row.stack.name(),
        "goodput_mbps": row.goodput_mbps,
        "cpu_s_per_gib": row.cpu_s_per_gib,
        "msg_p50_ms": row.p50_ms,
        "msg_p99_ms": row.p99_ms,
        "goodput_ratio": ratio(row.goodput_mbps, base.and_then(|b| b.goodput_mbps)),
        "cpu_ratio": ratio(row.cpu_s_per_gib, base.and_then(|b| b.cpu_s_per_gib)),
        "p99_ratio": ratio(row.p99_ms, base.and_then(|b| b.p99_ms)),
        "recovered": row.recovered,
        "repair_share": row.repair_share,
        "intact": row.intact,
        "failures": row.failures,
    });
    value.to_string()
}

fn render(rows: &[Row]) -> String {
    use std::fmt::Write as _;
    let cell =
        |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<10} {:<8} {:>9} {:>6} {:>8} {:>6} {:>8} {:>8} {:>6} {:>9} {:>7}  notes",
        "case",
        "stack",
        "Mbit/s",
        "x",
        "CPU s/GiB",
        "x",
        "p50 ms",
        "p99 ms",
        "x",
        "recovered",
        "repair"
    );
    for row in rows {
        let base = baseline(row, rows);
        let mut notes = Vec::new();
        if !row.intact {
            notes.push("DATA MISMATCH".to_string());
        }
        notes.extend(row.failures.iter().map(|f| format!("failed: {f}")));
        let _ = writeln!(
            out,
            "{:<10} {:<8} {:>9} {:>6} {:>9} {:>6} {:>8} {:>8} {:>6} {:>9} {:>7}  {}",
            row.case,
            row.stack.name(),
            cell(row.goodput_mbps, 0),
            cell(
                ratio(row.goodput_mbps, base.and_then(|b| b.goodput_mbps)),
                2
            ),
            cell(row.cpu_s_per_gib, 2),
            cell(
                ratio(row.cpu_s_per_gib, base.and_then(|b| b.cpu_s_per_gib)),
                2
            ),
            cell(row.p50_ms, 1),
            cell(row.p99_ms, 1),
            cell(ratio(row.p99_ms, base.and_then(|b| b.p99_ms)), 2),
            row.recovered,
            format!("{:.1}%", row.repair_share * 100.0),
            notes.join("; ")
        );
    }
    let _ = writeln!(
        out,
        "x = ratio to stock quinn in the same case. CPU = this process (client and server), \
         during the transfer. Loss cases: pquic-host's relay, Bernoulli loss, the RTT given."
    );
    out
}
