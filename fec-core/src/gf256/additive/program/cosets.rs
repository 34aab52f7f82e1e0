//! A cheaper program for many shapes: interpolate per coset, combine with
//! scalar weights, and finish the last partial coset inside the parity's.
//!
//! Fix a coset size `M = 2^s` and write `k = Q * M + rho`. The data points
//! `0..Q * M` are the cosets `K_q = q * M + V_s`; on a coset of `V_s` the
//! basis polynomials `X_(i + q * M)` are `X_i` times a constant, so any
//! polynomial folds to `M` coefficients there. Let `F` be the interpolant
//! (degree `< Q * M`) of the data on those cosets: its fold `u_q` on `K_q` is
//! one inverse transform of the coset's data, and its fold on any other coset
//! `P` is a fixed linear combination `sum_q lambda_(P,q) u_q` of them
//! (the same for every coefficient index; the weights come from a `Q x Q`
//! solve at construction). For `200 = 3 * 64 + 8` all weights onto
//! `192..256` are 1: no product at all.
//!
//! The full polynomial is `f = F + Z * T`, where `Z` vanishes on `0..Q * M`
//! and `T` has degree `< rho`. With the normalised vanishing polynomials of
//! the aligned blocks, `Z` is constant on every coset of `V_s` past the data
//! cosets, and 1 on the next one, `P_0 = Q * M + V_s`: there `f = F + T`,
//! and `T = d - F` on the `rho` remaining data points. Those
//! points open `P_0`, which holds the first parity points; the tail step finds
//! `T` there with the top layers of `P_0`'s forward transform (which the
//! parity needs anyway): they fold `F` onto every sub-coset of the size
//! `G = 2^t` of `rho`'s top bit, the first of which is all data, so `T`'s
//! first part is that sub-coset's inverse transform minus its fold; the rest
//! of `rho` lies in the next sub-coset, which repeats the step one level down.
//!
//! For 200 data and 50 parity shards that is about 700 products per vector,
//! against 1654 for the block-by-block Newton program and 10000 for the
//! matrix kernel.

use super::{Area, Builder, Op, Program, Slots};
use crate::gf256::field::{inv, mul};

/// `Wn_(s + l)(b)` multiplied over the set bits `l` of `q`: the factor of
/// `X_(i + q * 2^s)` on the coset `b + V_s`.
fn fold_factor(b: &Builder, s: usize, base: usize, q: usize) -> u8 {
    (0..8 - s)
        .filter(|l| q & (1 << l) != 0)
        .fold(1u8, |f, l| mul(f, b.basis.normalised(s + l, base as u8)))
}

/// Most data cosets a coset program takes: the construction solves a
/// `Q x Q` system (`Q^3` products), and programs of many small cosets are
/// never the cheapest (each coset costs an inverse transform and a fold
/// onto every parity coset).
const MAX_COSETS: usize = 32;

/// The inverse of `A[q'][q'']` (the factor of block `q''` of `F`'s
/// coefficients on data coset `q'`), or `None` if it is singular (it is
/// not: it is the evaluation of the quotient's basis on distinct cosets).
/// Solved once per program; [`weights`] then costs `Q^2` per parity coset.
fn inverse(b: &Builder, s: usize, cosets: usize) -> Option<Vec<Vec<u8>>> {
    let size = 1usize << s;
    // A augmented with I, reduced to I augmented with A^-1.
    let mut a: Vec<Vec<u8>> = (0..cosets)
        .map(|row| {
            let mut r: Vec<u8> = (0..cosets)
                .map(|col| fold_factor(b, s, row * size, col))
                .collect();
            r.extend((0..cosets).map(|c| u8::from(c == row)));
            r
        })
        .collect();
    for col in 0..cosets {
        let pivot = (col..cosets).find(|&r| a[r][col] != 0)?;
        a.swap(col, pivot);
        let scale = inv(a[col][col])?;
        for x in a[col].iter_mut() {
            *x = mul(*x, scale);
        }
        let (above, rest) = a.split_at_mut(col);
        let (pivot_row, below) = rest.split_first_mut()?;
        for row in above.iter_mut().chain(below.iter_mut()) {
            let factor = row[col];
            if factor != 0 {
                for (x, &p) in row.iter_mut().zip(pivot_row.iter()) {
                    *x ^= mul(factor, p);
                }
            }
        }
    }
    Some(a.into_iter().map(|row| row[cosets..].to_vec()).collect())
}

/// The weights `lambda_(P, q)` of `F`'s folds `u_q` for the fold on the
/// coset `target + V_s`, from [`inverse`]'s matrix:
/// `lambda_q = sum over q'' of mu_P(q'') * inverse[q''][q]`.
fn weights(b: &Builder, s: usize, inverse: &[Vec<u8>], target: usize) -> Vec<u8> {
    let cosets = inverse.len();
    let mu: Vec<u8> = (0..cosets).map(|q| fold_factor(b, s, target, q)).collect();
    (0..cosets)
        .map(|q| (0..cosets).fold(0u8, |acc, r| acc ^ mul(mu[r], inverse[r][q])))
        .collect()
}

