//! The FEC layer: one transport-agnostic, sans-IO instance per peer.
//!
//! A [`Layer`] sits between an application's datagrams (ADUs: QUIC packets,
//! tunnelled IP packets, game updates) and the network. It owns no socket,
//! clock or thread, in the way quinn-proto sits under quinn: time comes in
//! as `now`, output goes into caller-owned vectors.
//!
//! - [`Layer::send`]: an ADU in, the datagrams to put on the wire out (its
//!   source packet or the plain ADU, plus any repair packets due);
//! - [`Layer::receive`]: a datagram from the peer in, ADUs to deliver out
//!   (the one it carried and any it let the layer rebuild), plus datagrams
//!   to send back;
//! - [`Layer::poll_timeout`] / [`Layer::handle_timeout`]: the idle repair
//!   tick and the receiver reports ([`feedback`]), due when nothing else
//!   happens;
//! - [`Layer::stats`] gives the counters.
//!
//! What to protect, when to send repair and how much is a [`Policy`]'s
//! decision ([`policy`]; native ones ship here, and `fec-plugin-sdk` runs
//! eBPF plugins as one). Symbol size, flow id, window limits and intervals
//! are [`LayerConfig`]. Memory is bounded whatever arrives: decoders exist
//! only for schemes the peer used, within [`LayerConfig::max_window`].
//!
//! # Demultiplexing: the first byte
//!
//! Every datagram the layer makes keeps bit [`PLAIN_BIT`] (0x40) of its
//! first byte clear: FEC packets ([`crate::pipeline::wire`], 0x80 set),
//! feedback ([`feedback::FEEDBACK_TYPE`]) and the one-byte
//! [`PLAIN_PREFIX`] in front of a plain ADU whose own first byte has the bit
//! clear. A plain ADU whose first byte has the bit set goes out as it is: a
//! QUIC packet always sets it (RFC 9000's fixed bit), so over QUIC the layer
//! adds nothing to unprotected packets and a receiver tells QUIC from FEC by
//! that bit, as RFC 7983-style demultiplexing does.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use bytes::Bytes;
//! use fec_core::layer::{Layer, LayerConfig, policy::FixedRate};
//!
//! let config = LayerConfig::default();
//! let mut now = Instant::now();
//! let mut sender = Layer::new(config.clone(), Some(Box::new(FixedRate::default())), now);
//! let mut receiver = Layer::receive_only(config);
//! let (mut wire, mut delivered, mut back) = (Vec::new(), Vec::new(), Vec::new());
//! let adu = Bytes::from_static(b"one datagram of the application");
//! sender.send(now, adu.clone(), &mut wire);
//! now += Duration::from_millis(2);
//! sender.handle_timeout(now, &mut wire); // idle tick: a repair packet
//! assert_eq!(wire.len(), 2);
//! wire.remove(0); // the source packet is lost...
//! for datagram in wire {
//!     receiver.receive(now, datagram, &mut delivered, &mut back);
//! }
//! assert_eq!(delivered, vec![adu]); // ...and rebuilt
//! assert_eq!(receiver.stats().recovered, 1);
//! ```

#![forbid(unsafe_code)]

pub mod auth;
pub mod feedback;
pub mod paths;
pub mod policy;
mod receiver;
mod sender;

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::pipeline::wire::{self, ADU_INFO_LEN};
use auth::{Keys, Opener, Sealer, TRAILER_LEN};
use feedback::{Feedback, FEEDBACK_TYPE};
use paths::{Carried, PathEvent, PathId, PathView, Paths, MAX_PATHS, PROBE_TYPE, RESPONSE_TYPE};
use policy::{CodeChoice, Limits, Loss, Plan, Policy, Recovered, Schedule, Source, View};
use receiver::Receiver;
use sender::Sender;

/// Bit of the first byte set in plain ADUs sent as they are, and clear in
/// every datagram the layer makes (QUIC's fixed bit).
pub const PLAIN_BIT: u8 = wire::QUIC_FIXED_BIT;
/// First byte put in front of a plain ADU whose own first byte has
/// [`PLAIN_BIT`] clear.
pub const PLAIN_PREFIX: u8 = 0x20;
/// The most bytes a datagram of the layer is longer than the longest ADU it
/// protects: a repair packet is the longest header of any scheme plus a
/// symbol, which is the ADU and its [`ADU_INFO_LEN`] bytes of ADU
/// information, plus the authentication trailer ([`auth::TRAILER_LEN`]) of
/// a keyed layer. A transport lowers its packet size by this much so every
/// FEC datagram still fits the path.
pub const MAX_OVERHEAD: usize = wire::MAX_HEADER_LEN + ADU_INFO_LEN + TRAILER_LEN;

