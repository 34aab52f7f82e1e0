//! Interoperability with reed-solomon-simd 3: identical recovery shards for
//! every shape tried (both rates, shard sizes that are not multiples of 64),
//! each library decoding the other's shards under random losses, and the
//! same restored bytes even from exactly `k` shards that are not a codeword
//! (the decode is the same linear map, not just a decoder of the same code).
//!
//! reed-solomon-simd runs unoptimised in the test profile, so the largest
//! shapes compare its encode only and decode with ours.

use std::collections::HashMap;

use fec_core::rs16;
use quickcheck::{Arbitrary, Gen, QuickCheck};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

fn random_shards(rng: &mut StdRng, count: usize, len: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|_| (0..len).map(|_| rng.gen()).collect())
        .collect()
}

/// Both libraries' recovery shards for random originals, asserted equal.
fn encode_both(k: usize, m: usize, original: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let ours = rs16::encode(k, m, original).unwrap();
    let theirs = reed_solomon_simd::encode(k, m, original).unwrap();
    assert_eq!(ours.len(), m);
    let len = original[0].len();
    for (r, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert!(a == b, "recovery {r} differs for {k}:{m}, {len} bytes");
    }
    ours
}

/// A random set of received shards: every original and recovery index is
/// dropped with the same probability, then shards are put back at random
/// until at least `k` remain. Returned sorted (original, recovery).
fn random_loss(rng: &mut StdRng, k: usize, m: usize) -> (Vec<usize>, Vec<usize>) {
    let mut points: Vec<(bool, usize)> = (0..k)
        .map(|i| (true, i))
        .chain((0..m).map(|i| (false, i)))
        .collect();
    points.shuffle(rng);
    // Keep between k and k + m shards, k most often (the hardest case).
    let keep = if rng.gen_bool(0.5) {
        k
    } else {
        rng.gen_range(k..=k + m)
    };
    points.truncate(keep);
    let mut original: Vec<usize> = points.iter().filter(|p| p.0).map(|p| p.1).collect();
    let mut recovery: Vec<usize> = points.iter().filter(|p| !p.0).map(|p| p.1).collect();
    original.sort_unstable();
    recovery.sort_unstable();
    (original, recovery)
}

fn ours_decode(
    k: usize,
    m: usize,
    original: &[Vec<u8>],
    recovery: &[Vec<u8>],
    kept: &(Vec<usize>, Vec<usize>),
) -> HashMap<usize, Vec<u8>> {
    rs16::decode(
        k,
        m,
        kept.0.iter().map(|&i| (i, &original[i])),
        kept.1.iter().map(|&i| (i, &recovery[i])),
    )
    .unwrap()
}

fn theirs_decode(
    k: usize,
    m: usize,
    original: &[Vec<u8>],
    recovery: &[Vec<u8>],
    kept: &(Vec<usize>, Vec<usize>),
) -> HashMap<usize, Vec<u8>> {
    reed_solomon_simd::decode(
        k,
        m,
        kept.0.iter().map(|&i| (i, &original[i])),
        kept.1.iter().map(|&i| (i, &recovery[i])),
    )
    .unwrap()
    .into_iter()
    .collect()
}

fn assert_restores(
    k: usize,
    original: &[Vec<u8>],
    kept: &[usize],
    restored: &HashMap<usize, Vec<u8>>,
    what: &str,
) {
    let lost: Vec<usize> = (0..k).filter(|i| kept.binary_search(i).is_err()).collect();
    assert_eq!(restored.len(), lost.len(), "{what}: restored count");
    for i in lost {
        assert!(restored[&i] == original[i], "{what}: original {i}");
    }
}

