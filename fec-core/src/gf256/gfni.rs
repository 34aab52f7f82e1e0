//! GFNI backend: `vgf2p8affineqb` on 512-bit vectors, one 8x8 bit matrix per
//! constant (multiplication by a constant is linear over GF(2), so it is an
//! affine map with zero offset). `gf2p8mulb` is not used: it reduces by the
//! AES polynomial 0x11B, not our 0x11D.

use std::arch::x86_64::{
    __m512i, _mm512_gf2p8affine_epi64_epi8, _mm512_loadu_si512, _mm512_mask_storeu_epi8,
    _mm512_maskz_loadu_epi8, _mm512_set1_epi64, _mm512_setzero_si512, _mm512_storeu_si512,
    _mm512_ternarylogic_epi64, _mm512_xor_si512,
};

use super::lanes::{self, Lanes, MatrixCall};

/// Marker for the GFNI instruction set (with AVX-512F/BW for the vectors and
/// masked tails).
pub(super) struct Gfni;

/// The bit matrix for "multiply by `c`" in `gf2p8affineqb` layout: byte
/// `7 - i` of the matrix computes bit `i` of the result, and its bit `j` says
/// whether input bit `j` contributes, i.e. whether bit `i` of `c * 2^j` is set.
///
/// Looked up rather than computed: building the matrix bit by bit cost more
/// than the data pass for short slices and for decode-plan preparation.
#[inline]
pub(super) fn affine_matrix(c: u8) -> u64 {
    AFFINE_MATRICES[c as usize]
}

const fn build_affine_matrices() -> [u64; 256] {
    let mut table = [0u64; 256];
    let mut c = 0;
    while c < 256 {
        let mut matrix = 0u64;
        let mut j = 0;
        while j < 8 {
            let column = super::field::const_mul(c as u8, 1 << j);
            let mut i = 0;
            while i < 8 {
                if column & (1 << i) != 0 {
                    matrix |= 1u64 << (8 * (7 - i) + j);
                }
                i += 1;
            }
            j += 1;
        }
        table[c] = matrix;
        c += 1;
    }
    table
}

static AFFINE_MATRICES: [u64; 256] = build_affine_matrices();

/// Mask selecting the first `len < 64` bytes.
#[inline(always)]
fn mask(len: usize) -> u64 {
    debug_assert!(len < 64);
    (1u64 << len) - 1
}

impl Lanes for Gfni {
    const WIDTH: usize = 64;
    type Vector = __m512i;
    type Operand = __m512i;
    type Stored = u64;
    type Factor = __m512i;

    #[inline(always)]
    unsafe fn zero() -> __m512i {
        // SAFETY: AVX-512F present by the trait contract.
        unsafe { _mm512_setzero_si512() }
    }

    #[inline(always)]
    unsafe fn load(ptr: *const u8) -> __m512i {
        // SAFETY: AVX-512F present, `ptr` valid for 64 bytes (contract);
        // `loadu` has no alignment requirement.
        unsafe { _mm512_loadu_si512(ptr.cast()) }
    }

    #[inline(always)]
    unsafe fn load_partial(ptr: *const u8, len: usize) -> __m512i {
        // SAFETY: AVX-512BW present; masked-off bytes are not accessed (no
        // fault), and `ptr` is valid for the `len` selected bytes.
        unsafe { _mm512_maskz_loadu_epi8(mask(len), ptr.cast()) }
    }

    #[inline(always)]
    unsafe fn store(ptr: *mut u8, v: __m512i) {
        // SAFETY: AVX-512F present, `ptr` valid for 64 bytes of writes.
        unsafe { _mm512_storeu_si512(ptr.cast(), v) }
    }

    #[inline(always)]
    unsafe fn store_partial(ptr: *mut u8, len: usize, v: __m512i) {
        // SAFETY: AVX-512BW present; only the `len` selected bytes are
        // written, and `ptr` is valid for them.
        unsafe { _mm512_mask_storeu_epi8(ptr.cast(), mask(len), v) }
    }

    #[inline(always)]
    unsafe fn xor(a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: AVX-512F present.
        unsafe { _mm512_xor_si512(a, b) }
    }

    #[inline(always)]
    unsafe fn operand(v: __m512i) -> __m512i {
        v
    }

    #[inline(always)]
    unsafe fn factor(stored: *const u64) -> __m512i {
        // SAFETY: AVX-512F present, `stored` points into a prepared table.
        unsafe { _mm512_set1_epi64(stored.read() as i64) }
    }

    #[inline(always)]
    unsafe fn mul(f: __m512i, x: __m512i) -> __m512i {
        // SAFETY: GFNI and AVX-512F present.
        unsafe { _mm512_gf2p8affine_epi64_epi8::<0>(x, f) }
    }

