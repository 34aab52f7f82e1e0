//! Run a plugin against a synthetic packet stream and a loss trace, with the
//! real `fec_core::pipeline` on both ends; report what it sent, lost and
//! recovered. What plugin authors use in their tests, and `fec-plugin run`.
//!
//! The host loop, per source packet `seq` (time advances 100 µs per packet):
//!
//! 1. `on_source` — protect the packet (`fec_protect`) or send it plain;
//!    with no decision (`FEC_RC_DEFAULT` or no pluglet) the host protects it.
//! 2. `schedule_repair` with `sources_since_repair` = sources protected since
//!    the last repair — `fec_emit_repair(n)` sends `n` repair symbols now.
//!    The host skips this call while fewer sources than the plugin's
//!    `fec_repair_after` hint are pending; with no decision it sends nothing.
//!    After a `fec_repair_repeat(k)` hint it skips the next `k` due calls too
//!    and sends the hinted call's repair count itself each time, until
//!    `on_feedback` runs a pluglet (both as [`crate::hints::RepairHints`]).
//! 3. Every packet (source and repair) goes through the loss trace; the
//!    receiver's decoder gets what survives.
//! 4. Every `feedback_every` sources the receiver's report for that interval
//!    (received, lost, recovered, longest and mean burst) reaches `on_feedback`
//!    immediately (no feedback delay is modelled), observers get `on_loss`
//!    for each source of the interval still missing, and `on_recovered` for
//!    each recovery as it happens.
//!
//! A plugin fault disables the instance; the run continues without FEC and
//! the report carries the reason.
//!
//! ```
//! use fec_plugin_sdk::harness::{run, HarnessConfig, LossTrace};
//! use fec_plugin_sdk::build::pack_assembly;
//! use fec_plugin_sdk::runtime::{HostOffer, Plugin};
//! let package = pack_assembly(
//!     ".section replace/configure
//!      mov r1, 2\n mov r2, 16\n mov r3, 1\n call 7\n mov r0, 0\n exit
//!      .section replace/schedule_repair
//!      ldxw r2, [r1+8]\n mov r0, 0\n jlt r2, 4, +2\n mov r1, 1\n call 2\n mov r0, 0\n exit",
//!     "rlc-4", "1", 256,
//! ).unwrap();
//! let plugin = Plugin::load(&package, &HostOffer::all()).unwrap();
//! let report = run(&plugin, &HarnessConfig {
//!     packets: 100,
//!     loss: LossTrace::Every(7),
//!     ..HarnessConfig::default()
//! }).unwrap();
//! assert_eq!(report.sources, 100);
//! assert_eq!(report.repairs, 25);
//! assert!(report.recovered > 0);
//! ```

#![forbid(unsafe_code)]

use std::collections::BTreeSet;

use bytes::Bytes;
use fec_core::pipeline::loss::{burst_lengths, Bernoulli, GilbertElliott, LossModel};
use fec_core::pipeline::{Config, Decoder, Encoder, Scheme as PipelineScheme};
use fec_core::rlc::Field;

use crate::abi::{
    ConfigureContext, FeedbackContext, LossContext, Operation, RecoveredContext, ScheduleContext,
    Scheme, SourceContext, MAX_REPAIR_PER_CALL, MAX_WINDOW,
};
use crate::hints::{Due, RepairHints};
use crate::runtime::{CodeChoice, HostView, Instance, Plugin, Stats};
use crate::Error;

/// Which transmitted packets (sources and repairs, in sending order) are lost.
#[derive(Clone, Debug, PartialEq)]
pub enum LossTrace {
    /// No loss.
    None,
    /// Independent loss with this probability, seeded.
    Bernoulli {
        /// Loss rate.
        rate: f64,
        /// Seed.
        seed: u64,
    },
    /// Gilbert-Elliott bursts: average loss rate and mean burst length, seeded.
    GilbertElliott {
        /// Loss rate.
        rate: f64,
        /// Mean burst length in packets.
        mean_burst: f64,
        /// Seed.
        seed: u64,
    },
    /// Every n-th transmitted packet (n-1, 2n-1, ...).
    Every(usize),
    /// Exactly these transmission indices.
    At(BTreeSet<usize>),
}

