//! The kernels every SIMD backend shares, written once over the [`Lanes`]
//! trait: the slice loops and the register-blocked fused matrix kernel.
//!
//! Each backend file implements [`Lanes`] with `#[inline(always)]` methods
//! around its intrinsics and exposes `#[target_feature]` shells that
//! instantiate these generic bodies, so the whole loop is compiled for that
//! instruction set.

/// One instruction set as the generic kernels see it.
///
/// # Safety
/// Every method executes instructions of the implementor's instruction set.
/// Callers must only call them once that instruction set is known to be
/// present (an [`Engine`](super::Engine) of that backend exists), and must
/// pass pointers valid for the accesses described on each method.
pub(super) trait Lanes {
    /// Bytes per vector.
    const WIDTH: usize;
    /// A vector register.
    type Vector: Copy;
    /// An input vector prepared for multiplication (the raw vector for GFNI,
    /// its two nibble halves for `pshufb` backends).
    type Operand: Copy;
    /// A coefficient as stored in a prepared table.
    type Stored: Copy;
    /// A coefficient loaded into registers.
    type Factor: Copy;

    /// The all-zero vector.
    unsafe fn zero() -> Self::Vector;
    /// Loads `WIDTH` bytes from `ptr` (any alignment).
    unsafe fn load(ptr: *const u8) -> Self::Vector;
    /// Loads `len < WIDTH` bytes from `ptr`, zero-filling the rest; reads
    /// nothing past `ptr + len`.
    unsafe fn load_partial(ptr: *const u8, len: usize) -> Self::Vector;
    /// Stores `WIDTH` bytes at `ptr` (any alignment).
    unsafe fn store(ptr: *mut u8, v: Self::Vector);
    /// Stores the first `len < WIDTH` bytes of `v` at `ptr`; writes nothing
    /// past `ptr + len`.
    unsafe fn store_partial(ptr: *mut u8, len: usize, v: Self::Vector);
    /// `a ^ b`.
    unsafe fn xor(a: Self::Vector, b: Self::Vector) -> Self::Vector;
    /// Prepares `v` for one or more multiplications.
    unsafe fn operand(v: Self::Vector) -> Self::Operand;
    /// Loads a stored coefficient.
    unsafe fn factor(stored: *const Self::Stored) -> Self::Factor;
    /// The byte-wise product of a coefficient and an operand.
    unsafe fn mul(f: Self::Factor, x: Self::Operand) -> Self::Vector;

    /// `acc ^ f1 * x1 ^ f2 * x2`; backends with a three-input XOR override it.
    #[inline(always)]
    unsafe fn mul_add2(
        acc: Self::Vector,
        f1: Self::Factor,
        x1: Self::Operand,
        f2: Self::Factor,
        x2: Self::Operand,
    ) -> Self::Vector {
        // SAFETY: forwarded under the trait contract.
        unsafe { Self::xor(acc, Self::xor(Self::mul(f1, x1), Self::mul(f2, x2))) }
    }
}

/// `dst = c * src` (or `dst ^= c * src` when `ADD`) for one stored
/// coefficient.
///
/// # Safety
/// The [`Lanes`] contract: `L`'s instruction set is present.
#[inline(always)]
pub(super) unsafe fn mul_slice<L: Lanes, const ADD: bool>(
    stored: &L::Stored,
    src: &[u8],
    dst: &mut [u8],
) {
    debug_assert_eq!(src.len(), dst.len());
    let len = src.len().min(dst.len());
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    let w = L::WIDTH;
    // SAFETY: every access below stays inside `src[..len]` / `dst[..len]`
    // (the loop bounds check `pos + n * w <= len`, the tail uses the partial
    // forms with the exact remaining length); the instruction set is present
    // by this function's contract.
    unsafe {
        let f = L::factor(stored);
        let step = |pos: usize, v: L::Vector| {
            let p = L::mul(f, L::operand(v));
            if ADD {
                L::xor(L::load(d.add(pos)), p)
            } else {
                p
            }
        };
        let mut pos = 0;
        while pos + 4 * w <= len {
            let v0 = L::load(s.add(pos));
            let v1 = L::load(s.add(pos + w));
            let v2 = L::load(s.add(pos + 2 * w));
            let v3 = L::load(s.add(pos + 3 * w));
            let r0 = step(pos, v0);
            let r1 = step(pos + w, v1);
            let r2 = step(pos + 2 * w, v2);
            let r3 = step(pos + 3 * w, v3);
            L::store(d.add(pos), r0);
            L::store(d.add(pos + w), r1);
            L::store(d.add(pos + 2 * w), r2);
            L::store(d.add(pos + 3 * w), r3);
            pos += 4 * w;
        }
        while pos + w <= len {
            let r = step(pos, L::load(s.add(pos)));
            L::store(d.add(pos), r);
            pos += w;
        }
        if pos < len {
            let rest = len - pos;
            let v = L::load_partial(s.add(pos), rest);
            let mut p = L::mul(f, L::operand(v));
            if ADD {
                p = L::xor(L::load_partial(d.add(pos), rest), p);
            }
            L::store_partial(d.add(pos), rest, p);
        }
    }
}

