//! Decoding few erasures by syndromes and a Cauchy matrix, in time that
//! grows with the erasures instead of with the code's window.
//!
//! Both encodings give each recovery shard as a value of polynomials that
//! interpolate the originals over cosets of the subspace `V = 0..c` (`c` the
//! chunk): at high rate recovery `r` (point `r`, in `V`) is the sum over the
//! chunks of the interpolant through chunk `i` at the points `(i + 1) c ..
//! (i + 2) c`; at low rate recovery `r` (point `c + r`) is the interpolant
//! through the originals at `0..c`. Encoding the received originals with the
//! lost ones taken as zero and subtracting from `e` received recovery shards
//! leaves, per recovery point `x`, the lost values `v_y` times the Lagrange
//! basis of their coset at `x`: `sum_y v_y L_y(x)`. For a coset `D` of `V`
//! the product of `z + d` over `d` in `D` is `W(z) + W(D)`, with `W` the
//! subspace polynomial of `V` (additive, zero on `V`), so
//! `L_y(x) = (W(x) + W(y)) / ((x + y) W')` with `W'` the product of the
//! nonzero points of `V`. One of `x` and `y` lies in `V`, so
//! `L_y(x) = lambda / (x + y)` where `lambda = W(p) / W'` for whichever of
//! the two lies outside `V` (it depends only on that point's coset): a
//! Cauchy matrix with its rows or columns scaled, whose inverse has a closed
//! form. The lost originals are that inverse applied to the `e` syndromes.
//!
//! The work is one encoding plus `e^2` products per block, against the two
//! window-sized transforms of the locator decode; [`plan`] picks this route
//! where it is cheaper. With exactly `k` shards received every correct
//! decoder computes the same linear map, so the bytes are those of
//! reed-solomon-simd even for shards that are not a codeword; with surplus
//! recovery shards this route reads only `e` of them.

#![forbid(unsafe_code)]

use super::decoder::Layout;
use super::encoder::interpolate_chunks;
use super::field::{self, MODULUS};
use super::kernel::Kernel;
use super::shards::ShardBuffer;
use super::transform::{self, Marked};
use super::Shape;

/// A decode by syndromes: the recovery points whose syndromes are used and
/// the coset (its first point) they lie in.
#[derive(Debug, Default)]
pub(super) struct Plan {
    rows: Vec<usize>,
    row_coset: usize,
}

/// Buffers and per-shape constants kept from decode to decode.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    plan: Plan,
    /// The erased original points.
    columns: Vec<usize>,
    /// Per coset index (`point / c`): the logarithm of `W(point) / W'`,
    /// [`UNKNOWN`] until needed; cleared when the shape changes.
    lambda: Vec<u32>,
    /// `log(x_i + y_j)`, row-major.
    log_difference: Vec<u16>,
    /// The inverse matrix, column `j`'s row `i` at `j * e + i`.
    inverse: Vec<u16>,
    sums: Vec<u32>,
    wanted: Vec<u32>,
}

const UNKNOWN: u32 = u32::MAX;

impl Scratch {
    /// Forgets the per-shape constants.
    pub(super) fn reset(&mut self) {
        self.lambda.clear();
    }
}

/// Relative cost, in block products, of scalar work per matrix entry.
const ENTRY_COST: usize = 8;

