//! The route for any data count: Newton interpolation over the aligned
//! power-of-two blocks of the data points, each block's polynomial in the
//! additive basis, compiled into a short list of vector operations.
//!
//! Write `k` in binary, largest bit first: the data points `0..k` split into
//! aligned blocks `B_1, B_2, ..` of those sizes (for 200: `0..128`,
//! `128..192`, `192..200`). With `Z_i` the polynomial vanishing exactly on
//! `B_i` (`Wn_t(x) + Wn_t(a)` for the block `a..a + 2^t`), the interpolating
//! polynomial is `f = h_1 + Z_1 (h_2 + Z_2 (h_3 + ..))`, each `h_j` of degree
//! below `|B_j|`. On `B_j` every term after `h_j` vanishes, so
//! `h_j = ((d - h_1) / Z_1 - h_2) / Z_2 ..` there: evaluate the earlier `h_i`
//! on `B_j` (a fold and a small transform), combine pointwise, and one
//! inverse transform gives `h_j`'s coefficients. The parity is then
//! `f(x)` by Horner's rule over the `h_i` evaluated on the parity points
//! (pruned forward transforms). For 200 data and 50 parity shards that is
//! about a fifth of the matrix kernel's 10000 products per vector.
//!
//! Operations name vectors by [`Slots`]: the data shards, the parity shards,
//! or a scratch area of one vector per slot, so a 64-byte column of the whole
//! computation stays in L1.

mod cosets;

use super::Basis;
use crate::gf256::field::inv;
#[cfg(test)]
use crate::gf256::field::mul;

/// Largest transform the kernels run in registers, as a power of two.
pub(super) const REGISTER_LOG: usize = 4;

/// Which vectors a [`Slots`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Area {
    /// The data shards (read only).
    Data,
    /// The parity shards.
    Parity,
    /// The per-column scratch vectors.
    Scratch,
}

/// A run of consecutive vectors of one area, from index `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Slots {
    pub area: Area,
    pub at: usize,
}

impl Slots {
    fn scratch(at: usize) -> Slots {
        Slots {
            area: Area::Scratch,
            at,
        }
    }

    pub(super) fn parity(at: usize) -> Slots {
        Slots {
            area: Area::Parity,
            at,
        }
    }

    fn plus(self, n: usize) -> Slots {
        Slots {
            at: self.at + n,
            ..self
        }
    }
}

/// One vector operation; `coef` fields index the program's coefficients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    /// `dst[j] = a[j] + c * b[j]` for `j < len`: one half of a butterfly,
    /// i.e. a fold.
    MulAdd {
        a: Slots,
        b: Slots,
        dst: Slots,
        len: usize,
        coef: usize,
    },
    /// Forward butterflies from `src` to `dst`: `lo = src[j] + c * src[j +
    /// half]`, `hi = lo + src[j + half]`.
    Butterfly {
        src: Slots,
        dst: Slots,
        half: usize,
        coef: usize,
    },
    /// Inverse butterflies in place: `hi += lo`, then `lo += c * hi` (no
    /// product when the twiddle is zero).
    InverseButterfly {
        at: Slots,
        half: usize,
        coef: Option<usize>,
    },
    /// Two inverse layers in one pass over `4 * half` vectors: butterflies
    /// `half` apart with `coefs[0]` (first block) and `coefs[1]` (second),
    /// then `2 * half` apart with `coefs[2]`.
    InverseButterfly2 {
        at: Slots,
        half: usize,
        coefs: [Option<usize>; 3],
    },
    /// A transform of `2^log <= 32` vectors in registers, forward
    /// (coefficients to values) or inverse, twiddles from `coef` (layers from
    /// 0 up); when `zero_first`, the first block of every layer has a zero
    /// twiddle.
    Transform {
        src: Slots,
        dst: Slots,
        log: usize,
        coef: usize,
        inverse: bool,
        zero_first: bool,
    },
    /// `dst[j] = (a[j] + b[j]) * c_j`, one coefficient per vector.
    SubScale {
        a: Slots,
        b: Slots,
        dst: Slots,
        len: usize,
        coef: usize,
    },
    /// `dst[j] = a[j] + c_j * dst[j]`, one coefficient per vector.
    Horner {
        a: Slots,
        dst: Slots,
        len: usize,
        coef: usize,
    },
    /// `dst[j] = a[j]`.
    Copy { a: Slots, dst: Slots, len: usize },
    /// `dst[j] = a[j] + b[j]`.
    Xor {
        a: Slots,
        b: Slots,
        dst: Slots,
        len: usize,
    },
    /// `dst[j] = sum over i < count of src[j + i * stride]`.
    Sum {
        src: Slots,
        stride: usize,
        count: usize,
        dst: Slots,
        len: usize,
    },
    /// `dst[j] = c * a[j]`.
    Scale {
        a: Slots,
        dst: Slots,
        len: usize,
        coef: usize,
    },
}

