//! The transform kernels, written once over [`Lanes`] and compiled per
//! instruction set, one 64-byte column (or narrower, per backend) at a time.
//!
//! - [`Route::Registers`]: the column of every data shard is loaded into
//!   registers, transformed, and each parity run is folded, transformed and
//!   stored, so the only memory traffic is the data read once and the
//!   parity written once.
//! - [`Route::Program`]: the program's operations run in order over the
//!   column, with scratch vectors in a buffer that stays in L1; transforms of
//!   up to 16 vectors (`program::REGISTER_LOG`) still run in registers.

use super::super::lanes::Lanes;
use super::super::{avx2::Avx2, avx512::Avx512, gfni::Gfni, ssse3::Ssse3, NibbleTable};
use super::program::{Area, Op, Program, Slots};
use super::{ParityPlan, Route, Run};

/// The raw view of one call: the expanded route coefficients, the route
/// that indexes them, and pointers to the inputs and outputs, all `len`
/// bytes long.
pub(super) struct ParityCall<'a, T> {
    pub table: &'a [T],
    pub route: &'a Route,
    pub inputs: &'a [*const u8],
    pub outputs: &'a [*mut u8],
    pub len: usize,
}

/// # Safety
/// The CPU supports AVX-512F, AVX-512BW and GFNI; `call` satisfies
/// [`apply`]'s contract.
#[target_feature(enable = "avx512f,avx512bw,gfni")]
pub(super) unsafe fn gfni(call: &ParityCall<'_, u64>) {
    // SAFETY: the features are enabled on this function; the rest is the
    // caller's contract.
    unsafe { apply::<Gfni>(call) }
}

/// # Safety
/// The CPU supports AVX-512F and AVX-512BW; `call` satisfies [`apply`]'s
/// contract.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn avx512(call: &ParityCall<'_, NibbleTable>) {
    // SAFETY: as in `gfni`.
    unsafe { apply::<Avx512>(call) }
}

/// # Safety
/// The CPU supports AVX2; `call` satisfies [`apply`]'s contract.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn avx2(call: &ParityCall<'_, NibbleTable>) {
    // SAFETY: as in `gfni`.
    unsafe { apply::<Avx2>(call) }
}

/// # Safety
/// The CPU supports SSSE3; `call` satisfies [`apply`]'s contract.
#[target_feature(enable = "ssse3")]
pub(super) unsafe fn ssse3(call: &ParityCall<'_, NibbleTable>) {
    // SAFETY: as in `gfni`.
    unsafe { apply::<Ssse3>(call) }
}

/// # Safety
/// The [`Lanes`] contract, plus: `call.table` is the expansion of
/// `call.route`'s coefficients, whose shape is `call.inputs.len()` data and
/// `call.outputs.len()` parity shards; every input pointer is valid for
/// `len` reads and every output pointer for `len` writes, outputs
/// overlapping neither each other nor any input.
#[inline(always)]
unsafe fn apply<L: Lanes>(call: &ParityCall<'_, L::Stored>) {
    // SAFETY: forwarded contract.
    unsafe {
        match call.route {
            Route::Registers(plan) => match plan.data {
                2 => columns::<L, 2>(call, plan),
                4 => columns::<L, 4>(call, plan),
                8 => columns::<L, 8>(call, plan),
                16 => columns::<L, 16>(call, plan),
                32 => columns::<L, 32>(call, plan),
                other => unreachable!("no register plan has {other} data shards"),
            },
            Route::Program(program) => run_program::<L>(call, program),
        }
    }
}

/// Loads one vector; `PARTIAL` loads the first `tail` bytes.
///
/// # Safety
/// The [`Lanes`] contract; `p` valid for the bytes read.
#[inline(always)]
unsafe fn load<L: Lanes, const PARTIAL: bool>(p: *const u8, tail: usize) -> L::Vector {
    // SAFETY: forwarded contract.
    unsafe {
        if PARTIAL {
            L::load_partial(p, tail)
        } else {
            L::load(p)
        }
    }
}

