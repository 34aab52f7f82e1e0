//! `fec_core::raptorq` against the `raptorq` crate used directly, both ways,
//! and its refusal of malformed input.

use fec_core::gf256;
use fec_core::raptorq::{
    parse_packet, parse_transmission_information, BlockDecoder, BlockEncoder, EncodingPacket,
    EncodingPlan, EncodingPlanCache, Generator, ObjectTransmissionInformation, PayloadId,
    MAX_GENERATOR_SOURCE_SYMBOLS,
};
use fec_core::Error;
use quickcheck::{QuickCheck, TestResult};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.gen()).collect()
}

/// Our encoder's packets, serialized, decode in a plain `raptorq::Decoder`.
#[test]
fn our_packets_decode_in_plain_raptorq() {
    let mut rng = StdRng::seed_from_u64(1);
    for &(k, t) in &[(1usize, 8u16), (10, 64), (32, 1280), (200, 48)] {
        let block = random_bytes(&mut rng, k * usize::from(t));
        let encoder = BlockEncoder::with_symbol_size(0, t, &block).unwrap();
        let lost = k / 4 + 1;
        let mut packets: Vec<Vec<u8>> = encoder
            .source_packets()
            .iter()
            .skip(lost)
            .map(EncodingPacket::serialize)
            .collect();
        packets.extend(
            encoder
                .repair_packets(0, lost as u32 + 2)
                .unwrap()
                .iter()
                .map(EncodingPacket::serialize),
        );
        packets.shuffle(&mut rng);

        let mut plain = raptorq::Decoder::new(encoder.transmission_information());
        let mut decoded = None;
        for bytes in &packets {
            decoded = decoded.or(plain.decode(EncodingPacket::deserialize(bytes)));
        }
        assert_eq!(decoded.as_deref(), Some(&block[..]), "k={k} t={t}");
    }
}

/// Our repair symbols are byte-identical to the crate's for the same block.
#[test]
fn repair_symbols_match_plain_raptorq() {
    let mut rng = StdRng::seed_from_u64(2);
    let block = random_bytes(&mut rng, 20 * 100);
    let ours = BlockEncoder::with_symbol_size(0, 100, &block).unwrap();
    let plain = raptorq::Encoder::new(&block, ours.transmission_information());
    let theirs = plain.get_encoded_packets(7);
    let mut mine = ours.source_packets();
    mine.extend(ours.repair_packets(0, 7).unwrap());
    assert_eq!(mine, theirs);
    // Any range of repair symbols, asked for out of order.
    assert_eq!(ours.repair_packets(3, 4).unwrap(), theirs[23..].to_vec());
}

/// Packets of a plain `raptorq::Encoder`, with several source blocks and
/// sub-blocks, decode block by block in ours.
#[test]
fn plain_raptorq_packets_decode_in_ours() {
    let mut rng = StdRng::seed_from_u64(3);
    let cases = [
        // F, T, Z, N, Al
        (10_000u64, 64u16, 3u8, 1u16, 8u8),
        (12_345, 128, 2, 4, 8),
        (999, 10, 1, 1, 1),
    ];
    for &(length, t, blocks, sub_blocks, alignment) in &cases {
        let data = random_bytes(&mut rng, length as usize);
        let information =
            ObjectTransmissionInformation::new(length, t, blocks, sub_blocks, alignment);
        // The receiver only sees the 12 serialized bytes.
        let received_information =
            parse_transmission_information(&information.serialize()).unwrap();
        let plain = raptorq::Encoder::new(&data, information);
        let mut decoders: Vec<BlockDecoder> = (0..blocks)
            .map(|b| BlockDecoder::with_transmission_information(&received_information, b).unwrap())
            .collect();
        let mut packets: Vec<Vec<u8>> = plain
            .get_encoded_packets(8)
            .iter()
            .map(EncodingPacket::serialize)
            .collect();
        packets.shuffle(&mut rng);
        // Drop a few of each block's packets; 8 repairs per block leave margin.
        packets.truncate(packets.len() - 3 * usize::from(blocks));
        for bytes in &packets {
            let block = usize::from(bytes[0]);
            decoders[block].add_packet(bytes).unwrap();
        }
        let mut object = Vec::new();
        for decoder in decoders {
            object.extend(decoder.into_block().expect("block decoded"));
        }
        object.truncate(length as usize);
        assert_eq!(object, data, "F={length} T={t} Z={blocks} N={sub_blocks}");
    }
}

