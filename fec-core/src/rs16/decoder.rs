//! The reusable decoder: erasure decoding by the formal derivative, as
//! Leopard-RS does it, or by syndromes where few originals are lost
//! ([`syndrome`]; the cheaper of the two by a count of block products).
//!
//! Every shard sits at a point of the field: at high rate recovery shard `r`
//! at `r` and original `j` at `c + j` (`c = next_pow2(m)`), at low rate
//! original `j` at `j` and recovery shard `r` at `c + r` (`c =
//! next_pow2(k)`). The points without a shard are erasures too, except
//! those the encoder treated as zero originals (low rate, `k..c`) and those
//! past the last shard at high rate. With `E(x)` the erasure locator
//! (the product of `x + e` over the erasures), scaling each received value
//! by `E(i)` gives a polynomial's values whose formal derivative,
//! evaluated at an erased point `e`, is the lost value times `E'(e)`; the
//! locator module gives `E(i)` at received points and `E'(e)` at erased ones
//! in one convolution. The decode is then an inverse transform over a
//! window `W` holding every shard, the derivative, and a forward transform
//! producing only the erased originals. The scalings happen in the
//! transforms' 4-shard leaves and the derivative in the forward transform's
//! top pass, so the decode streams the buffer no more often than its two
//! transforms do.

#![forbid(unsafe_code)]

use super::field::{self, MODULUS};
use super::kernel::{self, Kernel, KernelJob};
use super::locator::locator;
use super::shards::{blocks_per_shard, ShardBuffer};
use super::syndrome;
use super::transform::{self, Marked};
use super::Shape;
use crate::gf256::Engine;
use crate::Error;

/// A GF(2^16) Reed-Solomon decoder for one shape, reusable for many
/// decodes; the counterpart of reed-solomon-simd's `ReedSolomonDecoder`,
/// with the same methods.
///
/// ```
/// use fec_core::rs16::{self, ReedSolomonDecoder};
///
/// let original = [[1u8; 64], [2; 64], [3; 64]];
/// let recovery = rs16::encode(3, 2, &original)?;
///
/// let mut decoder = ReedSolomonDecoder::new(3, 2, 64)?;
/// decoder.add_original_shard(1, original[1])?;
/// decoder.add_recovery_shard(0, &recovery[0])?;
/// decoder.add_recovery_shard(1, &recovery[1])?;
/// let result = decoder.decode()?;
/// assert_eq!(result.restored_original(0), Some(&original[0][..]));
/// assert_eq!(result.restored_original(2), Some(&original[2][..]));
/// assert_eq!(result.restored_original(1), None); // it was not lost
/// # Ok::<(), fec_core::Error>(())
/// ```
#[derive(Debug)]
pub struct ReedSolomonDecoder {
    engine: Engine,
    shape: Shape,
    layout: Layout,
    /// Per point below `layout.end`: a shard was received there.
    received: Vec<bool>,
    original_received: usize,
    recovery_received: usize,
    work: ShardBuffer,
    /// The originals the last decode restored, ascending.
    restored: Vec<usize>,
    scratch: Scratch,
}

/// Where the shards of a shape sit.
#[derive(Clone, Copy, Debug)]
pub(super) struct Layout {
    /// The point of original 0 (`c` at high rate, 0 at low rate).
    pub(super) original_base: usize,
    /// The point of recovery shard 0 (0 at high rate, `c` at low rate).
    pub(super) recovery_base: usize,
    /// One past the last shard's point.
    pub(super) end: usize,
    /// The locator decode's transform size: the power of two at or above
    /// `end`.
    pub(super) window: usize,
}

impl Layout {
    pub(super) fn new(s: Shape) -> Self {
        let chunk = s.chunk();
        let (original_base, recovery_base, end) = if s.high_rate {
            (chunk, 0, chunk + s.original_count)
        } else {
            (0, chunk, chunk + s.recovery_count)
        };
        Layout {
            original_base,
            recovery_base,
            end,
            window: end.next_power_of_two(),
        }
    }
}

/// Buffers reused from decode to decode.
#[derive(Debug, Default)]
struct Scratch {
    erased: Vec<usize>,
    locator: Vec<u16>,
    wanted: Vec<u32>,
    syndrome: syndrome::Scratch,
    /// Which decode to run (tests pin each against the other).
    route: Route,
}

/// The decode a loss takes (only tests pin one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(not(test), allow(dead_code))]
pub(super) enum Route {
    /// The cheaper of the two for the loss.
    #[default]
    Cheapest,
    /// The locator decode (any loss).
    Locator,
    /// Syndromes where the loss allows it, else the locator decode.
    Syndrome,
}