/// Stores one vector; `PARTIAL` stores the first `tail` bytes.
///
/// # Safety
/// The [`Lanes`] contract; `p` valid for the bytes written.
#[inline(always)]
unsafe fn store<L: Lanes, const PARTIAL: bool>(p: *mut u8, tail: usize, v: L::Vector) {
    // SAFETY: forwarded contract.
    unsafe {
        if PARTIAL {
            L::store_partial(p, tail, v)
        } else {
            L::store(p, v)
        }
    }
}

/// Inverse transform (values to coefficients) of `N` vectors, layers from 0
/// up, twiddles laid out as `Basis::twiddles` writes them. When
/// `zero_first`, the first block of every layer (at point 0) has a zero
/// twiddle and needs no product.
///
/// Each layer is its own loop nest of `N / 2` butterflies, small enough for
/// the compiler to unroll completely, which keeps `v` in registers (one
/// nest over all layers is not unrolled, and `v` then lives on the stack).
///
/// # Safety
/// The [`Lanes`] contract; `twiddles` points to `N - 1` entries.
#[inline(always)]
unsafe fn inverse_registers<L: Lanes, const N: usize>(
    v: &mut [L::Vector; N],
    twiddles: *const L::Stored,
    zero_first: bool,
) {
    // SAFETY: forwarded contract.
    unsafe {
        inverse_layer::<L, N, 1>(v, twiddles, zero_first);
        inverse_layer::<L, N, 2>(v, twiddles, zero_first);
        inverse_layer::<L, N, 4>(v, twiddles, zero_first);
        inverse_layer::<L, N, 8>(v, twiddles, zero_first);
        inverse_layer::<L, N, 16>(v, twiddles, zero_first);
    }
}

/// The inverse layer with butterflies `HALF` apart (nothing when the
/// transform is not larger than `HALF`).
///
/// # Safety
/// As [`inverse_registers`].
#[inline(always)]
unsafe fn inverse_layer<L: Lanes, const N: usize, const HALF: usize>(
    v: &mut [L::Vector; N],
    twiddles: *const L::Stored,
    zero_first: bool,
) {
    if HALF >= N {
        return;
    }
    // The layers below this one used `N - N / HALF` twiddles.
    let at = N - N / HALF;
    // SAFETY: forwarded contract; `at + b < N - 1` for every block.
    unsafe {
        for b in 0..N / (2 * HALF) {
            let r = b * 2 * HALF;
            if b == 0 && zero_first {
                for j in 0..HALF {
                    v[j + HALF] = L::xor(v[j + HALF], v[j]);
                }
                continue;
            }
            let f = L::factor(twiddles.add(at + b));
            for j in r..r + HALF {
                let hi = L::xor(v[j + HALF], v[j]);
                v[j + HALF] = hi;
                v[j] = L::xor(v[j], L::mul(f, L::operand(hi)));
            }
        }
    }
}

/// Forward transform (coefficients to values) of `M` vectors, layers from
/// the top down, each its own loop nest as in [`inverse_registers`].
///
/// # Safety
/// The [`Lanes`] contract; `twiddles` points to `M - 1` entries.
#[inline(always)]
unsafe fn forward_registers<L: Lanes, const M: usize>(
    e: &mut [L::Vector; M],
    twiddles: *const L::Stored,
) {
    // SAFETY: forwarded contract.
    unsafe {
        forward_layer::<L, M, 16>(e, twiddles);
        forward_layer::<L, M, 8>(e, twiddles);
        forward_layer::<L, M, 4>(e, twiddles);
        forward_layer::<L, M, 2>(e, twiddles);
        forward_layer::<L, M, 1>(e, twiddles);
    }
}

