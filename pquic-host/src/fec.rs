//! FEC for QUIC: the shared [`fec_core::layer::Layer`] with QUIC's settings,
//! as a [`FecLayer`] of the socket adapter, plus the congestion hook.
//!
//! Everything about FEC itself (framing, codes, repair scheduling, receiver
//! reports, the policy) lives in `fec_core::layer`, and a plugin drives it
//! through `fec_plugin_sdk::host::PluginPolicy`, exactly as in the harness.
//! What is QUIC's here: the symbol size (quinn's largest packet, see
//! [`MAX_QUIC_PACKET`], plus the 3 bytes of ADU
//! information), the demultiplexing rule (QUIC packets set the fixed bit
//! that every FEC datagram keeps clear, so unprotected QUIC packets pass
//! unchanged), and charging the peer's repaired losses to quinn's
//! congestion controller ([`RepairedLosses`], RFC 9265).

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fec_core::layer::auth::Keys;
use fec_core::layer::paths::{PathEvent, PathId, PathView, MAX_PATHS, TOKEN_LEN};
use fec_core::layer::policy::{Adaptive, Policy};
use fec_core::layer::{Layer, LayerConfig};
use fec_core::pipeline::wire::ADU_INFO_LEN;
use fec_plugin_sdk::host::PluginPolicy;
use fec_plugin_sdk::runtime::Plugin;

use crate::layer::{FecLayer, LayerStats};

pub use fec_core::layer::feedback::{Feedback, FEEDBACK_TYPE};

/// Bytes the FEC layer may add to a QUIC packet (`fec_core`'s
/// [`MAX_OVERHEAD`](fec_core::layer::MAX_OVERHEAD): a repair packet is the
/// longest pipeline header plus a symbol of the packet and its ADU
/// information). quinn's packet size ceiling is lowered by this much so
/// every FEC datagram still fits the path MTU.
pub const LAYER_OVERHEAD: u16 = fec_core::layer::MAX_OVERHEAD as u16;

/// Largest UDP payload on a 1500-byte Ethernet path over IPv6.
pub const PATH_MTU_PAYLOAD: u16 = 1452;

/// Largest QUIC packet quinn may build (its MTU discovery ceiling).
pub const MAX_QUIC_PACKET: u16 = PATH_MTU_PAYLOAD - LAYER_OVERHEAD;

/// Symbol size of every scheme: the largest QUIC packet quinn may send plus
/// the pipeline's ADU information, so every packet fits one symbol.
pub const SYMBOL_SIZE: usize = MAX_QUIC_PACKET as usize + ADU_INFO_LEN;
/// How often a receiver reports.
pub const FEEDBACK_INTERVAL: Duration = fec_core::layer::DEFAULT_FEEDBACK_INTERVAL;

