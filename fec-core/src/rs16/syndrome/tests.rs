//! The syndrome route against the locator route on the same shards, on
//! every backend this CPU has, and the cost model's choice.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::{plan, Scratch};
use crate::gf256::{Backend, Engine};
use crate::rs16::decoder::{Layout, Route};
use crate::rs16::{encode, ReedSolomonDecoder, Shape};

fn shards(rng: &mut StdRng, count: usize, len: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|_| (0..len).map(|_| rng.gen()).collect())
        .collect()
}

/// Decodes on `engine` by `route` from the originals not in `lost` and the
/// recovery shards `kept`; the restored originals in index order.
fn decode(
    engine: Engine,
    route: Route,
    (k, m): (usize, usize),
    original: &[Vec<u8>],
    recovery: &[Vec<u8>],
    lost: &[usize],
    kept: &[usize],
) -> Vec<(usize, Vec<u8>)> {
    let len = original[0].len();
    let mut decoder = ReedSolomonDecoder::with_engine(k, m, len, engine).unwrap();
    decoder.set_route(route);
    for (i, shard) in original.iter().enumerate() {
        if !lost.contains(&i) {
            decoder.add_original_shard(i, shard).unwrap();
        }
    }
    for &r in kept {
        decoder.add_recovery_shard(r, &recovery[r]).unwrap();
    }
    let result = decoder.decode().unwrap();
    result
        .restored_original_iter()
        .map(|(i, s)| (i, s.to_vec()))
        .collect()
}

fn engines() -> Vec<Engine> {
    [
        Backend::Scalar,
        Backend::Ssse3,
        Backend::Avx2,
        Backend::Avx512,
        Backend::Gfni,
    ]
    .into_iter()
    .filter_map(Engine::new)
    .collect()
}

/// Random shapes of both rates and random losses: both routes restore the
/// originals, and from exactly `k` noise shards they restore the same bytes.
#[test]
fn routes_agree_on_random_losses() {
    let mut rng = StdRng::seed_from_u64(0x5d);
    // Rounds that could not take the syndrome route (`Route::Syndrome`
    // falls back to the locator), then rounds that did; for every shard
    // kept and for exactly k shards.
    let mut taken = [0usize; 2];
    let mut taken_exact = [0usize; 2];
    for round in 0..160 {
        let k = rng.gen_range(1..=300);
        let m = rng.gen_range(1..=300);
        let len = 2 * rng.gen_range(1..=100);
        let original = shards(&mut rng, k, len);
        let recovery = encode(k, m, &original).unwrap();
        let mut lost: Vec<usize> = (0..k).collect();
        lost.shuffle(&mut rng);
        lost.truncate(rng.gen_range(1..=k.min(m)));
        lost.sort_unstable();
        // Every recovery shard, or exactly as many as lost; at low rate the
        // syndrome route needs them in one coset of the chunk's subspace
        // (recovery indices `t c .. (t + 1) c`), so half the time they are.
        let mut kept: Vec<usize> = (0..m).collect();
        kept.shuffle(&mut rng);
        if round % 2 == 0 {
            let s = Shape::new(k, m, len).unwrap();
            let c = s.chunk();
            if !s.high_rate && round % 4 == 0 {
                let coset = rng.gen_range(0..m.div_ceil(c));
                kept.retain(|r| r / c == coset);
            }
            kept.truncate(lost.len());
        }
        kept.sort_unstable();
        if kept.len() < lost.len() {
            // That coset was too small; give the decoder every shard.
            kept = (0..m).collect();
        }
        let syndromes = takes_syndromes((k, m, len), &lost, &kept);
        let expected: Vec<(usize, Vec<u8>)> =
            lost.iter().map(|&i| (i, original[i].clone())).collect();
        let noise = shards(&mut rng, m, len);
        let mut exact = kept.clone();
        exact.truncate(lost.len());
        let what = format!("{k}:{m}, {len} bytes, {} lost", lost.len());
        let reference = decode(
            engines()[0],
            Route::Locator,
            (k, m),
            &original,
            &noise,
            &lost,
            &exact,
        );
        let exact_syndromes = takes_syndromes((k, m, len), &lost, &exact);
        taken[usize::from(syndromes)] += 1;
        taken_exact[usize::from(exact_syndromes)] += 1;
        for engine in engines() {
            for route in [Route::Locator, Route::Syndrome] {
                let restored = decode(engine, route, (k, m), &original, &recovery, &lost, &kept);
                assert!(restored == expected, "{what}: {route:?} on {engine:?}");
                let restored = decode(engine, route, (k, m), &original, &noise, &lost, &exact);
                assert!(
                    restored == reference,
                    "{what}: {route:?} on {engine:?} from noise"
                );
            }
        }
    }
    // Most rounds must really compare the two routes.
    assert!(
        taken[1] >= 120 && taken_exact[1] >= 120,
        "syndrome route taken in {} and {} of 160 rounds",
        taken[1],
        taken_exact[1]
    );
}

/// Whether the syndrome route can decode this loss (what `Route::Syndrome`
/// runs; it falls back to the locator otherwise).
fn takes_syndromes((k, m, len): (usize, usize, usize), lost: &[usize], kept: &[usize]) -> bool {
    let s = Shape::new(k, m, len).unwrap();
    let l = Layout::new(s);
    let mut received = vec![false; l.end];
    for j in (0..k).filter(|j| !lost.contains(j)) {
        received[l.original_base + j] = true;
    }
    for &r in kept {
        received[l.recovery_base + r] = true;
    }
    let bps = len.div_ceil(64);
    plan(
        s,
        l,
        &received,
        lost.len(),
        bps,
        false,
        &mut Scratch::default(),
    )
}

/// The choice: syndromes for few losses, the locator for many.
#[test]
fn few_losses_take_syndromes() {
    let choose = |k: usize, m: usize, lost: usize| {
        let s = Shape::new(k, m, 1280).unwrap();
        let l = Layout::new(s);
        let mut received = vec![true; l.end];
        for j in 0..lost {
            received[l.original_base + j] = false;
        }
        plan(s, l, &received, lost, 20, true, &mut Scratch::default())
    };
    assert!(choose(100, 20, 20));
    assert!(choose(1000, 1000, 10));
    assert!(choose(32768, 32768, 100));
    assert!(!choose(1000, 1000, 1000));
    assert!(!choose(300, 300, 300));
    // Low rate, rows from the coset holding enough received shards.
    assert!(choose(10, 100, 3));
}