// Sealing a pipeline packet must fit the room the pipeline leaves behind it.
const _: () = assert!(TRAILER_LEN <= crate::pipeline::PACKET_TAILROOM);
/// Most sources per Reed-Solomon block a layer sends or accepts.
pub const RS_MAX_DATA: usize = 128;
/// Most parity symbols per Reed-Solomon block a layer sends or accepts
/// (with [`RS_MAX_DATA`], the 256 symbols of GF(2^8)).
pub const RS_MAX_PARITY: usize = 128;
/// Default of [`LayerConfig::max_repairs_per_call`].
pub const DEFAULT_MAX_REPAIRS_PER_CALL: usize = 64;
/// Default of [`LayerConfig::max_window`].
pub const DEFAULT_MAX_WINDOW: usize = 256;
/// Default of [`LayerConfig::feedback_interval`].
pub const DEFAULT_FEEDBACK_INTERVAL: Duration = Duration::from_millis(50);
/// Default of [`LayerConfig::idle_repair`].
pub const DEFAULT_IDLE_REPAIR: Duration = Duration::from_millis(1);

/// What a datagram from the peer is, by its first byte (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatagramKind {
    /// A plain ADU sent as it is ([`PLAIN_BIT`] set): a QUIC packet over QUIC.
    Plain,
    /// A plain ADU behind a [`PLAIN_PREFIX`] byte.
    PrefixedPlain,
    /// A source or repair packet of [`crate::pipeline::wire`].
    Fec,
    /// A receiver report ([`feedback`]).
    Feedback,
    /// A path probe ([`paths`]).
    Probe,
    /// A path probe's response ([`paths`]).
    Response,
    /// Nothing this layer makes (including the empty datagram).
    Unknown,
}

impl DatagramKind {
    /// The kind of `datagram`.
    pub fn of(datagram: &[u8]) -> Self {
        match datagram.first() {
            Some(b) if b & PLAIN_BIT != 0 => DatagramKind::Plain,
            Some(&PLAIN_PREFIX) => DatagramKind::PrefixedPlain,
            Some(&FEEDBACK_TYPE) => DatagramKind::Feedback,
            Some(&PROBE_TYPE) => DatagramKind::Probe,
            Some(&RESPONSE_TYPE) => DatagramKind::Response,
            Some(b) if b & 0x80 != 0 => DatagramKind::Fec,
            _ => DatagramKind::Unknown,
        }
    }

    /// True when `datagram` carries an ADU of the application (plain, or
    /// as a source packet), false for the layer's own (repairs, reports,
    /// probes). A transport that batches equal-sized datagrams (GSO) may
    /// move the layer's own behind the ADUs of one send: repairs protect
    /// what came before them, and the ADUs keep their order.
    pub fn carries_adu(datagram: &[u8]) -> bool {
        match DatagramKind::of(datagram) {
            DatagramKind::Plain | DatagramKind::PrefixedPlain => true,
            DatagramKind::Fec => !wire::is_repair_packet(datagram),
            _ => false,
        }
    }
}

/// Configuration of a [`Layer`]; setters take `&mut self` and chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerConfig {
    symbol_size: usize,
    flow: u8,
    feedback_interval: Duration,
    idle_repair: Option<Duration>,
    max_window: usize,
    max_repairs_per_call: usize,
    sized_repairs: bool,
}

impl Default for LayerConfig {
    /// Symbols for 1500-byte ADUs, flow 0, reports every 50 ms, an idle
    /// repair tick of 1 ms, windows up to 256, up to 64 repairs per
    /// decision, repair symbols sized by what they cover.
    fn default() -> Self {
        LayerConfig {
            symbol_size: crate::pipeline::DEFAULT_SYMBOL_SIZE,
            flow: 0,
            feedback_interval: DEFAULT_FEEDBACK_INTERVAL,
            idle_repair: Some(DEFAULT_IDLE_REPAIR),
            max_window: DEFAULT_MAX_WINDOW,
            max_repairs_per_call: DEFAULT_MAX_REPAIRS_PER_CALL,
            sized_repairs: true,
        }
    }
}

impl LayerConfig {
    /// Symbol size in bytes: ADUs up to `symbol_size - 3` bytes are
    /// protected (longer ones go out plain). At least 4.
    pub fn set_symbol_size(&mut self, symbol_size: usize) -> &mut Self {
        self.symbol_size = symbol_size.max(ADU_INFO_LEN + 1);
        self
    }

    /// Flow id written into every source symbol.
    pub fn set_flow(&mut self, flow: u8) -> &mut Self {
        self.flow = flow;
        self
    }

