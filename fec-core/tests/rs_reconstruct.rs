//! Reconstruction properties: any loss pattern of up to `parity` shards is
//! repaired exactly, more losses are refused without touching the shards,
//! and every GF(2^8) backend decodes the same way.

use std::sync::Arc;

use fec_core::gf256::{Backend, Engine};
use fec_core::rs::ReedSolomon;
use fec_core::Error;
use quickcheck::{Arbitrary, Gen, QuickCheck};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

fn encoded(rs: &ReedSolomon, len: usize, rng: &mut StdRng) -> Vec<Vec<u8>> {
    let mut shards: Vec<Vec<u8>> = (0..rs.total_shard_count())
        .map(|_| (0..len).map(|_| rng.gen()).collect())
        .collect();
    rs.encode(&mut shards).unwrap();
    shards
}

/// `shards` with the shards at `lost` replaced by `None`.
fn without(shards: &[Vec<u8>], lost: &[usize]) -> Vec<Option<Vec<u8>>> {
    shards
        .iter()
        .enumerate()
        .map(|(i, s)| (!lost.contains(&i)).then(|| s.clone()))
        .collect()
}

/// A code, a shard length and a loss pattern of up to `parity` shards.
#[derive(Clone, Debug)]
struct Losses {
    data: usize,
    parity: usize,
    len: usize,
    lost: Vec<usize>,
    seed: u64,
}

impl Arbitrary for Losses {
    fn arbitrary(g: &mut Gen) -> Losses {
        let data = 1 + usize::arbitrary(g) % 64;
        let parity = 1 + usize::arbitrary(g) % 32;
        let len = 1 + usize::arbitrary(g) % 300;
        let seed = u64::arbitrary(g);
        let mut rng = StdRng::seed_from_u64(seed);
        let mut all: Vec<usize> = (0..data + parity).collect();
        all.shuffle(&mut rng);
        let count = rng.gen_range(0..=parity);
        all.truncate(count);
        Losses {
            data,
            parity,
            len,
            lost: all,
            seed,
        }
    }
}

#[test]
fn reconstruct_repairs_any_pattern_within_parity() {
    fn property(case: Losses) -> bool {
        let rs = ReedSolomon::new(case.data, case.parity).unwrap();
        let mut rng = StdRng::seed_from_u64(case.seed);
        let shards = encoded(&rs, case.len, &mut rng);
        let mut received = without(&shards, &case.lost);
        rs.reconstruct(&mut received).unwrap();
        received.into_iter().map(Option::unwrap).collect::<Vec<_>>() == shards
    }
    QuickCheck::new()
        .tests(200)
        .quickcheck(property as fn(Losses) -> bool);
}

#[test]
fn reconstruct_data_repairs_data_and_leaves_parity_missing() {
    fn property(case: Losses) -> bool {
        let rs = ReedSolomon::new(case.data, case.parity).unwrap();
        let mut rng = StdRng::seed_from_u64(case.seed);
        let shards = encoded(&rs, case.len, &mut rng);
        let mut received = without(&shards, &case.lost);
        rs.reconstruct_data(&mut received).unwrap();
        received.iter().enumerate().all(|(i, s)| {
            if i < case.data || !case.lost.contains(&i) {
                s.as_deref() == Some(&shards[i][..])
            } else {
                s.is_none()
            }
        })
    }
    QuickCheck::new()
        .tests(200)
        .quickcheck(property as fn(Losses) -> bool);
}

#[test]
fn too_many_losses_are_refused_and_nothing_changes() {
    let mut rng = StdRng::seed_from_u64(11);
    for (data, parity) in [(1, 1), (3, 2), (10, 4), (32, 8), (100, 100)] {
        let rs = ReedSolomon::new(data, parity).unwrap();
        let shards = encoded(&rs, 16, &mut rng);
        for extra in [1, 2, parity] {
            let count = (parity + extra).min(data + parity);
            let mut order: Vec<usize> = (0..data + parity).collect();
            order.shuffle(&mut rng);
            let lost = &order[..count];
            let before = without(&shards, lost);
            for data_only in [false, true] {
                let mut received = before.clone();
                let result = if data_only {
                    rs.reconstruct_data(&mut received)
                } else {
                    rs.reconstruct(&mut received)
                };
                assert_eq!(
                    result,
                    Err(Error::TooFewShardsPresent {
                        present: data + parity - count,
                        needed: data,
                    })
                );
                assert_eq!(received, before);
            }
        }
    }
}

