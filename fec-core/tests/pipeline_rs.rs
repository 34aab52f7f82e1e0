//! Block Reed-Solomon through the pipeline on loss traces: RS(k, m) is MDS,
//! so a block is fully recovered exactly when at least k of its k + m
//! packets arrive.

mod pipeline_common;

use bytes::Bytes;
use fec_core::pipeline::loss::{Bernoulli, GilbertElliott};
use fec_core::pipeline::{Config, Decoder, Encoder, Scheme};
use fec_core::Error;
use pipeline_common::{check_block_code, Run};

fn config(data: usize, parity: usize) -> Config {
    Config::new(Scheme::ReedSolomon { data, parity })
}

#[test]
fn bernoulli_loss_1_to_20_percent() {
    for (seed, rate, k, m) in [
        (1, 0.01, 10, 2),
        (2, 0.05, 10, 4),
        (3, 0.10, 20, 6),
        (4, 0.20, 16, 8),
        (5, 0.20, 4, 4),
    ] {
        let run = Run::new(seed, 2000, k, m);
        let outcome = run.go(&config(k, m), &mut Bernoulli::new(rate, seed));
        let (good, bad) = check_block_code(&outcome, 0);
        println!(
            "RS({k},{m}) rate {rate}: {good} blocks decodable, {bad} not, residual {}",
            outcome.residual()
        );
        assert_eq!(
            outcome.decoder.recovered as usize,
            outcome.recovered_count()
        );
        assert!(outcome.recovered_count() > 0);
    }
}

#[test]
fn gilbert_elliott_bursts() {
    for (seed, rate, burst) in [(10, 0.03, 2.0), (11, 0.05, 4.0), (12, 0.10, 8.0)] {
        let run = Run::new(seed, 2000, 16, 4);
        let outcome = run.go(
            &config(16, 4),
            &mut GilbertElliott::with_mean_burst(rate, burst, seed),
        );
        check_block_code(&outcome, 0);
        assert!(outcome.recovered_count() > 0);
    }
}

#[test]
fn reordering_duplicates_and_garbage() {
    let mut run = Run::new(20, 1000, 8, 3);
    run.shuffle_seed = Some(5);
    run.duplicate = true;
    run.garbage_every = Some(2);
    let outcome = run.go(&config(8, 3), &mut Bernoulli::new(0.1, 20));
    check_block_code(&outcome, 0);
    assert!(outcome.decoder.duplicates > 0);
}

/// The largest shape GF(2^8) allows, and a block of one.
#[test]
fn extreme_shapes() {
    for (k, m) in [(255, 1), (128, 128), (1, 255), (1, 1)] {
        let mut run = Run::new(k as u64, 2 * k as u64, k, m);
        run.max_len = 100;
        let outcome = run.go(&config(k, m), &mut Bernoulli::new(0.05, 7));
        check_block_code(&outcome, 0);
    }
}

/// Blocks closed early (by policy) and a shrinking/growing block length.
#[test]
fn partial_blocks_and_set_window() {
    let config = config(10, 4);
    let mut encoder = Encoder::new(&config).unwrap();
    let mut decoder = Decoder::new(&config).unwrap();
    let adus: Vec<Bytes> = (0..28u8)
        .map(|i| Bytes::from(vec![i; 1 + usize::from(i) * 7]))
        .collect();
    let mut packets = Vec::new();
    for (i, adu) in adus.iter().enumerate() {
        packets.push((Some(i), encoder.protect(1, adu.clone()).unwrap().to_bytes()));
        if i == 2 {
            packets.extend(encoder.repair(1).unwrap().into_iter().map(|p| (None, p)));
            encoder.set_window(5).unwrap();
        }
        if encoder.pending() == 5 && i < 25 {
            packets.extend(encoder.repair(2).unwrap().into_iter().map(|p| (None, p)));
        }
    }
    assert!(matches!(
        encoder.protect(1, Bytes::new()),
        Err(Error::PipelineBlockFull { data: 5 })
    ));
    packets.extend(encoder.flush().unwrap().into_iter().map(|p| (None, p)));
    assert!(encoder.flush().unwrap().is_empty());
    // Lose source 1 (block of 3, 1 repair), 4 and 6 (block of 5, 2 repairs),
    // 25..=27 (last block, closed by flush with 4 repairs).
    let lost = [1usize, 4, 6, 25, 26, 27];
    let mut got = vec![false; adus.len()];
    for (adu, packet) in packets {
        if adu.is_some_and(|a| lost.contains(&a)) {
            continue;
        }
        if let Some(out) = decoder.receive(packet).unwrap() {
            got[adu.unwrap()] = true;
            assert_eq!(out.data, adus[adu.unwrap()]);
        }
        while let Some(out) = decoder.poll_recovered() {
            let index = usize::from(out.data[0]);
            assert_eq!(out.data, adus[index]);
            got[index] = true;
        }
    }
    assert!(got.iter().all(|&g| g), "{got:?}");
    assert_eq!(decoder.counters().recovered, lost.len() as u64);
}