/// The compiled computation for one `(data, parity)` shape.
#[derive(Clone, Debug)]
pub(super) struct Program {
    pub data: usize,
    pub parity: usize,
    /// Scratch vectors one column needs.
    pub scratch: usize,
    pub ops: Vec<Op>,
    pub coefficients: Vec<u8>,
    /// Only transforms read the data and only copies write the parity, so
    /// kernels may read and write the shards in place of staging them.
    pub direct: bool,
}

pub(super) struct Builder {
    pub basis: Basis,
    pub ops: Vec<Op>,
    pub coefficients: Vec<u8>,
    pub scratch: usize,
}

impl Builder {
    pub(super) fn new() -> Builder {
        Builder {
            basis: Basis::new(),
            ops: Vec::new(),
            coefficients: Vec::new(),
            scratch: 0,
        }
    }

    /// The finished program.
    pub(super) fn finish(self, data: usize, parity: usize) -> Program {
        let direct = self.ops.iter().all(|op| match *op {
            Op::Transform { dst, .. } => dst.area != Area::Parity,
            Op::Copy { a, .. } => a.area == Area::Scratch,
            Op::MulAdd { a, b, dst, .. }
            | Op::SubScale { a, b, dst, .. }
            | Op::Xor { a, b, dst, .. } => [a, b, dst].iter().all(|s| s.area == Area::Scratch),
            Op::Butterfly { src, dst, .. } | Op::Sum { src, dst, .. } => {
                src.area == Area::Scratch && dst.area == Area::Scratch
            }
            Op::InverseButterfly { at, .. } | Op::InverseButterfly2 { at, .. } => {
                at.area == Area::Scratch
            }
            Op::Horner { .. } => false,
            Op::Scale { a, dst, .. } => a.area == Area::Scratch && dst.area == Area::Scratch,
        });
        Program {
            direct,
            data,
            parity,
            scratch: self.scratch,
            ops: self.ops,
            coefficients: self.coefficients,
        }
    }

    pub(super) fn alloc(&mut self, n: usize) -> Slots {
        let slots = Slots::scratch(self.scratch);
        self.scratch += n;
        slots
    }

    pub(super) fn coefficients(&mut self, values: impl IntoIterator<Item = u8>) -> usize {
        let at = self.coefficients.len();
        self.coefficients.extend(values);
        at
    }

    fn twiddles(&mut self, log: usize, start: usize) -> usize {
        let at = self.coefficients.len();
        self.basis.twiddles(log, start, &mut self.coefficients);
        at
    }

    /// Coefficients in `dst` of the polynomial with the values `src` on the
    /// points `start..start + 2^log`.
    pub(super) fn inverse(&mut self, src: Slots, dst: Slots, log: usize, start: usize) {
        let low = log.min(REGISTER_LOG);
        for q in 0..1usize << (log - low) {
            let offset = q << low;
            let coef = self.twiddles(low, start + offset);
            self.ops.push(Op::Transform {
                src: src.plus(offset),
                dst: dst.plus(offset),
                log: low,
                coef,
                inverse: true,
                zero_first: start + offset == 0,
            });
        }
        // Two layers per pass where there are two left: half the loads and
        // stores of one pass per layer.
        let mut i = low;
        while i < log {
            let half = 1usize << i;
            let fused = i + 1 < log;
            let step = if fused { 4 * half } else { 2 * half };
            for r in (0..1usize << log).step_by(step) {
                let mut twiddle = |layer: usize, point: usize| {
                    (point != 0).then(|| {
                        let twiddle = self.basis.normalised(layer, point as u8);
                        self.coefficients([twiddle])
                    })
                };
                let op = if fused {
                    let coefs = [
                        twiddle(i, start + r),
                        twiddle(i, start + r + 2 * half),
                        twiddle(i + 1, start + r),
                    ];
                    Op::InverseButterfly2 {
                        at: dst.plus(r),
                        half,
                        coefs,
                    }
                } else {
                    Op::InverseButterfly {
                        at: dst.plus(r),
                        half,
                        coef: twiddle(i, start + r),
                    }
                };
                self.ops.push(op);
            }
            i += if fused { 2 } else { 1 };
        }
    }

