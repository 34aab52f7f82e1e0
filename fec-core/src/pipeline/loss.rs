//! Seeded, reproducible packet-loss models for tests, harnesses and
//! emulators: independent (Bernoulli) loss and Gilbert-Elliott bursts.
//!
//! The generator is SplitMix64, so a seed gives the same trace on every
//! platform and release, with no dependency.
//!
//! ```
//! use fec_core::pipeline::loss::{Bernoulli, GilbertElliott, LossModel};
//!
//! let mut random = Bernoulli::new(0.05, 42);
//! let trace = random.trace(10_000);
//! let rate = trace.iter().filter(|&&lost| lost).count() as f64 / 1e4;
//! assert!((0.04..0.06).contains(&rate));
//!
//! // 5% loss in bursts of 4 packets on average.
//! let mut bursty = GilbertElliott::with_mean_burst(0.05, 4.0, 42);
//! assert_eq!(bursty.trace(100), GilbertElliott::with_mean_burst(0.05, 4.0, 42).trace(100));
//! ```

/// Decides, packet after packet, whether the packet is lost.
pub trait LossModel {
    /// Whether the next packet is lost.
    fn lost(&mut self) -> bool;

    /// The next `packets` decisions (true = lost).
    fn trace(&mut self, packets: usize) -> Vec<bool> {
        (0..packets).map(|_| self.lost()).collect()
    }
}

/// SplitMix64: tiny, fast, statistically fine for loss traces.
#[derive(Clone, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Every packet lost independently with probability `rate`.
#[derive(Clone, Debug)]
pub struct Bernoulli {
    rate: f64,
    rng: SplitMix64,
}

impl Bernoulli {
    /// Loss probability `rate` (clamped to 0..=1), generator seeded with `seed`.
    pub fn new(rate: f64, seed: u64) -> Self {
        Bernoulli {
            rate: clamp(rate),
            rng: SplitMix64(seed),
        }
    }
}

impl LossModel for Bernoulli {
    fn lost(&mut self) -> bool {
        self.rng.next_f64() < self.rate
    }
}

/// The Gilbert-Elliott two-state channel: a good and a bad state, each with
/// its own loss probability, and Markov transitions between them.
#[derive(Clone, Debug)]
pub struct GilbertElliott {
    good_to_bad: f64,
    bad_to_good: f64,
    loss_in_good: f64,
    loss_in_bad: f64,
    bad: bool,
    rng: SplitMix64,
}

impl GilbertElliott {
    /// The general model: transition probabilities per packet and the loss
    /// probability in each state (all clamped to 0..=1). Starts in the good state.
    pub fn new(
        good_to_bad: f64,
        bad_to_good: f64,
        loss_in_good: f64,
        loss_in_bad: f64,
        seed: u64,
    ) -> Self {
        GilbertElliott {
            good_to_bad: clamp(good_to_bad),
            bad_to_good: clamp(bad_to_good),
            loss_in_good: clamp(loss_in_good),
            loss_in_bad: clamp(loss_in_bad),
            bad: false,
            rng: SplitMix64(seed),
        }
    }

    /// The simple Gilbert model: every packet in the bad state is lost, none
    /// in the good one; bursts last `mean_burst` packets on average (>= 1)
    /// and the long-run loss rate is `rate` (< 1).
    pub fn with_mean_burst(rate: f64, mean_burst: f64, seed: u64) -> Self {
        let rate = clamp(rate).min(0.999);
        let bad_to_good = 1.0 / mean_burst.max(1.0);
        // Stationary loss p / (p + r) = rate.
        let good_to_bad = rate * bad_to_good / (1.0 - rate);
        Self::new(good_to_bad, bad_to_good, 0.0, 1.0, seed)
    }

    /// Whether the channel is in the bad state now.
    pub fn is_bad(&self) -> bool {
        self.bad
    }
}

impl LossModel for GilbertElliott {
    fn lost(&mut self) -> bool {
        let switch = if self.bad {
            self.bad_to_good
        } else {
            self.good_to_bad
        };
        if self.rng.next_f64() < switch {
            self.bad = !self.bad;
        }
        let loss = if self.bad {
            self.loss_in_bad
        } else {
            self.loss_in_good
        };
        self.rng.next_f64() < loss
    }
}

/// The lengths of the runs of consecutive losses in `trace`, in order.
///
/// ```
/// use fec_core::pipeline::loss::burst_lengths;
///
/// assert_eq!(burst_lengths(&[true, true, false, true, false, false]), [2, 1]);
/// assert!(burst_lengths(&[false, false]).is_empty());
/// ```
pub fn burst_lengths(trace: &[bool]) -> Vec<usize> {
    trace
        .split(|&lost| !lost)
        .filter(|run| !run.is_empty())
        .map(<[bool]>::len)
        .collect()
}

fn clamp(p: f64) -> f64 {
    if p.is_nan() {
        0.0
    } else {
        p.clamp(0.0, 1.0)
    }
}
