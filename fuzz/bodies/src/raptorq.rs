//! RaptorQ adapter: hostile Object Transmission Information and packets,
//! and real blocks under loss, duplication, reordering and corruption.

use std::collections::HashSet;

use arbitrary::{Arbitrary, Unstructured};
use fec_core::raptorq::{
    parse_packet, parse_transmission_information, BlockDecoder, BlockEncoder,
    ObjectTransmissionInformation, PAYLOAD_ID_LEN,
};

use crate::seed::SplitMix;

#[derive(Arbitrary, Debug)]
struct PacketsInput {
    information: [u8; 12],
    source_block_number: u8,
    /// For the plain constructor: K and T straight from the input.
    source_symbols: u16,
    symbol_size: u16,
    packets: Vec<Vec<u8>>,
}

/// Arbitrary transmission information and packets: every malformed one is
/// an error (the raptorq crate itself asserts on several), never a panic,
/// and a decoder holds no more repair symbols than its cap.
pub fn packets(data: &[u8]) {
    let Ok(input) = PacketsInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    for packet in &input.packets {
        if let Ok(parsed) = parse_packet(packet, input.symbol_size) {
            assert_eq!(parsed.serialize(), packet[..], "packet does not round-trip");
        }
    }
    let mut decoders = Vec::new();
    if let Ok(information) = parse_transmission_information(&input.information) {
        // Byte 5 is reserved (RFC 6330 section 3.3.2): ignored, written as 0.
        let mut expected = input.information;
        expected[5] = 0;
        assert_eq!(information.serialize(), expected, "OTI does not round-trip");
        if let Ok(decoder) =
            BlockDecoder::with_transmission_information(&information, input.source_block_number)
        {
            decoders.push(decoder);
        }
    }
    if let Ok(decoder) = BlockDecoder::new(
        input.source_block_number,
        u32::from(input.source_symbols),
        input.symbol_size,
    ) {
        decoders.push(decoder);
    }
    for mut decoder in decoders {
        let cap = 1 + input.source_symbols as usize % 8;
        decoder.set_max_repair_symbols(cap);
        let size = usize::from(decoder.symbol_size());
        let mut repairs = HashSet::new();
        for packet in input.packets.iter().take(64) {
            // Also try each packet cut or padded to the decoder's size, so
            // the fuzzer reaches the decoder itself, not only the length check.
            let mut fitted = packet.clone();
            fitted.resize(PAYLOAD_ID_LEN + size, 0);
            for bytes in [&packet[..], &fitted[..]] {
                if decoder.add_packet(bytes).is_ok() && bytes.len() >= PAYLOAD_ID_LEN {
                    let esi = u32::from_be_bytes([0, bytes[1], bytes[2], bytes[3]]);
                    if esi >= decoder.source_symbols() {
                        repairs.insert(esi);
                    }
                }
            }
            if decoder.is_decoded() {
                let block = decoder.block().expect("decoded");
                assert_eq!(
                    block.len(),
                    decoder.source_symbols() as usize * size,
                    "decoded block has the wrong length"
                );
                break;
            }
        }
        assert!(
            repairs.len() <= cap,
            "{} repair symbols accepted, cap {cap}",
            repairs.len()
        );
    }
}

#[derive(Arbitrary, Debug)]
struct BlockInput {
    source_symbols: u8,
    /// Symbol size in units of the alignment.
    symbol_units: u8,
    alignment_log2: u8,
    sub_blocks: u8,
    source_block_number: u8,
    seed: u64,
    /// Repair packets sent after the sources, first ESI offset.
    first_repair: u16,
    repairs: u8,
    channel: Vec<Action>,
}

#[derive(Arbitrary, Debug)]
enum Action {
    Deliver,
    Drop,
    Duplicate,
    /// Swap with a later packet.
    Swap(u8),
    Corrupt {
        byte: u16,
        xor: u8,
    },
    /// A packet of another source block.
    OtherBlock(u8),
}

/// A real block, sub-blocked or not, through an arbitrary channel. Unless a
/// symbol was corrupted, a decoded block equals the encoded one, and
/// receiving all K source packets always decodes.
pub fn block(data: &[u8]) {
    let Ok(input) = BlockInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let k = 1 + u32::from(input.source_symbols) % 40;
    let alignment = 1u16 << (input.alignment_log2 % 4);
    let units = 1 + u16::from(input.symbol_units) % 24;
    let symbol_size = alignment * units;
    let sub_blocks = 1 + u16::from(input.sub_blocks) % units;
    let information = ObjectTransmissionInformation::new(
        u64::from(k) * u64::from(symbol_size),
        symbol_size,
        1,
        sub_blocks,
        alignment as u8,
    );
    let block = SplitMix::new(input.seed).bytes(k as usize * usize::from(symbol_size));
    // A one-block object has only block 0; the plain constructors take any
    // block number (without sub-blocking).
    let plain = alignment == 1 && sub_blocks == 1;
    let sbn = if plain { input.source_block_number } else { 0 };
    let (encoder, mut decoder) = if plain {
        (
            BlockEncoder::with_symbol_size(sbn, symbol_size, &block).expect("valid block"),
            BlockDecoder::new(sbn, k, symbol_size).expect("valid decoder"),
        )
    } else {
        (
            BlockEncoder::new(sbn, &information, &block).expect("valid block"),
            BlockDecoder::with_transmission_information(&information, sbn).expect("valid OTI"),
        )
    };
    assert_eq!(decoder.source_symbols(), k);

    let mut packets: Vec<Vec<u8>> = encoder
        .source_packets()
        .iter()
        .map(|p| p.serialize())
        .collect();
    let repairs = encoder
        .repair_packets(u32::from(input.first_repair), u32::from(input.repairs % 48))
        .expect("ESIs in range");
    packets.extend(repairs.iter().map(|p| p.serialize()));

    let mut corrupted = false;
    let mut delivered = Vec::new();
    let mut channel = input.channel.iter();
    let mut index = 0;
    while index < packets.len() {
        match channel.next().unwrap_or(&Action::Deliver) {
            Action::Deliver => delivered.push(packets[index].clone()),
            Action::Drop => {}
            Action::Duplicate => {
                delivered.push(packets[index].clone());
                delivered.push(packets[index].clone());
            }
            Action::Swap(by) => {
                let other = index + 1 + usize::from(*by);
                if other < packets.len() {
                    packets.swap(index, other);
                }
                delivered.push(packets[index].clone());
            }
            Action::Corrupt { byte, xor } => {
                let mut packet = packets[index].clone();
                let at = usize::from(*byte) % packet.len();
                packet[at] ^= xor;
                corrupted |= *xor != 0;
                delivered.push(packet);
            }
            Action::OtherBlock(other) => {
                let mut packet = packets[index].clone();
                packet[0] = *other;
                delivered.push(packet);
            }
        }
        index += 1;
    }

    let mut sources = HashSet::new();
    for packet in &delivered {
        let accepted = decoder.add_packet(packet).is_ok();
        if accepted && packet[0] == sbn {
            let esi = u32::from_be_bytes([0, packet[1], packet[2], packet[3]]);
            if esi < k {
                sources.insert(esi);
            }
        }
        if let Some(decoded) = decoder.block() {
            if !corrupted {
                assert!(
                    decoded == &block[..],
                    "decoded block differs from the encoded one"
                );
            }
        }
    }
    if !corrupted && sources.len() == k as usize {
        assert!(
            decoder.is_decoded(),
            "all {k} source packets received but not decoded"
        );
    }
}
