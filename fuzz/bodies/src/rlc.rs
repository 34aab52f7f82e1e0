//! RFC 8681 sliding-window RLC: payload IDs and the decoder under loss,
//! duplication, reordering, corruption and garbage.

use std::collections::{HashMap, VecDeque};

use arbitrary::{Arbitrary, Unstructured};
use fec_core::rlc::{
    coding_coefficients, Decoder, DecoderConfig, Encoder, Field, RepairPayloadId, SourcePayloadId,
    MAX_DENSITY_THRESHOLD, MAX_WINDOW,
};

use crate::seed::SplitMix;

/// Payload IDs parse only what they can write back byte for byte, refuse
/// what they cannot carry, and coefficient generation keeps its shape.
pub fn payload_id(data: &[u8]) {
    if let Ok(id) = SourcePayloadId::parse(data) {
        assert_eq!(&id.to_bytes()[..], data);
    }
    if let Ok((id, rest)) = SourcePayloadId::parse_prefix(data) {
        assert_eq!(&id.to_bytes()[..], &data[..SourcePayloadId::LEN]);
        assert_eq!(rest, &data[SourcePayloadId::LEN..]);
    }
    match RepairPayloadId::parse(data) {
        Ok(id) => {
            assert_eq!(id.to_bytes().expect("a parsed id is valid"), data);
            assert!(id.dt <= MAX_DENSITY_THRESHOLD && id.nss >= 1);
            assert!(usize::from(id.nss) <= MAX_WINDOW);
        }
        Err(_) => {
            // Only a wrong length or NSS = 0 can be refused: 4 bits of DT
            // and 12 bits of NSS are always in range otherwise.
            assert!(data.len() != RepairPayloadId::LEN || data[2] & 0x0f == 0 && data[3] == 0);
        }
    }
    if let Ok((id, rest)) = RepairPayloadId::parse_prefix(data) {
        assert_eq!(
            &id.to_bytes().expect("valid")[..],
            &data[..RepairPayloadId::LEN]
        );
        assert_eq!(rest, &data[RepairPayloadId::LEN..]);
    }

    // Any field values: valid ones round-trip, others are refused, never
    // truncated into a different valid ID.
    let mut u = Unstructured::new(data);
    let Ok((repair_key, dt, nss, first_source_esi)) = <(u16, u8, u16, u32)>::arbitrary(&mut u)
    else {
        return;
    };
    let id = RepairPayloadId {
        repair_key,
        dt,
        nss,
        first_source_esi,
    };
    let valid = dt <= 15 && (1..=MAX_WINDOW as u16).contains(&nss);
    match id.to_bytes() {
        Ok(bytes) => {
            assert!(valid, "out-of-range id written: {id:?}");
            assert_eq!(RepairPayloadId::parse(&bytes).expect("round trip"), id);
        }
        Err(_) => assert!(!valid, "valid id refused: {id:?}"),
    }
    let count = usize::from(nss);
    for field in [Field::Gf2, Field::Gf256] {
        match coding_coefficients(field, repair_key, dt, count) {
            Ok(coefficients) => {
                assert!(valid);
                assert_eq!(coefficients.len(), count);
                if field == Field::Gf2 {
                    assert!(coefficients.iter().all(|&c| c <= 1));
                }
                if dt == MAX_DENSITY_THRESHOLD {
                    assert!(coefficients.iter().all(|&c| c != 0), "DT 15 must be dense");
                }
            }
            Err(_) => assert!(!valid),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct DecoderInput {
    gf2: bool,
    symbol_size: u8,
    encoder_window: u8,
    decoder_window: u8,
    span_extra: u8,
    equations: u8,
    first_esi: u32,
    seed: u64,
    schedule: Vec<Send>,
    channel: Vec<Channel>,
}

/// What the sender emits next.
#[derive(Arbitrary, Debug)]
enum Send {
    Source,
    /// A repair over the whole held window with the next key.
    Repair {
        dt: u8,
    },
    /// A repair over part of the held window with a chosen key.
    SubWindow {
        skip: u8,
        nss: u8,
        key: u16,
        dt: u8,
    },
}

/// What the network does to the next packet.
#[derive(Arbitrary, Debug)]
struct Channel {
    action: Action,
    /// Whether the receiver drains recovered sources after this packet
    /// (otherwise they queue up, which must stay bounded).
    poll: bool,
}

#[derive(Arbitrary, Debug)]
enum Action {
    Deliver,
    Drop,
    Duplicate,
    /// Held back and delivered after this many later packets.
    Delay(u8),
    /// Flips bits of the symbol.
    CorruptSymbol {
        byte: u16,
        xor: u8,
    },
    /// Flips bits of the 8-byte (repair) or 4-byte (source) payload ID.
    CorruptId {
        byte: u8,
        xor: u8,
    },
    /// An extra packet of arbitrary content.
    Garbage {
        repair: bool,
        id: u64,
        fill: u64,
    },
    /// The packet with a symbol of the wrong size.
    WrongSize {
        len: u8,
    },
}

#[derive(Clone, Debug)]
enum Packet {
    Source { id: [u8; 4], symbol: Vec<u8> },
    Repair { id: [u8; 8], symbol: Vec<u8> },
}

/// Generates real source and repair symbols from a seed, passes them
/// through arbitrary loss, duplication, reordering and corruption, and
/// feeds a decoder with arbitrary limits. Properties:
/// - no input panics, and pending equations never exceed `max_equations`;
/// - unless something was corrupted, every recovered source (and every
///   source the decoder holds) is byte-identical to one that was sent.
pub fn decoder(data: &[u8]) {
    let Ok(input) = DecoderInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let field = if input.gf2 { Field::Gf2 } else { Field::Gf256 };
    let symbol_size = 1 + usize::from(input.symbol_size) % 48;
    let encoder_window = 1 + usize::from(input.encoder_window) % 32;
    let mut config = DecoderConfig::new(field, symbol_size)
        .with_window(1 + usize::from(input.decoder_window) % 40);
    config.max_span = config.max_window + usize::from(input.span_extra) % 64;
    config.max_equations = 1 + usize::from(input.equations) % config.max_span;
    let mut encoder = Encoder::new(field, symbol_size, encoder_window).expect("valid encoder");
    encoder.reset(input.first_esi);
    let mut decoder = Decoder::new(config).expect("valid decoder config");

    let mut random = SplitMix::new(input.seed);
    let mut sent: HashMap<u32, Vec<u8>> = HashMap::new();
    let mut packets = Vec::new();
    for send in input.schedule.iter().take(600) {
        match *send {
            Send::Source => {
                let symbol = random.bytes(symbol_size);
                let esi = encoder.push_source(&symbol).expect("right size");
                sent.insert(esi, symbol.clone());
                packets.push(Packet::Source {
                    id: SourcePayloadId { esi }.to_bytes(),
                    symbol,
                });
            }
            Send::Repair { dt } => {
                if let Ok((id, symbol)) = encoder.next_repair(dt % 16) {
                    packets.push(Packet::Repair {
                        id: id.to_bytes().expect("encoder ids are valid"),
                        symbol,
                    });
                }
            }
            Send::SubWindow { skip, nss, key, dt } => {
                let Some((first, held)) = encoder.window() else {
                    continue;
                };
                let skip = u16::from(skip) % held;
                let nss = 1 + u16::from(nss) % (held - skip);
                let first = first.wrapping_add(u32::from(skip));
                let mut symbol = vec![0; symbol_size];
                let id = encoder
                    .sub_window_repair_into(first, nss, key, dt % 16, &mut symbol)
                    .expect("held sub-window");
                packets.push(Packet::Repair {
                    id: id.to_bytes().expect("valid"),
                    symbol,
                });
            }
        }
    }

    let mut corrupted = false;
    let mut delayed: VecDeque<(usize, Packet)> = VecDeque::new();
    let mut channel = input.channel.iter();
    let check = |decoder: &mut Decoder, corrupted: bool, drain: bool| {
        assert!(
            decoder.pending_equations() <= config.max_equations,
            "{} pending equations, limit {}",
            decoder.pending_equations(),
            config.max_equations
        );
        if !drain {
            return;
        }
        while let Some(recovered) = decoder.poll_recovered() {
            if corrupted {
                continue;
            }
            let original = sent.get(&recovered.esi);
            assert!(
                original.is_some_and(|o| o[..] == recovered.data[..]),
                "decoder released ESI {} that was not sent that way",
                recovered.esi
            );
        }
    };
    for (index, packet) in packets.iter().enumerate() {
        let step = channel.next();
        let action = step.map_or(&Action::Deliver, |s| &s.action);
        let mut deliver = Vec::new();
        match action {
            Action::Deliver => deliver.push(packet.clone()),
            Action::Drop => {}
            Action::Duplicate => {
                deliver.push(packet.clone());
                deliver.push(packet.clone());
            }
            Action::Delay(by) => delayed.push_back((index + usize::from(*by), packet.clone())),
            Action::CorruptSymbol { byte, xor } => {
                let mut packet = packet.clone();
                let symbol = match &mut packet {
                    Packet::Source { symbol, .. } | Packet::Repair { symbol, .. } => symbol,
                };
                symbol[usize::from(*byte) % symbol_size] ^= xor;
                corrupted |= *xor != 0;
                deliver.push(packet);
            }
            Action::CorruptId { byte, xor } => {
                let mut packet = packet.clone();
                let id: &mut [u8] = match &mut packet {
                    Packet::Source { id, .. } => id,
                    Packet::Repair { id, .. } => id,
                };
                let len = id.len();
                id[usize::from(*byte) % len] ^= xor;
                corrupted |= *xor != 0;
                deliver.push(packet);
            }
            Action::Garbage { repair, id, fill } => {
                deliver.push(packet.clone());
                let symbol = SplitMix::new(*fill).bytes(symbol_size);
                let id = id.to_be_bytes();
                deliver.push(if *repair {
                    Packet::Repair { id, symbol }
                } else {
                    Packet::Source {
                        id: [id[0], id[1], id[2], id[3]],
                        symbol,
                    }
                });
                corrupted = true;
            }
            Action::WrongSize { len } => {
                let mut packet = packet.clone();
                let symbol = match &mut packet {
                    Packet::Source { symbol, .. } | Packet::Repair { symbol, .. } => symbol,
                };
                symbol.resize(usize::from(*len), 0);
                deliver.push(packet);
            }
        }
        while delayed.front().is_some_and(|(due, _)| *due <= index) {
            if let Some((_, late)) = delayed.pop_front() {
                deliver.push(late);
            }
        }
        for packet in deliver {
            receive(&mut decoder, &packet, symbol_size);
            check(&mut decoder, corrupted, step.is_none_or(|s| s.poll));
        }
    }
    for (_, late) in delayed {
        receive(&mut decoder, &late, symbol_size);
    }
    check(&mut decoder, corrupted, true);
    if !corrupted {
        for (&esi, original) in &sent {
            if let Some(held) = decoder.source(esi) {
                assert_eq!(
                    held,
                    &original[..],
                    "decoder holds wrong data for ESI {esi}"
                );
            }
        }
    }
}

fn receive(decoder: &mut Decoder, packet: &Packet, symbol_size: usize) {
    let result = match packet {
        Packet::Source { id, symbol } => {
            let esi = SourcePayloadId::parse(id).expect("4 bytes").esi;
            decoder.add_source(esi, symbol)
        }
        Packet::Repair { id, symbol } => match RepairPayloadId::parse(id) {
            Ok(id) => decoder.add_repair(id, symbol),
            Err(_) => return,
        },
    };
    let symbol_len = match packet {
        Packet::Source { symbol, .. } | Packet::Repair { symbol, .. } => symbol.len(),
    };
    if symbol_len != symbol_size {
        assert!(
            result.is_err(),
            "a symbol of {symbol_len} bytes was accepted"
        );
    }
}
