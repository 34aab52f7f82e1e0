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
//! layer's own datagrams keep it clear (see [`is_quic`]). The layer itself is
//! `fec_core::layer::Layer`, wrapped for QUIC in [`crate::fec::QuicLayer`].

#![forbid(unsafe_code)]

use std::time::Instant;

use bytes::Bytes;
use fec_core::layer::paths::{PathEvent, PathId, PathView, TOKEN_LEN};
use fec_core::layer::policy::Policy;
use fec_core::layer::DatagramKind;

/// True when `datagram` is a QUIC packet rather than one of the FEC layer's
/// datagrams: QUIC's fixed bit (RFC 9000 section 17) is set in its first byte,
/// the layer's own datagrams keep it clear ([`fec_core::layer::DatagramKind`]).
pub fn is_quic(datagram: &[u8]) -> bool {
    DatagramKind::of(datagram) == DatagramKind::Plain
}

/// Counters of one layer (one peer), cumulative: the shared layer's.
pub type LayerStats = fec_core::layer::Stats;

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

    /// [`on_incoming`](Self::on_incoming) for a datagram that arrived on
    /// `path` (multipath, [`fec_core::layer::paths`]); false when it was
    /// dropped unread (a wrong tag, a replay). A layer without paths takes
    /// everything as path 0.
    fn on_incoming_on(
        &mut self,
        now: Instant,
        _path: PathId,
        datagram: Bytes,
        to_quinn: &mut Vec<Bytes>,
        out: &mut Vec<Bytes>,
    ) -> bool {
        self.on_incoming(now, datagram, to_quinn, out);
        true
    }

    /// The path of each datagram the last call pushed into `out`, in order;
    /// fewer entries than datagrams (a layer without paths: none) mean path 0
    /// for the rest.
    fn routes(&self) -> &[PathId] {
        &[]
    }

    /// Opens the next free path from this end; `None` when the layer has no
    /// paths or all are in use.
    fn open_path(&mut self, _now: Instant) -> Option<PathId> {
        None
    }

    /// The next path event not yet taken.
    fn take_path_event(&mut self) -> Option<PathEvent> {
        None
    }

    /// The paths as they stand (empty without paths).
    fn paths(&self) -> Vec<PathView> {
        Vec::new()
    }

    /// The token the peer's path probes carry, for a keyed layer.
    fn peer_token(&self) -> Option<[u8; TOKEN_LEN]> {
        None
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    fn poll_timeout(&self) -> Option<Instant>;

    /// Time passed: push datagrams that are due (flushed repairs, feedback).
    fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Bytes>);

    /// Counters so far.
    fn stats(&self) -> LayerStats;

    /// Why FEC stopped for this peer (a faulting plugin), if it did.
    fn failure(&self) -> Option<&str> {
        None
    }

    /// True while this layer protects what it sends.
    fn is_protecting(&self) -> bool {
        false
    }

    /// The connection's smoothed round-trip time, for the policy.
    fn set_rtt(&mut self, _rtt: std::time::Duration) {}

    /// Takes back a datagram it made once the datagram is on the wire, to
    /// reuse its buffer ([`fec_core::layer::Layer::recycle`]); the default
    /// drops it.
    fn recycle(&mut self, _datagram: Bytes) {}

    /// Protect from now on under `policy` (`None`: stop); false if this layer
    /// cannot protect (pass-through).
    fn set_policy(&mut self, _policy: Option<Box<dyn Policy>>, _now: Instant) -> bool {
        false
    }
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
