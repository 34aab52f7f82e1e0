//! AVX2 backend: split-nibble `vpshufb` on 256-bit vectors, the 16-byte
//! tables broadcast to both 128-bit lanes.

use std::arch::x86_64::{
    __m256i, _mm256_and_si256, _mm256_broadcastsi128_si256, _mm256_loadu_si256, _mm256_set1_epi8,
    _mm256_setzero_si256, _mm256_shuffle_epi8, _mm256_srli_epi64, _mm256_storeu_si256,
    _mm256_xor_si256, _mm_loadu_si128,
};
use std::ptr;

use super::lanes::{self, Lanes, MatrixCall};
use super::NibbleTable;

/// Marker for AVX2.
pub(super) struct Avx2;

impl Lanes for Avx2 {
    const WIDTH: usize = 32;
    type Vector = __m256i;
    type Operand = (__m256i, __m256i);
    type Stored = NibbleTable;
    type Factor = (__m256i, __m256i);

    #[inline(always)]
    unsafe fn zero() -> __m256i {
        // SAFETY: AVX present by the trait contract.
        unsafe { _mm256_setzero_si256() }
    }

    #[inline(always)]
    unsafe fn load(ptr: *const u8) -> __m256i {
        // SAFETY: AVX present, `ptr` valid for 32 bytes (contract).
        unsafe { _mm256_loadu_si256(ptr.cast()) }
    }

    #[inline(always)]
    unsafe fn load_partial(ptr: *const u8, len: usize) -> __m256i {
        let mut buf = [0u8; 32];
        // SAFETY: `ptr` is valid for `len < 32` reads (contract) and `buf`
        // for 32; AVX present.
        unsafe {
            ptr::copy_nonoverlapping(ptr, buf.as_mut_ptr(), len);
            _mm256_loadu_si256(buf.as_ptr().cast())
        }
    }

    #[inline(always)]
    unsafe fn store(ptr: *mut u8, v: __m256i) {
        // SAFETY: AVX present, `ptr` valid for 32 bytes of writes.
        unsafe { _mm256_storeu_si256(ptr.cast(), v) }
    }

    #[inline(always)]
    unsafe fn store_partial(ptr: *mut u8, len: usize, v: __m256i) {
        let mut buf = [0u8; 32];
        // SAFETY: `buf` holds 32 bytes, `ptr` is valid for `len < 32`
        // writes (contract); AVX present.
        unsafe {
            _mm256_storeu_si256(buf.as_mut_ptr().cast(), v);
            ptr::copy_nonoverlapping(buf.as_ptr(), ptr, len);
        }
    }

    #[inline(always)]
    unsafe fn xor(a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: AVX2 present.
        unsafe { _mm256_xor_si256(a, b) }
    }

    #[inline(always)]
    unsafe fn operand(v: __m256i) -> (__m256i, __m256i) {
        // SAFETY: AVX2 present.
        unsafe {
            let low_bits = _mm256_set1_epi8(0x0F);
            (
                _mm256_and_si256(v, low_bits),
                _mm256_and_si256(_mm256_srli_epi64::<4>(v), low_bits),
            )
        }
    }

    #[inline(always)]
    unsafe fn factor(stored: *const NibbleTable) -> (__m256i, __m256i) {
        // SAFETY: AVX2 present; `stored` points at 32 readable bytes.
        unsafe {
            let p = stored.cast::<u8>();
            (
                _mm256_broadcastsi128_si256(_mm_loadu_si128(p.cast())),
                _mm256_broadcastsi128_si256(_mm_loadu_si128(p.add(16).cast())),
            )
        }
    }

    #[inline(always)]
    unsafe fn mul(f: (__m256i, __m256i), x: (__m256i, __m256i)) -> __m256i {
        // SAFETY: AVX2 present.
        unsafe { _mm256_xor_si256(_mm256_shuffle_epi8(f.0, x.0), _mm256_shuffle_epi8(f.1, x.1)) }
    }
}

/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn mul_slice(c: u8, src: &[u8], dst: &mut [u8]) {
    // SAFETY: the feature is enabled on this function.
    unsafe { lanes::mul_slice::<Avx2, false>(&NibbleTable::new(c), src, dst) }
}

/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn mul_add_slice(c: u8, src: &[u8], dst: &mut [u8]) {
    // SAFETY: the feature is enabled on this function.
    unsafe { lanes::mul_slice::<Avx2, true>(&NibbleTable::new(c), src, dst) }
}

/// # Safety
/// The CPU supports AVX2.
/// `acc`, `add` and every `spread` target are at least as long as `next`.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn mul_xor_spread(
    c: u8,
    acc: &[u8],
    add: Option<&[u8]>,
    next: &mut [u8],
    spread: &mut [&mut [u8]],
) {
    // SAFETY: the feature is enabled on this function; the lengths are the
    // caller's contract.
    unsafe { lanes::mul_xor_spread::<Avx2>(&NibbleTable::new(c), acc, add, next, spread) }
}

/// # Safety
/// The CPU supports AVX2.
/// Every source is at least as long as `dst`.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn sum_slices<const ADD: bool>(sources: &[&[u8]], dst: &mut [u8]) {
    // SAFETY: the feature is enabled on this function; the lengths are the
    // caller's contract.
    unsafe { lanes::sum_slices::<Avx2, ADD>(sources, dst) }
}

/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn xor_slice(src: &[u8], dst: &mut [u8]) {
    // SAFETY: the feature is enabled on this function.
    unsafe { lanes::xor_slice::<Avx2>(src, dst) }
}

/// # Safety
/// The CPU supports AVX2, and `call` satisfies [`lanes::matrix_apply`]'s
/// pointer contract.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn matrix_apply(call: &MatrixCall<'_, NibbleTable>) {
    // SAFETY: the feature is enabled on this function; the rest is the
    // caller's contract.
    unsafe { lanes::matrix_apply::<Avx2, 4, 2>(call) }
}
