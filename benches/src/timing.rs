//! The one timing routine every library goes through.
//!
//! A [`Case`] pairs an untimed `setup` (fresh codec, survivor shards, ...) with a
//! timed `op` (the library call a user makes). [`run_interleaved`] measures a set of
//! cases in rounds, rotating their order each round, so that a burst of noise from
//! another process hits every library alike instead of whichever ran at that moment.
//! Each round takes one short sample per case; the figure reported is the best
//! sample, because on a shared machine interference only ever slows a run down.
//!
//! A sample is the average over a fixed stretch of timed work (not the fastest
//! single batch inside it): a 20 us op has many chances to slip between another
//! process's time slices, a 40 ms op has none, so on a busy machine the fastest
//! batch would favour the fast library and bias the ratios. Equal stretches expose
//! every case to the same interference.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// How long each sample runs and how many rounds are taken.
#[derive(Clone, Debug)]
pub struct SamplePlan {
    /// Rounds over all cases; each round yields one sample per case.
    pub rounds: usize,
    /// Timed work per sample (setup excluded).
    pub target: Duration,
    /// Wall-clock cap per sample (setup included), so slow set-ups stay bounded.
    pub max_wall: Duration,
    /// Minimum number of timed operations per sample, whatever the clock says.
    pub min_ops: u64,
    /// Timed work of the discarded warm-up sample taken before round one.
    pub warmup: Duration,
}

impl SamplePlan {
    /// The default plan: one to three minutes for the whole compare run (more when
    /// other processes compete for the cores, since the wall-clock cap then binds).
    pub fn standard() -> Self {
        Self {
            rounds: 9,
            target: Duration::from_millis(120),
            max_wall: Duration::from_millis(500),
            min_ops: 3,
            warmup: Duration::from_millis(40),
        }
    }

    /// A smoke run: every case runs, figures are rough.
    pub fn quick() -> Self {
        Self {
            rounds: 2,
            target: Duration::from_millis(10),
            max_wall: Duration::from_millis(80),
            min_ops: 1,
            warmup: Duration::from_millis(2),
        }
    }
}

/// Whether one prepared state serves many operations or only one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    /// The op leaves its state ready for another run (encode into the same buffers):
    /// set up once per sample and time batches of ops between two clock reads.
    Many,
    /// The op consumes its state (a decode fills the erased shards): set up before
    /// every op and time each op on its own.
    Once,
}

/// One sample: how many operations ran in how much timed time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Timed operations.
    pub ops: u64,
    /// Time spent inside `op` only.
    pub elapsed: Duration,
}

impl Sample {
    /// Throughput in MB/s (10^6 bytes per second) for `bytes_per_op` bytes each.
    pub fn mbps(&self, bytes_per_op: usize) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds <= 0.0 {
            return 0.0;
        }
        bytes_per_op as f64 * self.ops as f64 / seconds / 1e6
    }
}

/// Runs one sample of `op`, preparing its state with `setup` outside the timed region.
///
/// This is the only timing loop in the crate; every library's encode and decode, and
/// the memcpy baseline, are measured by it.
pub fn measure<S>(
    target: Duration,
    plan: &SamplePlan,
    reuse: Reuse,
    setup: &mut dyn FnMut() -> S,
    op: &mut dyn FnMut(&mut S),
) -> Sample {
    let wall_start = Instant::now();
    let mut elapsed = Duration::ZERO;
    let mut ops = 0u64;
    let done = |ops: u64, elapsed: Duration| {
        ops >= plan.min_ops && (elapsed >= target || wall_start.elapsed() >= plan.max_wall)
    };
    match reuse {
        Reuse::Many => {
            let mut state = setup();
            // Grow the batch until one batch is long enough that two clock reads
            // are noise (about 0.2 ms), then keep that batch size.
            let mut batch = 1u64;
            loop {
                let start = Instant::now();
                for _ in 0..batch {
                    op(&mut state);
                }
                let took = start.elapsed();
                elapsed += took;
                ops += batch;
                if done(ops, elapsed) {
                    break;
                }
                if took < Duration::from_micros(200) {
                    batch *= 2;
                }
            }
            black_box(&state);
        }
        Reuse::Once => loop {
            let mut state = setup();
            let start = Instant::now();
            op(&mut state);
            elapsed += start.elapsed();
            ops += 1;
            black_box(&state);
            drop(state);
            if done(ops, elapsed) {
                break;
            }
        },
    }
    Sample { ops, elapsed }
}