#[test]
fn defaults_encoder_packets_decode_in_ours() {
    let mut rng = StdRng::seed_from_u64(4);
    let data = random_bytes(&mut rng, 50_000);
    let plain = raptorq::Encoder::with_defaults(&data, 1200);
    let information = plain.get_config();
    let mut decoder = BlockDecoder::with_transmission_information(&information, 0).unwrap();
    assert_eq!(information.source_blocks(), 1);
    for packet in plain.get_encoded_packets(10).into_iter().skip(5) {
        decoder.add(packet).unwrap();
    }
    let mut block = decoder.into_block().unwrap();
    block.truncate(data.len());
    assert_eq!(block, data);
}

#[test]
fn malformed_packets_are_errors() {
    let block = vec![7u8; 4 * 16];
    let encoder = BlockEncoder::with_symbol_size(5, 16, &block).unwrap();
    let mut decoder = BlockDecoder::new(5, 4, 16).unwrap();
    let good = encoder.source_packets()[0].serialize();

    for len in 0..good.len() {
        assert!(matches!(
            decoder.add_packet(&good[..len]),
            Err(Error::RaptorqPacketLength { .. })
        ));
    }
    let mut long = good.clone();
    long.push(0);
    assert!(decoder.add_packet(&long).is_err());
    assert!(parse_packet(&[], 16).is_err());

    let mut other_block = good.clone();
    other_block[0] = 6;
    assert_eq!(
        decoder.add_packet(&other_block),
        Err(Error::RaptorqBlockMismatch {
            expected: 5,
            got: 6
        })
    );
    let short_symbol = EncodingPacket::new(PayloadId::new(5, 1), vec![0; 15]);
    assert!(decoder.add(short_symbol).is_err());

    assert!(!decoder.add_packet(&good).unwrap());
    assert!(!decoder.add_packet(&good).unwrap(), "duplicate ignored");
    assert!(!decoder.is_decoded());
}

#[test]
fn repair_symbols_are_capped() {
    let block = vec![1u8; 8 * 4];
    let encoder = BlockEncoder::with_symbol_size(0, 4, &block).unwrap();
    let mut decoder = BlockDecoder::new(0, 8, 4).unwrap();
    decoder.set_max_repair_symbols(3);
    // Repairs of another block with the same number: ESIs beyond what we sent
    // still count as repairs and fill the cap.
    let repairs = encoder.repair_packets(100, 4).unwrap();
    for packet in &repairs[..3] {
        decoder.add(packet.clone()).unwrap();
    }
    assert_eq!(
        decoder.add(repairs[3].clone()),
        Err(Error::RaptorqTooManyRepairSymbols { max: 3 })
    );
    // The three held suffice with five sources.
    for packet in encoder.source_packets().into_iter().take(5) {
        decoder.add(packet).unwrap();
    }
    assert_eq!(decoder.block(), Some(&block[..]));
}

#[test]
fn bad_parameters_are_errors() {
    assert!(BlockEncoder::with_symbol_size(0, 0, &[1, 2]).is_err());
    assert!(BlockEncoder::with_symbol_size(0, 3, &[1, 2]).is_err());
    assert!(BlockEncoder::with_symbol_size(0, 3, &[]).is_err());
    assert!(BlockDecoder::new(0, 0, 16).is_err());
    assert!(BlockDecoder::new(0, 56_404, 16).is_err());
    assert!(BlockDecoder::new(0, 4, 0).is_err());
    let encoder = BlockEncoder::with_symbol_size(0, 1, &[1, 2, 3]).unwrap();
    assert!(encoder.repair_packets((1 << 24) - 4, 1).is_ok());
    assert!(matches!(
        encoder.repair_packets((1 << 24) - 4, 2),
        Err(Error::RaptorqEncodingSymbolId { .. })
    ));
    let information = ObjectTransmissionInformation::new(100, 10, 2, 1, 1);
    assert!(matches!(
        BlockDecoder::with_transmission_information(&information, 2),
        Err(Error::RaptorqBlockNumber { got: 2, blocks: 2 })
    ));
}

