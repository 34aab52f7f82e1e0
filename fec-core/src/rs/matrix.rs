//! Small dense row-major matrices over GF(2^8). The pipeline's RaptorQ
//! decode inverts one per block; the tests build the textbook Reed-Solomon
//! encoding matrix (Vandermonde times the inverse of its top square) with
//! them, the readable reference the closed-form coefficients of
//! `interpolation.rs` are checked against.

use crate::gf256::{self, Engine};

/// `rows x cols` matrix, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Matrix {
    rows: usize,
    cols: usize,
    entries: Vec<u8>,
}

impl Matrix {
    #[cfg(test)]
    pub(crate) fn zero(rows: usize, cols: usize) -> Matrix {
        Matrix {
            rows,
            cols,
            entries: vec![0; rows * cols],
        }
    }

    #[cfg(test)]
    pub(crate) fn identity(n: usize) -> Matrix {
        let mut m = Matrix::zero(n, n);
        for i in 0..n {
            m.set(i, i, 1);
        }
        m
    }

    /// Builds a matrix entry by entry.
    pub(crate) fn from_fn(
        rows: usize,
        cols: usize,
        mut f: impl FnMut(usize, usize) -> u8,
    ) -> Matrix {
        let mut entries = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            for c in 0..cols {
                entries.push(f(r, c));
            }
        }
        Matrix {
            rows,
            cols,
            entries,
        }
    }

    #[cfg(test)]
    /// The `rows x cols` Vandermonde matrix reed-solomon-erasure starts from:
    /// row `r` holds the powers `r^0, r^1, ..`, with `0^0 = 1`. Its nodes
    /// `0..rows` are distinct, so any `cols` of its rows are independent.
    pub(crate) fn vandermonde(rows: usize, cols: usize) -> Matrix {
        debug_assert!(rows <= 256);
        Matrix::from_fn(rows, cols, |r, c| gf256::pow(r as u8, c))
    }

    pub(crate) fn entries(&self) -> &[u8] {
        &self.entries
    }

    pub(crate) fn get(&self, r: usize, c: usize) -> u8 {
        self.entries[r * self.cols + c]
    }

    #[cfg(test)]
    pub(crate) fn set(&mut self, r: usize, c: usize, value: u8) {
        self.entries[r * self.cols + c] = value;
    }

    #[cfg(test)]
    pub(crate) fn row(&self, r: usize) -> &[u8] {
        &self.entries[r * self.cols..(r + 1) * self.cols]
    }

    pub(crate) fn row_mut(&mut self, r: usize) -> &mut [u8] {
        &mut self.entries[r * self.cols..(r + 1) * self.cols]
    }

    #[cfg(test)]
    /// The rows `start..end`, as a new matrix.
    pub(crate) fn row_range(&self, start: usize, end: usize) -> Matrix {
        Matrix {
            rows: end - start,
            cols: self.cols,
            entries: self.entries[start * self.cols..end * self.cols].to_vec(),
        }
    }

    #[cfg(test)]
    /// `self * other`, one scaled row addition per nonzero entry of `self`.
    pub(crate) fn multiply(&self, other: &Matrix, engine: Engine) -> Matrix {
        debug_assert_eq!(self.cols, other.rows);
        let mut product = Matrix::zero(self.rows, other.cols);
        for r in 0..self.rows {
            let out = &mut product.entries[r * other.cols..(r + 1) * other.cols];
            for (i, &factor) in self.row(r).iter().enumerate() {
                if factor != 0 {
                    engine.mul_add_slice(factor, other.row(i), out);
                }
            }
        }
        product
    }

    /// The inverse by Gauss-Jordan elimination, or `None` if singular.
    pub(crate) fn inverse(&self, engine: Engine) -> Option<Matrix> {
        debug_assert_eq!(self.rows, self.cols);
        let n = self.rows;
        // [self | identity | zeros], one row per equation, as wide as whole
        // 64-byte vectors: each elimination step is one slice operation over
        // whole rows (the pivot row is zero left of the pivot, so adding all
        // of it changes nothing there), with no scalar tail.
        let width = (2 * n).next_multiple_of(64);
        let mut work = Matrix::from_fn(n, width, |r, c| {
            if c < n {
                self.get(r, c)
            } else {
                u8::from(c - n == r)
            }
        });
        for col in 0..n {
            let pivot_row = (col..n).find(|&r| work.get(r, col) != 0)?;
            if pivot_row != col {
                work.swap_rows(pivot_row, col);
            }
            let scale = gf256::inv(work.get(col, col))?;
            // Columns left of `col` are already zero in the pivot row.
            if scale != 1 {
                scale_in_place(scale, &mut work.row_mut(col)[col..]);
            }
            for r in 0..n {
                let factor = work.get(r, col);
                if r == col || factor == 0 {
                    continue;
                }
                let (pivot, target) = work.two_rows(col, r);
                engine.mul_add_slice(factor, pivot, target);
            }
        }
        Some(Matrix::from_fn(n, n, |r, c| work.get(r, n + c)))
    }

    fn swap_rows(&mut self, a: usize, b: usize) {
        let (first, second) = self.two_rows(a.min(b), a.max(b));
        first.swap_with_slice(second);
    }

    /// Row `source` shared and row `target` mutable (`source != target`).
    fn two_rows(&mut self, source: usize, target: usize) -> (&mut [u8], &mut [u8]) {
        debug_assert_ne!(source, target);
        let cols = self.cols;
        if source < target {
            let (low, high) = self.entries.split_at_mut(target * cols);
            (
                &mut low[source * cols..(source + 1) * cols],
                &mut high[..cols],
            )
        } else {
            let (low, high) = self.entries.split_at_mut(source * cols);
            (
                &mut high[..cols],
                &mut low[target * cols..(target + 1) * cols],
            )
        }
    }
}

fn scale_in_place(factor: u8, row: &mut [u8]) {
    for x in row {
        *x = gf256::mul(factor, *x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gf256::engine;

    #[test]
    fn inverse_times_matrix_is_identity() {
        for n in [1, 2, 3, 7, 32, 100] {
            let v = Matrix::vandermonde(n + 3, n).row_range(3, n + 3);
            let inv = v
                .inverse(engine())
                .expect("Vandermonde rows are independent");
            assert_eq!(v.multiply(&inv, engine()), Matrix::identity(n));
            assert_eq!(inv.multiply(&v, engine()), Matrix::identity(n));
        }
    }

    #[test]
    fn singular_matrix_has_no_inverse() {
        let m = Matrix::from_fn(3, 3, |r, c| if r == 2 { 0 } else { (r + c + 1) as u8 });
        assert_eq!(m.inverse(engine()), None);
        let dup = Matrix::from_fn(2, 2, |_, c| c as u8 + 5);
        assert_eq!(dup.inverse(engine()), None);
    }

    #[test]
    fn vandermonde_uses_zero_to_the_zero_as_one() {
        let v = Matrix::vandermonde(3, 3);
        assert_eq!(v.row(0), &[1, 0, 0]);
        assert_eq!(v.row(1), &[1, 1, 1]);
        assert_eq!(v.row(2), &[1, 2, 4]);
    }
}
