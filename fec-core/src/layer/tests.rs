use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{Rng, SeedableRng};

use super::policy::{Adaptive, BlockCode, FixedRate, PlainBelow, Policy};
use super::*;
use crate::pipeline::loss::{Bernoulli, GilbertElliott, LossModel};

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

/// ADU `n` of a mixed stream: mostly ACK-sized, runs of full-size ones.
fn mixed_adu(n: u32) -> Bytes {
    let len = match n % 40 {
        0..=9 => 1200 + (n % 13) as usize,
        k => 30 + (k as usize * 7) % 40,
    };
    let mut p = adu(n, len).to_vec();
    p[0] = 0x40 | (p[0] & 0x3f);
    Bytes::from(p)
}

/// Sends `count` mixed ADUs under `policy`, sized repairs or not; what goes
/// on the wire, in order.
fn wire_of(policy: Box<dyn Policy>, sized: bool, count: u32) -> Vec<Bytes> {
    let mut config = LayerConfig::default();
    config.set_sized_repairs(sized);
    let mut now = Instant::now();
    let mut sender = Layer::new(config, Some(policy), now);
    let mut wire = Vec::new();
    for n in 0..count {
        sender.send(now, mixed_adu(n), &mut wire);
        now += Duration::from_millis(1);
        if n % 5 == 4 {
            sender.handle_timeout(now + Duration::from_millis(5), &mut wire);
        }
    }
    wire
}

/// Loses datagrams of `wire` by `loss` and swaps neighbours now and then.
fn channel(wire: &[Bytes], loss: &mut dyn LossModel, seed: u64) -> Vec<Bytes> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out: Vec<Bytes> = wire.iter().filter(|_| !loss.lost()).cloned().collect();
    for i in 1..out.len() {
        if rng.gen_bool(0.1) {
            out.swap(i - 1, i);
        }
    }
    out
}

fn deliver(receiver: &mut Layer, datagrams: &[Bytes]) -> Vec<Bytes> {
    let now = Instant::now();
    let (mut delivered, mut back) = (Vec::new(), Vec::new());
    for d in datagrams {
        receiver.receive(now, d.clone(), &mut delivered, &mut back);
    }
    delivered
}

/// Neither dropping repairs over held sources unread nor shortening repair
/// symbols changes what a receiver delivers, or when: on seeded random and
/// bursty loss with reordering, for every native policy, a receiver with
/// the shortcut delivers exactly what one without it delivers, and sized
/// repairs rebuild exactly what full-size ones rebuild.
#[test]
fn skipping_unneeded_repairs_and_sizing_them_change_no_delivery() {
    let policies: [fn() -> Box<dyn Policy>; 4] = [
        || Box::new(FixedRate::default()),
        || {
            Box::new(FixedRate {
                window: 8,
                every: 2,
                repairs: 2,
            })
        },
        || Box::new(Adaptive::default()),
        || Box::new(BlockCode { data: 6, parity: 3 }),
    ];
    let (mut recovered, mut unneeded) = (0, 0);
    for (p, policy) in policies.iter().enumerate() {
        let sized = wire_of(policy(), true, 600);
        let full = wire_of(policy(), false, 600);
        assert_eq!(sized.len(), full.len(), "policy {p}");
        let longer = sized.iter().zip(&full).filter(|(s, f)| s.len() < f.len());
        if p < 3 {
            assert!(
                longer.count() > 20,
                "policy {p}: RLC repairs were not shortened"
            );
        } else {
            assert_eq!(longer.count(), 0, "block codes sized their repairs already");
        }
        for seed in 0..12u64 {
            let mut lossy: Box<dyn LossModel> = if seed % 2 == 0 {
                Box::new(Bernoulli::new(0.02 + 0.02 * seed as f64, seed))
            } else {
                Box::new(GilbertElliott::with_mean_burst(0.08, 3.0, seed))
            };
            // The same losses for both streams: they have as many datagrams.
            let mut again: Box<dyn LossModel> = if seed % 2 == 0 {
                Box::new(Bernoulli::new(0.02 + 0.02 * seed as f64, seed))
            } else {
                Box::new(GilbertElliott::with_mean_burst(0.08, 3.0, seed))
            };
            let sized = channel(&sized, lossy.as_mut(), seed);
            let full = channel(&full, again.as_mut(), seed);
            let mut fast = Layer::receive_only(LayerConfig::default());
            let mut slow = Layer::receive_only(LayerConfig::default());
            slow.receiver.set_skip_known_windows(false);
            let mut padded = Layer::receive_only(LayerConfig::default());
            let a = deliver(&mut fast, &sized);
            let b = deliver(&mut slow, &sized);
            let c = deliver(&mut padded, &full);
            assert_eq!(
                a, b,
                "policy {p} seed {seed}: the shortcut changed deliveries"
            );
            assert_eq!(
                a, c,
                "policy {p} seed {seed}: sized repairs changed deliveries"
            );
            let (fa, sa, pa) = (fast.stats(), slow.stats(), padded.stats());
            for (x, y) in [(fa, sa), (fa, pa)] {
                assert_eq!(
                    (x.recovered, x.losses_seen, x.unrecoverable, x.rejected),
                    (y.recovered, y.losses_seen, y.unrecoverable, y.rejected),
                    "policy {p} seed {seed}"
                );
            }
            recovered += fa.recovered;
            unneeded += fa.repairs_unneeded;
        }
    }
    // The comparison means something only if there was work to skip and
    // losses to rebuild.
    assert!(recovered > 500, "{recovered} recovered");
    assert!(unneeded > 500, "{unneeded} repairs skipped");
}