/// The forward layer with butterflies `HALF` apart (nothing when the
/// transform is not larger than `HALF`).
///
/// # Safety
/// As [`forward_registers`].
#[inline(always)]
unsafe fn forward_layer<L: Lanes, const M: usize, const HALF: usize>(
    e: &mut [L::Vector; M],
    twiddles: *const L::Stored,
) {
    if HALF >= M {
        return;
    }
    let at = M - M / HALF;
    // SAFETY: forwarded contract; `at + b < M - 1` for every block.
    unsafe {
        for b in 0..M / (2 * HALF) {
            let f = L::factor(twiddles.add(at + b));
            let r = b * 2 * HALF;
            for j in r..r + HALF {
                let lo = L::xor(e[j], L::mul(f, L::operand(e[j + HALF])));
                e[j] = lo;
                e[j + HALF] = L::xor(e[j + HALF], lo);
            }
        }
    }
}

/// # Safety
/// As [`apply`], with `plan` the call's route and `N == plan.data`.
#[inline(always)]
unsafe fn columns<L: Lanes, const N: usize>(call: &ParityCall<'_, L::Stored>, plan: &ParityPlan) {
    let w = L::WIDTH;
    let mut pos = 0;
    // SAFETY: forwarded contract; each column lies inside `0..len`.
    unsafe {
        while pos + w <= call.len {
            column::<L, N, false>(call, plan, pos, 0);
            pos += w;
        }
        if pos < call.len {
            column::<L, N, true>(call, plan, pos, call.len - pos);
        }
    }
}

/// One column: the vector at `pos` of every shard (or, when `PARTIAL`, its
/// first `tail` bytes).
///
/// # Safety
/// As [`columns`], with the column inside `0..len`.
#[inline(always)]
unsafe fn column<L: Lanes, const N: usize, const PARTIAL: bool>(
    call: &ParityCall<'_, L::Stored>,
    plan: &ParityPlan,
    pos: usize,
    tail: usize,
) {
    if let (Some(stream), [run]) = (plan.stream, plan.runs.as_slice()) {
        // SAFETY: forwarded contract; the stream belongs to this plan.
        unsafe {
            match run.log {
                0 => stream_run::<L, N, 1, PARTIAL>(call, stream, run, pos, tail),
                1 => stream_run::<L, N, 2, PARTIAL>(call, stream, run, pos, tail),
                2 => stream_run::<L, N, 4, PARTIAL>(call, stream, run, pos, tail),
                3 => stream_run::<L, N, 8, PARTIAL>(call, stream, run, pos, tail),
                _ => stream_run::<L, N, 16, PARTIAL>(call, stream, run, pos, tail),
            }
        }
        return;
    }
    // SAFETY: the caller guarantees the instruction set and pointer validity
    // for this column; the plan's inverse twiddles (`N - 1`) come first in
    // the table.
    unsafe {
        let mut v = [L::zero(); N];
        for (j, x) in v.iter_mut().enumerate() {
            *x = load::<L, PARTIAL>(call.inputs[j].add(pos), tail);
        }
        inverse_registers::<L, N>(&mut v, call.table.as_ptr(), true);
        // One run (parity count a power of two up to the data count, the
        // common shapes) needs no loop, so the coefficients can stay in
        // registers instead of being spilled to survive one.
        match plan.runs.as_slice() {
            [only] => evaluate_run::<L, N, PARTIAL>(call, &v, only, pos, tail),
            runs => {
                for run in runs {
                    evaluate_run::<L, N, PARTIAL>(call, &v, run, pos, tail);
                }
            }
        }
    }
}

