//! Run a plugin against a synthetic packet stream and a loss trace; report
//! what it sent, lost and recovered. What plugin authors use in their tests,
//! and `fec-plugin run`.
//!
//! Both ends are the same [`fec_core::layer::Layer`] the QUIC host runs, each
//! driven by its own instance of the plugin through the one plugin host,
//! [`crate::host::PluginPolicy`], so a plugin behaves here as it does in
//! production. Per source packet `seq` (time advances [`PACKET_INTERVAL`],
//! 100 µs, per packet):
//!
//! 1. A receiver report that is due reaches the sender's `on_feedback` at
//!    once (no feedback delay or loss is modelled). The receiver reports every
//!    `feedback_every` packet intervals (received, lost, recovered, longest and
//!    mean burst, as far as the receiver can tell from what arrived), and once
//!    more after the last packet.
//! 2. `on_source`: protect the packet (`fec_protect`) or send it plain; with
//!    no decision (`FEC_RC_DEFAULT` or no pluglet) the host protects it.
//! 3. `schedule_repair` with `sources_since_repair` = sources protected since
//!    the last repair: `fec_emit_repair(n)` sends `n` repair symbols now. The
//!    host skips this call while fewer sources than the plugin's
//!    `fec_repair_after` hint are pending, and after a `fec_repair_repeat(k)`
//!    hint it skips the next `k` due calls and sends the hinted count itself
//!    each time, until `on_feedback` runs a pluglet ([`crate::hints`]).
//! 4. Every packet (source and repair) goes through the loss trace; the
//!    receiver's layer gets what survives, and its instance sees `on_loss` for
//!    each run of missing sources it detects and `on_recovered` for each
//!    recovery.
//!
//! A plugin fault disables the instance; the run continues without FEC and
//! the report carries the reason.
//!
//! # Paths
//!
//! The link is one lossy channel, and the layers run one path: the sender's
//! plugin sees path 0 validated with the layer's counters. To test how a
//! plugin chooses among several paths, [`run_on_paths`] shows it the per-path
//! views of a [`PathSchedule`] instead ([`View::paths`], what
//! `fec_path_stat` reads), for the whole run or from given sources on. Every
//! run records what the sender's plugin chose with `fec_repair_path`
//! ([`Report::path_choices`]) and the path each repair it sent would take
//! on those views ([`Report::repairs_by_path`]).
//!
//! ```
//! use std::time::Duration;
//! use fec_core::layer::paths::PathState;
//! use fec_plugin_sdk::harness::{path_view, run_on_paths, HarnessConfig, PathSchedule};
//! use fec_plugin_sdk::build::pack_assembly;
//! use fec_plugin_sdk::runtime::{HostOffer, Plugin};
//! // A repair after every 4 sources, on path 1.
//! let package = pack_assembly(
//!     ".section replace/schedule_repair
//!      ldxw r2, [r1+8]\n mov r0, 0\n jlt r2, 4, +4\n mov r1, 1\n call 11\n mov r1, 1\n call 2\n mov r0, 0\n exit",
//!     "on-path-1", "1", 256,
//! ).unwrap();
//! let plugin = Plugin::load(&package, &HostOffer::all()).unwrap();
//! let ms = Some(Duration::from_millis(10));
//! let two_paths = PathSchedule::fixed([
//!     path_view(PathState::Validated, 0, ms),
//!     path_view(PathState::Validated, 50, ms),
//!     path_view(PathState::Unused, 0, None),
//!     path_view(PathState::Unused, 0, None),
//! ]);
//! let config = HarnessConfig { packets: 100, ..HarnessConfig::default() };
//! let report = run_on_paths(&plugin, &config, &two_paths).unwrap();
//! assert_eq!(report.repairs_by_path, [0, 25, 0, 0]);
//! assert_eq!(report.path_choices.len(), 25);
//! // Path 1 failed from source 50 on: the chosen path is not usable, so the
//! // repairs go on the validated one losing least.
//! let mut failed = two_paths.at(0).copied().unwrap();
//! failed[1].state = PathState::Failed;
//! let report = run_on_paths(&plugin, &config, &two_paths.from_source(50, failed)).unwrap();
//! assert_eq!(report.repairs_by_path, [13, 12, 0, 0]);
//! ```
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
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fec_core::layer::feedback::Feedback;
use fec_core::layer::paths::{PathId, PathState, PathView, MAX_PATHS};
use fec_core::layer::policy::{Limits, Loss, Plan, Policy, Recovered, Schedule, Source, View};
use fec_core::layer::{Layer, LayerConfig};
use fec_core::pipeline::loss::{Bernoulli, GilbertElliott, LossModel};
use fec_core::pipeline::wire::{Header, ADU_INFO_LEN};