/// `dst ^= src`.
///
/// # Safety
/// The [`Lanes`] contract: `L`'s instruction set is present.
#[inline(always)]
pub(super) unsafe fn xor_slice<L: Lanes>(src: &[u8], dst: &mut [u8]) {
    debug_assert_eq!(src.len(), dst.len());
    let len = src.len().min(dst.len());
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    let w = L::WIDTH;
    // SAFETY: as in `mul_slice`: accesses stay inside both slices, and the
    // instruction set is present by contract.
    unsafe {
        let mut pos = 0;
        while pos + 4 * w <= len {
            for i in 0..4 {
                let at = pos + i * w;
                L::store(d.add(at), L::xor(L::load(d.add(at)), L::load(s.add(at))));
            }
            pos += 4 * w;
        }
        while pos + w <= len {
            L::store(d.add(pos), L::xor(L::load(d.add(pos)), L::load(s.add(pos))));
            pos += w;
        }
        if pos < len {
            let rest = len - pos;
            let v = L::xor(
                L::load_partial(d.add(pos), rest),
                L::load_partial(s.add(pos), rest),
            );
            L::store_partial(d.add(pos), rest, v);
        }
    }
}

/// `dst = sources[0] ^ sources[1] ^ ..` (zero for none), or with `ADD`
/// `dst ^= ..`: each vector of `dst` is loaded and stored once, however many
/// sources it sums.
///
/// # Safety
/// The [`Lanes`] contract: `L`'s instruction set is present. Every source
/// is at least as long as `dst`.
#[inline(always)]
pub(super) unsafe fn sum_slices<L: Lanes, const ADD: bool>(sources: &[&[u8]], dst: &mut [u8]) {
    debug_assert!(sources.iter().all(|s| s.len() >= dst.len()));
    let len = dst.len();
    let d = dst.as_mut_ptr();
    let w = L::WIDTH;
    // SAFETY: every access is below `len` bytes from the start of `dst` or
    // of a source at least `len` long (the caller's contract), and the
    // instruction set is present by contract.
    unsafe {
        let mut pos = 0;
        while pos + 4 * w <= len {
            let mut acc = [L::zero(); 4];
            if ADD {
                for (i, a) in acc.iter_mut().enumerate() {
                    *a = L::load(d.add(pos + i * w));
                }
            }
            for source in sources {
                let s = source.as_ptr().add(pos);
                for (i, a) in acc.iter_mut().enumerate() {
                    *a = L::xor(*a, L::load(s.add(i * w)));
                }
            }
            for (i, a) in acc.into_iter().enumerate() {
                L::store(d.add(pos + i * w), a);
            }
            pos += 4 * w;
        }
        while pos < len {
            let step = w.min(len - pos);
            let load = |p: *const u8| {
                if step == w {
                    L::load(p)
                } else {
                    L::load_partial(p, step)
                }
            };
            let mut a = if ADD { load(d.add(pos)) } else { L::zero() };
            for source in sources {
                a = L::xor(a, load(source.as_ptr().add(pos)));
            }
            if step == w {
                L::store(d.add(pos), a);
            } else {
                L::store_partial(d.add(pos), step, a);
            }
            pos += step;
        }
    }
}

