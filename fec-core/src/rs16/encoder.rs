//! The reusable encoder and the two encodings (high rate, low rate).
//!
//! High rate: the originals are cut into chunks of `c = next_pow2(m)`
//! shards; chunk `i` is inverse-transformed over the points
//! `(i + 1) c .. (i + 2) c`, the results are summed into one chunk, and one
//! forward transform over `0..c` evaluates the recovery shards. The encoder
//! transforms each chunk as soon as its last original arrives, while the
//! chunk is still in cache, so it holds two chunks, not every original. Low rate:
//! the originals, one chunk of `c = next_pow2(k)`, are inverse-transformed
//! over `0..c` once, and each chunk of recovery shards is that polynomial
//! evaluated over the points `(i + 1) c .. (i + 2) c`. Either way recovery
//! shard `r` is the value at point `r` of the polynomial through the
//! originals, placed elsewhere; which one applies is reed-solomon-simd's
//! rule ([`Shape::new`]).

#![forbid(unsafe_code)]

use super::kernel::{self, Kernel, KernelJob};
use super::shards::{blocks_per_shard, Block, ShardBuffer};
use super::transform::{self, Below};
use super::Shape;
use crate::gf256::Engine;
use crate::Error;

/// A GF(2^16) Reed-Solomon encoder for one shape, reusable for many
/// encodings (and, after [`reset`](Self::reset), other shapes) without
/// reallocating; the counterpart of reed-solomon-simd's
/// `ReedSolomonEncoder`, with the same methods.
///
/// ```
/// use fec_core::rs16::ReedSolomonEncoder;
///
/// let mut encoder = ReedSolomonEncoder::new(3, 2, 64)?;
/// for round in 0..2u8 {
///     for i in 0..3u8 {
///         encoder.add_original_shard([round ^ i; 64])?;
///     }
///     let result = encoder.encode()?;
///     assert_eq!(result.recovery_iter().count(), 2);
///     assert_eq!(result.recovery(0).map(<[u8]>::len), Some(64));
/// }
/// # Ok::<(), fec_core::Error>(())
/// ```
#[derive(Debug)]
pub struct ReedSolomonEncoder {
    engine: Engine,
    shape: Shape,
    received: usize,
    work: ShardBuffer,
}

impl ReedSolomonEncoder {
    /// An encoder for `original_count` originals and `recovery_count`
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