    /// Values of the polynomial with the `2^log` coefficients `src`, on the
    /// points `lo..hi` inside `start..start + 2^log`, left in `dst` at index
    /// `x - start` for point `x`. `src` is only read; other parts of `dst`
    /// are clobbered.
    pub(super) fn evaluate(
        &mut self,
        src: Slots,
        dst: Slots,
        log: usize,
        start: usize,
        lo: usize,
        hi: usize,
    ) {
        let size = 1usize << log;
        debug_assert!(start <= lo && lo < hi && hi <= start + size);
        if log <= REGISTER_LOG && lo == start && hi == start + size {
            let coef = self.twiddles(log, start);
            self.ops.push(Op::Transform {
                src,
                dst,
                log,
                coef,
                inverse: false,
                // Evaluation never starts at point 0: the parity points and
                // the later data blocks lie above the first block.
                zero_first: false,
            });
            return;
        }
        let half = size / 2;
        let mid = start + half;
        let twiddle = self.basis.normalised(log - 1, start as u8);
        if hi <= mid {
            // Only the lower half: on it `Wn_(log-1)` is the twiddle.
            let coef = self.coefficients([twiddle]);
            self.ops.push(Op::MulAdd {
                a: src,
                b: src.plus(half),
                dst,
                len: half,
                coef,
            });
            self.evaluate(dst, dst, log - 1, start, lo, hi);
        } else if lo >= mid {
            // Only the upper half: there it is the twiddle plus one.
            let coef = self.coefficients([twiddle ^ 1]);
            self.ops.push(Op::MulAdd {
                a: src,
                b: src.plus(half),
                dst: dst.plus(half),
                len: half,
                coef,
            });
            self.evaluate(dst.plus(half), dst.plus(half), log - 1, mid, lo, hi);
        } else {
            let coef = self.coefficients([twiddle]);
            self.ops.push(Op::Butterfly {
                src,
                dst,
                half,
                coef,
            });
            self.evaluate(dst, dst, log - 1, start, lo, mid);
            self.evaluate(dst.plus(half), dst.plus(half), log - 1, mid, mid, hi);
        }
    }
}

impl Program {
    /// The program for `data` data and `parity` parity shards, or `None`
    /// for fewer than 2 data shards, no parity, or more than 256 in all.
    pub(super) fn new(data: usize, parity: usize) -> Option<Program> {
        if data < 2 || parity == 0 || data + parity > 256 {
            return None;
        }
        let mut b = Builder::new();
        // The aligned blocks of the data points, largest first.
        let mut blocks = Vec::new();
        let mut start = 0;
        for log in (0..8).rev() {
            if data & (1 << log) != 0 {
                blocks.push((start, log));
                start += 1 << log;
            }
        }
        // `Z_i(x)`, vanishing exactly on block `i`.
        let vanishing = |basis: &Basis, (a, t): (usize, usize), x: usize| {
            basis.normalised(t, x as u8) ^ basis.normalised(t, a as u8)
        };
        let coefficients: Vec<Slots> = blocks.iter().map(|&(_, t)| b.alloc(1 << t)).collect();
        let work = b.alloc(1 << blocks[0].1);
        for (j, &(a, t)) in blocks.iter().enumerate() {
            let values = Slots {
                area: Area::Data,
                at: a,
            };
            let h = coefficients[j];
            for (i, &(_, ti)) in blocks[..j].iter().enumerate() {
                let coset = a & !((1 << ti) - 1);
                b.evaluate(coefficients[i], work, ti, coset, a, a + (1 << t));
                let scale: Vec<u8> = (a..a + (1 << t))
                    .map(|x| {
                        let z = vanishing(&b.basis, blocks[i], x);
                        // Nonzero: `x` lies outside block `i`.
                        inv(z).expect("Z_i is nonzero off its block")
                    })
                    .collect();
                let coef = b.coefficients(scale);
                b.ops.push(Op::SubScale {
                    a: if i == 0 { values } else { h },
                    b: work.plus(a - coset),
                    dst: h,
                    len: 1 << t,
                    coef,
                });
            }
            let src = if j == 0 { values } else { h };
            b.inverse(src, h, t, a);
        }
        let (k, n) = (data, data + parity);
        for i in (0..blocks.len()).rev() {
            let size = 1usize << blocks[i].1;
            let mut coset = k & !(size - 1);
            while coset < n {
                let (lo, hi) = (k.max(coset), n.min(coset + size));
                b.evaluate(coefficients[i], work, blocks[i].1, coset, lo, hi);
                let a = work.plus(lo - coset);
                let dst = Slots {
                    area: Area::Parity,
                    at: lo - k,
                };
                let len = hi - lo;
                if i + 1 == blocks.len() {
                    b.ops.push(Op::Copy { a, dst, len });
                } else {
                    let z: Vec<u8> = (lo..hi)
                        .map(|x| vanishing(&b.basis, blocks[i], x))
                        .collect();
                    let coef = b.coefficients(z);
                    b.ops.push(Op::Horner { a, dst, len, coef });
                }
                coset += size;
            }
        }
        Some(b.finish(data, parity))
    }