/// Any 12 bytes either parse into information every constructor accepts,
/// or are an error; nothing panics.
#[test]
fn arbitrary_transmission_information_never_panics() {
    fn property(bytes: Vec<u8>, block: u8) -> TestResult {
        let Ok(information) = parse_transmission_information(&bytes) else {
            return TestResult::passed();
        };
        if let Ok(decoder) = BlockDecoder::with_transmission_information(&information, block) {
            // Stay small: the decoder allocates K symbols.
            assert!(decoder.source_symbols() >= 1);
        }
        TestResult::passed()
    }
    let mut rng = StdRng::seed_from_u64(5);
    // Mostly-valid shapes are the interesting ones; random ones too.
    for _ in 0..2000 {
        let mut bytes = random_bytes(&mut rng, 12);
        if rng.gen_bool(0.7) {
            bytes[0] = 0;
            bytes[1] = 0;
            bytes[2] = rng.gen_range(0..2);
            bytes[6] = 0;
            bytes[8] = rng.gen_range(0..4);
            bytes[9] = 0;
            bytes[10] = rng.gen_range(0..4);
            bytes[11] = *[0u8, 1, 2, 4, 8].choose(&mut rng).unwrap();
        }
        property(bytes, rng.gen_range(0..4));
    }
    QuickCheck::new()
        .tests(500)
        .quickcheck(property as fn(Vec<u8>, u8) -> TestResult);
}

/// Random blocks and loss patterns: once a decoder says "decoded", its block
/// is the one sent; with two symbols of overhead it always decodes here.
#[test]
fn random_blocks_round_trip() {
    fn property(seed: u64) -> bool {
        let mut rng = StdRng::seed_from_u64(seed);
        let k = rng.gen_range(1..60usize);
        let t = rng.gen_range(1..40u16);
        let block = random_bytes(&mut rng, k * usize::from(t));
        let encoder = BlockEncoder::with_symbol_size(9, t, &block).unwrap();
        let mut packets = encoder.source_packets();
        packets.extend(encoder.repair_packets(0, k as u32 + 4).unwrap());
        packets.shuffle(&mut rng);
        let mut decoder = BlockDecoder::new(9, k as u32, t).unwrap();
        for (received, packet) in packets.into_iter().take(k + 2).enumerate() {
            if decoder.add(packet).unwrap() {
                assert!(received + 1 >= k);
                return decoder.block() == Some(&block[..]);
            }
        }
        false
    }
    QuickCheck::new()
        .tests(60)
        .quickcheck(property as fn(u64) -> bool);
}

/// The repair packets of `with_plan` + `for_each_repair`, as packets.
fn planned_repairs(
    sbn: u8,
    symbol_size: u16,
    block: &[u8],
    plan: &EncodingPlan,
    first_repair: u32,
    count: u32,
) -> Vec<EncodingPacket> {
    let encoder = BlockEncoder::with_plan(sbn, symbol_size, block, plan).unwrap();
    let mut packets = Vec::new();
    encoder
        .for_each_repair(first_repair, count, |esi, symbol| {
            packets.push(EncodingPacket::new(
                PayloadId::new(sbn, esi),
                symbol.to_vec(),
            ))
        })
        .unwrap();
    packets
}

