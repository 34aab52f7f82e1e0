//! The protecting [`FecLayer`]: a codec (what the bytes are) plus a repair
//! policy (when and how much redundancy), plus receiver feedback.
//!
//! - [`PipelineEncoder`] / [`PipelineDecoder`] turn QUIC packets into
//!   `fec_core::pipeline` source and repair packets and back (any scheme the
//!   policy picks; the receiver follows the scheme id on the wire).
//! - [`RepairPolicy`] decides how many repair packets to send and when. The
//!   native [`AdaptivePolicy`] sets the code rate from the loss the receiver
//!   reports; a plugin-driven policy replaces it when a plugin is loaded.
//! - Feedback: every [`FEEDBACK_INTERVAL`] the receiving side sends a small
//!   report (first byte [`FEEDBACK_TYPE`], fixed bit clear) with the sources
//!   it saw, lost, recovered, and the longest loss burst. The sender feeds it
//!   to its policy and counts repaired losses for its congestion controller.

#![forbid(unsafe_code)]

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use fec_core::pipeline::wire::{self, SchemeId};
use fec_core::pipeline::{Config, Decoder, Encoder, Scheme};
use fec_core::rlc::Field;

use crate::layer::{is_quic, FecLayer, LayerStats};

/// First byte of a feedback report (fixed bit clear, distinct from the
/// pipeline's FEC packets, whose first byte has bit 0x80 set).
pub const FEEDBACK_TYPE: u8 = 0x10;
/// How often a receiver reports.
pub const FEEDBACK_INTERVAL: Duration = Duration::from_millis(50);

/// What a receiver reports to the sender.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Feedback {
    /// Source packets accounted for since the last report (received or lost).
    pub sources: u32,
    /// Of those, lost on the path.
    pub lost: u32,
    /// Of the lost ones, rebuilt from repair packets.
    pub recovered: u32,
    /// Longest run of consecutive losses seen.
    pub max_burst: u16,
}

impl Feedback {
    const LEN: usize = 1 + 4 + 4 + 4 + 2;

    /// Wire form.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(Self::LEN);
        b.put_u8(FEEDBACK_TYPE);
        b.put_u32(self.sources);
        b.put_u32(self.lost);
        b.put_u32(self.recovered);
        b.put_u16(self.max_burst);
        b.freeze()
    }

    /// Parses a report; `None` unless it is exactly one well-formed report.
    pub fn parse(datagram: &[u8]) -> Option<Self> {
        if datagram.len() != Self::LEN || datagram[0] != FEEDBACK_TYPE {
            return None;
        }
        let u32_at = |i: usize| u32::from_be_bytes(datagram[i..i + 4].try_into().expect("4 bytes"));
        Some(Self {
            sources: u32_at(1),
            lost: u32_at(5),
            recovered: u32_at(9),
            max_burst: u16::from_be_bytes([datagram[13], datagram[14]]),
        })
    }
}

/// What a codec made of one received FEC packet.
#[derive(Debug, Default)]
pub struct Received {
    /// The QUIC packet this source packet carried, if it was one.
    pub source: Option<Bytes>,
    /// QUIC packets rebuilt thanks to this packet.
    pub recovered: Vec<Bytes>,
    /// Losses the codec now knows of (sources that never came), and the
    /// longest run among them.
    pub newly_lost: u32,
    /// Longest run of consecutive missing sources in `newly_lost`.
    pub burst: u16,
    /// Sources accounted for (received or known lost).
    pub newly_accounted: u32,
}

/// What a policy decided for one event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Plan {
    /// Protect the packet of this `on_source` event (ignored elsewhere).
    pub protect: bool,
    /// Repair packets to send now.
    pub repairs: usize,
    /// New coding window / block size.
    pub window: Option<usize>,
    /// New code.
    pub code: Option<CodeChoice>,
}

impl Plan {
    /// Send `repairs` repair packets, nothing else.
    pub fn repairs(repairs: usize) -> Self {
        Plan {
            repairs,
            ..Plan::default()
        }
    }
}

