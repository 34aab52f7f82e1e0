//! What a [`Policy`] sees and decides, and the native policies.
//!
//! The layer does the work (framing, coding, feedback, timers); a policy
//! only decides: which ADUs to protect ([`Policy::on_source`]), when and how
//! many repair symbols to send ([`Policy::schedule_repair`]), which code and
//! window to run ([`Plan::code`], [`Plan::window`]), and how to react to
//! the receiver's reports and to this end's own losses and recoveries.
//!
//! The layer asks [`Policy::schedule_repair`] after every protected source
//! and once more when the sender has been idle for the layer's idle tick
//! ([`super::LayerConfig::idle_repair`]) with sources not yet covered, so a
//! policy for sparse real-time traffic can repair the last packet of a
//! burst at once.
//!
//! Native policies, complete FEC without any eBPF:
//! - [`FixedRate`]: RFC 8681 RLC over a sliding window, a fixed number of
//!   repairs after every `n` sources;
//! - [`BlockCode`]: block Reed-Solomon, `parity` repairs per `data` sources;
//! - [`Adaptive`]: RLC whose rate and repair group follow the loss rate and
//!   burst lengths the receiver reports.
//!
//! and [`PlainBelow`], which leaves short ADUs (ACK-only QUIC packets, say)
//! plain in front of any policy.
//!
//! # Small packets
//!
//! What is protected is the policy's call: [`Source::len`] tells it how long
//! each ADU is (plugins see it as `len` in their `on_source` context). The
//! layer's part is to make protecting short ADUs cheap: repair symbols are
//! only as long as the longest source they cover
//! ([`Limits::sized_repairs`], on by default), so a window of 50-byte ACKs
//! is repaired with 53-byte symbols, not full 1400-byte ones. The native
//! policies protect every ADU, short ones included, because a layer under
//! an encrypted transport cannot tell an ACK-only packet from a short
//! message whose latency is what FEC is for, and sized repairs keep the
//! redundancy in proportion to the bytes. A policy that knows its short
//! ADUs are not worth it (QUIC ACKs are cumulative: the next ACK repeats a
//! lost one) wraps itself in [`PlainBelow`]: those then go out as they are,
//! without a header, a trailer, a tag, or a share of any repair.

#![forbid(unsafe_code)]

use std::fmt;
use std::time::{Duration, Instant};

use super::feedback::Feedback;
use super::paths::{PathId, PathView, MAX_PATHS};
use super::Stats;

/// The code a sender runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeChoice {
    /// Protect nothing: ADUs go out plain (the receiving side still decodes).
    None,
    /// Block Reed-Solomon: `data` sources, up to `parity` repairs per block.
    ReedSolomon {
        /// Sources per block.
        data: usize,
        /// Most repairs per block.
        parity: usize,
    },
    /// RFC 8681 sliding-window RLC over GF(2^8) with this window.
    Rlc {
        /// Sources a repair covers.
        window: usize,
    },
    /// RaptorQ blocks.
    RaptorQ {
        /// Sources per block.
        source_symbols: usize,
        /// Most repairs per block.
        repair_symbols: usize,
    },
}

impl Default for CodeChoice {
    fn default() -> Self {
        CodeChoice::Rlc { window: 32 }
    }
}

/// What a policy decided for one event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Plan {
    /// Protect the ADU of this `on_source` event (ignored elsewhere).
    pub protect: bool,
    /// Repair symbols to send now (the layer caps them at
    /// [`Limits::max_repairs_per_call`]).
    pub repairs: usize,
    /// New coding window / block size.
    pub window: Option<usize>,
    /// New code.
    pub code: Option<CodeChoice>,
    /// The path repair symbols take from now on ([`super::paths`]; `None`:
    /// keep the last choice, at first the usable path losing least).
    pub repair_path: Option<PathId>,
}

impl Plan {
    /// Send `repairs` repair symbols, nothing else.
    pub fn repairs(repairs: usize) -> Self {
        Plan {
            repairs,
            ..Plan::default()
        }
    }

    /// Protect this source, nothing else.
    pub fn protect() -> Self {
        Plan {
            protect: true,
            ..Plan::default()
        }
    }
}

/// What the layer can run, given to [`Policy::configure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Symbol size in bytes (the largest ADU is 3 bytes shorter).
    pub symbol_size: usize,
    /// Largest window / block the layer runs.
    pub max_window: usize,
    /// Most repair symbols the layer sends for one decision.
    pub max_repairs_per_call: usize,
    /// Whether repair symbols are only as long as the longest source they
    /// cover ([`super::LayerConfig::set_sized_repairs`]): then protecting
    /// short ADUs costs short repairs, otherwise full symbols.
    pub sized_repairs: bool,
}

/// The layer's state as a policy sees it at each call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct View {
    /// The layer's counters.
    pub stats: Stats,
    /// Source symbols in the sender's coding window or open block now.
    pub window_len: usize,
    /// The sender's window / block size setting.
    pub window_target: usize,
    /// Protected sources sent since the last repair symbol.
    pub pending: usize,
    /// The transport's smoothed round-trip time, if it told the layer.
    pub rtt: Option<Duration>,
    /// The layer's paths ([`super::paths`]): only path 0 is in use unless the
    /// transport opened more.
    pub paths: [PathView; MAX_PATHS],
}