    /// How often the receiving side reports (at least 1 ms).
    pub fn set_feedback_interval(&mut self, interval: Duration) -> &mut Self {
        self.feedback_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How long after the last source the policy is asked once more for
    /// repair (`None`: never).
    pub fn set_idle_repair(&mut self, idle: Option<Duration>) -> &mut Self {
        self.idle_repair = idle;
        self
    }

    /// Largest window or block the sender runs and the receiver accepts
    /// (1..=256).
    pub fn set_max_window(&mut self, max_window: usize) -> &mut Self {
        self.max_window = max_window.clamp(1, DEFAULT_MAX_WINDOW);
        self
    }

    /// Most repair symbols sent for one decision (at least 1).
    pub fn set_max_repairs_per_call(&mut self, max: usize) -> &mut Self {
        self.max_repairs_per_call = max.max(1);
        self
    }

    /// Whether a repair symbol is only as long as the longest source it
    /// covers (`true`, the default) or always the symbol size. The bytes
    /// past that length are zeros whatever the code, so sized repairs of a
    /// window of 50-byte ACKs take 53 bytes and GF(2^8) work on 53 bytes
    /// per source instead of the full symbol; the receiver puts the zeros
    /// back. Block codes size theirs so either way. `false` is for peers
    /// whose receivers predate shortened RLC repairs (they drop them and
    /// count them as rejected).
    pub fn set_sized_repairs(&mut self, sized: bool) -> &mut Self {
        self.sized_repairs = sized;
        self
    }

    /// See [`set_sized_repairs`](Self::set_sized_repairs).
    pub fn sized_repairs(&self) -> bool {
        self.sized_repairs
    }

    /// Symbol size in bytes.
    pub fn symbol_size(&self) -> usize {
        self.symbol_size
    }

    /// Longest ADU that can be protected.
    pub fn max_adu_len(&self) -> usize {
        self.symbol_size - ADU_INFO_LEN
    }

    /// Flow id of source symbols.
    pub fn flow(&self) -> u8 {
        self.flow
    }

    /// Receiver report interval.
    pub fn feedback_interval(&self) -> Duration {
        self.feedback_interval
    }

    /// Idle repair tick.
    pub fn idle_repair(&self) -> Option<Duration> {
        self.idle_repair
    }

    /// Largest window or block.
    pub fn max_window(&self) -> usize {
        self.max_window
    }

    /// Most repair symbols per decision.
    pub fn max_repairs_per_call(&self) -> usize {
        self.max_repairs_per_call
    }

    /// What a policy is told in [`Policy::configure`].
    pub fn limits(&self) -> Limits {
        Limits {
            symbol_size: self.symbol_size,
            max_window: self.max_window,
            max_repairs_per_call: self.max_repairs_per_call,
            sized_repairs: self.sized_repairs,
        }
    }

    /// `code` brought within these limits (the one place where a policy's
    /// wish becomes what the layer runs).
    pub fn clamp_code(&self, code: CodeChoice) -> CodeChoice {
        let max = self.max_window;
        match code {
            CodeChoice::None => CodeChoice::None,
            CodeChoice::ReedSolomon { data, parity } => CodeChoice::ReedSolomon {
                data: data.clamp(1, max.min(RS_MAX_DATA)),
                parity: parity.clamp(1, RS_MAX_PARITY),
            },
            CodeChoice::Rlc { window } => CodeChoice::Rlc {
                window: window.clamp(1, max),
            },
            CodeChoice::RaptorQ {
                source_symbols,
                repair_symbols,
            } => CodeChoice::RaptorQ {
                source_symbols: source_symbols.clamp(1, max),
                repair_symbols: repair_symbols.clamp(1, 1024),
            },
        }
    }
}

/// Counters of one layer (one peer), cumulative.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// ADUs sent as source symbols.
    pub source_packets: u64,
    /// Bytes of those ADUs.
    pub source_bytes: u64,
    /// ADUs sent plain (unprotected).
    pub plain_packets: u64,
    /// Repair packets sent.
    pub repair_packets: u64,
    /// Bytes of repair packets sent.
    pub repair_bytes: u64,
    /// FEC packets from the peer the decoders accepted.
    pub received: u64,
    /// ADUs delivered (received or rebuilt).
    pub delivered: u64,
    /// ADUs rebuilt from repair symbols.
    pub recovered: u64,
    /// The peer's sources found missing (before recovery).
    pub losses_seen: u64,
    /// The peer's sources given up for good by the decoders.
    pub unrecoverable: u64,
    /// Datagrams that could not be parsed or used.
    pub rejected: u64,
    /// Reports sent to the peer.
    pub feedback_sent: u64,
    /// Reports received from the peer.
    pub feedback_received: u64,
    /// Losses the peer reported of what this end sent.
    pub peer_lost: u64,
    /// Repaired losses the peer reported (for the congestion controller).
    pub peer_recovered: u64,
    /// Times the policy failed and the layer stopped protecting.
    pub fallbacks: u64,
    /// Plugin pluglet executions of the policy.
    pub plugin_calls: u64,
    /// Datagrams dropped because their authentication tag was wrong
    /// (forged, damaged or truncated), before any decoder or policy saw them.
    pub unauthenticated: u64,
    /// Repair packets and reports dropped as replays (a datagram number
    /// seen before, or older than the replay window).
    pub replayed: u64,
    /// Repair packets from the peer that could not help: every source they
    /// cover was already here or rebuilt (dropped unread, without GF(2^8)
    /// work or a copy), or the RLC equations held already determined them.
    pub repairs_unneeded: u64,
}