/// Decides what to protect, when to send repair packets and how many.
pub trait RepairPolicy: Send + fmt::Debug {
    /// A `len`-byte QUIC packet is about to go out at `now`; `unprotected`
    /// sources are not yet covered by a repair (this one excluded).
    fn on_source(&mut self, now: Instant, len: usize, unprotected: usize) -> Plan;
    /// When the policy wants [`on_timeout`](Self::on_timeout) called.
    fn deadline(&self) -> Option<Instant>;
    /// Time passed with `unprotected` sources not yet covered.
    fn on_timeout(&mut self, now: Instant, unprotected: usize) -> Plan;
    /// The receiver reported.
    fn on_feedback(&mut self, now: Instant, feedback: &Feedback) -> Plan;
    /// This end rebuilt a `len`-byte packet from the peer's repairs.
    fn on_recovered(&mut self, _now: Instant, _len: usize) -> Plan {
        Plan::default()
    }
    /// This end found `count` of the peer's sources missing, in a run of
    /// `burst` (before any recovery).
    fn on_loss(&mut self, _now: Instant, _count: u32, _burst: u16) -> Plan {
        Plan::default()
    }
    /// False once the policy gave up (a faulting plugin): the layer then
    /// stops protecting and sends plain QUIC packets.
    fn is_healthy(&self) -> bool {
        true
    }
    /// Plugin pluglet executions so far (0 for a native policy).
    fn plugin_calls(&self) -> u64 {
        0
    }
}

/// The native policy: protect everything, one repair per `k` sources (`k`
/// from the loss rate the receiver reports, two repairs per block for long
/// bursts), and a flush shortly after the last source so sparse real-time
/// traffic is covered at once. A plugin-driven policy replaces it when a
/// plugin is loaded.
#[derive(Debug, Clone)]
pub struct AdaptivePolicy {
    sources_per_repair: usize,
    repairs_per_block: usize,
    flush_delay: Duration,
    deadline: Option<Instant>,
    loss_estimate: f64,
}

impl Default for AdaptivePolicy {
    fn default() -> Self {
        Self {
            sources_per_repair: 8,
            repairs_per_block: 1,
            flush_delay: Duration::from_millis(1),
            deadline: None,
            loss_estimate: 0.02,
        }
    }
}

impl AdaptivePolicy {
    /// Current number of sources per repair block.
    pub fn sources_per_repair(&self) -> usize {
        self.sources_per_repair
    }
}

impl RepairPolicy for AdaptivePolicy {
    fn on_source(&mut self, now: Instant, _len: usize, unprotected: usize) -> Plan {
        if unprotected + 1 >= self.sources_per_repair {
            self.deadline = None;
            return Plan {
                protect: true,
                repairs: self.repairs_per_block,
                ..Plan::default()
            };
        }
        self.deadline = Some(now + self.flush_delay);
        Plan {
            protect: true,
            ..Plan::default()
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    fn on_timeout(&mut self, now: Instant, unprotected: usize) -> Plan {
        match self.deadline {
            Some(at) if at <= now => {
                self.deadline = None;
                Plan::repairs(if unprotected > 0 {
                    self.repairs_per_block
                } else {
                    0
                })
            }
            _ => Plan::default(),
        }
    }

    fn on_feedback(&mut self, _now: Instant, feedback: &Feedback) -> Plan {
        if feedback.sources == 0 {
            return Plan::default();
        }
        let sample = f64::from(feedback.lost) / f64::from(feedback.sources);
        self.loss_estimate = 0.8 * self.loss_estimate + 0.2 * sample;
        // Enough repair that a block rarely sees more losses than repairs.
        self.sources_per_repair = match self.loss_estimate {
            p if p < 0.002 => 32,
            p if p < 0.01 => 16,
            p if p < 0.03 => 8,
            p if p < 0.08 => 4,
            _ => 2,
        };
        self.repairs_per_block = if feedback.max_burst >= 3 { 2 } else { 1 };
        Plan::default()
    }
}

/// Symbol size of every scheme: the largest QUIC packet quinn may send
/// (see [`crate::endpoint::LAYER_OVERHEAD`]) plus the pipeline's 3 bytes of
/// ADU information, so every packet fits one symbol.
pub const SYMBOL_SIZE: usize = crate::endpoint::MAX_QUIC_PACKET as usize + 3;
/// Flow id of QUIC packets in the pipeline.
const QUIC_FLOW: u8 = 0;
/// Largest block / window a receiver accepts.
const MAX_DECODER_SYMBOLS: usize = 256;
/// Cap on losses inferred from one sequence gap (a garbage header must not
/// inflate the counters).
const MAX_GAP: u32 = 1024;

/// A code the sender runs, as a plugin or native policy picks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeChoice {
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

impl CodeChoice {
    fn scheme(self) -> Scheme {
        match self {
            CodeChoice::ReedSolomon { data, parity } => Scheme::ReedSolomon { data, parity },
            CodeChoice::Rlc { window } => Scheme::Rlc {
                field: Field::Gf256,
                window,
                dt: 15,
            },
            CodeChoice::RaptorQ {
                source_symbols,
                repair_symbols,
            } => Scheme::RaptorQ {
                source_symbols,
                repair_symbols,
            },
        }
    }

    fn max_repairs(self) -> usize {
        match self {
            CodeChoice::ReedSolomon { parity, .. } => parity,
            CodeChoice::Rlc { .. } => usize::MAX,
            CodeChoice::RaptorQ { repair_symbols, .. } => repair_symbols,
        }
    }
}

impl Default for CodeChoice {
    fn default() -> Self {
        CodeChoice::Rlc { window: 32 }
    }
}

fn pipeline_config(scheme: Scheme) -> Config {
    let mut config = Config::new(scheme);
    config.set_symbol_size(SYMBOL_SIZE);
    config
}

/// Sender side over [`fec_core::pipeline::Encoder`].
pub struct PipelineEncoder {
    encoder: Encoder,
    code: CodeChoice,
}

impl fmt::Debug for PipelineEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelineEncoder")
            .field("code", &self.code)
            .finish_non_exhaustive()
    }
}

