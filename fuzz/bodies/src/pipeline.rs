//! The shared repair-symbol pipeline: wire headers, symbol framing, and the
//! decoder under a hostile channel.

use std::collections::{HashSet, VecDeque};

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use fec_core::pipeline::wire::{self, Header, ADU_INFO_LEN, MAX_HEADER_LEN};
use fec_core::pipeline::{Config, Decoder, Encoder, Scheme};
use fec_core::rlc::Field;

use crate::seed::SplitMix;

/// Headers parse only what they write back byte for byte; symbol framing
/// round-trips and refuses what does not fit.
pub fn wire_header(data: &[u8]) {
    match Header::parse(data) {
        Ok((header, len)) => {
            assert!(len <= MAX_HEADER_LEN && len <= data.len());
            assert_eq!(len, header.len());
            assert_eq!(
                &header.encode()[..],
                &data[..len],
                "header does not round-trip"
            );
            assert!(wire::is_fec_packet(data[0]));
        }
        Err(_) => {
            if let Some(&first) = data.first() {
                // Anything with QUIC's fixed bit must be refused.
                let _ = wire::is_fec_packet(first);
            }
        }
    }

    // Symbol framing: what parse_symbol accepts, frame_symbol rebuilds.
    if let Ok((flow, range)) = wire::parse_symbol(data) {
        assert_eq!(range.start, ADU_INFO_LEN);
        let mut rebuilt = vec![0; data.len()];
        let framed = wire::frame_symbol(&mut rebuilt, flow, &data[range.clone()])
            .expect("a parsed symbol re-frames");
        assert_eq!(framed, range.end);
        assert_eq!(rebuilt, data, "symbol does not round-trip");
    }
    if let [flow, size, adu @ ..] = data {
        let mut symbol = vec![0; usize::from(*size)];
        match wire::frame_symbol(&mut symbol, *flow, adu) {
            Ok(framed) => {
                assert_eq!(framed, ADU_INFO_LEN + adu.len());
                let (parsed_flow, range) = wire::parse_symbol(&symbol).expect("framed parses");
                assert_eq!((parsed_flow, &symbol[range]), (*flow, adu));
            }
            Err(_) => assert!(ADU_INFO_LEN + adu.len() > symbol.len()),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct DecoderInput {
    scheme: SchemeChoice,
    symbol_size: u8,
    max_blocks: u8,
    max_recovered: u8,
    seed: u64,
    sends: Vec<SendOp>,
    channel: Vec<Action>,
}

#[derive(Arbitrary, Debug)]
enum SchemeChoice {
    ReedSolomon {
        data: u8,
        parity: u8,
    },
    Rlc {
        gf2: bool,
        window: u8,
        dt: u8,
    },
    RaptorQ {
        source_symbols: u8,
        repair_symbols: u8,
    },
}

#[derive(Arbitrary, Debug)]
enum SendOp {
    /// An ADU of this length (modulo what fits) on this flow.
    Protect {
        flow: u8,
        len: u16,
    },
    Repair(u8),
    SetWindow(u8),
    Flush,
}

#[derive(Arbitrary, Debug)]
enum Action {
    Deliver,
    Drop,
    Duplicate,
    Delay(u8),
    Corrupt {
        byte: u16,
        xor: u8,
    },
    Truncate(u16),
    /// An extra packet with a valid header of the scheme and random payload.
    Garbage {
        header: [u8; 10],
        len: u16,
        fill: u64,
    },
    /// An extra packet of arbitrary bytes (usually refused).
    Noise {
        len: u8,
        fill: u64,
    },
}

fn scheme(choice: &SchemeChoice) -> Scheme {
    match *choice {
        SchemeChoice::ReedSolomon { data, parity } => Scheme::ReedSolomon {
            data: 1 + usize::from(data) % 24,
            parity: 1 + usize::from(parity) % 12,
        },
        SchemeChoice::Rlc { gf2, window, dt } => Scheme::Rlc {
            field: if gf2 { Field::Gf2 } else { Field::Gf256 },
            window: 1 + usize::from(window) % 40,
            dt: dt % 16,
        },
        SchemeChoice::RaptorQ {
            source_symbols,
            repair_symbols,
        } => Scheme::RaptorQ {
            source_symbols: 1 + usize::from(source_symbols) % 24,
            repair_symbols: 1 + usize::from(repair_symbols) % 12,
        },
    }
}

/// Real ADUs through an encoder of any scheme, then loss, duplication,
/// delay, truncation, corruption, forged and random packets into a decoder.
/// Properties: no panic; the decoder's counters agree with what `receive`
/// returned; unless a packet was corrupted or
/// forged, every ADU the decoder hands out (directly or recovered) is one
/// that was sent, on its flow.
pub fn decoder(data: &[u8]) {
    let Ok(input) = DecoderInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let mut config = Config::new(scheme(&input.scheme));
    config
        .set_symbol_size(ADU_INFO_LEN + 1 + usize::from(input.symbol_size) % 96)
        .set_max_blocks(1 + usize::from(input.max_blocks) % 8)
        .set_max_recovered(1 + usize::from(input.max_recovered) % 64);
    let mut encoder = Encoder::new(&config).expect("valid config");
    let mut decoder = Decoder::new(&config).expect("valid config");
    let header_scheme = config.scheme().id() as u8;

    let mut random = SplitMix::new(input.seed);
    let mut sent: HashSet<(u8, Vec<u8>)> = HashSet::new();
    let mut packets: Vec<Bytes> = Vec::new();
    for op in input.sends.iter().take(300) {
        match *op {
            SendOp::Protect { flow, len } => {
                let len = usize::from(len) % (config.max_adu_len() + 1);
                let adu = Bytes::from(random.bytes(len));
                match encoder.protect(flow, adu.clone()) {
                    Ok(packet) => {
                        sent.insert((flow, adu.to_vec()));
                        packets.push(packet.to_bytes());
                    }
                    Err(_) => {
                        // A full block: close it and go on.
                        if let Ok(repairs) = encoder.repair(0) {
                            packets.extend(repairs);
                        }
                    }
                }
            }
            SendOp::Repair(count) => {
                if let Ok(repairs) = encoder.repair(usize::from(count % 8)) {
                    packets.extend(repairs);
                }
            }
            SendOp::SetWindow(size) => {
                let _ = encoder.set_window(usize::from(size));
            }
            SendOp::Flush => {
                if let Ok(repairs) = encoder.flush() {
                    packets.extend(repairs);
                }
            }
        }
    }

    let mut corrupted = false;
    let mut delayed: VecDeque<(usize, Bytes)> = VecDeque::new();
    let mut channel = input.channel.iter();
    let (mut accepted, mut refused) = (0u64, 0u64);
    let check = |adu: &fec_core::pipeline::Adu, corrupted: bool| {
        if !corrupted {
            assert!(
                sent.contains(&(adu.flow, adu.data.to_vec())),
                "decoder handed out an ADU that was not sent (flow {}, {} bytes)",
                adu.flow,
                adu.data.len()
            );
        }
    };
    // Hand one packet to the decoder, then drain what it recovered.
    let mut feed = |packet: Bytes, corrupted: bool| {
        match decoder.receive(packet) {
            Ok(adu) => {
                accepted += 1;
                if let Some(adu) = adu {
                    check(&adu, corrupted);
                }
            }
            Err(_) => refused += 1,
        }
        while let Some(adu) = decoder.poll_recovered() {
            check(&adu, corrupted);
        }
    };
    for (index, packet) in packets.iter().enumerate() {
        let mut deliver = Vec::new();
        match channel.next().unwrap_or(&Action::Deliver) {
            Action::Deliver => deliver.push(packet.clone()),
            Action::Drop => {}
            Action::Duplicate => {
                deliver.push(packet.clone());
                deliver.push(packet.clone());
            }
            Action::Delay(by) => delayed.push_back((index + usize::from(*by), packet.clone())),
            Action::Corrupt { byte, xor } => {
                let mut bytes = packet.to_vec();
                let at = usize::from(*byte) % bytes.len();
                bytes[at] ^= xor;
                corrupted |= *xor != 0;
                deliver.push(Bytes::from(bytes));
            }
            Action::Truncate(len) => {
                let len = usize::from(*len) % (packet.len() + 1);
                // A shorter source packet is a different, valid ADU.
                corrupted |= len < packet.len();
                deliver.push(packet.slice(..len));
            }
            Action::Garbage { header, len, fill } => {
                deliver.push(packet.clone());
                let mut bytes = header.to_vec();
                bytes[0] = wire::FIRST_BYTE;
                bytes[1] = (header_scheme << 4) | (bytes[1] & 1);
                bytes.extend(SplitMix::new(*fill).bytes(usize::from(*len) % 200));
                deliver.push(Bytes::from(bytes));
                corrupted = true;
            }
            Action::Noise { len, fill } => {
                deliver.push(packet.clone());
                deliver.push(Bytes::from(SplitMix::new(*fill).bytes(usize::from(*len))));
                corrupted = true;
            }
        }
        while delayed.front().is_some_and(|(due, _)| *due <= index) {
            if let Some((_, late)) = delayed.pop_front() {
                deliver.push(late);
            }
        }
        for packet in deliver {
            feed(packet, corrupted);
        }
    }
    for (_, late) in delayed {
        feed(late, corrupted);
    }
    // A source whose block then fails to decode counts as received (its ADU
    // is good) and rejected (garbage took part), so only bounds hold.
    let counters = decoder.counters();
    assert_eq!(counters.received, accepted, "{counters:?}");
    assert!(counters.rejected >= refused, "{counters:?}");
    assert!(counters.rejected <= refused + accepted, "{counters:?}");
}
