//! The erasure locator: for each position `i` of a decode, the logarithm of
//! `prod (i + j)` over the erased positions `j != i`.
//!
//! The decoder scales each received shard by its locator value before the
//! transforms and each restored shard by the inverse after. In logarithms
//! the product is a sum, `sum over erased j of log(i ^ j)`, an XOR
//! convolution of the erasure indicator with the logarithm table, so it
//! comes from Walsh-Hadamard transforms modulo 65535. reed-solomon-simd
//! runs them over all 65536 points for every decode; for a window of `W`
//! points (a power of two) holding every erasure, only `log(d)` for `d < W`
//! takes part, so a transform of size `W` does. A low-rate decode also
//! erases every point from `W` up; for `i < W` those contribute the same
//! sum for every `i`, `sum over d >= W of log(d)`, a constant.
//!
//! With few erasures the sum is taken directly instead.

#![forbid(unsafe_code)]

use super::field::{self, add_mod};

/// Logarithms of the locator at each of the `window` positions (a power of
/// two), for the erased positions `erased` (each below `window`), plus the
/// points from `window` up when `erase_above` is set.
pub(crate) fn locator(erased: &[usize], window: usize, erase_above: bool, out: &mut Vec<u16>) {
    debug_assert!(window.is_power_of_two() && window <= field::ORDER);
    out.clear();
    let constant = if erase_above && window < field::ORDER {
        field::log_product_from(window)
    } else {
        0
    };
    let level = window.trailing_zeros() as usize;
    // Direct: `window * erased` lookups; transforms: about `3 * window *
    // level / 2` additions plus a multiplication per point.
    if erased.len() <= level + 2 {
        direct(erased, window, constant, out);
    } else {
        by_transform(erased, window, constant, out);
    }
}

fn direct(erased: &[usize], window: usize, constant: u16, out: &mut Vec<u16>) {
    let log = &field::tables().log;
    out.extend((0..window).map(|i| {
        let sum: u32 = erased
            .iter()
            .filter(|&&j| j != i)
            .map(|&j| u32::from(log[i ^ j]))
            .sum::<u32>()
            + u32::from(constant);
        (sum % u32::from(field::MODULUS)) as u16
    }));
}

fn by_transform(erased: &[usize], window: usize, constant: u16, out: &mut Vec<u16>) {
    out.resize(window, 0);
    for &j in erased {
        out[j] = 1;
    }
    field::walsh_hadamard(out);
    // `log_walsh` already carries the 1 / window of the inverse transform.
    for (v, &w) in out.iter_mut().zip(field::log_walsh(window)) {
        let product = u32::from(*v) * u32::from(w);
        *v = add_mod(product as u16, (product >> 16) as u16);
    }
    field::walsh_hadamard(out);
    if constant != 0 {
        for v in out.iter_mut() {
            *v = add_mod(*v, constant);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(erased: &[usize], window: usize, erase_above: bool) -> Vec<u16> {
        let t = field::tables();
        (0..window)
            .map(|i| {
                let mut product = 1u16;
                let above = if erase_above {
                    window..field::ORDER
                } else {
                    0..0
                };
                for j in erased.iter().copied().chain(above) {
                    if j != i {
                        product = t.mul(product, (i ^ j) as u16);
                    }
                }
                t.log[product as usize]
            })
            .collect()
    }

    fn same_residues(a: &[u16], b: &[u16]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x % field::MODULUS == y % field::MODULUS)
    }

    #[test]
    fn both_methods_match_the_product() {
        for (erased, window) in [
            (vec![], 4),
            (vec![0], 1),
            (vec![3], 8),
            (vec![0, 5, 6, 7, 30], 32),
            ((0..40).map(|i| i * 3 % 64).collect::<Vec<_>>(), 64),
            ((0..200).map(|i| (i * 37) % 256).collect(), 256),
        ] {
            let mut erased = erased;
            erased.sort_unstable();
            erased.dedup();
            for erase_above in [false, true] {
                let expected = naive(&erased, window, erase_above);
                let (mut a, mut b) = (Vec::new(), Vec::new());
                let constant = if erase_above && window < field::ORDER {
                    field::log_product_from(window)
                } else {
                    0
                };
                direct(&erased, window, constant, &mut a);
                by_transform(&erased, window, constant, &mut b);
                assert!(same_residues(&a, &expected), "direct {erased:?} {window}");
                assert!(
                    same_residues(&b, &expected),
                    "transform {erased:?} {window}"
                );
            }
        }
    }
}