#[test]
fn a_lossless_receiver_drops_every_repair_unneeded() {
    let wire = wire_of(Box::new(FixedRate::default()), true, 400);
    let mut receiver = Layer::receive_only(LayerConfig::default());
    let delivered = deliver(&mut receiver, &wire);
    assert_eq!(delivered.len(), 400);
    let stats = receiver.stats();
    assert_eq!(stats.received, wire.len() as u64);
    assert_eq!(stats.repairs_unneeded, wire.len() as u64 - 400);
    assert_eq!(stats.recovered, 0);
}

/// ACK-sized ADUs under a full-size symbol: sized repairs cost a few
/// dozen bytes each, full-size ones the whole symbol.
#[test]
fn repairs_of_short_adus_are_short_unless_configured_otherwise() {
    for sized in [true, false] {
        let mut config = LayerConfig::default();
        config.set_symbol_size(1422).set_sized_repairs(sized);
        let now = Instant::now();
        let mut sender = Layer::new(config, Some(Box::new(FixedRate::default())), now);
        let mut wire = Vec::new();
        for n in 0..64 {
            sender.send(now, adu(n, 40 + (n % 11) as usize), &mut wire);
        }
        let stats = sender.stats();
        assert_eq!(stats.repair_packets, 16);
        let per_repair = stats.repair_bytes / stats.repair_packets;
        let longest = ADU_INFO_LEN as u64 + 50 + wire::MAX_HEADER_LEN as u64;
        if sized {
            assert!(per_repair <= longest, "{per_repair} bytes per repair");
        } else {
            assert_eq!(per_repair, 1422 + 10);
        }
    }
}

#[test]
fn plain_below_leaves_short_adus_unprotected_and_asks_the_inner_policy_about_the_rest() {
    let now = Instant::now();
    let policy = PlainBelow {
        len: 64,
        inner: FixedRate {
            window: 8,
            every: 2,
            repairs: 1,
        },
    };
    let mut sender = Layer::new(LayerConfig::default(), Some(Box::new(policy)), now);
    assert_eq!(sender.code(), Some(CodeChoice::Rlc { window: 8 }));
    let mut wire = Vec::new();
    let mut sent = Vec::new();
    for n in 0..40u32 {
        let len = if n % 2 == 0 {
            40
        } else {
            63 + (n % 3) as usize
        };
        let mut p = adu(n, len).to_vec();
        p[0] = 0x40;
        sent.push(Bytes::from(p));
        sender.send(now, sent[n as usize].clone(), &mut wire);
    }
    let stats = sender.stats();
    // 40- and 63-byte ADUs go plain, 64 and 65 are protected.
    let protected = sent.iter().filter(|a| a.len() >= 64).count() as u64;
    assert_eq!(
        (stats.plain_packets, stats.source_packets),
        (40 - protected, protected)
    );
    assert_eq!(stats.repair_packets, protected / 2);
    for d in &wire {
        if d.len() < 64 {
            assert!(sent.contains(d), "short ADUs go out as they are");
        }
    }
    let mut receiver = Layer::receive_only(LayerConfig::default());
    assert_eq!(deliver(&mut receiver, &wire), sent);
}

#[test]
fn only_source_and_repair_packets_are_recycled() {
    let now = Instant::now();
    let policy = PlainBelow {
        len: 64,
        inner: FixedRate {
            window: 8,
            every: 100,
            repairs: 1,
        },
    };
    let mut sender = Layer::new(LayerConfig::default(), Some(Box::new(policy)), now);
    let protected = |n: u32| {
        let mut p = adu(n, 200).to_vec();
        p[0] = 0x40;
        Bytes::from(p)
    };
    let mut wire = Vec::new();
    // A plain ADU (the caller's buffer, of any size) is not kept.
    let mut big = vec![0x40u8; 60];
    big.reserve(1 << 20);
    let plain = Bytes::from(big);
    sender.send(now, plain.clone(), &mut wire);
    assert_eq!(wire, std::slice::from_ref(&plain));
    let at = plain.as_ptr();
    drop(plain);
    sender.recycle(wire.pop().unwrap());
    sender.send(now, protected(1), &mut wire);
    let source = wire.pop().unwrap();
    assert_eq!(DatagramKind::of(&source), DatagramKind::Fec);
    assert_ne!(source.as_ptr(), at, "a plain ADU's buffer was pooled");
    // A source packet is: the next one is written into its buffer.
    let at = source.as_ptr();
    sender.recycle(source);
    sender.send(now, protected(2), &mut wire);
    assert_eq!(wire.pop().unwrap().as_ptr(), at);
}
