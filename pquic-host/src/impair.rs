//! Seeded, reproducible network impairment, sans-IO.
//!
//! [`Impairment`] decides, for each packet offered at time `now`, whether the
//! emulated path drops it and otherwise when it arrives. It owns no clock and
//! no socket: the caller passes the time and keeps the packets, for example in
//! a [`DelayLine`]. The same seed and the same sequence of calls always give
//! the same verdicts, so a test or a demo run can be replayed exactly.
//!
//! Models:
//! - loss: Bernoulli (independent) or Gilbert-Elliott (bursty, two states,
//!   parameterised by the long-run loss rate and the mean burst length);
//! - one-way delay plus uniform jitter (jitter may reorder, as on real paths);
//! - explicit reordering: a fraction of packets held back by an extra delay;
//! - a rate limit with a drop-tail queue bounded in bytes.
//!
//! ```
//! use pquic_host::impair::{ImpairConfig, Impairment, LossModel, Verdict};
//! use std::time::{Duration, Instant};
//!
//! let config = ImpairConfig {
//!     loss: LossModel::from_percent(3.0, 1.0),
//!     delay: Duration::from_millis(20),
//!     ..ImpairConfig::default()
//! };
//! let mut path = Impairment::new(config, 42);
//! let now = Instant::now();
//! let delivered = (0..1000)
//!     .filter(|_| matches!(path.offer(now, 1200), Verdict::Deliver { .. }))
//!     .count();
//! assert!(delivered > 940 && delivered < 995);
//! ```

#![forbid(unsafe_code)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use fec_core::pipeline::loss::{self, LossModel as _};

use crate::rng::SeededRng;

/// How packets are lost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LossModel {
    /// No random loss.
    None,
    /// Each packet is lost independently with probability `rate`.
    Bernoulli {
        /// Loss probability in `[0, 1]`.
        rate: f64,
    },
    /// Simple Gilbert model: the good state never loses, the bad state always
    /// does. `rate` is the long-run loss probability and `mean_burst` the mean
    /// number of consecutive losses (> 1).
    GilbertElliott {
        /// Long-run loss probability in `[0, 1)`.
        rate: f64,
        /// Mean length of a loss burst in packets.
        mean_burst: f64,
    },
}

impl LossModel {
    /// The model the command line describes: `percent` loss, Gilbert-Elliott
    /// when `mean_burst > 1`, Bernoulli otherwise, none at 0%.
    pub fn from_percent(percent: f64, mean_burst: f64) -> Self {
        let rate = (percent / 100.0).clamp(0.0, 0.99);
        if rate <= 0.0 {
            LossModel::None
        } else if mean_burst > 1.0 {
            LossModel::GilbertElliott { rate, mean_burst }
        } else {
            LossModel::Bernoulli { rate }
        }
    }

    /// The long-run loss probability.
    pub fn rate(&self) -> f64 {
        match *self {
            LossModel::None => 0.0,
            LossModel::Bernoulli { rate } | LossModel::GilbertElliott { rate, .. } => rate,
        }
    }
}

/// What an emulated path does to packets.
#[derive(Debug, Clone, PartialEq)]
pub struct ImpairConfig {
    /// Random loss.
    pub loss: LossModel,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `[0, jitter]` per packet.
    pub jitter: Duration,
    /// Fraction of packets held back by `reorder_delay`, in `[0, 1]`.
    pub reorder_rate: f64,
    /// Extra delay of a reordered packet.
    pub reorder_delay: Duration,
    /// Bottleneck rate in bits per second; `None` for unlimited.
    pub rate_bps: Option<u64>,
    /// Bottleneck queue size in bytes; packets that find it full are dropped.
    pub queue_limit_bytes: usize,
}

impl Default for ImpairConfig {
    fn default() -> Self {
        Self {
            loss: LossModel::None,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            reorder_rate: 0.0,
            reorder_delay: Duration::from_millis(5),
            rate_bps: None,
            queue_limit_bytes: 256 * 1024,
        }
    }
}

