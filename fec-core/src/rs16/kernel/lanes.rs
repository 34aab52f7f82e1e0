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

/// Inverse butterflies between two runs of equal length.
///
/// # Safety
/// The [`Lanes16`] contract.
#[inline(always)]
pub(super) unsafe fn ifft2<L: Lanes16>(x: &mut [Block], y: &mut [Block], f: &L::Factor) {
    // SAFETY: the caller guarantees the instruction set.
    unsafe {
        let f = L::load_factor(f);
        for (a, b) in x.iter_mut().zip(y.iter_mut()) {
            let (mut va, mut vb) = (L::load(a), L::load(b));
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

/// Two inverse layers on four runs of equal length.
///
/// # Safety
/// The [`Lanes16`] contract.
#[inline(always)]
pub(super) unsafe fn ifft4<L: Lanes16>(
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
            pub(super) unsafe fn ifft2(x: &mut [Block], y: &mut [Block], f: &$factor) {
                // SAFETY: the features are enabled on this function.
                unsafe { lanes::ifft2::<$lanes>(x, y, f) }
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
            ) {
                // SAFETY: the features are enabled on this function.
                unsafe { lanes::ifft4::<$lanes>(q, f01, f23, f02) }
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
            ) {
                crate::rs16::kernel::check_lengths(&[x.len(), y.len()]);
                // SAFETY: as in `mul`.
                unsafe { shells::ifft2(x, y, f) }
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
            ) {
                crate::rs16::kernel::check_lengths(&[q[0].len(), q[1].len(), q[2].len(), q[3].len()]);
                // SAFETY: as in `mul`.
                unsafe { shells::ifft4(q, f01, f23, f02) }
            }
        }
    };
}

pub(super) use simd_kernel;