impl LossTrace {
    /// Parse `none`, `bernoulli:RATE[:SEED]`, `ge:RATE:MEAN_BURST[:SEED]`,
    /// `every:N` or `at:I,J,K`. A bare number is a Bernoulli rate.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let parts: Vec<&str> = spec.split(':').collect();
        let number = |s: &str| {
            s.parse::<f64>()
                .map_err(|_| format!("bad number {s:?} in {spec:?}"))
        };
        let seed = |i: usize| -> Result<u64, String> {
            parts
                .get(i)
                .map_or(Ok(1), |s| s.parse().map_err(|_| format!("bad seed {s:?}")))
        };
        let rate_ok = |r: f64| {
            if (0.0..=1.0).contains(&r) {
                Ok(r)
            } else {
                Err(format!("loss rate {r} is not in 0..=1"))
            }
        };
        match parts[0] {
            "none" => Ok(LossTrace::None),
            "bernoulli" if parts.len() >= 2 => Ok(LossTrace::Bernoulli {
                rate: rate_ok(number(parts[1])?)?,
                seed: seed(2)?,
            }),
            "ge" if parts.len() >= 3 => {
                let mean_burst = number(parts[2])?;
                if !(1.0..=1000.0).contains(&mean_burst) {
                    return Err(format!("mean burst {mean_burst} is not in 1..=1000"));
                }
                Ok(LossTrace::GilbertElliott {
                    rate: rate_ok(number(parts[1])?)?,
                    mean_burst,
                    seed: seed(3)?,
                })
            }
            "every" if parts.len() == 2 => {
                let n: usize = parts[1]
                    .parse()
                    .map_err(|_| format!("bad count in {spec:?}"))?;
                if n == 0 {
                    return Err("every:0 is meaningless".into());
                }
                Ok(LossTrace::Every(n))
            }
            "at" if parts.len() == 2 => {
                let set = parts[1]
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().map_err(|_| format!("bad index {s:?}")))
                    .collect::<Result<_, _>>()?;
                Ok(LossTrace::At(set))
            }
            _ => Ok(LossTrace::Bernoulli {
                rate: rate_ok(number(spec)?)?,
                seed: 1,
            }),
        }
    }

    fn into_oracle(self) -> Box<dyn FnMut(usize) -> bool> {
        match self {
            LossTrace::None => Box::new(|_| false),
            LossTrace::Bernoulli { rate, seed } => {
                let mut m = Bernoulli::new(rate, seed);
                Box::new(move |_| m.lost())
            }
            LossTrace::GilbertElliott {
                rate,
                mean_burst,
                seed,
            } => {
                let mut m = GilbertElliott::with_mean_burst(rate, mean_burst, seed);
                Box::new(move |_| m.lost())
            }
            LossTrace::Every(n) => Box::new(move |i| (i + 1) % n == 0),
            LossTrace::At(set) => Box::new(move |i| set.contains(&i)),
        }
    }
}

/// What to run.
pub struct HarnessConfig {
    /// Source packets to send.
    pub packets: usize,
    /// Bytes per packet (at most 1500).
    pub packet_len: usize,
    /// The loss trace.
    pub loss: LossTrace,
    /// Sources per receiver report.
    pub feedback_every: usize,
}

impl Default for HarnessConfig {
    fn default() -> Self {
        HarnessConfig {
            packets: 1000,
            packet_len: 1200,
            loss: LossTrace::None,
            feedback_every: 50,
        }
    }
}

/// What happened.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Source packets sent.
    pub sources: u64,
    /// Of which protected by FEC.
    pub protected: u64,
    /// Repair packets sent.
    pub repairs: u64,
    /// Source packets lost on the way.
    pub lost_sources: u64,
    /// Repair packets lost on the way.
    pub lost_repairs: u64,
    /// Lost sources rebuilt by the receiver.
    pub recovered: u64,
    /// Lost sources never rebuilt.
    pub unrecovered: u64,
    /// The code the plugin chose in `configure`.
    pub code: Option<CodeChoice>,
    /// Pluglet executions.
    pub plugin_calls: u64,
    /// Why the plugin was disabled, if it was.
    pub fault: Option<String>,
    /// Messages the plugin logged (first 32).
    pub logs: Vec<String>,
}

impl Report {
    /// Repair packets per source packet.
    pub fn redundancy(&self) -> f64 {
        if self.sources == 0 {
            0.0
        } else {
            self.repairs as f64 / self.sources as f64
        }
    }

