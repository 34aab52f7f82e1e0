use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{Rng, SeedableRng};

use super::policy::{Adaptive, BlockCode, FixedRate, Policy};
use super::*;
use crate::pipeline::loss::{Bernoulli, LossModel};

fn adu(n: u32, len: usize) -> Bytes {
    let mut p: Vec<u8> = (0..len)
        .map(|i| (i as u32 ^ n.wrapping_mul(31)) as u8)
        .collect();
    p[..4].copy_from_slice(&n.to_be_bytes());
    Bytes::from(p)
}

/// Two layers over a lossy in-memory link (forward loss only), driven with
/// a fake clock, 2 ms between ADUs. Returns what was sent and delivered.
fn drive(
    sender: &mut Layer,
    receiver: &mut Layer,
    count: u32,
    loss: f64,
) -> (Vec<Bytes>, Vec<Bytes>) {
    let mut now = Instant::now();
    let mut link = Bernoulli::new(loss, 3);
    let (mut wire, mut delivered, mut back, mut ignored) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut sent = Vec::new();
    for i in 0..count {
        let packet = adu(i, 100 + (i % 7) as usize * 20);
        sent.push(packet.clone());
        sender.send(now, packet, &mut wire);
        now += Duration::from_millis(2);
        sender.handle_timeout(now, &mut wire);
        for d in wire.drain(..) {
            if !link.lost() {
                receiver.receive(now, d, &mut delivered, &mut back);
            }
        }
        receiver.handle_timeout(now, &mut back);
        for d in back.drain(..) {
            sender.receive(now, d, &mut ignored, &mut Vec::new());
        }
    }
    (sent, delivered)
}

#[test]
fn every_native_policy_repairs_losses_and_hears_about_it() {
    let policies: [Box<dyn Policy>; 3] = [
        Box::new(FixedRate::default()),
        Box::new(BlockCode::default()),
        Box::new(Adaptive::default()),
    ];
    for policy in policies {
        let name = format!("{policy:?}");
        let config = LayerConfig::default();
        let mut sender = Layer::new(config.clone(), Some(policy), Instant::now());
        let mut receiver = Layer::receive_only(config);
        let (sent, delivered) = drive(&mut sender, &mut receiver, 400, 0.03);
        let rx = receiver.stats();
        assert!(rx.recovered > 0, "{name}: {rx:?}");
        assert!(rx.recovered <= rx.losses_seen, "{name}: {rx:?}");
        for p in &delivered {
            assert!(sent.contains(p), "{name}: only sent ADUs come up");
        }
        let tx = sender.stats();
        assert_eq!(tx.source_packets, 400, "{name}");
        assert!(tx.peer_recovered > 0, "{name}: {tx:?}");
        assert_eq!(sender.take_peer_recovered(), tx.peer_recovered);
        assert_eq!(sender.take_peer_recovered(), 0);
        assert_eq!(rx.source_packets, 0, "receive-only sends plainly");
    }
}

#[test]
fn adaptive_follows_the_reported_loss() {
    let config = LayerConfig::default();
    let mut clean = Layer::new(
        config.clone(),
        Some(Box::new(Adaptive::default())),
        Instant::now(),
    );
    let mut lossy = Layer::new(
        config.clone(),
        Some(Box::new(Adaptive::default())),
        Instant::now(),
    );
    drive(
        &mut clean,
        &mut Layer::receive_only(config.clone()),
        2000,
        0.0,
    );
    drive(&mut lossy, &mut Layer::receive_only(config), 2000, 0.10);
    let (c, l) = (clean.stats(), lossy.stats());
    // Sparse traffic (2 ms apart) is flushed at every idle tick either way;
    // what differs is the group size once bursts are reported.
    assert!(c.repair_packets <= l.repair_packets, "{c:?} {l:?}");
}

#[test]
fn plain_adus_pass_with_a_prefix_only_when_their_first_byte_needs_it() {
    let mut layer = Layer::receive_only(LayerConfig::default());
    let (mut delivered, mut out) = (Vec::new(), Vec::new());
    let now = Instant::now();
    // Unprotected sending: a layer without a policy.
    let mut tx = Layer::receive_only(LayerConfig::default());
    tx.send(now, Bytes::from_static(&[0x40, 1, 2]), &mut out);
    tx.send(now, Bytes::from_static(&[0x01, 9]), &mut out);
    tx.send(now, Bytes::new(), &mut out);
    assert_eq!(
        out,
        vec![
            Bytes::from_static(&[0x40, 1, 2]),
            Bytes::from_static(&[PLAIN_PREFIX, 0x01, 9]),
            Bytes::from_static(&[PLAIN_PREFIX]),
        ]
    );
    for d in out.drain(..) {
        layer.receive(now, d, &mut delivered, &mut Vec::new());
    }
    assert_eq!(
        delivered,
        vec![
            Bytes::from_static(&[0x40, 1, 2]),
            Bytes::from_static(&[0x01, 9]),
            Bytes::new()
        ]
    );
    assert_eq!(tx.stats().plain_packets, 3);
    layer.receive(now, Bytes::new(), &mut delivered, &mut out);
    layer.receive(
        now,
        Bytes::from_static(&[0x01, 2]),
        &mut delivered,
        &mut out,
    );
    assert_eq!(layer.stats().rejected, 2);
    assert_eq!(layer.poll_timeout(), None);
}