/// Picks the syndrome route for this loss if it can decode it and, with
/// `cheaper`, if it also costs less than the locator decode, filling
/// `scratch`'s plan; `false` leaves the decode to the locator route.
/// `received` is per point, `lost` the number of lost originals.
pub(super) fn plan(
    s: Shape,
    p: Layout,
    received: &[bool],
    lost: usize,
    bps: usize,
    cheaper: bool,
    scratch: &mut Scratch,
) -> bool {
    let c = s.chunk();
    let log = |n: usize| n.trailing_zeros() as usize;
    let transform = |n: usize| n / 2 * log(n);
    let interpolated = if s.high_rate {
        s.original_count.div_ceil(c)
    } else {
        1
    };
    // Saturating: `lost` can be 32768 (more than a 32-bit `usize` squares).
    let square = lost.saturating_mul(lost);
    let syndrome_cost = ((interpolated + 1) * transform(c))
        .saturating_add(square)
        .saturating_add(square.saturating_mul(ENTRY_COST).div_ceil(bps));
    let locator_cost = 2 * transform(p.window) + p.window;
    if cheaper && syndrome_cost >= locator_cost {
        return false;
    }
    let plan = &mut scratch.plan;
    plan.rows.clear();
    let point = |r: usize| p.recovery_base + r;
    if s.high_rate {
        // Every recovery point is in `V`.
        plan.row_coset = 0;
        plan.rows.extend(
            (0..s.recovery_count)
                .map(point)
                .filter(|&x| received[x])
                .take(lost),
        );
    } else {
        // The rows must share one coset: the first holding enough.
        let Some(coset) = (0..s.recovery_count.div_ceil(c)).find(|&t| {
            let end = ((t + 1) * c).min(s.recovery_count);
            (t * c..end).filter(|&r| received[point(r)]).count() >= lost
        }) else {
            return false;
        };
        plan.row_coset = point(coset * c);
        let end = ((coset + 1) * c).min(s.recovery_count);
        plan.rows.extend(
            (coset * c..end)
                .map(point)
                .filter(|&x| received[x])
                .take(lost),
        );
    }
    plan.rows.len() == lost
}

/// Restores the lost originals `restored` (indices, ascending) into their
/// points of `work` by the plan [`plan`] made.
pub(super) fn decode<K: Kernel>(
    kernel: K,
    s: Shape,
    p: Layout,
    restored: &[usize],
    work: &mut ShardBuffer,
    scratch: &mut Scratch,
) {
    let c = s.chunk();
    let bps = work.blocks_per_shard();
    let e = restored.len();
    let Scratch {
        plan,
        columns,
        lambda,
        log_difference,
        inverse,
        sums,
        wanted,
    } = scratch;
    columns.clear();
    columns.extend(restored.iter().map(|&j| p.original_base + j));
    for &y in columns.iter() {
        work.shard_mut(y).fill([0; 64]);
    }

    // The lost originals lie in one half of the buffer, the row shards in
    // the other; the halves split at `c`. The received originals'
    // contribution at the row points is evaluated in the originals' half
    // (high rate: the chunk sum at `c`; low rate: their own chunk at 0).
    let (rows_base, columns_base, delta) = if s.high_rate {
        (0, c, 0)
    } else {
        (c, 0, plan.row_coset)
    };
    if s.high_rate {
        interpolate_chunks(kernel, s, work.shards_mut(c..p.window), bps);
    } else {
        transform::ifft(
            kernel,
            work.shards_mut(0..c),
            bps,
            c,
            s.original_count,
            0,
            None,
        );
    }
    let rows = plan.rows.iter().map(|&x| x - delta);
    let wanted = Marked::fill(wanted, c, rows);
    let region = work.shards_mut(columns_base..columns_base + c);
    transform::fft(kernel, region, bps, c, delta, &wanted);

    // Syndromes in place of the row shards.
    let (low, high) = work.blocks_mut().split_at_mut(c * bps);
    let (rows_half, columns_half) = if s.high_rate {
        (low, high)
    } else {
        (high, low)
    };
    for &x in &plan.rows {
        let (at, from) = ((x - rows_base) * bps, (x - delta) * bps);
        kernel.xor(
            &mut rows_half[at..at + bps],
            &columns_half[from..from + bps],
        );
    }

    inverse_logs(
        s,
        &plan.rows,
        columns,
        lambda,
        log_difference,
        sums,
        inverse,
    );
    let exp = &field::tables().exp;
    let rows_half = &*rows_half;
    let syndrome = |i: usize| {
        let from = (plan.rows[i] - rows_base) * bps;
        &rows_half[from..from + bps]
    };
    for (j, &y) in columns.iter().enumerate() {
        let at = (y - columns_base) * bps;
        let out = &mut columns_half[at..at + bps];
        let factor = |i: usize| K::prepare(exp[usize::from(inverse[j * e + i])]);
        out.copy_from_slice(syndrome(0));
        kernel.mul(out, &factor(0));
        for i in 1..e {
            kernel.mul_add(out, syndrome(i), &factor(i));
        }
    }
}

