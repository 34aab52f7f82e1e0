//! The spoofing probes of the authenticated-datagrams issue, sans-IO: a
//! sender and a receiver layer over a lossy link, and an injector who can
//! spoof the sender's address and sniff the wire but not drop or alter what
//! is sent. With keys (authenticated datagrams) nothing it sends may cost a
//! delivered packet, more than 10% of the recoveries, or move the repair
//! share by 10%; without keys the same probes do damage, which shows the
//! probes bite.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fec_core::layer::auth::Keys;
use fec_core::layer::feedback::Feedback;
use fec_core::layer::policy::Adaptive;
use fec_core::layer::{DatagramKind, Layer, LayerConfig};
use fec_core::pipeline::loss::{Bernoulli, LossModel};
use fec_core::pipeline::wire::Header;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const PACKETS: u64 = 20_000;
const LOSS: f64 = 0.05;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attack {
    None,
    /// Before each of the first 95 sources, a forged source claiming its ESI.
    SniffedSources,
    /// Forged sources for ESIs 0..2048 up front, no sniffing.
    BlindSources,
    /// Reports claiming every source lost and 2^32-1 recovered, 20 per second
    /// (sources go out every 0.5 ms).
    ForgedFeedback,
    /// Copies of real datagrams: bit flips, truncations, replays, duplicates.
    HostileCopies,
}

#[derive(Debug)]
struct Outcome {
    /// Every source that arrived or was rebuilt reached the application, and
    /// nothing else did.
    intact: bool,
    arrived_but_lost: u64,
    recovered: u64,
    repair_share: f64,
    rejected_by_tag: u64,
}

fn adu(seq: u64) -> Bytes {
    let mut adu = vec![(seq % 251) as u8; 200 + (seq % 7) as usize * 100];
    adu[0] = 0x40; // a QUIC-like first byte: unprotected ADUs pass as they are
    adu[1..9].copy_from_slice(&seq.to_be_bytes());
    Bytes::from(adu)
}

fn seq_of(adu: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(adu.get(1..9)?.try_into().ok()?))
}

fn keys() -> (Keys, Keys) {
    Keys::pair([1; 32], [2; 32])
}

/// A datagram that looks like FEC: a real header, random payload and
/// trailer-sized junk (a spoofer cannot compute tags).
fn forged_source(esi: u32, rng: &mut StdRng) -> Bytes {
    let mut d = Header::RlcSource {
        gf256: true,
        flow: 0,
        esi,
    }
    .encode()
    .to_vec();
    d.extend((0..400).map(|_| rng.gen::<u8>()));
    Bytes::from(d)
}

