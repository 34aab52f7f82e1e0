//! Every SIMD backend this CPU supports against the scalar reference, on
//! random lengths (0..=70000), random misalignments and random coefficients
//! (0 and 1 included on purpose: they are the classic special cases).

use fec_core::gf256::{Backend, Engine};
use quickcheck::{Arbitrary, Gen, QuickCheck};
// Byte contents come from a seeded SplitMix64: unlike `rand` built without
// optimisation, it fills megabytes in microseconds.
use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use rand_xoshiro::SplitMix64;

const MAX_LEN: usize = 70_000;
const MAX_OFFSET: usize = 64;

fn scalar() -> Engine {
    Engine::new(Backend::Scalar).expect("scalar is always available")
}

/// The backends to pin against scalar: every supported one but scalar.
fn simd_engines() -> Vec<Engine> {
    Backend::supported()
        .into_iter()
        .filter(|&b| b != Backend::Scalar)
        .map(|b| Engine::new(b).expect("supported backend"))
        .collect()
}

fn quickcheck(tests: u64) -> QuickCheck {
    QuickCheck::new().tests(tests).max_tests(tests * 10)
}

/// A coefficient, with 0 and 1 drawn far more often than uniform sampling would.
fn coefficient(g: &mut Gen) -> u8 {
    match u8::arbitrary(g) % 8 {
        0 => 0,
        1 => 1,
        _ => u8::arbitrary(g),
    }
}

/// A length in `0..=max`: half the time short (all tail handling paths),
/// otherwise anywhere in range.
fn length(g: &mut Gen, max: usize) -> usize {
    let short = max.min(300);
    if bool::arbitrary(g) {
        usize::arbitrary(g) % (short + 1)
    } else {
        usize::arbitrary(g) % (max + 1)
    }
}

fn offset(g: &mut Gen) -> usize {
    usize::arbitrary(g) % MAX_OFFSET
}

/// A buffer of `offset + len + slack` random bytes, so the slice under test
/// `[offset..offset + len]` starts at any alignment and has neighbours whose
/// bytes must survive.
fn buffer(rng: &mut SplitMix64, offset: usize, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; offset + len + MAX_OFFSET];
    rng.fill_bytes(&mut buf);
    buf
}

/// One slice-kernel case: a coefficient, a length, and where source and
/// destination start inside their buffers. Byte contents come from a seeded
/// RNG (faster than quickcheck's generator for 70 KB, and reproducible from
/// the printed seed).
#[derive(Clone, Debug)]
struct SliceCase {
    c: u8,
    len: usize,
    src_offset: usize,
    dst_offset: usize,
    seed: u64,
}

