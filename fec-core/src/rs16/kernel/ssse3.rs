//! SSSE3 kernel: a block is four 128-bit registers (two of low bytes, two of
//! high bytes), multiplied with split-nibble `pshufb` lookups.

use std::arch::x86_64::{
    __m128i, _mm_and_si128, _mm_load_si128, _mm_loadu_si128, _mm_set1_epi8, _mm_setzero_si128,
    _mm_shuffle_epi8, _mm_srli_epi64, _mm_storeu_si128, _mm_xor_si128,
};

use super::lanes::{simd_kernel, Lanes16};
use super::{NibbleTables, NIBBLE_FACTORS};
use crate::gf256::Backend;
use crate::rs16::shards::Block;

/// The SSSE3 instruction set as [`Lanes16`] sees it.
pub(super) struct Ssse3Lanes;

/// One half of a block: 16 low bytes and the 16 matching high bytes.
#[inline(always)]
unsafe fn mul_half(lo: __m128i, hi: __m128i, t: &[__m128i; 8]) -> (__m128i, __m128i) {
    // SAFETY: SSSE3 present by the `Lanes16` contract of the callers.
    unsafe {
        let mask = _mm_set1_epi8(0x0F);
        let n0 = _mm_and_si128(lo, mask);
        let n1 = _mm_and_si128(_mm_srli_epi64::<4>(lo), mask);
        let n2 = _mm_and_si128(hi, mask);
        let n3 = _mm_and_si128(_mm_srli_epi64::<4>(hi), mask);
        let product = |base: usize| {
            _mm_xor_si128(
                _mm_xor_si128(
                    _mm_shuffle_epi8(t[base], n0),
                    _mm_shuffle_epi8(t[base + 1], n1),
                ),
                _mm_xor_si128(
                    _mm_shuffle_epi8(t[base + 2], n2),
                    _mm_shuffle_epi8(t[base + 3], n3),
                ),
            )
        };
        (product(0), product(4))
    }
}

impl Lanes16 for Ssse3Lanes {
    /// Low bytes 0..16, 16..32, high bytes 0..16, 16..32.
    type Vector = [__m128i; 4];
    type Factor = NibbleTables;
    /// The four low-byte tables, then the four high-byte tables.
    type Loaded = [__m128i; 8];
    const REGISTER_RADIX4: bool = false;

    #[inline(always)]
    unsafe fn zero() -> [__m128i; 4] {
        // SAFETY: the instruction set is present (trait contract).
        unsafe { std::array::from_fn(|_| _mm_setzero_si128()) }
    }

    #[inline(always)]
    unsafe fn load_factor(f: &NibbleTables) -> [__m128i; 8] {
        // SAFETY: SSE2 present; `f` is 64-byte aligned and holds 8 x 16 bytes.
        unsafe {
            std::array::from_fn(|i| {
                let table = if i < 4 { &f.lo[i] } else { &f.hi[i - 4] };
                _mm_load_si128(table.as_ptr().cast())
            })
        }
    }

    #[inline(always)]
    unsafe fn load(block: &Block) -> [__m128i; 4] {
        // SAFETY: SSE2 present; `block` is 64 readable bytes.
        unsafe { std::array::from_fn(|i| _mm_loadu_si128(block.as_ptr().add(16 * i).cast())) }
    }

    #[inline(always)]
    unsafe fn store(block: &mut Block, v: [__m128i; 4]) {
        // SAFETY: SSE2 present; `block` is 64 writable bytes.
        unsafe {
            for (i, part) in v.iter().enumerate() {
                _mm_storeu_si128(block.as_mut_ptr().add(16 * i).cast(), *part);
            }
        }
    }

    #[inline(always)]
    unsafe fn xor(a: [__m128i; 4], b: [__m128i; 4]) -> [__m128i; 4] {
        // SAFETY: SSE2 present.
        unsafe { std::array::from_fn(|i| _mm_xor_si128(a[i], b[i])) }
    }

    #[inline(always)]
    unsafe fn mul(v: [__m128i; 4], f: [__m128i; 8]) -> [__m128i; 4] {
        // SAFETY: SSSE3 present by the trait contract.
        unsafe {
            let (lo0, hi0) = mul_half(v[0], v[2], &f);
            let (lo1, hi1) = mul_half(v[1], v[3], &f);
            [lo0, lo1, hi0, hi1]
        }
    }
}

simd_kernel!(
    /// The SSSE3 kernel token.
    Ssse3,
    Ssse3Lanes,
    NibbleTables,
    Backend::Ssse3,
    "ssse3",
    NIBBLE_FACTORS
);