/// The streamed form of a single run of `M < N` points (see
/// [`super::Stream`]): each block of `M` data vectors is loaded,
/// transformed, and added into the run's accumulators with its weight.
///
/// # Safety
/// As [`column()`], with `stream` and `run` from the call's plan and
/// `M == 2^run.log < N`.
#[inline(always)]
unsafe fn stream_run<L: Lanes, const N: usize, const M: usize, const PARTIAL: bool>(
    call: &ParityCall<'_, L::Stored>,
    stream: super::Stream,
    run: &Run,
    pos: usize,
    tail: usize,
) {
    if M >= N {
        return;
    }
    debug_assert_eq!(1 << run.log, M);
    // SAFETY: the caller guarantees the instruction set and pointer validity
    // for this column; the stream's table entries exist (`M - 1` twiddles per
    // block, one weight per block) and the run's outputs are
    // `first..first + M`.
    unsafe {
        let table = call.table.as_ptr();
        let mut e = [L::zero(); M];
        for q in 0..N / M {
            let mut b = [L::zero(); M];
            for (j, x) in b.iter_mut().enumerate() {
                *x = load::<L, PARTIAL>(call.inputs[q * M + j].add(pos), tail);
            }
            let twiddles = table.add(stream.twiddles_at + q * (M - 1));
            inverse_registers::<L, M>(&mut b, twiddles, q == 0);
            let f = L::factor(table.add(stream.weights_at + q));
            for (x, y) in e.iter_mut().zip(b) {
                *x = L::xor(*x, L::mul(f, L::operand(y)));
            }
        }
        forward_registers::<L, M>(&mut e, table.add(run.fft_at));
        for (i, x) in e.iter().enumerate() {
            store::<L, PARTIAL>(call.outputs[run.first + i].add(pos), tail, *x);
        }
    }
}

/// [`evaluate`] for the run's size.
///
/// (The kernels use functions, not closures: a closure does not inherit its
/// enclosing function's `#[target_feature]`s, so everything inlined into it
/// would be compiled without the instruction set.)
///
/// # Safety
/// As [`evaluate`].
#[inline(always)]
unsafe fn evaluate_run<L: Lanes, const N: usize, const PARTIAL: bool>(
    call: &ParityCall<'_, L::Stored>,
    v: &[L::Vector; N],
    run: &Run,
    pos: usize,
    tail: usize,
) {
    // SAFETY: forwarded contract.
    unsafe {
        match run.log {
            0 => evaluate::<L, N, 1, PARTIAL>(call, v, run, pos, tail),
            1 => evaluate::<L, N, 2, PARTIAL>(call, v, run, pos, tail),
            2 => evaluate::<L, N, 4, PARTIAL>(call, v, run, pos, tail),
            3 => evaluate::<L, N, 8, PARTIAL>(call, v, run, pos, tail),
            4 => evaluate::<L, N, 16, PARTIAL>(call, v, run, pos, tail),
            _ => evaluate::<L, N, 32, PARTIAL>(call, v, run, pos, tail),
        }
    }
}

/// Evaluates the coefficients `v` on one run of `M` parity points and
/// stores the results.
///
/// # Safety
/// As [`column()`], with `run` from the call's plan and `M == 2^run.log`.
#[inline(always)]
unsafe fn evaluate<L: Lanes, const N: usize, const M: usize, const PARTIAL: bool>(
    call: &ParityCall<'_, L::Stored>,
    v: &[L::Vector; N],
    run: &Run,
    pos: usize,
    tail: usize,
) {
    // Plans cap runs at the data count; this keeps the impossible instances
    // empty.
    if M > N {
        return;
    }
    debug_assert_eq!(1 << run.log, M);
    debug_assert!(run.first + M <= call.outputs.len());
    // SAFETY: as the caller's; the run's table entries exist (`N / M - 1`
    // fold multipliers, `M - 1` twiddles) and its outputs are
    // `first..first + M`.
    unsafe {
        let folds = call.table.as_ptr().add(run.fold_at);
        let mut e = [L::zero(); M];
        for (i, out) in e.iter_mut().enumerate() {
            let mut acc = v[i];
            let mut q = 1;
            while q + 1 < N / M {
                acc = L::mul_add2(
                    acc,
                    L::factor(folds.add(q - 1)),
                    L::operand(v[i + q * M]),
                    L::factor(folds.add(q)),
                    L::operand(v[i + (q + 1) * M]),
                );
                q += 2;
            }
            if q < N / M {
                let f = L::factor(folds.add(q - 1));
                acc = L::xor(acc, L::mul(f, L::operand(v[i + q * M])));
            }
            *out = acc;
        }
        forward_registers::<L, M>(&mut e, call.table.as_ptr().add(run.fft_at));
        for (i, x) in e.iter().enumerate() {
            store::<L, PARTIAL>(call.outputs[run.first + i].add(pos), tail, *x);
        }
    }
}