    /// As [`new`](Self::new), on a chosen engine (every backend gives the
    /// same bytes; tests and benches pin them against each other).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_engine(
        original_count: usize,
        recovery_count: usize,
        shard_bytes: usize,
        engine: Engine,
    ) -> Result<Self, Error> {
        let mut encoder = ReedSolomonEncoder {
            engine,
            shape: Shape::new(original_count, recovery_count, shard_bytes)?,
            received: 0,
            work: ShardBuffer::default(),
        };
        encoder.allocate();
        Ok(encoder)
    }

    /// Whether `original_count` originals with `recovery_count` recovery
    /// shards is a supported shape.
    pub fn supports(original_count: usize, recovery_count: usize) -> bool {
        Shape::new(original_count, recovery_count, 2).is_ok()
    }

    /// Switches to another shape, dropping any originals given so far.
    ///
    /// # Errors
    /// As [`new`](Self::new); the encoder is unchanged on error.
    pub fn reset(
        &mut self,
        original_count: usize,
        recovery_count: usize,
        shard_bytes: usize,
    ) -> Result<(), Error> {
        self.shape = Shape::new(original_count, recovery_count, shard_bytes)?;
        self.received = 0;
        self.allocate();
        Ok(())
    }

    /// The backend the encoder runs on.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    fn allocate(&mut self) {
        let s = self.shape;
        let chunk = s.chunk();
        let count = if s.high_rate {
            // The sum, and room for one more chunk while it fills.
            s.original_count.next_multiple_of(chunk).min(2 * chunk)
        } else {
            s.recovery_count.next_multiple_of(chunk)
        };
        self.work.resize(count, blocks_per_shard(s.shard_bytes));
    }

    /// Where original `index` waits for its chunk's transform: chunk 0 in
    /// the sum's place, later chunks in the room after it.
    fn slot(&self, index: usize) -> usize {
        let c = self.shape.chunk();
        if self.shape.high_rate && index >= c {
            c + index % c
        } else {
            index
        }
    }

    /// At high rate, the transform of the chunk holding originals
    /// `start..end` (all of it given), summed into the first chunk.
    fn fold_chunk(&mut self, start: usize, end: usize) {
        kernel::dispatch(
            self.engine,
            ChunkJob {
                shape: self.shape,
                start,
                count: end - start,
                work: &mut self.work,
            },
        );
    }

    /// Adds the next original shard (originals are numbered in the order
    /// they are added).
    ///
    /// # Errors
    /// [`Error::Rs16TooManyOriginalShards`] once all are in,
    /// [`Error::Rs16DifferentShardSize`] for a shard of the wrong size.
    pub fn add_original_shard<T: AsRef<[u8]>>(&mut self, original_shard: T) -> Result<(), Error> {
        let shard = original_shard.as_ref();
        let s = self.shape;
        if self.received == s.original_count {
            return Err(Error::Rs16TooManyOriginalShards {
                original_count: s.original_count,
            });
        }
        if shard.len() != s.shard_bytes {
            return Err(Error::Rs16DifferentShardSize {
                kind: "original",
                index: self.received,
                shard_bytes: s.shard_bytes,
                got: shard.len(),
            });
        }
        self.work.insert(self.slot(self.received), shard);
        self.received += 1;
        let c = s.chunk();
        if s.high_rate && self.received.is_multiple_of(c) {
            self.fold_chunk(self.received - c, self.received);
        }
        Ok(())
    }

    /// Computes the recovery shards from the originals added since the last
    /// encode; the encoder is then ready for the next set.
    ///
    /// # Errors
    /// [`Error::Rs16TooFewOriginalShards`] if not every original was added
    /// (they are kept, so the rest can still be added).
    pub fn encode(&mut self) -> Result<EncoderResult<'_>, Error> {
        let s = self.shape;
        if self.received < s.original_count {
            return Err(Error::Rs16TooFewOriginalShards {
                original_count: s.original_count,
                original_received: self.received,
            });
        }
        self.received = 0;
        let c = s.chunk();
        let k = s.original_count;
        if s.high_rate && !k.is_multiple_of(c) {
            // The last chunk, short: its missing originals are zeros.
            self.fold_chunk(k - k % c, k);
        }
        kernel::dispatch(
            self.engine,
            EncodeJob {
                shape: s,
                work: &mut self.work,
            },
        );
        for index in 0..s.recovery_count {
            self.work.finish_in_place(index, s.shard_bytes);
        }
        Ok(EncoderResult {
            work: &self.work,
            shape: s,
        })
    }
}

/// The recovery shards of one encode, borrowed from the encoder.
#[derive(Debug)]
pub struct EncoderResult<'a> {
    work: &'a ShardBuffer,
    shape: Shape,
}

impl<'a> EncoderResult<'a> {
    /// Recovery shard `index`, or `None` past the recovery count.
    pub fn recovery(&self, index: usize) -> Option<&'a [u8]> {
        (index < self.shape.recovery_count)
            .then(|| self.work.shard_bytes_of(index, self.shape.shard_bytes))
    }

    /// The recovery shards in index order.
    pub fn recovery_iter(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        let (work, shape) = (self.work, self.shape);
        (0..shape.recovery_count).map(move |i| work.shard_bytes_of(i, shape.shard_bytes))
    }
}

/// The rest of one encode on a kernel: at high rate `work`'s first chunk
/// holds the sum of every chunk's transform, at low rate `work` holds the
/// originals (shard `i` = original `i`); afterwards recovery shard `r` is
/// shard `r`.
struct EncodeJob<'a> {
    shape: Shape,
    work: &'a mut ShardBuffer,
}

