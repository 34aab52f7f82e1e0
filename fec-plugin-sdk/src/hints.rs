//! Following a plugin's scheduling hints, the one way every host does it.
//!
//! A plugin may say, from its pluglets, that some `schedule_repair` calls
//! are not worth making:
//!
//! - `fec_repair_after(n)` (from `configure`, `on_feedback` or
//!   `schedule_repair`): the call decides nothing while fewer than `n`
//!   sources are pending (protected since the last repair);
//! - `fec_repair_repeat(k)` (from `schedule_repair`): the next `k` due calls
//!   would repeat this call's repair count (and its `fec_repair_path`
//!   choice, if it made one), so the host sends that count itself, on that
//!   path; the hint is dropped when `on_feedback` or `configure` runs a
//!   pluglet (the plugin may have changed its mind).
//!
//! A host that follows them sends exactly what a host that ignores them
//! sends, with fewer VM calls. [`RepairHints`] is that state machine: ask
//! [`RepairHints::due`] whenever a `schedule_repair` call would be made, and
//! hand every call's decisions to [`RepairHints::after`].
//!
//! ```
//! use fec_plugin_sdk::abi::{Operation, ScheduleContext};
//! use fec_plugin_sdk::build::pack_assembly;
//! use fec_plugin_sdk::hints::{Due, RepairHints};
//! use fec_plugin_sdk::runtime::{HostOffer, HostView, Plugin};
//! // One repair every 4 sources, and "the next 7 due calls would do the same".
//! let package = pack_assembly(
//!     ".section replace/configure
//!      mov r1, 4\n call 8\n mov r0, 0\n exit
//!      .section replace/schedule_repair
//!      ldxw r2, [r1+8]\n jlt r2, 4, +4\n mov r1, 1\n call 2\n mov r1, 7\n call 9\n mov r0, 0\n exit",
//!     "every-4", "1", 256,
//! ).unwrap();
//! let plugin = Plugin::load(&package, &HostOffer::all()).unwrap();
//! let mut instance = plugin.instantiate();
//! let mut hints = RepairHints::new(&plugin);
//! let view = HostView::default();
//! let configured = instance.configure(&Default::default(), &view).unwrap();
//! hints.after(Operation::Configure, &configured);
//!
//! let (mut pending, mut repairs) = (0, 0);
//! for _source in 0..64 {
//!     pending += 1;
//!     let count = match hints.due(&instance, pending) {
//!         Due::Skip => 0,
//!         Due::Repeat(count) => count,
//!         Due::Call => {
//!             let context = ScheduleContext { sources_since_repair: pending, ..Default::default() };
//!             let decided = instance.schedule_repair(&context, &view).unwrap();
//!             hints.after(Operation::ScheduleRepair, &decided);
//!             decided.repair
//!         }
//!     };
//!     if count > 0 {
//!         repairs += count;
//!         pending = 0;
//!     }
//! }
//! assert_eq!(repairs, 16);
//! // `configure` and one `schedule_repair` call per 32 sources.
//! assert_eq!(instance.calls(), 1 + 2);
//! ```

#![forbid(unsafe_code)]

use crate::abi::Operation;
use crate::runtime::{Decisions, Instance, Plugin};

/// What a host does when a `schedule_repair` call would be due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Nothing: the call would decide nothing (too few pending sources for
    /// the plugin's `fec_repair_after`, no `schedule_repair` pluglet, or a
    /// disabled instance).
    Skip,
    /// Send this many repair symbols without calling: a `fec_repair_repeat`
    /// hint stands for this call (the count may be 0).
    Repeat(u32),
    /// Call `schedule_repair`, then pass its decisions to
    /// [`RepairHints::after`].
    Call,
}

/// The hints one plugin instance gave, and which of them the host follows.
#[derive(Clone, Debug)]
pub struct RepairHints {
    follow_repair_after: bool,
    follow_repeat: bool,
    /// `fec_repair_after`: fewer pending sources than this and the call is skipped.
    repair_after: u32,
    /// `fec_repair_repeat`: due calls still to skip.
    repeats_left: u32,
    /// The repair count each skipped call stands for.
    repeat_count: u32,
    /// The repair path each skipped call stands for (`None`: it chose none).
    repeat_path: Option<u8>,
    runs_schedule: bool,
    /// Whether `configure` / `on_feedback` run a pluglet (and so drop a
    /// repeat hint).
    runs_configure: bool,
    runs_feedback: bool,
}

impl RepairHints {
    /// No hints yet, both followed, for an instance of `plugin`.
    pub fn new(plugin: &Plugin) -> Self {
        RepairHints {
            follow_repair_after: true,
            follow_repeat: true,
            repair_after: 0,
            repeats_left: 0,
            repeat_count: 0,
            repeat_path: None,
            runs_schedule: plugin.runs(Operation::ScheduleRepair),
            runs_configure: plugin.runs(Operation::Configure),
            runs_feedback: plugin.runs(Operation::OnFeedback),
        }
    }

    /// Whether `fec_repair_after` hints are followed (by default they are).
    pub fn follow_repair_after(&mut self, follow: bool) -> &mut Self {
        self.follow_repair_after = follow;
        self
    }

    /// Whether `fec_repair_repeat` hints are followed (by default they are);
    /// a host that does not follow them asks for every due decision.
    pub fn follow_repeat(&mut self, follow: bool) -> &mut Self {
        self.follow_repeat = follow;
        self
    }

    /// The plugin's latest `fec_repair_after` hint (0 if none), followed or not.
    pub fn repair_after(&self) -> u32 {
        self.repair_after
    }