/// # Safety
/// As [`apply`], with `program` the call's route.
#[inline(always)]
unsafe fn run_program<L: Lanes>(call: &ParityCall<'_, L::Stored>, program: &Program) {
    // One column of every vector the program names (data and parity staged
    // in, then scratch), reused for every column.
    // SAFETY: the instruction set is present by contract.
    let mut column = vec![unsafe { L::zero() }; program.vectors()];
    let column = column.as_mut_ptr().cast::<u8>();
    let w = L::WIDTH;
    let mut pos = 0;
    // SAFETY: forwarded contract; each column lies inside `0..len`, and the
    // buffer holds `program.vectors()` vectors.
    unsafe {
        while pos + w <= call.len {
            program_column::<L, false>(call, program, column, pos, 0);
            pos += w;
        }
        if pos < call.len {
            program_column::<L, true>(call, program, column, pos, call.len - pos);
        }
    }
}

/// Runs every operation of `program` on one column: stages the data in,
/// runs the operations on the buffer, stages the parity out.
///
/// # Safety
/// As [`run_program`], with the column inside `0..len` and `buffer` valid
/// for `program.vectors()` vectors.
#[inline(always)]
unsafe fn program_column<L: Lanes, const PARTIAL: bool>(
    call: &ParityCall<'_, L::Stored>,
    program: &Program,
    buffer: *mut u8,
    pos: usize,
    tail: usize,
) {
    let w = L::WIDTH;
    let table = call.table.as_ptr();
    // SAFETY: `Program::index` maps every slot the program names below
    // `vectors()`, the buffer's size; the shard pointers are valid for this
    // column by the caller's contract; coefficient offsets come from the
    // program, which built the table's entries for them; the instruction set
    // is present by contract.
    unsafe {
        if !program.direct {
            for (j, &input) in call.inputs.iter().enumerate() {
                L::store(buffer.add(j * w), load::<L, PARTIAL>(input.add(pos), tail));
            }
        }
        // Plain function items, not closures: see `evaluate_run`.
        let base = |s: Slots| buffer.add(program.index(s) * w);
        let get = vector_load::<L>;
        let put = vector_store::<L>;
        for op in &program.ops {
            match *op {
                Op::MulAdd {
                    a,
                    b,
                    dst,
                    len,
                    coef,
                } => {
                    let f = L::factor(table.add(coef));
                    let (a, b, dst) = (base(a), base(b), base(dst));
                    for j in 0..len {
                        put(dst, j, L::xor(get(a, j), L::mul(f, L::operand(get(b, j)))));
                    }
                }
                Op::Butterfly {
                    src,
                    dst,
                    half,
                    coef,
                } => {
                    let f = L::factor(table.add(coef));
                    let (src, dst) = (base(src), base(dst));
                    for j in 0..half {
                        let hi = get(src, j + half);
                        let lo = L::xor(get(src, j), L::mul(f, L::operand(hi)));
                        put(dst, j, lo);
                        put(dst, j + half, L::xor(lo, hi));
                    }
                }
                Op::InverseButterfly { at, half, coef } => {
                    let at = base(at);
                    match coef {
                        Some(coef) => {
                            let f = L::factor(table.add(coef));
                            for j in 0..half {
                                let lo = get(at, j);
                                let hi = L::xor(get(at, j + half), lo);
                                put(at, j + half, hi);
                                put(at, j, L::xor(lo, L::mul(f, L::operand(hi))));
                            }
                        }
                        None => {
                            for j in 0..half {
                                put(at, j + half, L::xor(get(at, j + half), get(at, j)));
                            }
                        }
                    }
                }
                Op::InverseButterfly2 { at, half, coefs } => {
                    let at = base(at);
                    let [f0, f1, f2] = coefs.map(|c| c.map(|c| L::factor(table.add(c))));
                    for j in 0..half {
                        let a = get(at, j);
                        let b = get(at, j + half);
                        let c = get(at, j + 2 * half);
                        let d = get(at, j + 3 * half);
                        let (a, b) = inverse_step::<L>(a, b, f0);
                        let (c, d) = inverse_step::<L>(c, d, f1);
                        let (a, c) = inverse_step::<L>(a, c, f2);
                        let (b, d) = inverse_step::<L>(b, d, f2);
                        put(at, j, a);
                        put(at, j + half, b);
                        put(at, j + 2 * half, c);
                        put(at, j + 3 * half, d);
                    }
                }
                Op::Transform {
                    src,
                    dst,
                    log,
                    coef,
                    inverse,
                    zero_first,
                } => {
                    let (d, t) = (base(dst), table.add(coef));
                    let shards = (program.direct && src.area == Area::Data).then(|| Shards {
                        inputs: &call.inputs[src.at..],
                        pos,
                        tail,
                    });
                    let s = base(src);
                    if inverse {
                        transform_sized::<L, true, PARTIAL>(log, s, shards, d, t, zero_first);
                    } else {
                        transform_sized::<L, false, PARTIAL>(log, s, shards, d, t, zero_first);
                    }
                }
                Op::SubScale {
                    a,
                    b,
                    dst,
                    len,
                    coef,
                } => {
                    let (a, b, dst) = (base(a), base(b), base(dst));
                    for j in 0..len {
                        let f = L::factor(table.add(coef + j));
                        let x = L::xor(get(a, j), get(b, j));
                        put(dst, j, L::mul(f, L::operand(x)));
                    }
                }
                Op::Horner { a, dst, len, coef } => {
                    let (a, dst) = (base(a), base(dst));
                    for j in 0..len {
                        let f = L::factor(table.add(coef + j));
                        put(
                            dst,
                            j,
                            L::xor(get(a, j), L::mul(f, L::operand(get(dst, j)))),
                        );
                    }
                }
                Op::Copy { a, dst, len } if program.direct && dst.area == Area::Parity => {
                    let a = base(a);
                    for (j, &output) in call.outputs[dst.at..dst.at + len].iter().enumerate() {
                        store::<L, PARTIAL>(output.add(pos), tail, get(a, j));
                    }
                }
                Op::Copy { a, dst, len } => {
                    let (a, dst) = (base(a), base(dst));
                    for j in 0..len {
                        put(dst, j, get(a, j));
                    }
                }
                Op::Sum {
                    src,
                    stride,
                    count,
                    dst,
                    len,
                } => {
                    let (src, dst) = (base(src), base(dst));
                    for j in 0..len {
                        let mut v = get(src, j);
                        for i in 1..count {
                            v = L::xor(v, get(src, j + i * stride));
                        }
                        put(dst, j, v);
                    }
                }
                Op::Xor { a, b, dst, len } => {
                    let (a, b, dst) = (base(a), base(b), base(dst));
                    for j in 0..len {
                        put(dst, j, L::xor(get(a, j), get(b, j)));
                    }
                }
                Op::Scale { a, dst, len, coef } => {
                    let f = L::factor(table.add(coef));
                    let (a, dst) = (base(a), base(dst));
                    for j in 0..len {
                        put(dst, j, L::mul(f, L::operand(get(a, j))));
                    }
                }
            }
        }
        if !program.direct {
            let parity = base(Slots::parity(0));
            for (j, &output) in call.outputs.iter().enumerate() {
                store::<L, PARTIAL>(output.add(pos), tail, get(parity, j));
            }
        }
    }
}

