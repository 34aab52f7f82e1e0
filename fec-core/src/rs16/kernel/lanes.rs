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
    /// Whether three loaded constants and four blocks fit in registers. If
    /// not (16-register instruction sets with 8-register constants), the
    /// radix-4 kernels run as pair passes over L1-sized chunks, each pass
    /// with one constant in registers, instead of reloading spilled tables
    /// for every block.
    const REGISTER_RADIX4: bool;

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

/// Forward butterfly on registers: `x ^= f * y; y ^= x`, without the
/// product when `ZERO` (the twiddle is 0).
#[inline(always)]
unsafe fn fft_pair<L: Lanes16, const ZERO: bool>(
    x: &mut L::Vector,
    y: &mut L::Vector,
    f: L::Loaded,
) {
    // SAFETY: the caller guarantees the instruction set.
    unsafe {
        if !ZERO {
            *x = L::mul_xor(*x, *y, f);
        }
        *y = L::xor(*y, *x);
    }
}

/// Inverse butterfly on registers: `y ^= x; x ^= f * y`, without the
/// product when `ZERO`.
#[inline(always)]
unsafe fn ifft_pair<L: Lanes16, const ZERO: bool>(
    x: &mut L::Vector,
    y: &mut L::Vector,
    f: L::Loaded,
) {
    // SAFETY: the caller guarantees the instruction set.
    unsafe {
        *y = L::xor(*y, *x);
        if !ZERO {
            *x = L::mul_xor(*x, *y, f);
        }
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

/// `x ^= f * y` (runs of equal length).
///
/// # Safety
/// The [`Lanes16`] contract.
#[inline(always)]
pub(super) unsafe fn mul_add<L: Lanes16>(x: &mut [Block], y: &[Block], f: &L::Factor) {
    // SAFETY: the caller guarantees the instruction set.
    unsafe {
        let f = L::load_factor(f);
        for (a, b) in x.iter_mut().zip(y) {
            let v = L::mul_xor(L::load(a), L::load(b), f);
            L::store(a, v);
        }
    }
}

/// Forward butterflies between two runs of equal length.
///
/// # Safety
/// The [`Lanes16`] contract.
#[inline(always)]
pub(super) unsafe fn fft2<L: Lanes16, const FIRST: bool>(
    x: &mut [Block],
    y: &mut [Block],
    f: &L::Factor,
) {
    // SAFETY: the caller guarantees the instruction set.
    unsafe {
        let f = L::load_factor(f);
        for (a, b) in x.iter_mut().zip(y.iter_mut()) {
            let (mut va, mut vb) = (L::load(a), L::load(b));
            fft_pair::<L, FIRST>(&mut va, &mut vb, f);
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
pub(super) unsafe fn ifft2<L: Lanes16, const LIVE: usize, const FIRST: bool>(
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
            ifft_pair::<L, FIRST>(&mut va, &mut vb, f);
            L::store(a, va);
            L::store(b, vb);
        }
    }
}

/// Four runs cut into matching chunks small enough that all four stay in
/// L1 while the pair passes of a radix-4 kernel go over them.
fn chunked(q: [&mut [Block]; 4]) -> impl Iterator<Item = [&mut [Block]; 4]> {
    const CHUNK: usize = 48;
    let [a, b, c, d] = q;
    a.chunks_mut(CHUNK)
        .zip(b.chunks_mut(CHUNK))
        .zip(c.chunks_mut(CHUNK).zip(d.chunks_mut(CHUNK)))
        .map(|((a, b), (c, d))| [a, b, c, d])
}

/// Two forward layers on four runs of equal length (see
/// [`Kernel::fft4`](super::Kernel::fft4)).
///
/// # Safety
/// The [`Lanes16`] contract.
#[inline(always)]
pub(super) unsafe fn fft4<L: Lanes16, const FIRST: bool>(
    q: [&mut [Block]; 4],
    f01: &L::Factor,
    f23: &L::Factor,
    f02: &L::Factor,
) {
    let [q0, q1, q2, q3] = q;
    // SAFETY: the caller guarantees the instruction set.
    unsafe {
        if !L::REGISTER_RADIX4 {
            for [c0, c1, c2, c3] in chunked([q0, q1, q2, q3]) {
                fft2::<L, FIRST>(c0, c2, f02);
                fft2::<L, FIRST>(c1, c3, f02);
                fft2::<L, FIRST>(c0, c1, f01);
                fft2::<L, false>(c2, c3, f23);
            }
            return;
        }
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
            fft_pair::<L, FIRST>(&mut s0, &mut s2, f02);
            fft_pair::<L, FIRST>(&mut s1, &mut s3, f02);
            fft_pair::<L, FIRST>(&mut s0, &mut s1, f01);
            fft_pair::<L, false>(&mut s2, &mut s3, f23);
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
pub(super) unsafe fn ifft4<L: Lanes16, const LIVE: usize, const FIRST: bool>(
    q: [&mut [Block]; 4],
    f01: &L::Factor,
    f23: &L::Factor,
    f02: &L::Factor,
) {
    let [q0, q1, q2, q3] = q;
    // SAFETY: the caller guarantees the instruction set.
    unsafe {
        if !L::REGISTER_RADIX4 {
            // A run that starts zero stays zero through the first layer if
            // its partner is zero too; `ifft2` with one live run reads only
            // the first.
            for [c0, c1, c2, c3] in chunked([q0, q1, q2, q3]) {
                if LIVE > 1 {
                    ifft2::<L, 2, FIRST>(c0, c1, f01);
                } else {
                    ifft2::<L, 1, FIRST>(c0, c1, f01);
                }
                match LIVE {
                    4 => ifft2::<L, 2, false>(c2, c3, f23),
                    3 => ifft2::<L, 1, false>(c2, c3, f23),
                    _ => {}
                }
                if LIVE > 2 {
                    ifft2::<L, 2, FIRST>(c0, c2, f02);
                    ifft2::<L, 2, FIRST>(c1, c3, f02);
                } else {
                    ifft2::<L, 1, FIRST>(c0, c2, f02);
                    ifft2::<L, 1, FIRST>(c1, c3, f02);
                }
            }
            return;
        }
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
            ifft_pair::<L, FIRST>(&mut s0, &mut s1, f01);
            ifft_pair::<L, false>(&mut s2, &mut s3, f23);
            ifft_pair::<L, FIRST>(&mut s0, &mut s2, f02);
            ifft_pair::<L, FIRST>(&mut s1, &mut s3, f02);
            L::store(b0, s0);
            L::store(b1, s1);
            L::store(b2, s2);
            L::store(b3, s3);
        }
    }
}

/// [`ifft4`] with scaled inputs: see
/// [`Kernel::ifft4_scaled`](super::Kernel::ifft4_scaled).
///
/// # Safety
/// The [`Lanes16`] contract.
#[inline(always)]
pub(super) unsafe fn ifft4_scaled<L: Lanes16, const FIRST: bool>(
    q: [&mut [Block]; 4],
    scale: [Option<&L::Factor>; 4],
    f01: &L::Factor,
    f23: &L::Factor,
    f02: &L::Factor,
) {
    let [q0, q1, q2, q3] = q;
    // SAFETY: the caller guarantees the instruction set.
    unsafe {
        if !L::REGISTER_RADIX4 {
            for [c0, c1, c2, c3] in chunked([q0, q1, q2, q3]) {
                for (run, scale) in [&mut *c0, &mut *c1, &mut *c2, &mut *c3]
                    .into_iter()
                    .zip(scale)
                {
                    match scale {
                        Some(f) => mul::<L>(run, f),
                        None => run.fill([0; 64]),
                    }
                }
                ifft4::<L, 4, FIRST>([c0, c1, c2, c3], f01, f23, f02);
            }
            return;
        }
        let (f01, f23, f02) = (
            L::load_factor(f01),
            L::load_factor(f23),
            L::load_factor(f02),
        );
        let scale = scale.map(|s| s.map(|f| L::load_factor(f)));
        let input = |block: &Block, scale: Option<L::Loaded>| match scale {
            Some(f) => L::mul(L::load(block), f),
            None => L::zero(),
        };
        let runs = q0
            .iter_mut()
            .zip(q1.iter_mut())
            .zip(q2.iter_mut().zip(q3.iter_mut()));
        for ((b0, b1), (b2, b3)) in runs {
            let mut s0 = input(b0, scale[0]);
            let mut s1 = input(b1, scale[1]);
            let mut s2 = input(b2, scale[2]);
            let mut s3 = input(b3, scale[3]);
            ifft_pair::<L, FIRST>(&mut s0, &mut s1, f01);
            ifft_pair::<L, false>(&mut s2, &mut s3, f23);
            ifft_pair::<L, FIRST>(&mut s0, &mut s2, f02);
            ifft_pair::<L, FIRST>(&mut s1, &mut s3, f02);
            L::store(b0, s0);
            L::store(b1, s1);
            L::store(b2, s2);
            L::store(b3, s3);
        }
    }
}

/// [`fft4`] with scaled outputs: see
/// [`Kernel::fft4_scaled`](super::Kernel::fft4_scaled).
///
/// # Safety
/// The [`Lanes16`] contract.
#[inline(always)]
pub(super) unsafe fn fft4_scaled<L: Lanes16, const FIRST: bool>(
    q: [&mut [Block]; 4],
    f01: &L::Factor,
    f23: &L::Factor,
    f02: &L::Factor,
    scale: [Option<&L::Factor>; 4],
) {
    let [q0, q1, q2, q3] = q;
    // SAFETY: the caller guarantees the instruction set.
    unsafe {
        if !L::REGISTER_RADIX4 {
            for [c0, c1, c2, c3] in chunked([q0, q1, q2, q3]) {
                fft4::<L, FIRST>([&mut *c0, &mut *c1, &mut *c2, &mut *c3], f01, f23, f02);
                for (run, scale) in [c0, c1, c2, c3].into_iter().zip(scale) {
                    if let Some(f) = scale {
                        mul::<L>(run, f);
                    }
                }
            }
            return;
        }
        let (f01, f23, f02) = (
            L::load_factor(f01),
            L::load_factor(f23),
            L::load_factor(f02),
        );
        let scale = scale.map(|s| s.map(|f| L::load_factor(f)));
        let output = |block: &mut Block, v: L::Vector, scale: Option<L::Loaded>| {
            if let Some(f) = scale {
                L::store(block, L::mul(v, f));
            }
        };
        let runs = q0
            .iter_mut()
            .zip(q1.iter_mut())
            .zip(q2.iter_mut().zip(q3.iter_mut()));
        for ((b0, b1), (b2, b3)) in runs {
            let (mut s0, mut s1, mut s2, mut s3) =
                (L::load(b0), L::load(b1), L::load(b2), L::load(b3));
            fft_pair::<L, FIRST>(&mut s0, &mut s2, f02);
            fft_pair::<L, FIRST>(&mut s1, &mut s3, f02);
            fft_pair::<L, FIRST>(&mut s0, &mut s1, f01);
            fft_pair::<L, false>(&mut s2, &mut s3, f23);
            output(b0, s0, scale[0]);
            output(b1, s1, scale[1]);
            output(b2, s2, scale[2]);
            output(b3, s3, scale[3]);
        }
    }
}

/// The formal derivative fused into the top layer(s) of a forward
/// transform of all `n` shards (delta 0, so only `f23` is non-zero): see
/// [`Kernel::derivative_fft`](super::Kernel::derivative_fft). `RADIX` is 2
/// (one layer, `f[0]`) or 4 (two layers, `f = [f01, f23, f02]`).
///
/// Derivative output `p` is input `p` plus input `p + 2^t` for every clear
/// bit `t` of `p`: it reads only inputs above `p`. The top pass visits the
/// groups `{i + j * n / RADIX}` in ascending `i`, so when group `i` is
/// computed and written back in place, every input it reads (its own, and
/// those of the groups `i + 2^t` above it) is still the original; the terms
/// within a group come from registers.
///
/// # Safety
/// The [`Lanes16`] contract, `data.len() == n * bps`, `n` a power of two
/// and at least `RADIX`.
#[inline(always)]
pub(super) unsafe fn derivative_fft<L: Lanes16, const RADIX: usize>(
    data: &mut [Block],
    bps: usize,
    n: usize,
    f: [&L::Factor; 3],
) {
    debug_assert!(data.len() == n * bps && n.is_power_of_two() && n >= RADIX);
    let stride = n / RADIX;
    let levels = stride.trailing_zeros() as usize;
    let blocks = data.as_mut_ptr();
    // SAFETY: the caller guarantees the instruction set and the sizes; every
    // shard index below is under `n` (`i + 2^t < stride` for a clear bit
    // `t < levels` of `i < stride`), so each `add` stays inside `data`,
    // which is accessed through these pointers only while they are used.
    unsafe {
        let factors = f.map(|f| L::load_factor(f));
        let mut offsets = [0usize; 16];
        for i in 0..stride {
            let mut count = 0;
            for t in 0..levels {
                if i & (1 << t) == 0 {
                    offsets[count] = (1 << t) * bps;
                    count += 1;
                }
            }
            let group: [*mut Block; RADIX] =
                std::array::from_fn(|j| blocks.add((i + j * stride) * bps));
            for c in 0..bps {
                let at: [*mut Block; RADIX] = std::array::from_fn(|j| group[j].add(c));
                let x: [L::Vector; RADIX] = std::array::from_fn(|j| L::load(&*at[j]));
                let mut y = x;
                for &offset in &offsets[..count] {
                    for (v, p) in y.iter_mut().zip(&at) {
                        *v = L::xor(*v, L::load(&*p.add(offset)));
                    }
                }
                // The group's own terms: member `j` gains member `j + 2^u`
                // for each clear bit `u` of `j`.
                for (j, v) in y.iter_mut().enumerate() {
                    let mut u = 1;
                    while u < RADIX {
                        if j & u == 0 {
                            *v = L::xor(*v, x[j + u]);
                        }
                        u <<= 1;
                    }
                }
                if RADIX == 2 {
                    let (mut s0, mut s1) = (y[0], y[1]);
                    fft_pair::<L, true>(&mut s0, &mut s1, factors[0]);
                    y[0] = s0;
                    y[1] = s1;
                } else {
                    let (mut s0, mut s1, mut s2, mut s3) = (y[0], y[1], y[2], y[3]);
                    fft_pair::<L, true>(&mut s0, &mut s2, factors[2]);
                    fft_pair::<L, true>(&mut s1, &mut s3, factors[2]);
                    fft_pair::<L, true>(&mut s0, &mut s1, factors[0]);
                    fft_pair::<L, false>(&mut s2, &mut s3, factors[1]);
                    y[0] = s0;
                    y[1] = s1;
                    y[2] = s2;
                    y[3] = s3;
                }
                for (v, p) in y.iter().zip(&at) {
                    L::store(&mut **p, *v);
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
        $token:ident, $lanes:ty, $factor:ty, $backend:path, $features:literal, $factors:path
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
            pub(super) unsafe fn mul_add(x: &mut [Block], y: &[Block], f: &$factor) {
                // SAFETY: the features are enabled on this function.
                unsafe { lanes::mul_add::<$lanes>(x, y, f) }
            }

            /// # Safety
            /// The CPU supports the features enabled here.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn fft2(x: &mut [Block], y: &mut [Block], f: &$factor, first: bool) {
                // SAFETY: the features are enabled on this function.
                unsafe {
                    if first {
                        lanes::fft2::<$lanes, true>(x, y, f)
                    } else {
                        lanes::fft2::<$lanes, false>(x, y, f)
                    }
                }
            }

            /// # Safety
            /// The CPU supports the features enabled here.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn ifft2(
                x: &mut [Block],
                y: &mut [Block],
                f: &$factor,
                live: usize,
                first: bool,
            ) {
                // SAFETY: the features are enabled on this function.
                unsafe {
                    match (live > 1, first) {
                        (true, false) => lanes::ifft2::<$lanes, 2, false>(x, y, f),
                        (true, true) => lanes::ifft2::<$lanes, 2, true>(x, y, f),
                        (false, false) => lanes::ifft2::<$lanes, 1, false>(x, y, f),
                        (false, true) => lanes::ifft2::<$lanes, 1, true>(x, y, f),
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
                first: bool,
            ) {
                // SAFETY: the features are enabled on this function.
                unsafe {
                    if first {
                        lanes::fft4::<$lanes, true>(q, f01, f23, f02)
                    } else {
                        lanes::fft4::<$lanes, false>(q, f01, f23, f02)
                    }
                }
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
                first: bool,
            ) {
                // SAFETY: the features are enabled on this function.
                unsafe {
                    match (live, first) {
                        (1, false) => lanes::ifft4::<$lanes, 1, false>(q, f01, f23, f02),
                        (2, false) => lanes::ifft4::<$lanes, 2, false>(q, f01, f23, f02),
                        (3, false) => lanes::ifft4::<$lanes, 3, false>(q, f01, f23, f02),
                        (_, false) => lanes::ifft4::<$lanes, 4, false>(q, f01, f23, f02),
                        (1, true) => lanes::ifft4::<$lanes, 1, true>(q, f01, f23, f02),
                        (2, true) => lanes::ifft4::<$lanes, 2, true>(q, f01, f23, f02),
                        (3, true) => lanes::ifft4::<$lanes, 3, true>(q, f01, f23, f02),
                        (_, true) => lanes::ifft4::<$lanes, 4, true>(q, f01, f23, f02),
                    }
                }
            }

            /// # Safety
            /// The CPU supports the features enabled here.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn ifft4_scaled(
                q: [&mut [Block]; 4],
                scale: [Option<&$factor>; 4],
                f01: &$factor,
                f23: &$factor,
                f02: &$factor,
                first: bool,
            ) {
                // SAFETY: the features are enabled on this function.
                unsafe {
                    if first {
                        lanes::ifft4_scaled::<$lanes, true>(q, scale, f01, f23, f02)
                    } else {
                        lanes::ifft4_scaled::<$lanes, false>(q, scale, f01, f23, f02)
                    }
                }
            }

            /// # Safety
            /// The CPU supports the features enabled here.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn fft4_scaled(
                q: [&mut [Block]; 4],
                f01: &$factor,
                f23: &$factor,
                f02: &$factor,
                first: bool,
                scale: [Option<&$factor>; 4],
            ) {
                // SAFETY: the features are enabled on this function.
                unsafe {
                    if first {
                        lanes::fft4_scaled::<$lanes, true>(q, f01, f23, f02, scale)
                    } else {
                        lanes::fft4_scaled::<$lanes, false>(q, f01, f23, f02, scale)
                    }
                }
            }

            /// # Safety
            /// The CPU supports the features enabled here, and the sizes
            /// are as [`lanes::derivative_fft`] requires.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn derivative_fft(
                data: &mut [Block],
                bps: usize,
                n: usize,
                f: [&$factor; 3],
                radix: usize,
            ) {
                // SAFETY: the features are enabled on this function; the
                // sizes are the caller's contract.
                unsafe {
                    if radix == 2 {
                        lanes::derivative_fft::<$lanes, 2>(data, bps, n, f)
                    } else {
                        lanes::derivative_fft::<$lanes, 4>(data, bps, n, f)
                    }
                }
            }
        }

        impl crate::rs16::kernel::Kernel for $token {
            type Factor = $factor;
            const BACKEND: crate::gf256::Backend = $backend;

            fn factors() -> &'static crate::rs16::kernel::Factors<$factor> {
                &$factors
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

            fn mul_add(
                self,
                x: &mut [crate::rs16::shards::Block],
                y: &[crate::rs16::shards::Block],
                f: &$factor,
            ) {
                crate::rs16::kernel::check_lengths(&[x.len(), y.len()]);
                // SAFETY: as in `mul`.
                unsafe { shells::mul_add(x, y, f) }
            }

            fn fft2(
                self,
                x: &mut [crate::rs16::shards::Block],
                y: &mut [crate::rs16::shards::Block],
                f: &$factor,
                first: bool,
            ) {
                crate::rs16::kernel::check_lengths(&[x.len(), y.len()]);
                // SAFETY: as in `mul`.
                unsafe { shells::fft2(x, y, f, first) }
            }

            fn ifft2(
                self,
                x: &mut [crate::rs16::shards::Block],
                y: &mut [crate::rs16::shards::Block],
                f: &$factor,
                live: usize,
                first: bool,
            ) {
                crate::rs16::kernel::check_lengths(&[x.len(), y.len()]);
                // SAFETY: as in `mul`.
                unsafe { shells::ifft2(x, y, f, live, first) }
            }

            fn fft4(
                self,
                q: [&mut [crate::rs16::shards::Block]; 4],
                f01: &$factor,
                f23: &$factor,
                f02: &$factor,
                first: bool,
            ) {
                crate::rs16::kernel::check_lengths(&[q[0].len(), q[1].len(), q[2].len(), q[3].len()]);
                // SAFETY: as in `mul`.
                unsafe { shells::fft4(q, f01, f23, f02, first) }
            }

            fn ifft4(
                self,
                q: [&mut [crate::rs16::shards::Block]; 4],
                f01: &$factor,
                f23: &$factor,
                f02: &$factor,
                live: usize,
                first: bool,
            ) {
                crate::rs16::kernel::check_lengths(&[q[0].len(), q[1].len(), q[2].len(), q[3].len()]);
                // SAFETY: as in `mul`.
                unsafe { shells::ifft4(q, f01, f23, f02, live, first) }
            }

            fn ifft4_scaled(
                self,
                q: [&mut [crate::rs16::shards::Block]; 4],
                scale: [Option<&$factor>; 4],
                f01: &$factor,
                f23: &$factor,
                f02: &$factor,
                first: bool,
            ) {
                crate::rs16::kernel::check_lengths(&[q[0].len(), q[1].len(), q[2].len(), q[3].len()]);
                // SAFETY: as in `mul`.
                unsafe { shells::ifft4_scaled(q, scale, f01, f23, f02, first) }
            }

            fn fft4_scaled(
                self,
                q: [&mut [crate::rs16::shards::Block]; 4],
                f01: &$factor,
                f23: &$factor,
                f02: &$factor,
                first: bool,
                scale: [Option<&$factor>; 4],
            ) {
                crate::rs16::kernel::check_lengths(&[q[0].len(), q[1].len(), q[2].len(), q[3].len()]);
                // SAFETY: as in `mul`.
                unsafe { shells::fft4_scaled(q, f01, f23, f02, first, scale) }
            }

            fn derivative_fft(
                self,
                data: &mut [crate::rs16::shards::Block],
                bps: usize,
                n: usize,
                f: [&$factor; 3],
            ) {
                let radix = crate::rs16::kernel::check_derivative_fft(data.len(), bps, n);
                // SAFETY: as in `mul`; the sizes were just checked.
                unsafe { shells::derivative_fft(data, bps, n, f, radix) }
            }
        }
    };
}

pub(super) use simd_kernel;