impl Arbitrary for SliceCase {
    fn arbitrary(g: &mut Gen) -> Self {
        SliceCase {
            c: coefficient(g),
            len: length(g, MAX_LEN),
            src_offset: offset(g),
            dst_offset: offset(g),
            seed: u64::arbitrary(g),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum SliceOp {
    Mul,
    MulAdd,
    Xor,
}

fn run_slice_op(engine: Engine, op: SliceOp, c: u8, src: &[u8], dst: &mut [u8]) {
    match op {
        SliceOp::Mul => engine.mul_slice(c, src, dst),
        SliceOp::MulAdd => engine.mul_add_slice(c, src, dst),
        SliceOp::Xor => engine.xor_slice(src, dst),
    }
}

/// Runs `op` on every SIMD backend and on scalar with identical inputs and
/// compares the whole destination buffers (so a stray write outside the
/// slice fails too).
fn slice_op_matches_scalar(op: SliceOp, case: SliceCase) -> bool {
    let mut rng = SplitMix64::seed_from_u64(case.seed);
    let src = buffer(&mut rng, case.src_offset, case.len);
    let dst = buffer(&mut rng, case.dst_offset, case.len);
    let src_slice = &src[case.src_offset..case.src_offset + case.len];
    let dst_range = case.dst_offset..case.dst_offset + case.len;

    let mut expected = dst.clone();
    run_slice_op(
        scalar(),
        op,
        case.c,
        src_slice,
        &mut expected[dst_range.clone()],
    );
    simd_engines().into_iter().all(|engine| {
        let mut got = dst.clone();
        run_slice_op(engine, op, case.c, src_slice, &mut got[dst_range.clone()]);
        if got != expected {
            eprintln!("{op:?} differs on {}: {case:?}", engine.backend());
        }
        got == expected
    })
}

#[test]
fn mul_slice_matches_scalar() {
    quickcheck(200).quickcheck((|case| slice_op_matches_scalar(SliceOp::Mul, case)) as fn(_) -> _);
}

#[test]
fn mul_add_slice_matches_scalar() {
    quickcheck(200)
        .quickcheck((|case| slice_op_matches_scalar(SliceOp::MulAdd, case)) as fn(_) -> _);
}

#[test]
fn xor_slice_matches_scalar() {
    quickcheck(200).quickcheck((|case| slice_op_matches_scalar(SliceOp::Xor, case)) as fn(_) -> _);
}

/// `sum_slices` / `add_slices` against scalar: `c % 7` sources (none
/// included), each at its own offset, summed or added into the
/// destination; the whole destination buffer is compared.
fn sums_match_scalar(case: SliceCase) -> bool {
    let mut rng = SplitMix64::seed_from_u64(case.seed);
    let count = usize::from(case.c % 7);
    let add = case.c & 0x80 != 0;
    let buffers: Vec<(usize, Vec<u8>)> = (0..count)
        .map(|i| {
            let offset = (case.src_offset + 5 * i) % MAX_OFFSET;
            (offset, buffer(&mut rng, offset, case.len))
        })
        .collect();
    let sources: Vec<&[u8]> = buffers
        .iter()
        .map(|(offset, buf)| &buf[*offset..*offset + case.len])
        .collect();
    let dst = buffer(&mut rng, case.dst_offset, case.len);
    let range = case.dst_offset..case.dst_offset + case.len;
    let run = |engine: Engine, out: &mut [u8]| {
        if add {
            engine.add_slices(&sources, out)
        } else {
            engine.sum_slices(&sources, out)
        }
    };
    let mut expected = dst.clone();
    run(scalar(), &mut expected[range.clone()]);
    simd_engines().into_iter().all(|engine| {
        let mut got = dst.clone();
        run(engine, &mut got[range.clone()]);
        if got != expected {
            eprintln!("sums differ on {}: {case:?}", engine.backend());
        }
        got == expected
    })
}

#[test]
fn sum_slices_match_scalar() {
    quickcheck(200).quickcheck(sums_match_scalar as fn(_) -> _);
}

/// The sums at every length 0..=300 (the 4-vector loop and both tails of
/// every width, 64-byte vectors included), with 0, 1, 2 and 6 sources,
/// summed and added.
#[test]
fn sums_at_every_short_length_match_scalar() {
    // `c % 7` sources, added when bit 7 is set.
    for len in 0..=300 {
        for c in [0u8, 1, 2, 6, 0x85, 0x86, 0x80, 0x84] {
            let case = SliceCase {
                c,
                len,
                src_offset: len % MAX_OFFSET,
                dst_offset: (3 * len + 1) % MAX_OFFSET,
                seed: len as u64 * 31 + u64::from(c),
            };
            assert!(sums_match_scalar(case));
        }
    }
}

/// `mul_xor_spread` against scalar: the coefficient `c`, with an addend
/// when the seed is odd, into `(seed >> 1) % 4` spread targets (every
/// count with and without an addend); `next` and every target buffer are
/// compared whole.
fn spread_matches_scalar(case: SliceCase) -> bool {
    let mut rng = SplitMix64::seed_from_u64(case.seed);
    let len = case.len;
    let acc = buffer(&mut rng, case.src_offset, len);
    let add = buffer(&mut rng, 0, len);
    let with_add = case.seed % 2 == 1;
    let next = buffer(&mut rng, case.dst_offset, len);
    let targets: Vec<Vec<u8>> = (0..(case.seed >> 1) % 4)
        .map(|_| buffer(&mut rng, 3, len))
        .collect();
    let run = |engine: Engine| {
        let mut next = next.clone();
        let mut targets = targets.clone();
        let mut spread: Vec<&mut [u8]> = targets.iter_mut().map(|t| &mut t[3..3 + len]).collect();
        engine.mul_xor_spread(
            case.c,
            &acc[case.src_offset..case.src_offset + len],
            with_add.then(|| &add[..len]),
            &mut next[case.dst_offset..case.dst_offset + len],
            &mut spread,
        );
        (next, targets)
    };
    let expected = run(scalar());
    simd_engines().into_iter().all(|engine| {
        let got = run(engine);
        if got != expected {
            eprintln!("mul_xor_spread differs on {}: {case:?}", engine.backend());
        }
        got == expected
    })
}

#[test]
fn mul_xor_spread_matches_scalar() {
    quickcheck(200).quickcheck(spread_matches_scalar as fn(_) -> _);
}

/// GF(2^8) product (polynomial 0x11D) by shifts and adds, independent of
/// the library's tables.
fn shift_and_add_mul(mut a: u8, mut b: u8) -> u8 {
    let mut product = 0;
    while b != 0 {
        if b & 1 == 1 {
            product ^= a;
        }
        let carry = a & 0x80 != 0;
        a <<= 1;
        if carry {
            a ^= 0x1D;
        }
        b >>= 1;
    }
    product
}

/// Scalar `mul_xor_spread` against its definition, one byte at a time.
#[test]
fn scalar_mul_xor_spread_is_horner_step() {
    let acc: Vec<u8> = (0..=255).collect();
    let add: Vec<u8> = (0..=255u8).map(|b| b.wrapping_mul(7)).collect();
    let mut next = vec![0u8; 256];
    let mut t = vec![0x5Au8; 256];
    scalar().mul_xor_spread(0x8E, &acc, Some(&add), &mut next, &mut [&mut t[..]]);
    for i in 0..256 {
        let expected = shift_and_add_mul(0x8E, acc[i]) ^ add[i];
        assert_eq!(next[i], expected);
        assert_eq!(t[i], expected ^ 0x5A);
    }
}

/// Every length 0..=200 and every constant class once, deterministically:
/// the tail paths are where SIMD kernels usually go wrong.
#[test]
fn every_short_length_matches_scalar() {
    for len in 0..=200 {
        for (i, c) in [0u8, 1, 2, 0x53, 0xFF].into_iter().enumerate() {
            for op in [SliceOp::Mul, SliceOp::MulAdd, SliceOp::Xor] {
                let case = SliceCase {
                    c,
                    len,
                    src_offset: (len + i) % MAX_OFFSET,
                    dst_offset: (3 * len + i) % MAX_OFFSET,
                    seed: (len * 8 + i) as u64,
                };
                assert!(slice_op_matches_scalar(op, case.clone()), "{op:?} {case:?}");
            }
        }
    }
}

/// Every backend, scalar included, against the field's own `mul` for every
/// constant: the scalar reference itself is pinned to the definition, and the
/// shortcuts for 0 and 1 are checked on every backend.
#[test]
fn every_constant_matches_field_multiplication() {
    let len = 131;
    let mut rng = SplitMix64::seed_from_u64(99);
    let src = buffer(&mut rng, 0, len);
    let before = buffer(&mut rng, 0, len);
    let engines = Backend::supported().into_iter().filter_map(Engine::new);
    for engine in engines {
        for c in 0..=255u8 {
            let mut product = before.clone();
            engine.mul_slice(c, &src[..len], &mut product[..len]);
            let mut sum = before.clone();
            engine.mul_add_slice(c, &src[..len], &mut sum[..len]);
            for i in 0..len {
                let expected = fec_core::gf256::mul(c, src[i]);
                assert_eq!(
                    product[i],
                    expected,
                    "{} mul_slice c={c} i={i}",
                    engine.backend()
                );
                assert_eq!(
                    sum[i],
                    before[i] ^ expected,
                    "{} mul_add_slice c={c}",
                    engine.backend()
                );
            }
            assert_eq!(
                product[len..],
                before[len..],
                "{} wrote past the end",
                engine.backend()
            );
        }
    }
}

/// One fused-kernel case: matrix shape and entries, shard length, and the
/// misalignment of each input and output inside its buffer.
#[derive(Clone, Debug)]
struct MatrixCase {
    rows: usize,
    cols: usize,
    coefficients: Vec<u8>,
    len: usize,
    input_offsets: Vec<usize>,
    output_offsets: Vec<usize>,
    seed: u64,
}

/// Keeps the scalar reference (rows * cols * len lookups) to a few
/// milliseconds per case.
const MATRIX_WORK_BUDGET: usize = 3_000_000;

impl Arbitrary for MatrixCase {
    fn arbitrary(g: &mut Gen) -> Self {
        let dimension = |g: &mut Gen| match u8::arbitrary(g) % 4 {
            0 => 1,
            _ => 1 + usize::arbitrary(g) % 64,
        };
        let rows = dimension(g);
        let cols = dimension(g);
        let max_len = MAX_LEN.min(MATRIX_WORK_BUDGET / (rows * cols));
        MatrixCase {
            rows,
            cols,
            coefficients: (0..rows * cols).map(|_| coefficient(g)).collect(),
            len: length(g, max_len),
            input_offsets: (0..cols).map(|_| offset(g)).collect(),
            output_offsets: (0..rows).map(|_| offset(g)).collect(),
            seed: u64::arbitrary(g),
        }
    }
}

/// The case's input and output buffers (before the kernel runs).
fn matrix_buffers(case: &MatrixCase) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut rng = SplitMix64::seed_from_u64(case.seed);
    let inputs = case
        .input_offsets
        .iter()
        .map(|&o| buffer(&mut rng, o, case.len))
        .collect();
    let outputs = case
        .output_offsets
        .iter()
        .map(|&o| buffer(&mut rng, o, case.len))
        .collect();
    (inputs, outputs)
}

/// Applies the case's matrix with `engine` (overwriting, or XORing into the
/// outputs when `add`) and returns the whole output buffers.
fn run_matrix(
    engine: Engine,
    case: &MatrixCase,
    inputs: &[Vec<u8>],
    mut outputs: Vec<Vec<u8>>,
    add: bool,
) -> Vec<Vec<u8>> {
    let input_slices: Vec<&[u8]> = inputs
        .iter()
        .zip(&case.input_offsets)
        .map(|(buf, &o)| &buf[o..o + case.len])
        .collect();
    let mut output_slices: Vec<&mut [u8]> = outputs
        .iter_mut()
        .zip(&case.output_offsets)
        .map(|(buf, &o)| &mut buf[o..o + case.len])
        .collect();
    let kernel = engine.prepare(&case.coefficients, case.rows, case.cols);
    if add {
        kernel.apply_add(&input_slices, &mut output_slices);
    } else {
        kernel.apply(&input_slices, &mut output_slices);
    }
    outputs
}

/// `same`, after saying which case and backend differ when it is false.
fn report(same: bool, what: &str, engine: Engine, case: &MatrixCase) -> bool {
    if !same {
        eprintln!(
            "{what} differs on {}: rows {} cols {} len {} seed {}",
            engine.backend(),
            case.rows,
            case.cols,
            case.len,
            case.seed
        );
    }
    same
}

fn matrix_matches_scalar(case: MatrixCase, add: bool) -> bool {
    let (inputs, outputs) = matrix_buffers(&case);
    let expected = run_matrix(scalar(), &case, &inputs, outputs.clone(), add);
    simd_engines().into_iter().all(|engine| {
        let same = run_matrix(engine, &case, &inputs, outputs.clone(), add) == expected;
        report(same, &format!("apply (add: {add})"), engine, &case)
    })
}

#[test]
fn matrix_apply_matches_scalar() {
    quickcheck(200).quickcheck((|case| matrix_matches_scalar(case, false)) as fn(_) -> _);
}

#[test]
fn matrix_apply_add_matches_scalar() {
    quickcheck(150).quickcheck((|case| matrix_matches_scalar(case, true)) as fn(_) -> _);
}

/// `apply_new` (fresh, not zero-filled outputs on the SIMD backends) gives
/// what `apply` writes, on every backend.
fn apply_new_matches_apply(case: MatrixCase) -> bool {
    let (inputs, outputs) = matrix_buffers(&case);
    let expected = run_matrix(scalar(), &case, &inputs, outputs, false);
    let expected: Vec<&[u8]> = expected
        .iter()
        .zip(&case.output_offsets)
        .map(|(buf, &o)| &buf[o..o + case.len])
        .collect();
    let input_slices: Vec<&[u8]> = inputs
        .iter()
        .zip(&case.input_offsets)
        .map(|(buf, &o)| &buf[o..o + case.len])
        .collect();
    std::iter::once(scalar())
        .chain(simd_engines())
        .all(|engine| {
            let kernel = engine.prepare(&case.coefficients, case.rows, case.cols);
            let got = kernel.apply_new(&input_slices);
            let same = got.len() == case.rows && got.iter().zip(&expected).all(|(g, e)| g == e);
            report(same, "apply_new", engine, &case)
        })
}

#[test]
fn matrix_apply_new_matches_apply() {
    quickcheck(100).quickcheck(apply_new_matches_apply as fn(_) -> _);
}

/// The scalar fused kernel itself against its definition, one product at a
/// time, so the reference the SIMD backends are pinned to is pinned too.
#[test]
fn scalar_matrix_apply_is_the_definition() {
    let rows = 3;
    let cols = 5;
    let len = 37;
    let mut rng = SplitMix64::seed_from_u64(7);
    let coefficients: Vec<u8> = (0..rows * cols).map(|_| rng.next_u64() as u8).collect();
    let inputs: Vec<Vec<u8>> = (0..cols)
        .map(|_| (0..len).map(|_| rng.next_u64() as u8).collect())
        .collect();
    let mut outputs = vec![vec![0xAAu8; len]; rows];
    scalar()
        .prepare(&coefficients, rows, cols)
        .apply(&inputs, &mut outputs);
    for (r, output) in outputs.iter().enumerate() {
        for (i, &byte) in output.iter().enumerate() {
            let expected = (0..cols).fold(0u8, |acc, c| {
                acc ^ fec_core::gf256::mul(coefficients[r * cols + c], inputs[c][i])
            });
            assert_eq!(byte, expected, "output {r} byte {i}");
        }
    }
}

#[test]
fn backend_names_parse() {
    for backend in Backend::ALL {
        assert_eq!(backend.name().parse::<Backend>(), Ok(backend));
        assert_eq!(
            backend.to_string().to_uppercase().parse::<Backend>(),
            Ok(backend)
        );
    }
    assert_eq!(" gfni\n".parse::<Backend>(), Ok(Backend::Gfni));
    assert!("avx1024".parse::<Backend>().is_err());
    assert!("".parse::<Backend>().is_err());
}

#[test]
fn engine_reports_its_backend() {
    for backend in Backend::supported() {
        assert_eq!(Engine::new(backend).map(Engine::backend), Some(backend));
    }
    assert!(Backend::supported().contains(&Backend::best()));
    assert!(Backend::supported().contains(&Backend::Scalar));
}
