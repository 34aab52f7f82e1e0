//! The loops every SIMD kernel shares, written once over [`Lanes16`]: each
//! backend maps a 64-byte block to its registers and supplies load, store,
//! XOR and multiply by a prepared constant; its `#[target_feature]` shells
//! instantiate these generic bodies so the whole loop is compiled for that
//! instruction set.

use crate::rs16::shards::Block;

/// One instruction set as the GF(2^16) loops see it.
///
/// # Safety
/// Every method executes instructions of the implementor's instruction set;
/// callers must only call them once it is known to be present (a kernel
/// token of that backend exists). Blocks are passed by reference, so memory
/// safety needs nothing more.
pub(super) trait Lanes16 {
    /// One block (32 elements) in registers.
    type Vector: Copy;
    /// A prepared constant as stored.
    type Factor;
    /// A prepared constant loaded into registers.
    type Loaded: Copy;

    /// The all-zero block.
    unsafe fn zero() -> Self::Vector;
    /// Loads a prepared constant.
    unsafe fn load_factor(f: &Self::Factor) -> Self::Loaded;
    /// Loads a block.
    unsafe fn load(block: &Block) -> Self::Vector;
    /// Stores a block.
    unsafe fn store(block: &mut Block, v: Self::Vector);
    /// `a ^ b`.
    unsafe fn xor(a: Self::Vector, b: Self::Vector) -> Self::Vector;
    /// The element-wise product of `v` and the constant.
    unsafe fn mul(v: Self::Vector, f: Self::Loaded) -> Self::Vector;

    /// `acc ^ f * v`; backends with a three-input XOR override it.
    #[inline(always)]
    unsafe fn mul_xor(acc: Self::Vector, v: Self::Vector, f: Self::Loaded) -> Self::Vector {
        // SAFETY: forwarded under the trait contract.
        unsafe { Self::xor(acc, Self::mul(v, f)) }
    }
}

/// Forward butterfly on registers: `x ^= f * y; y ^= x`.
#[inline(always)]
unsafe fn fft_pair<L: Lanes16>(x: &mut L::Vector, y: &mut L::Vector, f: L::Loaded) {
    // SAFETY: the caller guarantees the instruction set.
    unsafe {
        *x = L::mul_xor(*x, *y, f);
        *y = L::xor(*y, *x);
    }
}

/// Inverse butterfly on registers: `y ^= x; x ^= f * y`.
#[inline(always)]
unsafe fn ifft_pair<L: Lanes16>(x: &mut L::Vector, y: &mut L::Vector, f: L::Loaded) {
    // SAFETY: the caller guarantees the instruction set.
    unsafe {
        *y = L::xor(*y, *x);
        *x = L::mul_xor(*x, *y, f);
    }
}

/// `x = f * x`.
///
/// # Safety
/// The [`Lanes16`] contract.
#[inline(always)]
pub(super) unsafe fn mul<L: Lanes16>(x: &mut [Block], f: &L::Factor) {
    // SAFETY: the caller guarantees the instruction set.
    unsafe {
        let f = L::load_factor(f);
        for block in x {
            let v = L::mul(L::load(block), f);
            L::store(block, v);
        }
    }
}

/// `x ^= y` (runs of equal length).
///
/// # Safety
/// The [`Lanes16`] contract.
#[inline(always)]
pub(super) unsafe fn xor<L: Lanes16>(x: &mut [Block], y: &[Block]) {
    // SAFETY: the caller guarantees the instruction set.
    unsafe {
        for (a, b) in x.iter_mut().zip(y) {
            let v = L::xor(L::load(a), L::load(b));
            L::store(a, v);
        }
    }
}

/// Forward butterflies between two runs of equal length.
///
/// # Safety
/// The [`Lanes16`] contract.
#[inline(always)]
pub(super) unsafe fn fft2<L: Lanes16>(x: &mut [Block], y: &mut [Block], f: &L::Factor) {
    // SAFETY: the caller guarantees the instruction set.
    unsafe {
        let f = L::load_factor(f);
        for (a, b) in x.iter_mut().zip(y.iter_mut()) {
            let (mut va, mut vb) = (L::load(a), L::load(b));
            fft_pair::<L>(&mut va, &mut vb, f);
            L::store(a, va);
            L::store(b, vb);
        }
    }
}

