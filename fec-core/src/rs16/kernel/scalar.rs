//! Portable kernel: four 16-entry lookups per element. The reference the
//! SIMD kernels are tested against, and the fallback everywhere else.

#![forbid(unsafe_code)]

use super::{check_lengths, nibble_products, Factors, Kernel, Prepared};
use crate::gf256::Backend;
use crate::rs16::shards::Block;

/// The portable kernel (always available).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scalar;

/// `[n][v]` is the constant times `v << 4n`.
pub(crate) type NibbleProducts = [[u16; 16]; 4];

static FACTORS: Factors<NibbleProducts> = Factors::new();

impl Prepared for NibbleProducts {
    fn build(element: u16) -> Self {
        nibble_products(element)
    }

    fn xor(&self, other: &Self) -> Self {
        std::array::from_fn(|n| std::array::from_fn(|v| self[n][v] ^ other[n][v]))
    }
}

#[inline(always)]
fn product(t: &NibbleProducts, x: u16) -> u16 {
    t[0][usize::from(x & 15)]
        ^ t[1][usize::from((x >> 4) & 15)]
        ^ t[2][usize::from((x >> 8) & 15)]
        ^ t[3][usize::from(x >> 12)]
}

/// `x ^= f * y` on one block (`ADD`), or `x = f * y`.
#[inline(always)]
fn mul_block<const ADD: bool>(x: &mut Block, y: &Block, t: &NibbleProducts) {
    for i in 0..32 {
        let p = product(t, u16::from_le_bytes([y[i], y[32 + i]]));
        if ADD {
            x[i] ^= p as u8;
            x[32 + i] ^= (p >> 8) as u8;
        } else {
            x[i] = p as u8;
            x[32 + i] = (p >> 8) as u8;
        }
    }
}

#[inline(always)]
fn xor_block(x: &mut Block, y: &Block) {
    for (a, b) in x.iter_mut().zip(y) {
        *a ^= b;
    }
}

#[inline(always)]
fn fft_block(x: &mut Block, y: &mut Block, f: &NibbleProducts) {
    mul_block::<true>(x, y, f);
    xor_block(y, x);
}

#[inline(always)]
fn ifft_block(x: &mut Block, y: &mut Block, f: &NibbleProducts) {
    xor_block(y, x);
    mul_block::<true>(x, y, f);
}

impl Kernel for Scalar {
    type Factor = NibbleProducts;
    const BACKEND: Backend = Backend::Scalar;

