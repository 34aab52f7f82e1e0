//! The FEC layer between quinn and the UDP socket, sans-IO.
//!
//! A [`FecLayer`] serves one peer. It sees every QUIC packet quinn sends to
//! that peer and every datagram that arrives from it, and it owns no socket
//! and no clock: time comes in as `now`, output goes into caller-owned
//! vectors, and [`FecLayer::poll_timeout`] / [`FecLayer::handle_timeout`]
//! let it act when nothing else happens (for example to flush a repair
//! symbol after the last packet of a burst). The socket adapter in
//! [`crate::socket`] is the only place with I/O.
//!
//! Datagrams are demultiplexed on their first byte: QUIC sets the fixed bit
//! 0x40 (with quinn's `grease_quic_bit` turned off on both ends), the FEC
//! layer's own datagrams keep it clear (see [`is_quic`]).

#![forbid(unsafe_code)]

use std::time::Instant;

use bytes::Bytes;

/// True when `datagram` is a QUIC packet rather than one of the FEC layer's
/// datagrams: QUIC's fixed bit (RFC 9000 section 17) is set in its first byte.
pub fn is_quic(datagram: &[u8]) -> bool {
    datagram.first().is_some_and(|b| b & 0x40 != 0)
}

/// Counters of one layer (one peer), cumulative.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// QUIC packets protected as source symbols.
    pub source_packets: u64,
    /// Bytes of those QUIC packets.
    pub source_bytes: u64,
    /// Repair datagrams sent.
    pub repair_packets: u64,
    /// Bytes of repair datagrams sent.
    pub repair_bytes: u64,
    /// QUIC packets rebuilt from repair symbols and handed to quinn.
    pub recovered: u64,
    /// Source packets the receiver found missing (before recovery).
    pub losses_seen: u64,
    /// Datagrams that could not be parsed or used.
    pub rejected: u64,
    /// Feedback reports sent to the peer.
    pub feedback_sent: u64,
    /// Repaired losses reported by the peer (for the congestion controller).
    pub peer_recovered: u64,
    /// Times the policy failed and the layer fell back to plain QUIC.
    pub fallbacks: u64,
    /// Pluglet executions of the plugin driving this layer's policy.
    pub plugin_calls: u64,
}

impl LayerStats {
    /// Field-wise sum.
    pub fn sum(self, other: LayerStats) -> LayerStats {
        LayerStats {
            source_packets: self.source_packets + other.source_packets,
            source_bytes: self.source_bytes + other.source_bytes,
            repair_packets: self.repair_packets + other.repair_packets,
            repair_bytes: self.repair_bytes + other.repair_bytes,
            recovered: self.recovered + other.recovered,
            losses_seen: self.losses_seen + other.losses_seen,
            rejected: self.rejected + other.rejected,
            feedback_sent: self.feedback_sent + other.feedback_sent,
            peer_recovered: self.peer_recovered + other.peer_recovered,
            fallbacks: self.fallbacks + other.fallbacks,
            plugin_calls: self.plugin_calls + other.plugin_calls,
        }
    }
}

/// One peer's FEC state (sans-IO; see the module docs).
pub trait FecLayer: Send + std::fmt::Debug {
    /// quinn sends `quic_packet` to this peer: push the datagrams to put on
    /// the wire into `out`, in order.
    fn on_outgoing(&mut self, now: Instant, quic_packet: &[u8], out: &mut Vec<Bytes>);

    /// `datagram` arrived from this peer: push QUIC packets for quinn into
    /// `to_quinn` (the received one and any it let us recover) and datagrams
    /// to send back (feedback) into `out`.
    fn on_incoming(
        &mut self,
        now: Instant,
        datagram: Bytes,
        to_quinn: &mut Vec<Bytes>,
        out: &mut Vec<Bytes>,
    );

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    fn poll_timeout(&self) -> Option<Instant>;

    /// Time passed: push datagrams that are due (flushed repairs, feedback).
    fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Bytes>);

    /// Counters so far.
    fn stats(&self) -> LayerStats;
}

/// No FEC: QUIC packets go out unchanged; datagrams that are not QUIC are
/// dropped (and counted) because nothing here can decode them.
#[derive(Debug, Default)]
pub struct PassThrough {
    stats: LayerStats,
}

impl FecLayer for PassThrough {
    fn on_outgoing(&mut self, _now: Instant, quic_packet: &[u8], out: &mut Vec<Bytes>) {
        out.push(Bytes::copy_from_slice(quic_packet));
    }

    fn on_incoming(
        &mut self,
        _now: Instant,
        datagram: Bytes,
        to_quinn: &mut Vec<Bytes>,
        _out: &mut Vec<Bytes>,
    ) {
        if is_quic(&datagram) {
            to_quinn.push(datagram);
        } else {
            self.stats.rejected += 1;
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn handle_timeout(&mut self, _now: Instant, _out: &mut Vec<Bytes>) {}

    fn stats(&self) -> LayerStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_through_forwards_quic_and_rejects_the_rest() {
        let mut layer = PassThrough::default();
        let now = Instant::now();
        let (mut to_quinn, mut out) = (Vec::new(), Vec::new());
        layer.on_outgoing(now, &[0x40, 1, 2], &mut out);
        assert_eq!(out, vec![Bytes::from_static(&[0x40, 1, 2])]);
        out.clear();
        layer.on_incoming(now, Bytes::from_static(&[0xc3, 9]), &mut to_quinn, &mut out);
        layer.on_incoming(now, Bytes::from_static(&[0x01, 9]), &mut to_quinn, &mut out);
        layer.on_incoming(now, Bytes::new(), &mut to_quinn, &mut out);
        assert_eq!(to_quinn, vec![Bytes::from_static(&[0xc3, 9])]);
        assert!(out.is_empty());
        assert_eq!(layer.stats().rejected, 2);
        assert_eq!(layer.poll_timeout(), None);
    }
}