/// Inverse butterflies between two runs of equal length; with `LIVE == 1`
/// the run `y` is taken as zero and not read.
///
/// # Safety
/// The [`Lanes16`] contract.
#[inline(always)]
pub(super) unsafe fn ifft2<L: Lanes16, const LIVE: usize>(
    x: &mut [Block],
    y: &mut [Block],
    f: &L::Factor,
) {
    // SAFETY: the caller guarantees the instruction set.
    unsafe {
        let f = L::load_factor(f);
        for (a, b) in x.iter_mut().zip(y.iter_mut()) {
            let mut va = L::load(a);
            let mut vb = if LIVE > 1 { L::load(b) } else { L::zero() };
            ifft_pair::<L>(&mut va, &mut vb, f);
            L::store(a, va);
            L::store(b, vb);
        }
    }
}

/// Two forward layers on four runs of equal length (see
/// [`Kernel::fft4`](super::Kernel::fft4)).
///
/// # Safety
/// The [`Lanes16`] contract.
#[inline(always)]
pub(super) unsafe fn fft4<L: Lanes16>(
    q: [&mut [Block]; 4],
    f01: &L::Factor,
    f23: &L::Factor,
    f02: &L::Factor,
) {
    let [q0, q1, q2, q3] = q;
    // SAFETY: the caller guarantees the instruction set.
    unsafe {
        let (f01, f23, f02) = (
            L::load_factor(f01),
            L::load_factor(f23),
            L::load_factor(f02),
        );
        let runs = q0
            .iter_mut()
            .zip(q1.iter_mut())
            .zip(q2.iter_mut().zip(q3.iter_mut()));
        for ((b0, b1), (b2, b3)) in runs {
            let (mut s0, mut s1, mut s2, mut s3) =
                (L::load(b0), L::load(b1), L::load(b2), L::load(b3));
            fft_pair::<L>(&mut s0, &mut s2, f02);
            fft_pair::<L>(&mut s1, &mut s3, f02);
            fft_pair::<L>(&mut s0, &mut s1, f01);
            fft_pair::<L>(&mut s2, &mut s3, f23);
            L::store(b0, s0);
            L::store(b1, s1);
            L::store(b2, s2);
            L::store(b3, s3);
        }
    }
}

/// Two inverse layers on four runs of equal length, the runs from
/// `q[LIVE]` on taken as zero and not read.
///
/// # Safety
/// The [`Lanes16`] contract.
#[inline(always)]
pub(super) unsafe fn ifft4<L: Lanes16, const LIVE: usize>(
    q: [&mut [Block]; 4],
    f01: &L::Factor,
    f23: &L::Factor,
    f02: &L::Factor,
) {
    let [q0, q1, q2, q3] = q;
    // SAFETY: the caller guarantees the instruction set.
    unsafe {
        let (f01, f23, f02) = (
            L::load_factor(f01),
            L::load_factor(f23),
            L::load_factor(f02),
        );
        let load = |block: &Block, index: usize| {
            if index < LIVE {
                L::load(block)
            } else {
                L::zero()
            }
        };
        let runs = q0
            .iter_mut()
            .zip(q1.iter_mut())
            .zip(q2.iter_mut().zip(q3.iter_mut()));
        for ((b0, b1), (b2, b3)) in runs {
            let (mut s0, mut s1, mut s2, mut s3) =
                (L::load(b0), load(b1, 1), load(b2, 2), load(b3, 3));
            ifft_pair::<L>(&mut s0, &mut s1, f01);
            ifft_pair::<L>(&mut s2, &mut s3, f23);
            ifft_pair::<L>(&mut s0, &mut s2, f02);
            ifft_pair::<L>(&mut s1, &mut s3, f02);
            L::store(b0, s0);
            L::store(b1, s1);
            L::store(b2, s2);
            L::store(b3, s3);
        }
    }
}

