//! Systematic Reed-Solomon erasure coding over GF(2^16): up to 65535 shards,
//! encode and decode in `O(n log n)` field operations, shards byte-identical
//! to reed-solomon-simd 3 (Leopard-RS's construction).
//!
//! `original_count` originals of `shard_bytes` bytes (even, non-zero) give
//! `recovery_count` recovery shards; any `original_count` of the shards
//! restore the lost originals. The one-shot functions [`encode`] and
//! [`decode`] have reed-solomon-simd's signatures, so moving from it is a
//! rename (`decode` returns a `HashMap` where reed-solomon-simd 3.1 returns
//! a `BTreeMap`); [`ReedSolomonEncoder`] and [`ReedSolomonDecoder`] keep
//! their buffers for repeated shapes, with reed-solomon-simd's methods, and
//! `with_engine` pins a SIMD backend (`FEC_CORE_BACKEND` picks the default
//! for the whole process, as for [`gf256`](crate::gf256)).
//!
//! The arithmetic is reed-solomon-simd's bit for bit: the field's Cantor
//! basis, the shard layout of 64-byte blocks with low and high bytes split
//! (`shards`), the transform twiddles, and its choice between a high-rate and
//! a low-rate encoding (which give different recovery bytes). From exactly
//! `original_count` shards the decode is the one linear map any decoder of
//! the code computes, so even shards that are not a codeword decode to the
//! same bytes (with more shards than that, a corrupt set may decode
//! differently: ours may read fewer of them). The code is our own, and
//! faster where it can be:
//! - a decode of few losses costs about one encode plus `e^2` products per
//!   block for `e` lost originals (syndromes and the closed-form inverse of a
//!   Cauchy matrix, `syndrome`), not two transforms over the code's window;
//! - otherwise the decode's erasure locator is a Walsh-Hadamard convolution
//!   over the code's window instead of all 65536 points (most of
//!   reed-solomon-simd's time on small codes);
//! - the transforms run depth first, skip blocks that hold no wanted output
//!   or no input, and skip products by the zero twiddle;
//! - the decoder's formal derivative and its scaling of received and
//!   restored shards ride on transform passes instead of taking their own;
//! - the kernels have AVX-512BW and GFNI forms (two `vgf2p8affineqb` per 32
//!   products) besides SSSE3 and AVX2.
//!
//! Deliberate differences: every malformed input is an error, also where
//! reed-solomon-simd returns early without looking (for example a decode with
//! no recovery shards and a duplicate original index).
//!
//! ```
//! use fec_core::rs16;
//!
//! let original: Vec<Vec<u8>> = (0..300u16).map(|i| i.to_le_bytes().repeat(50)).collect();
//! let recovery = rs16::encode(300, 30, &original)?;
//! assert_eq!(recovery.len(), 30);
//!
//! // Lose originals 0..30; any 300 shards bring them back.
//! let restored = rs16::decode(
//!     300,
//!     30,
//!     original.iter().enumerate().skip(30),
//!     recovery.iter().enumerate(),
//! )?;
//! assert_eq!(restored.len(), 30);
//! assert_eq!(restored[&7], original[7]);
//! # Ok::<(), fec_core::Error>(())
//! ```

mod decoder;
mod encoder;
mod field;
mod kernel;
mod locator;
mod shards;
mod syndrome;
mod transform;

use std::collections::HashMap;

pub use decoder::{DecoderResult, ReedSolomonDecoder};
pub use encoder::{EncoderResult, ReedSolomonEncoder};

use crate::Error;

/// The most shards (originals plus recovery) a code can have.
pub const MAX_SHARDS: usize = 65535;

/// A validated code shape and its encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    original_count: usize,
    recovery_count: usize,
    shard_bytes: usize,
    /// The high-rate encoding (chunks of `next_pow2(recovery_count)`), else
    /// the low-rate one (chunks of `next_pow2(original_count)`).
    high_rate: bool,
}