    /// The `fec_repair_path` choice of the call a standing
    /// `fec_repair_repeat` hint repeats (`None` if it chose none): a host
    /// applies it with every [`Due::Repeat`], as the skipped call would have.
    pub fn repeat_path(&self) -> Option<u8> {
        self.repeat_path
    }

    /// A `schedule_repair` call to `instance` with `pending` sources since
    /// the last repair would be made now: what to do instead. A `Repeat`
    /// uses up one repeated call.
    pub fn due(&mut self, instance: &Instance, pending: u32) -> Due {
        if instance.disabled().is_some() || !self.runs_schedule {
            return Due::Skip;
        }
        if self.follow_repair_after && pending < self.repair_after {
            return Due::Skip;
        }
        if self.repeats_left > 0 {
            self.repeats_left -= 1;
            return Due::Repeat(self.repeat_count);
        }
        Due::Call
    }

    /// `operation` ran on the instance and decided `decisions` (the
    /// defaults if it faulted): take the hints it gave, and drop a repeat
    /// hint when `configure` or `on_feedback` ran a pluglet.
    pub fn after(&mut self, operation: Operation, decisions: &Decisions) {
        if let Some(n) = decisions.repair_after {
            self.repair_after = n;
        }
        let drops_repeat = match operation {
            Operation::ScheduleRepair => {
                if self.follow_repeat {
                    self.repeats_left = decisions.repair_repeat.unwrap_or(0);
                    self.repeat_count = decisions.repair;
                    self.repeat_path = decisions.repair_path;
                }
                false
            }
            Operation::Configure => self.runs_configure,
            Operation::OnFeedback => self.runs_feedback,
            _ => false,
        };
        if drops_repeat {
            self.repeats_left = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::pack_assembly;
    use crate::runtime::HostOffer;

    fn plugin(source: &str) -> Plugin {
        let package = pack_assembly(source, "t", "1", 256).unwrap();
        Plugin::load(&package, &HostOffer::all()).unwrap()
    }

    const SCHEDULE: &str = ".section replace/schedule_repair
        mov r1, 2\n call 2\n mov r1, 3\n call 9\n mov r0, 0\n exit";

    fn repeating(hints: &mut RepairHints, instance: &mut Instance) {
        assert_eq!(hints.due(instance, 1), Due::Call);
        let d = instance
            .schedule_repair(&Default::default(), &Default::default())
            .unwrap();
        hints.after(Operation::ScheduleRepair, &d);
    }

    #[test]
    fn a_repeat_hint_stands_for_the_next_due_calls() {
        let plugin = plugin(SCHEDULE);
        let mut instance = plugin.instantiate();
        let mut hints = RepairHints::new(&plugin);
        repeating(&mut hints, &mut instance);
        for _ in 0..3 {
            assert_eq!(hints.due(&instance, 1), Due::Repeat(2));
        }
        assert_eq!(hints.due(&instance, 1), Due::Call);
        // Ignored: every due call is made.
        hints.follow_repeat(false);
        repeating(&mut hints, &mut instance);
        assert_eq!(hints.due(&instance, 1), Due::Call);
    }

    #[test]
    fn feedback_drops_the_repeat_only_when_it_runs_a_pluglet() {
        let without = plugin(SCHEDULE);
        let with = plugin(&format!(
            "{SCHEDULE}\n.section replace/on_feedback\n mov r1, 5\n call 8\n mov r0, 0\n exit"
        ));
        for (plugin, drops) in [(without, false), (with, true)] {
            let mut instance = plugin.instantiate();
            let mut hints = RepairHints::new(&plugin);
            repeating(&mut hints, &mut instance);
            let d = instance
                .on_feedback(&Default::default(), &Default::default())
                .unwrap();
            hints.after(Operation::OnFeedback, &d);
            let expected = if drops { Due::Call } else { Due::Repeat(2) };
            assert_eq!(hints.due(&instance, 5), expected);
            assert_eq!(hints.repair_after(), if drops { 5 } else { 0 });
        }
    }

    #[test]
    fn repair_after_skips_until_enough_sources_are_pending() {
        let plugin = plugin(&format!(
            "{SCHEDULE}\n.section replace/configure\n mov r1, 4\n call 8\n mov r0, 0\n exit"
        ));
        let mut instance = plugin.instantiate();
        let mut hints = RepairHints::new(&plugin);
        let d = instance
            .configure(&Default::default(), &Default::default())
            .unwrap();
        hints.after(Operation::Configure, &d);
        assert_eq!(hints.due(&instance, 3), Due::Skip);
        assert_eq!(hints.due(&instance, 4), Due::Call);
        hints.follow_repair_after(false);
        assert_eq!(hints.due(&instance, 3), Due::Call);
    }

    #[test]
    fn nothing_is_due_without_a_schedule_pluglet_or_once_disabled() {
        let idle = plugin(".section replace/on_feedback\n mov r0, 0\n exit");
        assert_eq!(
            RepairHints::new(&idle).due(&idle.instantiate(), 9),
            Due::Skip
        );
        let faulty = plugin(".section replace/schedule_repair\n mov r0, 77\n exit");
        let mut instance = faulty.instantiate();
        let mut hints = RepairHints::new(&faulty);
        assert_eq!(hints.due(&instance, 1), Due::Call);
        assert!(instance
            .schedule_repair(&Default::default(), &Default::default())
            .is_err());
        assert_eq!(hints.due(&instance, 1), Due::Skip);
    }
}