/// The formal derivative of [`Kernel::formal_derivative`](super::Kernel::formal_derivative),
/// eight shards at a time: output `p` is input `p` plus the inputs `p + 2^t`
/// for each clear bit `t` of `p`. Within a group of eight the terms come
/// from registers; the rest from the groups at `+2^t`, which sit higher and
/// are still unmodified when the groups are visited in ascending order. One
/// store per output block, where the step-by-step form stores once per term.
///
/// # Safety
/// The [`Lanes16`] contract.
#[inline(always)]
pub(super) unsafe fn formal_derivative<L: Lanes16>(data: &mut [Block], bps: usize, n: usize) {
    const GROUP: usize = 8;
    // SAFETY: the caller guarantees the instruction set.
    unsafe {
        if n < GROUP {
            for i in 1..n {
                let w = 1 << i.trailing_zeros();
                let (low, high) = data.split_at_mut(i * bps);
                xor::<L>(&mut low[(i - w) * bps..], &high[..w * bps]);
            }
            return;
        }
        assert_eq!(data.len(), n * bps, "formal derivative: buffer size");
        let levels = n.trailing_zeros() as usize;
        let blocks = data.as_mut_ptr();
        // Per group, the first block of each of its shards and of each
        // source shard; every index is below `n * bps == data.len()`
        // (groups and their sources lie below `n`), so each `add` below
        // stays inside `data`. Reads and writes go through these pointers
        // only, while `data` is not otherwise used.
        let mut sources = [[blocks.cast_const(); GROUP]; 16];
        for base in (0..n).step_by(GROUP) {
            let mut count = 0;
            for t in 3..levels {
                if base & (1 << t) == 0 {
                    let source = base + (1 << t);
                    sources[count] =
                        std::array::from_fn(|j| blocks.add((source + j) * bps).cast_const());
                    count += 1;
                }
            }
            let group: [*mut Block; GROUP] = std::array::from_fn(|j| blocks.add((base + j) * bps));
            for c in 0..bps {
                let original: [L::Vector; GROUP] =
                    std::array::from_fn(|j| L::load(&*group[j].add(c)));
                let mut out = original;
                for (j, o) in out.iter_mut().enumerate() {
                    for t in 0..3 {
                        if j & (1 << t) == 0 {
                            *o = L::xor(*o, original[j + (1 << t)]);
                        }
                    }
                }
                for source in &sources[..count] {
                    for (o, shard) in out.iter_mut().zip(source) {
                        *o = L::xor(*o, L::load(&*shard.add(c)));
                    }
                }
                for (o, shard) in out.iter().zip(&group) {
                    L::store(&mut *shard.add(c), *o);
                }
            }
        }
    }
}