    /// Fraction of sources the application never got.
    pub fn residual_loss(&self) -> f64 {
        if self.sources == 0 {
            0.0
        } else {
            self.unrecovered as f64 / self.sources as f64
        }
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "sources sent      {}", self.sources)?;
        writeln!(f, "  protected       {}", self.protected)?;
        writeln!(f, "repairs sent      {}", self.repairs)?;
        writeln!(f, "redundancy        {:.1}%", 100.0 * self.redundancy())?;
        writeln!(f, "sources lost      {}", self.lost_sources)?;
        writeln!(f, "repairs lost      {}", self.lost_repairs)?;
        writeln!(f, "recovered         {}", self.recovered)?;
        writeln!(f, "unrecovered       {}", self.unrecovered)?;
        writeln!(f, "residual loss     {:.2}%", 100.0 * self.residual_loss())?;
        if let Some(code) = self.code {
            writeln!(
                f,
                "code              {:?} k={} r={}",
                code.scheme, code.source_symbols, code.repair_symbols
            )?;
        }
        writeln!(f, "plugin calls      {}", self.plugin_calls)?;
        match &self.fault {
            Some(reason) => writeln!(f, "plugin fault      {reason}"),
            None => writeln!(f, "plugin fault      none"),
        }
    }
}

const SCHEMES_OFFERED: u32 = (1 << Scheme::None as u32)
    | (1 << Scheme::ReedSolomon as u32)
    | (1 << Scheme::Rlc as u32)
    | (1 << Scheme::RaptorQ as u32);

fn pipeline_scheme(code: &CodeChoice) -> Option<PipelineScheme> {
    let k = code.source_symbols as usize;
    let r = (code.repair_symbols as usize).max(1);
    match code.scheme {
        Scheme::None => None,
        Scheme::ReedSolomon => Some(PipelineScheme::ReedSolomon { data: k, parity: r }),
        Scheme::Rlc => Some(PipelineScheme::Rlc {
            field: Field::Gf256,
            // The decoder must accept any window the plugin may set later.
            window: MAX_WINDOW as usize,
            dt: 15,
        }),
        Scheme::RaptorQ => Some(PipelineScheme::RaptorQ {
            source_symbols: k,
            repair_symbols: r.max(MAX_REPAIR_PER_CALL as usize),
        }),
    }
}

struct Receiver {
    decoder: Option<Decoder>,
    delivered: Vec<bool>,
    recovered: Vec<u64>,
}

fn seq_of(adu: &[u8]) -> Option<usize> {
    Some(u64::from_le_bytes(adu.get(..8)?.try_into().ok()?) as usize)
}

impl Receiver {
    fn receive(&mut self, packet: Bytes, plain_seq: Option<usize>) {
        if let Some(seq) = plain_seq {
            self.delivered[seq] = true;
            return;
        }
        let Some(decoder) = self.decoder.as_mut() else {
            return;
        };
        if let Ok(Some(adu)) = decoder.receive(packet) {
            if let Some(seq) = seq_of(&adu.data).filter(|s| *s < self.delivered.len()) {
                self.delivered[seq] = true;
            }
        }
        while let Some(adu) = decoder.poll_recovered() {
            if let Some(seq) = seq_of(&adu.data).filter(|s| *s < self.delivered.len()) {
                if !self.delivered[seq] {
                    self.delivered[seq] = true;
                    self.recovered.push(seq as u64);
                }
            }
        }
    }
}

struct Host {
    instance: Instance,
    report: Report,
    view: HostView,
}

impl Host {
    /// Record a fault once; the instance is disabled and the run goes on without FEC.
    fn check<T: Default>(&mut self, result: Result<T, crate::runtime::Fault>) -> T {
        match result {
            Ok(v) => v,
            Err(fault) => {
                if self.report.fault.is_none() {
                    self.report.fault = Some(fault.to_string());
                }
                T::default()
            }
        }
    }

    fn keep_logs(&mut self, logs: Vec<String>) {
        for l in logs {
            if self.report.logs.len() < 32 {
                self.report.logs.push(l);
            }
        }
    }
}

