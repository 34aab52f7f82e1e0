//! Measures fec-core against its peers in one process and one run.
//!
//! ```text
//! cargo run --release -p fec-benches --bin compare -- [--json] [--quick] [--only A,B,...]
//! ```
//!
//! With `--json`, stdout carries one JSON object per line,
//! `{"lib": "...", "config": "...", "op": "...", "mbps": 1234.5}`, and the human
//! table goes to stderr; without it, the table goes to stdout. MB/s are 10^6 bytes of
//! original data per second, the best of several interleaved rounds (the median is
//! in the table). Costs per operation (config `P`'s `invoke` and `load`) carry
//! `"ns"` instead of `"mbps"`: the median of the rounds. What each library's timed
//! region includes is documented in `fec_benches::rs_cases`,
//! `fec_benches::window_cases` and `fec_benches::plugin_cases`.
//!
//! `--quick` is a smoke run (seconds, rough figures); `--only` picks configs
//! (`--help` lists them).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use fec_benches::isal::Isal;
use fec_benches::plugin_cases::plugin_cases;
use fec_benches::report::{table, Record};
use fec_benches::rs_cases::{all_rs_cases, memcpy_case, RsInputs};
use fec_benches::timing::{run_interleaved, Case, Label, Measured, SamplePlan};
use fec_benches::window_cases::{
    cu_fec_cases, our_raptorq_cases, our_rlc_cases, raptorq_cases, source_ingest_cases,
    RaptorqInputs, RlcInputs,
};
use fec_benches::workload::RS_CONFIGS;

/// What the figures mean, printed under the table (details in the crate docs).
const LEGEND: [&str; 7] = [
    "MB/s = 10^6 bytes of original data per second, best of the rounds; ns = median.",
    "RS decode: m data shards lost, a new pattern each time, codec/decoder made fresh \
     (untimed) so nothing is cached; timed = the rebuild call(s), matrix work included:",
    "  fec-core, reed-solomon-erasure: reconstruct_data (allocates the lost shards); \
     isa-l: invert survivor matrix + ec_init_tables + ec_encode_data; \
     reed-solomon-simd: add shards + decode",
    "D decode: fresh decoder, 28 sources + 5 repairs ingested, 4 sources recovered; \
     E decode: fresh decoder, k-m sources + m repairs.",
    "E (fec-core) runs through fec_core::pipeline: 1277 B ADUs in 1280 B symbols, \
     MB/s of ADU bytes, RaptorQ by fec-core's own schedule or the code's generator rows \
     (whichever its cost model picks for the backend) on the SIMD kernels (same repair \
     bytes); raptorq: 1280 B symbols, the crate used directly.",
    "D source: ns per source symbol through fec_core::pipeline (fec-core) and the bare \
     rlc::Encoder (fec-core-rlc); the difference is the pipeline's cost per source.",
    "P: ratio column = plugin-driven / native pipeline; pipeline follows the plugin's scheduling hints (fec_repair_after, fec_repair_repeat), pipe/call ignores fec_repair_repeat (one VM call per repair decision).",
];

/// Measures fec-core against its peers (reed-solomon-erasure, reed-solomon-simd,
/// isa-l, cu-fec, raptorq) and the plugin-driven pipeline against the native
/// one, in one process and one run.
#[derive(Parser)]
#[command(name = "compare", after_help = CONFIGS)]
struct Options {
    /// One JSON object per measurement on stdout ({"lib", "config", "op", and
    /// "mbps" or "ns"}); the table goes to stderr.
    #[arg(long)]
    json: bool,
    /// Smoke run: seconds, rough figures.
    #[arg(long)]
    quick: bool,
    /// Run only these configs, comma-separated, any case (see below); repeated
    /// flags add up. Default: all.
    #[arg(long, value_name = "A,B,...", value_delimiter = ',')]
    only: Option<Vec<String>>,
}

/// The `--only` names, shown under `--help`.
const CONFIGS: &str = "Configs (for --only):
  memcpy (or 1MiB)  the in-cache copy of 1 MiB, a baseline
  A, B, C           Reed-Solomon: 10+4 x 64 KiB, 32+8 x 1280 B, 200+50 x 1280 B
  D                 RFC 8681 sliding-window RLC (fec-core, cu-fec)
  E32, E200         RaptorQ with 32 and 200 source symbols (pipeline, raptorq)
  P                 the FEC layer driven by the rlc-window plugin vs native
  RS16-100:20, RS16-1000:100, RS16-1000:1000, RS16-32768:32768
                    GF(2^16) Reed-Solomon, 1280 B shards (fec-core, reed-solomon-simd)";

impl Options {
    fn wants(&self, config: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|list| list.iter().any(|name| name.eq_ignore_ascii_case(config)))
    }
}

/// Status on stderr: a self-overwriting line on a terminal, one line per round
/// otherwise (so logs stay short).
struct Progress {
    terminal: bool,
    last_round: String,
}

impl Progress {
    fn status(&mut self, group: &str, round: usize, rounds: usize, label: &Label) {
        let mut stderr = std::io::stderr();
        if self.terminal {
            let _ = write!(
                stderr,
                "\r\x1b[K[{group}] round {round}/{rounds}: {} {}",
                label.lib, label.op
            );
            let _ = stderr.flush();
        } else {
            let key = format!("[{group}] round {round}/{rounds}");
            if key != self.last_round {
                let _ = writeln!(stderr, "{key}");
                self.last_round = key;
            }
        }
    }

