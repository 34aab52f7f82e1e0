//! The additive FFT over GF(2^16) in the Lin-Chung-Han polynomial basis, on
//! whole shards, and the formal derivative the decoder needs.
//!
//! A transform of size `n = 2^L` has `L` layers of `n / 2` butterflies; the
//! layer of distance `d` pairs shard `s + i` with `s + d + i` for each block
//! start `s` (a multiple of `2d`) and `i < d`, with the twiddle of index
//! `delta + s + d - 1` ([`field::skew`](super::field::skew)); `delta`, a
//! multiple of `n`, places the transform's points in the field. The forward
//! transform runs the layers from distance `n / 2` down to 1, the inverse
//! from 1 up. These are reed-solomon-simd's transforms butterfly for
//! butterfly, so their outputs are the same bytes.
//!
//! The order of work differs: both transforms recurse depth first, two
//! layers per step (one radix-4 kernel call over four runs of `n / 4`
//! shards), so that once a sub-transform fits in cache all its layers run
//! there instead of streaming the whole buffer once per layer pair. A
//! forward transform skips sub-blocks holding no wanted output, an inverse
//! one sub-blocks whose input is all zero. At the field's origin (`delta +
//! start == 0`) the twiddle is 0: in a transform with `delta == 0` that is a
//! quarter of all butterflies and three of the four pairs of each top pass,
//! and the kernels skip those products (`first`).

#![forbid(unsafe_code)]

use std::ops::Range;

use super::kernel::{skew_factor, Kernel};
use super::shards::Block;

/// Which outputs a forward transform must produce (relative to its start).
pub(crate) trait Wanted {
    /// Whether any output in `range` is wanted.
    fn any(&self, range: Range<usize>) -> bool;
}

/// Every output below a bound.
pub(crate) struct Below(pub usize);

impl Wanted for Below {
    fn any(&self, range: Range<usize>) -> bool {
        range.start < self.0
    }
}

/// The wanted outputs as a prefix count over a bitmap, for scattered sets
/// (the decoder's erased originals).
pub(crate) struct Marked<'a> {
    /// `counts[i]` is the number of wanted outputs below `i`.
    pub counts: &'a [u32],
}

impl<'a> Marked<'a> {
    /// Fills `counts` for the wanted outputs `points` (each below `n`,
    /// none twice) of an `n`-point transform, and marks them.
    pub(crate) fn fill(
        counts: &'a mut Vec<u32>,
        n: usize,
        points: impl IntoIterator<Item = usize>,
    ) -> Self {
        counts.clear();
        counts.resize(n + 1, 0);
        for p in points {
            counts[p + 1] = 1;
        }
        for i in 1..counts.len() {
            counts[i] += counts[i - 1];
        }
        Marked { counts }
    }
}

impl Wanted for Marked<'_> {
    fn any(&self, range: Range<usize>) -> bool {
        let end = range.end.min(self.counts.len() - 1);
        range.start < end && self.counts[end] > self.counts[range.start]
    }
}

/// A per-shard scale applied at the leaves of a transform, by field point
/// (`None`: the shard is zero on the way in, or not wanted on the way out).
/// The decoder's multiplications ride on the leaves this way instead of
/// taking passes of their own.
pub(crate) type Scale<'a, F> = Option<&'a dyn Fn(usize) -> Option<F>>;

/// The scales of the four shards from `point`, as references.
fn leaf_scales<F>(scale: &dyn Fn(usize) -> Option<F>, point: usize) -> [Option<F>; 4] {
    std::array::from_fn(|i| scale(point + i))
}

/// Splits `data` into four runs of `quarter` blocks.
fn quarters(data: &mut [Block], quarter: usize) -> [&mut [Block]; 4] {
    let (a, rest) = data.split_at_mut(quarter);
    let (b, rest) = rest.split_at_mut(quarter);
    let (c, d) = rest.split_at_mut(quarter);
    [a, b, c, &mut d[..quarter]]
}

/// Forward transform of the `n` shards in `data` (`bps` blocks each, `n` a
/// power of two), producing at least the outputs `wanted` selects; the
/// others are left with unspecified contents.
pub(crate) fn fft<K: Kernel>(
    kernel: K,
    data: &mut [Block],
    bps: usize,
    n: usize,
    delta: usize,
    wanted: &dyn Wanted,
) {
    fft_part(kernel, data, bps, n, delta, wanted, 0, None);
}

/// The formal derivative of the `n` shards in `data` followed by their
/// forward transform (delta 0), producing at least the outputs `wanted`
/// selects, each multiplied by `reveal` of its point: the decoder's second
/// half. The derivative rides on the top pass of the transform instead of
/// taking a pass of its own.
pub(crate) fn derivative_fft<K: Kernel>(
    kernel: K,
    data: &mut [Block],
    bps: usize,
    n: usize,
    wanted: &dyn Wanted,
    reveal: &dyn Fn(usize) -> Option<K::Factor>,
) {
    if !wanted.any(0..n) {
        return;
    }
    if n == 1 {
        // The derivative of a single coefficient is itself.
        fft_part(kernel, data, bps, 1, 0, wanted, 0, Some(reveal));
        return;
    }
    let radix = if n.trailing_zeros() % 2 == 1 { 2 } else { 4 };
    let part = n / radix;
    let f = if radix == 2 {
        let f = skew_factor::<K>(part - 1);
        [f, f, f]
    } else {
        [
            skew_factor::<K>(part - 1),
            skew_factor::<K>(3 * part - 1),
            skew_factor::<K>(2 * part - 1),
        ]
    };
    kernel.derivative_fft(data, bps, n, f);
    for (i, run) in data.chunks_exact_mut(part * bps).enumerate() {
        fft_part(
            kernel,
            run,
            bps,
            part,
            i * part,
            wanted,
            i * part,
            Some(reveal),
        );
    }
}

