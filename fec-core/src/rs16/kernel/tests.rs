//! Every kernel this CPU supports against the scalar one, operation by
//! operation, on random blocks, run lengths 0..=9 and random constants (0
//! and 1 included: the skew of block 0 is 0).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{dispatch, Kernel, KernelJob, Scalar};
use crate::gf256::{Backend, Engine};
use crate::rs16::field;
use crate::rs16::shards::Block;

fn blocks(rng: &mut StdRng, count: usize) -> Vec<Block> {
    (0..count)
        .map(|_| std::array::from_fn(|_| rng.gen()))
        .collect()
}

fn element(rng: &mut StdRng) -> u16 {
    match rng.gen_range(0..6) {
        0 => 0,
        1 => 1,
        _ => rng.gen(),
    }
}

/// Runs `op` on copies of the same four runs with kernel `K` and with the
/// scalar kernel and asserts equal results.
fn same<K: Kernel>(
    kernel: K,
    runs: &[Vec<Block>; 4],
    what: &str,
    op_k: impl Fn(K, &mut [Vec<Block>; 4]),
    op_s: impl Fn(Scalar, &mut [Vec<Block>; 4]),
) {
    let mut a = runs.clone();
    let mut b = runs.clone();
    op_k(kernel, &mut a);
    op_s(Scalar, &mut b);
    assert!(a == b, "{what} differs from scalar");
}

fn four(runs: &mut [Vec<Block>; 4]) -> [&mut [Block]; 4] {
    let [a, b, c, d] = runs;
    [a, b, c, d]
}

struct AgainstScalar;

impl KernelJob for AgainstScalar {
    type Output = Backend;