/// `sum` reduced to a logarithm (mod 65535).
fn reduce(sum: u64) -> u16 {
    (sum % u64::from(MODULUS)) as u16
}

/// The logarithms of the inverse of `M[i][j] = lambda / (x_i + y_j)` into
/// `inverse` (column `j` of the inverse, as the coefficients restoring
/// `y_j` from the syndromes, at `j * e ..`).
///
/// For the Cauchy matrix `C[i][j] = 1 / (x_i + y_j)` the inverse is
/// `C^-1[j][i] = A(x_i) B(y_j) / ((x_i + y_j) A'(x_i) B'(y_j))` with
/// `A(x_i)` the product of `x_i + y_k` over all `k`, `B(y_j)` that of
/// `x_k + y_j`, `A'(x_i)` that of `x_i + x_k` over `k != i` and `B'(y_j)`
/// that of `y_j + y_k` over `k != j`; the scales divide out.
fn inverse_logs(
    s: Shape,
    rows: &[usize],
    columns: &[usize],
    lambda: &mut Vec<u32>,
    log_difference: &mut Vec<u16>,
    sums: &mut Vec<u32>,
    inverse: &mut Vec<u16>,
) {
    let t = field::tables();
    let log = |v: usize| u64::from(t.log[v]);
    let e = rows.len();
    log_difference.clear();
    log_difference.extend(
        rows.iter()
            .flat_map(|&x| columns.iter().map(move |&y| t.log[x ^ y])),
    );
    let d = |i: usize, j: usize| u64::from(log_difference[i * e + j]);

    let c = s.chunk();
    let mut scale = |point: usize| -> u64 {
        let coset = point / c;
        if lambda.len() <= coset {
            lambda.resize(coset + 1, UNKNOWN);
        }
        if lambda[coset] == UNKNOWN {
            lambda[coset] = u32::from(log_lambda(coset * c, c));
        }
        u64::from(lambda[coset])
    };
    // Subtractions as additions of the negation, kept non-negative.
    let minus = |v: u64| u64::from(MODULUS) - v % u64::from(MODULUS);
    // The logarithm of the product of `points[i] + q` over the other `q`.
    let others = |points: &[usize], i: usize| -> u64 {
        let p = points[i];
        points
            .iter()
            .enumerate()
            .filter(|&(k, _)| k != i)
            .map(|(_, &q)| log(p ^ q))
            .sum()
    };
    // sums[i]: log A(x_i) - log A'(x_i) - log rho(x_i).
    sums.clear();
    for (i, &x) in rows.iter().enumerate() {
        let a: u64 = (0..e).map(|j| d(i, j)).sum();
        let rho = if s.high_rate { 0 } else { scale(x) };
        sums.push(u32::from(reduce(a + minus(others(rows, i)) + minus(rho))));
    }
    inverse.clear();
    for (j, &y) in columns.iter().enumerate() {
        let b: u64 = (0..e).map(|i| d(i, j)).sum();
        let gamma = if s.high_rate { scale(y) } else { 0 };
        let column = u64::from(reduce(b + minus(others(columns, j)) + minus(gamma)));
        inverse.extend((0..e).map(|i| reduce(column + u64::from(sums[i]) + minus(d(i, j)))));
    }
}

/// `log(W(delta) / W')` for the coset at `delta` of `V = 0..c`: the product
/// of `delta + v` over `V` divided by that of the nonzero points of `V`.
fn log_lambda(delta: usize, c: usize) -> u16 {
    let t = field::tables();
    let w: u64 = (0..c).map(|v| u64::from(t.log[delta ^ v])).sum();
    let w_prime: u64 = (1..c).map(|v| u64::from(t.log[v])).sum();
    reduce(w + u64::from(MODULUS) - u64::from(reduce(w_prime)))
}

#[cfg(test)]
mod tests;