/// Encode with both and decode a random loss with ours; with `oracle`,
/// decode it with reed-solomon-simd too (from our shards, which are its own
/// bytes), and decode non-codeword shards with both expecting the same
/// output. The oracle's decode is the slow part (it runs unoptimised).
fn check(k: usize, m: usize, len: usize, seed: u64, oracle: bool) {
    let mut rng = StdRng::seed_from_u64(seed);
    let original = random_shards(&mut rng, k, len);
    let recovery = encode_both(k, m, &original);
    let kept = random_loss(&mut rng, k, m);
    let what = format!("{k}:{m}, {len} bytes, seed {seed}");
    let ours = ours_decode(k, m, &original, &recovery, &kept);
    assert_restores(k, &original, &kept.0, &ours, &what);
    if !oracle {
        return;
    }
    let theirs = theirs_decode(k, m, &original, &recovery, &kept);
    assert_restores(k, &original, &kept.0, &theirs, &what);

    // With exactly k shards the decode is the one linear map every correct
    // decoder computes; surplus recovery shards are dropped for this part
    // (a decoder may read any k of them; ours reads the first few).
    let mut exact = kept.clone();
    exact.1.truncate(k - exact.0.len());
    let noise = random_shards(&mut rng, m, len);
    let ours = ours_decode(k, m, &original, &noise, &exact);
    let theirs = theirs_decode(k, m, &original, &noise, &exact);
    assert!(ours == theirs, "{what}: decodes of noise differ");
}

#[test]
fn every_small_shape_matches() {
    for k in 1..=20 {
        for m in 1..=20 {
            let len = 2 + 2 * ((k * 7 + m * 3) % 70);
            check(k, m, len, (k * 100 + m) as u64, (k + m) % 7 == 0);
        }
    }
}

/// A shape of at most `max` shards per side, a shard size and a seed.
#[derive(Clone, Debug)]
struct Case {
    k: usize,
    m: usize,
    len: usize,
    seed: u64,
}

fn case(g: &mut Gen, max: usize, max_len: usize) -> Case {
    // Half the time near a power of two, where the rate and chunking change.
    let count = |g: &mut Gen| {
        if bool::arbitrary(g) {
            let p = 1usize << (usize::arbitrary(g) % (max.ilog2() as usize + 1));
            (p + usize::arbitrary(g) % 3)
                .saturating_sub(1)
                .clamp(1, max)
        } else {
            1 + usize::arbitrary(g) % max
        }
    };
    Case {
        k: count(g),
        m: count(g),
        len: 2 + 2 * (usize::arbitrary(g) % (max_len / 2)),
        seed: u64::arbitrary(g),
    }
}

#[derive(Clone, Debug)]
struct SmallCase(Case);

impl Arbitrary for SmallCase {
    fn arbitrary(g: &mut Gen) -> Self {
        SmallCase(case(g, 300, 300))
    }
}

#[derive(Clone, Debug)]
struct MediumCase(Case);

impl Arbitrary for MediumCase {
    fn arbitrary(g: &mut Gen) -> Self {
        MediumCase(case(g, 3000, 130))
    }
}

#[test]
fn random_small_shapes_sizes_and_losses_match() {
    fn prop(c: SmallCase) -> bool {
        let c = c.0;
        check(c.k, c.m, c.len, c.seed, true);
        true
    }
    QuickCheck::new()
        .tests(25)
        .quickcheck(prop as fn(SmallCase) -> bool);
}

#[test]
fn random_medium_shapes_match() {
    fn prop(c: MediumCase) -> bool {
        let c = c.0;
        check(c.k, c.m, c.len, c.seed, true);
        true
    }
    QuickCheck::new()
        .tests(8)
        .quickcheck(prop as fn(MediumCase) -> bool);
}

/// The extremes reed-solomon-simd accepts: 65535 or 65536 shards in total,
/// many chunks at either rate, both rates at equal powers of two. Encodes are
/// compared; our decode restores the originals from the recovery shards.
#[test]
fn extreme_shapes_match() {
    for (k, m, len) in [
        (32768, 32768, 2),
        (60000, 3000, 2),
        (500, 30000, 66),
        (65535, 1, 4),
        (1, 65535, 4),
        (2049, 2048, 130),
        (2048, 2049, 130),
    ] {
        let mut rng = StdRng::seed_from_u64((k * 7 + m) as u64);
        let original = random_shards(&mut rng, k, len);
        let recovery = encode_both(k, m, &original);
        let kept: (Vec<usize>, Vec<usize>) = if k > m {
            (((m)..k).collect(), (0..m).collect())
        } else {
            (vec![], (0..k).collect())
        };
        let ours = ours_decode(k, m, &original, &recovery, &kept);
        assert_restores(k, &original, &kept.0, &ours, &format!("{k}:{m}"));
    }
}