    #[inline(always)]
    unsafe fn mul_add2(
        acc: __m512i,
        f1: __m512i,
        x1: __m512i,
        f2: __m512i,
        x2: __m512i,
    ) -> __m512i {
        // SAFETY: GFNI and AVX-512F present; 0x96 is the three-way XOR.
        unsafe {
            _mm512_ternarylogic_epi64::<0x96>(
                acc,
                _mm512_gf2p8affine_epi64_epi8::<0>(x1, f1),
                _mm512_gf2p8affine_epi64_epi8::<0>(x2, f2),
            )
        }
    }
}

/// # Safety
/// The CPU supports AVX-512F, AVX-512BW and GFNI.
#[target_feature(enable = "avx512f,avx512bw,gfni")]
pub(super) unsafe fn mul_slice(c: u8, src: &[u8], dst: &mut [u8]) {
    // SAFETY: the features are enabled on this function.
    unsafe { lanes::mul_slice::<Gfni, false>(&affine_matrix(c), src, dst) }
}

/// # Safety
/// The CPU supports AVX-512F, AVX-512BW and GFNI.
#[target_feature(enable = "avx512f,avx512bw,gfni")]
pub(super) unsafe fn mul_add_slice(c: u8, src: &[u8], dst: &mut [u8]) {
    // SAFETY: the features are enabled on this function.
    unsafe { lanes::mul_slice::<Gfni, true>(&affine_matrix(c), src, dst) }
}

/// # Safety
/// The CPU supports AVX-512F, AVX-512BW and GFNI.
/// `acc`, `add` and every `spread` target are at least as long as `next`.
#[target_feature(enable = "avx512f,avx512bw,gfni")]
pub(super) unsafe fn mul_xor_spread(
    c: u8,
    acc: &[u8],
    add: Option<&[u8]>,
    next: &mut [u8],
    spread: &mut [&mut [u8]],
) {
    // SAFETY: the feature is enabled on this function; the lengths are the
    // caller's contract.
    unsafe { lanes::mul_xor_spread::<Gfni>(&affine_matrix(c), acc, add, next, spread) }
}

/// # Safety
/// The CPU supports AVX-512F, AVX-512BW and GFNI.
/// Every source is at least as long as `dst`.
#[target_feature(enable = "avx512f,avx512bw,gfni")]
pub(super) unsafe fn sum_slices<const ADD: bool>(sources: &[&[u8]], dst: &mut [u8]) {
    // SAFETY: the feature is enabled on this function; the lengths are the
    // caller's contract.
    unsafe { lanes::sum_slices::<Gfni, ADD>(sources, dst) }
}

/// # Safety
/// The CPU supports AVX-512F, AVX-512BW and GFNI.
#[target_feature(enable = "avx512f,avx512bw,gfni")]
pub(super) unsafe fn xor_slice(src: &[u8], dst: &mut [u8]) {
    // SAFETY: the features are enabled on this function.
    unsafe { lanes::xor_slice::<Gfni>(src, dst) }
}

/// # Safety
/// The CPU supports AVX-512F, AVX-512BW and GFNI, and `call` satisfies
/// [`lanes::matrix_apply`]'s pointer contract.
#[target_feature(enable = "avx512f,avx512bw,gfni")]
pub(super) unsafe fn matrix_apply(call: &MatrixCall<'_, u64>) {
    // 4 x 4 accumulators, or 5 x 4 when that needs fewer groups (m = 5, 10,
    // 50...): measured a few percent faster there, with registers to spare.
    let rows = lanes::group_rows(call.rows, 4, 5);
    // SAFETY: the features are enabled on this function; the rest is the
    // caller's contract.
    unsafe { lanes::matrix_apply_grouped::<Gfni, 4>(call, rows) }
}

#[cfg(test)]
mod tests {
    use super::affine_matrix;

    /// `gf2p8affineqb` semantics evaluated in software (Intel SDM: result bit
    /// `i` is the parity of matrix byte `7 - i` AND the input byte).
    fn affine(matrix: u64, x: u8) -> u8 {
        (0..8).fold(0u8, |acc, i| {
            let row = (matrix >> (8 * (7 - i))) as u8;
            acc | ((((row & x).count_ones() & 1) as u8) << i)
        })
    }

    #[test]
    fn matrix_table_multiplies_in_0x11d() {
        for c in 0..=255u8 {
            for x in 0..=255u8 {
                assert_eq!(
                    affine(affine_matrix(c), x),
                    super::super::mul(c, x),
                    "{c} * {x}"
                );
            }
        }
    }
}
