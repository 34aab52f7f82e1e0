//! Repaired losses reach quinn's congestion controller (RFC 9265).
//!
//! FEC hides a loss from QUIC's loss detection, but a loss is still the
//! path's congestion signal. [`FecAwareFactory`] wraps quinn's controller
//! (Cubic by default): when the peer reports losses that FEC repaired (see
//! [`RepairedLosses`]), the wrapper tells the inner controller about them as
//! a congestion event at the end of the next batch of acknowledgements,
//! about when quinn would have learned of them without FEC. The inner controller's own rule (one
//! reduction per round trip) applies unchanged.
//!
//! [`ChargeRule`] says whether a repaired loss of an application-limited
//! sender counts too.
//!
//! The counter belongs to the transport configuration, and the builders
//! (`crate::builder`) give every connection its own configuration, so a
//! connection's repaired losses reach its own controller only: the layer
//! installed for that connection feeds exactly that counter.

#![forbid(unsafe_code)]

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::congestion::{BbrConfig, Controller, ControllerFactory, ControllerMetrics, CubicConfig};
use quinn_proto::RttEstimator;

use crate::fec::{RepairedLosses, FEEDBACK_INTERVAL};

/// Bytes charged per repaired packet (the QUIC minimum packet size; the
/// sizes of the repaired packets are not reported).
const BYTES_PER_REPAIRED_PACKET: u64 = 1200;

/// When a repaired loss counts as a congestion event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChargeRule {
    /// Always, exactly like a loss quinn detected.
    Always,
    /// Only while the sender uses its whole window (not application
    /// limited). A thin real-time flow far below its window gains nothing
    /// from a smaller window but its messages wait behind quinn's
    /// two-packet minimum window; a flow that fills its window, the one that
    /// can congest a path, is charged for every repaired loss.
    #[default]
    WhenWindowLimited,
}

impl std::str::FromStr for ChargeRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "always" => Ok(ChargeRule::Always),
            "window-limited" => Ok(ChargeRule::WhenWindowLimited),
            other => Err(format!("{other}: expected always or window-limited")),
        }
    }
}

/// The congestion controller under the repaired-loss wrapper.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Algorithm {
    /// quinn's Cubic, loss-based: the default of `server` and `client`.
    #[default]
    Cubic,
    /// quinn's BBR, which paces to the measured bottleneck rate and
    /// round-trip time instead of halving its window on loss: the default of
    /// `tunnel`. On a link with random loss (what FEC is for) Cubic's window
    /// collapses to a few packets, and a tunnel's datagrams, whose senders
    /// run their own congestion control, wait behind it: at 10% loss on
    /// loopback, 2000 datagrams/s of 1200 B waited 25 ms at p99 under Cubic
    /// and 1.6 ms under BBR (`tunnel probe`, same seed). quinn marks its BBR
    /// experimental.
    Bbr,
}

impl std::str::FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cubic" => Ok(Algorithm::Cubic),
            "bbr" => Ok(Algorithm::Bbr),
            other => Err(format!("{other}: expected cubic or bbr")),
        }
    }
}

/// How a connection's congestion is controlled: the algorithm, and when
/// FEC-repaired losses count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Congestion {
    /// The controller.
    pub algorithm: Algorithm,
    /// When a repaired loss is a congestion event.
    pub charge: ChargeRule,
}

impl From<ChargeRule> for Congestion {
    fn from(charge: ChargeRule) -> Self {
        Congestion {
            algorithm: Algorithm::default(),
            charge,
        }
    }
}

/// Builds [`FecAware`] controllers around an inner factory.
pub struct FecAwareFactory {
    inner: Arc<dyn ControllerFactory + Send + Sync>,
    repaired: RepairedLosses,
    rule: ChargeRule,
}

impl FecAwareFactory {
    /// Cubic, told about the losses counted in `repaired` under `rule`.
    pub fn cubic(repaired: RepairedLosses, rule: ChargeRule) -> Self {
        Self::new(
            Congestion {
                algorithm: Algorithm::Cubic,
                charge: rule,
            },
            repaired,
        )
    }

    /// `congestion`'s algorithm, told about the losses counted in
    /// `repaired` under its rule.
    pub fn new(congestion: Congestion, repaired: RepairedLosses) -> Self {
        let inner: Arc<dyn ControllerFactory + Send + Sync> = match congestion.algorithm {
            Algorithm::Cubic => Arc::new(CubicConfig::default()),
            Algorithm::Bbr => Arc::new(BbrConfig::default()),
        };
        Self {
            inner,
            repaired,
            rule: congestion.charge,
        }
    }
}