impl ReedSolomonDecoder {
    /// A decoder for `original_count` originals and `recovery_count`
    /// recovery shards of `shard_bytes` bytes, on the process-wide engine.
    ///
    /// # Errors
    /// [`Error::Rs16UnsupportedShardCount`] or [`Error::Rs16InvalidShardSize`].
    pub fn new(
        original_count: usize,
        recovery_count: usize,
        shard_bytes: usize,
    ) -> Result<Self, Error> {
        Self::with_engine(
            original_count,
            recovery_count,
            shard_bytes,
            kernel::default_engine(),
        )
    }

    /// As [`new`](Self::new), on a chosen engine.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_engine(
        original_count: usize,
        recovery_count: usize,
        shard_bytes: usize,
        engine: Engine,
    ) -> Result<Self, Error> {
        let shape = Shape::new(original_count, recovery_count, shard_bytes)?;
        let mut decoder = ReedSolomonDecoder {
            engine,
            shape,
            layout: Layout::new(shape),
            received: Vec::new(),
            original_received: 0,
            recovery_received: 0,
            work: ShardBuffer::default(),
            restored: Vec::new(),
            scratch: Scratch::default(),
        };
        decoder.allocate();
        Ok(decoder)
    }

    /// Whether `original_count` originals with `recovery_count` recovery
    /// shards is a supported shape.
    pub fn supports(original_count: usize, recovery_count: usize) -> bool {
        Shape::new(original_count, recovery_count, 2).is_ok()
    }

    /// Switches to another shape, dropping any shards given so far.
    ///
    /// # Errors
    /// As [`new`](Self::new); the decoder is unchanged on error.
    pub fn reset(
        &mut self,
        original_count: usize,
        recovery_count: usize,
        shard_bytes: usize,
    ) -> Result<(), Error> {
        self.shape = Shape::new(original_count, recovery_count, shard_bytes)?;
        self.layout = Layout::new(self.shape);
        self.scratch.syndrome.reset();
        self.allocate();
        Ok(())
    }

    /// The backend the decoder runs on.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    fn allocate(&mut self) {
        self.work
            .resize(self.layout.window, blocks_per_shard(self.shape.shard_bytes));
        self.clear_received();
    }

    fn clear_received(&mut self) {
        self.received.clear();
        self.received.resize(self.layout.end, false);
        self.original_received = 0;
        self.recovery_received = 0;
    }

    /// Adds original shard `index`.
    ///
    /// # Errors
    /// [`Error::Rs16OriginalIndex`], [`Error::Rs16DuplicateOriginalIndex`] or
    /// [`Error::Rs16DifferentShardSize`]; the shard is then ignored.
    pub fn add_original_shard<T: AsRef<[u8]>>(
        &mut self,
        index: usize,
        original_shard: T,
    ) -> Result<(), Error> {
        let s = self.shape;
        let shard = original_shard.as_ref();
        if index >= s.original_count {
            return Err(Error::Rs16OriginalIndex {
                index,
                original_count: s.original_count,
            });
        }
        let point = self.layout.original_base + index;
        if self.received[point] {
            return Err(Error::Rs16DuplicateOriginalIndex { index });
        }
        if shard.len() != s.shard_bytes {
            return Err(Error::Rs16DifferentShardSize {
                kind: "original",
                index,
                shard_bytes: s.shard_bytes,
                got: shard.len(),
            });
        }
        self.work.insert(point, shard);
        self.received[point] = true;
        self.original_received += 1;
        Ok(())
    }

    /// Adds recovery shard `index`.
    ///
    /// # Errors
    /// [`Error::Rs16RecoveryIndex`], [`Error::Rs16DuplicateRecoveryIndex`] or
    /// [`Error::Rs16DifferentShardSize`]; the shard is then ignored.
    pub fn add_recovery_shard<T: AsRef<[u8]>>(
        &mut self,
        index: usize,
        recovery_shard: T,
    ) -> Result<(), Error> {
        let s = self.shape;
        let shard = recovery_shard.as_ref();
        if index >= s.recovery_count {
            return Err(Error::Rs16RecoveryIndex {
                index,
                recovery_count: s.recovery_count,
            });
        }
        let point = self.layout.recovery_base + index;
        if self.received[point] {
            return Err(Error::Rs16DuplicateRecoveryIndex { index });
        }
        if shard.len() != s.shard_bytes {
            return Err(Error::Rs16DifferentShardSize {
                kind: "recovery",
                index,
                shard_bytes: s.shard_bytes,
                got: shard.len(),
            });
        }
        self.work.insert(point, shard);
        self.received[point] = true;
        self.recovery_received += 1;
        Ok(())
    }

    /// Restores the lost originals from the shards added since the last
    /// decode (nothing when no original is lost); the decoder is then ready
    /// for the next set.
    ///
    /// # Errors
    /// [`Error::Rs16NotEnoughShards`] with fewer shards than originals (they
    /// are kept, so more can still be added).
    pub fn decode(&mut self) -> Result<DecoderResult<'_>, Error> {
        let s = self.shape;
        if self.original_received + self.recovery_received < s.original_count {
            return Err(Error::Rs16NotEnoughShards {
                original_count: s.original_count,
                original_received: self.original_received,
                recovery_received: self.recovery_received,
            });
        }
        self.restored.clear();
        if self.original_received < s.original_count {
            let base = self.layout.original_base;
            self.restored
                .extend((0..s.original_count).filter(|&j| !self.received[base + j]));
            kernel::dispatch(
                self.engine,
                DecodeJob {
                    shape: s,
                    layout: self.layout,
                    received: &self.received,
                    restored: &self.restored,
                    work: &mut self.work,
                    scratch: &mut self.scratch,
                },
            );
            for &j in &self.restored {
                self.work.finish_in_place(base + j, s.shard_bytes);
            }
        }
        self.clear_received();
        Ok(DecoderResult { decoder: self })
    }
}

