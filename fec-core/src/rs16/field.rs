//! GF(2^16) as reed-solomon-simd (and Leopard-RS before it) represents it.
//!
//! The field is GF(2)\[x\] / (x^16 + x^5 + x^3 + x^2 + 1), but an element is
//! stored by its coordinates in a Cantor basis `b_0 = 1, b_1, .., b_15`
//! (each `b_i` with `b_i^2 + b_i = b_(i-1)`), not in the polynomial basis:
//! the `u16` value `v` stands for the sum of the `b_i` over the set bits `i`
//! of `v`. Addition is still XOR. The point of the basis is that the
//! GF(2)-subspaces the additive FFT works on, "all values below `2^i`", are
//! spanned by basis elements, so that transform blocks line up with shard
//! indexes. The shard bytes on the wire are these coordinates, so byte
//! identity with reed-solomon-simd needs exactly this basis.
//!
//! Multiplication goes through discrete logarithms to the base `x` (the
//! polynomial-basis element 2), reduced modulo 65535. [`LOG_ZERO`] (65535)
//! is the logarithm we give 0; as an exponent it is congruent to 0, so
//! "multiply by `exp(65535)`" is multiply by 1.

#![forbid(unsafe_code)]

use std::sync::OnceLock;

/// The field polynomial x^16 + x^5 + x^3 + x^2 + 1.
pub(crate) const POLYNOMIAL: u32 = 0x1_002D;

/// The Cantor basis in polynomial-basis coordinates (Leopard's constants).
const CANTOR_BASIS: [u16; 16] = [
    0x0001, 0xACCA, 0x3C0E, 0x163E, 0xC582, 0xED2E, 0x914C, 0x4012, 0x6C98, 0x10D8, 0x6A72, 0xB900,
    0xFDB8, 0xFB34, 0xFF38, 0x991E,
];

/// Number of field elements.
pub(crate) const ORDER: usize = 1 << 16;

/// Order of the multiplicative group; logarithms live modulo this.
pub(crate) const MODULUS: u16 = u16::MAX;

/// The logarithm stored for 0 (there is none; see the module docs).
pub(crate) const LOG_ZERO: u16 = MODULUS;

/// Logarithm and exponential tables over the Cantor-basis representation.
pub(crate) struct Tables {
    /// `log[v]`: the discrete logarithm of `v`, [`LOG_ZERO`] for 0.
    pub log: Box<[u16; ORDER]>,
    /// `exp[l]`: the element of logarithm `l`, for `l` in `0..=65535`
    /// (`exp[65535] == exp[0] == 1`).
    pub exp: Box<[u16; ORDER]>,
}

/// The process-wide tables, built on first use (about 1 ms).
pub(crate) fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(build_tables)
}

fn build_tables() -> Tables {
    // Discrete logarithms in the polynomial basis, by walking the powers of x.
    let mut poly_log = vec![0u16; ORDER];
    let mut power: u32 = 1;
    for l in 0..MODULUS {
        poly_log[power as usize] = l;
        power <<= 1;
        if power & 0x1_0000 != 0 {
            power ^= POLYNOMIAL;
        }
    }
    // Cantor coordinates -> polynomial coordinates, one basis element at a
    // time (the map is linear, so each new bit doubles the filled prefix).
    let mut to_poly = vec![0u16; ORDER];
    for (bit, &b) in CANTOR_BASIS.iter().enumerate() {
        let half = 1usize << bit;
        for v in 0..half {
            to_poly[half + v] = to_poly[v] ^ b;
        }
    }
    let mut log = Box::new([0u16; ORDER]);
    let mut exp = Box::new([0u16; ORDER]);
    log[0] = LOG_ZERO;
    for v in 1..ORDER {
        let l = poly_log[to_poly[v] as usize];
        log[v] = l;
        exp[l as usize] = v as u16;
    }
    exp[MODULUS as usize] = exp[0];
    Tables { log, exp }
}

/// `(a + b) mod 65535`, for `a, b` in `0..=65535` (the result may be 65535
/// for a sum congruent to 0, which is harmless as an exponent).
#[inline(always)]
pub(crate) fn add_mod(a: u16, b: u16) -> u16 {
    let sum = u32::from(a) + u32::from(b);
    (sum + (sum >> 16)) as u16
}

