//! The one plugin host: a [`fec_core::layer::policy::Policy`] whose
//! decisions a loaded plugin takes.
//!
//! Every host runs plugins through [`PluginPolicy`]: the harness, the
//! `fec-plugins` drivers, the benches and the QUIC endpoint put it into a
//! [`fec_core::layer::Layer`], so a plugin sees the same contexts, the same
//! `fec_stat` values (every [`StatKey`](crate::abi::StatKey), filled from the
//! layer's real counters) and the same scheduling everywhere.
//!
//! - `fec_path_stat` reads the layer's [`View::paths`], and
//!   `fec_repair_path` becomes [`Plan::repair_path`].
//! - Operations without a pluglet run no VM: the host's default applies
//!   (`on_source`: protect; elsewhere: nothing).
//! - `schedule_repair` follows the plugin's `fec_repair_after` and
//!   `fec_repair_repeat` hints ([`crate::hints`]): the same datagrams, fewer
//!   VM calls. [`PluginPolicy::follow_hints`] turns that off.
//! - A fault disables the instance; [`Policy::failure`] then tells the layer,
//!   which stops protecting (plain sending goes on).
//! - Logs and the code chosen in `configure` are kept in an [`Observed`]
//!   that the host reads through [`PluginPolicy::observer`]; a host that wants
//!   every call recorded (to compare two hosts) turns on
//!   [`PluginPolicy::record_calls`].
//!
//! ```
//! use std::time::Instant;
//! use fec_core::layer::{Layer, LayerConfig};
//! use fec_plugin_sdk::build::pack_assembly;
//! use fec_plugin_sdk::host::PluginPolicy;
//! use fec_plugin_sdk::runtime::{HostOffer, Plugin};
//! // One repair after every 4 sources.
//! let package = pack_assembly(
//!     ".section replace/schedule_repair
//!      ldxw r2, [r1+8]\n mov r0, 0\n jlt r2, 4, +2\n mov r1, 1\n call 2\n mov r0, 0\n exit",
//!     "every-4", "1", 256,
//! ).unwrap();
//! let plugin = Plugin::load(&package, &HostOffer::all()).unwrap();
//! let now = Instant::now();
//! let mut layer = Layer::new(LayerConfig::default(), Some(Box::new(PluginPolicy::new(&plugin, now))), now);
//! let mut wire = Vec::new();
//! for i in 0..8u8 {
//!     layer.send(now, bytes::Bytes::from(vec![0x40 | i; 100]), &mut wire);
//! }
//! assert_eq!(layer.stats().source_packets, 8);
//! assert_eq!(layer.stats().repair_packets, 2);
//! ```

#![forbid(unsafe_code)]

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use fec_core::layer::feedback::Feedback;
use fec_core::layer::paths::{self, PathView};
use fec_core::layer::policy::{
    CodeChoice as LayerCode, Limits, Loss, Plan, Policy, Recovered, Schedule, Source, View,
};

use crate::abi::{
    ConfigureContext, Context, FeedbackContext, LossContext, Operation, PathState,
    RecoveredContext, ScheduleContext, Scheme, SourceContext, MAX_PATHS,
};
use crate::hints::{Due, RepairHints};
use crate::runtime::{CodeChoice, Decisions, Fault, HostView, Instance, PathStats, Plugin, Stats};

// The ABI's path ids are the layer's.
const _: () = assert!(MAX_PATHS as usize == paths::MAX_PATHS);

/// Every scheme a layer runs, as `schemes_offered` bits.
pub const SCHEMES_OFFERED: u32 = (1 << Scheme::None as u32)
    | (1 << Scheme::ReedSolomon as u32)
    | (1 << Scheme::Rlc as u32)
    | (1 << Scheme::RaptorQ as u32);

/// Logs kept per instance (later ones still reach the log sink).
pub const KEPT_LOGS: usize = 32;

/// One plugin call, as [`PluginPolicy::record_calls`] keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The operation.
    pub operation: Operation,
    /// The context the pluglet saw (its `Debug` form).
    pub context: String,
    /// The `fec_stat` values it could read.
    pub stats: Stats,
    /// The `fec_path_stat` values it could read, by path.
    pub paths: [PathStats; MAX_PATHS as usize],
    /// What it decided (`None` after a fault).
    pub decisions: Option<Decisions>,
}

/// What a host can read about its plugin instance while the layer owns it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// The code the plugin chose in `configure`, if it chose one.
    pub configured_code: Option<CodeChoice>,
    /// The first [`KEPT_LOGS`] `fec_log` messages.
    pub logs: Vec<String>,
    /// The fault that disabled the instance.
    pub fault: Option<String>,
    /// Every call, if recording.
    pub calls: Option<Vec<Call>>,
}

/// Where a host sends `fec_log` lines as they happen (plugin name, message).
pub type LogSink = Box<dyn FnMut(&str, &str) + Send>;

/// A plugin instance as a layer's [`Policy`].
pub struct PluginPolicy {
    instance: Instance,
    hints: RepairHints,
    epoch: Instant,
    observed: Arc<Mutex<Observed>>,
    log_sink: Option<LogSink>,
    /// The repair budget told in `configure` and every `schedule_repair`.
    repair_budget: u32,
}