impl PipelineEncoder {
    /// An encoder for `code`; `None` (with a log line) if the pipeline
    /// refuses its parameters.
    pub fn new(code: CodeChoice) -> Option<Self> {
        match Encoder::new(&pipeline_config(code.scheme())) {
            Ok(encoder) => Some(Self { encoder, code }),
            Err(e) => {
                tracing::warn!("FEC code {code:?} refused: {e}");
                None
            }
        }
    }

    /// The code in use.
    pub fn code(&self) -> CodeChoice {
        self.code
    }

    /// Wraps a QUIC packet as a source packet; `None` if it cannot be
    /// protected (then it goes out as is).
    pub fn protect(&mut self, quic_packet: &[u8]) -> Option<Bytes> {
        let adu = Bytes::copy_from_slice(quic_packet);
        match self.encoder.protect(QUIC_FLOW, adu.clone()) {
            Ok(packet) => Some(packet.to_bytes()),
            Err(fec_core::Error::PipelineBlockFull { .. }) => {
                // The policy let a block fill up without repair: close it.
                let _ = self.encoder.repair_into(0, &mut Vec::new());
                self.encoder
                    .protect(QUIC_FLOW, adu)
                    .ok()
                    .map(|p| p.to_bytes())
            }
            Err(e) => {
                tracing::debug!("packet left unprotected: {e}");
                None
            }
        }
    }

    /// Sources protected since the last repair.
    pub fn unprotected(&self) -> usize {
        self.encoder.pending()
    }

    /// Repair packets covering the recent sources.
    pub fn repair(&mut self, count: usize, out: &mut Vec<Bytes>) {
        let count = count.min(self.code.max_repairs());
        if count == 0 || self.encoder.pending() == 0 {
            return;
        }
        if let Err(e) = self.encoder.repair_into(count, out) {
            tracing::debug!("repair refused: {e}");
        }
    }

    /// Sets the window (RLC) or block length (block codes).
    pub fn set_window(&mut self, size: usize) {
        if let Err(e) = self.encoder.set_window(size) {
            tracing::debug!("window {size} refused: {e}");
        }
    }
}

/// Receiver side over [`fec_core::pipeline::Decoder`]: one decoder per
/// scheme the peer uses (made on first sight, with generous bounds), and
/// loss accounting from source sequence numbers for feedback.
#[derive(Default)]
pub struct PipelineDecoder {
    decoders: Vec<(SchemeId, Decoder)>,
    last_source: Option<(u32, u32)>,
}