use crate::abi::{Operation, Scheme};
use crate::host::{Call, PluginPolicy};
use crate::runtime::{CodeChoice, Plugin};
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

    /// Whether transmission `i` (0, 1, ...) is lost; ask in order.
    pub fn into_oracle(self) -> Box<dyn FnMut(usize) -> bool> {
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
    /// Packet intervals per receiver report.
    pub feedback_every: usize,
    /// Record every plugin call of both ends ([`Report::calls`]).
    pub record_calls: bool,
}

impl Default for HarnessConfig {
    fn default() -> Self {
        HarnessConfig {
            packets: 1000,
            packet_len: 1200,
            loss: LossTrace::None,
            feedback_every: 50,
            record_calls: false,
        }
    }
}

/// The per-path views a run shows the sender's plugin ([`View::paths`],
/// what `fec_path_stat` reads) instead of the layer's own, from given
/// source packets on. Empty (the default): the layer's own throughout.
///
/// A view is shown as given, counters included (the harness does not count
/// datagrams per scheduled path); the link stays one lossy channel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathSchedule {
    /// `(first source, views)`, by first source.
    steps: Vec<(usize, [PathView; MAX_PATHS])>,
}

impl PathSchedule {
    /// The layer's own views throughout (path 0 validated, with its counters).
    pub fn layer() -> Self {
        PathSchedule::default()
    }

    /// `paths` for the whole run, `configure` included.
    pub fn fixed(paths: [PathView; MAX_PATHS]) -> Self {
        PathSchedule::default().from_source(0, paths)
    }

    /// `paths` from source `seq` on: for the decisions taken while the
    /// harness handles source `seq` (the report due then, `on_source`,
    /// `schedule_repair`) and later. Before the first step the layer's own
    /// views are shown; a step for the same source replaces the earlier one.
    pub fn from_source(mut self, seq: usize, paths: [PathView; MAX_PATHS]) -> Self {
        match self.steps.binary_search_by_key(&seq, |(from, _)| *from) {
            Ok(i) => self.steps[i].1 = paths,
            Err(i) => self.steps.insert(i, (seq, paths)),
        }
        self
    }

    /// The views shown while source `seq` is handled; `None`: the layer's own.
    pub fn at(&self, seq: usize) -> Option<&[PathView; MAX_PATHS]> {
        let after = self.steps.partition_point(|(from, _)| *from <= seq);
        after.checked_sub(1).map(|i| &self.steps[i].1)
    }
}

/// A path view for a [`PathSchedule`]: `state`, loss rate and RTT, counters 0.
pub fn path_view(state: PathState, loss_permille: u32, rtt: Option<Duration>) -> PathView {
    PathView {
        state,
        loss_permille,
        rtt,
        ..PathView::default()
    }
}

/// The path a repair takes when the policy chose `chosen`: that path while
/// it is validated, else the validated path losing least (ties: the shorter
/// RTT, an unknown one last, then the lower id), else path 0. The rule of
/// `fec_core::layer::paths`, applied to the views the plugin was shown.
///
/// The harness routes no sources, so `fec_repair_path(FEC_PATH_OTHER)` (not
/// the newest source's path) resolves as if no path were chosen.
pub fn repair_route(chosen: Option<PathId>, paths: &[PathView; MAX_PATHS]) -> PathId {
    let usable = |i: usize| paths[i].is_usable();
    if let Some(path) = chosen.filter(|&p| usize::from(p) < MAX_PATHS && usable(p.into())) {
        return path;
    }
    let candidates = paths.iter().enumerate().filter(|(_, v)| v.is_usable());
    fec_core::layer::paths::least_lossy(candidates).map_or(0, |i| i as PathId)
}