impl fmt::Debug for PluginPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginPolicy")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl PluginPolicy {
    /// A fresh instance of `plugin`; its clock (`now_us`) starts at `epoch`.
    pub fn new(plugin: &Plugin, epoch: Instant) -> Self {
        PluginPolicy {
            instance: plugin.instantiate(),
            hints: RepairHints::new(plugin),
            epoch,
            observed: Arc::default(),
            log_sink: None,
            repair_budget: crate::abi::MAX_REPAIR_PER_CALL,
        }
    }

    /// Whether the plugin's scheduling hints are followed (by default they
    /// are). Ignoring them costs VM calls, never changes what is sent.
    pub fn follow_hints(&mut self, follow: bool) -> &mut Self {
        self.hints.follow_repair_after(follow).follow_repeat(follow);
        self
    }

    /// Whether `fec_repair_repeat` hints alone are followed (by default they
    /// are): a host that does not follow them asks for every due decision.
    pub fn follow_repeat(&mut self, follow: bool) -> &mut Self {
        self.hints.follow_repeat(follow);
        self
    }

    /// Sends every `fec_log` line to `sink` as well.
    pub fn log_to(&mut self, sink: LogSink) -> &mut Self {
        self.log_sink = Some(sink);
        self
    }

    /// Records every call from now on (see [`Observed::calls`]).
    pub fn record_calls(&mut self) -> &mut Self {
        self.observed().calls.get_or_insert_with(Vec::new);
        self
    }

    /// What the host can read about this instance, also after the policy was
    /// handed to a layer.
    pub fn observer(&self) -> Arc<Mutex<Observed>> {
        Arc::clone(&self.observed)
    }

    /// The instance (for its memory and call count).
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    fn observed(&self) -> MutexGuard<'_, Observed> {
        // Plain data behind the lock: a panic elsewhere leaves it usable.
        self.observed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_us(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_micros() as u64
    }

    /// Runs `C::OPERATION` with the context `context(now_us)` if the plugin
    /// has a pluglet for it, takes its hints and turns its decisions into a
    /// plan; otherwise the host's default applies, without building the
    /// context.
    fn call<C: Context>(
        &mut self,
        now: Instant,
        view: &View,
        context: impl FnOnce(u64) -> C,
        default_protect: bool,
    ) -> Plan {
        if !self.instance.plugin().runs(C::OPERATION) {
            return Plan {
                protect: default_protect && self.instance.disabled().is_none(),
                ..Plan::default()
            };
        }
        let now_us = self.now_us(now);
        let ctx = context(now_us);
        let host_view = HostView {
            now_us,
            stats: stats(view),
            schemes_offered: SCHEMES_OFFERED,
            paths: path_stats(view),
        };
        let decided = self.instance.invoke(&ctx, &host_view);
        if let Ok(decisions) = &decided {
            self.hints.after(C::OPERATION, decisions);
        }
        self.take(C::OPERATION, &ctx, &host_view, decided, default_protect)
    }

    fn take<C: Context>(
        &mut self,
        operation: Operation,
        ctx: &C,
        view: &HostView,
        decided: Result<Decisions, Fault>,
        default_protect: bool,
    ) -> Plan {
        let mut observed = self.observed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(calls) = observed.calls.as_mut() {
            calls.push(Call {
                operation,
                context: format!("{ctx:?}"),
                stats: view.stats,
                paths: view.paths,
                decisions: decided.as_ref().ok().cloned(),
            });
        }
        let decisions = match decided {
            Ok(decisions) => decisions,
            Err(fault) => {
                observed.fault.get_or_insert_with(|| fault.to_string());
                return Plan::default();
            }
        };
        for line in &decisions.logs {
            if observed.logs.len() < KEPT_LOGS {
                observed.logs.push(line.clone());
            }
            if let Some(sink) = self.log_sink.as_mut() {
                sink(self.instance.plugin().name(), line);
            }
        }
        if operation == Operation::Configure {
            observed.configured_code = decisions.code;
        }
        Plan {
            protect: decisions.protect.is_some() || (default_protect && decisions.use_default()),
            repairs: decisions.repair as usize,
            window: decisions.window.map(|w| w as usize),
            code: decisions.code.map(layer_code),
            repair_path: decisions.repair_path,
        }
    }
}

/// The `fec_stat` counters of a layer's view.
fn stats(view: &View) -> Stats {
    Stats {
        sources_sent: view.stats.source_packets,
        repair_sent: view.stats.repair_packets,
        received: view.stats.received,
        recovered: view.stats.recovered,
        unrecoverable: view.stats.unrecoverable,
        rejected: view.stats.rejected,
        window_len: view.window_len as u64,
    }
}

/// The `fec_path_stat` values of a layer's view.
fn path_stats(view: &View) -> [PathStats; MAX_PATHS as usize] {
    std::array::from_fn(|i| path_stat(&view.paths[i]))
}

