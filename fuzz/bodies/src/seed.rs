//! Deterministic pseudo-random bytes, so a structured input can say "a block
//! of 20 symbols from seed 7" in a few bytes instead of carrying the data.

use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use rand_xoshiro::SplitMix64;

/// A seeded byte source over `rand_xoshiro`'s SplitMix64: tiny, fast, good
/// enough to make distinct test payloads.
pub(crate) struct SplitMix(SplitMix64);

impl SplitMix {
    pub(crate) fn new(seed: u64) -> SplitMix {
        SplitMix(SplitMix64::seed_from_u64(seed))
    }

    /// `len` bytes: whole little-endian words, the last one cut. The
    /// committed corpora were minimised against exactly these bytes;
    /// `fill_bytes` would draw a short tail from `next_u32` instead.
    pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out: Vec<u8> = (0..len.div_ceil(8))
            .flat_map(|_| self.0.next_u64().to_le_bytes())
            .collect();
        out.truncate(len);
        out
    }
}