/// One step of Horner's rule over symbols: `next = c * acc ^ add` (just
/// `c * acc` without `add`), then `t ^= next` for every `t` in `spread`, in
/// one pass.
///
/// # Safety
/// The [`Lanes`] contract: `L`'s instruction set is present. `acc`, `add`
/// and every `spread` target are at least as long as `next`.
#[inline(always)]
pub(super) unsafe fn mul_xor_spread<L: Lanes>(
    stored: &L::Stored,
    acc: &[u8],
    add: Option<&[u8]>,
    next: &mut [u8],
    spread: &mut [&mut [u8]],
) {
    let len = next.len();
    debug_assert!(acc.len() >= len && add.is_none_or(|a| a.len() >= len));
    debug_assert!(spread.iter().all(|t| t.len() >= len));
    let w = L::WIDTH;
    // SAFETY: every access is below `len` bytes from the start of a slice
    // at least `len` long (the caller's contract), and the instruction set
    // is present by contract.
    unsafe {
        let f = L::factor(stored);
        let (a, n) = (acc.as_ptr(), next.as_mut_ptr());
        let mut pos = 0;
        while pos + w <= len {
            let mut r = L::mul(f, L::operand(L::load(a.add(pos))));
            if let Some(add) = add {
                r = L::xor(r, L::load(add.as_ptr().add(pos)));
            }
            L::store(n.add(pos), r);
            for target in spread.iter_mut() {
                let t = target.as_mut_ptr().add(pos);
                L::store(t, L::xor(L::load(t), r));
            }
            pos += w;
        }
        if pos < len {
            let rest = len - pos;
            let mut r = L::mul(f, L::operand(L::load_partial(a.add(pos), rest)));
            if let Some(add) = add {
                r = L::xor(r, L::load_partial(add.as_ptr().add(pos), rest));
            }
            L::store_partial(n.add(pos), rest, r);
            for target in spread.iter_mut() {
                let t = target.as_mut_ptr().add(pos);
                L::store_partial(t, rest, L::xor(L::load_partial(t, rest), r));
            }
        }
    }
}

/// The raw view of a fused-kernel call: pointers to `cols` inputs and `rows`
/// outputs, all `len` bytes long, and the coefficient table stored
/// input-major (`table[j * rows + r]` multiplies input `j` into output `r`),
/// so that one output group reads its coefficients for an input
/// contiguously.
pub(super) struct MatrixCall<'a, T> {
    pub table: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub inputs: &'a [*const u8],
    pub outputs: &'a [*mut u8],
    pub len: usize,
    /// XOR into the outputs instead of overwriting them.
    pub add: bool,
}

/// Bytes of inputs one pass over a chunk should touch, so that they stay in
/// L1 while every output group re-reads them.
const CHUNK_INPUT_BUDGET: usize = 24 * 1024;

/// The fused kernel: for each cache-sized chunk of the byte range, each group
/// of up to `R` outputs is computed `C` vectors at a time with `R x C`
/// accumulators in registers, so each input load serves `R` outputs and each
/// coefficient load serves `C` vectors.
///
/// # Safety
/// The [`Lanes`] contract, plus: `call.table.len() == rows * cols`, every
/// input pointer valid for `len` reads and every output pointer for `len`
/// writes, outputs not overlapping each other or any input.
#[inline(always)]
pub(super) unsafe fn matrix_apply<L: Lanes, const R: usize, const C: usize>(
    call: &MatrixCall<'_, L::Stored>,
) {
    // SAFETY: forwarded contract.
    unsafe { matrix_apply_grouped::<L, C>(call, R) }
}

/// The group size among `smallest..=largest` that covers `rows` outputs in
/// the fewest groups (the smaller size on a tie, as it needs fewer registers).
pub(super) fn group_rows(rows: usize, smallest: usize, largest: usize) -> usize {
    (smallest..=largest)
        .min_by_key(|&g| rows.div_ceil(g))
        .unwrap_or(smallest)
}

/// [`matrix_apply`] with the group size `r` (at most 8) chosen at run time.
///
/// # Safety
/// As [`matrix_apply`].
#[inline(always)]
pub(super) unsafe fn matrix_apply_grouped<L: Lanes, const C: usize>(
    call: &MatrixCall<'_, L::Stored>,
    r: usize,
) {
    let r = r.clamp(1, 8);
    debug_assert_eq!(call.table.len(), call.rows * call.cols);
    let block = C * L::WIDTH;
    let chunk = if call.rows <= r {
        // One group: every input is read once anyway, chunking buys nothing.
        call.len.max(1)
    } else {
        (CHUNK_INPUT_BUDGET / call.cols.max(1) / block).max(1) * block
    };
    let mut start = 0;
    while start < call.len {
        let end = call.len.min(start + chunk);
        let mut row = 0;
        while row < call.rows {
            let n = (call.rows - row).min(r);
            // SAFETY: forwarded contract; `row + n <= rows`.
            unsafe {
                match n {
                    8 => group::<L, 8, C>(call, row, start, end),
                    7 => group::<L, 7, C>(call, row, start, end),
                    6 => group::<L, 6, C>(call, row, start, end),
                    5 => group::<L, 5, C>(call, row, start, end),
                    4 => group::<L, 4, C>(call, row, start, end),
                    3 => group::<L, 3, C>(call, row, start, end),
                    2 => group::<L, 2, C>(call, row, start, end),
                    _ => group::<L, 1, C>(call, row, start, end),
                }
            }
            row += n;
        }
        start = end;
    }
}

