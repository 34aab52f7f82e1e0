//! The inputs every library is measured on: configurations, data and loss patterns.
//!
//! Data and loss patterns come from seeded generators, so every library (and every
//! run) sees exactly the same bytes and the same sequence of erasures.

use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{RngCore, SeedableRng};

/// A block Reed-Solomon configuration: `data` shards plus `parity` shards of
/// `shard_bytes` each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RsConfig {
    /// Name used in the JSON lines (`A`, `B`, `C`).
    pub name: &'static str,
    /// Number of data shards (k).
    pub data: usize,
    /// Number of parity shards (m).
    pub parity: usize,
    /// Bytes per shard.
    pub shard_bytes: usize,
}

impl RsConfig {
    /// Bytes of original data in one block: the MB/s numerator of encode and decode.
    pub fn data_bytes(&self) -> usize {
        self.data * self.shard_bytes
    }

    /// A one-line description for the human table.
    pub fn describe(&self) -> String {
        format!(
            "k={} m={} {} B shards",
            self.data, self.parity, self.shard_bytes
        )
    }
}

/// Configuration A: few large shards (storage-like).
pub const CONFIG_A: RsConfig = RsConfig {
    name: "A",
    data: 10,
    parity: 4,
    shard_bytes: 64 * 1024,
};

/// Configuration B: a block of packets.
pub const CONFIG_B: RsConfig = RsConfig {
    name: "B",
    data: 32,
    parity: 8,
    shard_bytes: 1280,
};

/// Configuration C: a large block of packets, where matrix work dominates decode.
pub const CONFIG_C: RsConfig = RsConfig {
    name: "C",
    data: 200,
    parity: 50,
    shard_bytes: 1280,
};

/// The three Reed-Solomon configurations, in report order.
pub const RS_CONFIGS: [RsConfig; 3] = [CONFIG_A, CONFIG_B, CONFIG_C];

/// `count` buffers of `len` pseudo-random bytes drawn from `seed`.
pub fn random_shards(count: usize, len: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let mut shard = vec![0u8; len];
            rng.fill_bytes(&mut shard);
            shard
        })
        .collect()
}

/// A fixed cycle of erasure patterns: each is `lost` distinct indices below `total`,
/// sorted ascending. Every library walks the same cycle.
#[derive(Clone, Debug)]
pub struct LossPatterns {
    patterns: Vec<Vec<usize>>,
    next: usize,
}

impl LossPatterns {
    /// `count` patterns of `lost` erasures among `total` shards, from `seed`.
    pub fn new(total: usize, lost: usize, count: usize, seed: u64) -> Self {
        assert!(lost <= total && count > 0, "bad loss pattern request");
        let mut rng = StdRng::seed_from_u64(seed);
        let patterns = (0..count)
            .map(|_| {
                let mut pattern = sample(&mut rng, total, lost).into_vec();
                pattern.sort_unstable();
                pattern
            })
            .collect();
        Self { patterns, next: 0 }
    }

    /// The next pattern of the cycle.
    pub fn next_pattern(&mut self) -> &[usize] {
        let index = self.next;
        self.next = (self.next + 1) % self.patterns.len();
        &self.patterns[index]
    }

    /// All patterns of the cycle.
    pub fn all(&self) -> &[Vec<usize>] {
        &self.patterns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_distinct_sorted_and_in_range() {
        let patterns = LossPatterns::new(32, 8, 20, 7);
        for pattern in patterns.all() {
            assert_eq!(pattern.len(), 8);
            assert!(pattern.windows(2).all(|pair| pair[0] < pair[1]));
            assert!(pattern.iter().all(|&index| index < 32));
        }
    }

    #[test]
    fn same_seed_same_inputs() {
        assert_eq!(random_shards(3, 100, 1), random_shards(3, 100, 1));
        assert_ne!(random_shards(3, 100, 1), random_shards(3, 100, 2));
        let mut first = LossPatterns::new(200, 50, 4, 9);
        let mut second = LossPatterns::new(200, 50, 4, 9);
        for _ in 0..6 {
            assert_eq!(first.next_pattern(), second.next_pattern());
        }
    }
}
