//! The FEC layer's receive path (`fec_core::layer::Layer` with the QUIC
//! host's configuration): what a peer's datagrams can do to the layer that
//! sits between the UDP socket and quinn (or any other transport).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use fec_core::layer::feedback::{Feedback, FEEDBACK_TYPE};
use fec_core::layer::{DatagramKind, Layer};
use fec_core::pipeline::{Config, Encoder, Scheme};
use fec_core::rlc::Field;
use pquic_host::fec::{layer_config, SYMBOL_SIZE};

use crate::seed::SplitMix;

#[derive(Arbitrary, Debug)]
struct Input {
    code: Code,
    seed: u64,
    events: Vec<Event>,
}

#[derive(Arbitrary, Debug)]
enum Code {
    ReedSolomon {
        data: u8,
        parity: u8,
    },
    Rlc {
        window: u8,
    },
    RaptorQ {
        source_symbols: u8,
        repair_symbols: u8,
    },
}

#[derive(Arbitrary, Debug)]
enum Event {
    /// The peer protects a QUIC packet of this length and it arrives (or not).
    Source {
        len: u16,
        lost: bool,
        duplicate: bool,
    },
    /// The peer sends repair packets; each arrives unless its bit is set.
    Repair {
        count: u8,
        lost_mask: u8,
    },
    SetWindow(u8),
    /// A delivered packet with flipped bits.
    Corrupt {
        len: u16,
        byte: u16,
        xor: u8,
    },
    /// Arbitrary datagram bytes.
    Datagram(Vec<u8>),
    /// A feedback-sized datagram.
    Feedback([u8; Feedback::LEN]),
    /// Time passes and the layer's timer runs.
    Tick(u16),
}

/// A real sender's datagrams (any code), lost, duplicated, corrupted and
/// mixed with arbitrary ones, into a receiving layer. Properties: no panic;
/// a QUIC datagram goes to quinn unchanged; what the layer hands to quinn
/// otherwise is a QUIC packet the peer sent (unless a datagram was
/// corrupted or forged); what it sends back parses as feedback.
pub fn receive(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let scheme = match input.code {
        Code::ReedSolomon { data, parity } => Scheme::ReedSolomon {
            data: 1 + usize::from(data) % 32,
            parity: 1 + usize::from(parity) % 16,
        },
        Code::Rlc { window } => Scheme::Rlc {
            field: Field::Gf256,
            window: 1 + usize::from(window) % 64,
            dt: 15,
        },
        Code::RaptorQ {
            source_symbols,
            repair_symbols,
        } => Scheme::RaptorQ {
            source_symbols: 1 + usize::from(source_symbols) % 32,
            repair_symbols: 1 + usize::from(repair_symbols) % 16,
        },
    };
    let mut config = Config::new(scheme);
    config.set_symbol_size(SYMBOL_SIZE);
    let Ok(mut sender) = Encoder::new(&config) else {
        return;
    };
    let mut receiver = Layer::receive_only(layer_config());
    let start = Instant::now();
    let mut now = start;
    let mut random = SplitMix::new(input.seed);
    let mut sent: HashSet<Vec<u8>> = HashSet::new();
    let mut forged = false;

    for event in input.events.iter().take(400) {
        match event {
            Event::Source {
                len,
                lost,
                duplicate,
            } => {
                let mut packet = random.bytes(1 + usize::from(*len) % 1200);
                packet[0] |= 0x40;
                let Some(datagram) = protect(&mut sender, &packet) else {
                    continue;
                };
                sent.insert(packet);
                if !lost {
                    deliver(&sent, &mut receiver, datagram.clone(), now, forged);
                    if *duplicate {
                        deliver(&sent, &mut receiver, datagram, now, forged);
                    }
                }
            }
            Event::Repair { count, lost_mask } => {
                let repairs = sender.repair(usize::from(count % 8)).unwrap_or_default();
                for (i, repair) in repairs.into_iter().enumerate() {
                    if lost_mask & (1 << (i % 8)) == 0 {
                        deliver(&sent, &mut receiver, repair, now, forged);
                    }
                }
            }
            Event::SetWindow(size) => {
                let _ = sender.set_window(usize::from(*size));
            }
            Event::Corrupt { len, byte, xor } => {
                let mut packet = random.bytes(1 + usize::from(*len) % 1200);
                packet[0] |= 0x40;
                let Some(datagram) = protect(&mut sender, &packet) else {
                    continue;
                };
                sent.insert(packet);
                let mut bytes = datagram.to_vec();
                let at = usize::from(*byte) % bytes.len();
                bytes[at] ^= xor;
                forged |= *xor != 0;
                deliver(&sent, &mut receiver, Bytes::from(bytes), now, forged);
            }
            Event::Datagram(bytes) => {
                forged = true;
                deliver(
                    &sent,
                    &mut receiver,
                    Bytes::from(bytes.clone()),
                    now,
                    forged,
                );
            }
            Event::Feedback(bytes) => {
                let mut bytes = *bytes;
                bytes[0] = FEEDBACK_TYPE;
                deliver(
                    &sent,
                    &mut receiver,
                    Bytes::copy_from_slice(&bytes),
                    now,
                    forged,
                );
            }
            Event::Tick(ms) => {
                now += Duration::from_millis(u64::from(*ms));
                let mut out = Vec::new();
                if receiver.poll_timeout().is_some_and(|t| t <= now) {
                    receiver.handle_timeout(now, &mut out);
                }
                for feedback in &out {
                    assert!(Feedback::parse(feedback).is_some());
                }
            }
        }
    }
    assert!(now >= start);
}

/// The source packet of `packet`; a full block is closed first (as the
/// layer's sender does), other refusals leave the packet unsent.
fn protect(sender: &mut Encoder, packet: &[u8]) -> Option<Bytes> {
    let adu = Bytes::copy_from_slice(packet);
    match sender.protect(0, adu.clone()) {
        Ok(source) => Some(source.to_bytes()),
        Err(fec_core::Error::PipelineBlockFull { .. }) => {
            sender.repair(0).ok()?;
            sender.protect(0, adu).ok().map(|s| s.to_bytes())
        }
        Err(_) => None,
    }
}

fn deliver(
    sent: &HashSet<Vec<u8>>,
    receiver: &mut Layer,
    datagram: Bytes,
    now: Instant,
    forged: bool,
) {
    let (mut to_quinn, mut out) = (Vec::new(), Vec::new());
    let quic = DatagramKind::of(&datagram) == DatagramKind::Plain;
    receiver.receive(now, datagram.clone(), &mut to_quinn, &mut out);
    if quic {
        assert_eq!(to_quinn, [datagram], "a QUIC datagram must pass unchanged");
    } else if !forged {
        for packet in &to_quinn {
            assert!(
                sent.contains(&packet[..]),
                "the layer handed quinn {} bytes the peer never sent",
                packet.len()
            );
        }
    }
    for feedback in &out {
        assert!(
            Feedback::parse(feedback).is_some(),
            "non-feedback datagram sent back"
        );
    }
}
