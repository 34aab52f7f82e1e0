//! AVX2 kernel: a block is two 256-bit registers (32 low bytes, 32 high
//! bytes), multiplied with split-nibble `vpshufb` lookups on tables
//! broadcast to both 128-bit lanes.

use std::arch::x86_64::{
    __m256i, _mm256_and_si256, _mm256_broadcastsi128_si256, _mm256_loadu_si256, _mm256_set1_epi8,
    _mm256_setzero_si256, _mm256_shuffle_epi8, _mm256_srli_epi64, _mm256_storeu_si256,
    _mm256_xor_si256, _mm_load_si128,
};

use super::lanes::{simd_kernel, Lanes16};
use super::{NibbleTables, NIBBLE_FACTORS};
use crate::gf256::Backend;
use crate::rs16::shards::Block;

/// The AVX2 instruction set as [`Lanes16`] sees it.
pub(super) struct Avx2Lanes;

impl Lanes16 for Avx2Lanes {
    /// Low bytes, high bytes.
    type Vector = (__m256i, __m256i);
    type Factor = NibbleTables;
    /// The four low-byte tables, then the four high-byte tables.
    type Loaded = [__m256i; 8];
    const REGISTER_RADIX4: bool = false;

    #[inline(always)]
    unsafe fn zero() -> (__m256i, __m256i) {
        // SAFETY: the instruction set is present (trait contract).
        unsafe { (_mm256_setzero_si256(), _mm256_setzero_si256()) }
    }

    #[inline(always)]
    unsafe fn load_factor(f: &NibbleTables) -> [__m256i; 8] {
        // SAFETY: AVX2 present; `f` is 64-byte aligned and holds 8 x 16 bytes.
        unsafe {
            std::array::from_fn(|i| {
                let table = if i < 4 { &f.lo[i] } else { &f.hi[i - 4] };
                _mm256_broadcastsi128_si256(_mm_load_si128(table.as_ptr().cast()))
            })
        }
    }

    #[inline(always)]
    unsafe fn load(block: &Block) -> (__m256i, __m256i) {
        // SAFETY: AVX present; `block` is 64 readable bytes.
        unsafe {
            let p = block.as_ptr();
            (
                _mm256_loadu_si256(p.cast()),
                _mm256_loadu_si256(p.add(32).cast()),
            )
        }
    }

    #[inline(always)]
    unsafe fn store(block: &mut Block, v: (__m256i, __m256i)) {
        // SAFETY: AVX present; `block` is 64 writable bytes.
        unsafe {
            let p = block.as_mut_ptr();
            _mm256_storeu_si256(p.cast(), v.0);
            _mm256_storeu_si256(p.add(32).cast(), v.1);
        }
    }

    #[inline(always)]
    unsafe fn xor(a: (__m256i, __m256i), b: (__m256i, __m256i)) -> (__m256i, __m256i) {
        // SAFETY: AVX2 present.
        unsafe { (_mm256_xor_si256(a.0, b.0), _mm256_xor_si256(a.1, b.1)) }
    }

    #[inline(always)]
    unsafe fn mul(v: (__m256i, __m256i), t: [__m256i; 8]) -> (__m256i, __m256i) {
        // SAFETY: AVX2 present.
        unsafe {
            let mask = _mm256_set1_epi8(0x0F);
            let n0 = _mm256_and_si256(v.0, mask);
            let n1 = _mm256_and_si256(_mm256_srli_epi64::<4>(v.0), mask);
            let n2 = _mm256_and_si256(v.1, mask);
            let n3 = _mm256_and_si256(_mm256_srli_epi64::<4>(v.1), mask);
            let product = |base: usize| {
                _mm256_xor_si256(
                    _mm256_xor_si256(
                        _mm256_shuffle_epi8(t[base], n0),
                        _mm256_shuffle_epi8(t[base + 1], n1),
                    ),
                    _mm256_xor_si256(
                        _mm256_shuffle_epi8(t[base + 2], n2),
                        _mm256_shuffle_epi8(t[base + 3], n3),
                    ),
                )
            };
            (product(0), product(4))
        }
    }
}

simd_kernel!(
    /// The AVX2 kernel token.
    Avx2,
    Avx2Lanes,
    NibbleTables,
    Backend::Avx2,
    "avx2",
    NIBBLE_FACTORS
);