impl ControllerFactory for FecAwareFactory {
    fn build(self: Arc<Self>, now: Instant, current_mtu: u16) -> Box<dyn Controller> {
        Box::new(FecAware {
            inner: self.inner.clone().build(now, current_mtu),
            repaired: self.repaired.clone(),
            rule: self.rule,
            smoothed_rtt: None,
        })
    }
}

/// A controller that also reacts to losses FEC repaired.
pub struct FecAware {
    inner: Box<dyn Controller>,
    repaired: RepairedLosses,
    rule: ChargeRule,
    smoothed_rtt: Option<Duration>,
}

impl Controller for FecAware {
    fn on_sent(&mut self, now: Instant, bytes: u64, last_packet_number: u64) {
        self.inner.on_sent(now, bytes, last_packet_number);
    }

    fn on_ack(
        &mut self,
        now: Instant,
        sent: Instant,
        bytes: u64,
        app_limited: bool,
        rtt: &RttEstimator,
    ) {
        self.smoothed_rtt = Some(rtt.get());
        self.inner.on_ack(now, sent, bytes, app_limited, rtt);
    }

    fn on_end_acks(
        &mut self,
        now: Instant,
        in_flight: u64,
        app_limited: bool,
        largest_packet_num_acked: Option<u64>,
    ) {
        self.inner
            .on_end_acks(now, in_flight, app_limited, largest_packet_num_acked);
        let repaired = self.repaired.take();
        let waived = app_limited && self.rule == ChargeRule::WhenWindowLimited;
        if repaired > 0 && !waived {
            // The repaired packets left about a round trip plus (at most) a
            // feedback interval ago: charge them as sent then, so losses of
            // one round trip cost one reduction, as quinn's own detection
            // does for losses it sees.
            let age = self.smoothed_rtt.unwrap_or_default() + FEEDBACK_INTERVAL;
            let sent = now.checked_sub(age).unwrap_or(now);
            self.inner
                .on_congestion_event(now, sent, false, repaired * BYTES_PER_REPAIRED_PACKET);
        }
    }

    fn on_congestion_event(
        &mut self,
        now: Instant,
        sent: Instant,
        is_persistent_congestion: bool,
        lost_bytes: u64,
    ) {
        self.inner
            .on_congestion_event(now, sent, is_persistent_congestion, lost_bytes);
    }

    fn on_mtu_update(&mut self, new_mtu: u16) {
        self.inner.on_mtu_update(new_mtu);
    }

    fn window(&self) -> u64 {
        self.inner.window()
    }

    fn metrics(&self) -> ControllerMetrics {
        self.inner.metrics()
    }

    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(FecAware {
            inner: self.inner.clone_box(),
            repaired: self.repaired.clone(),
            rule: self.rule,
            smoothed_rtt: self.smoothed_rtt,
        })
    }

    fn initial_window(&self) -> u64 {
        self.inner.initial_window()
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repaired_losses_shrink_the_window_like_real_ones() {
        let repaired = RepairedLosses::default();
        let factory = Arc::new(FecAwareFactory::cubic(repaired.clone(), ChargeRule::Always));
        let t0 = Instant::now();
        let mut with_fec = factory.clone().build(t0, 1200);
        let mut reference = Arc::new(CubicConfig::default()).build(t0, 1200);
        let before = with_fec.window();
        assert_eq!(before, reference.window());
        let later = t0 + std::time::Duration::from_millis(50);
        reference.on_congestion_event(later, later - FEEDBACK_INTERVAL, false, 1200);
        repaired.add(1);
        // The end of an ack batch charges the pending repaired loss.
        with_fec.on_end_acks(later, 0, true, None);
        assert!(with_fec.window() < before);
        assert_eq!(with_fec.window(), reference.window());
        assert_eq!(repaired.take(), 0, "consumed");
    }

    #[test]
    fn window_limited_rule_waives_charges_while_application_limited() {
        let repaired = RepairedLosses::default();
        let factory = Arc::new(FecAwareFactory::cubic(
            repaired.clone(),
            ChargeRule::WhenWindowLimited,
        ));
        let t0 = Instant::now();
        let mut controller = factory.build(t0, 1200);
        let before = controller.window();
        let later = t0 + std::time::Duration::from_millis(50);
        repaired.add(3);
        controller.on_end_acks(later, 0, true, None);
        assert_eq!(controller.window(), before, "application limited: waived");
        repaired.add(1);
        controller.on_end_acks(later, 0, false, None);
        assert!(controller.window() < before, "window limited: charged");
    }
}