/// An ADU about to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// Its sequence number among the ADUs this layer sent (0, 1, ...).
    pub seq: u64,
    /// Its flow id.
    pub flow: u8,
    /// Its length in bytes.
    pub len: usize,
}

/// A repair decision is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Protected sources sent since the last repair symbol.
    pub pending: usize,
    /// True at the idle tick (no source was sent for a while), false right
    /// after a source.
    pub idle: bool,
}

/// Sources of the peer found missing by this end (before any recovery).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loss {
    /// Position of the first missing source (its ESI, or its index in the
    /// block for block codes).
    pub first: u64,
    /// How many are missing in this run (the burst length).
    pub count: u32,
}

/// An ADU this end rebuilt from the peer's repair symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// Recoveries so far, this one excluded.
    pub seq: u64,
    /// Its flow id.
    pub flow: u8,
    /// Its length in bytes.
    pub len: usize,
}

/// Decides what to protect, when to send repair symbols and how many.
///
/// Every method returns a [`Plan`]; the defaults decide nothing (and protect
/// nothing in [`on_source`](Self::on_source): a policy must say so).
pub trait Policy: Send + fmt::Debug {
    /// Called once, before the first ADU: the policy picks its code.
    fn configure(&mut self, now: Instant, limits: &Limits, view: &View) -> Plan;

    /// An ADU is about to go out: protect it or not.
    fn on_source(&mut self, now: Instant, source: &Source, view: &View) -> Plan;

    /// A repair decision is due (after each protected source and at the
    /// idle tick).
    fn schedule_repair(&mut self, now: Instant, schedule: &Schedule, view: &View) -> Plan;

    /// The receiver reported on what this end sent.
    fn on_feedback(&mut self, _now: Instant, _report: &Feedback, _view: &View) -> Plan {
        Plan::default()
    }

    /// This end found sources of the peer missing.
    fn on_loss(&mut self, _now: Instant, _loss: &Loss, _view: &View) -> Plan {
        Plan::default()
    }

    /// This end rebuilt an ADU from the peer's repair symbols.
    fn on_recovered(&mut self, _now: Instant, _recovered: &Recovered, _view: &View) -> Plan {
        Plan::default()
    }

    /// Why the policy gave up (a faulting plugin), if it did: the layer then
    /// stops protecting and sends plain ADUs; receiving goes on.
    fn failure(&self) -> Option<String> {
        None
    }

    /// Plugin pluglet executions so far (0 for a native policy).
    fn calls(&self) -> u64 {
        0
    }
}

/// RLC over a sliding window of `window` sources, `repairs` repair symbols
/// after every `every` sources, and the same when the sender goes idle with
/// sources not yet covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedRate {
    /// Window (sources a repair covers).
    pub window: usize,
    /// Sources between repair groups.
    pub every: usize,
    /// Repair symbols per group.
    pub repairs: usize,
}

impl Default for FixedRate {
    /// Window 32, one repair per 4 sources (25% redundancy).
    fn default() -> Self {
        FixedRate {
            window: 32,
            every: 4,
            repairs: 1,
        }
    }
}

impl Policy for FixedRate {
    fn configure(&mut self, _now: Instant, limits: &Limits, _view: &View) -> Plan {
        let window = self.window.clamp(1, limits.max_window);
        Plan {
            window: Some(window),
            code: Some(CodeChoice::Rlc { window }),
            ..Plan::default()
        }
    }

    fn on_source(&mut self, _now: Instant, _source: &Source, _view: &View) -> Plan {
        Plan::protect()
    }

    fn schedule_repair(&mut self, _now: Instant, schedule: &Schedule, _view: &View) -> Plan {
        if schedule.pending >= self.every.max(1) || (schedule.idle && schedule.pending > 0) {
            Plan::repairs(self.repairs)
        } else {
            Plan::default()
        }
    }
}

/// Block Reed-Solomon: `parity` repair symbols close every block of `data`
/// sources, and a short block when the sender goes idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockCode {
    /// Sources per block.
    pub data: usize,
    /// Repair symbols per block.
    pub parity: usize,
}

impl Default for BlockCode {
    /// 8 sources and 2 parity symbols per block.
    fn default() -> Self {
        BlockCode { data: 8, parity: 2 }
    }
}

impl Policy for BlockCode {
    fn configure(&mut self, _now: Instant, limits: &Limits, _view: &View) -> Plan {
        let data = self
            .data
            .clamp(1, limits.max_window.min(super::RS_MAX_DATA));
        self.data = data;
        self.parity = self.parity.clamp(1, super::RS_MAX_PARITY);
        Plan {
            window: Some(data),
            code: Some(CodeChoice::ReedSolomon {
                data,
                parity: self.parity,
            }),
            ..Plan::default()
        }
    }

    fn on_source(&mut self, _now: Instant, _source: &Source, _view: &View) -> Plan {
        Plan::protect()
    }

