//! The slice kernels the GF(2^16) transforms run on, one implementation per
//! instruction set behind the safe [`Kernel`] trait.
//!
//! A kernel multiplies whole shards (runs of [`Block`]s) by prepared
//! constants and runs the transform butterflies over them. The backend is
//! the GF(2^8) engine's: [`gf256::Engine`] proves the CPU check was done, and
//! `FEC_CORE_BACKEND` forces it for both fields. The SIMD kernels live in
//! one file per instruction set; their loops are written once in `lanes`,
//! generic over a few primitives, and compiled per instruction set inside
//! `#[target_feature]` shells, as in [`gf256`].
//!
//! A constant is prepared once into whatever its backend multiplies with
//! (nibble tables for `pshufb`, bit matrices for GFNI), and the transform
//! twiddles, which depend only on their index, are prepared once per process
//! in [`Factors`].

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod gfni;
#[cfg(target_arch = "x86_64")]
mod lanes;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod ssse3;

use std::sync::OnceLock;

use super::field::{self, ORDER};
use super::shards::Block;
use crate::gf256::{self, Backend, Engine};

pub(crate) use scalar::Scalar;

/// Multiplication by GF(2^16) constants and the FFT butterflies, over
/// equal-length runs of blocks.
///
/// The butterflies are those of the Lin-Chung-Han transform as Leopard-RS
/// orders them: the forward one is `x += f * y; y += x`, the inverse
/// `y += x; x += f * y`. The radix-4 forms run two layers (distance `2d`
/// then `d` forward, `d` then `2d` inverse) on four runs `q0..q3` at once,
/// with `f01` for the pair `(q0, q1)`, `f23` for `(q2, q3)` and `f02` for
/// the pairs `(q0, q2)` and `(q1, q3)`.
///
/// Every method requires its runs to be of equal length (the transforms
/// only pass such runs) and panics otherwise.
pub(crate) trait Kernel: Copy + Send + Sync + 'static {
    /// A constant prepared for this kernel.
    type Factor: Prepared;

    /// The backend this kernel implements (the kernel tests check that
    /// dispatch picked the one asked for).
    #[cfg_attr(not(test), allow(dead_code))]
    const BACKEND: Backend;

    /// The process-wide tables of prepared constants.
    fn factors() -> &'static Factors<Self::Factor>;

    /// Prepares multiplication by `element`.
    #[inline]
    fn prepare(element: u16) -> Self::Factor {
        Self::factors().prepare(element)
    }

    /// `x = f * x`.
    fn mul(self, x: &mut [Block], f: &Self::Factor);

    /// `x ^= y`.
    fn xor(self, x: &mut [Block], y: &[Block]);

    /// `x ^= f * y` (the decoder's products of a small inverse matrix).
    fn mul_add(self, x: &mut [Block], y: &[Block], f: &Self::Factor);

    /// Forward butterfly: `x ^= f * y; y ^= x`.
    ///
    /// `first` promises that the twiddle is 0 (the block at the field's
    /// origin, `delta + start == 0`), so the product can be skipped; a
    /// kernel may ignore the hint, the result is the same.
    fn fft2(self, x: &mut [Block], y: &mut [Block], f: &Self::Factor, first: bool);

    /// Inverse butterfly: `y ^= x; x ^= f * y`; with `live == 1`, `y` is
    /// taken as zero and not read (`live` is 1 or 2). `first` as in
    /// [`fft2`](Self::fft2).
    fn ifft2(self, x: &mut [Block], y: &mut [Block], f: &Self::Factor, live: usize, first: bool);

    /// Two forward layers on four runs. `first` promises that `f01` and
    /// `f02` are 0 (the block at the field's origin).
    fn fft4(
        self,
        q: [&mut [Block]; 4],
        f01: &Self::Factor,
        f23: &Self::Factor,
        f02: &Self::Factor,
        first: bool,
    );

    /// Two inverse layers on four runs, the runs from `q[live]` on taken as
    /// zero and not read (`live` in `1..=4`), so that an inverse transform of
    /// a short input needs no zero-filled tail. `first` as in
    /// [`fft4`](Self::fft4).
    #[allow(clippy::too_many_arguments)]
    fn ifft4(
        self,
        q: [&mut [Block]; 4],
        f01: &Self::Factor,
        f23: &Self::Factor,
        f02: &Self::Factor,
        live: usize,
        first: bool,
    );

    /// The inverse transform's leaf with its inputs scaled: input `i` is
    /// `scale[i]` times `q[i]`, or zero (and `q[i]` not read) where
    /// `scale[i]` is `None`; then the two layers of [`ifft4`](Self::ifft4).
    /// The decoder's scaling of the received shards rides on it.
    #[allow(clippy::too_many_arguments)]
    fn ifft4_scaled(
        self,
        q: [&mut [Block]; 4],
        scale: [Option<&Self::Factor>; 4],
        f01: &Self::Factor,
        f23: &Self::Factor,
        f02: &Self::Factor,
        first: bool,
    );

    /// The forward transform's leaf with its outputs scaled: the two layers
    /// of [`fft4`](Self::fft4), then output `i` is stored times `scale[i]`,
    /// or not at all where `scale[i]` is `None` (an output nobody reads).
    /// The decoder's scaling of the restored shards rides on it.
    #[allow(clippy::too_many_arguments)]
    fn fft4_scaled(
        self,
        q: [&mut [Block]; 4],
        f01: &Self::Factor,
        f23: &Self::Factor,
        f02: &Self::Factor,
        first: bool,
        scale: [Option<&Self::Factor>; 4],
    );

    /// The formal derivative in the LCH basis of the `n` shards of `data`
    /// (`bps` blocks each, `n >= 2` a power of two), followed by the top
    /// layer(s) of the forward transform over them (delta 0): one layer
    /// when `n`'s exponent is odd (factor `f[0]`), else two (`f = [f01, f23,
    /// f02]` as in [`fft4`](Self::fft4) on the four quarters).
    ///
    /// The derivative: for each `i` in `1..n` with lowest set bit `w`,
    /// shards `i - w .. i` gain shards `i .. i + w` as they were before it;
    /// that is, output `p` is input `p` plus input `p + 2^t` for every clear
    /// bit `t` of `p`. Fused, it costs no pass of its own.
    fn derivative_fft(self, data: &mut [Block], bps: usize, n: usize, f: [&Self::Factor; 3]);
}