impl KernelJob for EncodeJob<'_> {
    type Output = ();

    fn run<K: Kernel>(self, kernel: K) {
        let EncodeJob { shape: s, work } = self;
        if s.high_rate {
            let chunk = s.chunk();
            let bps = work.blocks_per_shard();
            let wanted = Below(s.recovery_count);
            transform::fft(kernel, work.shards_mut(0..chunk), bps, chunk, 0, &wanted);
        } else {
            encode_low_rate(kernel, s, work);
        }
    }
}

/// The high-rate transform of one chunk of originals, `start..start +
/// count` (`start` a multiple of the chunk size): chunk 0 in place, a later
/// one in the room after the sum and then added into it.
struct ChunkJob<'a> {
    shape: Shape,
    start: usize,
    count: usize,
    work: &'a mut ShardBuffer,
}

impl KernelJob for ChunkJob<'_> {
    type Output = ();

    fn run<K: Kernel>(self, kernel: K) {
        let ChunkJob {
            shape: s,
            start,
            count,
            work,
        } = self;
        let chunk = s.chunk();
        let bps = work.blocks_per_shard();
        let (sum, room) = work.blocks_mut().split_at_mut(chunk * bps);
        let part = (start > 0).then(|| &mut room[..chunk * bps]);
        fold(kernel, chunk, bps, start, count, sum, part);
    }
}

/// Chunk `start / c` of the high-rate encoding (`count` originals, zeros
/// after them), inverse-transformed over its points: in place in `sum` when
/// it is the first (`part` is `None`), else in `part` and added to `sum`.
fn fold<K: Kernel>(
    kernel: K,
    chunk: usize,
    bps: usize,
    start: usize,
    count: usize,
    sum: &mut [Block],
    part: Option<&mut [Block]>,
) {
    let delta = start + chunk;
    match part {
        None => transform::ifft(kernel, sum, bps, chunk, count, delta, None),
        Some(part) => {
            transform::ifft(kernel, part, bps, chunk, count, delta, None);
            kernel.xor(sum, part);
        }
    }
}

/// The high-rate encoding's first half on a buffer holding every original
/// (shard `i` = original `i`, zero where missing), grouped in chunks of `c`
/// shards, as the decoder keeps them: chunk `i` is inverse-transformed over
/// its points `(i + 1) c .. (i + 2) c` and the results are summed into the
/// first chunk, which then holds the polynomial whose values at `0..c` are
/// the recovery shards. `data` must hold whole chunks (the last one's tail
/// is written, not read).
pub(super) fn interpolate_chunks<K: Kernel>(kernel: K, s: Shape, data: &mut [Block], bps: usize) {
    let chunk = s.chunk();
    let k = s.original_count;
    let (sum, rest) = data.split_at_mut(chunk * bps);
    fold(kernel, chunk, bps, 0, k.min(chunk), sum, None);
    for (i, part) in rest.chunks_exact_mut(chunk * bps).enumerate() {
        let start = (i + 1) * chunk;
        if start >= k {
            break;
        }
        fold(
            kernel,
            chunk,
            bps,
            start,
            (k - start).min(chunk),
            sum,
            Some(part),
        );
    }
}

fn encode_low_rate<K: Kernel>(kernel: K, s: Shape, work: &mut ShardBuffer) {
    let chunk = s.chunk();
    let (k, m) = (s.original_count, s.recovery_count);
    let bps = work.blocks_per_shard();
    transform::ifft(kernel, work.shards_mut(0..chunk), bps, chunk, k, 0, None);
    let mut start = chunk;
    while start < m {
        work.copy_within(0, start, chunk);
        start += chunk;
    }
    let mut start = 0;
    while start < m {
        let wanted = Below((m - start).min(chunk));
        let part = work.shards_mut(start..start + chunk);
        transform::fft(kernel, part, bps, chunk, start + chunk, &wanted);
        start += chunk;
    }
}