/// The originals one decode restored, borrowed from the decoder.
#[derive(Debug)]
pub struct DecoderResult<'a> {
    decoder: &'a ReedSolomonDecoder,
}

impl<'a> DecoderResult<'a> {
    /// Original `index` if this decode restored it (`None` if it was
    /// received, or is out of range).
    pub fn restored_original(&self, index: usize) -> Option<&'a [u8]> {
        let d = self.decoder;
        d.restored
            .binary_search(&index)
            .ok()
            .map(|_| d.restored_shard(index))
    }

    /// Every restored original with its index, ascending.
    pub fn restored_original_iter(&self) -> impl Iterator<Item = (usize, &'a [u8])> + 'a {
        let d = self.decoder;
        d.restored.iter().map(move |&j| (j, d.restored_shard(j)))
    }
}

impl ReedSolomonDecoder {
    /// Pins the decode route (tests of one route against the other).
    #[cfg(test)]
    pub(super) fn set_route(&mut self, route: Route) {
        self.scratch.route = route;
    }

    fn restored_shard(&self, index: usize) -> &[u8] {
        self.work
            .shard_bytes_of(self.layout.original_base + index, self.shape.shard_bytes)
    }
}

struct DecodeJob<'a> {
    shape: Shape,
    layout: Layout,
    received: &'a [bool],
    restored: &'a [usize],
    work: &'a mut ShardBuffer,
    scratch: &'a mut Scratch,
}

impl KernelJob for DecodeJob<'_> {
    type Output = ();

    fn run<K: Kernel>(self, kernel: K) {
        let DecodeJob {
            shape: s,
            layout: l,
            received,
            restored,
            work,
            scratch,
        } = self;
        let bps = work.blocks_per_shard();
        let lost = restored.len();
        let planned = match scratch.route {
            Route::Locator => false,
            route => syndrome::plan(
                s,
                l,
                received,
                lost,
                bps,
                route == Route::Cheapest,
                &mut scratch.syndrome,
            ),
        };
        if planned {
            syndrome::decode(kernel, s, l, restored, work, &mut scratch.syndrome);
            return;
        }
        let exp = &field::tables().exp;

        // Points that hold a shard: the originals and the recovery shards.
        let holds_shard = |p: usize| {
            (l.original_base..l.original_base + s.original_count).contains(&p)
                || (l.recovery_base..l.recovery_base + s.recovery_count).contains(&p)
        };
        let erased = &mut scratch.erased;
        erased.clear();
        if s.high_rate {
            // Missing recovery shards and originals, and the padding between.
            erased.extend((0..l.end).filter(|&p| !received[p]));
        } else {
            // Missing shards and everything past them; `k..c` are zeros the
            // encoder used, not erasures.
            erased.extend((0..l.end).filter(|&p| holds_shard(p) && !received[p]));
            erased.extend(l.end..l.window);
        }
        locator(erased, l.window, !s.high_rate, &mut scratch.locator);
        let log = &scratch.locator;

        // Past the last received point the inverse transform reads nothing,
        // and it reads no erasure: the scales say which shards hold data.
        let nonzero = received.iter().rposition(|&r| r).map_or(0, |p| p + 1);
        let scale =
            |p: usize| (p < nonzero && received[p]).then(|| K::prepare(exp[log[p] as usize]));

        let points = restored.iter().map(|&j| l.original_base + j);
        let wanted = Marked::fill(&mut scratch.wanted, l.window, points);
        let counts = wanted.counts;
        // A restored original comes out of the transform times `E'(e)`.
        let reveal = |p: usize| {
            (counts[p + 1] > counts[p]).then(|| K::prepare(exp[(MODULUS - log[p]) as usize]))
        };

        let data = work.blocks_mut();
        transform::ifft(kernel, data, bps, l.window, nonzero, 0, Some(&scale));
        transform::derivative_fft(kernel, data, bps, l.window, &wanted, &reveal);
    }
}