/// Checks [`Kernel::derivative_fft`]'s sizes; returns the radix of its top
/// pass (2 or 4).
pub(crate) fn check_derivative_fft(len: usize, bps: usize, n: usize) -> usize {
    assert!(n >= 2 && n.is_power_of_two(), "rs16 derivative: {n} shards");
    assert_eq!(len, n * bps, "rs16 derivative: buffer size");
    if n.trailing_zeros() % 2 == 1 {
        2
    } else {
        4
    }
}

/// A constant prepared for a kernel's multiply (tables or matrices). Every
/// such form is GF(2)-linear in the constant, which makes preparing cheap:
/// a decode prepares one constant per shard.
pub(crate) trait Prepared: Copy + Send + Sync + 'static {
    /// Builds the form of `element` from its products (the slow way).
    fn build(element: u16) -> Self;
    /// The form of the sum of the two constants.
    fn xor(&self, other: &Self) -> Self;
}

/// The prepared constants of one kernel: by linearity any constant is the
/// XOR of the forms of its low and high byte, from two 256-entry tables
/// built on first use; and the transform twiddles, prepared on first use in
/// segments so that a small code never prepares the 65535 of a large one.
pub(crate) struct Factors<F> {
    /// `bytes[v]` and `bytes[256 + v]`: the forms of `v` and `v << 8`.
    bytes: OnceLock<Box<[F]>>,
    segments: [OnceLock<Box<[F]>>; SEGMENTS],
}

const SEGMENT: usize = 1024;
const SEGMENTS: usize = ORDER / SEGMENT;

impl<F: Prepared> Factors<F> {
    /// Empty tables (for a `static`).
    pub(crate) const fn new() -> Self {
        Factors {
            bytes: OnceLock::new(),
            segments: [const { OnceLock::new() }; SEGMENTS],
        }
    }

    /// The form of `element`.
    #[inline]
    pub(crate) fn prepare(&self, element: u16) -> F {
        let bytes = self.bytes.get_or_init(|| {
            (0..512u16)
                .map(|i| F::build(if i < 256 { i } else { (i - 256) << 8 }))
                .collect()
        });
        bytes[usize::from(element & 0xFF)].xor(&bytes[256 + usize::from(element >> 8)])
    }

    /// The prepared twiddle `index` (`index < 65535`).
    pub(crate) fn skew(&self, index: usize) -> &F {
        let segment = self.segments[index / SEGMENT].get_or_init(|| {
            let skew = field::skew();
            let start = (index / SEGMENT) * SEGMENT;
            let end = (start + SEGMENT).min(skew.len());
            skew[start..end].iter().map(|&e| self.prepare(e)).collect()
        });
        &segment[index % SEGMENT]
    }
}

