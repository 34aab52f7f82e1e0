//! GF(2^8) kernel benches: every slice kernel and the fused matrix kernel on
//! every backend this CPU supports.
//!
//! ```sh
//! cargo bench -p fec-benches --bench kernels
//! cargo bench -p fec-benches --bench kernels -- 'apply/gfni'   # a subset
//! cargo bench -p fec-benches --bench kernels -- --table        # see below
//! ```
//!
//! `--table` skips criterion and prints one line per backend with the fused
//! kernel's MB/s on A, B and C, then the same for Reed-Solomon encode on that
//! backend (`encode` group: the additive FFT where `ReedSolomon` chooses it,
//! B and C here, the fused kernel otherwise): the best of many ~2 ms windows,
//! which reads the undisturbed speed even on a machine shared with other jobs
//! (where criterion's means are dragged down by time slices lost to them).
//!
//! Throughput is reported in bytes of source data per second: `len` for the
//! slice kernels, `k * shard` for `apply`. The `apply` shapes are the
//! Reed-Solomon encode configurations of the compare run (A: k=10, m=4,
//! 64 KiB shards; B: k=32, m=8, 1280 B; C: k=200, m=50, 1280 B). Shards are
//! separate heap allocations, as callers usually have them.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use fec_core::gf256::{Backend, Engine};
use fec_core::rs::ReedSolomon;
use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use rand_xoshiro::SplitMix64;

/// Deterministic filler bytes.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut bytes = vec![0; len];
    SplitMix64::seed_from_u64(seed).fill_bytes(&mut bytes);
    bytes
}

fn engines() -> Vec<Engine> {
    Backend::supported()
        .into_iter()
        .filter_map(Engine::new)
        .collect()
}

const SLICE_LENGTHS: [usize; 2] = [1280, 64 * 1024];

fn slice_kernels(c: &mut Criterion) {
    for (name, op) in [("mul_slice", 0u8), ("mul_add_slice", 1), ("xor_slice", 2)] {
        let mut group = c.benchmark_group(name);
        for len in SLICE_LENGTHS {
            let src = pseudo_random(len, 1);
            let mut dst = pseudo_random(len, 2);
            group.throughput(Throughput::Bytes(len as u64));
            for engine in engines() {
                let id = BenchmarkId::new(engine.backend().name(), len);
                group.bench_function(id, |b| {
                    b.iter(|| match op {
                        0 => engine.mul_slice(black_box(0x8E), &src, &mut dst),
                        1 => engine.mul_add_slice(black_box(0x8E), &src, &mut dst),
                        _ => engine.xor_slice(&src, &mut dst),
                    })
                });
            }
        }
        group.finish();
    }
}

/// A Reed-Solomon-encode-shaped fused kernel call.
struct Shape {
    name: &'static str,
    inputs: usize,
    outputs: usize,
    shard: usize,
}

const SHAPES: [Shape; 3] = [
    Shape {
        name: "A",
        inputs: 10,
        outputs: 4,
        shard: 64 * 1024,
    },
    Shape {
        name: "B",
        inputs: 32,
        outputs: 8,
        shard: 1280,
    },
    Shape {
        name: "C",
        inputs: 200,
        outputs: 50,
        shard: 1280,
    },
];

/// The coefficients, inputs and outputs of one shape, each shard its own
/// heap allocation.
fn shape_buffers(shape: &Shape) -> (Vec<u8>, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let coefficients = pseudo_random(shape.inputs * shape.outputs, 3);
    let inputs = (0..shape.inputs)
        .map(|i| pseudo_random(shape.shard, 10 + i as u64))
        .collect();
    let outputs = vec![vec![0u8; shape.shard]; shape.outputs];
    (coefficients, inputs, outputs)
}

