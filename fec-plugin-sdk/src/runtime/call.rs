//! The state of one pluglet execution, as its helpers see it.
//!
//! The interpreter hands a [`Call`] to every helper it runs, so a helper
//! knows which operation and anchor it serves, what the host shows, and what
//! was decided so far, with no global or thread-local state: two instances
//! can run on one thread one after the other, or a helper can fault half way,
//! and nothing carries over. A [`Call`] is built fresh for each execution by
//! [`Call::new`], the one place where the decision state starts from zero.

#![forbid(unsafe_code)]

use super::helpers::Helper;
use super::{CodeChoice, Decisions, FaultKind, HostView};
use crate::abi::{Anchor, Operation, ReturnCode, MAX_HELPER_CALLS};

/// The decisions one execution took through helpers, before its return code
/// says whether they count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Choices {
    pub(crate) protect: Option<u32>,
    pub(crate) repair: u32,
    pub(crate) window: Option<u32>,
    pub(crate) code: Option<CodeChoice>,
    pub(crate) repair_after: Option<u32>,
    pub(crate) repair_repeat: Option<u32>,
    pub(crate) repair_path: Option<u8>,
}

impl Choices {
    /// Make these the decisions of `out`, a replace pluglet's result.
    ///
    /// Field by field into the caller's `Decisions` rather than a new one
    /// returned: the helpers' narrow stores would otherwise be read back by
    /// whole-struct copies (stalling store forwarding), once per layer a
    /// `Decisions` is moved through.
    pub(crate) fn apply(&self, return_code: ReturnCode, out: &mut Decisions) {
        out.return_code = Some(return_code);
        out.protect = self.protect;
        out.repair = self.repair;
        out.window = self.window;
        out.code = self.code;
        out.repair_after = self.repair_after;
        out.repair_repeat = self.repair_repeat;
        out.repair_path = self.repair_path;
    }
}

/// One execution's view of the host and record of what it decided.
pub(crate) struct Call<'a> {
    pub(crate) operation: Operation,
    pub(crate) anchor: Anchor,
    /// The packet's flow during `on_source` (what `fec_protect` must name).
    pub(crate) flow: Option<u32>,
    pub(crate) view: &'a HostView,
    pub(crate) choices: Choices,
    /// The operation call's log, shared by its replace pluglet and its
    /// observers (capped at [`super::MAX_LOGS_PER_CALL`] in all).
    pub(crate) logs: &'a mut Vec<String>,
    helper_calls: u32,
}

impl<'a> Call<'a> {
    /// A fresh execution: no decision taken, no helper called yet.
    pub(crate) fn new(
        operation: Operation,
        anchor: Anchor,
        flow: Option<u32>,
        view: &'a HostView,
        logs: &'a mut Vec<String>,
    ) -> Self {
        Call {
            operation,
            anchor,
            flow,
            view,
            choices: Choices::default(),
            logs,
            helper_calls: 0,
        }
    }

    /// Run `helper` for this execution: the rules every helper shares (the
    /// call budget, observers are read-only) are checked here, once.
    pub(crate) fn helper(
        &mut self,
        helper: &Helper,
        region: &[u8],
        args: [u64; 5],
    ) -> Result<u64, FaultKind> {
        // Bounded by the program's call instructions (< 32767): no overflow.
        self.helper_calls += 1;
        if self.helper_calls > MAX_HELPER_CALLS {
            return Err(FaultKind::TooManyHelperCalls);
        }
        if helper.decision && self.anchor == Anchor::Post {
            return Err(FaultKind::Helper {
                helper: helper.name,
                reason: "decision helper called from a post observer (observers are read-only)"
                    .into(),
            });
        }
        (helper.run)(self, region, args).map_err(|reason| FaultKind::Helper {
            helper: helper.name,
            reason,
        })
    }
}
