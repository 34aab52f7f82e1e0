//! The reusable encoder and decoder: rounds on one shape, then `reset` to
//! other shapes and back, always the one-shot functions' bytes (which the
//! interop tests pin to reed-solomon-simd's).

use fec_core::rs16::{self, ReedSolomonDecoder, ReedSolomonEncoder};
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};

fn shards(rng: &mut StdRng, count: usize, len: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|_| (0..len).map(|_| rng.gen()).collect())
        .collect()
}

#[test]
fn one_encoder_and_decoder_serve_many_rounds_and_shapes() {
    let mut rng = StdRng::seed_from_u64(0x5e5e);
    let mut encoder = ReedSolomonEncoder::new(10, 4, 64).unwrap();
    let mut decoder = ReedSolomonDecoder::new(10, 4, 64).unwrap();
    // Both rates, growing and shrinking buffers, tails, and back to the start.
    let shapes = [
        (10, 4, 64),
        (10, 4, 64),
        (4, 10, 130),
        (300, 40, 2),
        (40, 300, 1000),
        (1, 1, 2),
        (10, 4, 64),
    ];
    for (round, &(k, m, len)) in shapes.iter().enumerate() {
        encoder.reset(k, m, len).unwrap();
        decoder.reset(k, m, len).unwrap();
        for _ in 0..2 {
            let original = shards(&mut rng, k, len);
            for shard in &original {
                encoder.add_original_shard(shard).unwrap();
            }
            let recovery: Vec<Vec<u8>> = encoder
                .encode()
                .unwrap()
                .recovery_iter()
                .map(<[u8]>::to_vec)
                .collect();
            assert_eq!(
                recovery,
                rs16::encode(k, m, &original).unwrap(),
                "round {round}"
            );

            // Lose up to m originals, keep exactly k shards.
            let lost = rng.gen_range(0..=m.min(k));
            let mut gone = sample(&mut rng, k, lost).into_vec();
            gone.sort_unstable();
            for (i, shard) in original.iter().enumerate() {
                if gone.binary_search(&i).is_err() {
                    decoder.add_original_shard(i, shard).unwrap();
                }
            }
            for (i, shard) in recovery.iter().enumerate().take(lost) {
                decoder.add_recovery_shard(i, shard).unwrap();
            }
            let result = decoder.decode().unwrap();
            let restored: Vec<(usize, Vec<u8>)> = result
                .restored_original_iter()
                .map(|(i, s)| (i, s.to_vec()))
                .collect();
            assert_eq!(
                restored.iter().map(|r| r.0).collect::<Vec<_>>(),
                gone,
                "round {round}"
            );
            for (i, shard) in &restored {
                assert!(shard == &original[*i], "round {round}, original {i}");
            }
        }
    }
}
