//! The working layout of shards: 64-byte blocks of 32 field elements.
//!
//! reed-solomon-simd reads a shard not as little-endian pairs but in 64-byte
//! blocks, the 32 low bytes of 32 elements first, then their 32 high bytes,
//! so that a SIMD register holds whole bytes of many elements. A shard whose
//! size is not a multiple of 64 ends with a short tail of `t` bytes: its
//! first `t / 2` bytes are low bytes and the other `t / 2` the matching high
//! bytes. Internally that tail is spread over a full block (low bytes from
//! offset 0, high bytes from offset 32, the rest unused), so every block has
//! one layout; only the copy in and out knows about tails. The unused lanes
//! never reach an output: every operation is element-wise.

#![forbid(unsafe_code)]

use std::ops::Range;

/// 32 field elements: low bytes in `0..32`, high bytes in `32..64`.
pub(crate) type Block = [u8; 64];

/// Bytes per block.
pub(crate) const BLOCK_BYTES: usize = 64;

/// Blocks a shard of `shard_bytes` occupies.
pub(crate) fn blocks_per_shard(shard_bytes: usize) -> usize {
    shard_bytes.div_ceil(BLOCK_BYTES)
}

/// A run of equal-sized shards in block layout, starting on a 64-byte
/// boundary (an AVX-512 load of a misaligned block spans two cache lines).
#[derive(Debug, Default)]
pub(crate) struct ShardBuffer {
    /// Backing store with slack for the alignment offset.
    bytes: Vec<u8>,
    offset: usize,
    shard_count: usize,
    blocks_per_shard: usize,
}

impl ShardBuffer {
    /// Makes room for `shard_count` shards of `blocks_per_shard` blocks. The
    /// contents afterwards are unspecified (old data or zeros): callers
    /// write or zero every shard they read.
    pub(crate) fn resize(&mut self, shard_count: usize, blocks_per_shard: usize) {
        let needed = shard_count * blocks_per_shard * BLOCK_BYTES + BLOCK_BYTES - 1;
        if self.bytes.len() < needed {
            self.bytes.resize(needed, 0);
        }
        self.offset = self.bytes.as_ptr().align_offset(BLOCK_BYTES);
        if self.offset >= BLOCK_BYTES {
            // `align_offset` may give up; an unaligned buffer is only slower.
            self.offset = 0;
        }
        self.shard_count = shard_count;
        self.blocks_per_shard = blocks_per_shard;
    }

    /// Blocks per shard.
    pub(crate) fn blocks_per_shard(&self) -> usize {
        self.blocks_per_shard
    }

    /// Every block, shard after shard.
    pub(crate) fn blocks(&self) -> &[Block] {
        let len = self.shard_count * self.blocks_per_shard * BLOCK_BYTES;
        let (blocks, _) = self.bytes[self.offset..self.offset + len].as_chunks::<BLOCK_BYTES>();
        blocks
    }

    /// Every block, mutably.
    pub(crate) fn blocks_mut(&mut self) -> &mut [Block] {
        let len = self.shard_count * self.blocks_per_shard * BLOCK_BYTES;
        let (blocks, _) = self.bytes[self.offset..self.offset + len].as_chunks_mut::<BLOCK_BYTES>();
        blocks
    }

    /// The blocks of shard `index`.
    pub(crate) fn shard(&self, index: usize) -> &[Block] {
        let b = self.blocks_per_shard;
        &self.blocks()[index * b..(index + 1) * b]
    }

    /// The blocks of shard `index`, mutably.
    pub(crate) fn shard_mut(&mut self, index: usize) -> &mut [Block] {
        let b = self.blocks_per_shard;
        &mut self.blocks_mut()[index * b..(index + 1) * b]
    }

    /// The blocks of shards `range`, mutably.
    pub(crate) fn shards_mut(&mut self, range: Range<usize>) -> &mut [Block] {
        let b = self.blocks_per_shard;
        &mut self.blocks_mut()[range.start * b..range.end * b]
    }

    /// Copies the shards `src..src + count` over `dst..dst + count`.
    pub(crate) fn copy_within(&mut self, src: usize, dst: usize, count: usize) {
        let b = self.blocks_per_shard;
        self.blocks_mut()
            .copy_within(src * b..(src + count) * b, dst * b);
    }

    /// Stores `shard` (in wire layout, `shard.len()` at most the buffer's
    /// shard size) as shard `index`.
    pub(crate) fn insert(&mut self, index: usize, shard: &[u8]) {
        let dst = self.shard_mut(index);
        store_shard(dst, shard);
    }

    /// Rewrites shard `index`'s tail block from block layout to wire layout
    /// in place, so that its first `shard_bytes` bytes are the shard as sent.
    /// Applying it twice garbles the tail; callers do it once per result.
    pub(crate) fn finish_in_place(&mut self, index: usize, shard_bytes: usize) -> &[u8] {
        let tail = shard_bytes % BLOCK_BYTES;
        let dst = self.shard_mut(index);
        if tail > 0 {
            let last = dst.len() - 1;
            dst[last].copy_within(32..32 + tail / 2, tail / 2);
        }
        self.shard_bytes_of(index, shard_bytes)
    }

    /// The first `shard_bytes` bytes of shard `index`, as they are.
    pub(crate) fn shard_bytes_of(&self, index: usize, shard_bytes: usize) -> &[u8] {
        &self.shard(index).as_flattened()[..shard_bytes]
    }
}

/// Copies `shard` (wire layout) into `dst` (block layout).
pub(crate) fn store_shard(dst: &mut [Block], shard: &[u8]) {
    let (whole, tail) = shard.as_chunks::<BLOCK_BYTES>();
    dst[..whole.len()].copy_from_slice(whole);
    if !tail.is_empty() {
        let half = tail.len() / 2;
        let block = &mut dst[whole.len()];
        block[..half].copy_from_slice(&tail[..half]);
        block[32..32 + half].copy_from_slice(&tail[half..2 * half]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_layout_round_trips_for_every_tail() {
        for len in (0..=200).step_by(2) {
            let shard: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut buffer = ShardBuffer::default();
            buffer.resize(2, blocks_per_shard(len.max(1)));
            buffer.insert(1, &shard);
            assert_eq!(buffer.finish_in_place(1, len), &shard[..]);
        }
    }

    #[test]
    fn tail_bytes_split_into_low_and_high_halves() {
        // A 4-byte shard is two elements: low bytes 1, 2 and high bytes 3, 4.
        let mut buffer = ShardBuffer::default();
        buffer.resize(1, 1);
        buffer.blocks_mut().fill([0; BLOCK_BYTES]);
        buffer.insert(0, &[1, 2, 3, 4]);
        let block = &buffer.shard(0)[0];
        assert_eq!(&block[..2], &[1, 2]);
        assert_eq!(&block[32..34], &[3, 4]);
    }

    #[test]
    fn blocks_start_aligned() {
        let mut buffer = ShardBuffer::default();
        for count in [1, 3, 17] {
            buffer.resize(count, 2);
            assert_eq!(buffer.blocks().as_ptr() as usize % BLOCK_BYTES, 0);
        }
    }
}
