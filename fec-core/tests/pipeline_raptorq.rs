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

/// Blocks of changing sizes (the encoder keeps a plan per size) carry the
/// repair symbols the `raptorq` crate computes for the same framed block.
#[test]
fn repairs_match_the_crate_across_block_sizes() {
    use bytes::Bytes;
    use fec_core::pipeline::wire::{frame_symbol, Header, ADU_INFO_LEN};
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

        let size = ADU_INFO_LEN + adus.iter().map(Bytes::len).max().unwrap();
        let mut framed = vec![0; k * size];
        for (slot, adu) in framed.chunks_exact_mut(size).zip(&adus) {
            frame_symbol(slot, 3, adu).unwrap();
        }
        let information =
            raptorq::ObjectTransmissionInformation::new(framed.len() as u64, size as u16, 1, 1, 1);
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