    /// The cheapest program for the shape by [`Program::vector_ops`]: the
    /// block-by-block one or a coset program of any size.
    pub(super) fn best(data: usize, parity: usize) -> Option<Program> {
        (0..8)
            .filter_map(|log| Program::cosets(data, parity, log))
            .chain(Program::new(data, parity))
            .min_by_key(Program::vector_ops)
    }

    /// Products per vector (zero twiddles skipped).
    #[cfg(test)]
    pub(super) fn products(&self) -> usize {
        let butterflies = |log: usize| log * (1 << log) / 2;
        self.ops
            .iter()
            .map(|op| match *op {
                Op::MulAdd { len, .. }
                | Op::SubScale { len, .. }
                | Op::Horner { len, .. }
                | Op::Scale { len, .. } => len,
                Op::Butterfly { half, .. } => half,
                Op::InverseButterfly { half, coef, .. } => coef.map_or(0, |_| half),
                Op::InverseButterfly2 { half, coefs, .. } => {
                    coefs[..2].iter().flatten().count() * half + coefs[2].map_or(0, |_| 2 * half)
                }
                Op::Transform {
                    log, zero_first, ..
                } => butterflies(log) - if zero_first { (1 << log) - 1 } else { 0 },
                Op::Copy { .. } | Op::Xor { .. } | Op::Sum { .. } => 0,
            })
            .sum()
    }

    /// Vectors one column of the computation names: the data, the parity,
    /// then the scratch.
    pub(super) fn vectors(&self) -> usize {
        self.data + self.parity + self.scratch
    }

    /// Where `slots` starts in that column.
    pub(super) fn index(&self, slots: Slots) -> usize {
        match slots.area {
            Area::Data => slots.at,
            Area::Parity => self.data + slots.at,
            Area::Scratch => self.data + self.parity + slots.at,
        }
    }

    /// Vector operations per vector (products, XORs, and memory traffic
    /// counted as a quarter each), to weigh against the matrix kernel.
    pub(super) fn vector_ops(&self) -> usize {
        let butterflies = |log: usize| log * (1 << log) / 2;
        let ops: usize = self
            .ops
            .iter()
            .map(|op| match *op {
                Op::MulAdd { len, .. } | Op::SubScale { len, .. } | Op::Horner { len, .. } => {
                    2 * len + 3 * len / 4
                }
                Op::Butterfly { half, .. } => 3 * half + half,
                Op::InverseButterfly { half, coef, .. } => {
                    if coef.is_some() {
                        3 * half + half
                    } else {
                        half + half
                    }
                }
                Op::InverseButterfly2 { half, coefs, .. } => {
                    // Four butterflies per step, with half the memory traffic.
                    let products = coefs[..2].iter().flatten().count() * half
                        + coefs[2].map_or(0, |_| 2 * half);
                    2 * products + 4 * half + 2 * half
                }
                Op::Transform { log, .. } => 3 * butterflies(log) + (1 << log) / 2,
                Op::Copy { len, .. } => len / 2,
                Op::Xor { len, .. } => len + 3 * len / 4,
                Op::Sum { count, len, .. } => (count - 1) * len + (count + 1) * len / 4,
                Op::Scale { len, .. } => 2 * len + len / 2,
            })
            .sum();
        ops
    }