#[test]
fn nothing_missing_is_a_no_op() {
    let mut rng = StdRng::seed_from_u64(5);
    let rs = ReedSolomon::new(5, 3).unwrap();
    let shards = encoded(&rs, 40, &mut rng);
    let mut received = without(&shards, &[]);
    rs.reconstruct(&mut received).unwrap();
    assert_eq!(received, without(&shards, &[]));
    // Only parity lost: reconstruct_data has nothing to do.
    let mut received = without(&shards, &[5, 7]);
    rs.reconstruct_data(&mut received).unwrap();
    assert_eq!(received, without(&shards, &[5, 7]));
    assert_eq!(rs.cached_patterns(), 0);
}

#[test]
fn config_c_loses_every_data_shard_it_can() {
    // 200 + 50 with 50 data shards lost, the decode the benches time.
    let mut rng = StdRng::seed_from_u64(200);
    let rs = ReedSolomon::new(200, 50).unwrap();
    let shards = encoded(&rs, 1280, &mut rng);
    let mut order: Vec<usize> = (0..200).collect();
    order.shuffle(&mut rng);
    let lost = &order[..50];
    for _ in 0..2 {
        let mut received = without(&shards, lost);
        rs.reconstruct_data(&mut received).unwrap();
        assert_eq!(
            received.into_iter().map(Option::unwrap).collect::<Vec<_>>(),
            shards
        );
    }
    assert_eq!(rs.cached_patterns(), 1);
}

#[test]
fn every_backend_encodes_and_decodes_alike() {
    let mut rng = StdRng::seed_from_u64(9);
    let reference = ReedSolomon::with_engine(20, 6, Engine::new(Backend::Scalar).unwrap()).unwrap();
    for backend in Backend::supported() {
        let rs = ReedSolomon::with_engine(20, 6, Engine::new(backend).unwrap()).unwrap();
        assert_eq!(rs.parity_coefficients(), reference.parity_coefficients());
        for len in [1, 15, 64, 1000, 4099] {
            let shards = encoded(&reference, len, &mut rng);
            let mut ours = shards.clone();
            rs.encode(&mut ours).unwrap();
            assert_eq!(ours, shards, "{backend} encode, len {len}");
            let mut order: Vec<usize> = (0..26).collect();
            order.shuffle(&mut rng);
            let mut received = without(&shards, &order[..6]);
            rs.reconstruct(&mut received).unwrap();
            assert_eq!(
                received,
                without(&shards, &[]),
                "{backend} decode, len {len}"
            );
        }
    }
}

#[test]
fn concurrent_decoders_share_one_code() {
    let rs = Arc::new(ReedSolomon::new(12, 4).unwrap());
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let rs = Arc::clone(&rs);
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(t);
                for _ in 0..50 {
                    let shards = encoded(&rs, 100, &mut rng);
                    let mut order: Vec<usize> = (0..16).collect();
                    order.shuffle(&mut rng);
                    let mut received = without(&shards, &order[..4]);
                    rs.reconstruct(&mut received).unwrap();
                    assert_eq!(received, without(&shards, &[]));
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
}

#[test]
fn encode_sep_matches_encode() {
    let mut rng = StdRng::seed_from_u64(1);
    let rs = ReedSolomon::new(7, 3).unwrap();
    let shards = encoded(&rs, 333, &mut rng);
    let mut parity = vec![vec![0u8; 333]; 3];
    rs.encode_sep(&shards[..7], &mut parity).unwrap();
    assert_eq!(parity, shards[7..]);
}
