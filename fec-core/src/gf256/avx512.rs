//! AVX-512BW backend: split-nibble `vpshufb` on 512-bit vectors, with the
//! 16-byte tables broadcast to every 128-bit lane and `vpternlogq` merging
//! two products into an accumulator at once.

use std::arch::x86_64::{
    __m512i, _mm512_and_si512, _mm512_broadcast_i32x4, _mm512_loadu_si512, _mm512_mask_storeu_epi8,
    _mm512_maskz_loadu_epi8, _mm512_set1_epi8, _mm512_setzero_si512, _mm512_shuffle_epi8,
    _mm512_srli_epi64, _mm512_storeu_si512, _mm512_ternarylogic_epi64, _mm512_xor_si512,
    _mm_loadu_si128,
};

use super::lanes::{self, Lanes, MatrixCall};
use super::NibbleTable;

/// Marker for AVX-512F + AVX-512BW.
pub(super) struct Avx512;

#[inline(always)]
fn mask(len: usize) -> u64 {
    debug_assert!(len < 64);
    (1u64 << len) - 1
}

impl Lanes for Avx512 {
    const WIDTH: usize = 64;
    type Vector = __m512i;
    type Operand = (__m512i, __m512i);
    type Stored = NibbleTable;
    type Factor = (__m512i, __m512i);

    #[inline(always)]
    unsafe fn zero() -> __m512i {
        // SAFETY: AVX-512F present by the trait contract.
        unsafe { _mm512_setzero_si512() }
    }

    #[inline(always)]
    unsafe fn load(ptr: *const u8) -> __m512i {
        // SAFETY: AVX-512F present, `ptr` valid for 64 bytes (contract).
        unsafe { _mm512_loadu_si512(ptr.cast()) }
    }

    #[inline(always)]
    unsafe fn load_partial(ptr: *const u8, len: usize) -> __m512i {
        // SAFETY: AVX-512BW present; masked-off bytes are not accessed.
        unsafe { _mm512_maskz_loadu_epi8(mask(len), ptr.cast()) }
    }

    #[inline(always)]
    unsafe fn store(ptr: *mut u8, v: __m512i) {
        // SAFETY: AVX-512F present, `ptr` valid for 64 bytes of writes.
        unsafe { _mm512_storeu_si512(ptr.cast(), v) }
    }

    #[inline(always)]
    unsafe fn store_partial(ptr: *mut u8, len: usize, v: __m512i) {
        // SAFETY: AVX-512BW present; only the `len` selected bytes are written.
        unsafe { _mm512_mask_storeu_epi8(ptr.cast(), mask(len), v) }
    }

    #[inline(always)]
    unsafe fn xor(a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: AVX-512F present.
        unsafe { _mm512_xor_si512(a, b) }
    }

    #[inline(always)]
    unsafe fn operand(v: __m512i) -> (__m512i, __m512i) {
        // SAFETY: AVX-512F/BW present.
        unsafe {
            let low_bits = _mm512_set1_epi8(0x0F);
            (
                _mm512_and_si512(v, low_bits),
                _mm512_and_si512(_mm512_srli_epi64::<4>(v), low_bits),
            )
        }
    }

    #[inline(always)]
    unsafe fn factor(stored: *const NibbleTable) -> (__m512i, __m512i) {
        // SAFETY: AVX-512F present; `stored` points at 32 readable bytes.
        unsafe {
            let p = stored.cast::<u8>();
            (
                _mm512_broadcast_i32x4(_mm_loadu_si128(p.cast())),
                _mm512_broadcast_i32x4(_mm_loadu_si128(p.add(16).cast())),
            )
        }
    }

    #[inline(always)]
    unsafe fn mul(f: (__m512i, __m512i), x: (__m512i, __m512i)) -> __m512i {
        // SAFETY: AVX-512BW present.
        unsafe { _mm512_xor_si512(_mm512_shuffle_epi8(f.0, x.0), _mm512_shuffle_epi8(f.1, x.1)) }
    }

    #[inline(always)]
    unsafe fn mul_add2(
        acc: __m512i,
        f1: (__m512i, __m512i),
        x1: (__m512i, __m512i),
        f2: (__m512i, __m512i),
        x2: (__m512i, __m512i),
    ) -> __m512i {
        // SAFETY: AVX-512F/BW present; 0x96 is the three-way XOR.
        unsafe {
            let acc = _mm512_ternarylogic_epi64::<0x96>(
                acc,
                _mm512_shuffle_epi8(f1.0, x1.0),
                _mm512_shuffle_epi8(f1.1, x1.1),
            );
            _mm512_ternarylogic_epi64::<0x96>(
                acc,
                _mm512_shuffle_epi8(f2.0, x2.0),
                _mm512_shuffle_epi8(f2.1, x2.1),
            )
        }
    }
}

/// # Safety
/// The CPU supports AVX-512F and AVX-512BW.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn mul_slice(c: u8, src: &[u8], dst: &mut [u8]) {
    // SAFETY: the features are enabled on this function.
    unsafe { lanes::mul_slice::<Avx512, false>(&NibbleTable::new(c), src, dst) }
}

/// # Safety
/// The CPU supports AVX-512F and AVX-512BW.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn mul_add_slice(c: u8, src: &[u8], dst: &mut [u8]) {
    // SAFETY: the features are enabled on this function.
    unsafe { lanes::mul_slice::<Avx512, true>(&NibbleTable::new(c), src, dst) }
}

/// # Safety
/// The CPU supports AVX-512F and AVX-512BW.
/// `acc`, `add` and every `spread` target are at least as long as `next`.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn mul_xor_spread(
    c: u8,
    acc: &[u8],
    add: Option<&[u8]>,
    next: &mut [u8],
    spread: &mut [&mut [u8]],
) {
    // SAFETY: the feature is enabled on this function; the lengths are the
    // caller's contract.
    unsafe { lanes::mul_xor_spread::<Avx512>(&NibbleTable::new(c), acc, add, next, spread) }
}

/// # Safety
/// The CPU supports AVX-512F and AVX-512BW.
/// Every source is at least as long as `dst`.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn sum_slices<const ADD: bool>(sources: &[&[u8]], dst: &mut [u8]) {
    // SAFETY: the feature is enabled on this function; the lengths are the
    // caller's contract.
    unsafe { lanes::sum_slices::<Avx512, ADD>(sources, dst) }
}

/// # Safety
/// The CPU supports AVX-512F and AVX-512BW.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn xor_slice(src: &[u8], dst: &mut [u8]) {
    // SAFETY: the features are enabled on this function.
    unsafe { lanes::xor_slice::<Avx512>(src, dst) }
}

/// # Safety
/// The CPU supports AVX-512F and AVX-512BW, and `call` satisfies
/// [`lanes::matrix_apply`]'s pointer contract.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn matrix_apply(call: &MatrixCall<'_, NibbleTable>) {
    // SAFETY: the features are enabled on this function; the rest is the
    // caller's contract.
    unsafe { lanes::matrix_apply::<Avx512, 4, 4>(call) }
}