#[test]
fn repair_count_and_adu_length_limits() {
    let mut config = config(4, 2);
    config.set_symbol_size(100);
    let mut encoder = Encoder::new(&config).unwrap();
    assert!(matches!(
        encoder.protect(0, Bytes::from(vec![0; 98])),
        Err(Error::PipelineAduTooLong { len: 98, max: 97 })
    ));
    encoder.protect(0, Bytes::from(vec![0; 97])).unwrap();
    assert!(matches!(
        encoder.repair(3),
        Err(Error::PipelineRepairCount {
            requested: 3,
            max: 2
        })
    ));
    assert_eq!(encoder.repair(2).unwrap().len(), 2);
    assert!(encoder.repair(2).unwrap().is_empty(), "nothing pending");
    assert_eq!(encoder.counters().repairs_sent, 2);
}

/// Blocks too old for the decoder's range are given up and counted.
#[test]
fn old_blocks_are_evicted_and_counted() {
    let mut config = config(4, 1);
    config.set_max_blocks(2);
    let mut encoder = Encoder::new(&config).unwrap();
    let mut decoder = Decoder::new(&config).unwrap();
    let mut blocks = Vec::new();
    for b in 0..4u8 {
        let mut packets = Vec::new();
        for i in 0..4u8 {
            packets.push(
                encoder
                    .protect(0, Bytes::from(vec![b, i]))
                    .unwrap()
                    .to_bytes(),
            );
        }
        packets.extend(encoder.repair(1).unwrap());
        blocks.push(packets);
    }
    // Block 0 loses two sources: unrecoverable once blocks 1 and 2 arrive.
    for (b, packets) in blocks.iter().enumerate() {
        for (i, packet) in packets.iter().enumerate() {
            if b == 0 && i < 2 {
                continue;
            }
            decoder.receive(packet.clone()).unwrap();
        }
    }
    assert_eq!(decoder.counters().unrecoverable, 2);
    // A late source of block 0 still hands out its ADU.
    let late = decoder.receive(blocks[0][0].clone()).unwrap().unwrap();
    assert_eq!(&late.data[..], &[0, 0]);
    assert_eq!(decoder.counters().late, 1);
}

/// Blocks whose ADU sizes grow mid-block (the encoder widens its symbol
/// layout) and shrink again, for both block codes: every single loss in
/// every block is repaired byte for byte.
#[test]
fn adu_sizes_changing_between_and_within_blocks() {
    let lengths: [&[usize]; 5] = [
        &[10, 20, 5, 1],
        &[3, 3, 900, 4],
        &[1400, 2, 0, 1400],
        &[7, 7, 7, 7],
        &[0, 1, 2, 1000],
    ];
    for scheme in [
        Scheme::ReedSolomon { data: 4, parity: 1 },
        Scheme::RaptorQ {
            source_symbols: 4,
            repair_symbols: 3,
        },
    ] {
        for lost in 0..4 {
            let config = Config::new(scheme.clone());
            let mut encoder = Encoder::new(&config).unwrap();
            let mut decoder = Decoder::new(&config).unwrap();
            for (b, block) in lengths.iter().enumerate() {
                let adus: Vec<Bytes> = block
                    .iter()
                    .enumerate()
                    .map(|(i, &len)| {
                        Bytes::from(
                            (0..len)
                                .map(|j| (j * 31 + i * 7 + b) as u8)
                                .collect::<Vec<u8>>(),
                        )
                    })
                    .collect();
                for (i, adu) in adus.iter().enumerate() {
                    let packet = encoder.protect(b as u8, adu.clone()).unwrap().to_bytes();
                    if i != lost {
                        decoder.receive(packet).unwrap();
                    }
                }
                // RaptorQ may need more than one repair for a single loss.
                for repair in encoder.flush().unwrap() {
                    decoder.receive(repair).unwrap();
                }
                let adu = decoder
                    .poll_recovered()
                    .unwrap_or_else(|| panic!("{scheme:?} block {b} lost {lost}"));
                assert_eq!(
                    (adu.flow, &adu.data),
                    (b as u8, &adus[lost]),
                    "{scheme:?} block {b}"
                );
                assert!(decoder.poll_recovered().is_none());
            }
        }
    }
}