/// `(a - b) mod 65535` in the same convention as [`add_mod`].
#[inline(always)]
pub(crate) fn sub_mod(a: u16, b: u16) -> u16 {
    // 65535 - b is !b, and subtracting is adding the negation.
    add_mod(a, !b)
}

impl Tables {
    /// The product `a * b`.
    #[inline]
    pub(crate) fn mul(&self, a: u16, b: u16) -> u16 {
        if a == 0 || b == 0 {
            return 0;
        }
        self.exp[add_mod(self.log[a as usize], self.log[b as usize]) as usize]
    }

    /// The quotient `a / b`, or `None` for `b == 0`.
    pub(crate) fn div(&self, a: u16, b: u16) -> Option<u16> {
        if b == 0 {
            return None;
        }
        if a == 0 {
            return Some(0);
        }
        Some(self.exp[sub_mod(self.log[a as usize], self.log[b as usize]) as usize])
    }
}

/// The transform twiddles ("skews"), one element per butterfly block.
///
/// An FFT layer of distance `2^i` over the points `s .. s + 2^(i+1)` (`s` a
/// multiple of `2^(i+1)`) multiplies by `Wn_i(s) = W_i(s) / W_i(2^i)`, where
/// `W_i(x)` is the product of `x + a` over the subspace of points `a < 2^i`.
/// Entry `s + 2^i - 1` holds it: every index below 65535 is exactly one
/// `(i, s)` pair. Entries with `s == 0` are 0 (the butterfly then has no
/// product).
pub(crate) fn skew() -> &'static [u16; ORDER - 1] {
    static SKEW: OnceLock<Box<[u16; ORDER - 1]>> = OnceLock::new();
    SKEW.get_or_init(build_skew)
}

fn build_skew() -> Box<[u16; ORDER - 1]> {
    let t = tables();
    // subspace[i][b] = W_i(2^b). W_0 is the identity; W_i is GF(2)-linear
    // with kernel "values below 2^i", and W_(i+1)(x) = W_i(x) * W_i(x + 2^i)
    // = W_i(x) * (W_i(x) + W_i(2^i)).
    let mut subspace = [[0u16; 16]; 16];
    for (b, w) in subspace[0].iter_mut().enumerate() {
        *w = 1 << b;
    }
    for i in 0..15 {
        let norm = subspace[i][i];
        subspace[i + 1] = subspace[i].map(|w| t.mul(w, w ^ norm));
    }
    // normalised[i][b] = Wn_i(2^b); `W_i(2^i)` is non-zero since `2^i` lies
    // outside the kernel.
    let normalised: [[u16; 16]; 16] = std::array::from_fn(|i| {
        let norm = subspace[i][i];
        subspace[i].map(|w| t.div(w, norm).unwrap_or(0))
    });
    let mut skew = Box::new([0u16; ORDER - 1]);
    for (i, images) in normalised.iter().enumerate() {
        let step = 2usize << i;
        for start in (0..ORDER).step_by(step) {
            let index = start + (1 << i) - 1;
            if index >= ORDER - 1 {
                continue;
            }
            // Linear in `start`: XOR the images of its set bits.
            let mut value = 0u16;
            let mut bits = start;
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                value ^= images[b];
                bits &= bits - 1;
            }
            skew[index] = value;
        }
    }
    skew
}

/// The Walsh-Hadamard transform (over the integers modulo 65535) of the
/// logarithm table restricted to `0..size`, with `log 0` taken as 0, and
/// scaled by `1 / size`: the fixed operand of the erasure-locator
/// convolution in [`crate::rs16`]'s decoder. `size` is a power of two.
pub(crate) fn log_walsh(size: usize) -> &'static [u16] {
    static CACHE: [OnceLock<Box<[u16]>>; 17] = [const { OnceLock::new() }; 17];
    debug_assert!(size.is_power_of_two() && size <= ORDER);
    let level = size.trailing_zeros() as usize;
    CACHE[level].get_or_init(|| {
        let t = tables();
        let mut data: Vec<u16> = t.log[..size].to_vec();
        data[0] = 0;
        walsh_hadamard(&mut data);
        // 1 / 2^level is 2^(16 - level) modulo 65535 (2^16 = 1), and doubling
        // modulo 65535 is a 16-bit rotation.
        let rotation = (16 - level as u32) % 16;
        for v in &mut data {
            *v = v.rotate_left(rotation);
        }
        data.into_boxed_slice()
    })
}