/// `Z(x)` of the points `0..head`: the product over its aligned blocks
/// `a + V_t` (the binary digits of `head`) of `Wn_t(x) + Wn_t(a)`, each 1
/// on the points after its block up to the next multiple of `2^(t + 1)`,
/// but not beyond.
fn vanishing(b: &Builder, head: usize, x: usize) -> u8 {
    let mut a = 0;
    let mut z = 1u8;
    for t in (0..8).rev() {
        if head & (1 << t) != 0 {
            let w = b.basis.normalised(t, x as u8) ^ b.basis.normalised(t, a as u8);
            z = mul(z, w);
            a += 1 << t;
        }
    }
    z
}

/// The parity points `k..n` and where their values go.
#[derive(Clone, Copy)]
struct Parity {
    k: usize,
    n: usize,
}

impl Builder {
    /// `dst = sum_q w_q * src_q` over `len` vectors, skipping zero weights
    /// and multiplying by none of the unit ones; `false` if every weight is
    /// zero (then `dst` is untouched). `srcs` are evenly spaced.
    fn weighted_sum(&mut self, srcs: &[Slots], weights: &[u8], dst: Slots, len: usize) -> bool {
        if srcs.len() >= 2 && weights.iter().all(|&w| w == 1) {
            // One pass over evenly spaced sources (the folds are).
            let stride = srcs[1].at - srcs[0].at;
            self.ops.push(Op::Sum {
                src: srcs[0],
                stride,
                count: srcs.len(),
                dst,
                len,
            });
            return true;
        }
        let mut first = true;
        for (&src, &w) in srcs.iter().zip(weights) {
            match (w, first) {
                (0, _) => continue,
                (1, true) => self.ops.push(Op::Copy { a: src, dst, len }),
                (1, false) => self.ops.push(Op::Xor {
                    a: dst,
                    b: src,
                    dst,
                    len,
                }),
                (w, true) => {
                    let coef = self.coefficients([w]);
                    self.ops.push(Op::Scale {
                        a: src,
                        dst,
                        len,
                        coef,
                    });
                }
                (w, false) => {
                    let coef = self.coefficients([w]);
                    self.ops.push(Op::MulAdd {
                        a: dst,
                        b: src,
                        dst,
                        len,
                        coef,
                    });
                }
            }
            first = false;
        }
        !first
    }

    /// `dst += c * src` over `len` vectors (nothing for `c == 0`).
    fn add_scaled(&mut self, src: Slots, c: u8, dst: Slots, len: usize) {
        match c {
            0 => {}
            1 => self.ops.push(Op::Xor {
                a: dst,
                b: src,
                dst,
                len,
            }),
            c => {
                let coef = self.coefficients([c]);
                self.ops.push(Op::MulAdd {
                    a: dst,
                    b: src,
                    dst,
                    len,
                    coef,
                });
            }
        }
    }

    /// The forward transform's layers of `src` (`2^log` coefficients on
    /// `start + V_log`) down to sub-cosets of `2^stop` points, only for the
    /// sub-cosets meeting `lo..hi`: each one's folded coefficients end in
    /// `dst` at its offset from `start`.
    #[allow(clippy::too_many_arguments)]
    fn fold_down(
        &mut self,
        src: Slots,
        dst: Slots,
        log: usize,
        start: usize,
        lo: usize,
        hi: usize,
        stop: usize,
    ) {
        if log == stop {
            if src != dst {
                self.ops.push(Op::Copy {
                    a: src,
                    dst,
                    len: 1 << log,
                });
            }
            return;
        }
        let half = 1usize << (log - 1);
        let mid = start + half;
        let twiddle = self.basis.normalised(log - 1, start as u8);
        if hi <= mid || lo >= mid {
            let (twiddle, offset, next) = if hi <= mid {
                (twiddle, 0, start)
            } else {
                (twiddle ^ 1, half, mid)
            };
            let coef = self.coefficients([twiddle]);
            self.ops.push(Op::MulAdd {
                a: src,
                b: src.plus(half),
                dst: dst.plus(offset),
                len: half,
                coef,
            });
            let at = dst.plus(offset);
            self.fold_down(at, at, log - 1, next, lo, hi, stop);
        } else {
            let coef = self.coefficients([twiddle]);
            self.ops.push(Op::Butterfly {
                src,
                dst,
                half,
                coef,
            });
            self.fold_down(dst, dst, log - 1, start, lo, mid, stop);
            self.fold_down(dst.plus(half), dst.plus(half), log - 1, mid, mid, hi, stop);
        }
    }