/// A plan cache reused across blocks of several sizes (more sizes than it
/// holds, and back to evicted ones) gives the same repair packets, byte for
/// byte, as a fresh encoder of the crate used directly.
#[test]
fn cached_plans_give_the_crates_repair_symbols() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut cache = EncodingPlanCache::new();
    let sizes = [1u32, 10, 32, 7, 200, 33, 2, 5, 9, 11, 32, 1, 200];
    for (round, &k) in sizes.iter().enumerate() {
        let t = [16u16, 48, 100][round % 3];
        let block = random_bytes(&mut rng, k as usize * usize::from(t));
        let sbn = round as u8;
        // 40 repairs: more than one batch of the crate's buffers.
        let count = 40;
        let first_repair = (round as u32 % 3) * 5;
        let plan = cache.plan(k).unwrap();
        assert_eq!(plan.source_symbols(), k);
        let ours = planned_repairs(sbn, t, &block, plan, first_repair, count);

        let information = ObjectTransmissionInformation::new(block.len() as u64, t, 1, 1, 1);
        let fresh = raptorq::SourceBlockEncoder::new(sbn, &information, &block)
            .repair_packets(first_repair, count);
        assert_eq!(ours, fresh, "k={k} t={t}");
        assert!(cache.len() <= EncodingPlanCache::CAPACITY);
    }
    assert_eq!(cache.len(), EncodingPlanCache::CAPACITY);
}

/// `for_each_repair` hands out what `repair_packets` returns, in order.
#[test]
fn repairs_one_by_one_match_repair_packets() {
    let mut rng = StdRng::seed_from_u64(4);
    let block = random_bytes(&mut rng, 20 * 64);
    let encoder = BlockEncoder::with_symbol_size(9, 64, &block).unwrap();
    for (first, count) in [(0, 0), (0, 1), (3, 16), (0, 17), (100, 50)] {
        let mut streamed = Vec::new();
        encoder
            .for_each_repair(first, count, |esi, symbol| {
                streamed.push(EncodingPacket::new(PayloadId::new(9, esi), symbol.to_vec()))
            })
            .unwrap();
        assert_eq!(streamed, encoder.repair_packets(first, count).unwrap());
    }
    let too_far = (1 << 24) - 20;
    assert!(matches!(
        encoder.for_each_repair(too_far, 1, |_, _| {}),
        Err(Error::RaptorqEncodingSymbolId { .. })
    ));
}

/// A plan for another block size, or none at all, is an error, not the
/// crate's assertion.
#[test]
fn mismatched_plans_are_errors() {
    let plan = EncodingPlan::new(8).unwrap();
    assert!(matches!(
        BlockEncoder::with_plan(0, 16, &[0; 16 * 9], &plan),
        Err(Error::RaptorqPlanMismatch { plan: 8, block: 9 })
    ));
    assert!(matches!(
        BlockEncoder::with_plan(0, 16, &[0; 17], &plan),
        Err(Error::RaptorqBlockLength { .. })
    ));
    assert!(matches!(
        BlockEncoder::with_plan(0, 0, &[], &plan),
        Err(Error::RaptorqBlockLength { .. })
    ));
    for bad in [0, 56_404] {
        assert!(matches!(
            EncodingPlan::new(bad),
            Err(Error::RaptorqSourceSymbols { .. })
        ));
        assert!(EncodingPlanCache::new().plan(bad).is_err());
    }
}

/// `add_all` takes a batch as `add` takes its packets one by one: duplicates
/// ignored, a refused packet reported with the packets before it kept.
#[test]
fn add_all_matches_adding_one_by_one() {
    let mut rng = StdRng::seed_from_u64(5);
    let block = random_bytes(&mut rng, 12 * 32);
    let encoder = BlockEncoder::with_symbol_size(4, 32, &block).unwrap();
    let mut packets: Vec<EncodingPacket> = encoder.source_packets().into_iter().skip(3).collect();
    packets.extend(encoder.repair_packets(0, 5).unwrap());
    packets.push(packets[0].clone());
    packets.shuffle(&mut rng);

    let mut batch = BlockDecoder::new(4, 12, 32).unwrap();
    assert_eq!(batch.add_all(packets.clone()), Ok(true));
    assert_eq!(batch.block(), Some(&block[..]));

    // A packet of another block in the middle: refused, the first half kept,
    // and the rest can still be added afterwards.
    let mut split = BlockDecoder::new(4, 12, 32).unwrap();
    let (first, rest) = packets.split_at(6);
    let mut with_stranger = first.to_vec();
    with_stranger.push(EncodingPacket::new(PayloadId::new(5, 0), vec![0; 32]));
    with_stranger.extend_from_slice(rest);
    assert!(matches!(
        split.add_all(with_stranger),
        Err(Error::RaptorqBlockMismatch {
            expected: 4,
            got: 5
        })
    ));
    assert!(!split.is_decoded());
    for packet in rest {
        split.add(packet.clone()).unwrap();
    }
    assert_eq!(split.block(), Some(&block[..]));
}