/// The layer configuration of every QUIC peer.
pub fn layer_config() -> LayerConfig {
    let mut config = LayerConfig::default();
    config.set_symbol_size(SYMBOL_SIZE);
    config
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

/// One QUIC peer's FEC layer.
#[derive(Debug)]
pub struct QuicLayer {
    layer: Layer,
    repaired: RepairedLosses,
}

impl QuicLayer {
    /// A layer sending under `policy` (none: receive only), configured at
    /// `now`, reporting the peer's repaired losses into `repaired`.
    pub fn new(policy: Option<Box<dyn Policy>>, repaired: RepairedLosses, now: Instant) -> Self {
        QuicLayer {
            layer: Layer::new(layer_config(), policy, now),
            repaired,
        }
    }

    /// The native adaptive policy (no plugin).
    pub fn native(repaired: RepairedLosses, now: Instant) -> Self {
        Self::new(Some(Box::new(Adaptive::default())), repaired, now)
    }

    /// Protecting under a fresh instance of `plugin` started at `now`, whose
    /// `fec_log` lines go to the log.
    pub fn with_plugin(plugin: &Plugin, repaired: RepairedLosses, now: Instant) -> Self {
        Self::new(Some(Box::new(plugin_policy(plugin, now))), repaired, now)
    }

    /// A receive-only layer for a connection: authenticated with `keys`,
    /// charging the peer's repaired losses to `repaired`. What the server
    /// and client install once the handshake gave the keys; a plugin is
    /// switched on later with [`FecLayer::set_policy`].
    pub fn for_connection(keys: &Keys, repaired: RepairedLosses) -> Self {
        let mut layer = Layer::receive_only(layer_config());
        layer.set_keys(keys);
        QuicLayer { layer, repaired }
    }

    /// Decodes and reports what the peer protects, protects nothing: the
    /// state of a peer before (or without) an accepted plugin.
    pub fn receive_only() -> Self {
        QuicLayer {
            layer: Layer::receive_only(layer_config()),
            repaired: RepairedLosses::default(),
        }
    }

    /// The shared layer.
    pub fn layer(&self) -> &Layer {
        &self.layer
    }

    /// True while outgoing packets are protected.
    pub fn is_protecting(&self) -> bool {
        self.layer.is_protecting()
    }
}

/// Label of the TLS exporter (RFC 8446 section 7.5) that keys a
/// connection's FEC datagrams; the context is `client` or `server`, the side
/// whose datagrams the key authenticates.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-pquic-fec/2";

/// The FEC datagram keys of this end of `connection` (`is_client`: which end
/// this is), from the TLS keying-material exporter.
pub fn connection_keys(connection: &quinn::Connection, is_client: bool) -> crate::Result<Keys> {
    let export = |context: &[u8]| {
        let mut key = [0u8; 32];
        connection
            .export_keying_material(&mut key, EXPORTER_LABEL, context)
            .map(|()| key)
            .map_err(|_| crate::Error::Protocol("TLS keying-material export failed".into()))
    };
    let (client, server) = Keys::pair(export(b"client")?, export(b"server")?);
    Ok(if is_client { client } else { server })
}

/// A fresh instance of `plugin`, its clock starting at `epoch`, as a policy
/// whose `fec_log` lines go to the log: how the QUIC host runs a plugin.
pub fn plugin_policy(plugin: &Plugin, epoch: Instant) -> PluginPolicy {
    let mut policy = PluginPolicy::new(plugin, epoch);
    policy.log_to(Box::new(|plugin, line| tracing::info!(plugin, "{line}")));
    policy
}

impl FecLayer for QuicLayer {
    fn on_outgoing(&mut self, now: Instant, quic_packet: &[u8], out: &mut Vec<Bytes>) {
        self.layer.send_slice(now, quic_packet, out);
    }

    fn on_incoming(
        &mut self,
        now: Instant,
        datagram: Bytes,
        to_quinn: &mut Vec<Bytes>,
        out: &mut Vec<Bytes>,
    ) {
        self.on_incoming_on(now, 0, datagram, to_quinn, out);
    }

    fn on_incoming_on(
        &mut self,
        now: Instant,
        path: PathId,
        datagram: Bytes,
        to_quinn: &mut Vec<Bytes>,
        out: &mut Vec<Bytes>,
    ) -> bool {
        let was_protecting = self.layer.is_protecting();
        let authentic = self.layer.receive_on(now, path, datagram, to_quinn, out);
        let repaired = self.layer.take_peer_recovered();
        if repaired > 0 {
            self.repaired.add(repaired);
        }
        if was_protecting && !self.layer.is_protecting() {
            tracing::warn!(
                "FEC policy failed ({}); this peer falls back to plain QUIC",
                self.layer.failure().unwrap_or("unknown")
            );
        }
        authentic
    }

    fn routes(&self) -> &[PathId] {
        self.layer.routes()
    }

    fn open_path(&mut self, now: Instant) -> Option<PathId> {
        (1..MAX_PATHS as PathId).find(|&path| self.layer.open_path(now, path))
    }

    fn take_path_event(&mut self) -> Option<PathEvent> {
        self.layer.take_path_event()
    }

    fn paths(&self) -> Vec<PathView> {
        self.layer.paths().to_vec()
    }

    fn peer_token(&self) -> Option<[u8; TOKEN_LEN]> {
        self.layer.peer_token()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.layer.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Bytes>) {
        self.layer.handle_timeout(now, out);
    }

    fn stats(&self) -> LayerStats {
        self.layer.stats()
    }

    fn failure(&self) -> Option<&str> {
        self.layer.failure()
    }

    fn is_protecting(&self) -> bool {
        self.layer.is_protecting()
    }

    fn set_rtt(&mut self, rtt: Duration) {
        self.layer.set_rtt(rtt);
    }

    fn set_policy(&mut self, policy: Option<Box<dyn Policy>>, now: Instant) -> bool {
        self.layer.set_policy(policy, now);
        true
    }

    fn recycle(&mut self, datagram: Bytes) {
        self.layer.recycle(datagram);
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
    fn the_overhead_quinn_leaves_is_what_the_layer_adds() {
        // 33 bytes: fec-core's longest header (10), ADU information (3) and
        // the authentication trailer (20).
        assert_eq!(usize::from(LAYER_OVERHEAD), fec_core::layer::MAX_OVERHEAD);
        assert_eq!(LAYER_OVERHEAD, 33);
        // The longest QUIC packet, protected, repaired, keyed: every datagram
        // fits the path MTU quinn was given.
        let keys = Keys {
            send: [1; 32],
            receive: [2; 32],
        };
        let mut sender = QuicLayer::for_connection(&keys, RepairedLosses::default());
        let now = Instant::now();
        sender.set_policy(Some(Box::new(Adaptive::default())), now);
        let mut out = Vec::new();
        sender.on_outgoing(now, &quic(1, usize::from(MAX_QUIC_PACKET)), &mut out);
        sender.handle_timeout(now + Duration::from_millis(5), &mut out);
        assert_eq!(out.len(), 2, "a source and a repair");
        for datagram in &out {
            assert!(
                datagram.len() <= usize::from(MAX_QUIC_PACKET + LAYER_OVERHEAD),
                "{}",
                datagram.len()
            );
        }
        assert_eq!(
            out[1].len(),
            usize::from(MAX_QUIC_PACKET + LAYER_OVERHEAD),
            "a repair of the longest packet is exactly the overhead longer"
        );
    }

    #[test]
    fn quic_packets_pass_unchanged_when_unprotected() {
        let mut layer = QuicLayer::receive_only();
        let now = Instant::now();
        let mut out = Vec::new();
        let packet = quic(3, 80);
        layer.on_outgoing(now, &packet, &mut out);
        assert_eq!(out, vec![Bytes::from(packet.clone())]);
        let mut up = Vec::new();
        layer.on_incoming(now, Bytes::from(packet.clone()), &mut up, &mut out);
        assert_eq!(up, vec![Bytes::from(packet)]);
    }

    /// Two layers joined by a lossy in-memory link, driven with a fake clock.
    #[test]
    fn layers_repair_losses_and_report_them_to_the_sender() {
        let repaired = RepairedLosses::default();
        let mut sender = QuicLayer::native(repaired.clone(), Instant::now());
        let mut receiver = QuicLayer::receive_only();
        let mut now = Instant::now();
        let mut loss = fec_core::pipeline::loss::Bernoulli::new(0.03, 3);
        let (mut wire, mut to_quinn, mut back) = (Vec::new(), Vec::new(), Vec::new());
        let mut sent = Vec::new();
        for i in 0..400u32 {
            let packet = quic(i, 100 + (i % 7) as usize * 20);
            sent.push(packet.clone());
            sender.on_outgoing(now, &packet, &mut wire);
            now += Duration::from_millis(2);
            sender.handle_timeout(now, &mut wire);
            for d in wire.drain(..) {
                if !fec_core::pipeline::loss::LossModel::lost(&mut loss) {
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
        assert_eq!(
            receiver.stats().source_packets,
            0,
            "receive-only sends plainly"
        );
        assert!(sender.stats().peer_recovered > 0);
        assert_eq!(repaired.take(), sender.stats().peer_recovered);
    }
}
