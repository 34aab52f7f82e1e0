//! Scalar arithmetic in GF(2^8) with the reducing polynomial 0x11D.
//!
//! 0x11D (x^8 + x^4 + x^3 + x^2 + 1) with generator 2 is the field used by
//! reed-solomon-erasure, Backblaze JavaReedSolomon, klauspost/reedsolomon and
//! RFC 8681 section 3.7. Note that the x86 `gf2p8mulb` instruction works in
//! the AES field 0x11B, which is a different field; our GFNI backend uses
//! `gf2p8affineqb` with a bit matrix per constant instead.

/// The reducing polynomial, including the x^8 term.
pub const POLYNOMIAL: u16 = 0x11D;

/// `2^(i mod 255)` for every `i < N`. Powers of the generator repeat every
/// 255 steps, so a table longer than 255 lets a sum of reduced logs index it
/// without `% 255`.
pub(crate) const fn exp_table<const N: usize>() -> [u8; N] {
    let mut exp = [0u8; N];
    let mut x: u16 = 1;
    let mut i = 0;
    while i < N {
        exp[i] = x as u8;
        x <<= 1;
        if x & 0x100 != 0 {
            x ^= POLYNOMIAL;
        }
        i += 1;
    }
    exp
}

/// `log_2(a)` for `a != 0`; entry 0 is meaningless (0).
pub(crate) const fn log_table() -> [u8; 256] {
    let exp = exp_table::<255>();
    let mut log = [0u8; 256];
    let mut i = 0;
    while i < 255 {
        log[exp[i] as usize] = i as u8;
        i += 1;
    }
    log
}

// Constants for `const_mul` (a const fn cannot read a static).
const EXP_CONST: [u8; 512] = exp_table();
const LOG_CONST: [u8; 256] = log_table();
/// `EXP[i] = 2^i`, doubled in length so that `EXP[log a + log b]` needs no reduction.
pub(crate) static EXP: [u8; 512] = EXP_CONST;
/// `LOG[a]` for a != 0; `LOG[0]` is meaningless (0).
pub(crate) static LOG: [u8; 256] = LOG_CONST;

/// `a * b` for compile-time tables (the runtime [`mul`] reads [`MUL_TABLE`],
/// which is built from this).
pub(crate) const fn const_mul(a: u8, b: u8) -> u8 {
    if a == 0 || b == 0 {
        0
    } else {
        EXP_CONST[LOG_CONST[a as usize] as usize + LOG_CONST[b as usize] as usize]
    }
}

const fn build_mul_table() -> [[u8; 256]; 256] {
    let mut table = [[0u8; 256]; 256];
    let mut a = 1;
    while a < 256 {
        let mut b = 1;
        while b < 256 {
            table[a][b] = const_mul(a as u8, b as u8);
            b += 1;
        }
        a += 1;
    }
    table
}

/// Full 64 KiB product table: `MUL_TABLE[a][b] = a * b`. Used by the scalar
/// slice kernels, where one table row per constant keeps the loop to one load.
pub(crate) static MUL_TABLE: [[u8; 256]; 256] = build_mul_table();

/// Product of `a` and `b` in GF(2^8).
///
/// ```
/// use fec_core::gf256;
/// assert_eq!(gf256::mul(2, 0x80), 0x1D); // x * x^7 = x^8 = 0x1D mod 0x11D
/// assert_eq!(gf256::mul(0, 7), 0);
/// ```
#[inline]
pub fn mul(a: u8, b: u8) -> u8 {
    MUL_TABLE[a as usize][b as usize]
}

/// Multiplicative inverse of `a`, or `None` for zero.
///
/// ```
/// use fec_core::gf256;
/// let inv = gf256::inv(0x53).unwrap();
/// assert_eq!(gf256::mul(0x53, inv), 1);
/// assert_eq!(gf256::inv(0), None);
/// ```
#[inline]
pub fn inv(a: u8) -> Option<u8> {
    if a == 0 {
        None
    } else {
        Some(EXP[255 - LOG[a as usize] as usize])
    }
}

/// `a / b`, or `None` when `b` is zero.
#[inline]
pub fn div(a: u8, b: u8) -> Option<u8> {
    if b == 0 {
        None
    } else if a == 0 {
        Some(0)
    } else {
        Some(EXP[LOG[a as usize] as usize + 255 - LOG[b as usize] as usize])
    }
}

/// `2^power` (the generator raised to `power`, modulo 255).
#[inline]
pub fn exp(power: usize) -> u8 {
    EXP[power % 255]
}

/// `a^n`, with `0^0 = 1` as reed-solomon-erasure's Vandermonde matrix expects.
#[inline]
pub fn pow(a: u8, n: usize) -> u8 {
    if n == 0 {
        1
    } else if a == 0 {
        0
    } else {
        EXP[(LOG[a as usize] as usize * n) % 255]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Carry-less multiply and reduce, bit by bit: the definition itself.
    fn reference_mul(mut a: u8, mut b: u8) -> u8 {
        let mut product = 0u8;
        while b != 0 {
            if b & 1 != 0 {
                product ^= a;
            }
            let carry = a & 0x80 != 0;
            a <<= 1;
            if carry {
                a ^= (POLYNOMIAL & 0xFF) as u8;
            }
            b >>= 1;
        }
        product
    }

    #[test]
    fn tables_match_definition() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                assert_eq!(mul(a, b), reference_mul(a, b), "{a} * {b}");
            }
        }
    }

    #[test]
    fn inverse_and_division() {
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a).unwrap()), 1);
            for b in 1..=255u8 {
                assert_eq!(mul(div(a, b).unwrap(), b), a);
            }
        }
        assert_eq!(div(5, 0), None);
        assert_eq!(div(0, 5), Some(0));
    }

    #[test]
    fn powers() {
        assert_eq!(pow(0, 0), 1);
        assert_eq!(pow(0, 3), 0);
        assert_eq!(pow(2, 8), 0x1D);
        assert_eq!(exp(255), 1);
        for a in 1..=255u8 {
            assert_eq!(pow(a, 255), 1);
            assert_eq!(pow(a, 2), mul(a, a));
        }
    }
}