/// The crate's repair symbols for `block` (K symbols of `t` bytes).
fn crate_repairs(block: &[u8], t: u16, first_repair: u32, count: u32) -> Vec<Vec<u8>> {
    let information = ObjectTransmissionInformation::new(block.len() as u64, t, 1, 1, 1);
    raptorq::SourceBlockEncoder::new(0, &information, block)
        .repair_packets(first_repair, count)
        .iter()
        .map(|packet| packet.data().to_vec())
        .collect()
}

/// Generator rows times the source symbols are the crate's repair symbols,
/// byte for byte: random K, T, and repair ranges inside the kept rows,
/// past them, and near the top of the 24-bit ESI space.
#[test]
fn generator_rows_give_the_crates_repair_symbols() {
    fn property(seed: u64) -> bool {
        let mut rng = StdRng::seed_from_u64(seed);
        let k = rng.gen_range(1..=120u32);
        let t = rng.gen_range(1..=70u16);
        let block = random_bytes(&mut rng, k as usize * usize::from(t));
        let kept = rng.gen_range(0..8u32);
        let count = rng.gen_range(1..=6u32);
        let first_repair = match rng.gen_range(0..3) {
            0 => rng.gen_range(0..8),
            1 => rng.gen_range(8..5000),
            _ => (1 << 24) - k - count,
        };
        let generator = Generator::new(k, kept).unwrap();
        let rows = generator.repair_rows(first_repair, count).unwrap();
        let sources: Vec<&[u8]> = block.chunks(usize::from(t)).collect();
        let ours = gf256::engine()
            .prepare(&rows, count as usize, k as usize)
            .apply_new(&sources);
        ours == crate_repairs(&block, t, first_repair, count)
    }
    QuickCheck::new()
        .tests(80)
        .quickcheck(property as fn(u64) -> bool);
}

/// The largest K a generator takes, and rows one at a time.
#[test]
fn generator_at_its_largest_k_and_row_by_row() {
    let k = MAX_GENERATOR_SOURCE_SYMBOLS;
    let mut rng = StdRng::seed_from_u64(6330);
    let block = random_bytes(&mut rng, k as usize * 4);
    let generator = Generator::new(k, 2).unwrap();
    let rows = generator.repair_rows(0, 3).unwrap();
    let sources: Vec<&[u8]> = block.chunks(4).collect();
    let ours = gf256::engine()
        .prepare(&rows, 3, k as usize)
        .apply_new(&sources);
    assert_eq!(ours, crate_repairs(&block, 4, 0, 3));
    for (index, row) in rows.chunks(k as usize).enumerate() {
        assert_eq!(generator.row(k + index as u32).unwrap(), row);
    }
    let unit = generator.row(7).unwrap();
    assert_eq!(unit.iter().filter(|&&c| c != 0).count(), 1);
    assert_eq!(unit[7], 1);
}

/// Sizes and ESIs out of range are errors.
#[test]
fn generator_refuses_what_it_cannot_do() {
    assert!(matches!(
        Generator::new(0, 0),
        Err(Error::RaptorqSourceSymbols { .. })
    ));
    assert!(matches!(
        Generator::new(MAX_GENERATOR_SOURCE_SYMBOLS + 1, 0),
        Err(Error::RaptorqSourceSymbols { .. })
    ));
    let generator = Generator::new(10, 4).unwrap();
    assert_eq!(generator.source_symbols(), 10);
    assert!(matches!(
        generator.repair_rows((1 << 24) - 10, 1),
        Err(Error::RaptorqEncodingSymbolId { .. })
    ));
    assert!(matches!(
        generator.row(1 << 24),
        Err(Error::RaptorqEncodingSymbolId { .. })
    ));
    assert_eq!(generator.repair_rows(0, 0).unwrap(), Vec::<u8>::new());
}
