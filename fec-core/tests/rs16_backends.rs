//! Every backend this CPU supports against the scalar one through the public
//! encoder and decoder: the same recovery shards and the same restored
//! originals for random shapes (both rates, several chunks), shard sizes
//! (tails included) and losses, seeded.

use fec_core::gf256::{Backend, Engine};
use fec_core::rs16::{ReedSolomonDecoder, ReedSolomonEncoder};
use quickcheck::{Arbitrary, Gen, QuickCheck};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

#[derive(Clone, Debug)]
struct Case {
    k: usize,
    m: usize,
    len: usize,
    seed: u64,
}

impl Arbitrary for Case {
    fn arbitrary(g: &mut Gen) -> Self {
        let count = |g: &mut Gen| {
            let max = if u8::arbitrary(g) % 4 == 0 { 2500 } else { 90 };
            1 + usize::arbitrary(g) % max
        };
        Case {
            k: count(g),
            m: count(g),
            len: 2 + 2 * (usize::arbitrary(g) % 100),
            seed: u64::arbitrary(g),
        }
    }
}

fn encode(engine: Engine, k: usize, m: usize, original: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut encoder = ReedSolomonEncoder::with_engine(k, m, original[0].len(), engine).unwrap();
    assert_eq!(encoder.engine(), engine);
    for shard in original {
        encoder.add_original_shard(shard).unwrap();
    }
    let result = encoder.encode().unwrap();
    result.recovery_iter().map(<[u8]>::to_vec).collect()
}

fn decode(
    engine: Engine,
    k: usize,
    m: usize,
    len: usize,
    original: &[(usize, &Vec<u8>)],
    recovery: &[(usize, &Vec<u8>)],
) -> Vec<(usize, Vec<u8>)> {
    let mut decoder = ReedSolomonDecoder::with_engine(k, m, len, engine).unwrap();
    for &(i, shard) in original {
        decoder.add_original_shard(i, shard).unwrap();
    }
    for &(i, shard) in recovery {
        decoder.add_recovery_shard(i, shard).unwrap();
    }
    let result = decoder.decode().unwrap();
    result
        .restored_original_iter()
        .map(|(i, s)| (i, s.to_vec()))
        .collect()
}

fn prop(c: Case) -> bool {
    let Case { k, m, len, seed } = c;
    let mut rng = StdRng::seed_from_u64(seed);
    let original: Vec<Vec<u8>> = (0..k)
        .map(|_| (0..len).map(|_| rng.gen()).collect())
        .collect();
    let scalar = Engine::new(Backend::Scalar).unwrap();
    let reference = encode(scalar, k, m, &original);
    // Keep exactly k random shards; the recovery side is random bytes half
    // the time, so the decoders must agree on non-codewords as well.
    let noise = rng.gen_bool(0.5);
    let recovery: Vec<Vec<u8>> = if noise {
        (0..m)
            .map(|_| (0..len).map(|_| rng.gen()).collect())
            .collect()
    } else {
        reference.clone()
    };
    let mut points: Vec<(bool, usize)> = (0..k)
        .map(|i| (true, i))
        .chain((0..m).map(|i| (false, i)))
        .collect();
    points.shuffle(&mut rng);
    points.truncate(k);
    let kept_original: Vec<(usize, &Vec<u8>)> = points
        .iter()
        .filter(|p| p.0)
        .map(|p| (p.1, &original[p.1]))
        .collect();
    let kept_recovery: Vec<(usize, &Vec<u8>)> = points
        .iter()
        .filter(|p| !p.0)
        .map(|p| (p.1, &recovery[p.1]))
        .collect();
    let restored = decode(scalar, k, m, len, &kept_original, &kept_recovery);
    if !noise {
        for (i, shard) in &restored {
            assert!(shard == &original[*i], "scalar decode of original {i}");
        }
    }
    for backend in Backend::supported() {
        let engine = Engine::new(backend).unwrap();
        assert!(
            encode(engine, k, m, &original) == reference,
            "{backend} encode of {k}:{m}, {len} bytes"
        );
        assert!(
            decode(engine, k, m, len, &kept_original, &kept_recovery) == restored,
            "{backend} decode of {k}:{m}, {len} bytes"
        );
    }
    true
}

#[test]
fn every_backend_matches_scalar() {
    QuickCheck::new()
        .tests(60)
        .quickcheck(prop as fn(Case) -> bool);
}