impl Stats {
    /// Field-wise sum.
    pub fn sum(self, other: Stats) -> Stats {
        Stats {
            source_packets: self.source_packets + other.source_packets,
            source_bytes: self.source_bytes + other.source_bytes,
            plain_packets: self.plain_packets + other.plain_packets,
            repair_packets: self.repair_packets + other.repair_packets,
            repair_bytes: self.repair_bytes + other.repair_bytes,
            received: self.received + other.received,
            delivered: self.delivered + other.delivered,
            recovered: self.recovered + other.recovered,
            losses_seen: self.losses_seen + other.losses_seen,
            unrecoverable: self.unrecoverable + other.unrecoverable,
            rejected: self.rejected + other.rejected,
            feedback_sent: self.feedback_sent + other.feedback_sent,
            feedback_received: self.feedback_received + other.feedback_received,
            peer_lost: self.peer_lost + other.peer_lost,
            peer_recovered: self.peer_recovered + other.peer_recovered,
            fallbacks: self.fallbacks + other.fallbacks,
            plugin_calls: self.plugin_calls + other.plugin_calls,
            unauthenticated: self.unauthenticated + other.unauthenticated,
            replayed: self.replayed + other.replayed,
            repairs_unneeded: self.repairs_unneeded + other.repairs_unneeded,
        }
    }
}

/// One peer's FEC state (sans-IO; see the module docs).
pub struct Layer {
    config: LayerConfig,
    /// With keys: the trailer on what this end sends, the check of what the
    /// peer sends ([`auth`]).
    sealer: Option<Sealer>,
    opener: Option<Opener>,
    sender: Option<Sender>,
    receiver: Receiver,
    policy: Option<Box<dyn Policy>>,
    failure: Option<String>,
    pending_feedback: Feedback,
    next_feedback: Option<Instant>,
    /// When the last report was due: reports keep to a grid while there is
    /// something to report, so their spacing does not drift with losses.
    last_report: Option<Instant>,
    idle_deadline: Option<Instant>,
    stats: Stats,
    rtt: Option<Duration>,
    /// ADUs offered to [`send`](Self::send) so far.
    sent: u64,
    /// Repaired losses reported by the peer and not yet taken.
    unclaimed_peer_recovered: u64,
    paths: Paths,
    /// The policy's path for repair symbols.
    repair_path: Option<PathId>,
    /// Path tokens: in this end's probes, in the peer's ([`paths::token`]).
    tokens: Option<([u8; paths::TOKEN_LEN], [u8; paths::TOKEN_LEN])>,
}