/// Run `plugin` over `config.packets` packets with `config.loss`.
pub fn run(plugin: &Plugin, config: &HarnessConfig) -> Result<Report, Error> {
    let HarnessConfig {
        packets,
        packet_len,
        feedback_every,
        ..
    } = *config;
    if !(8..=1500).contains(&packet_len) {
        return Err(Error::Other(format!(
            "packet length {packet_len} is not in 8..=1500"
        )));
    }
    // `LossTrace::parse` refuses `every:0`, but the variant is public and
    // its oracle divides by `n`.
    if config.loss == LossTrace::Every(0) {
        return Err(Error::Other("LossTrace::Every(0) is meaningless".into()));
    }
    let mut link = Link {
        lost: config.loss.clone().into_oracle(),
        transmitted: 0,
        lost_source: vec![false; packets],
    };
    let feedback_every = feedback_every.max(1);

    let mut host = Host {
        instance: plugin.instantiate(),
        report: Report::default(),
        view: HostView {
            schemes_offered: SCHEMES_OFFERED,
            ..HostView::default()
        },
    };
    let configured = host.instance.configure(
        &ConfigureContext {
            now_us: 0,
            schemes_offered: SCHEMES_OFFERED,
            symbol_size: (packet_len + 3) as u32,
            max_window: MAX_WINDOW,
            max_repair_per_call: MAX_REPAIR_PER_CALL,
        },
        &host.view,
    );
    let mut configured = host.check(configured);
    host.keep_logs(std::mem::take(&mut configured.logs));
    // Without a code choice the host's default is the RLC the design centres on.
    let code = configured.code.unwrap_or(CodeChoice {
        scheme: Scheme::Rlc,
        source_symbols: 32,
        repair_symbols: 1,
    });
    host.report.code = Some(code);
    let pipeline = pipeline_scheme(&code).map(|scheme| {
        let mut c = Config::new(scheme);
        c.set_symbol_size(packet_len + 3);
        c
    });
    let mut encoder = match &pipeline {
        Some(c) => Some(Encoder::new(c).map_err(|e| Error::Other(format!("pipeline: {e}")))?),
        None => None,
    };
    let mut receiver = Receiver {
        decoder: match &pipeline {
            Some(c) => Some(Decoder::new(c).map_err(|e| Error::Other(format!("pipeline: {e}")))?),
            None => None,
        },
        delivered: vec![false; packets],
        recovered: Vec::new(),
    };
    let mut window_target = configured.window.unwrap_or(code.source_symbols);
    let mut hints = RepairHints::new(plugin);
    hints.after(Operation::Configure, &configured);
    if let (Some(enc), Some(w)) = (encoder.as_mut(), configured.window) {
        enc.set_window(w as usize).ok();
    }

    let mut interval_start = 0usize;
    let mut recovered_seen = 0usize;

    for seq in 0..packets {
        let now_us = seq as u64 * 100;
        host.view.now_us = now_us;
        let mut adu = vec![(seq % 251) as u8; packet_len];
        adu[..8].copy_from_slice(&(seq as u64).to_le_bytes());
        let adu = Bytes::from(adu);

        let active = host.instance.disabled().is_none();
        let d = host.instance.on_source(
            &SourceContext {
                now_us,
                seq: seq as u64,
                flow: 0,
                len: packet_len as u32,
            },
            &host.view,
        );
        let mut d = host.check(d);
        host.keep_logs(std::mem::take(&mut d.logs));
        let protect = active && (d.protect.is_some() || d.use_default());
        host.report.sources += 1;
        match encoder.as_mut().filter(|_| protect) {
            Some(enc) => {
                let packet = match enc.protect(0, adu.clone()) {
                    Ok(p) => p,
                    Err(_) => {
                        // Block full: the plugin never closed it. Close it
                        // without parity and go on (host safety net).
                        enc.repair(0).ok();
                        enc.protect(0, adu.clone())
                            .map_err(|e| Error::Other(format!("pipeline: {e}")))?
                    }
                };
                host.report.protected += 1;
                link.send(
                    packet.to_bytes(),
                    None,
                    Some(seq),
                    &mut host.report,
                    &mut receiver,
                );
            }
            None => link.send(adu, Some(seq), Some(seq), &mut host.report, &mut receiver),
        }

        let mut repair = d.repair;
        // Sources awaiting repair; the pipeline's window is exactly those.
        let pending = encoder.as_ref().map_or(0, |e| e.pending() as u32);
        match hints.due(&host.instance, pending) {
            Due::Skip => {}
            Due::Repeat(count) => repair += count,
            Due::Call => {
                let window_len = pending;
                host.view.stats = Stats {
                    sources_sent: host.report.protected,
                    repair_sent: host.report.repairs,
                    window_len: u64::from(window_len),
                    ..host.view.stats
                };
                let s = host.instance.schedule_repair(
                    &ScheduleContext {
                        now_us,
                        sources_since_repair: pending,
                        window_len,
                        window_target,
                        repair_budget: MAX_REPAIR_PER_CALL,
                    },
                    &host.view,
                );
                let mut s = host.check(s);
                host.keep_logs(std::mem::take(&mut s.logs));
                hints.after(Operation::ScheduleRepair, &s);
                if let (Some(w), Some(enc)) = (s.window, encoder.as_mut()) {
                    if enc.set_window(w as usize).is_ok() {
                        window_target = w;
                    }
                }
                repair += s.repair;
            }
        }
        if let Some(enc) = encoder.as_mut().filter(|_| repair > 0) {
            let packets = enc
                .repair(repair as usize)
                .map_err(|e| Error::Other(format!("pipeline: {e}")))?;
            for p in packets {
                host.report.repairs += 1;
                link.send(p, None, None, &mut host.report, &mut receiver);
            }
        }

        // Recoveries reach observers as they happen.
        while recovered_seen < receiver.recovered.len() {
            let r = receiver.recovered[recovered_seen];
            recovered_seen += 1;
            let result = host.instance.on_recovered(
                &RecoveredContext {
                    now_us,
                    seq: r,
                    flow: 0,
                    len: packet_len as u32,
                },
                &host.view,
            );
            host.check(result);
        }

        if (seq + 1) % feedback_every == 0 || seq + 1 == packets {
            let range = interval_start..seq + 1;
            interval_start = seq + 1;
            let lost_now: Vec<usize> = range.clone().filter(|&s| link.lost_source[s]).collect();
            let recovered = lost_now.iter().filter(|&&s| receiver.delivered[s]).count() as u32;
            let bursts = burst_lengths(&link.lost_source[range.clone()]);
            let max_burst = bursts.iter().max().map_or(0, |&b| b as u32);
            let mean_burst_x16 = (lost_now.len() as u32 * 16)
                .checked_div(bursts.len() as u32)
                .unwrap_or(0);
            host.view.stats.recovered = receiver.recovered.len() as u64;
            host.view.stats.received = (seq + 1 - host.report.lost_sources as usize) as u64;
            let fb = host.instance.on_feedback(
                &FeedbackContext {
                    now_us,
                    rtt_us: 20_000,
                    received: (range.len() - lost_now.len()) as u32,
                    lost: lost_now.len() as u32,
                    recovered,
                    max_burst,
                    mean_burst_x16,
                    reserved: 0,
                },
                &host.view,
            );
            let fb = host.check(fb);
            hints.after(Operation::OnFeedback, &fb);
            host.keep_logs(fb.logs);
            for &s in lost_now.iter().filter(|&&s| !receiver.delivered[s]) {
                let result = host.instance.on_loss(
                    &LossContext {
                        now_us,
                        seq: s as u64,
                        burst_len: max_burst,
                        reserved: 0,
                    },
                    &host.view,
                );
                host.check(result);
            }
        }
    }

    host.report.recovered = receiver.recovered.len() as u64;
    host.report.unrecovered = receiver.delivered.iter().filter(|d| !**d).count() as u64;
    host.report.plugin_calls = host.instance.calls();
    Ok(host.report)
}

/// The lossy path between the two pipelines.
struct Link {
    lost: Box<dyn FnMut(usize) -> bool>,
    transmitted: usize,
    lost_source: Vec<bool>,
}

impl Link {
    fn send(
        &mut self,
        packet: Bytes,
        plain: Option<usize>,
        source: Option<usize>,
        report: &mut Report,
        receiver: &mut Receiver,
    ) {
        let dropped = (self.lost)(self.transmitted);
        self.transmitted += 1;
        match (dropped, source) {
            (true, Some(seq)) => {
                report.lost_sources += 1;
                self.lost_source[seq] = true;
            }
            (true, None) => report.lost_repairs += 1,
            (false, _) => receiver.receive(packet, plain),
        }
    }
}