fn matrix_kernel(c: &mut Criterion) {
    let mut group = c.benchmark_group("apply");
    for shape in &SHAPES {
        let (coefficients, inputs, mut outputs) = shape_buffers(shape);
        group.throughput(Throughput::Bytes((shape.inputs * shape.shard) as u64));
        for engine in engines() {
            let kernel = engine.prepare(&coefficients, shape.outputs, shape.inputs);
            let id = BenchmarkId::new(engine.backend().name(), shape.name);
            group.bench_function(id, |b| b.iter(|| kernel.apply(&inputs, &mut outputs)));
        }
    }
    group.finish();
}

/// Reed-Solomon encode of each shape on each backend, as `ReedSolomon`
/// runs it (the additive FFT where it does less work than the fused kernel).
fn rs_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for shape in &SHAPES {
        let (_, inputs, mut outputs) = shape_buffers(shape);
        group.throughput(Throughput::Bytes((shape.inputs * shape.shard) as u64));
        for engine in engines() {
            let code = encoder(engine, shape);
            let id = BenchmarkId::new(engine.backend().name(), shape.name);
            group.bench_function(id, |b| {
                b.iter(|| {
                    code.encode_sep(&inputs, &mut outputs)
                        .expect("shapes match")
                })
            });
        }
    }
    group.finish();
}

fn encoder(engine: Engine, shape: &Shape) -> ReedSolomon {
    ReedSolomon::with_engine(shape.inputs, shape.outputs, engine).expect("valid shard counts")
}

fn short() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20)
}

/// MB/s (10^6 bytes of input per second) of the fastest of many short
/// windows of `op` on `shape`'s buffers.
fn best_window_mbps(shape: &Shape, mut op: impl FnMut(&[Vec<u8>], &mut [Vec<u8>])) -> f64 {
    const WINDOW: Duration = Duration::from_millis(2);
    const WINDOWS: usize = 300;
    let (_, inputs, mut outputs) = shape_buffers(shape);
    let warm_up = Instant::now();
    let mut calls = 0u32;
    while warm_up.elapsed() < WINDOW * 20 {
        op(&inputs, &mut outputs);
        calls += 1;
    }
    let per_window = (calls / 20).max(1);
    let bytes = (shape.inputs * shape.shard) as f64 * f64::from(per_window);
    let mut best = Duration::MAX;
    for _ in 0..WINDOWS {
        let start = Instant::now();
        for _ in 0..per_window {
            op(black_box(&inputs), &mut outputs);
        }
        best = best.min(start.elapsed());
    }
    black_box(&outputs);
    bytes / best.as_secs_f64() / 1e6
}

/// One table: a line per backend, a column per shape.
fn print_rows(title: &str, mbps: impl Fn(Engine, &Shape) -> f64) {
    println!("{title}, MB/s of input data (best ~2 ms window)");
    print!("{:<8}", "backend");
    for shape in &SHAPES {
        print!(
            " {:>10}",
            format!("{} k={} m={}", shape.name, shape.inputs, shape.outputs)
        );
    }
    println!();
    for engine in engines() {
        print!("{:<8}", engine.backend().name());
        for shape in &SHAPES {
            print!(" {:>10.0}", mbps(engine, shape));
        }
        println!();
    }
}

fn print_table() {
    print_rows("fused kernel", |engine, shape| {
        let (coefficients, _, _) = shape_buffers(shape);
        let kernel = engine.prepare(&coefficients, shape.outputs, shape.inputs);
        best_window_mbps(shape, |inputs, outputs| kernel.apply(inputs, outputs))
    });
    print_rows("Reed-Solomon encode", |engine, shape| {
        let code = encoder(engine, shape);
        best_window_mbps(shape, |inputs, outputs| {
            code.encode_sep(inputs, outputs).expect("shapes match")
        })
    });
}

// Spelled out instead of `criterion_group!`, whose generated function has no
// doc comment and so trips the workspace's `missing_docs`.
fn main() {
    if std::env::args().any(|arg| arg == "--table") {
        print_table();
        return;
    }
    let mut criterion = short().configure_from_args();
    slice_kernels(&mut criterion);
    matrix_kernel(&mut criterion);
    rs_encode(&mut criterion);
    criterion.final_summary();
}