/// One inverse butterfly: `hi += lo`, then `lo += f * hi` (no product for
/// a zero twiddle).
///
/// # Safety
/// The [`Lanes`] contract.
#[inline(always)]
unsafe fn inverse_step<L: Lanes>(
    lo: L::Vector,
    hi: L::Vector,
    f: Option<L::Factor>,
) -> (L::Vector, L::Vector) {
    // SAFETY: forwarded contract.
    unsafe {
        let hi = L::xor(hi, lo);
        match f {
            Some(f) => (L::xor(lo, L::mul(f, L::operand(hi))), hi),
            None => (lo, hi),
        }
    }
}

/// Loads vector `j` of a run of vectors at `p`.
///
/// # Safety
/// The [`Lanes`] contract; `p` valid for `j + 1` vectors.
#[inline(always)]
unsafe fn vector_load<L: Lanes>(p: *mut u8, j: usize) -> L::Vector {
    // SAFETY: forwarded contract.
    unsafe { L::load(p.add(j * L::WIDTH)) }
}

/// Stores vector `j` of a run of vectors at `p`.
///
/// # Safety
/// The [`Lanes`] contract; `p` valid for `j + 1` vectors.
#[inline(always)]
unsafe fn vector_store<L: Lanes>(p: *mut u8, j: usize, v: L::Vector) {
    // SAFETY: forwarded contract.
    unsafe { L::store(p.add(j * L::WIDTH), v) }
}