/// In-place Walsh-Hadamard transform modulo 65535 (unnormalised): applying
/// it twice multiplies by the length.
pub(crate) fn walsh_hadamard(data: &mut [u16]) {
    let n = data.len();
    debug_assert!(n.is_power_of_two());
    let mut half = 1;
    while half < n {
        for block in data.chunks_exact_mut(2 * half) {
            let (a, b) = block.split_at_mut(half);
            for (x, y) in a.iter_mut().zip(b.iter_mut()) {
                let (s, d) = (add_mod(*x, *y), sub_mod(*x, *y));
                *x = s;
                *y = d;
            }
        }
        half *= 2;
    }
}

/// `sum of log[d]` for `d` in `from..65536`, modulo 65535: the logarithm of
/// the product of all elements at or above `from` (`from > 0`).
pub(crate) fn log_product_from(from: usize) -> u16 {
    static CACHE: [OnceLock<u16>; 17] = [const { OnceLock::new() }; 17];
    debug_assert!(from.is_power_of_two());
    *CACHE[from.trailing_zeros() as usize].get_or_init(|| {
        let t = tables();
        t.log[from..].iter().fold(0u16, |acc, &l| add_mod(acc, l))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logarithms_invert_exponentials() {
        let t = tables();
        for v in 1..ORDER {
            assert_eq!(t.exp[t.log[v] as usize] as usize, v);
        }
        assert_eq!(t.exp[0], 1);
        assert_eq!(t.log[1], 0);
    }

    #[test]
    fn multiplication_is_a_field() {
        let t = tables();
        let mut state = 0x1234_5678u32;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u16
        };
        for _ in 0..2000 {
            let (a, b, c) = (next(), next(), next());
            assert_eq!(t.mul(a, b), t.mul(b, a));
            assert_eq!(t.mul(a, b ^ c), t.mul(a, b) ^ t.mul(a, c));
            assert_eq!(t.mul(t.mul(a, b), c), t.mul(a, t.mul(b, c)));
            if b != 0 {
                assert_eq!(t.div(t.mul(a, b), b), Some(a));
            }
        }
    }

    #[test]
    fn cantor_basis_satisfies_its_recurrence() {
        // b_i^2 + b_i = b_(i-1) in Cantor coordinates is 2^i -> 2^(i-1).
        let t = tables();
        for i in 1..16 {
            let b = 1u16 << i;
            assert_eq!(t.mul(b, b) ^ b, 1 << (i - 1));
        }
    }

    #[test]
    fn skews_at_block_zero_are_zero() {
        let skew = skew();
        for i in 0..16 {
            assert_eq!(skew[(1 << i) - 1], 0);
        }
    }

    #[test]
    fn walsh_hadamard_twice_scales_by_the_length() {
        let mut data: Vec<u16> = (0..64u16).map(|i| i.wrapping_mul(977)).collect();
        let original = data.clone();
        walsh_hadamard(&mut data);
        walsh_hadamard(&mut data);
        for (a, b) in data.iter().zip(&original) {
            // 64 * b modulo 65535 is a rotation by 6.
            let expected = b.rotate_left(6);
            assert_eq!(a % MODULUS, expected % MODULUS);
        }
    }

    /// The tables must be reed-solomon-simd's for shards to match; its
    /// `engine::tables` module is public, so compare entry by entry.
    #[test]
    fn tables_match_reed_solomon_simd() {
        use reed_solomon_simd::engine::tables as theirs;
        let t = tables();
        let exp_log = theirs::get_exp_log();
        assert_eq!(&t.log[..], &exp_log.log[..]);
        assert_eq!(&t.exp[..], &exp_log.exp[..]);
        let their_skew = theirs::get_skew();
        for (i, (&ours, &log)) in skew().iter().zip(their_skew.iter()).enumerate() {
            assert_eq!(t.log[ours as usize], log, "skew {i}");
        }
    }
}