    fn run<K: Kernel>(self, kernel: K) -> Backend {
        let mut rng = StdRng::seed_from_u64(0x16);
        for round in 0..200 {
            let len = round % 10;
            let runs: [Vec<Block>; 4] = std::array::from_fn(|_| blocks(&mut rng, len));
            let mut e: [u16; 3] = std::array::from_fn(|_| element(&mut rng));
            // `first` promises zero twiddles for f01 and f02 (`e[0]`, `e[2]`).
            let first = round % 3 == 0;
            if first {
                e[0] = 0;
                e[2] = 0;
            }
            let (k0, k1, k2) = (K::prepare(e[0]), K::prepare(e[1]), K::prepare(e[2]));
            let (s0, s1, s2) = (
                Scalar::prepare(e[0]),
                Scalar::prepare(e[1]),
                Scalar::prepare(e[2]),
            );
            same(
                kernel,
                &runs,
                "mul",
                |k, r| k.mul(&mut r[0], &k0),
                |s, r| s.mul(&mut r[0], &s0),
            );
            same(
                kernel,
                &runs,
                "xor",
                |k, r| {
                    let [a, b, ..] = r;
                    k.xor(a, b)
                },
                |s, r| {
                    let [a, b, ..] = r;
                    s.xor(a, b)
                },
            );
            same(
                kernel,
                &runs,
                "mul_add",
                |k, r| {
                    let [a, b, ..] = r;
                    k.mul_add(a, b, &k1)
                },
                |s, r| {
                    let [a, b, ..] = r;
                    s.mul_add(a, b, &s1)
                },
            );
            same(
                kernel,
                &runs,
                "fft2",
                |k, r| {
                    let [a, b, ..] = r;
                    k.fft2(a, b, &k0, first)
                },
                |s, r| {
                    let [a, b, ..] = r;
                    s.fft2(a, b, &s0, first)
                },
            );
            same(
                kernel,
                &runs,
                "ifft2",
                |k, r| {
                    let [a, b, ..] = r;
                    k.ifft2(a, b, &k0, 1 + round % 2, first)
                },
                |s, r| {
                    let [a, b, ..] = r;
                    s.ifft2(a, b, &s0, 1 + round % 2, first)
                },
            );
            same(
                kernel,
                &runs,
                "fft4",
                |k, r| k.fft4(four(r), &k0, &k1, &k2, first),
                |s, r| s.fft4(four(r), &s0, &s1, &s2, first),
            );
            same(
                kernel,
                &runs,
                "ifft4",
                |k, r| k.ifft4(four(r), &k0, &k1, &k2, 1 + round % 4, first),
                |s, r| s.ifft4(four(r), &s0, &s1, &s2, 1 + round % 4, first),
            );
            // The scaled leaves, each scale present or not.
            let (k3, s3) = (K::prepare(e[1] ^ 0x5A5A), Scalar::prepare(e[1] ^ 0x5A5A));
            let ks: [Option<&K::Factor>; 4] = std::array::from_fn(|i| {
                (round >> i & 1 == 1).then_some(if i % 2 == 0 { &k1 } else { &k3 })
            });
            let ss: [Option<&crate::rs16::kernel::scalar::NibbleProducts>; 4] =
                std::array::from_fn(|i| {
                    (round >> i & 1 == 1).then_some(if i % 2 == 0 { &s1 } else { &s3 })
                });
            same(
                kernel,
                &runs,
                "ifft4_scaled",
                |k, r| k.ifft4_scaled(four(r), ks, &k0, &k1, &k2, first),
                |s, r| s.ifft4_scaled(four(r), ss, &s0, &s1, &s2, first),
            );
            // Unscaled outputs are not stored: compare only the scaled ones.
            let (mut a, mut b) = (runs.clone(), runs.clone());
            kernel.fft4_scaled(four(&mut a), &k0, &k1, &k2, first, ks);
            Scalar.fft4_scaled(four(&mut b), &s0, &s1, &s2, first, ss);
            for i in 0..4 {
                if ks[i].is_some() {
                    assert!(a[i] == b[i], "fft4_scaled output {i} differs from scalar");
                }
            }

            // The derivative and top transform layer(s) on 2..=128 shards of
            // 1..=3 blocks.
            let n = 2 << (round % 7);
            let bps = 1 + round % 3;
            // Its top pass is at the origin: f01 and f02 (f for radix 2) are 0.
            let data = blocks(&mut rng, n * bps);
            let (mut a, mut b) = (data.clone(), data);
            let (kz, sz) = (K::prepare(0), Scalar::prepare(0));
            let (kf, sf) = if n.trailing_zeros() % 2 == 1 {
                (&kz, &sz)
            } else {
                (&k1, &s1)
            };
            kernel.derivative_fft(&mut a, bps, n, [&kz, kf, &kz]);
            Scalar.derivative_fft(&mut b, bps, n, [&sz, sf, &sz]);
            assert!(a == b, "derivative of {n} x {bps} differs from scalar");
        }
        K::BACKEND
    }
}

#[test]
fn every_kernel_matches_scalar() {
    for backend in Backend::supported() {
        let engine = Engine::new(backend).expect("supported");
        // Dispatch falls back to scalar for an unknown backend; make sure
        // the kernel under test is the one asked for.
        assert_eq!(dispatch(engine, AgainstScalar), backend);
    }
}

/// The scalar kernel against the field's own multiplication, element by
/// element, in the block layout (low bytes, then high bytes).
#[test]
fn scalar_products_match_the_field() {
    let t = field::tables();
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..100 {
        let e = element(&mut rng);
        let mut run = blocks(&mut rng, 2);
        let before = run.clone();
        Scalar.mul(&mut run, &Scalar::prepare(e));
        for (after, before) in run.iter().zip(&before) {
            for i in 0..32 {
                let x = u16::from_le_bytes([before[i], before[32 + i]]);
                let y = u16::from_le_bytes([after[i], after[32 + i]]);
                assert_eq!(y, t.mul(x, e));
            }
        }
    }
}

#[test]
#[should_panic(expected = "unequal length")]
fn unequal_runs_panic() {
    let mut a = vec![[0u8; 64]; 2];
    let b = vec![[0u8; 64]; 3];
    Scalar.xor(&mut a, &b);
}