/// A repair path the sender's plugin chose (`fec_repair_path`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathChoice {
    /// The source being handled when it was decided (0 for `configure`,
    /// [`HarnessConfig::packets`] for the report after the last packet).
    pub seq: usize,
    /// The operation that decided it.
    pub operation: Operation,
    /// The path.
    pub path: PathId,
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
    /// Pluglet executions of the sender's instance.
    pub plugin_calls: u64,
    /// Pluglet executions of the receiver's instance.
    pub receiver_plugin_calls: u64,
    /// Why the plugin was disabled, if it was.
    pub fault: Option<String>,
    /// Messages the plugin logged (first 32).
    pub logs: Vec<String>,
    /// With [`HarnessConfig::record_calls`]: every call of the sender's
    /// instance, then every call of the receiver's.
    pub calls: Option<(Vec<Call>, Vec<Call>)>,
    /// Every decision of the sender's plugin that named a repair path, in
    /// order (a `fec_repair_repeat` hint the host followed stands for the
    /// calls it skipped, choice included).
    pub path_choices: Vec<PathChoice>,
    /// Repair packets sent, by the path each would take on the views the
    /// plugin was shown ([`repair_route`] of its latest choice).
    pub repairs_by_path: [u64; MAX_PATHS],
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
        if !self.path_choices.is_empty() {
            let by_path: Vec<String> = (0..MAX_PATHS)
                .map(|i| format!("{i}:{}", self.repairs_by_path[i]))
                .collect();
            writeln!(f, "repairs by path   {}", by_path.join(" "))?;
        }
        writeln!(f, "plugin calls      {}", self.plugin_calls)?;
        match &self.fault {
            Some(reason) => writeln!(f, "plugin fault      {reason}"),
            None => writeln!(f, "plugin fault      none"),
        }
    }
}

/// Time between two source packets of the synthetic stream.
pub const PACKET_INTERVAL: Duration = Duration::from_micros(100);
/// Round-trip time the layers are told (the link itself adds no delay).
pub const RTT: Duration = Duration::from_millis(20);

/// The layer configuration the harness runs (the QUIC host's defaults, with
/// symbols sized for `config.packet_len` and reports every
/// `config.feedback_every` packet intervals).
pub fn layer_config(config: &HarnessConfig) -> LayerConfig {
    let mut layer = LayerConfig::default();
    layer
        .set_symbol_size(config.packet_len + ADU_INFO_LEN)
        .set_feedback_interval(PACKET_INTERVAL * config.feedback_every.max(1) as u32);
    layer
}

/// The ADU of source `seq`: its sequence number (little-endian) first.
pub fn adu(seq: usize, len: usize) -> Bytes {
    let mut adu = vec![(seq % 251) as u8; len];
    adu[..8].copy_from_slice(&(seq as u64).to_le_bytes());
    Bytes::from(adu)
}

fn seq_of(adu: &[u8]) -> Option<usize> {
    Some(u64::from_le_bytes(adu.get(..8)?.try_into().ok()?) as usize)
}

fn is_repair(datagram: &[u8]) -> bool {
    Header::parse(datagram).is_ok_and(|(header, _)| header.is_repair())
}

/// What the sender's plugin decided about paths, shared by the harness and
/// the policy the sender's layer owns.
#[derive(Debug, Default)]
struct PathRecord {
    /// The source being handled.
    seq: usize,
    choices: Vec<PathChoice>,
    chosen: Option<PathId>,
    /// Where a repair goes now ([`repair_route`] on the views last shown).
    route: PathId,
    repairs_by_path: [u64; MAX_PATHS],
}

impl PathRecord {
    /// Counts the repairs among `datagrams` on the current route.
    fn count_repairs(&mut self, datagrams: &[Bytes]) {
        let repairs = datagrams.iter().filter(|d| is_repair(d)).count() as u64;
        self.repairs_by_path[usize::from(self.route)] += repairs;
    }
}

