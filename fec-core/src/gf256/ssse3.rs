//! SSSE3 backend: split-nibble `pshufb` on 128-bit vectors, one 16-byte
//! table load per nibble half.

use std::arch::x86_64::{
    __m128i, _mm_and_si128, _mm_loadu_si128, _mm_set1_epi8, _mm_setzero_si128, _mm_shuffle_epi8,
    _mm_srli_epi64, _mm_storeu_si128, _mm_xor_si128,
};
use std::ptr;

use super::lanes::{self, Lanes, MatrixCall};
use super::NibbleTable;

/// Marker for SSSE3.
pub(super) struct Ssse3;

impl Lanes for Ssse3 {
    const WIDTH: usize = 16;
    type Vector = __m128i;
    type Operand = (__m128i, __m128i);
    type Stored = NibbleTable;
    type Factor = (__m128i, __m128i);

    #[inline(always)]
    unsafe fn zero() -> __m128i {
        // SAFETY: SSE2 present by the trait contract.
        unsafe { _mm_setzero_si128() }
    }

    #[inline(always)]
    unsafe fn load(ptr: *const u8) -> __m128i {
        // SAFETY: SSE2 present, `ptr` valid for 16 bytes (contract).
        unsafe { _mm_loadu_si128(ptr.cast()) }
    }

    #[inline(always)]
    unsafe fn load_partial(ptr: *const u8, len: usize) -> __m128i {
        let mut buf = [0u8; 16];
        // SAFETY: `ptr` is valid for `len < 16` reads (contract) and `buf`
        // for 16; SSE2 present.
        unsafe {
            ptr::copy_nonoverlapping(ptr, buf.as_mut_ptr(), len);
            _mm_loadu_si128(buf.as_ptr().cast())
        }
    }

    #[inline(always)]
    unsafe fn store(ptr: *mut u8, v: __m128i) {
        // SAFETY: SSE2 present, `ptr` valid for 16 bytes of writes.
        unsafe { _mm_storeu_si128(ptr.cast(), v) }
    }

    #[inline(always)]
    unsafe fn store_partial(ptr: *mut u8, len: usize, v: __m128i) {
        let mut buf = [0u8; 16];
        // SAFETY: `buf` holds 16 bytes, `ptr` is valid for `len < 16`
        // writes (contract); SSE2 present.
        unsafe {
            _mm_storeu_si128(buf.as_mut_ptr().cast(), v);
            ptr::copy_nonoverlapping(buf.as_ptr(), ptr, len);
        }
    }

    #[inline(always)]
    unsafe fn xor(a: __m128i, b: __m128i) -> __m128i {
        // SAFETY: SSSE3 present.
        unsafe { _mm_xor_si128(a, b) }
    }

    #[inline(always)]
    unsafe fn operand(v: __m128i) -> (__m128i, __m128i) {
        // SAFETY: SSSE3 present.
        unsafe {
            let low_bits = _mm_set1_epi8(0x0F);
            (
                _mm_and_si128(v, low_bits),
                _mm_and_si128(_mm_srli_epi64::<4>(v), low_bits),
            )
        }
    }

    #[inline(always)]
    unsafe fn factor(stored: *const NibbleTable) -> (__m128i, __m128i) {
        // SAFETY: SSSE3 present; `stored` points at 32 readable bytes.
        unsafe {
            let p = stored.cast::<u8>();
            (_mm_loadu_si128(p.cast()), _mm_loadu_si128(p.add(16).cast()))
        }
    }

    #[inline(always)]
    unsafe fn mul(f: (__m128i, __m128i), x: (__m128i, __m128i)) -> __m128i {
        // SAFETY: SSSE3 present.
        unsafe { _mm_xor_si128(_mm_shuffle_epi8(f.0, x.0), _mm_shuffle_epi8(f.1, x.1)) }
    }
}

/// # Safety
/// The CPU supports SSSE3.
#[target_feature(enable = "ssse3")]
pub(super) unsafe fn mul_slice(c: u8, src: &[u8], dst: &mut [u8]) {
    // SAFETY: the feature is enabled on this function.
    unsafe { lanes::mul_slice::<Ssse3, false>(&NibbleTable::new(c), src, dst) }
}

/// # Safety
/// The CPU supports SSSE3.
#[target_feature(enable = "ssse3")]
pub(super) unsafe fn mul_add_slice(c: u8, src: &[u8], dst: &mut [u8]) {
    // SAFETY: the feature is enabled on this function.
    unsafe { lanes::mul_slice::<Ssse3, true>(&NibbleTable::new(c), src, dst) }
}

/// # Safety
/// The CPU supports SSSE3.
/// `acc`, `add` and every `spread` target are at least as long as `next`.
#[target_feature(enable = "ssse3")]
pub(super) unsafe fn mul_xor_spread(
    c: u8,
    acc: &[u8],
    add: Option<&[u8]>,
    next: &mut [u8],
    spread: &mut [&mut [u8]],
) {
    // SAFETY: the feature is enabled on this function; the lengths are the
    // caller's contract.
    unsafe { lanes::mul_xor_spread::<Ssse3>(&NibbleTable::new(c), acc, add, next, spread) }
}

/// # Safety
/// The CPU supports SSSE3.
/// Every source is at least as long as `dst`.
#[target_feature(enable = "ssse3")]
pub(super) unsafe fn sum_slices<const ADD: bool>(sources: &[&[u8]], dst: &mut [u8]) {
    // SAFETY: the feature is enabled on this function; the lengths are the
    // caller's contract.
    unsafe { lanes::sum_slices::<Ssse3, ADD>(sources, dst) }
}

/// # Safety
/// The CPU supports SSSE3.
#[target_feature(enable = "ssse3")]
pub(super) unsafe fn xor_slice(src: &[u8], dst: &mut [u8]) {
    // SAFETY: the feature is enabled on this function.
    unsafe { lanes::xor_slice::<Ssse3>(src, dst) }
}

/// # Safety
/// The CPU supports SSSE3, and `call` satisfies [`lanes::matrix_apply`]'s
/// pointer contract.
#[target_feature(enable = "ssse3")]
pub(super) unsafe fn matrix_apply(call: &MatrixCall<'_, NibbleTable>) {
    // SAFETY: the feature is enabled on this function; the rest is the
    // caller's contract.
    unsafe { lanes::matrix_apply::<Ssse3, 4, 1>(call) }
}
