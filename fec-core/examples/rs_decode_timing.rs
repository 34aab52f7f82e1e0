//! Rough single-core timing of Reed-Solomon encode and decode for the
//! benchmark configurations (A: 10+4 x 64 KiB, B: 32+8 x 1280 B, C: 200+50 x
//! 1280 B), decode losing `parity` data shards. "first" decodes see each
//! loss pattern for the first time (matrix work included); "cached" repeat
//! one pattern. The criterion benches and the compare binary are the real
//! measurements; this is a quick look.
//!
//! `cargo run --release -p fec-core --example rs_decode_timing [A] [B] [C]`

use std::time::{Duration, Instant};

use fec_core::rs::ReedSolomon;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

fn mbps(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64() / 1e6
}

fn main() {
    // Optional filter: config names to run, e.g. `C`.
    let only: Vec<String> = std::env::args().skip(1).collect();
    println!("backend: {}", fec_core::gf256::engine().backend());
    for (name, data, parity, len, rounds) in [
        ("A", 10, 4, 65536, 300),
        ("B", 32, 8, 1280, 3000),
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

        let start = Instant::now();
        for _ in 0..rounds {
            rs.encode(&mut shards).unwrap();
        }
        let encode = start.elapsed();

        // Distinct random patterns of `parity` lost data shards, each new to
        // the code (the cache holds 256, so fresh codes past that).
        let patterns: Vec<Vec<usize>> = (0..rounds)
            .map(|_| {
                let mut order: Vec<usize> = (0..data).collect();
                order.shuffle(&mut rng);
                order.truncate(parity);
                order
            })
            .collect();
        let damaged = |lost: &[usize]| -> Vec<Option<Vec<u8>>> {
            shards
                .iter()
                .enumerate()
                .map(|(i, s)| (!lost.contains(&i)).then(|| s.clone()))
                .collect()
        };
        let mut first = Duration::ZERO;
        for (round, lost) in patterns.iter().enumerate() {
            let fresh;
            let code = if round % 200 == 0 {
                fresh = ReedSolomon::new(data, parity).unwrap();
                &fresh
            } else {
                &rs
            };
            let mut received = damaged(lost);
            let start = Instant::now();
            code.reconstruct_data(&mut received).unwrap();
            first += start.elapsed();
            assert_eq!(received[lost[0]].as_deref(), Some(&shards[lost[0]][..]));
        }

        let mut cached = Duration::ZERO;
        for _ in 0..rounds {
            let mut received = damaged(&patterns[0]);
            let start = Instant::now();
            rs.reconstruct_data(&mut received).unwrap();
            cached += start.elapsed();
        }

        println!(
            "{name} k={data} m={parity} {len} B: encode {:8.0} MB/s  decode first {:8.0} MB/s ({:7.1} us)  decode cached {:8.0} MB/s ({:7.1} us)",
            mbps(data_bytes * rounds, encode),
            mbps(data_bytes * rounds, first),
            first.as_secs_f64() * 1e6 / rounds as f64,
            mbps(data_bytes * rounds, cached),
            cached.as_secs_f64() * 1e6 / rounds as f64,
        );
    }
}