    /// Evaluates the `2^log` coefficients `src` on `start + V_log` at the
    /// parity points in it, into the parity shards; `src` is clobbered.
    fn emit_parity(&mut self, src: Slots, log: usize, start: usize, parity: Parity) {
        let lo = parity.k.max(start);
        let hi = parity.n.min(start + (1 << log));
        if lo >= hi {
            return;
        }
        self.evaluate(src, src, log, start, lo, hi);
        self.ops.push(Op::Copy {
            a: src.plus(lo - start),
            dst: Slots::parity(lo - parity.k),
            len: hi - lo,
        });
    }

    /// On the coset `start + V_log` whose first `rho` points are data (the
    /// rest parity or beyond): `r` holds the fold of the polynomial found so
    /// far (clobbered). Writes into `t` (`rho` vectors) the correction `T`
    /// of degree `< rho` that makes it match the data there, when `need_t`
    /// (otherwise `t` is scratch), and evaluates on the coset's parity
    /// points.
    #[allow(clippy::too_many_arguments)]
    fn tail(
        &mut self,
        r: Slots,
        t: Slots,
        log: usize,
        start: usize,
        rho: usize,
        parity: Parity,
        need_t: bool,
    ) {
        if rho == 0 {
            self.emit_parity(r, log, start, parity);
            return;
        }
        let g_log = usize::BITS as usize - 1 - rho.leading_zeros() as usize;
        let g = 1usize << g_log;
        let end = parity.n.min(start + (1 << log));
        // Fold onto the sub-cosets of size `g` from the data one to the last
        // with parity.
        self.fold_down(r, r, log, start, start, end, g_log);
        // First part of `T`: the data sub-coset's coefficients minus the
        // fold there.
        let data = Slots {
            area: Area::Data,
            at: start,
        };
        self.inverse(data, t, g_log, start);
        self.ops.push(Op::Xor {
            a: t,
            b: r,
            dst: t,
            len: g,
        });
        let groups = (end - start).div_ceil(g);
        for group in 1..groups {
            self.ops.push(Op::Xor {
                a: r.plus(group * g),
                b: t,
                dst: r.plus(group * g),
                len: g,
            });
        }
        // The rest of the data lies in sub-coset 1, with the next parity.
        let rest = rho - g;
        let next = t.plus(g);
        self.tail(
            r.plus(g),
            next,
            g_log,
            start + g,
            rest,
            parity,
            rest > 0 && (need_t || groups > 2),
        );
        for group in 2..groups {
            let at = r.plus(group * g);
            if rest > 0 {
                // The rest's vanishing factor is constant on this sub-coset.
                let kappa = self.basis.normalised(g_log, (group * g) as u8);
                self.add_scaled(next, kappa, at, rest);
            }
            self.emit_parity(at, g_log, start + group * g, parity);
        }
        if need_t && rest > 0 {
            // `T = T_1 + (Wn_t(x) + Wn_t(start)) * T_rest`: the shifted part
            // is already in place above `g`.
            let c = self.basis.normalised(g_log, start as u8);
            self.add_scaled(next, c, t, rest);
        }
    }
}

impl Program {
    /// The coset program for `data` data and `parity` parity shards with
    /// cosets of `2^log` points, or `None` when the shape or size does not
    /// fit (fewer than `2^log` data shards, more than 256 in all, more than
    /// [`MAX_COSETS`] data cosets).
    pub(in crate::gf256::additive) fn cosets(
        data: usize,
        parity: usize,
        log: usize,
    ) -> Option<Program> {
        let size = 1usize << log;
        if data < 2 || parity == 0 || data + parity > 256 || log > 7 || size > data {
            return None;
        }
        let cosets = data / size;
        if cosets > MAX_COSETS {
            return None;
        }
        let mut b = Builder::new();
        let inverse = inverse(&b, log, cosets)?;
        let rho = data % size;
        let head = cosets * size;
        let u = b.alloc(head);
        for q in 0..cosets {
            let src = Slots {
                area: Area::Data,
                at: q * size,
            };
            b.inverse(src, u.plus(q * size), log, q * size);
        }
        let folds: Vec<Slots> = (0..cosets).map(|q| u.plus(q * size)).collect();
        let work = b.alloc(size);
        let t = b.alloc(rho.max(1));
        let target = Parity {
            k: data,
            n: data + parity,
        };
        let mut start = head;
        while start < target.n {
            let w = weights(&b, log, &inverse, start);
            if !b.weighted_sum(&folds, &w, work, size) {
                // `F` folds to zero here: start from zero coefficients.
                b.ops.push(Op::Xor {
                    a: work,
                    b: work,
                    dst: work,
                    len: size,
                });
            }
            if start == head {
                let need_t = start + size < target.n;
                b.tail(work, t, log, start, rho, target, need_t);
            } else {
                if rho > 0 {
                    let zeta = vanishing(&b, head, start);
                    b.add_scaled(t, zeta, work, rho);
                }
                b.emit_parity(work, log, start, target);
            }
            start += size;
        }
        Some(b.finish(data, parity))
    }
}