/// One path as `fec_path_stat` reads it: a measured RTT reads at least
/// 1 µs, so 0 always means unknown.
pub fn path_stat(path: &PathView) -> PathStats {
    PathStats {
        state: path_state(path.state),
        loss_permille: u64::from(path.loss_permille),
        rtt_us: path.rtt.map_or(0, |rtt| {
            u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX).max(1)
        }),
        sent_datagrams: path.sent_datagrams,
        sent_bytes: path.sent_bytes,
        source_packets: path.source_packets,
        repair_packets: path.repair_packets,
        received_datagrams: path.received_datagrams,
        received_bytes: path.received_bytes,
    }
}

/// The ABI id of a layer's path state.
pub fn path_state(state: paths::PathState) -> PathState {
    match state {
        paths::PathState::Unused => PathState::Unused,
        paths::PathState::Opening => PathState::Opening,
        paths::PathState::Validated => PathState::Validated,
        paths::PathState::Failed => PathState::Failed,
        paths::PathState::Abandoned => PathState::Abandoned,
    }
}

/// The layer code a plugin's `fec_set_code` names (the layer clamps it to
/// what it runs).
pub fn layer_code(choice: CodeChoice) -> LayerCode {
    let sources = choice.source_symbols as usize;
    let repairs = choice.repair_symbols as usize;
    match choice.scheme {
        Scheme::None => LayerCode::None,
        Scheme::ReedSolomon => LayerCode::ReedSolomon {
            data: sources,
            parity: repairs,
        },
        Scheme::Rlc => LayerCode::Rlc { window: sources },
        Scheme::RaptorQ => LayerCode::RaptorQ {
            source_symbols: sources,
            repair_symbols: repairs,
        },
    }
}

fn u32_of(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Policy for PluginPolicy {
    fn configure(&mut self, now: Instant, limits: &Limits, view: &View) -> Plan {
        self.repair_budget = u32_of(limits.max_repairs_per_call);
        let context = |now_us| ConfigureContext {
            now_us,
            schemes_offered: SCHEMES_OFFERED,
            symbol_size: u32_of(limits.symbol_size),
            max_window: u32_of(limits.max_window),
            max_repair_per_call: u32_of(limits.max_repairs_per_call),
        };
        self.call(now, view, context, false)
    }

    fn on_source(&mut self, now: Instant, source: &Source, view: &View) -> Plan {
        let context = |now_us| SourceContext {
            now_us,
            seq: source.seq,
            flow: u32::from(source.flow),
            len: u32_of(source.len),
        };
        self.call(now, view, context, true)
    }

    fn schedule_repair(&mut self, now: Instant, schedule: &Schedule, view: &View) -> Plan {
        let pending = u32_of(schedule.pending);
        match self.hints.due(&self.instance, pending) {
            Due::Skip => Plan::default(),
            // The standing decision's path too: a call made instead would
            // choose it again, whatever was chosen since.
            Due::Repeat(count) => Plan {
                repairs: count as usize,
                repair_path: self.hints.repeat_path(),
                ..Plan::default()
            },
            Due::Call => {
                let repair_budget = self.repair_budget;
                let context = |now_us| ScheduleContext {
                    now_us,
                    sources_since_repair: pending,
                    window_len: u32_of(view.window_len),
                    window_target: u32_of(view.window_target),
                    repair_budget,
                };
                self.call(now, view, context, false)
            }
        }
    }

    fn on_feedback(&mut self, now: Instant, report: &Feedback, view: &View) -> Plan {
        let context = |now_us| FeedbackContext {
            now_us,
            rtt_us: view.rtt.map_or(0, |rtt| rtt.as_micros() as u64),
            received: report.sources.saturating_sub(report.lost),
            lost: report.lost,
            recovered: report.recovered,
            max_burst: u32::from(report.max_burst),
            mean_burst_x16: report.mean_burst_x16(),
            reserved: 0,
        };
        self.call(now, view, context, false)
    }

    fn on_loss(&mut self, now: Instant, loss: &Loss, view: &View) -> Plan {
        let context = |now_us| LossContext {
            now_us,
            seq: loss.first,
            burst_len: loss.count,
            reserved: 0,
        };
        self.call(now, view, context, false)
    }

    fn on_recovered(&mut self, now: Instant, recovered: &Recovered, view: &View) -> Plan {
        let context = |now_us| RecoveredContext {
            now_us,
            seq: recovered.seq,
            flow: u32::from(recovered.flow),
            len: u32_of(recovered.len),
        };
        self.call(now, view, context, false)
    }

    fn failure(&self) -> Option<String> {
        self.instance.disabled().map(|fault| fault.to_string())
    }

    fn calls(&self) -> u64 {
        self.instance.calls()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_repair_budget_plugins_see_is_the_abi_limit() {
        assert_eq!(
            fec_core::layer::DEFAULT_MAX_REPAIRS_PER_CALL,
            crate::abi::MAX_REPAIR_PER_CALL as usize
        );
        assert_eq!(
            fec_core::layer::DEFAULT_MAX_WINDOW,
            crate::abi::MAX_WINDOW as usize
        );
    }
}