impl std::fmt::Debug for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layer")
            .field("config", &self.config)
            .field("keyed", &self.sealer.is_some())
            .field("sender", &self.sender)
            .field("receiver", &self.receiver)
            .field("policy", &self.policy)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Layer {
    /// A layer that sends under `policy` (configured now, at `now`) and
    /// decodes what the peer protects; with no policy it only decodes.
    pub fn new(config: LayerConfig, policy: Option<Box<dyn Policy>>, now: Instant) -> Self {
        let mut layer = Layer {
            sealer: None,
            opener: None,
            receiver: Receiver::new(config.symbol_size, config.max_window),
            sender: None,
            policy: None,
            failure: None,
            pending_feedback: Feedback::default(),
            next_feedback: None,
            last_report: None,
            idle_deadline: None,
            stats: Stats::default(),
            rtt: None,
            sent: 0,
            unclaimed_peer_recovered: 0,
            paths: Paths::new(now),
            repair_path: None,
            tokens: None,
            config,
        };
        layer.set_policy(policy, now);
        layer
    }

    /// Replaces the policy (configured now, at `now`; `None`: stop
    /// protecting). The receiving side, the keys and the counters stay: a
    /// transport turns FEC on or off for a peer without losing what its
    /// decoders hold.
    pub fn set_policy(&mut self, policy: Option<Box<dyn Policy>>, now: Instant) {
        self.sender = None;
        self.failure = None;
        self.idle_deadline = None;
        self.policy = None;
        let Some(policy) = policy else {
            return;
        };
        self.sender = Sender::new(CodeChoice::default(), &self.config)
            .ok()
            .flatten();
        self.policy = Some(policy);
        let limits = self.config.limits();
        let plan = self.decide(|policy, view| policy.configure(now, &limits, view));
        self.apply(plan, &mut Vec::new());
    }

    /// Decodes and reports what the peer protects, protects nothing: the
    /// state of a peer before (or without) a policy.
    pub fn receive_only(config: LayerConfig) -> Self {
        Layer::new(config, None, Instant::now())
    }

    /// Authenticates every datagram from now on ([`auth`]): what this end
    /// makes carries a tag under `keys.send`, and what arrives must carry one
    /// under `keys.receive` (plain ADUs sent as they are excepted: the
    /// transport authenticates those).
    pub fn set_keys(&mut self, keys: &Keys) {
        self.sealer = Some(Sealer::new(&keys.send));
        self.opener = Some(Opener::new(&keys.receive));
        self.tokens = Some((paths::token(&keys.send), paths::token(&keys.receive)));
    }

    /// The token the peer puts in its path probes (keyed layers only): how
    /// a transport finds this layer for a probe from an address it does not
    /// know yet.
    pub fn peer_token(&self) -> Option<[u8; paths::TOKEN_LEN]> {
        self.tokens.map(|(_, peer)| peer)
    }

    /// Opens path `path` (1..[`MAX_PATHS`]) from this end: it is probed from
    /// now on, and carries traffic once the peer answers ([`paths`]). False
    /// when `path` is out of range or already in use.
    pub fn open_path(&mut self, now: Instant, path: PathId) -> bool {
        self.paths.open(now, path)
    }

    /// The paths as they stand.
    pub fn paths(&self) -> [PathView; MAX_PATHS] {
        self.paths.view()
    }

    /// The path of each datagram the last call to [`send`](Self::send),
    /// [`send_slice`](Self::send_slice), [`receive_on`](Self::receive_on) or
    /// [`handle_timeout`](Self::handle_timeout) pushed, in order (all 0 while
    /// only path 0 is in use).
    pub fn routes(&self) -> &[PathId] {
        self.paths.routes()
    }

    /// The next path event (opened, validated, failed, abandoned) not yet
    /// taken, oldest first (the last 64 are kept).
    pub fn take_path_event(&mut self) -> Option<PathEvent> {
        self.paths.take_event()
    }

    /// Chooses the path of every datagram pushed since `start` (sealed).
    fn route(&mut self, start: usize, out: &[Bytes]) {
        let classify = |datagram: &Bytes| match DatagramKind::of(datagram) {
            DatagramKind::Fec if wire::is_repair_packet(datagram) => Carried::Repair,
            DatagramKind::Fec => Carried::Source,
            DatagramKind::Probe | DatagramKind::Response => {
                Carried::Own(paths::peek(datagram).map_or(0, |(_, path)| path))
            }
            _ => Carried::Other,
        };
        self.paths.route(out, start, self.repair_path, classify);
    }

    /// True once [`set_keys`](Self::set_keys) was called.
    pub fn is_keyed(&self) -> bool {
        self.sealer.is_some()
    }

    /// The configuration.
    pub fn config(&self) -> &LayerConfig {
        &self.config
    }

    /// True while outgoing ADUs are protected.
    pub fn is_protecting(&self) -> bool {
        self.sender.is_some()
    }

    /// The code in use, if protecting.
    pub fn code(&self) -> Option<CodeChoice> {
        self.sender.as_ref().map(Sender::code)
    }

    /// Why the policy stopped, if it failed.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Tells the layer the transport's smoothed round-trip time (policies
    /// see it in [`View::rtt`]).
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = Some(rtt);
    }

    /// Repaired losses the peer reported since the last call (RFC 9265: a
    /// repaired loss is still a congestion signal, for the transport's
    /// congestion controller).
    pub fn take_peer_recovered(&mut self) -> u64 {
        std::mem::take(&mut self.unclaimed_peer_recovered)
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        Stats {
            plugin_calls: self.policy.as_ref().map_or(0, |p| p.calls()),
            unrecoverable: self.receiver.unrecoverable(),
            repairs_unneeded: self.receiver.unneeded(),
            ..self.stats
        }
    }

    /// What a policy sees now.
    pub fn view(&self) -> View {
        View {
            stats: self.stats(),
            window_len: self.sender.as_ref().map_or(0, Sender::window_len),
            window_target: self.sender.as_ref().map_or(0, Sender::window),
            pending: self.pending(),
            rtt: self.rtt,
            paths: self.paths.view(),
        }
    }

    fn pending(&self) -> usize {
        self.sender.as_ref().map_or(0, Sender::pending)
    }

    /// Runs one policy call (if there is a healthy policy) and turns a
    /// failure into the fallback: no protection from now on.
    fn decide(&mut self, call: impl FnOnce(&mut dyn Policy, &View) -> Plan) -> Plan {
        if self.failure.is_some() {
            return Plan::default();
        }
        let view = self.view();
        let Some(policy) = self.policy.as_mut() else {
            return Plan::default();
        };
        let plan = call(policy.as_mut(), &view);
        if let Some(reason) = policy.failure() {
            self.failure = Some(reason);
            self.sender = None;
            self.idle_deadline = None;
            self.stats.fallbacks += 1;
            return Plan::default();
        }
        plan
    }

    fn apply(&mut self, plan: Plan, out: &mut Vec<Bytes>) {
        if let Some(path) = plan.repair_path {
            self.repair_path = Some(path);
        }
        if let Some(code) = plan.code.map(|c| self.config.clamp_code(c)) {
            if self.code() != Some(code) {
                // Close what the old code protected before switching.
                self.repair(1, out);
                if let Ok(sender) = Sender::new(code, &self.config) {
                    self.sender = sender;
                }
            }
        }
        if let (Some(window), Some(sender)) = (plan.window, self.sender.as_mut()) {
            sender.set_window(window.clamp(1, self.config.max_window));
        }
        self.repair(plan.repairs, out);
    }

    fn repair(&mut self, count: usize, out: &mut Vec<Bytes>) {
        let count = count.min(self.config.max_repairs_per_call);
        let Some(sender) = self.sender.as_mut().filter(|_| count > 0) else {
            return;
        };
        let start = out.len();
        sender.repair(count, out);
        for repair in &out[start..] {
            self.stats.repair_packets += 1;
            self.stats.repair_bytes += repair.len() as u64;
        }
    }

    /// Asks the policy for a repair decision and applies it; returns the
    /// repairs it asked for.
    fn schedule(&mut self, now: Instant, idle: bool, out: &mut Vec<Bytes>) -> usize {
        let schedule = Schedule {
            pending: self.pending(),
            idle,
        };
        let plan = self.decide(|policy, view| policy.schedule_repair(now, &schedule, view));
        self.apply(plan, out);
        plan.repairs
    }

    /// The application sends `adu` to the peer: pushes the datagrams to put
    /// on the wire into `out`, in order. An unprotected ADU goes out as this
    /// very buffer when it needs no prefix.
    pub fn send(&mut self, now: Instant, adu: Bytes, out: &mut Vec<Bytes>) {
        let start = out.len();
        self.send_unsealed(now, Input::Owned(adu), out);
        self.seal(start, out);
        self.route(start, out);
    }

    /// Gives back a datagram this layer made once it is on the wire: its
    /// buffer (when nothing else refers to it) holds a later source or
    /// repair packet instead of a new allocation. Optional; a transport
    /// that drops its datagrams instead only allocates more. Only source
    /// and repair packets are kept: plain ADUs are the transport's own
    /// buffers (of any size) and reports are too small to hold a packet.
    pub fn recycle(&mut self, datagram: Bytes) {
        if DatagramKind::of(&datagram) != DatagramKind::Fec {
            return;
        }
        if let Some(sender) = self.sender.as_mut() {
            sender.recycle(datagram);
        }
    }

    /// [`send`](Self::send) for a borrowed ADU (a packet in the sender's own
    /// buffer): a protected ADU is copied once, into its source packet.
    pub fn send_slice(&mut self, now: Instant, adu: &[u8], out: &mut Vec<Bytes>) {
        let start = out.len();
        self.send_unsealed(now, Input::Borrowed(adu), out);
        self.seal(start, out);
        self.route(start, out);
    }

    fn send_unsealed(&mut self, now: Instant, adu: Input<'_>, out: &mut Vec<Bytes>) {
        let seq = self.sent;
        self.sent += 1;
        if self.sender.is_some() {
            let source = Source {
                seq,
                flow: self.config.flow,
                len: adu.len(),
            };
            let plan = self.decide(|policy, view| policy.on_source(now, &source, view));
            let flow = self.config.flow;
            let protected = match self.sender.as_mut() {
                Some(sender) if plan.protect => sender.protect(flow, adu.bytes()),
                _ => None,
            };
            if let Some(packet) = protected {
                out.push(packet);
                self.stats.source_packets += 1;
                self.stats.source_bytes += adu.len() as u64;
                self.apply(plan, out);
                let repairs = plan.repairs + self.schedule(now, false, out);
                // Covered sources need no idle call; uncovered ones get one.
                self.idle_deadline = match self.config.idle_repair {
                    Some(idle) if repairs == 0 => Some(now + idle),
                    _ => None,
                };
                return;
            }
            self.apply(plan, out);
        }
        self.stats.plain_packets += 1;
        out.push(plain(adu.into_bytes()));
    }

    /// `datagram` arrived from the peer: pushes ADUs for the application
    /// into `delivered` (the one it carried and any it let the layer
    /// rebuild) and datagrams to send back into `out`. The same as
    /// [`receive_on`](Self::receive_on) path 0.
    pub fn receive(
        &mut self,
        now: Instant,
        datagram: Bytes,
        delivered: &mut Vec<Bytes>,
        out: &mut Vec<Bytes>,
    ) {
        self.receive_on(now, 0, datagram, delivered, out);
    }

    /// [`receive`](Self::receive) for a datagram that arrived on `path`
    /// ([`paths`]; out of range counts as path 0). Returns false when the
    /// datagram was dropped unread: its tag was wrong, or it was a replay.
    /// A transport learns a peer's new address from an authentic probe
    /// ([`paths::peek`] tells probes) for which this returns true.
    pub fn receive_on(
        &mut self,
        now: Instant,
        path: PathId,
        datagram: Bytes,
        delivered: &mut Vec<Bytes>,
        out: &mut Vec<Bytes>,
    ) -> bool {
        let path = if usize::from(path) < MAX_PATHS {
            path
        } else {
            0
        };
        let len = datagram.len();
        let start = out.len();
        let kind = DatagramKind::of(&datagram);
        let datagram = match self.opener.as_mut() {
            Some(opener) if kind != DatagramKind::Plain => {
                let Some((body, number)) = opener.open(&datagram) else {
                    self.stats.unauthenticated += 1;
                    return false;
                };
                let mut datagram = datagram;
                datagram.truncate(body);
                // A replayed source is harmless (decoders drop duplicates,
                // and a genuine late one must still be delivered); a
                // replayed repair or report would be counted again.
                let replayable = matches!(
                    kind,
                    DatagramKind::Feedback | DatagramKind::Probe | DatagramKind::Response
                ) || (kind == DatagramKind::Fec
                    && wire::Header::parse(&datagram).is_ok_and(|(h, _)| h.is_repair()));
                if replayable && !opener.first_sight(number) {
                    self.stats.replayed += 1;
                    return false;
                }
                datagram
            }
            _ => datagram,
        };
        if kind != DatagramKind::Plain {
            // Authenticated (or the layer is unkeyed): it counts for the
            // path's loss and liveness; forged datagrams never do.
            self.paths.on_arrival(now, path, len);
        }
        self.receive_opened(now, path, kind, datagram, delivered, out);
        self.seal(start, out);
        self.route(start, out);
        true
    }

    fn receive_opened(
        &mut self,
        now: Instant,
        path: PathId,
        kind: DatagramKind,
        datagram: Bytes,
        delivered: &mut Vec<Bytes>,
        out: &mut Vec<Bytes>,
    ) {
        match kind {
            DatagramKind::Plain => {
                self.stats.delivered += 1;
                delivered.push(datagram);
            }
            DatagramKind::PrefixedPlain => {
                self.stats.delivered += 1;
                delivered.push(datagram.slice(1..));
            }
            DatagramKind::Feedback => match Feedback::parse(&datagram) {
                Some(report) => self.on_feedback(now, &report, out),
                None => self.stats.rejected += 1,
            },
            DatagramKind::Fec => self.on_fec(now, datagram, delivered, out),
            DatagramKind::Probe => {
                let token = self.tokens.map_or([0; paths::TOKEN_LEN], |(own, _)| own);
                match self.paths.on_probe(now, path, &datagram, token) {
                    Some(response) => out.push(response),
                    None => self.stats.rejected += 1,
                }
            }
            DatagramKind::Response => {
                if !self.paths.on_response(now, path, &datagram) {
                    self.stats.rejected += 1;
                }
            }
            DatagramKind::Unknown => self.stats.rejected += 1,
        }
    }

    fn on_feedback(&mut self, now: Instant, report: &Feedback, out: &mut Vec<Bytes>) {
        self.stats.feedback_received += 1;
        self.stats.peer_lost += u64::from(report.lost);
        self.stats.peer_recovered += u64::from(report.recovered);
        self.unclaimed_peer_recovered += u64::from(report.recovered);
        if self.sender.is_some() {
            let plan = self.decide(|policy, view| policy.on_feedback(now, report, view));
            self.apply(plan, out);
        }
    }

    fn on_fec(
        &mut self,
        now: Instant,
        packet: Bytes,
        delivered: &mut Vec<Bytes>,
        out: &mut Vec<Bytes>,
    ) {
        let received = self.receiver.receive(packet);
        if received.rejected {
            self.stats.rejected += 1;
        } else {
            self.stats.received += 1;
        }
        if let Some((_, adu)) = received.source {
            self.stats.delivered += 1;
            delivered.push(adu);
        }
        if let Some((first, count)) = received.gap {
            self.stats.losses_seen += u64::from(count);
            let loss = Loss { first, count };
            let plan = self.decide(|policy, view| policy.on_loss(now, &loss, view));
            self.apply(plan, out);
        }
        let recovered = received.recovered.len() as u32;
        for (flow, adu) in received.recovered {
            let event = Recovered {
                seq: self.stats.recovered,
                flow,
                len: adu.len(),
            };
            self.stats.recovered += 1;
            self.stats.delivered += 1;
            delivered.push(adu);
            let plan = self.decide(|policy, view| policy.on_recovered(now, &event, view));
            self.apply(plan, out);
        }
        let (lost, burst) = received.gap.map_or((0, 0), |(_, count)| (count, count));
        self.pending_feedback
            .add(received.accounted, lost, burst, recovered);
        if self.next_feedback.is_none() && !self.pending_feedback.is_empty() {
            let interval = self.config.feedback_interval;
            self.next_feedback = Some(match self.last_report {
                Some(last) if now < last + interval => last + interval,
                _ => now + interval,
            });
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let idle = self.idle_deadline.filter(|_| self.pending() > 0);
        [idle, self.next_feedback, self.paths.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Time passed: pushes datagrams that are due (idle repairs, reports).
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Bytes>) {
        let start = out.len();
        self.handle_timeout_unsealed(now, out);
        self.seal(start, out);
        self.route(start, out);
    }

    /// Adds the trailer to every datagram pushed since `start` but plain
    /// ADUs sent as they are. Should the datagram numbers run out, the layer
    /// stops adding FEC datagrams: what is left goes out plain.
    fn seal(&mut self, start: usize, out: &mut Vec<Bytes>) {
        let Some(sealer) = self.sealer.as_mut() else {
            return;
        };
        let mut exhausted = false;
        for datagram in &mut out[start..] {
            if DatagramKind::of(datagram) == DatagramKind::Plain {
                continue;
            }
            match sealer.trailer(datagram) {
                Some(trailer) => {
                    // The pipeline leaves room behind its packets
                    // (`pipeline::PACKET_TAILROOM`): a buffer of its own is
                    // extended in place, without a copy.
                    let mut sealed = bytes::BytesMut::from(std::mem::take(datagram));
                    sealed.extend_from_slice(&trailer);
                    *datagram = sealed.freeze();
                }
                None => {
                    *datagram = Bytes::new();
                    exhausted = true;
                }
            }
        }
        if exhausted {
            // Emptied entries were FEC datagrams that could not be tagged.
            let mut i = 0;
            out.retain(|d| {
                let keep = i < start || !d.is_empty();
                i += 1;
                keep
            });
            self.sender = None;
            self.idle_deadline = None;
            self.failure
                .get_or_insert_with(|| "authentication numbers exhausted".into());
        }
    }

    fn handle_timeout_unsealed(&mut self, now: Instant, out: &mut Vec<Bytes>) {
        if self.idle_deadline.is_some_and(|at| at <= now) {
            // One idle call per quiet period: a policy that declines is not
            // asked again until the next source.
            self.idle_deadline = None;
            if self.pending() > 0 {
                self.schedule(now, true, out);
            }
        }
        if let Some(due) = self.next_feedback.filter(|at| *at <= now) {
            self.next_feedback = None;
            self.last_report = Some(due);
            let report = std::mem::take(&mut self.pending_feedback);
            out.push(Bytes::from(report.to_vec()));
            self.stats.feedback_sent += 1;
        }
        let token = self.tokens.map_or([0; paths::TOKEN_LEN], |(own, _)| own);
        let uncovered = self.paths.handle_timeout(now, token, out);
        if uncovered > 0 {
            // What went on a path that just fell silent is repaired on the
            // others at once ([`paths`]): one repair per such source.
            let window = self.sender.as_ref().map_or(0, Sender::window_len);
            self.repair(
                usize::try_from(uncovered).unwrap_or(usize::MAX).min(window),
                out,
            );
        }
    }
}

/// An ADU handed to [`Layer::send`] (owned) or [`Layer::send_slice`]
/// (borrowed).
enum Input<'a> {
    Owned(Bytes),
    Borrowed(&'a [u8]),
}

impl Input<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Input::Owned(adu) => adu,
            Input::Borrowed(adu) => adu,
        }
    }

    fn len(&self) -> usize {
        self.bytes().len()
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Input::Owned(adu) => adu,
            Input::Borrowed(adu) => Bytes::copy_from_slice(adu),
        }
    }
}

/// A plain ADU as it goes on the wire.
fn plain(adu: Bytes) -> Bytes {
    if adu.first().is_some_and(|b| b & PLAIN_BIT != 0) {
        return adu;
    }
    let mut framed = Vec::with_capacity(1 + adu.len());
    framed.push(PLAIN_PREFIX);
    framed.extend_from_slice(&adu);
    Bytes::from(framed)
}

#[cfg(test)]
mod tests;