    fn schedule_repair(&mut self, _now: Instant, schedule: &Schedule, _view: &View) -> Plan {
        if schedule.pending >= self.data || (schedule.idle && schedule.pending > 0) {
            Plan::repairs(self.parity)
        } else {
            Plan::default()
        }
    }
}

/// RLC whose rate follows the receiver: one group of repairs per `k`
/// sources, `k` from the smoothed loss rate the receiver reports, groups of
/// two for bursts of three or more, and a flush at the idle tick so sparse
/// real-time traffic is covered at once.
#[derive(Debug, Clone)]
pub struct Adaptive {
    window: usize,
    sources_per_repair: usize,
    repairs_per_group: usize,
    loss_estimate: f64,
}

impl Default for Adaptive {
    fn default() -> Self {
        Adaptive {
            window: 32,
            sources_per_repair: 8,
            repairs_per_group: 1,
            loss_estimate: 0.02,
        }
    }
}

impl Adaptive {
    /// Sources per repair group now.
    pub fn sources_per_repair(&self) -> usize {
        self.sources_per_repair
    }

    /// Repair symbols per group now.
    pub fn repairs_per_group(&self) -> usize {
        self.repairs_per_group
    }
}

impl Policy for Adaptive {
    fn configure(&mut self, _now: Instant, limits: &Limits, _view: &View) -> Plan {
        self.window = self.window.clamp(1, limits.max_window);
        Plan {
            window: Some(self.window),
            code: Some(CodeChoice::Rlc {
                window: self.window,
            }),
            ..Plan::default()
        }
    }

    fn on_source(&mut self, _now: Instant, _source: &Source, _view: &View) -> Plan {
        Plan::protect()
    }

    fn schedule_repair(&mut self, _now: Instant, schedule: &Schedule, _view: &View) -> Plan {
        if schedule.pending >= self.sources_per_repair || (schedule.idle && schedule.pending > 0) {
            Plan::repairs(self.repairs_per_group)
        } else {
            Plan::default()
        }
    }

    fn on_feedback(&mut self, _now: Instant, report: &Feedback, _view: &View) -> Plan {
        if report.sources == 0 {
            return Plan::default();
        }
        let sample = f64::from(report.lost) / f64::from(report.sources);
        self.loss_estimate = 0.8 * self.loss_estimate + 0.2 * sample;
        // Enough repair that a group rarely sees more losses than repairs.
        self.sources_per_repair = match self.loss_estimate {
            p if p < 0.002 => 32,
            p if p < 0.01 => 16,
            p if p < 0.03 => 8,
            p if p < 0.08 => 4,
            _ => 2,
        };
        self.repairs_per_group = if report.max_burst >= 3 { 2 } else { 1 };
        Plan::default()
    }
}

/// ADUs shorter than `len` bytes go out plain, unseen by `inner`, which
/// decides everything else: for a sender whose short packets are not worth
/// their share of repair (QUIC ACK-only packets, about 30 to 60 bytes,
/// which the next ACK repeats anyway).
///
/// ```
/// use std::time::Instant;
/// use bytes::Bytes;
/// use fec_core::layer::{Layer, LayerConfig, policy::{FixedRate, PlainBelow}};
///
/// let now = Instant::now();
/// let policy = PlainBelow { len: 64, inner: FixedRate::default() };
/// let mut layer = Layer::new(LayerConfig::default(), Some(Box::new(policy)), now);
/// let mut wire = Vec::new();
/// for len in [50, 1200, 40, 300] {
///     layer.send(now, Bytes::from(vec![0x40; len]), &mut wire);
/// }
/// assert_eq!((layer.stats().plain_packets, layer.stats().source_packets), (2, 2));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainBelow<P> {
    /// ADUs shorter than this are left plain.
    pub len: usize,
    /// The policy for the rest.
    pub inner: P,
}

impl<P: Policy> Policy for PlainBelow<P> {
    fn configure(&mut self, now: Instant, limits: &Limits, view: &View) -> Plan {
        self.inner.configure(now, limits, view)
    }

    fn on_source(&mut self, now: Instant, source: &Source, view: &View) -> Plan {
        if source.len < self.len {
            return Plan::default();
        }
        self.inner.on_source(now, source, view)
    }

    fn schedule_repair(&mut self, now: Instant, schedule: &Schedule, view: &View) -> Plan {
        self.inner.schedule_repair(now, schedule, view)
    }

    fn on_feedback(&mut self, now: Instant, report: &Feedback, view: &View) -> Plan {
        self.inner.on_feedback(now, report, view)
    }

    fn on_loss(&mut self, now: Instant, loss: &Loss, view: &View) -> Plan {
        self.inner.on_loss(now, loss, view)
    }

    fn on_recovered(&mut self, now: Instant, recovered: &Recovered, view: &View) -> Plan {
        self.inner.on_recovered(now, recovered, view)
    }

    fn failure(&self) -> Option<String> {
        self.inner.failure()
    }

    fn calls(&self) -> u64 {
        self.inner.calls()
    }
}
