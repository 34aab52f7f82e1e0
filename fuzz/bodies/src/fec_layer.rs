//! pquic-host's FEC layer, receive path: what a peer's datagrams can do to
//! the layer that sits between the UDP socket and quinn.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use pquic_host::fec::{CodeChoice, Feedback, PipelineEncoder, ProtectedLayer};
use pquic_host::layer::{is_quic, FecLayer};

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
    Feedback([u8; 15]),
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
    let code = match input.code {
        Code::ReedSolomon { data, parity } => CodeChoice::ReedSolomon {
            data: 1 + usize::from(data) % 32,
            parity: 1 + usize::from(parity) % 16,
        },
        Code::Rlc { window } => CodeChoice::Rlc {
            window: 1 + usize::from(window) % 64,
        },
        Code::RaptorQ {
            source_symbols,
            repair_symbols,
        } => CodeChoice::RaptorQ {
            source_symbols: 1 + usize::from(source_symbols) % 32,
            repair_symbols: 1 + usize::from(repair_symbols) % 16,
        },
    };
    let Some(mut sender) = PipelineEncoder::new(code) else {
        return;
    };
    let mut receiver = ProtectedLayer::receive_only();
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
                let Some(datagram) = sender.protect(&packet) else {
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
                let mut repairs = Vec::new();
                sender.repair(usize::from(count % 8), &mut repairs);
                for (i, repair) in repairs.into_iter().enumerate() {
                    if lost_mask & (1 << (i % 8)) == 0 {
                        deliver(&sent, &mut receiver, repair, now, forged);
                    }
                }
            }
            Event::SetWindow(size) => sender.set_window(usize::from(*size)),
            Event::Corrupt { len, byte, xor } => {
                let mut packet = random.bytes(1 + usize::from(*len) % 1200);
                packet[0] |= 0x40;
                let Some(datagram) = sender.protect(&packet) else {
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
                bytes[0] = pquic_host::fec::FEEDBACK_TYPE;
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

fn deliver(
    sent: &HashSet<Vec<u8>>,
    receiver: &mut ProtectedLayer,
    datagram: Bytes,
    now: Instant,
    forged: bool,
) {
    let (mut to_quinn, mut out) = (Vec::new(), Vec::new());
    let quic = is_quic(&datagram);
    receiver.on_incoming(now, datagram.clone(), &mut to_quinn, &mut out);
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
