//! Rough single-core timing of Reed-Solomon encode and decode for the
//! benchmark configurations (A: 10+4 x 64 KiB, B: 32+8 x 1280 B, C: 200+50 x
//! 1280 B), decode losing `parity` data shards. "first" decodes meet their
//! loss pattern for the first time (on a fresh clone, so all matrix work is
//! included); "cached" ones repeat a pattern. Medians of per-call times, so a
//! busy machine distorts them less. The criterion benches and the compare
//! binary are the real measurements; this is a quick look.
//!
//! `cargo run --release -p fec-core --example rs_decode_timing [A] [B] [C]`

use std::time::{Duration, Instant};

use fec_core::rs::ReedSolomon;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn report(what: &str, bytes: usize, samples: Vec<Duration>) -> String {
    let t = median(samples);
    format!(
        "{what} {:6.0} MB/s ({:7.1} us)",
        bytes as f64 / t.as_secs_f64() / 1e6,
        t.as_secs_f64() * 1e6
    )
}

fn main() {
    // Optional filter: config names to run, e.g. `C`.
    let only: Vec<String> = std::env::args().skip(1).collect();
    println!("backend: {}", fec_core::gf256::engine().backend());
    for (name, data, parity, len, rounds) in [
        ("A", 10, 4, 65536, 300),
        ("B", 32, 8, 1280, 2000),
        ("C", 200, 50, 1280, 300),
    ] {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        let mut rng = StdRng::seed_from_u64(1);
        let rs = ReedSolomon::new(data, parity).unwrap();
        let mut shards: Vec<Vec<u8>> = (0..data + parity)
            .map(|_| (0..len).map(|_| rng.gen()).collect())
            .collect();
        let data_bytes = data * len;

        let encode: Vec<Duration> = (0..rounds)
            .map(|_| {
                let start = Instant::now();
                rs.encode(&mut shards).unwrap();
                start.elapsed()
            })
            .collect();

        let damaged = |lost: &[usize]| -> Vec<Option<Vec<u8>>> {
            shards
                .iter()
                .enumerate()
                .map(|(i, s)| (!lost.contains(&i)).then(|| s.clone()))
                .collect()
        };
        let random_pattern = |rng: &mut StdRng| {
            let mut order: Vec<usize> = (0..data).collect();
            order.shuffle(rng);
            order.truncate(parity);
            order
        };
        let first: Vec<Duration> = (0..rounds)
            .map(|_| {
                let lost = random_pattern(&mut rng);
                let mut received = damaged(&lost);
                let fresh = rs.clone();
                let start = Instant::now();
                fresh.reconstruct_data(&mut received).unwrap();
                let elapsed = start.elapsed();
                assert_eq!(received[lost[0]].as_deref(), Some(&shards[lost[0]][..]));
                elapsed
            })
            .collect();

        let lost = random_pattern(&mut rng);
        let cached: Vec<Duration> = (0..rounds)
            .map(|_| {
                let mut received = damaged(&lost);
                let start = Instant::now();
                rs.reconstruct_data(&mut received).unwrap();
                start.elapsed()
            })
            .collect();

        println!(
            "{name} k={data} m={parity} {len} B: {}  {}  {}",
            report("encode", data_bytes, encode),
            report("decode first", data_bytes, first),
            report("decode cached", data_bytes, cached),
        );
    }
}
