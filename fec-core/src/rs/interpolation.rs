//! Closed-form encoding and decoding coefficients by Lagrange interpolation.
//!
//! reed-solomon-erasure's encoding matrix is `V * T^-1`, where `V[r][c] =
//! r^c` (the shard index `r` read as a field element, `0^0 = 1`) and `T` is
//! the top `data x data` square of `V`. So shard `r` equals `f(r)` for the
//! one polynomial `f` of degree below `data` with `f(c) = data_shard[c]`: a
//! systematic evaluation code. Given any `data` shards at nodes `S`, every
//! other shard `t` is
//!
//! ```text
//! f(t) = sum over i in S of shard[i] * prod over j in S, j != i, of (t + j) / (i + j)
//! ```
//!
//! (`+` is XOR in GF(2^8)). Each coefficient is a ratio of products over the
//! nodes; in the log domain those are sums, and each sum over `S` is a sum over
//! all nodes (fixed per code, computed once) minus a sum over the `total -
//! data` nodes outside `S`. A decode matrix with `e` outputs thus costs
//! `O((data + e) * parity + e * data)` table look-ups: no inversion, no
//! matrix product. `matrix.rs` (tests only) builds the same matrices the
//! textbook way and the tests pin the two together.

use crate::gf256::field::{exp_table, LOG};

/// Long enough for any `a + b + c` of three reduced logs, so the hot loop
/// needs no `% 255`.
const EXP_LEN: usize = 3 * 255;

/// `EXP[i] = 2^(i mod 255)`.
static EXP: [u8; EXP_LEN] = exp_table();

/// Log of the product over `nodes` of `(node + x)`; every factor nonzero.
fn log_product(x: usize, nodes: impl Iterator<Item = usize>) -> u32 {
    nodes.map(|j| u32::from(LOG[x ^ j])).sum::<u32>() % 255
}

/// The nodes `0..total` of one code, with per-node sums precomputed.
#[derive(Clone, Debug)]
pub(crate) struct Interpolator {
    /// For node `i`: log of the product over all other nodes `j` of `(i + j)`.
    log_all_others: Vec<u32>,
}

impl Interpolator {
    /// `total <= 256` nodes, so that they are distinct field elements.
    pub(crate) fn new(total: usize) -> Interpolator {
        debug_assert!(total <= 256);
        let log_all_others = (0..total)
            .map(|i| log_product(i, (0..total).filter(|&j| j != i)))
            .collect();
        Interpolator { log_all_others }
    }

    /// Row-major `outputs.len() x inputs.len()` coefficients computing the
    /// shards at `outputs` from the shards at `inputs`. `inputs` must hold
    /// exactly `data` distinct nodes and be disjoint from `outputs`.
    pub(crate) fn coefficients(&self, inputs: &[usize], outputs: &[usize]) -> Vec<u8> {
        let total = self.log_all_others.len();
        let mut is_input = vec![false; total];
        for &i in inputs {
            is_input[i] = true;
        }
        let outside: Vec<usize> = (0..total).filter(|&j| !is_input[j]).collect();
        // log prod_{j in S, j != node} (node + j), from the all-nodes sum.
        let log_over_inputs = |node: usize| -> u32 {
            let excluded = log_product(node, outside.iter().copied().filter(|&j| j != node));
            (self.log_all_others[node] + 255 - excluded) % 255
        };
        // Stored negated (255 - log, in 1..=255) so the loop below only adds.
        let neg_log_denominators: Vec<u32> =
            inputs.iter().map(|&i| 255 - log_over_inputs(i)).collect();
        let mut coefficients = Vec::with_capacity(outputs.len() * inputs.len());
        for &t in outputs {
            debug_assert!(!is_input[t]);
            // prod_{j in S} (t + j); divided by (t + i) below, it is the
            // numerator of the basis polynomial of input i.
            let log_numerator = log_over_inputs(t);
            for (&i, &neg_log_denominator) in inputs.iter().zip(&neg_log_denominators) {
                // < 255 + 255 + 255: within EXP.
                let log = log_numerator + (255 - u32::from(LOG[t ^ i])) + neg_log_denominator;
                coefficients.push(EXP[log as usize]);
            }
        }
        coefficients
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gf256::{self, engine};
    use crate::rs::matrix::Matrix;

    #[test]
    fn tables_agree_with_the_field() {
        for (i, &x) in EXP.iter().enumerate() {
            assert_eq!(x, gf256::exp(i));
        }
        for a in 1..=255u8 {
            assert_eq!(EXP[LOG[a as usize] as usize], a);
            assert_eq!(gf256::exp(LOG[a as usize] as usize), a);
        }
    }

    /// The textbook construction reed-solomon-erasure uses.
    fn encoding_matrix(data: usize, total: usize) -> Matrix {
        let vandermonde = Matrix::vandermonde(total, data);
        let top_inverse = vandermonde.row_range(0, data).inverse(engine()).unwrap();
        vandermonde.multiply(&top_inverse, engine())
    }

    #[test]
    fn parity_rows_match_vandermonde_construction() {
        for (data, parity) in [
            (1, 1),
            (1, 255),
            (2, 3),
            (10, 4),
            (32, 8),
            (100, 156),
            (255, 1),
        ] {
            let total = data + parity;
            let expected = encoding_matrix(data, total).row_range(data, total);
            let inputs: Vec<usize> = (0..data).collect();
            let outputs: Vec<usize> = (data..total).collect();
            let got = Interpolator::new(total).coefficients(&inputs, &outputs);
            assert_eq!(got, expected.entries(), "{data}+{parity}");
        }
    }

    #[test]
    fn decode_rows_invert_the_encoding() {
        // For inputs S and outputs T, the decode matrix times the encoding
        // rows of S must give the encoding rows of T.
        let (data, total) = (12, 20);
        let encoding = encoding_matrix(data, total);
        let interpolator = Interpolator::new(total);
        for (inputs, outputs) in [
            (vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], vec![12, 19]),
            (
                vec![1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 14, 17],
                vec![0, 4, 12, 13],
            ),
            ((8..20).collect(), (0..8).collect()),
        ] {
            let decode = Matrix::from_fn(outputs.len(), data, |r, c| {
                interpolator.coefficients(&inputs, &outputs)[r * data + c]
            });
            let from = Matrix::from_fn(data, data, |r, c| encoding.get(inputs[r], c));
            let want = Matrix::from_fn(outputs.len(), data, |r, c| encoding.get(outputs[r], c));
            assert_eq!(decode.multiply(&from, engine()), want);
        }
    }
}