/// Declares a kernel token for one backend and its [`Kernel`](super::Kernel)
/// implementation: every method checks run lengths, then calls the
/// backend's `#[target_feature]` shell, which the token makes sound.
macro_rules! simd_kernel {
    (
        $(#[$meta:meta])*
        $token:ident, $lanes:ty, $factor:ty, $backend:path, $features:literal, $skew:path, $prepare:path
    ) => {
        $(#[$meta])*
        ///
        /// The private field keeps it from being made except by `new`.
        #[derive(Clone, Copy, Debug)]
        pub(crate) struct $token(());

        impl $token {
            /// The token, if `engine` runs this backend (an engine exists
            /// only for a backend the CPU supports).
            pub(crate) fn new(engine: crate::gf256::Engine) -> Option<Self> {
                (engine.backend() == $backend).then_some($token(()))
            }
        }

        mod shells {
            use super::*;
            use crate::rs16::kernel::lanes;
            use crate::rs16::shards::Block;

            /// # Safety
            /// The CPU supports the features enabled here.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn mul(x: &mut [Block], f: &$factor) {
                // SAFETY: the features are enabled on this function.
                unsafe { lanes::mul::<$lanes>(x, f) }
            }

            /// # Safety
            /// The CPU supports the features enabled here.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn xor(x: &mut [Block], y: &[Block]) {
                // SAFETY: the features are enabled on this function.
                unsafe { lanes::xor::<$lanes>(x, y) }
            }

            /// # Safety
            /// The CPU supports the features enabled here.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn fft2(x: &mut [Block], y: &mut [Block], f: &$factor) {
                // SAFETY: the features are enabled on this function.
                unsafe { lanes::fft2::<$lanes>(x, y, f) }
            }

            /// # Safety
            /// The CPU supports the features enabled here.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn ifft2(x: &mut [Block], y: &mut [Block], f: &$factor, live: usize) {
                // SAFETY: the features are enabled on this function.
                unsafe {
                    if live > 1 {
                        lanes::ifft2::<$lanes, 2>(x, y, f)
                    } else {
                        lanes::ifft2::<$lanes, 1>(x, y, f)
                    }
                }
            }

            /// # Safety
            /// The CPU supports the features enabled here.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn fft4(
                q: [&mut [Block]; 4],
                f01: &$factor,
                f23: &$factor,
                f02: &$factor,
            ) {
                // SAFETY: the features are enabled on this function.
                unsafe { lanes::fft4::<$lanes>(q, f01, f23, f02) }
            }

            /// # Safety
            /// The CPU supports the features enabled here.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn ifft4(
                q: [&mut [Block]; 4],
                f01: &$factor,
                f23: &$factor,
                f02: &$factor,
                live: usize,
            ) {
                // SAFETY: the features are enabled on this function.
                unsafe {
                    match live {
                        1 => lanes::ifft4::<$lanes, 1>(q, f01, f23, f02),
                        2 => lanes::ifft4::<$lanes, 2>(q, f01, f23, f02),
                        3 => lanes::ifft4::<$lanes, 3>(q, f01, f23, f02),
                        _ => lanes::ifft4::<$lanes, 4>(q, f01, f23, f02),
                    }
                }
            }

            /// # Safety
            /// The CPU supports the features enabled here.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn formal_derivative(data: &mut [Block], bps: usize, n: usize) {
                // SAFETY: the features are enabled on this function.
                unsafe { lanes::formal_derivative::<$lanes>(data, bps, n) }
            }
        }

        impl crate::rs16::kernel::Kernel for $token {
            type Factor = $factor;
            const BACKEND: crate::gf256::Backend = $backend;

            fn prepare(element: u16) -> $factor {
                $prepare(element)
            }

            fn skew_factors() -> &'static crate::rs16::kernel::SkewFactors<$factor> {
                &$skew
            }

            fn mul(self, x: &mut [crate::rs16::shards::Block], f: &$factor) {
                // SAFETY: the token exists only for an engine of this
                // backend, which exists only if the CPU supports it.
                unsafe { shells::mul(x, f) }
            }

            fn xor(self, x: &mut [crate::rs16::shards::Block], y: &[crate::rs16::shards::Block]) {
                crate::rs16::kernel::check_lengths(&[x.len(), y.len()]);
                // SAFETY: as in `mul`.
                unsafe { shells::xor(x, y) }
            }

            fn fft2(
                self,
                x: &mut [crate::rs16::shards::Block],
                y: &mut [crate::rs16::shards::Block],
                f: &$factor,
            ) {
                crate::rs16::kernel::check_lengths(&[x.len(), y.len()]);
                // SAFETY: as in `mul`.
                unsafe { shells::fft2(x, y, f) }
            }

            fn ifft2(
                self,
                x: &mut [crate::rs16::shards::Block],
                y: &mut [crate::rs16::shards::Block],
                f: &$factor,
                live: usize,
            ) {
                crate::rs16::kernel::check_lengths(&[x.len(), y.len()]);
                // SAFETY: as in `mul`.
                unsafe { shells::ifft2(x, y, f, live) }
            }

            fn fft4(
                self,
                q: [&mut [crate::rs16::shards::Block]; 4],
                f01: &$factor,
                f23: &$factor,
                f02: &$factor,
            ) {
                crate::rs16::kernel::check_lengths(&[q[0].len(), q[1].len(), q[2].len(), q[3].len()]);
                // SAFETY: as in `mul`.
                unsafe { shells::fft4(q, f01, f23, f02) }
            }

            fn ifft4(
                self,
                q: [&mut [crate::rs16::shards::Block]; 4],
                f01: &$factor,
                f23: &$factor,
                f02: &$factor,
                live: usize,
            ) {
                crate::rs16::kernel::check_lengths(&[q[0].len(), q[1].len(), q[2].len(), q[3].len()]);
                // SAFETY: as in `mul`.
                unsafe { shells::ifft4(q, f01, f23, f02, live) }
            }

            fn formal_derivative(self, data: &mut [crate::rs16::shards::Block], bps: usize, n: usize) {
                assert_eq!(data.len(), bps * n, "rs16 formal derivative: buffer size");
                assert!(n.is_power_of_two(), "rs16 formal derivative: size");
                // SAFETY: as in `mul`.
                unsafe { shells::formal_derivative(data, bps, n) }
            }
        }
    };
}

pub(super) use simd_kernel;
