//! RaptorQ through the pipeline on loss traces.

mod pipeline_common;

use fec_core::pipeline::loss::{Bernoulli, GilbertElliott};
use fec_core::pipeline::{Config, Scheme};
use pipeline_common::{check_block_code, Run};

fn config(k: usize, repairs: usize) -> Config {
    Config::new(Scheme::RaptorQ {
        source_symbols: k,
        repair_symbols: repairs,
    })
}

/// RaptorQ decodes from K + 2 received symbols with probability about
/// 1 - 1e-6, so with these seeds every such block must decode.
const OVERHEAD: usize = 2;

#[test]
fn bernoulli_loss_1_to_20_percent() {
    for (seed, rate) in [(1, 0.01), (2, 0.05), (3, 0.10), (4, 0.20)] {
        let run = Run::new(seed, 640, 16, 6);
        let outcome = run.go(&config(16, 6), &mut Bernoulli::new(rate, seed));
        let (good, bad) = check_block_code(&outcome, OVERHEAD);
        assert!(good > 0);
        if rate <= 0.05 {
            assert_eq!(outcome.residual(), 0, "rate {rate}: {bad} blocks lost");
        }
        assert_eq!(
            outcome.decoder.recovered as usize,
            outcome.recovered_count()
        );
        assert!(outcome.recovered_count() > 0 || outcome.lost_sources() == 0);
    }
}

#[test]
fn gilbert_elliott_bursts() {
    for (seed, rate, burst) in [(10, 0.03, 2.0), (11, 0.05, 4.0), (12, 0.10, 8.0)] {
        let run = Run::new(seed, 640, 32, 10);
        let outcome = run.go(
            &config(32, 10),
            &mut GilbertElliott::with_mean_burst(rate, burst, seed),
        );
        check_block_code(&outcome, OVERHEAD);
        assert!(outcome.recovered_count() > 0);
    }
}

#[test]
fn reordering_duplicates_and_garbage() {
    let mut run = Run::new(20, 600, 10, 4);
    run.shuffle_seed = Some(7);
    run.duplicate = true;
    run.garbage_every = Some(3);
    let outcome = run.go(&config(10, 4), &mut Bernoulli::new(0.08, 20));
    check_block_code(&outcome, OVERHEAD);
    assert!(outcome.decoder.duplicates > 0);
}

#[test]
fn small_adus_get_small_repair_symbols() {
    let mut run = Run::new(30, 64, 8, 2);
    run.max_len = 40;
    let outcome = run.go(&config(8, 2), &mut Bernoulli::new(0.0, 30));
    for packet in outcome.packets.iter().filter(|p| p.adu.is_none()) {
        // 8-byte header + symbol of at most 3 + 40 bytes.
        assert!(packet.bytes.len() <= 8 + 43, "{}", packet.bytes.len());
    }
}

/// What `decoder` hands out is exactly the ADUs at `lost` (in any order).
fn assert_recovers(
    decoder: &mut fec_core::pipeline::Decoder,
    adus: &[bytes::Bytes],
    lost: &[usize],
    context: &str,
) {
    let mut recovered: Vec<bytes::Bytes> = std::iter::from_fn(|| decoder.poll_recovered())
        .map(|adu| adu.data)
        .collect();
    recovered.sort();
    let mut expected: Vec<bytes::Bytes> = lost.iter().map(|&i| adus[i].clone()).collect();
    expected.sort();
    assert_eq!(recovered, expected, "{context}");
}

/// `k` random ADUs with lengths in `lengths`, and their source packets
/// from `encoder` on `flow`.
fn random_block(
    rng: &mut rand::rngs::StdRng,
    encoder: &mut fec_core::pipeline::Encoder,
    k: usize,
    lengths: std::ops::RangeInclusive<usize>,
    flow: u8,
) -> (Vec<bytes::Bytes>, Vec<bytes::Bytes>) {
    use rand::Rng;
    let adus: Vec<bytes::Bytes> = (0..k)
        .map(|_| {
            let len = rng.gen_range(lengths.clone());
            bytes::Bytes::from((0..len).map(|_| rng.gen()).collect::<Vec<u8>>())
        })
        .collect();
    let sources = adus
        .iter()
        .map(|adu| encoder.protect(flow, adu.clone()).unwrap().to_bytes())
        .collect();
    (adus, sources)
}