/// The twiddle `index`, prepared for `K`.
#[inline]
pub(crate) fn skew_factor<K: Kernel>(index: usize) -> &'static K::Factor {
    K::factors().skew(index)
}

/// The products of `element` with each single-bit element `1 << b`: the
/// columns of "multiply by `element`" as a 16 x 16 matrix over GF(2), from
/// which every backend builds its tables. A decode prepares one constant per
/// shard, so this is on the hot path: one logarithm, then 16 exponentials.
pub(crate) fn bit_products(element: u16) -> [u16; 16] {
    if element == 0 {
        return [0; 16];
    }
    let t = field::tables();
    let log = t.log[element as usize];
    std::array::from_fn(|b| t.exp[field::add_mod(log, t.log[1 << b]) as usize])
}

/// The products of `element` with every value of each nibble: entry
/// `[n][v]` is `element * (v << 4n)`, filled by doubling (each new bit of
/// `v` XORs one column onto the entries already made).
pub(crate) fn nibble_products(element: u16) -> [[u16; 16]; 4] {
    let columns = bit_products(element);
    let mut tables = [[0u16; 16]; 4];
    for (n, table) in tables.iter_mut().enumerate() {
        for bit in 0..4 {
            let half = 1 << bit;
            for v in 0..half {
                table[half + v] = table[v] ^ columns[4 * n + bit];
            }
        }
    }
    tables
}

/// Work that runs on whichever kernel the engine selects: a generic method
/// instead of a closure, so that each backend gets its own monomorphised
/// (and, for SIMD, fully inlined) copy.
pub(crate) trait KernelJob {
    /// What the job returns.
    type Output;
    /// Runs the job on `kernel`.
    fn run<K: Kernel>(self, kernel: K) -> Self::Output;
}

/// Runs `job` on the kernel of `engine`'s backend.
pub(crate) fn dispatch<J: KernelJob>(engine: Engine, job: J) -> J::Output {
    #[cfg(target_arch = "x86_64")]
    {
        match engine.backend() {
            Backend::Scalar => {}
            Backend::Ssse3 => {
                if let Some(k) = ssse3::Ssse3::new(engine) {
                    return job.run(k);
                }
            }
            Backend::Avx2 => {
                if let Some(k) = avx2::Avx2::new(engine) {
                    return job.run(k);
                }
            }
            Backend::Avx512 => {
                if let Some(k) = avx512::Avx512::new(engine) {
                    return job.run(k);
                }
            }
            Backend::Gfni => {
                if let Some(k) = gfni::Gfni::new(engine) {
                    return job.run(k);
                }
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = engine;
    job.run(Scalar)
}

/// Panics unless every run has the same length (the kernels' contract).
pub(crate) fn check_lengths(lengths: &[usize]) {
    assert!(
        lengths.windows(2).all(|w| w[0] == w[1]),
        "rs16 kernel: runs of unequal length {lengths:?}"
    );
}

/// Split-nibble product tables for `pshufb`: `lo[n][v]` and `hi[n][v]` are
/// the low and high bytes of the constant times `v << 4n`, so a product is
/// the XOR of four 16-entry lookups per output byte.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(crate) struct NibbleTables {
    lo: [[u8; 16]; 4],
    hi: [[u8; 16]; 4],
}

#[cfg(target_arch = "x86_64")]
impl Prepared for NibbleTables {
    fn build(element: u16) -> Self {
        let products = nibble_products(element);
        NibbleTables {
            lo: products.map(|row| row.map(|p| p as u8)),
            hi: products.map(|row| row.map(|p| (p >> 8) as u8)),
        }
    }

    fn xor(&self, other: &Self) -> Self {
        // Fixed-size arrays throughout, so this compiles to a few vector
        // XORs (a decode prepares a constant per received shard and per
        // entry of its inverse matrix).
        let sum = |a: &[[u8; 16]; 4], b: &[[u8; 16]; 4]| {
            std::array::from_fn(|n| std::array::from_fn(|v| a[n][v] ^ b[n][v]))
        };
        NibbleTables {
            lo: sum(&self.lo, &other.lo),
            hi: sum(&self.hi, &other.hi),
        }
    }
}

/// The SSSE3 and AVX2 kernels share their table format, so one cache.
#[cfg(target_arch = "x86_64")]
static NIBBLE_FACTORS: Factors<NibbleTables> = Factors::new();

/// The engine the one-shot functions use: the process-wide one.
pub(crate) fn default_engine() -> Engine {
    gf256::engine()
}

#[cfg(test)]
mod tests;