/// Outputs `row..row + G` over bytes `start..end`.
///
/// # Safety
/// As [`matrix_apply`], with `row + G <= rows` and `end <= len`.
#[inline(always)]
unsafe fn group<L: Lanes, const G: usize, const C: usize>(
    call: &MatrixCall<'_, L::Stored>,
    row: usize,
    start: usize,
    end: usize,
) {
    let w = L::WIDTH;
    let mut pos = start;
    // SAFETY: forwarded contract; each block stays below `end`.
    unsafe {
        while pos + C * w <= end {
            block::<L, G, C, false>(call, row, pos, 0);
            pos += C * w;
        }
        while pos + w <= end {
            block::<L, G, 1, false>(call, row, pos, 0);
            pos += w;
        }
        if pos < end {
            block::<L, G, 1, true>(call, row, pos, end - pos);
        }
    }
}

/// One register block: outputs `row..row + G`, `C` vectors from `pos` (or,
/// when `PARTIAL`, `C == 1` vector of `tail` bytes).
///
/// # Safety
/// As [`group`], with the block inside `start..end`.
#[inline(always)]
unsafe fn block<L: Lanes, const G: usize, const C: usize, const PARTIAL: bool>(
    call: &MatrixCall<'_, L::Stored>,
    row: usize,
    pos: usize,
    tail: usize,
) {
    let w = L::WIDTH;
    let rows = call.rows;
    let table = call.table.as_ptr();
    let inputs = call.inputs.as_ptr();
    // SAFETY: the caller guarantees the instruction set, pointer validity for
    // `pos + C * w` (or `pos + tail`) bytes, and that `table` has
    // `rows * cols` entries; `j < cols` and `row + r < rows` below.
    unsafe {
        let load = |p: *const u8| {
            if PARTIAL {
                L::load_partial(p, tail)
            } else {
                L::load(p)
            }
        };
        let mut acc = [[L::zero(); C]; G];
        if call.add {
            for (r, acc_row) in acc.iter_mut().enumerate() {
                for (c, a) in acc_row.iter_mut().enumerate() {
                    *a = load(call.outputs[row + r].add(pos + c * w));
                }
            }
        }
        let mut j = 0;
        while j + 2 <= call.cols {
            let pa = *inputs.add(j);
            let pb = *inputs.add(j + 1);
            let mut xa = [L::operand(L::zero()); C];
            let mut xb = [L::operand(L::zero()); C];
            for c in 0..C {
                xa[c] = L::operand(load(pa.add(pos + c * w)));
                xb[c] = L::operand(load(pb.add(pos + c * w)));
            }
            let ta = table.add(j * rows + row);
            let tb = table.add((j + 1) * rows + row);
            for (r, acc_row) in acc.iter_mut().enumerate() {
                let fa = L::factor(ta.add(r));
                let fb = L::factor(tb.add(r));
                for c in 0..C {
                    acc_row[c] = L::mul_add2(acc_row[c], fa, xa[c], fb, xb[c]);
                }
            }
            j += 2;
        }
        if j < call.cols {
            let pa = *inputs.add(j);
            let mut xa = [L::operand(L::zero()); C];
            for (c, x) in xa.iter_mut().enumerate() {
                *x = L::operand(load(pa.add(pos + c * w)));
            }
            let ta = table.add(j * rows + row);
            for (r, acc_row) in acc.iter_mut().enumerate() {
                let fa = L::factor(ta.add(r));
                for c in 0..C {
                    acc_row[c] = L::xor(acc_row[c], L::mul(fa, xa[c]));
                }
            }
        }
        for (r, acc_row) in acc.iter().enumerate() {
            let out = call.outputs[row + r];
            for (c, a) in acc_row.iter().enumerate() {
                if PARTIAL {
                    L::store_partial(out.add(pos + c * w), tail, *a);
                } else {
                    L::store(out.add(pos + c * w), *a);
                }
            }
        }
    }
}