/// The block the pipeline's encoder codes for `adus` of `flow`, as the
/// `raptorq` crate sees it: the framed symbols back to back, their size, and
/// the transmission information of that one block.
fn framed_block(
    flow: u8,
    adus: &[bytes::Bytes],
) -> (Vec<u8>, usize, raptorq::ObjectTransmissionInformation) {
    use fec_core::pipeline::wire::{frame_symbol, ADU_INFO_LEN};

    let size = ADU_INFO_LEN + adus.iter().map(bytes::Bytes::len).max().unwrap();
    let mut framed = vec![0; adus.len() * size];
    for (slot, adu) in framed.chunks_exact_mut(size).zip(adus) {
        frame_symbol(slot, flow, adu).unwrap();
    }
    let information =
        raptorq::ObjectTransmissionInformation::new(framed.len() as u64, size as u16, 1, 1, 1);
    (framed, size, information)
}

/// Blocks of changing sizes (the encoder keeps a plan per size) carry the
/// repair symbols the `raptorq` crate computes for the same framed block.
#[test]
fn repairs_match_the_crate_across_block_sizes() {
    use bytes::Bytes;
    use fec_core::pipeline::wire::Header;
    use fec_core::pipeline::Encoder;

    let mut encoder = Encoder::new(&config(16, 4)).unwrap();
    for (block, &k) in [16usize, 5, 16, 3, 1, 12, 5, 16].iter().enumerate() {
        let adus: Vec<Bytes> = (0..k)
            .map(|i| Bytes::from(vec![(block * 31 + i) as u8; 20 + (i * 37 + block) % 90]))
            .collect();
        for adu in &adus {
            encoder.protect(3, adu.clone()).unwrap();
        }
        let repairs = encoder.repair(4).unwrap();

        let (framed, _, information) = framed_block(3, &adus);
        let expected = raptorq::SourceBlockEncoder::new(block as u8, &information, &framed)
            .repair_packets(0, 4);
        assert_eq!(repairs.len(), expected.len());
        for (packet, expected) in repairs.iter().zip(&expected) {
            let (header, at) = Header::parse(packet).unwrap();
            assert_eq!(
                header,
                Header::RaptorqRepair {
                    source_symbols: k as u16,
                    block: block as u8,
                    esi: expected.payload_id().encoding_symbol_id(),
                }
            );
            assert_eq!(&packet[at..], expected.data(), "block {block} k={k}");
        }
    }
}

/// The pipeline rebuilds a block (through the generator rows) from exactly
/// the sets of symbols from which the `raptorq` crate's own decoder does:
/// random small blocks lose random sources and get exactly as many
/// repairs, which now and then (about 1 in 1000 here) is not enough for
/// RaptorQ (its rows at the lost positions are singular). Then both wait, and both decode once the other
/// repairs arrive.
#[test]
fn decodes_exactly_when_the_crate_does() {
    use bytes::Bytes;
    use fec_core::pipeline::wire::Header;
    use fec_core::pipeline::{Decoder, Encoder};
    use rand::rngs::StdRng;
    use rand::seq::index::sample;
    use rand::{Rng, SeedableRng};

    let (mut short, mut decoded) = (0, 0);
    for trial in 0..5000u64 {
        let mut rng = StdRng::seed_from_u64(trial);
        let k = rng.gen_range(2..=10usize);
        let config = config(k, k);
        let mut encoder = Encoder::new(&config).unwrap();
        let (adus, sources) = random_block(&mut rng, &mut encoder, k, 1..=24, 1);
        let repairs = encoder.repair(k).unwrap();
        let lost_count = rng.gen_range(1..=k);
        let mut lost = sample(&mut rng, k, lost_count).into_vec();
        lost.sort_unstable();
        // Which repairs arrive first: any of them, in any order.
        let order = sample(&mut rng, k, k).into_vec();
        let repairs: Vec<Bytes> = order.iter().map(|&j| repairs[j].clone()).collect();

        // The crate's view: the framed block, the same symbols.
        let (framed, size, information) = framed_block(1, &adus);
        let mut plain = raptorq::SourceBlockDecoder::new(0, &information, framed.len() as u64);
        let mut plain_packets: Vec<raptorq::EncodingPacket> = (0..k)
            .filter(|i| !lost.contains(i))
            .map(|i| {
                let symbol = framed[i * size..(i + 1) * size].to_vec();
                raptorq::EncodingPacket::new(raptorq::PayloadId::new(0, i as u32), symbol)
            })
            .collect();
        let repair_packet = |packet: &Bytes| {
            let (header, at) = Header::parse(packet).unwrap();
            let Header::RaptorqRepair { esi, .. } = header else {
                panic!("not a repair: {header:?}")
            };
            raptorq::EncodingPacket::new(raptorq::PayloadId::new(0, esi), packet[at..].to_vec())
        };
        plain_packets.extend(repairs[..lost_count].iter().map(repair_packet));
        let plain_first = plain.decode(plain_packets).is_some();

        let mut decoder = Decoder::new(&config).unwrap();
        for (i, packet) in sources.iter().enumerate() {
            if !lost.contains(&i) {
                decoder.receive(packet.clone()).unwrap();
            }
        }
        for packet in &repairs[..lost_count] {
            decoder.receive(packet.clone()).unwrap();
        }
        let ours_first = decoder.counters().recovered as usize == lost_count;
        assert_eq!(
            ours_first, plain_first,
            "trial {trial}: k={k} lost {lost:?}"
        );

        let plain_all = plain_first
            || plain
                .decode(repairs[lost_count..].iter().map(repair_packet))
                .is_some();
        if !ours_first {
            short += 1;
            for packet in &repairs[lost_count..] {
                decoder.receive(packet.clone()).unwrap();
            }
        }
        assert_eq!(
            decoder.counters().recovered as usize == lost_count,
            plain_all,
            "trial {trial}: k={k} lost {lost:?}, all repairs"
        );
        let mut recovered: Vec<Bytes> = std::iter::from_fn(|| decoder.poll_recovered())
            .map(|adu| adu.data)
            .collect();
        if plain_all {
            decoded += 1;
            let mut expected: Vec<Bytes> = lost.iter().map(|&i| adus[i].clone()).collect();
            expected.sort();
            recovered.sort();
            assert_eq!(recovered, expected, "trial {trial}");
        }
        assert_eq!(decoder.counters().rejected, 0);
    }
    // Both outcomes occurred: blocks the rows alone could not rebuild went to
    // the crate's decoder (the row solve itself is tested in block.rs).
    assert!(
        short > 0,
        "no block needed more than its losses' worth of repairs"
    );
    assert!(decoded > short);
}