fn run(keyed: bool, attack: Attack) -> Outcome {
    let config = LayerConfig::default();
    let start = Instant::now();
    let mut sender = Layer::new(config.clone(), Some(Box::new(Adaptive::default())), start);
    let mut receiver = Layer::receive_only(config);
    if keyed {
        let (tx, rx) = keys();
        sender.set_keys(&tx);
        receiver.set_keys(&rx);
    }
    let mut link = Bernoulli::new(LOSS, 17);
    let mut rng = StdRng::seed_from_u64(99);
    let (mut wire, mut up, mut back, mut ignored) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut arrived = BTreeSet::new();
    let mut delivered = BTreeSet::new();
    let mut forged_delivery = false;
    let mut recent: Vec<Bytes> = Vec::new();
    // Copies whose bit flip set the plain bit pass as plain ADUs: the
    // transport (QUIC) authenticates those, not the layer.
    let mut injected_plain = BTreeSet::new();
    let mut now = start;
    if attack == Attack::BlindSources {
        for esi in 0..2048 {
            receiver.receive(now, forged_source(esi, &mut rng), &mut up, &mut back);
        }
    }
    for seq in 0..PACKETS {
        now = start + Duration::from_micros(500 * seq);
        sender.handle_timeout(now, &mut wire);
        sender.send(now, adu(seq), &mut wire);
        if attack == Attack::ForgedFeedback && seq % 100 == 50 {
            let report = Feedback {
                sources: 50,
                lost: 50,
                recovered: u32::MAX,
                max_burst: 50,
                bursts: 1,
            };
            sender.receive(now, Bytes::from(report.to_vec()), &mut ignored, &mut back);
        }
        for datagram in wire.drain(..) {
            let source = Header::parse(&datagram).ok().and_then(|(h, _)| match h {
                Header::RlcSource { esi, .. } => Some(esi),
                _ => None,
            });
            if let (Attack::SniffedSources, Some(esi)) = (attack, source) {
                if esi < 95 {
                    receiver.receive(now, forged_source(esi, &mut rng), &mut up, &mut back);
                }
            }
            if link.lost() {
                continue;
            }
            if source.is_some() {
                arrived.insert(seq);
            }
            receiver.receive(now, datagram.clone(), &mut up, &mut back);
            if attack == Attack::HostileCopies {
                recent.push(datagram.clone());
                if recent.len() > 64 {
                    recent.remove(0);
                }
                if rng.gen_bool(0.2) {
                    let mut copy = recent[rng.gen_range(0..recent.len())].to_vec();
                    match rng.gen_range(0..4) {
                        0 => {
                            let at = rng.gen_range(0..copy.len());
                            copy[at] ^= 1 << rng.gen_range(0..8);
                        }
                        1 => copy.truncate(rng.gen_range(1..copy.len())),
                        _ => {} // a replay or a duplicate of a recent datagram
                    }
                    if DatagramKind::of(&copy) == DatagramKind::Plain {
                        injected_plain.insert(copy.clone());
                    }
                    receiver.receive(now, Bytes::from(copy), &mut up, &mut back);
                }
            }
        }
        for adu in up.drain(..) {
            match seq_of(&adu).filter(|s| adu == self::adu(*s)) {
                Some(s) => {
                    delivered.insert(s);
                }
                None => forged_delivery |= !injected_plain.contains(&adu[..]),
            }
        }
        receiver.handle_timeout(now, &mut back);
        for datagram in back.drain(..) {
            sender.receive(now, datagram, &mut ignored, &mut Vec::new());
        }
    }
    let rx = receiver.stats();
    let tx = sender.stats();
    Outcome {
        intact: !forged_delivery || !keyed,
        arrived_but_lost: arrived.difference(&delivered).count() as u64,
        recovered: rx.recovered,
        repair_share: tx.repair_packets as f64 / (tx.repair_packets + tx.source_packets) as f64,
        rejected_by_tag: rx.unauthenticated + tx.unauthenticated,
    }
}

#[test]
fn authenticated_layers_shrug_off_every_probe() {
    let clean = run(true, Attack::None);
    assert!(clean.recovered > 500, "{clean:?}");
    assert_eq!(clean.arrived_but_lost, 0, "{clean:?}");
    for attack in [
        Attack::SniffedSources,
        Attack::BlindSources,
        Attack::ForgedFeedback,
        Attack::HostileCopies,
    ] {
        let keyed = run(true, attack);
        let open = run(false, attack);
        eprintln!("{attack:?}: keyed {keyed:?}\n    unkeyed {open:?}\n    clean {clean:?}");
        assert!(
            keyed.intact,
            "{attack:?}: a forged packet reached the application"
        );
        assert_eq!(keyed.arrived_but_lost, 0, "{attack:?}: {keyed:?}");
        assert!(
            keyed.recovered * 10 >= clean.recovered * 9,
            "{attack:?}: recoveries {keyed:?} against clean {clean:?}"
        );
        assert!(
            (keyed.repair_share - clean.repair_share).abs() < 0.1 * clean.repair_share,
            "{attack:?}: repair share {keyed:?} against clean {clean:?}"
        );
        assert!(
            keyed.rejected_by_tag > 0,
            "{attack:?}: the probe sent nothing?"
        );
        // Genuine sources are delivered even without keys (a refused header
        // costs FEC's help, never the packet).
        assert_eq!(open.arrived_but_lost, 0, "{attack:?} unkeyed: {open:?}");
    }
    // Without keys the probes do harm: they are real probes.
    let open_feedback = run(false, Attack::ForgedFeedback);
    assert!(
        open_feedback.repair_share > clean.repair_share * 1.1,
        "{open_feedback:?}"
    );
    let open_copies = run(false, Attack::HostileCopies);
    assert!(
        open_copies.recovered * 10 < clean.recovered * 9,
        "{open_copies:?}"
    );
}
