//! The protecting [`FecLayer`]: a codec (what the bytes are) plus a repair
//! policy (when and how much redundancy), plus receiver feedback.
//!
//! - [`Codec`] turns QUIC packets into source packets and repair packets and
//!   back. Codecs are swappable; each keeps bounded state.
//! - [`RepairPolicy`] decides how many repair packets to send and when. The
//!   native [`AdaptivePolicy`] sets the code rate from the loss the receiver
//!   reports; a plugin-driven policy replaces it when a plugin is loaded.
//! - Feedback: every [`FEEDBACK_INTERVAL`] the receiving side sends a small
//!   report (first byte [`FEEDBACK_TYPE`], fixed bit clear) with the sources
//!   it saw, lost, recovered, and the longest loss burst. The sender feeds it
//!   to its policy and counts repaired losses for its congestion controller.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

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

/// Source and repair packets for one direction of one peer.
pub trait Codec: Send + fmt::Debug {
    /// Wraps a QUIC packet as a source packet.
    fn protect(&mut self, quic_packet: &[u8]) -> Bytes;
    /// Sources protected since the last repair call.
    fn unprotected(&self) -> usize;
    /// Repair packets covering the recent sources; resets `unprotected`.
    fn repair(&mut self, count: usize, out: &mut Vec<Bytes>);
    /// Sets the coding window / block size (codecs without one ignore it).
    fn set_window(&mut self, _size: usize) {}
    /// Accepts one FEC packet from the peer; `None` if it is not one of
    /// this codec's packets or is malformed.
    fn receive(&mut self, packet: Bytes) -> Option<Received>;
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
    /// False once the policy gave up (a faulting plugin): the layer then
    /// stops protecting and sends plain QUIC packets.
    fn is_healthy(&self) -> bool {
        true
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
                window: None,
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

/// Stand-in codec until `fec_core::pipeline` is available: one XOR parity
/// per block of sources. Source: `0x01, block u32, index u8, packet`.
/// Repair: `0x02, block u32, count u8, XOR of (u16 length + packet)`.
#[derive(Debug, Default)]
pub struct XorCodec {
    block: u32,
    index: u8,
    parity: Vec<u8>,
    blocks: BTreeMap<u32, XorBlock>,
}

#[derive(Debug, Default)]
struct XorBlock {
    sources: BTreeMap<u8, Bytes>,
    repair: Option<(u8, Bytes)>,
    closed: bool,
}

const XOR_SOURCE: u8 = 0x01;
const XOR_REPAIR: u8 = 0x02;
const XOR_HEADER: usize = 6;
/// Blocks a receiver remembers; older ones are forgotten (bounded memory).
const XOR_BLOCKS_KEPT: usize = 64;

impl XorCodec {
    fn accumulate(&mut self, packet: &[u8]) {
        let needed = 2 + packet.len();
        if self.parity.len() < needed {
            self.parity.resize(needed, 0);
        }
        let len = (packet.len() as u16).to_be_bytes();
        self.parity[0] ^= len[0];
        self.parity[1] ^= len[1];
        for (p, b) in self.parity[2..].iter_mut().zip(packet) {
            *p ^= b;
        }
    }

    fn try_recover(block: &mut XorBlock) -> Option<(Bytes, u8)> {
        let (count, parity) = block.repair.as_ref()?;
        if block.closed || block.sources.len() + 1 != usize::from(*count) {
            return None;
        }
        let missing = (0..*count).find(|i| !block.sources.contains_key(i))?;
        let mut acc = parity.to_vec();
        for source in block.sources.values() {
            let len = (source.len() as u16).to_be_bytes();
            acc[0] ^= len[0];
            acc[1] ^= len[1];
            for (a, b) in acc[2..].iter_mut().zip(source.iter()) {
                *a ^= b;
            }
        }
        let len = usize::from(u16::from_be_bytes([acc[0], acc[1]]));
        if len + 2 > acc.len() {
            return None;
        }
        block.closed = true;
        Some((Bytes::copy_from_slice(&acc[2..2 + len]), missing))
    }
}

fn longest_run(present: impl Fn(u8) -> bool, count: u8) -> (u32, u16) {
    let (mut missing, mut run, mut longest) = (0u32, 0u16, 0u16);
    for i in 0..count {
        if present(i) {
            run = 0;
        } else {
            missing += 1;
            run += 1;
            longest = longest.max(run);
        }
    }
    (missing, longest)
}

impl Codec for XorCodec {
    fn protect(&mut self, quic_packet: &[u8]) -> Bytes {
        if self.index == u8::MAX {
            // A block may not outgrow its index; close it without repair.
            self.parity.clear();
            self.block = self.block.wrapping_add(1);
            self.index = 0;
        }
        let mut b = BytesMut::with_capacity(XOR_HEADER + quic_packet.len());
        b.put_u8(XOR_SOURCE);
        b.put_u32(self.block);
        b.put_u8(self.index);
        b.put_slice(quic_packet);
        self.accumulate(quic_packet);
        self.index += 1;
        b.freeze()
    }

    fn unprotected(&self) -> usize {
        usize::from(self.index)
    }

    fn repair(&mut self, count: usize, out: &mut Vec<Bytes>) {
        if self.index == 0 || count == 0 {
            return;
        }
        let mut b = BytesMut::with_capacity(XOR_HEADER + self.parity.len());
        b.put_u8(XOR_REPAIR);
        b.put_u32(self.block);
        b.put_u8(self.index);
        b.put_slice(&self.parity);
        let repair = b.freeze();
        // One parity can only be repeated: repeats still help against
        // losing the repair itself.
        out.extend(std::iter::repeat_n(repair, count.min(2)));
        self.parity.clear();
        self.block = self.block.wrapping_add(1);
        self.index = 0;
    }

    fn receive(&mut self, packet: Bytes) -> Option<Received> {
        if packet.len() < XOR_HEADER || !matches!(packet[0], XOR_SOURCE | XOR_REPAIR) {
            return None;
        }
        let block_id = u32::from_be_bytes(packet[1..5].try_into().expect("4 bytes"));
        let field = packet[5];
        let newest = self.blocks.keys().next_back().copied();
        if let Some(newest) = newest {
            if newest.wrapping_sub(block_id) < u32::MAX / 2
                && newest.wrapping_sub(block_id) >= XOR_BLOCKS_KEPT as u32
            {
                return Some(Received::default()); // too old to matter
            }
        }
        let block = self.blocks.entry(block_id).or_default();
        let mut received = Received::default();
        if packet[0] == XOR_SOURCE {
            let body = packet.slice(XOR_HEADER..);
            if block.sources.insert(field, body.clone()).is_none() {
                received.source = Some(body);
            }
        } else if block.repair.is_none() {
            if field == 0 {
                return None;
            }
            block.repair = Some((field, packet.slice(XOR_HEADER..)));
            let (missing, burst) = longest_run(|i| block.sources.contains_key(&i), field);
            received.newly_lost = missing;
            received.burst = burst;
            received.newly_accounted = u32::from(field);
        }
        if let Some((rebuilt, index)) = Self::try_recover(block) {
            block.sources.insert(index, rebuilt.clone());
            received.recovered.push(rebuilt);
        }
        while self.blocks.len() > XOR_BLOCKS_KEPT {
            self.blocks.pop_first();
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
    encoder: Box<dyn Codec>,
    decoder: Box<dyn Codec>,
    policy: Box<dyn RepairPolicy>,
    protecting: bool,
    pending_feedback: Feedback,
    next_feedback: Option<Instant>,
    repaired_losses: RepairedLosses,
    stats: LayerStats,
    scratch: Vec<Bytes>,
}

impl ProtectedLayer {
    /// A layer that sends with `encoder` under `policy` and receives with
    /// `decoder`. `repaired_losses` collects what the peer repaired.
    pub fn new(
        encoder: Box<dyn Codec>,
        decoder: Box<dyn Codec>,
        policy: Box<dyn RepairPolicy>,
        repaired_losses: RepairedLosses,
    ) -> Self {
        Self {
            encoder,
            decoder,
            policy,
            protecting: true,
            pending_feedback: Feedback::default(),
            next_feedback: None,
            repaired_losses,
            stats: LayerStats::default(),
            scratch: Vec::new(),
        }
    }

    /// The stand-in XOR codec with the native adaptive policy.
    pub fn native_xor(repaired_losses: RepairedLosses) -> Self {
        Self::with_policy(Box::new(AdaptivePolicy::default()), repaired_losses)
    }

    /// The default codec driven by `policy` (for example a plugin).
    pub fn with_policy(policy: Box<dyn RepairPolicy>, repaired_losses: RepairedLosses) -> Self {
        Self::new(
            Box::new(XorCodec::default()),
            Box::new(XorCodec::default()),
            policy,
            repaired_losses,
        )
    }

    /// Decodes and reports what the peer protects, protects nothing itself:
    /// the state of a peer before (or without) an accepted plugin.
    pub fn receive_only() -> Self {
        let mut layer = Self::native_xor(RepairedLosses::default());
        layer.protecting = false;
        layer
    }

    /// Applies the window of a plan made before any packet (a plugin's
    /// `configure`); there is nothing to repair yet.
    pub fn apply_plan(&mut self, plan: Plan) {
        if let Some(window) = plan.window {
            self.encoder.set_window(window);
        }
    }

    /// True while outgoing packets are protected.
    pub fn is_protecting(&self) -> bool {
        self.protecting
    }

    fn apply(&mut self, plan: Plan, out: &mut Vec<Bytes>) {
        if let Some(window) = plan.window {
            self.encoder.set_window(window);
        }
        let count = plan.repairs;
        if count == 0 {
            return;
        }
        self.scratch.clear();
        self.encoder.repair(count, &mut self.scratch);
        for repair in self.scratch.drain(..) {
            self.stats.repair_packets += 1;
            self.stats.repair_bytes += repair.len() as u64;
            out.push(repair);
        }
    }

    fn check_policy(&mut self) {
        if self.protecting && !self.policy.is_healthy() {
            tracing::warn!("FEC policy failed; this peer falls back to plain QUIC");
            self.protecting = false;
        }
    }
}

impl FecLayer for ProtectedLayer {
    fn on_outgoing(&mut self, now: Instant, quic_packet: &[u8], out: &mut Vec<Bytes>) {
        self.check_policy();
        if !self.protecting {
            out.push(Bytes::copy_from_slice(quic_packet));
            return;
        }
        let plan = self
            .policy
            .on_source(now, quic_packet.len(), self.encoder.unprotected());
        if plan.protect {
            out.push(self.encoder.protect(quic_packet));
            self.stats.source_packets += 1;
            self.stats.source_bytes += quic_packet.len() as u64;
        } else {
            out.push(Bytes::copy_from_slice(quic_packet));
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
            if self.protecting {
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
        let policy = if self.protecting && self.encoder.unprotected() > 0 {
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
        if self.protecting {
            let plan = self.policy.on_timeout(now, self.encoder.unprotected());
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
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quic(n: u8, len: usize) -> Vec<u8> {
        let mut p = vec![n; len];
        p[0] = 0x40 | (n & 0x3f);
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
    fn xor_recovers_any_single_loss_of_a_block() {
        for lost in 0..5u8 {
            let (mut tx, mut rx) = (XorCodec::default(), XorCodec::default());
            let packets: Vec<Vec<u8>> = (0..5).map(|i| quic(i, 50 + 37 * i as usize)).collect();
            let sources: Vec<Bytes> = packets.iter().map(|p| tx.protect(p)).collect();
            let mut repairs = Vec::new();
            tx.repair(1, &mut repairs);
            let mut delivered = Vec::new();
            for (i, s) in sources.into_iter().enumerate() {
                if i as u8 != lost {
                    delivered.extend(rx.receive(s).unwrap().source);
                }
            }
            let got = rx.receive(repairs.remove(0)).unwrap();
            assert_eq!(got.newly_lost, 1);
            assert_eq!(
                got.recovered,
                vec![Bytes::from(packets[lost as usize].clone())]
            );
        }
    }

    #[test]
    fn xor_rejects_garbage_without_panicking() {
        let mut rx = XorCodec::default();
        assert!(rx
            .receive(Bytes::from_static(&[XOR_REPAIR, 0, 0, 0, 1, 0]))
            .is_none());
        assert!(rx.receive(Bytes::from_static(&[0x7f])).is_none());
        // A repair claiming a long packet that the parity cannot hold.
        let r = rx.receive(Bytes::from_static(&[XOR_REPAIR, 0, 0, 0, 2, 1, 0xff, 0xff]));
        assert!(r.is_some_and(|r| r.recovered.is_empty()));
    }

    /// Two layers joined by a lossy in-memory link, driven with a fake clock.
    #[test]
    fn layers_repair_losses_and_report_them_to_the_sender() {
        let repaired = RepairedLosses::default();
        let mut sender = ProtectedLayer::native_xor(repaired.clone());
        let mut receiver = ProtectedLayer::native_xor(RepairedLosses::default());
        let mut now = Instant::now();
        let mut rng = crate::rng::SeededRng::new(3);
        let (mut wire, mut to_quinn, mut back) = (Vec::new(), Vec::new(), Vec::new());
        let mut sent = Vec::new();
        for i in 0..400u32 {
            let packet = quic(i as u8, 100 + (i % 7) as usize * 20);
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
        assert!(sender.stats().peer_recovered > 0);
        assert_eq!(repaired.take(), sender.stats().peer_recovered);
    }
}