/// What a case measures: library, configuration, operation and its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// Library name as printed (`fec-core`, `isa-l`, ...).
    pub lib: &'static str,
    /// Configuration name (`A`, `B`, `C`, `D`, ...).
    pub config: String,
    /// Operation name (`encode`, `decode`, ...).
    pub op: &'static str,
    /// Bytes of original data one operation processes (the MB/s numerator).
    pub bytes_per_op: usize,
    /// What the figure means.
    pub metric: Metric,
}

/// How a case's samples are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// MB/s of `bytes_per_op`; the best sample is reported.
    Throughput,
    /// Nanoseconds per operation; the median sample is reported (a cost
    /// target such as "median plugin invocation" is about the typical call).
    Latency,
}

impl Label {
    /// A label; `config` is anything string-like.
    pub fn new(
        lib: &'static str,
        config: impl Into<String>,
        op: &'static str,
        bytes_per_op: usize,
    ) -> Self {
        Self {
            lib,
            config: config.into(),
            op,
            bytes_per_op,
            metric: Metric::Throughput,
        }
    }

    /// A label for a cost per operation, reported in nanoseconds.
    pub fn latency(lib: &'static str, config: impl Into<String>, op: &'static str) -> Self {
        Self {
            metric: Metric::Latency,
            ..Self::new(lib, config, op, 1)
        }
    }
}

/// Takes one sample of a case: `(timed target, plan) -> sample`.
type Sampler<'a> = dyn FnMut(Duration, &SamplePlan) -> Sample + 'a;

/// A measurable operation of one library on one configuration.
pub struct Case<'a> {
    /// What is measured.
    pub label: Label,
    sampler: Box<Sampler<'a>>,
    check: Box<dyn FnMut() -> Result<(), String> + 'a>,
}

impl<'a> Case<'a> {
    /// A case timed by [`measure`]. `check` runs once before any timing and must
    /// prove that the op really does its job (for a decode: the lost shards come
    /// back byte-identical), so no figure is ever printed for a broken benchmark.
    pub fn new<S: 'a>(
        label: Label,
        reuse: Reuse,
        mut setup: impl FnMut() -> S + 'a,
        mut run: impl FnMut(&mut S) + 'a,
        check: impl FnMut() -> Result<(), String> + 'a,
    ) -> Self {
        Self {
            label,
            sampler: Box::new(move |target, plan| {
                measure(target, plan, reuse, &mut setup, &mut run)
            }),
            check: Box::new(check),
        }
    }

    /// Runs the case's correctness check.
    pub fn check(&mut self) -> Result<(), String> {
        (self.check)()
    }

    /// Takes one sample of `target` timed work.
    pub fn sample(&mut self, target: Duration, plan: &SamplePlan) -> Sample {
        (self.sampler)(target, plan)
    }
}

/// All samples of one case, in MB/s.
#[derive(Clone, Debug)]
pub struct Measured {
    /// What was measured.
    pub label: Label,
    /// Throughput of each round's sample, in MB/s.
    pub samples_mbps: Vec<f64>,
}

impl Measured {
    /// The best sample: the reported figure.
    pub fn best(&self) -> f64 {
        self.samples_mbps.iter().copied().fold(0.0, f64::max)
    }

    /// The median sample, printed beside the best to show the spread.
    pub fn median(&self) -> f64 {
        let mut sorted = self.samples_mbps.clone();
        sorted.sort_by(f64::total_cmp);
        match sorted.len() {
            0 => 0.0,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        }
    }

    /// Nanoseconds per operation of a sample of `mbps` (for [`Metric::Latency`]
    /// cases, whose `bytes_per_op` is 1, so MB/s are millions of ops per second).
    pub fn nanos_per_op(&self, mbps: f64) -> f64 {
        if mbps > 0.0 {
            1e3 * self.label.bytes_per_op as f64 / mbps
        } else {
            f64::INFINITY
        }
    }
}

/// What [`run_interleaved`] reports while it works.
#[derive(Debug)]
pub enum Progress<'a> {
    /// A case failed its check and will not be measured.
    CheckFailed {
        /// The case.
        label: &'a Label,
        /// Why the check failed.
        reason: String,
    },
    /// A sample is about to be taken (rounds count from 1).
    Sample {
        /// Current round.
        round: usize,
        /// Total rounds.
        rounds: usize,
        /// The case.
        label: &'a Label,
    },
}