impl fmt::Debug for PipelineDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelineDecoder")
            .field(
                "schemes",
                &self.decoders.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl PipelineDecoder {
    fn decoder(&mut self, scheme: SchemeId) -> Option<&mut Decoder> {
        if let Some(i) = self.decoders.iter().position(|(s, _)| *s == scheme) {
            return Some(&mut self.decoders[i].1);
        }
        let wide = match scheme {
            SchemeId::ReedSolomon => Scheme::ReedSolomon {
                data: 128,
                parity: 128,
            },
            SchemeId::RlcGf256 | SchemeId::RlcGf2 => Scheme::Rlc {
                field: if scheme == SchemeId::RlcGf2 {
                    Field::Gf2
                } else {
                    Field::Gf256
                },
                window: MAX_DECODER_SYMBOLS,
                dt: 15,
            },
            SchemeId::RaptorQ => Scheme::RaptorQ {
                source_symbols: MAX_DECODER_SYMBOLS,
                repair_symbols: 1024,
            },
        };
        let decoder = Decoder::new(&pipeline_config(wide)).ok()?;
        self.decoders.push((scheme, decoder));
        self.decoders.last_mut().map(|(_, d)| d)
    }

    /// Loss accounting from the source's position: `(block, index)` for
    /// block codes, `(0, esi)` for RLC.
    fn account(&mut self, position: (u32, u32), received: &mut Received) {
        let gap = match self.last_source {
            None => 0,
            Some((block, index)) if position.0 == block => {
                if position.1 <= index {
                    return; // reordered or duplicate: counted when it went missing
                }
                position.1 - index - 1
            }
            // A new block: sources missing at its start (its predecessor's
            // tail is not known from sources alone).
            Some(_) => position.1,
        };
        let gap = gap.min(MAX_GAP);
        received.newly_lost += gap;
        received.burst = received.burst.max(gap.min(u32::from(u16::MAX)) as u16);
        received.newly_accounted += gap + 1;
        self.last_source = Some(position);
    }

    /// Accepts one FEC packet; `None` if it is malformed or of an unknown
    /// scheme.
    pub fn receive(&mut self, packet: Bytes) -> Option<Received> {
        let (header, _) = wire::Header::parse(&packet).ok()?;
        let position = match header {
            wire::Header::RsSource { block, index, .. } => {
                Some((u32::from(block), u32::from(index)))
            }
            wire::Header::RlcSource { esi, .. } => Some((0, esi)),
            wire::Header::RaptorqSource { block, esi, .. } => Some((u32::from(block), esi)),
            _ => None,
        };
        let decoder = self.decoder(header.scheme())?;
        let adu = decoder.receive(packet).ok()?;
        let mut received = Received {
            source: adu.map(|a| a.data),
            ..Received::default()
        };
        while let Some(adu) = decoder.poll_recovered() {
            received.recovered.push(adu.data);
        }
        if let (Some(position), Some(_)) = (position, &received.source) {
            self.account(position, &mut received);
        }
        Some(received)
    }
}

/// Repaired losses the peer reported, for the congestion controller
/// (RFC 9265: a repaired loss is still a congestion signal).
#[derive(Debug, Clone, Default)]
pub struct RepairedLosses(Arc<AtomicU64>);

impl RepairedLosses {
    /// Adds `n` repaired losses.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Takes the count accumulated so far.
    pub fn take(&self) -> u64 {
        self.0.swap(0, Ordering::Relaxed)
    }
}

/// A layer that protects outgoing QUIC packets and repairs incoming ones.
#[derive(Debug)]
pub struct ProtectedLayer {
    encoder: Option<PipelineEncoder>,
    decoder: PipelineDecoder,
    policy: Box<dyn RepairPolicy>,
    pending_feedback: Feedback,
    next_feedback: Option<Instant>,
    repaired_losses: RepairedLosses,
    stats: LayerStats,
}

impl ProtectedLayer {
    /// A layer that sends under `policy` with `code` (until the policy picks
    /// another). `repaired_losses` collects what the peer repaired.
    pub fn new(
        policy: Box<dyn RepairPolicy>,
        code: CodeChoice,
        repaired_losses: RepairedLosses,
    ) -> Self {
        Self {
            encoder: PipelineEncoder::new(code),
            decoder: PipelineDecoder::default(),
            policy,
            pending_feedback: Feedback::default(),
            next_feedback: None,
            repaired_losses,
            stats: LayerStats::default(),
        }
    }

    /// The native adaptive policy over RLC.
    pub fn native(repaired_losses: RepairedLosses) -> Self {
        Self::new(
            Box::new(AdaptivePolicy::default()),
            CodeChoice::default(),
            repaired_losses,
        )
    }

    /// Decodes and reports what the peer protects, protects nothing itself:
    /// the state of a peer before (or without) an accepted plugin.
    pub fn receive_only() -> Self {
        let mut layer = Self::native(RepairedLosses::default());
        layer.encoder = None;
        layer
    }

    /// True while outgoing packets are protected.
    pub fn is_protecting(&self) -> bool {
        self.encoder.is_some()
    }

    /// Applies a plan made before any packet (a plugin's `configure`).
    pub fn apply_plan(&mut self, plan: Plan) {
        let mut out = Vec::new();
        self.apply(plan, &mut out);
    }

    fn apply(&mut self, plan: Plan, out: &mut Vec<Bytes>) {
        if let Some(code) = plan.code {
            if self.encoder.as_ref().is_some_and(|e| e.code() != code) {
                // Close what the old code protected before switching.
                self.repair(1, out);
                self.encoder = PipelineEncoder::new(code);
            }
        }
        if let (Some(window), Some(encoder)) = (plan.window, self.encoder.as_mut()) {
            encoder.set_window(window);
        }
        self.repair(plan.repairs, out);
    }

    fn repair(&mut self, count: usize, out: &mut Vec<Bytes>) {
        let Some(encoder) = self.encoder.as_mut() else {
            return;
        };
        if count == 0 {
            return;
        }
        // The encoder appends; count only what it added.
        let start = out.len();
        encoder.repair(count, out);
        for repair in &out[start..] {
            self.stats.repair_packets += 1;
            self.stats.repair_bytes += repair.len() as u64;
        }
    }

    fn check_policy(&mut self) {
        if self.encoder.is_some() && !self.policy.is_healthy() {
            tracing::warn!("FEC policy failed; this peer falls back to plain QUIC");
            self.encoder = None;
            self.stats.fallbacks += 1;
        }
    }

    fn unprotected(&self) -> usize {
        self.encoder.as_ref().map_or(0, |e| e.unprotected())
    }
}

impl FecLayer for ProtectedLayer {
    fn on_outgoing(&mut self, now: Instant, quic_packet: &[u8], out: &mut Vec<Bytes>) {
        if self.encoder.is_none() {
            out.push(Bytes::copy_from_slice(quic_packet));
            return;
        }
        let plan = self
            .policy
            .on_source(now, quic_packet.len(), self.unprotected());
        self.check_policy();
        let protected = match (plan.protect, self.encoder.as_mut()) {
            (true, Some(encoder)) => encoder.protect(quic_packet),
            _ => None,
        };
        match protected {
            Some(source) => {
                out.push(source);
                self.stats.source_packets += 1;
                self.stats.source_bytes += quic_packet.len() as u64;
            }
            None => out.push(Bytes::copy_from_slice(quic_packet)),
        }
        self.apply(plan, out);
        self.check_policy();
    }

    fn on_incoming(
        &mut self,
        now: Instant,
        datagram: Bytes,
        to_quinn: &mut Vec<Bytes>,
        out: &mut Vec<Bytes>,
    ) {
        if is_quic(&datagram) {
            to_quinn.push(datagram);
            return;
        }
        if let Some(feedback) = Feedback::parse(&datagram) {
            self.stats.peer_recovered += u64::from(feedback.recovered);
            self.repaired_losses.add(u64::from(feedback.recovered));
            if self.encoder.is_some() {
                let plan = self.policy.on_feedback(now, &feedback);
                self.apply(plan, out);
                self.check_policy();
            }
            return;
        }
        let Some(received) = self.decoder.receive(datagram) else {
            self.stats.rejected += 1;
            return;
        };
        to_quinn.extend(received.source);
        if self.encoder.is_some() {
            // The plugin observes this end's losses and recoveries too.
            if received.newly_lost > 0 {
                let plan = self
                    .policy
                    .on_loss(now, received.newly_lost, received.burst);
                self.apply(plan, out);
            }
            for packet in &received.recovered {
                let plan = self.policy.on_recovered(now, packet.len());
                self.apply(plan, out);
            }
            self.check_policy();
        }
        let recovered = received.recovered.len() as u32;
        self.stats.recovered += u64::from(recovered);
        self.stats.losses_seen += u64::from(received.newly_lost);
        to_quinn.extend(received.recovered);
        let f = &mut self.pending_feedback;
        f.sources += received.newly_accounted;
        f.lost += received.newly_lost;
        f.recovered += recovered;
        f.max_burst = f.max_burst.max(received.burst);
        if self.next_feedback.is_none() {
            self.next_feedback = Some(now + FEEDBACK_INTERVAL);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let policy = if self.unprotected() > 0 {
            self.policy.deadline()
        } else {
            None
        };
        match (policy, self.next_feedback) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Bytes>) {
        if self.encoder.is_some() {
            let plan = self.policy.on_timeout(now, self.unprotected());
            self.apply(plan, out);
            self.check_policy();
        }
        if self.next_feedback.is_some_and(|t| t <= now) {
            self.next_feedback = None;
            out.push(std::mem::take(&mut self.pending_feedback).encode());
            self.stats.feedback_sent += 1;
        }
    }

    fn stats(&self) -> LayerStats {
        LayerStats {
            plugin_calls: self.policy.plugin_calls(),
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quic(n: u32, len: usize) -> Vec<u8> {
        let mut p: Vec<u8> = (0..len)
            .map(|i| (i as u32 ^ n.wrapping_mul(31)) as u8)
            .collect();
        p[0] = 0x40 | (n as u8 & 0x3f);
        p
    }

    #[test]
    fn feedback_round_trip_and_rejects_garbage() {
        let f = Feedback {
            sources: 10,
            lost: 2,
            recovered: 1,
            max_burst: 2,
        };
        assert_eq!(Feedback::parse(&f.encode()), Some(f));
        assert_eq!(Feedback::parse(&[FEEDBACK_TYPE, 1, 2]), None);
        assert_eq!(Feedback::parse(&[]), None);
    }

    #[test]
    fn every_code_recovers_a_lost_packet_and_counts_it() {
        let codes = [
            CodeChoice::Rlc { window: 8 },
            CodeChoice::ReedSolomon { data: 4, parity: 2 },
            CodeChoice::RaptorQ {
                source_symbols: 4,
                repair_symbols: 2,
            },
        ];
        for code in codes {
            let mut tx = PipelineEncoder::new(code).unwrap();
            let mut rx = PipelineDecoder::default();
            let packets: Vec<Vec<u8>> = (0..4).map(|i| quic(i, 60 + 37 * i as usize)).collect();
            let mut wire: Vec<Bytes> = packets.iter().map(|p| tx.protect(p).unwrap()).collect();
            tx.repair(2, &mut wire);
            wire.remove(1);
            let mut got = Vec::new();
            let (mut lost, mut recovered) = (0, 0);
            for d in wire {
                let r = rx.receive(d).unwrap();
                got.extend(r.source);
                recovered += r.recovered.len();
                got.extend(r.recovered);
                lost += r.newly_lost;
            }
            assert_eq!(recovered, 1, "{code:?}");
            assert_eq!(lost, 1, "{code:?}");
            for p in &packets {
                assert!(got.iter().any(|g| g[..] == p[..]), "{code:?}");
            }
        }
    }

    #[test]
    fn decoder_rejects_garbage_without_panicking() {
        let mut rx = PipelineDecoder::default();
        let mut rng = crate::rng::SeededRng::new(11);
        for len in 0..200usize {
            let mut d: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            if let Some(b) = d.first_mut() {
                *b &= !0x40;
            }
            let _ = rx.receive(Bytes::from(d));
        }
    }

    /// Two layers joined by a lossy in-memory link, driven with a fake clock.
    #[test]
    fn layers_repair_losses_and_report_them_to_the_sender() {
        let repaired = RepairedLosses::default();
        let mut sender = ProtectedLayer::native(repaired.clone());
        let mut receiver = ProtectedLayer::receive_only();
        let mut now = Instant::now();
        let mut rng = crate::rng::SeededRng::new(3);
        let (mut wire, mut to_quinn, mut back) = (Vec::new(), Vec::new(), Vec::new());
        let mut sent = Vec::new();
        for i in 0..400u32 {
            let packet = quic(i, 100 + (i % 7) as usize * 20);
            sent.push(packet.clone());
            sender.on_outgoing(now, &packet, &mut wire);
            now += Duration::from_millis(2);
            sender.handle_timeout(now, &mut wire);
            for d in wire.drain(..) {
                if !rng.chance(0.03) {
                    receiver.on_incoming(now, d, &mut to_quinn, &mut back);
                }
            }
            receiver.handle_timeout(now, &mut back);
            for d in back.drain(..) {
                sender.on_incoming(now, d, &mut Vec::new(), &mut Vec::new());
            }
        }
        let stats = receiver.stats();
        assert!(stats.recovered > 0, "{stats:?}");
        assert!(stats.recovered <= stats.losses_seen);
        // Every packet handed up is one that was sent, byte for byte.
        for p in &to_quinn {
            assert!(sent.iter().any(|s| s[..] == p[..]));
        }
        assert!(
            receiver.stats().source_packets == 0,
            "receive-only sends plainly"
        );
        assert!(sender.stats().peer_recovered > 0);
        assert_eq!(repaired.take(), sender.stats().peer_recovered);
    }
}