    fn note(&mut self, line: &str) {
        if self.terminal {
            eprint!("\r\x1b[K");
        }
        eprintln!("{line}");
    }

    fn finish_group(&mut self) {
        if self.terminal {
            eprint!("\r\x1b[K");
        }
    }
}

fn measure_group(
    group: &str,
    mut cases: Vec<Case<'_>>,
    plan: &SamplePlan,
    progress: &mut Progress,
) -> Vec<Measured> {
    let measured = run_interleaved(&mut cases, plan, &mut |event| match event {
        fec_benches::timing::Progress::Sample {
            round,
            rounds,
            label,
        } => progress.status(group, round, rounds, label),
        fec_benches::timing::Progress::CheckFailed { label, reason } => progress.note(&format!(
            "{} {} {}: check failed, not measured: {reason}",
            label.lib, label.config, label.op
        )),
    });
    progress.finish_group();
    measured
}

fn describe(config: &str) -> String {
    if let Some(line) = fec_benches::rs16_cases::describe(config) {
        return line;
    }
    if let Some(rs) = RS_CONFIGS.iter().find(|rs| rs.name == config) {
        return format!("Reed-Solomon {}", rs.describe());
    }
    match config {
        "D" => "RLC GF(2^8) DT=15, window 32 x 1280 B, decode: 4 lost, 5 repairs".into(),
        "E32" => "RaptorQ k=32 m=8 1280 B".into(),
        "E200" => "RaptorQ k=200 m=50 1280 B".into(),
        "1MiB" => "memcpy, 1 MiB buffers (in cache)".into(),
        "P" => "pipeline sender, RLC window 32, 1280 B packets, 1 repair per 4 sources: \
                rlc-window plugin in the sandboxed interpreter vs the same policy in Rust, both through the FEC layer; plugin call and load costs"
            .into(),
        other => other.into(),
    }
}

fn main() -> ExitCode {
    let options = Options::parse();
    let plan = if options.quick {
        SamplePlan::quick()
    } else {
        SamplePlan::standard()
    };
    let mut progress = Progress {
        terminal: std::io::stderr().is_terminal(),
        last_round: String::new(),
    };
    // The legend and what was skipped; they go wherever the table goes.
    let mut notes: Vec<String> = LEGEND.iter().map(|line| line.to_string()).collect();
    notes.push(fec_benches::rs16_cases::backend_note());
    // ISA-L's encoder for the instructions fec-core runs on (its dispatcher
    // from AVX-512 up), so a forced AVX2 run compares AVX2 code with AVX2 code.
    let isal = match Isal::load_matching(fec_core::gf256::engine().backend()) {
        Ok(isal) => {
            notes.push(format!("isa-l encodes with {}", isal.encoder_name()));
            Some(isal)
        }
        Err(why) => {
            notes.push(format!(
                "isa-l: not found, skipped (install libisal-dev: benches/install-peers.sh) [{why}]"
            ));
            None
        }
    };

    let mut measured = Vec::new();
    if options.wants("memcpy") || options.wants("1MiB") {
        measured.extend(measure_group(
            "memcpy",
            vec![memcpy_case()],
            &plan,
            &mut progress,
        ));
    }
    for config in RS_CONFIGS {
        if !options.wants(config.name) {
            continue;
        }
        let inputs = RsInputs::new(config);
        let cases = all_rs_cases(&inputs, isal.as_ref());
        measured.extend(measure_group(config.name, cases, &plan, &mut progress));
    }
    for config in fec_benches::rs16_cases::RS16_CONFIGS {
        if options.wants(config.name) {
            let inputs = fec_benches::rs16_cases::Rs16Inputs::new(config);
            let cases = fec_benches::rs16_cases::rs16_cases(&inputs);
            measured.extend(measure_group(config.name, cases, &plan, &mut progress));
        }
    }
    if options.wants("D") {
        let inputs = RlcInputs::new();
        let mut cases = our_rlc_cases(&inputs);
        cases.extend(cu_fec_cases(&inputs));
        cases.extend(source_ingest_cases(&inputs));
        measured.extend(measure_group("D", cases, &plan, &mut progress));
    }
    for (name, k) in [("E32", 32), ("E200", 200)] {
        if !options.wants(name) {
            continue;
        }
        let inputs = RaptorqInputs::new(name, k);
        let mut cases = our_raptorq_cases(&inputs);
        cases.extend(raptorq_cases(&inputs));
        measured.extend(measure_group(name, cases, &plan, &mut progress));
    }

    if options.wants("P") {
        measured.extend(measure_group("P", plugin_cases(), &plan, &mut progress));
    }

    let mut text = table(&measured, &describe);
    for note in &notes {
        text.push_str(note);
        text.push('\n');
    }
    if options.json {
        eprint!("{text}");
        for case in &measured {
            println!("{}", Record::from_measured(case).json_line());
        }
    } else {
        print!("{text}");
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn arguments_parse_as_documented() {
        Options::command().debug_assert();
        let options =
            Options::try_parse_from(["compare", "--json", "--only", "a,P", "--only", "memcpy"])
                .expect("valid arguments");
        assert!(options.json && !options.quick);
        assert!(options.wants("A") && options.wants("P") && options.wants("memcpy"));
        assert!(!options.wants("B"));
        let all = Options::try_parse_from(["compare", "--quick"]).expect("valid arguments");
        assert!(all.quick && all.wants("E200"));
        assert!(Options::try_parse_from(["compare", "--only"]).is_err());
        assert!(Options::try_parse_from(["compare", "--fast"]).is_err());
    }
}
