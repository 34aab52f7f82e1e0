//! Receiver reports: what the receiving side of a layer saw of the peer's
//! sources, sent back every [`super::LayerConfig::feedback_interval`].
//!
//! Wire form (17 bytes, big-endian): the type byte [`FEEDBACK_TYPE`] (bits
//! 0x80 and 0x40 clear, so it is neither an FEC packet of
//! [`crate::pipeline::wire`] nor a plain ADU), then `sources` (u32), `lost`
//! (u32), `recovered` (u32), `max_burst` (u16) and `bursts` (u16).

#![forbid(unsafe_code)]

/// First byte of a feedback report.
pub const FEEDBACK_TYPE: u8 = 0x10;

/// What a receiver reports to the sender about one interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Feedback {
    /// Source symbols accounted for in the interval (received or lost).
    pub sources: u32,
    /// Of those, lost on the path (before recovery).
    pub lost: u32,
    /// Lost sources rebuilt from repair symbols in the interval.
    pub recovered: u32,
    /// Longest run of consecutive losses.
    pub max_burst: u16,
    /// Number of loss runs (so `lost / bursts` is the mean burst length).
    pub bursts: u16,
}

impl Feedback {
    /// Length of the wire form.
    pub const LEN: usize = 1 + 4 + 4 + 4 + 2 + 2;

    /// Appends the wire form to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.push(FEEDBACK_TYPE);
        out.extend_from_slice(&self.sources.to_be_bytes());
        out.extend_from_slice(&self.lost.to_be_bytes());
        out.extend_from_slice(&self.recovered.to_be_bytes());
        out.extend_from_slice(&self.max_burst.to_be_bytes());
        out.extend_from_slice(&self.bursts.to_be_bytes());
    }

    /// The wire form.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        self.write_to(&mut out);
        out
    }

    /// Parses a report; `None` unless `datagram` is exactly one well-formed
    /// report.
    pub fn parse(datagram: &[u8]) -> Option<Self> {
        let [FEEDBACK_TYPE, rest @ ..] = datagram else {
            return None;
        };
        let fields: &[u8; Self::LEN - 1] = rest.try_into().ok()?;
        let u32_at =
            |i: usize| u32::from_be_bytes([fields[i], fields[i + 1], fields[i + 2], fields[i + 3]]);
        let u16_at = |i: usize| u16::from_be_bytes([fields[i], fields[i + 1]]);
        Some(Feedback {
            sources: u32_at(0),
            lost: u32_at(4),
            recovered: u32_at(8),
            max_burst: u16_at(12),
            bursts: u16_at(14),
        })
    }

    /// Mean loss-burst length times 16 (fixed point), 0 without losses.
    pub fn mean_burst_x16(&self) -> u32 {
        let lost = u64::from(self.lost) * 16;
        lost.checked_div(u64::from(self.bursts))
            .map_or(0, |m| m.min(u64::from(u32::MAX)) as u32)
    }

    /// Adds what one received packet taught the receiver.
    pub(super) fn add(&mut self, accounted: u32, lost: u32, burst: u32, recovered: u32) {
        self.sources = self.sources.saturating_add(accounted);
        self.lost = self.lost.saturating_add(lost);
        self.recovered = self.recovered.saturating_add(recovered);
        if burst > 0 {
            let burst = u16::try_from(burst).unwrap_or(u16::MAX);
            self.max_burst = self.max_burst.max(burst);
            self.bursts = self.bursts.saturating_add(1);
        }
    }

    /// True when the report says nothing.
    pub fn is_empty(&self) -> bool {
        *self == Feedback::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_garbage() {
        let f = Feedback {
            sources: 10,
            lost: 3,
            recovered: 1,
            max_burst: 2,
            bursts: 2,
        };
        let wire = f.to_vec();
        assert_eq!(wire.len(), Feedback::LEN);
        assert_eq!(Feedback::parse(&wire), Some(f));
        assert_eq!(f.mean_burst_x16(), 24);
        assert_eq!(Feedback::parse(&wire[..Feedback::LEN - 1]), None);
        assert_eq!(Feedback::parse(&[FEEDBACK_TYPE, 1, 2]), None);
        assert_eq!(Feedback::parse(&[]), None);
        let mut longer = wire.clone();
        longer.push(0);
        assert_eq!(Feedback::parse(&longer), None);
        assert_eq!(Feedback::default().mean_burst_x16(), 0);
    }

    #[test]
    fn accumulates_without_overflow() {
        let mut f = Feedback::default();
        f.add(u32::MAX, u32::MAX, 70_000, u32::MAX);
        f.add(5, 5, 1, 5);
        assert_eq!(
            (f.sources, f.lost, f.recovered),
            (u32::MAX, u32::MAX, u32::MAX)
        );
        assert_eq!((f.max_burst, f.bursts), (u16::MAX, 2));
    }
}
