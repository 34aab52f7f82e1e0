//! GFNI kernel: a whole block in one 512-bit register (low bytes in the
//! lower half, high bytes in the upper), multiplied with `vgf2p8affineqb`.
//!
//! Multiplication by a constant is GF(2)-linear, a 16 x 16 bit matrix, so
//! four 8 x 8 blocks: low-from-low `A`, low-from-high `B`, high-from-low
//! `C`, high-from-high `D`. The affine instruction applies one 8 x 8 matrix
//! per 64-bit lane, so one matrix vector `[A.. | D..]` on the block and one
//! `[B.. | C..]` on the block with its halves swapped give the whole
//! product in two instructions.

use std::arch::x86_64::{
    __m512i, _mm512_gf2p8affine_epi64_epi8, _mm512_load_si512, _mm512_loadu_si512,
    _mm512_setzero_si512, _mm512_shuffle_i64x2, _mm512_storeu_si512, _mm512_ternarylogic_epi64,
    _mm512_xor_si512,
};

use super::lanes::{simd_kernel, Lanes16};
use super::{bit_products, Factors, Prepared};
use crate::gf256::Backend;
use crate::rs16::shards::Block;

/// The two matrix vectors of one constant, `[A x4 | D x4]` and
/// `[B x4 | C x4]`, in `gf2p8affineqb` layout.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(crate) struct AffineMatrices([[u64; 8]; 2]);

/// Transposes an 8 x 8 bit matrix held as 8 bytes (bit `j` of byte `i` is
/// entry `(i, j)`), by three rounds of swapping off-diagonal blocks
/// (Hacker's Delight, `transpose8`).
fn transpose8(mut x: u64) -> u64 {
    let mut t = (x ^ (x >> 7)) & 0x00AA_00AA_00AA_00AA;
    x ^= t ^ (t << 7);
    t = (x ^ (x >> 14)) & 0x0000_CCCC_0000_CCCC;
    x ^= t ^ (t << 14);
    t = (x ^ (x >> 28)) & 0x0000_0000_F0F0_F0F0;
    x ^ t ^ (t << 28)
}

/// The `gf2p8affineqb` form of the 8 x 8 block of "multiply by the
/// constant" taking input bits `from..from + 8` to output bits
/// `to..to + 8`: byte `7 - i` computes output bit `i`, its bit `j` says
/// whether input bit `j` contributes. Byte `j` of the gathered columns has
/// bit `i` for output bit `i`; transposing makes byte `i` the row of output
/// bit `i`, and reversing the bytes puts it at `7 - i`.
fn affine_block(columns: &[u16; 16], from: usize, to: usize) -> u64 {
    let gathered = (0..8).fold(0u64, |acc, j| {
        acc | u64::from((columns[from + j] >> to) as u8) << (8 * j)
    });
    transpose8(gathered).swap_bytes()
}

impl Prepared for AffineMatrices {
    fn build(element: u16) -> Self {
        let columns = bit_products(element);
        let [a, b, c, d] =
            [(0, 0), (8, 0), (0, 8), (8, 8)].map(|(from, to)| affine_block(&columns, from, to));
        AffineMatrices([[a, a, a, a, d, d, d, d], [b, b, b, b, c, c, c, c]])
    }

    fn xor(&self, other: &Self) -> Self {
        AffineMatrices(std::array::from_fn(|v| {
            std::array::from_fn(|i| self.0[v][i] ^ other.0[v][i])
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The transposing construction against the definition, bit by bit.
    #[test]
    fn affine_blocks_follow_the_definition() {
        for element in [0u16, 1, 2, 0x8000, 0x1234, 0xFFFF, 0xACCA] {
            let columns = bit_products(element);
            for (from, to) in [(0, 0), (8, 0), (0, 8), (8, 8)] {
                let mut expected = 0u64;
                for j in 0..8 {
                    for i in 0..8 {
                        if columns[from + j] & (1 << (to + i)) != 0 {
                            expected |= 1 << (8 * (7 - i) + j);
                        }
                    }
                }
                assert_eq!(affine_block(&columns, from, to), expected);
            }
        }
    }
}

static FACTORS: Factors<AffineMatrices> = Factors::new();

/// The GFNI instruction set (with AVX-512F) as [`Lanes16`] sees it.
pub(super) struct GfniLanes;

impl GfniLanes {
    /// The two partial products, own halves and swapped halves.
    #[inline(always)]
    unsafe fn partial(v: __m512i, m: [__m512i; 2]) -> (__m512i, __m512i) {
        // SAFETY: AVX-512F and GFNI present (callers' contract).
        unsafe {
            let swapped = _mm512_shuffle_i64x2::<0b01_00_11_10>(v, v);
            (
                _mm512_gf2p8affine_epi64_epi8::<0>(v, m[0]),
                _mm512_gf2p8affine_epi64_epi8::<0>(swapped, m[1]),
            )
        }
    }
}

impl Lanes16 for GfniLanes {
    type Vector = __m512i;
    type Factor = AffineMatrices;
    type Loaded = [__m512i; 2];
    const REGISTER_RADIX4: bool = true;

    #[inline(always)]
    unsafe fn zero() -> __m512i {
        // SAFETY: the instruction set is present (trait contract).
        unsafe { _mm512_setzero_si512() }
    }

    #[inline(always)]
    unsafe fn load_factor(f: &AffineMatrices) -> [__m512i; 2] {
        // SAFETY: AVX-512F present; `f` is 64-byte aligned, 2 x 64 bytes.
        unsafe { std::array::from_fn(|i| _mm512_load_si512(f.0[i].as_ptr().cast())) }
    }

    #[inline(always)]
    unsafe fn load(block: &Block) -> __m512i {
        // SAFETY: AVX-512F present; `block` is 64 readable bytes.
        unsafe { _mm512_loadu_si512(block.as_ptr().cast()) }
    }

    #[inline(always)]
    unsafe fn store(block: &mut Block, v: __m512i) {
        // SAFETY: AVX-512F present; `block` is 64 writable bytes.
        unsafe { _mm512_storeu_si512(block.as_mut_ptr().cast(), v) }
    }

    #[inline(always)]
    unsafe fn xor(a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: AVX-512F present.
        unsafe { _mm512_xor_si512(a, b) }
    }

    #[inline(always)]
    unsafe fn mul(v: __m512i, m: [__m512i; 2]) -> __m512i {
        // SAFETY: AVX-512F and GFNI present.
        unsafe {
            let (own, cross) = Self::partial(v, m);
            _mm512_xor_si512(own, cross)
        }
    }

    #[inline(always)]
    unsafe fn mul_xor(acc: __m512i, v: __m512i, m: [__m512i; 2]) -> __m512i {
        // SAFETY: AVX-512F and GFNI present.
        unsafe {
            let (own, cross) = Self::partial(v, m);
            // 0x96 is the three-way XOR.
            _mm512_ternarylogic_epi64::<0x96>(acc, own, cross)
        }
    }
}

simd_kernel!(
    /// The GFNI kernel token.
    Gfni,
    GfniLanes,
    AffineMatrices,
    Backend::Gfni,
    "avx512f,avx512bw,gfni",
    FACTORS
);