fn lock(record: &Mutex<PathRecord>) -> MutexGuard<'_, PathRecord> {
    // Plain data behind the lock: a panic elsewhere leaves it usable.
    record.lock().unwrap_or_else(|p| p.into_inner())
}

/// The sender's policy: shows `inner` the scheduled paths and records its
/// repair path choices.
#[derive(Debug)]
struct ShownPaths<P> {
    inner: P,
    schedule: PathSchedule,
    record: Arc<Mutex<PathRecord>>,
}

impl<P: Policy> ShownPaths<P> {
    fn decide(
        &mut self,
        operation: Operation,
        view: &View,
        call: impl FnOnce(&mut P, &View) -> Plan,
    ) -> Plan {
        let seq = lock(&self.record).seq;
        let mut shown = *view;
        if let Some(paths) = self.schedule.at(seq) {
            shown.paths = *paths;
        }
        let plan = call(&mut self.inner, &shown);
        let mut record = lock(&self.record);
        if let Some(path) = plan.repair_path {
            record.choices.push(PathChoice {
                seq,
                operation,
                path,
            });
            record.chosen = Some(path);
        }
        record.route = repair_route(record.chosen, &shown.paths);
        plan
    }
}

impl<P: Policy> Policy for ShownPaths<P> {
    fn configure(&mut self, now: Instant, limits: &Limits, view: &View) -> Plan {
        self.decide(Operation::Configure, view, |p, v| {
            p.configure(now, limits, v)
        })
    }

    fn on_source(&mut self, now: Instant, source: &Source, view: &View) -> Plan {
        self.decide(Operation::OnSource, view, |p, v| {
            p.on_source(now, source, v)
        })
    }

    fn schedule_repair(&mut self, now: Instant, schedule: &Schedule, view: &View) -> Plan {
        self.decide(Operation::ScheduleRepair, view, |p, v| {
            p.schedule_repair(now, schedule, v)
        })
    }

    fn on_feedback(&mut self, now: Instant, report: &Feedback, view: &View) -> Plan {
        self.decide(Operation::OnFeedback, view, |p, v| {
            p.on_feedback(now, report, v)
        })
    }

    fn on_loss(&mut self, now: Instant, loss: &Loss, view: &View) -> Plan {
        self.decide(Operation::OnLoss, view, |p, v| p.on_loss(now, loss, v))
    }

    fn on_recovered(&mut self, now: Instant, recovered: &Recovered, view: &View) -> Plan {
        self.decide(Operation::OnRecovered, view, |p, v| {
            p.on_recovered(now, recovered, v)
        })
    }

    fn failure(&self) -> Option<String> {
        self.inner.failure()
    }

    fn calls(&self) -> u64 {
        self.inner.calls()
    }
}

/// Reports due at the receiver reach the sender at once (no delay is
/// modelled, none is lost). What the sender sends in answer is dropped
/// (its repairs counted).
fn report_back(
    now: Instant,
    receiver: &mut Layer,
    sender: &mut Layer,
    back: &mut Vec<Bytes>,
    record: &Mutex<PathRecord>,
) {
    receiver.handle_timeout(now, back);
    for datagram in back.drain(..) {
        answer(now, sender, datagram, record);
    }
}

/// A report (or anything else) from the receiver reaches the sender.
fn answer(now: Instant, sender: &mut Layer, datagram: Bytes, record: &Mutex<PathRecord>) {
    let mut out = Vec::new();
    sender.receive(now, datagram, &mut Vec::new(), &mut out);
    lock(record).count_repairs(&out);
}

/// Run `plugin` over `config.packets` packets with `config.loss`.
///
/// Both ends are [`Layer`]s driven by [`PluginPolicy`], as on the QUIC
/// host: the sender's instance decides; the receiver's instance (another
/// instance of the same plugin) observes that end's losses and recoveries
/// and sends the reports. The sender's plugin sees the layer's own paths;
/// [`run_on_paths`] shows it others.
pub fn run(plugin: &Plugin, config: &HarnessConfig) -> Result<Report, Error> {
    run_on_paths(plugin, config, &PathSchedule::layer())
}

