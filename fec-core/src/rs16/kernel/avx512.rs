//! AVX-512BW kernel: a whole block in one 512-bit register, low bytes in the
//! lower half and high bytes in the upper half.
//!
//! Each output half needs lookups on both input halves. One `vpshufb` on
//! the nibbles of the block serves both output halves (its lower lanes'
//! table feeds the low bytes, its upper lanes' the high bytes), and the same
//! on the half-swapped nibbles covers the cross terms, so a product is four
//! lookups on tables stored per factor in that arrangement.

use std::arch::x86_64::{
    __m512i, _mm512_and_si512, _mm512_load_si512, _mm512_loadu_si512, _mm512_set1_epi8,
    _mm512_setzero_si512, _mm512_shuffle_epi8, _mm512_shuffle_i64x2, _mm512_srli_epi64,
    _mm512_storeu_si512, _mm512_ternarylogic_epi64, _mm512_xor_si512,
};

use super::lanes::{simd_kernel, Lanes16};
use super::{nibble_products, Factors, Prepared};
use crate::gf256::Backend;
use crate::rs16::shards::Block;

/// Four 64-byte tables, each lane group holding the 16-byte table its lanes
/// need: for the block's own nibbles `[lo0 lo0 | hi2 hi2]` and
/// `[lo1 lo1 | hi3 hi3]`, for the swapped ones `[lo2 lo2 | hi0 hi0]` and
/// `[lo3 lo3 | hi1 hi1]`, where `loN`/`hiN` are the low/high bytes of the
/// products with nibble `N` of the element.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(crate) struct SplitTables([[u8; 64]; 4]);

impl Prepared for SplitTables {
    fn build(element: u16) -> Self {
        let products = nibble_products(element);
        let low = |n: usize| products[n].map(|p| p as u8);
        let high = |n: usize| products[n].map(|p| (p >> 8) as u8);
        let arrange = |lower: [u8; 16], upper: [u8; 16]| {
            let mut table = [0u8; 64];
            for (i, lane) in table.chunks_exact_mut(16).enumerate() {
                lane.copy_from_slice(if i < 2 { &lower } else { &upper });
            }
            table
        };
        SplitTables([
            arrange(low(0), high(2)),
            arrange(low(1), high(3)),
            arrange(low(2), high(0)),
            arrange(low(3), high(1)),
        ])
    }

    fn xor(&self, other: &Self) -> Self {
        SplitTables(std::array::from_fn(|t| {
            std::array::from_fn(|i| self.0[t][i] ^ other.0[t][i])
        }))
    }
}

static FACTORS: Factors<SplitTables> = Factors::new();

/// The AVX-512BW instruction set as [`Lanes16`] sees it.
pub(super) struct Avx512Lanes;

/// Swaps the 256-bit halves.
#[inline(always)]
unsafe fn swap_halves(v: __m512i) -> __m512i {
    // SAFETY: AVX-512F present (callers' contract).
    unsafe { _mm512_shuffle_i64x2::<0b01_00_11_10>(v, v) }
}

impl Lanes16 for Avx512Lanes {
    type Vector = __m512i;
    type Factor = SplitTables;
    type Loaded = [__m512i; 4];
    const REGISTER_RADIX4: bool = true;

    #[inline(always)]
    unsafe fn zero() -> __m512i {
        // SAFETY: the instruction set is present (trait contract).
        unsafe { _mm512_setzero_si512() }
    }

    #[inline(always)]
    unsafe fn load_factor(f: &SplitTables) -> [__m512i; 4] {
        // SAFETY: AVX-512F present; `f` is 64-byte aligned, 4 x 64 bytes.
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
    unsafe fn mul(v: __m512i, t: [__m512i; 4]) -> __m512i {
        // SAFETY: AVX-512F/BW present.
        unsafe {
            let mask = _mm512_set1_epi8(0x0F);
            let low = _mm512_and_si512(v, mask);
            let high = _mm512_and_si512(_mm512_srli_epi64::<4>(v), mask);
            let a = _mm512_shuffle_epi8(t[0], low);
            let b = _mm512_shuffle_epi8(t[1], high);
            let c = _mm512_shuffle_epi8(t[2], swap_halves(low));
            let d = _mm512_shuffle_epi8(t[3], swap_halves(high));
            // 0x96 is the three-way XOR.
            _mm512_ternarylogic_epi64::<0x96>(a, b, _mm512_xor_si512(c, d))
        }
    }

    #[inline(always)]
    unsafe fn mul_xor(acc: __m512i, v: __m512i, t: [__m512i; 4]) -> __m512i {
        // SAFETY: AVX-512F/BW present.
        unsafe {
            let mask = _mm512_set1_epi8(0x0F);
            let low = _mm512_and_si512(v, mask);
            let high = _mm512_and_si512(_mm512_srli_epi64::<4>(v), mask);
            let a = _mm512_shuffle_epi8(t[0], low);
            let b = _mm512_shuffle_epi8(t[1], high);
            let c = _mm512_shuffle_epi8(t[2], swap_halves(low));
            let d = _mm512_shuffle_epi8(t[3], swap_halves(high));
            _mm512_ternarylogic_epi64::<0x96>(acc, a, _mm512_ternarylogic_epi64::<0x96>(b, c, d))
        }
    }
}

simd_kernel!(
    /// The AVX-512BW kernel token.
    Avx512,
    Avx512Lanes,
    SplitTables,
    Backend::Avx512,
    "avx512f,avx512bw",
    FACTORS
);