/// [`fft`] of the sub-transform whose first shard is output `base` of the
/// whole, its wanted outputs multiplied by `reveal` of their `base`-relative
/// index when given.
#[allow(clippy::too_many_arguments)]
fn fft_part<K: Kernel>(
    kernel: K,
    data: &mut [Block],
    bps: usize,
    n: usize,
    delta: usize,
    wanted: &dyn Wanted,
    base: usize,
    reveal: Scale<'_, K::Factor>,
) {
    debug_assert!(n.is_power_of_two());
    debug_assert_eq!(data.len(), n * bps);
    if !wanted.any(base..base + n) {
        return;
    }
    if n == 1 {
        if let Some(f) = reveal.and_then(|reveal| reveal(base)) {
            kernel.mul(data, &f);
        }
        return;
    }
    if n.trailing_zeros() % 2 == 1 {
        let half = n / 2;
        let (x, y) = data.split_at_mut(half * bps);
        kernel.fft2(x, y, skew_factor::<K>(delta + half - 1), delta == 0);
        fft_part(kernel, x, bps, half, delta, wanted, base, reveal);
        fft_part(
            kernel,
            y,
            bps,
            half,
            delta + half,
            wanted,
            base + half,
            reveal,
        );
        return;
    }
    let q = n / 4;
    let (f01, f23, f02) = (
        skew_factor::<K>(delta + q - 1),
        skew_factor::<K>(delta + 3 * q - 1),
        skew_factor::<K>(delta + 2 * q - 1),
    );
    if let (1, Some(reveal)) = (q, reveal) {
        let scales = leaf_scales(reveal, base);
        let scales = scales.each_ref().map(Option::as_ref);
        kernel.fft4_scaled(quarters(data, bps), f01, f23, f02, delta == 0, scales);
        return;
    }
    kernel.fft4(quarters(data, q * bps), f01, f23, f02, delta == 0);
    for (i, run) in data.chunks_exact_mut(q * bps).enumerate() {
        fft_part(
            kernel,
            run,
            bps,
            q,
            delta + i * q,
            wanted,
            base + i * q,
            reveal,
        );
    }
}

/// Inverse transform of the `n` shards in `data`, whose shards from
/// `nonzero` on are zero. Those shards are never read, so they need not be
/// zeroed: every shard is written. With `scale`, input shard `i` is taken
/// as `scale(delta + i)` times its contents, or as zero (not read) where
/// that is `None`.
pub(crate) fn ifft<K: Kernel>(
    kernel: K,
    data: &mut [Block],
    bps: usize,
    n: usize,
    nonzero: usize,
    delta: usize,
    scale: Scale<'_, K::Factor>,
) {
    debug_assert!(n.is_power_of_two());
    debug_assert_eq!(data.len(), n * bps);
    debug_assert!(nonzero > 0);
    if n == 1 {
        if let Some(scale) = scale {
            match scale(delta) {
                Some(f) => kernel.mul(data, &f),
                None => data.fill([0; 64]),
            }
        }
        return;
    }
    if n.trailing_zeros() % 2 == 1 {
        let half = n / 2;
        let (x, y) = data.split_at_mut(half * bps);
        ifft(kernel, x, bps, half, nonzero.min(half), delta, scale);
        if nonzero > half {
            ifft(kernel, y, bps, half, nonzero - half, delta + half, scale);
        }
        let live = if nonzero > half { 2 } else { 1 };
        kernel.ifft2(x, y, skew_factor::<K>(delta + half - 1), live, delta == 0);
        return;
    }
    let q = n / 4;
    let (f01, f23, f02) = (
        skew_factor::<K>(delta + q - 1),
        skew_factor::<K>(delta + 3 * q - 1),
        skew_factor::<K>(delta + 2 * q - 1),
    );
    if let (1, Some(scale)) = (q, scale) {
        // Shards from `nonzero` on are not received, so their scale is
        // `None` and they are not read.
        let scales = leaf_scales(scale, delta);
        let scales = scales.each_ref().map(Option::as_ref);
        kernel.ifft4_scaled(quarters(data, bps), scales, f01, f23, f02, delta == 0);
        return;
    }
    let live = nonzero.min(n).div_ceil(q);
    for (i, run) in data.chunks_exact_mut(q * bps).take(live).enumerate() {
        ifft(
            kernel,
            run,
            bps,
            q,
            (nonzero - i * q).min(q),
            delta + i * q,
            scale,
        );
    }
    kernel.ifft4(quarters(data, q * bps), f01, f23, f02, live, delta == 0);
}