    fn factors() -> &'static Factors<NibbleProducts> {
        &FACTORS
    }

    fn mul(self, x: &mut [Block], f: &NibbleProducts) {
        for block in x {
            let y = *block;
            mul_block::<false>(block, &y, f);
        }
    }

    fn xor(self, x: &mut [Block], y: &[Block]) {
        check_lengths(&[x.len(), y.len()]);
        for (a, b) in x.iter_mut().zip(y) {
            xor_block(a, b);
        }
    }

    fn mul_add(self, x: &mut [Block], y: &[Block], f: &NibbleProducts) {
        check_lengths(&[x.len(), y.len()]);
        for (a, b) in x.iter_mut().zip(y) {
            mul_block::<true>(a, b, f);
        }
    }

    // The scalar kernel ignores `first`: it multiplies by the zero twiddle's
    // tables, which is the reference result the hint must reproduce.
    fn fft2(self, x: &mut [Block], y: &mut [Block], f: &NibbleProducts, _first: bool) {
        check_lengths(&[x.len(), y.len()]);
        for (a, b) in x.iter_mut().zip(y.iter_mut()) {
            fft_block(a, b, f);
        }
    }

    fn ifft2(
        self,
        x: &mut [Block],
        y: &mut [Block],
        f: &NibbleProducts,
        live: usize,
        _first: bool,
    ) {
        check_lengths(&[x.len(), y.len()]);
        for (a, b) in x.iter_mut().zip(y.iter_mut()) {
            if live < 2 {
                *b = [0; 64];
            }
            ifft_block(a, b, f);
        }
    }

    fn fft4(
        self,
        q: [&mut [Block]; 4],
        f01: &NibbleProducts,
        f23: &NibbleProducts,
        f02: &NibbleProducts,
        _first: bool,
    ) {
        let [q0, q1, q2, q3] = q;
        check_lengths(&[q0.len(), q1.len(), q2.len(), q3.len()]);
        for i in 0..q0.len() {
            let (s0, s1, s2, s3) = (&mut q0[i], &mut q1[i], &mut q2[i], &mut q3[i]);
            fft_block(s0, s2, f02);
            fft_block(s1, s3, f02);
            fft_block(s0, s1, f01);
            fft_block(s2, s3, f23);
        }
    }

    fn ifft4(
        self,
        q: [&mut [Block]; 4],
        f01: &NibbleProducts,
        f23: &NibbleProducts,
        f02: &NibbleProducts,
        live: usize,
        _first: bool,
    ) {
        let [q0, q1, q2, q3] = q;
        check_lengths(&[q0.len(), q1.len(), q2.len(), q3.len()]);
        for i in 0..q0.len() {
            let (s0, s1, s2, s3) = (&mut q0[i], &mut q1[i], &mut q2[i], &mut q3[i]);
            for (index, block) in [&mut *s1, &mut *s2, &mut *s3].into_iter().enumerate() {
                if index + 1 >= live {
                    *block = [0; 64];
                }
            }
            ifft_block(s0, s1, f01);
            ifft_block(s2, s3, f23);
            ifft_block(s0, s2, f02);
            ifft_block(s1, s3, f02);
        }
    }

    fn ifft4_scaled(
        self,
        q: [&mut [Block]; 4],
        scale: [Option<&NibbleProducts>; 4],
        f01: &NibbleProducts,
        f23: &NibbleProducts,
        f02: &NibbleProducts,
        first: bool,
    ) {
        let [q0, q1, q2, q3] = q;
        check_lengths(&[q0.len(), q1.len(), q2.len(), q3.len()]);
        for (run, scale) in [&mut *q0, &mut *q1, &mut *q2, &mut *q3]
            .into_iter()
            .zip(scale)
        {
            match scale {
                Some(f) => self.mul(run, f),
                None => run.fill([0; 64]),
            }
        }
        self.ifft4([q0, q1, q2, q3], f01, f23, f02, 4, first);
    }

    fn fft4_scaled(
        self,
        q: [&mut [Block]; 4],
        f01: &NibbleProducts,
        f23: &NibbleProducts,
        f02: &NibbleProducts,
        first: bool,
        scale: [Option<&NibbleProducts>; 4],
    ) {
        let [q0, q1, q2, q3] = q;
        self.fft4(
            [&mut *q0, &mut *q1, &mut *q2, &mut *q3],
            f01,
            f23,
            f02,
            first,
        );
        for (run, scale) in [q0, q1, q2, q3].into_iter().zip(scale) {
            if let Some(f) = scale {
                self.mul(run, f);
            }
        }
    }

    fn derivative_fft(self, data: &mut [Block], bps: usize, n: usize, f: [&NibbleProducts; 3]) {
        // The reference: the derivative step by step, then the layer(s).
        let radix = super::check_derivative_fft(data.len(), bps, n);
        for i in 1..n {
            let w = 1 << i.trailing_zeros();
            let (low, high) = data.split_at_mut(i * bps);
            self.xor(&mut low[(i - w) * bps..], &high[..w * bps]);
        }
        let run = n / radix * bps;
        if radix == 2 {
            let (x, y) = data.split_at_mut(run);
            self.fft2(x, y, f[0], true);
        } else {
            let (a, rest) = data.split_at_mut(run);
            let (b, rest) = rest.split_at_mut(run);
            let (c, d) = rest.split_at_mut(run);
            self.fft4([a, b, c, d], f[0], f[1], f[2], true);
        }
    }
}