/// Blocks beyond the generator's largest K go through the crate's own
/// encoder and decoder, and still recover.
#[test]
fn blocks_beyond_the_generator_use_the_crate() {
    use bytes::Bytes;
    use fec_core::pipeline::{Decoder, Encoder};
    use fec_core::raptorq::MAX_GENERATOR_SOURCE_SYMBOLS;

    let k = MAX_GENERATOR_SOURCE_SYMBOLS as usize + 3;
    let config = config(k, 6);
    let mut encoder = Encoder::new(&config).unwrap();
    let mut decoder = Decoder::new(&config).unwrap();
    let adus: Vec<Bytes> = (0..k)
        .map(|i| Bytes::from(vec![(i % 251) as u8; 1 + i % 9]))
        .collect();
    let lost = [0usize, 500, k - 1];
    for (i, adu) in adus.iter().enumerate() {
        let packet = encoder.protect(0, adu.clone()).unwrap().to_bytes();
        if !lost.contains(&i) {
            decoder.receive(packet).unwrap();
        }
    }
    for packet in encoder.repair(6).unwrap() {
        decoder.receive(packet).unwrap();
    }
    assert_recovers(&mut decoder, &adus, &lost, "");
}

/// Blocks whose generator rows would exceed the row kernel's bound (here
/// K = 300 with 60 repairs, and 60 sources lost; `block.rs` pins that the
/// pipeline takes its schedule for them), on the process's backend: the
/// repairs are the crate's bytes, and the lost sources come back (the
/// schedule's solve itself, and its agreement with the row solve, are
/// tested in block.rs).
#[test]
fn large_blocks_take_the_schedule() {
    use fec_core::pipeline::wire::Header;
    use fec_core::pipeline::{Decoder, Encoder};
    use rand::rngs::StdRng;
    use rand::seq::index::sample;
    use rand::SeedableRng;

    let (k, m) = (300usize, 60usize);
    let config = config(k, m);
    for trial in 0..3u64 {
        let mut rng = StdRng::seed_from_u64(trial);
        let mut encoder = Encoder::new(&config).unwrap();
        let (adus, sources) = random_block(&mut rng, &mut encoder, k, 300..=400, 4);
        let repairs = encoder.repair(m).unwrap();

        let (framed, _, information) = framed_block(4, &adus);
        let expected = raptorq::SourceBlockEncoder::new(trial as u8, &information, &framed)
            .repair_packets(0, m as u32);
        for (packet, expected) in repairs.iter().zip(&expected) {
            let (_, at) = Header::parse(packet).unwrap();
            assert_eq!(&packet[at..], expected.data(), "trial {trial}");
        }

        let mut lost = sample(&mut rng, k, m).into_vec();
        lost.sort_unstable();
        let mut decoder = Decoder::new(&config).unwrap();
        for (i, packet) in sources.iter().enumerate() {
            if !lost.contains(&i) {
                decoder.receive(packet.clone()).unwrap();
            }
        }
        for packet in &repairs {
            decoder.receive(packet.clone()).unwrap();
        }
        assert_recovers(&mut decoder, &adus, &lost, &format!("trial {trial}"));
    }
}