/// Data shards read in place: the column at `pos` (its first `tail` bytes
/// when partial) of `inputs[0..]`.
#[derive(Clone, Copy)]
struct Shards<'a> {
    inputs: &'a [*const u8],
    pos: usize,
    tail: usize,
}

/// [`transform`] of `2^log` vectors.
///
/// # Safety
/// As [`transform`], with `M = 2^log <= 32`.
#[inline(always)]
unsafe fn transform_sized<L: Lanes, const INVERSE: bool, const PARTIAL: bool>(
    log: usize,
    src: *const u8,
    shards: Option<Shards<'_>>,
    dst: *mut u8,
    twiddles: *const L::Stored,
    zero_first: bool,
) {
    debug_assert!(log <= super::program::REGISTER_LOG);
    // SAFETY: forwarded contract.
    unsafe {
        match log {
            0 => transform::<L, 1, INVERSE, PARTIAL>(src, shards, dst, twiddles, zero_first),
            1 => transform::<L, 2, INVERSE, PARTIAL>(src, shards, dst, twiddles, zero_first),
            2 => transform::<L, 4, INVERSE, PARTIAL>(src, shards, dst, twiddles, zero_first),
            3 => transform::<L, 8, INVERSE, PARTIAL>(src, shards, dst, twiddles, zero_first),
            4 => transform::<L, 16, INVERSE, PARTIAL>(src, shards, dst, twiddles, zero_first),
            _ => transform::<L, 32, INVERSE, PARTIAL>(src, shards, dst, twiddles, zero_first),
        }
    }
}

/// Loads `M` vectors from `src` (or, given `shards`, from the first `M`
/// shards' column), transforms them in registers (inverse or forward,
/// twiddles at `twiddles`) and stores them to `dst`.
///
/// # Safety
/// The [`Lanes`] contract; `src` valid for `M` vector reads, or `shards`
/// holding at least `M` pointers valid for the column; `dst` valid for `M`
/// vector writes, `twiddles` for `M - 1` entries.
#[inline(always)]
unsafe fn transform<L: Lanes, const M: usize, const INVERSE: bool, const PARTIAL: bool>(
    src: *const u8,
    shards: Option<Shards<'_>>,
    dst: *mut u8,
    twiddles: *const L::Stored,
    zero_first: bool,
) {
    let w = L::WIDTH;
    // SAFETY: forwarded contract.
    unsafe {
        let mut v = [L::zero(); M];
        match shards {
            Some(shards) => {
                for (x, &input) in v.iter_mut().zip(&shards.inputs[..M]) {
                    *x = load::<L, PARTIAL>(input.add(shards.pos), shards.tail);
                }
            }
            None => {
                for (j, x) in v.iter_mut().enumerate() {
                    *x = L::load(src.add(j * w));
                }
            }
        }
        if INVERSE {
            inverse_registers::<L, M>(&mut v, twiddles, zero_first);
        } else {
            forward_registers::<L, M>(&mut v, twiddles);
        }
        for (j, x) in v.iter().enumerate() {
            L::store(dst.add(j * w), *x);
        }
    }
}