impl ImpairConfig {
    /// True when the path changes nothing, so callers may skip it.
    pub fn is_transparent(&self) -> bool {
        self.loss.rate() == 0.0
            && self.delay.is_zero()
            && self.jitter.is_zero()
            && self.reorder_rate == 0.0
            && self.rate_bps.is_none()
    }
}

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The loss model chose it.
    RandomLoss,
    /// The rate limiter's queue was full.
    QueueFull,
}

/// The fate of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The packet never arrives.
    Drop(DropReason),
    /// The packet arrives at `at`.
    Deliver {
        /// Arrival time.
        at: Instant,
    },
}

/// Counters of an [`Impairment`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImpairStats {
    /// Packets offered.
    pub offered: u64,
    /// Packets dropped by the loss model.
    pub lost: u64,
    /// Packets dropped by the full queue.
    pub queue_drops: u64,
    /// Packets given the extra reordering delay.
    pub reordered: u64,
}

/// One direction of an emulated path (sans-IO; see the module docs).
#[derive(Debug, Clone)]
pub struct Impairment {
    config: ImpairConfig,
    rng: SeededRng,
    loss: LossProcess,
    link_free_at: Option<Instant>,
    stats: ImpairStats,
}

impl Impairment {
    /// A path that replays identically for the same `seed`.
    pub fn new(config: ImpairConfig, seed: u64) -> Self {
        Self {
            loss: LossProcess::new(config.loss, seed),
            config,
            rng: SeededRng::new(seed),
            link_free_at: None,
            stats: ImpairStats::default(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &ImpairConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> ImpairStats {
        self.stats
    }

    /// Decides the fate of a `len`-byte packet offered at `now`.
    pub fn offer(&mut self, now: Instant, len: usize) -> Verdict {
        self.stats.offered += 1;
        if self.loses_next() {
            self.stats.lost += 1;
            return Verdict::Drop(DropReason::RandomLoss);
        }
        let mut at = now;
        if let Some(rate) = self.config.rate_bps.filter(|&r| r > 0) {
            let start = self.link_free_at.map_or(now, |free| free.max(now));
            let backlog = start.saturating_duration_since(now);
            let backlog_bytes = backlog.as_secs_f64() * rate as f64 / 8.0;
            if backlog_bytes + len as f64 > self.config.queue_limit_bytes as f64 {
                self.stats.queue_drops += 1;
                return Verdict::Drop(DropReason::QueueFull);
            }
            let serialization = Duration::from_secs_f64(len as f64 * 8.0 / rate as f64);
            at = start + serialization;
            self.link_free_at = Some(at);
        }
        at += self.config.delay;
        if !self.config.jitter.is_zero() {
            at += self.config.jitter.mul_f64(self.rng.next_f64());
        }
        if self.config.reorder_rate > 0.0 && self.rng.chance(self.config.reorder_rate) {
            self.stats.reordered += 1;
            at += self.config.reorder_delay;
        }
        Verdict::Deliver { at }
    }

    fn loses_next(&mut self) -> bool {
        match &mut self.loss {
            LossProcess::None => false,
            LossProcess::Bernoulli(model) => model.lost(),
            LossProcess::GilbertElliott(model) => model.lost(),
        }
    }
}

/// The running loss process of a path: the seeded models of
/// `fec_core::pipeline::loss`, the same ones the codec tests and the plugin
/// harness use, so a loss trace means the same thing everywhere.
#[derive(Debug, Clone)]
enum LossProcess {
    None,
    Bernoulli(loss::Bernoulli),
    GilbertElliott(loss::GilbertElliott),
}

impl LossProcess {
    fn new(model: LossModel, seed: u64) -> Self {
        // Its own stream, so jitter and reordering draws do not shift the
        // loss pattern of a seed.
        let seed = seed ^ 0x6c6f_7373_6c6f_7373;
        match model {
            LossModel::None => LossProcess::None,
            LossModel::Bernoulli { rate } => {
                LossProcess::Bernoulli(loss::Bernoulli::new(rate, seed))
            }
            LossModel::GilbertElliott { rate, mean_burst } => LossProcess::GilbertElliott(
                loss::GilbertElliott::with_mean_burst(rate, mean_burst, seed),
            ),
        }
    }
}

/// Most datagrams a [`DelayLine`] fed from the network should hold; callers
/// drop arrivals beyond this (a flood must not grow memory without bound).
pub const DELAY_LINE_LIMIT: usize = 65536;

/// Packets waiting for their arrival time, released in time order (ties in
/// insertion order).
#[derive(Debug)]
pub struct DelayLine<T> {
    heap: BinaryHeap<Reverse<(Instant, u64, Slot<T>)>>,
    sequence: u64,
}

/// Wrapper that keeps `T` out of the heap's ordering.
#[derive(Debug)]
struct Slot<T>(T);

impl<T> PartialEq for Slot<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<T> Eq for Slot<T> {}
impl<T> PartialOrd for Slot<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Slot<T> {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl<T> Default for DelayLine<T> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            sequence: 0,
        }
    }
}

impl<T> DelayLine<T> {
    /// An empty line.
    pub fn new() -> Self {
        Self::default()
    }

