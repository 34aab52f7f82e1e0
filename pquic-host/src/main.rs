//! `pquic-host`: QUIC with an FEC layer; see `pquic-host --help`.

use std::time::Duration;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

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
    /// Random loss per direction, in percent.
    #[arg(long, default_value_t = 3.0)]
    loss: f64,
    /// Mean loss burst length in packets (Gilbert-Elliott when > 1).
    #[arg(long, default_value_t = 1.0)]
    burst: f64,
    /// Round-trip time added by the emulated path, in milliseconds.
    #[arg(long = "rtt-ms", default_value_t = 40)]
    rtt_ms: u64,
    /// Seed of the impairment (same seed, same loss pattern).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Server and client in one process over impaired loopback: plain QUIC
    /// versus QUIC with FEC, same workload, then a comparison table.
    Demo {
        #[command(flatten)]
        impair: ImpairArgs,
        /// Seconds per mode (two thirds real-time messages, one third bulk).
        #[arg(long = "duration-s", default_value_t = 12.0)]
        duration_s: f64,
        /// Print one JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
}

fn progress_bar(hidden: bool, label: &str) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
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
    let row = |name: &str, a: String, b: String| println!("{name:<28} {a:>12} {b:>12}");
    let (p, f) = (&plain.workload, &fec.workload);
    row(
        "messages sent / delivered",
        format!("{}/{}", p.sent, p.delivered),
        format!("{}/{}", f.sent, f.delivered),
    );
    row(
        "message latency p50 (ms)",
        format!("{:.1}", p.latency_p50_ms),
        format!("{:.1}", f.latency_p50_ms),
    );
    row(
        "message latency p99 (ms)",
        format!("{:.1}", p.latency_p99_ms),
        format!("{:.1}", f.latency_p99_ms),
    );
    row(
        "message latency max (ms)",
        format!("{:.1}", p.latency_max_ms),
        format!("{:.1}", f.latency_max_ms),
    );
    row(
        "datagrams sent / delivered",
        format!("{}/{}", p.datagrams_sent, p.datagrams_delivered),
        format!("{}/{}", f.datagrams_sent, f.datagrams_delivered),
    );
    row(
        "packets retransmitted",
        plain.retransmitted.to_string(),
        fec.retransmitted.to_string(),
    );
    row(
        "packets recovered by FEC",
        plain.recovered.to_string(),
        fec.recovered.to_string(),
    );
    row(
        "bulk goodput (Mbit/s)",
        format!("{:.1}", p.goodput_mbps),
        format!("{:.1}", f.goodput_mbps),
    );
    row(
        "bulk data intact",
        p.bulk_intact.to_string(),
        f.bulk_intact.to_string(),
    );
    row(
        "redundancy (repair/source)",
        format!("{:.3}", plain.redundancy()),
        format!("{:.3}", fec.redundancy()),
    );
}

async fn demo(impair: ImpairArgs, duration_s: f64, json: bool) -> pquic_host::Result<()> {
    let total = Duration::from_secs_f64(duration_s.max(0.5));
    let config = DemoConfig {
        loss_percent: impair.loss,
        burst: impair.burst,
        rtt: Duration::from_millis(impair.rtt_ms),
        seed: impair.seed,
        workload: WorkloadConfig {
            realtime: total * 2 / 3,
            bulk: total / 3,
            ..WorkloadConfig::default()
        },
    };
    let bar = progress_bar(json, "plain");
    let plain = demo::run_plain(&config, &|f| bar.set_position((f * 1000.0) as u64)).await?;
    bar.finish();
    let bar = progress_bar(json, "fec");
    let fec = demo::run_fec(&config, &|f| bar.set_position((f * 1000.0) as u64)).await?;
    bar.finish();
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
        });
        println!("{object}");
    } else {
        print_table(&config, &plain, &fec);
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Demo {
            impair,
            duration_s,
            json,
        } => demo(impair, duration_s, json).await,
    };
    if let Err(e) = outcome {
        eprintln!("pquic-host: {e}");
        std::process::exit(1);
    }
}