#[test]
fn garbage_never_panics_and_never_grows_without_bound() {
    let mut layer = Layer::new(
        LayerConfig::default(),
        Some(Box::new(FixedRate::default())),
        Instant::now(),
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let now = Instant::now();
    let (mut delivered, mut out) = (Vec::new(), Vec::new());
    for len in 0..400usize {
        let mut d: Vec<u8> = (0..len).map(|_| rng.gen::<u8>()).collect();
        if let Some(b) = d.first_mut() {
            *b = (*b & !PLAIN_BIT) | if len % 3 == 0 { 0x80 } else { 0 };
        }
        layer.receive(now, Bytes::from(d), &mut delivered, &mut out);
    }
    assert!(layer.stats().rejected > 0);
    assert!(out.len() <= 1, "at most one report pending");
}

#[test]
fn a_genuine_source_is_delivered_even_when_a_forged_one_took_its_place() {
    let config = LayerConfig::default();
    let now = Instant::now();
    let mut sender = Layer::new(config.clone(), Some(Box::new(FixedRate::default())), now);
    let mut receiver = Layer::receive_only(config);
    let mut wire = Vec::new();
    let genuine = adu(7, 200);
    sender.send(now, genuine.clone(), &mut wire);
    // A forger sends a packet with the same header and other bytes first.
    let mut forged = wire[0].to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 0xff;
    let (mut delivered, mut out) = (Vec::new(), Vec::new());
    receiver.receive(now, Bytes::from(forged), &mut delivered, &mut out);
    receiver.receive(now, wire[0].clone(), &mut delivered, &mut out);
    assert!(delivered.contains(&genuine), "{delivered:?}");
}

#[test]
fn a_policy_failure_falls_back_to_plain_sending() {
    #[derive(Debug)]
    struct Failing(u32);
    impl Policy for Failing {
        fn configure(&mut self, _: Instant, _: &Limits, _: &View) -> Plan {
            Plan::default()
        }
        fn on_source(&mut self, _: Instant, _: &Source, _: &View) -> Plan {
            self.0 += 1;
            Plan::protect()
        }
        fn schedule_repair(&mut self, _: Instant, _: &Schedule, _: &View) -> Plan {
            Plan::default()
        }
        fn failure(&self) -> Option<String> {
            (self.0 >= 3).then(|| "fault".to_string())
        }
    }
    let now = Instant::now();
    let mut layer = Layer::new(LayerConfig::default(), Some(Box::new(Failing(0))), now);
    let mut out = Vec::new();
    for i in 0..5 {
        layer.send(now, adu(i, 50), &mut out);
    }
    let stats = layer.stats();
    assert_eq!((stats.source_packets, stats.plain_packets), (2, 3));
    assert_eq!(stats.fallbacks, 1);
    assert_eq!(layer.failure(), Some("fault"));
    assert!(!layer.is_protecting());
}

#[test]
fn codes_are_clamped_in_one_place() {
    let config = LayerConfig::default();
    assert_eq!(
        config.clamp_code(CodeChoice::ReedSolomon {
            data: 400,
            parity: 9
        }),
        CodeChoice::ReedSolomon {
            data: 128,
            parity: 9
        }
    );
    assert_eq!(
        config.clamp_code(CodeChoice::Rlc { window: 0 }),
        CodeChoice::Rlc { window: 1 }
    );
    assert_eq!(
        config.clamp_code(CodeChoice::RaptorQ {
            source_symbols: 9999,
            repair_symbols: 0
        }),
        CodeChoice::RaptorQ {
            source_symbols: 256,
            repair_symbols: 1
        }
    );
}

#[test]
fn datagram_kinds_follow_the_first_byte_rule() {
    assert_eq!(DatagramKind::of(&[0x40]), DatagramKind::Plain);
    assert_eq!(DatagramKind::of(&[0xc3]), DatagramKind::Plain);
    assert_eq!(
        DatagramKind::of(&[PLAIN_PREFIX]),
        DatagramKind::PrefixedPlain
    );
    assert_eq!(DatagramKind::of(&[FEEDBACK_TYPE]), DatagramKind::Feedback);
    assert_eq!(DatagramKind::of(&[wire::FIRST_BYTE]), DatagramKind::Fec);
    assert_eq!(DatagramKind::of(&[]), DatagramKind::Unknown);
    assert_eq!(DatagramKind::of(&[0x01]), DatagramKind::Unknown);
    // Every datagram kind the layer makes keeps the plain bit clear.
    for b in [PLAIN_PREFIX, FEEDBACK_TYPE, wire::FIRST_BYTE] {
        assert_eq!(b & PLAIN_BIT, 0);
        assert!(wire::is_fec_packet(b));
    }
}