    /// The program on one byte per shard, in plain field arithmetic: the
    /// reference the SIMD kernels are tested against.
    #[cfg(test)]
    pub(super) fn evaluate(&self, data: &[u8]) -> Vec<u8> {
        let mut parity = vec![0u8; self.parity];
        let mut scratch = vec![0u8; self.scratch];
        let c = &self.coefficients;
        let read = |s: Slots, j: usize, parity: &[u8], scratch: &[u8]| match s.area {
            Area::Data => data[s.at + j],
            Area::Parity => parity[s.at + j],
            Area::Scratch => scratch[s.at + j],
        };
        fn write(s: Slots, j: usize, v: u8, parity: &mut [u8], scratch: &mut [u8]) {
            match s.area {
                Area::Data => panic!("a program writes a data shard"),
                Area::Parity => parity[s.at + j] = v,
                Area::Scratch => scratch[s.at + j] = v,
            }
        }
        for op in &self.ops {
            match *op {
                Op::MulAdd {
                    a,
                    b,
                    dst,
                    len,
                    coef,
                } => {
                    for j in 0..len {
                        let v = read(a, j, &parity, &scratch)
                            ^ mul(c[coef], read(b, j, &parity, &scratch));
                        write(dst, j, v, &mut parity, &mut scratch);
                    }
                }
                Op::Butterfly {
                    src,
                    dst,
                    half,
                    coef,
                } => {
                    for j in 0..half {
                        let (x, y) = (
                            read(src, j, &parity, &scratch),
                            read(src, j + half, &parity, &scratch),
                        );
                        let lo = x ^ mul(c[coef], y);
                        write(dst, j, lo, &mut parity, &mut scratch);
                        write(dst, j + half, lo ^ y, &mut parity, &mut scratch);
                    }
                }
                Op::InverseButterfly { at, half, coef } => {
                    for j in 0..half {
                        let (x, y) = (
                            read(at, j, &parity, &scratch),
                            read(at, j + half, &parity, &scratch),
                        );
                        let hi = x ^ y;
                        let lo = coef.map_or(x, |coef| x ^ mul(c[coef], hi));
                        write(at, j, lo, &mut parity, &mut scratch);
                        write(at, j + half, hi, &mut parity, &mut scratch);
                    }
                }
                Op::InverseButterfly2 { at, half, coefs } => {
                    let step = |x: u8, y: u8, coef: Option<usize>| {
                        let hi = x ^ y;
                        (coef.map_or(x, |coef| x ^ mul(c[coef], hi)), hi)
                    };
                    for j in 0..half {
                        let [a, b, cc, d] =
                            [0, 1, 2, 3].map(|q| read(at, j + q * half, &parity, &scratch));
                        let (a, b) = step(a, b, coefs[0]);
                        let (cc, d) = step(cc, d, coefs[1]);
                        let (a, cc) = step(a, cc, coefs[2]);
                        let (b, d) = step(b, d, coefs[2]);
                        for (q, v) in [a, b, cc, d].into_iter().enumerate() {
                            write(at, j + q * half, v, &mut parity, &mut scratch);
                        }
                    }
                }
                Op::Transform {
                    src,
                    dst,
                    log,
                    coef,
                    inverse,
                    ..
                } => {
                    let mut v: Vec<u8> = (0..1 << log)
                        .map(|j| read(src, j, &parity, &scratch))
                        .collect();
                    if inverse {
                        super::inverse_bytes(&mut v, &c[coef..]);
                    } else {
                        super::forward_bytes(&mut v, &c[coef..]);
                    }
                    for (j, &x) in v.iter().enumerate() {
                        write(dst, j, x, &mut parity, &mut scratch);
                    }
                }
                Op::SubScale {
                    a,
                    b,
                    dst,
                    len,
                    coef,
                } => {
                    for j in 0..len {
                        let v = read(a, j, &parity, &scratch) ^ read(b, j, &parity, &scratch);
                        write(dst, j, mul(c[coef + j], v), &mut parity, &mut scratch);
                    }
                }
                Op::Horner { a, dst, len, coef } => {
                    for j in 0..len {
                        let v = read(a, j, &parity, &scratch)
                            ^ mul(c[coef + j], read(dst, j, &parity, &scratch));
                        write(dst, j, v, &mut parity, &mut scratch);
                    }
                }
                Op::Copy { a, dst, len } => {
                    for j in 0..len {
                        let v = read(a, j, &parity, &scratch);
                        write(dst, j, v, &mut parity, &mut scratch);
                    }
                }
                Op::Xor { a, b, dst, len } => {
                    for j in 0..len {
                        let v = read(a, j, &parity, &scratch) ^ read(b, j, &parity, &scratch);
                        write(dst, j, v, &mut parity, &mut scratch);
                    }
                }
                Op::Sum {
                    src,
                    stride,
                    count,
                    dst,
                    len,
                } => {
                    for j in 0..len {
                        let v = (0..count)
                            .fold(0, |v, i| v ^ read(src, j + i * stride, &parity, &scratch));
                        write(dst, j, v, &mut parity, &mut scratch);
                    }
                }
                Op::Scale { a, dst, len, coef } => {
                    for j in 0..len {
                        let v = mul(c[coef], read(a, j, &parity, &scratch));
                        write(dst, j, v, &mut parity, &mut scratch);
                    }
                }
            }
        }
        parity
    }
}