/// [`run`], the sender's plugin shown the per-path views of `paths` (see
/// [the module docs](self#paths)).
pub fn run_on_paths(
    plugin: &Plugin,
    config: &HarnessConfig,
    paths: &PathSchedule,
) -> Result<Report, Error> {
    let packets = config.packets;
    let packet_len = config.packet_len;
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
    let mut lost = config.loss.clone().into_oracle();
    let layer_config = layer_config(config);
    let start = Instant::now();
    let mut policy = PluginPolicy::new(plugin, start);
    let mut receiver_policy = PluginPolicy::new(plugin, start);
    if config.record_calls {
        policy.record_calls();
        receiver_policy.record_calls();
    }
    let observed = policy.observer();
    let record = Arc::new(Mutex::new(PathRecord::default()));
    let policy = ShownPaths {
        inner: policy,
        schedule: paths.clone(),
        record: Arc::clone(&record),
    };
    let mut sender = Layer::new(layer_config.clone(), Some(Box::new(policy)), start);
    let receiver_observed = receiver_policy.observer();
    let mut receiver = Layer::new(layer_config, Some(Box::new(receiver_policy)), start);
    sender.set_rtt(RTT);
    receiver.set_rtt(RTT);

    let mut report = Report::default();
    let mut lost_source = vec![false; packets];
    let mut delivered = vec![false; packets];
    let (mut wire, mut up, mut back) = (Vec::new(), Vec::new(), Vec::new());
    let mut transmitted = 0usize;
    let mut now = start;
    for seq in 0..packets {
        now = start + PACKET_INTERVAL * seq as u32;
        lock(&record).seq = seq;
        report_back(now, &mut receiver, &mut sender, &mut back, &record);
        sender.handle_timeout(now, &mut wire);
        lock(&record).count_repairs(&wire);
        let idle = wire.len();
        sender.send(now, adu(seq, packet_len), &mut wire);
        lock(&record).count_repairs(&wire[idle..]);
        report.sources += 1;
        for datagram in wire.drain(..) {
            let source = (!is_repair(&datagram)).then_some(seq);
            let dropped = lost(transmitted);
            transmitted += 1;
            match (dropped, source) {
                (true, Some(seq)) => {
                    report.lost_sources += 1;
                    lost_source[seq] = true;
                }
                (true, None) => report.lost_repairs += 1,
                (false, _) => receiver.receive(now, datagram, &mut up, &mut back),
            }
        }
        for adu in up.drain(..) {
            if let Some(s) = seq_of(&adu).filter(|s| *s < packets) {
                delivered[s] = true;
            }
        }
        for datagram in back.drain(..) {
            answer(now, &mut sender, datagram, &record);
        }
    }
    // The last report, for the packets since the one before.
    lock(&record).seq = packets;
    if let Some(due) = receiver.poll_timeout() {
        report_back(due.max(now), &mut receiver, &mut sender, &mut back, &record);
    }

    let stats = sender.stats();
    report.protected = stats.source_packets;
    report.repairs = stats.repair_packets;
    report.recovered = (0..packets)
        .filter(|&s| lost_source[s] && delivered[s])
        .count() as u64;
    report.unrecovered = delivered.iter().filter(|d| !**d).count() as u64;
    report.plugin_calls = stats.plugin_calls;
    report.receiver_plugin_calls = receiver.stats().plugin_calls;
    let observed = observed.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let receiver_observed = receiver_observed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    report.calls = observed.calls.zip(receiver_observed.calls);
    // Without a code choice the host's default is the RLC the design centres on.
    report.code = Some(observed.configured_code.unwrap_or(CodeChoice {
        scheme: Scheme::Rlc,
        source_symbols: 32,
        repair_symbols: 1,
    }));
    report.fault = observed.fault.or(receiver_observed.fault);
    report.logs = observed.logs;
    let mut record = lock(&record);
    report.path_choices = std::mem::take(&mut record.choices);
    report.repairs_by_path = record.repairs_by_path;
    Ok(report)
}