    /// Holds `item` until `at`.
    pub fn push(&mut self, at: Instant, item: T) {
        self.sequence += 1;
        self.heap.push(Reverse((at, self.sequence, Slot(item))));
    }

    /// The earliest arrival time waiting, if any.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The next item due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<T> {
        if self.next_arrival()? <= now {
            self.heap.pop().map(|Reverse((_, _, Slot(item)))| item)
        } else {
            None
        }
    }

    /// Number of items waiting.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn losses(path: &mut Impairment, n: usize) -> Vec<bool> {
        let now = Instant::now();
        (0..n)
            .map(|_| matches!(path.offer(now, 100), Verdict::Drop(_)))
            .collect()
    }

    fn config(loss: LossModel) -> ImpairConfig {
        ImpairConfig {
            loss,
            ..ImpairConfig::default()
        }
    }

    #[test]
    fn bernoulli_rate_and_short_bursts() {
        let mut path = Impairment::new(config(LossModel::from_percent(3.0, 1.0)), 1);
        let lost = losses(&mut path, 200_000);
        let rate = lost.iter().filter(|&&l| l).count() as f64 / lost.len() as f64;
        assert!((rate - 0.03).abs() < 0.002, "rate {rate}");
        let b = loss::burst_lengths(&lost);
        let mean = b.iter().sum::<usize>() as f64 / b.len() as f64;
        // Independent losses: mean run 1/(1-p) = 1.03.
        assert!(mean < 1.06, "mean burst {mean}");
        assert_eq!(
            path.stats().lost as usize,
            lost.iter().filter(|&&l| l).count()
        );
    }

    #[test]
    fn gilbert_elliott_rate_and_mean_burst() {
        let model = LossModel::from_percent(5.0, 4.0);
        assert!(matches!(model, LossModel::GilbertElliott { .. }));
        let mut path = Impairment::new(config(model), 2);
        let lost = losses(&mut path, 400_000);
        let rate = lost.iter().filter(|&&l| l).count() as f64 / lost.len() as f64;
        assert!((rate - 0.05).abs() < 0.006, "rate {rate}");
        let b = loss::burst_lengths(&lost);
        let mean = b.iter().sum::<usize>() as f64 / b.len() as f64;
        assert!((mean - 4.0).abs() < 0.3, "mean burst {mean}");
    }

    #[test]
    fn zero_loss_never_drops() {
        let mut path = Impairment::new(config(LossModel::from_percent(0.0, 3.0)), 3);
        assert!(losses(&mut path, 10_000).iter().all(|&l| !l));
        assert!(ImpairConfig::default().is_transparent());
    }

    #[test]
    fn same_seed_replays_and_other_seed_differs() {
        let c = config(LossModel::from_percent(10.0, 2.0));
        let a = losses(&mut Impairment::new(c.clone(), 9), 5_000);
        let b = losses(&mut Impairment::new(c.clone(), 9), 5_000);
        let other = losses(&mut Impairment::new(c, 10), 5_000);
        assert_eq!(a, b);
        assert_ne!(a, other);
    }

    #[test]
    fn delay_and_jitter_bounds() {
        let c = ImpairConfig {
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(4),
            ..ImpairConfig::default()
        };
        let mut path = Impairment::new(c, 4);
        let now = Instant::now();
        let mut extra_sum = 0.0;
        let n = 20_000;
        for _ in 0..n {
            let Verdict::Deliver { at } = path.offer(now, 100) else {
                panic!("no loss configured");
            };
            let d = at - now;
            assert!(d >= Duration::from_millis(20) && d <= Duration::from_millis(24));
            extra_sum += (d - Duration::from_millis(20)).as_secs_f64();
        }
        let mean_extra_ms = extra_sum / n as f64 * 1000.0;
        assert!(
            (mean_extra_ms - 2.0).abs() < 0.1,
            "mean jitter {mean_extra_ms}"
        );
    }

    #[test]
    fn reordering_fraction_and_delay() {
        let c = ImpairConfig {
            reorder_rate: 0.1,
            reorder_delay: Duration::from_millis(7),
            ..ImpairConfig::default()
        };
        let mut path = Impairment::new(c, 5);
        let now = Instant::now();
        let n = 50_000;
        let held = (0..n)
            .filter(|_| {
                path.offer(now, 100)
                    == Verdict::Deliver {
                        at: now + Duration::from_millis(7),
                    }
            })
            .count();
        let share = held as f64 / n as f64;
        assert!((share - 0.1).abs() < 0.01, "share {share}");
        assert_eq!(path.stats().reordered as usize, held);
    }

    #[test]
    fn rate_limit_spaces_packets_and_drops_when_queue_full() {
        let c = ImpairConfig {
            rate_bps: Some(8_000_000), // 1 byte per microsecond
            queue_limit_bytes: 10_000,
            ..ImpairConfig::default()
        };
        let mut path = Impairment::new(c, 6);
        let now = Instant::now();
        let mut arrivals = Vec::new();
        for _ in 0..20 {
            match path.offer(now, 1000) {
                Verdict::Deliver { at } => arrivals.push(at),
                Verdict::Drop(reason) => assert_eq!(reason, DropReason::QueueFull),
            }
        }
        // 10 000 bytes of queue hold ten 1000-byte packets.
        assert_eq!(arrivals.len(), 10);
        for (i, at) in arrivals.iter().enumerate() {
            assert_eq!(*at - now, Duration::from_micros(1000 * (i as u64 + 1)));
        }
        assert_eq!(path.stats().queue_drops, 10);
        // Once the queue drained, packets pass again.
        let later = now + Duration::from_millis(50);
        assert!(matches!(path.offer(later, 1000), Verdict::Deliver { .. }));
    }

    #[test]
    fn delay_line_releases_in_time_then_insertion_order() {
        let mut line = DelayLine::new();
        let t0 = Instant::now();
        line.push(t0 + Duration::from_millis(5), "b");
        line.push(t0 + Duration::from_millis(1), "a");
        line.push(t0 + Duration::from_millis(5), "c");
        assert_eq!(line.next_arrival(), Some(t0 + Duration::from_millis(1)));
        assert_eq!(line.pop_due(t0), None);
        assert_eq!(line.pop_due(t0 + Duration::from_millis(10)), Some("a"));
        assert_eq!(line.pop_due(t0 + Duration::from_millis(10)), Some("b"));
        assert_eq!(line.pop_due(t0 + Duration::from_millis(10)), Some("c"));
        assert!(line.is_empty());
    }
}