impl Shape {
    /// Checks the counts and the size and picks the rate as reed-solomon-simd
    /// 3 does: the code needs `min(next_pow2(k), next_pow2(m)) + max(k, m) <=
    /// 65536`; the larger power of two decides the rate, and on a tie high
    /// rate is taken when `k <= m` (reed-solomon-simd's choice for decode
    /// speed, which we must copy since the two rates' shards differ).
    fn new(
        original_count: usize,
        recovery_count: usize,
        shard_bytes: usize,
    ) -> Result<Self, Error> {
        let (k, m) = (original_count, recovery_count);
        let unsupported = Error::Rs16UnsupportedShardCount {
            original_count,
            recovery_count,
        };
        if k == 0 || m == 0 || k > MAX_SHARDS || m > MAX_SHARDS {
            return Err(unsupported);
        }
        let (k_pow, m_pow) = (k.next_power_of_two(), m.next_power_of_two());
        if k_pow.min(m_pow) + k.max(m) > MAX_SHARDS + 1 {
            return Err(unsupported);
        }
        if shard_bytes == 0 || !shard_bytes.is_multiple_of(2) {
            return Err(Error::Rs16InvalidShardSize { shard_bytes });
        }
        let high_rate = match k_pow.cmp(&m_pow) {
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Equal => k <= m,
        };
        Ok(Shape {
            original_count,
            recovery_count,
            shard_bytes,
            high_rate,
        })
    }

    /// The chunk size: the power of two of the smaller side of the code.
    fn chunk(&self) -> usize {
        if self.high_rate {
            self.recovery_count.next_power_of_two()
        } else {
            self.original_count.next_power_of_two()
        }
    }
}

/// Encodes in one go: the `recovery_count` recovery shards of the
/// `original_count` originals, in index order. The shard size is the first
/// original's.
///
/// # Errors
/// [`Error::Rs16UnsupportedShardCount`], [`Error::Rs16InvalidShardSize`],
/// [`Error::Rs16DifferentShardSize`], [`Error::Rs16TooFewOriginalShards`] or
/// [`Error::Rs16TooManyOriginalShards`].
pub fn encode<T>(
    original_count: usize,
    recovery_count: usize,
    original: T,
) -> Result<Vec<Vec<u8>>, Error>
where
    T: IntoIterator,
    T::Item: AsRef<[u8]>,
{
    // The counts are checked before the shard size (reed-solomon-simd's
    // order), and with a valid shape before an empty iterator.
    Shape::new(original_count, recovery_count, 2)?;
    let mut original = original.into_iter();
    let Some(first) = original.next() else {
        return Err(Error::Rs16TooFewOriginalShards {
            original_count,
            original_received: 0,
        });
    };
    let mut encoder =
        ReedSolomonEncoder::new(original_count, recovery_count, first.as_ref().len())?;
    encoder.add_original_shard(first)?;
    for shard in original {
        encoder.add_original_shard(shard)?;
    }
    let result = encoder.encode()?;
    Ok(result.recovery_iter().map(<[u8]>::to_vec).collect())
}

/// Decodes in one go: the lost originals, keyed by index, from any
/// `original_count` of the shards given as `(index, shard)` pairs (empty
/// when no original is lost). The shard size is the first recovery shard's,
/// or the first original's when there is none.
///
/// # Errors
/// [`Error::Rs16UnsupportedShardCount`], [`Error::Rs16InvalidShardSize`],
/// [`Error::Rs16DifferentShardSize`], [`Error::Rs16OriginalIndex`],
/// [`Error::Rs16RecoveryIndex`], [`Error::Rs16DuplicateOriginalIndex`],
/// [`Error::Rs16DuplicateRecoveryIndex`] or [`Error::Rs16NotEnoughShards`].
pub fn decode<O, R, OT, RT>(
    original_count: usize,
    recovery_count: usize,
    original: O,
    recovery: R,
) -> Result<HashMap<usize, Vec<u8>>, Error>
where
    O: IntoIterator<Item = (usize, OT)>,
    R: IntoIterator<Item = (usize, RT)>,
    OT: AsRef<[u8]>,
    RT: AsRef<[u8]>,
{
    Shape::new(original_count, recovery_count, 2)?;
    let mut original = original.into_iter().peekable();
    let mut recovery = recovery.into_iter().peekable();
    let shard_bytes = match (recovery.peek(), original.peek()) {
        (Some((_, shard)), _) => shard.as_ref().len(),
        (None, Some((_, shard))) => shard.as_ref().len(),
        (None, None) => {
            return Err(Error::Rs16NotEnoughShards {
                original_count,
                original_received: 0,
                recovery_received: 0,
            })
        }
    };
    let mut decoder = ReedSolomonDecoder::new(original_count, recovery_count, shard_bytes)?;
    for (index, shard) in original {
        decoder.add_original_shard(index, shard)?;
    }
    for (index, shard) in recovery {
        decoder.add_recovery_shard(index, shard)?;
    }
    let result = decoder.decode()?;
    Ok(result
        .restored_original_iter()
        .map(|(index, shard)| (index, shard.to_vec()))
        .collect())
}