/// Measures `cases` in interleaved rounds and returns one [`Measured`] per case that
/// passed its check; a case whose check fails is reported and dropped.
pub fn run_interleaved(
    cases: &mut [Case<'_>],
    plan: &SamplePlan,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Vec<Measured> {
    let mut usable = Vec::new();
    for (index, case) in cases.iter_mut().enumerate() {
        match case.check() {
            Ok(()) => usable.push(index),
            Err(reason) => progress(Progress::CheckFailed {
                label: &case.label,
                reason,
            }),
        }
    }
    for &index in &usable {
        cases[index].sample(plan.warmup, plan);
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); usable.len()];
    for round in 0..plan.rounds {
        for position in 0..usable.len() {
            // Rotate the order each round so no library always runs first or last.
            let slot = (position + round) % usable.len();
            let case = &mut cases[usable[slot]];
            progress(Progress::Sample {
                round: round + 1,
                rounds: plan.rounds,
                label: &case.label,
            });
            let sample = case.sample(plan.target, plan);
            samples[slot].push(sample.mbps(case.label.bytes_per_op));
        }
    }
    usable
        .iter()
        .zip(samples)
        .map(|(&index, samples_mbps)| Measured {
            label: cases[index].label.clone(),
            samples_mbps,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_runs_setup_before_every_op() {
        let plan = SamplePlan {
            min_ops: 5,
            ..SamplePlan::quick()
        };
        let mut setups = 0u64;
        let mut fresh_ops = 0u64;
        let sample = measure(
            Duration::ZERO,
            &plan,
            Reuse::Once,
            &mut || {
                setups += 1;
                true
            },
            &mut |fresh: &mut bool| {
                if *fresh {
                    fresh_ops += 1;
                }
                *fresh = false;
            },
        );
        assert_eq!(sample.ops, 5);
        assert_eq!(setups, 5);
        assert_eq!(fresh_ops, 5);
    }

    #[test]
    fn many_sets_up_once_per_sample() {
        let plan = SamplePlan {
            min_ops: 10,
            ..SamplePlan::quick()
        };
        let mut setups = 0;
        let mut runs = 0u64;
        let sample = measure(
            Duration::ZERO,
            &plan,
            Reuse::Many,
            &mut || setups += 1,
            &mut |_: &mut ()| runs += 1,
        );
        assert_eq!(setups, 1);
        assert_eq!(sample.ops, runs);
        assert!(sample.ops >= 10);
    }

    #[test]
    fn failing_check_drops_the_case() {
        let mut cases = vec![
            Case::new(
                Label::new("good", "A", "encode", 1),
                Reuse::Many,
                || (),
                |_: &mut ()| {},
                || Ok(()),
            ),
            Case::new(
                Label::new("bad", "A", "encode", 1),
                Reuse::Many,
                || (),
                |_: &mut ()| {},
                || Err("wrong bytes".to_string()),
            ),
        ];
        let plan = SamplePlan {
            rounds: 3,
            ..SamplePlan::quick()
        };
        let mut failures = Vec::new();
        let measured = run_interleaved(&mut cases, &plan, &mut |event| {
            if let Progress::CheckFailed { label, reason } = event {
                failures.push(format!("{} {reason}", label.lib));
            }
        });
        assert_eq!(measured.len(), 1);
        assert_eq!(measured[0].label.lib, "good");
        assert_eq!(measured[0].samples_mbps.len(), 3);
        assert_eq!(failures, ["bad wrong bytes"]);
    }

    #[test]
    fn median_and_best() {
        let measured = Measured {
            label: Label::new("x", "A", "encode", 1),
            samples_mbps: vec![3.0, 1.0, 2.0, 10.0],
        };
        assert_eq!(measured.best(), 10.0);
        assert_eq!(measured.median(), 2.5);
        // 2.5 million ops per second: 400 ns each.
        assert!((measured.nanos_per_op(measured.median()) - 400.0).abs() < 1e-9);
    }

    #[test]
    fn mbps_counts_decimal_megabytes() {
        let sample = Sample {
            ops: 4,
            elapsed: Duration::from_millis(2),
        };
        assert!((sample.mbps(500_000) - 1000.0).abs() < 1e-9);
    }
}