/// Shard sizes around the 64-byte block boundary, one shape per rate.
#[test]
fn shard_sizes_around_block_boundaries_match() {
    for len in [
        2, 4, 30, 32, 34, 62, 64, 66, 94, 96, 126, 128, 130, 190, 1280, 1282,
    ] {
        check(5, 3, len, len as u64, len % 4 == 2);
        check(3, 5, len, len as u64 + 1, len % 4 == 0);
    }
}

/// Every original lost with all recovery shards kept, and every recovery
/// shard lost with all originals kept (nothing to do).
#[test]
fn boundary_loss_patterns() {
    for (k, m) in [(100, 20), (20, 100), (64, 64), (1000, 1000), (3, 1), (1, 3)] {
        let mut rng = StdRng::seed_from_u64((k + m) as u64);
        let original = random_shards(&mut rng, k, 34);
        let recovery = encode_both(k, m, &original);
        let lose = k.min(m);
        let kept = ((lose..k).collect::<Vec<_>>(), (0..m).collect::<Vec<_>>());
        let ours = ours_decode(k, m, &original, &recovery, &kept);
        assert_restores(k, &original, &kept.0, &ours, &format!("{k}:{m}"));
        let all = ((0..k).collect::<Vec<_>>(), vec![]);
        assert!(ours_decode(k, m, &original, &recovery, &all).is_empty());
    }
}

/// Large shards (21, 17 and 32 blocks, two with tails) on codes of a few
/// hundred shards, including the oracle's decode of non-codewords.
#[test]
fn large_shards_match() {
    for (k, m, len) in [(300, 300, 1282), (600, 100, 1030), (100, 700, 2046)] {
        check(k, m, len, (k + m + len) as u64, true);
    }
}

/// The high-rate encoder transforms each chunk as its last original
/// arrives; an interrupted stream must still give reed-solomon-simd's
/// bytes: an `encode` before every original is in (refused, originals
/// kept), a shard of the wrong size in the middle of a chunk (refused,
/// nothing changed), a `reset` in the middle of a chunk, and the next
/// encode on the same encoder. Shapes with several chunks, a short last
/// chunk, and fewer originals than one chunk.
#[test]
fn interrupted_streams_encode_the_same_bytes() {
    use fec_core::rs16::ReedSolomonEncoder;
    use fec_core::Error;

    let mut rng = StdRng::seed_from_u64(0x57e4);
    for &(k, m, len) in &[
        (100, 20, 96),
        (300, 40, 64),
        (17, 4, 34),
        (3, 4, 130),
        (64, 8, 2),
    ] {
        let what = format!("{k}:{m}, {len} bytes");
        let mut encoder = ReedSolomonEncoder::new(k, m, len).unwrap();
        for round in 0..3 {
            let original = random_shards(&mut rng, k, len);
            let expected = reed_solomon_simd::encode(k, m, &original).unwrap();
            // Half the originals, then a reset: the stream starts over.
            for shard in &original[..k / 2] {
                encoder.add_original_shard(shard).unwrap();
            }
            if round == 1 {
                encoder.reset(k, m, len).unwrap();
            }
            let start = if round == 1 { 0 } else { k / 2 };
            let middle = start + (k - start) / 2;
            for shard in &original[start..middle] {
                encoder.add_original_shard(shard).unwrap();
            }
            // Every shape here leaves originals for after this point.
            assert!(middle < k, "{what}: nothing left to add");
            assert!(
                matches!(
                    encoder.encode(),
                    Err(Error::Rs16TooFewOriginalShards { .. })
                ),
                "{what}: an early encode was not refused"
            );
            assert!(
                matches!(
                    encoder.add_original_shard(vec![0u8; len + 2]),
                    Err(Error::Rs16DifferentShardSize { .. })
                ),
                "{what}: a long shard was taken"
            );
            for shard in &original[middle..] {
                encoder.add_original_shard(shard).unwrap();
            }
            let result = encoder.encode().unwrap();
            let ours: Vec<&[u8]> = result.recovery_iter().collect();
            assert_eq!(ours.len(), m, "{what}");
            for (r, (a, b)) in ours.iter().zip(&expected).enumerate() {
                assert!(*a == &b[..], "{what}, round {round}: recovery {r} differs");
            }
        }
    }
}
