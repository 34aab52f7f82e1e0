//! Interoperability with reed-solomon-erasure 6 (`galois_8`): identical
//! parity for every shape we try, and shards from either library repaired
//! and verified by the other.

use fec_core::rs::ReedSolomon;
use quickcheck::{Arbitrary, Gen, QuickCheck};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reed_solomon_erasure::galois_8::ReedSolomon as Reference;

fn random_data(rng: &mut StdRng, count: usize, len: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|_| (0..len).map(|_| rng.gen()).collect())
        .collect()
}

/// Encodes random data with both libraries and compares every parity byte.
fn assert_same_parity(data: usize, parity: usize, len: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ours = random_data(&mut rng, data, len);
    ours.extend((0..parity).map(|_| vec![0xA5u8; len]));
    let mut theirs = ours.clone();
    ReedSolomon::new(data, parity)
        .unwrap()
        .encode(&mut ours)
        .unwrap();
    Reference::new(data, parity)
        .unwrap()
        .encode(&mut theirs)
        .unwrap();
    for (j, (a, b)) in ours[data..].iter().zip(&theirs[data..]).enumerate() {
        assert!(a == b, "parity {j} differs for {data}+{parity}, len {len}");
    }
}

#[test]
fn parity_matches_reference_for_every_small_shape() {
    for data in 1..=16 {
        for parity in 1..=16 {
            let len = 1 + (data * 31 + parity * 7) % 67;
            assert_same_parity(data, parity, len, (data * 100 + parity) as u64);
        }
    }
}

#[test]
fn parity_matches_reference_for_large_shapes() {
    for (data, parity, len) in [
        (200, 56, 33),
        (128, 128, 17),
        (1, 255, 9),
        (255, 1, 100),
        (10, 4, 65536 + 3),
        (32, 8, 1280),
    ] {
        assert_same_parity(data, parity, len, (data * 1000 + parity) as u64);
    }
}

/// A code shape with data + parity <= 256, a shard length and a content seed.
#[derive(Clone, Debug)]
struct Shape {
    data: usize,
    parity: usize,
    len: usize,
    seed: u64,
}

impl Arbitrary for Shape {
    fn arbitrary(g: &mut Gen) -> Shape {
        let data = 1 + usize::arbitrary(g) % 255;
        let parity = 1 + usize::arbitrary(g) % (256 - data);
        // Large codes with long shards are slow in the unoptimised reference;
        // keep the product moderate so the test stays within seconds.
        let max_len = (3000 * 64 / (data * parity)).clamp(1, 3000);
        let len = 1 + usize::arbitrary(g) % max_len;
        Shape {
            data,
            parity,
            len,
            seed: u64::arbitrary(g),
        }
    }
}

#[test]
fn parity_matches_reference_for_random_shapes() {
    fn property(shape: Shape) -> bool {
        assert_same_parity(shape.data, shape.parity, shape.len, shape.seed);
        true
    }
    // Each case builds an unoptimised reference codec (O(k^3)), so few cases;
    // rs_vectors.rs pins every data count exhaustively.
    QuickCheck::new()
        .tests(10)
        .quickcheck(property as fn(Shape) -> bool);
}

#[test]
fn parity_matches_reference_for_random_lengths_up_to_3000() {
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..30 {
        let data = rng.gen_range(1..=24);
        let parity = rng.gen_range(1..=8);
        let len = rng.gen_range(1..=3000);
        assert_same_parity(data, parity, len, rng.gen());
    }
}

/// Drops `lost` distinct random shards.
fn erase(shards: &[Vec<u8>], lost: usize, rng: &mut StdRng) -> Vec<Option<Vec<u8>>> {
    let mut received: Vec<Option<Vec<u8>>> = shards.iter().cloned().map(Some).collect();
    let mut dropped = 0;
    while dropped < lost {
        let i = rng.gen_range(0..shards.len());
        if received[i].take().is_some() {
            dropped += 1;
        }
    }
    received
}

#[test]
fn shards_cross_between_the_libraries() {
    let mut rng = StdRng::seed_from_u64(42);
    for (data, parity, len) in [(3, 2, 10), (10, 4, 500), (32, 8, 1280), (17, 33, 50)] {
        let ours = ReedSolomon::new(data, parity).unwrap();
        let theirs = Reference::new(data, parity).unwrap();
        for round in 0..6 {
            let mut shards = random_data(&mut rng, data, len);
            shards.extend((0..parity).map(|_| vec![0u8; len]));
            // Alternate which side encodes.
            if round % 2 == 0 {
                theirs.encode(&mut shards).unwrap();
            } else {
                ours.encode(&mut shards).unwrap();
            }
            assert!(ours.verify(&shards).unwrap());
            assert!(theirs.verify(&shards).unwrap());

            let lost = rng.gen_range(1..=parity);
            let received = erase(&shards, lost, &mut rng);

            let mut by_us = received.clone();
            ours.reconstruct(&mut by_us).unwrap();
            let mut by_them = received.clone();
            theirs.reconstruct(&mut by_them).unwrap();
            let expected: Vec<Option<Vec<u8>>> = shards.iter().cloned().map(Some).collect();
            assert_eq!(by_us, expected);
            assert_eq!(by_them, expected);

            let mut data_by_us = received.clone();
            ours.reconstruct_data(&mut data_by_us).unwrap();
            let mut data_by_them = received;
            theirs.reconstruct_data(&mut data_by_them).unwrap();
            assert_eq!(data_by_us, data_by_them);
        }
    }
}

#[test]
fn verify_agrees_with_reference_on_corrupted_shards() {
    let mut rng = StdRng::seed_from_u64(3);
    let (data, parity, len) = (6, 3, 200);
    let ours = ReedSolomon::new(data, parity).unwrap();
    let theirs = Reference::new(data, parity).unwrap();
    let mut shards = random_data(&mut rng, data, len);
    shards.extend((0..parity).map(|_| vec![0u8; len]));
    ours.encode(&mut shards).unwrap();
    for _ in 0..50 {
        let mut corrupted = shards.clone();
        let i = rng.gen_range(0..data + parity);
        let at = rng.gen_range(0..len);
        corrupted[i][at] ^= rng.gen_range(1..=255u8);
        assert!(!ours.verify(&corrupted).unwrap());
        assert!(!theirs.verify(&corrupted).unwrap());
    }
}
