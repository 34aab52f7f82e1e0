//! The reference runtime: verified pluglets in a sandboxed eBPF interpreter.
//!
//! - **Our own interpreter** (the private `vm` module). rbpf 0.4's JIT
//!   and cranelift engines do not bound-check memory, and its interpreter
//!   panics on `neg` of `i64::MIN` when built with overflow checks (any
//!   downstream debug build), reports faults only as message strings, and
//!   allocates a stack and hashes the helper id on every call. The
//!   interpreter here has one panic-free loop: wrapping arithmetic, defined
//!   division by zero, masked shift amounts (the Linux kernel's semantics,
//!   RFC 9669), and typed faults. A plugin cannot make the host panic or
//!   abort, whatever the profile, overflow checks or `panic = "abort"`.
//! - **One region per instance.** [`Plugin::instantiate`] allocates the
//!   instance's memory (the manifest's `memory_size`), zeroed; it persists
//!   across calls and no other instance can name it. A plugin addresses it
//!   at a fixed virtual address (`r1` on entry) and its 512-byte per-call
//!   stack at another (`r10` on entry is its top); every other address
//!   faults, so whether a wild pointer traps never depends on where the host
//!   allocator put anything, and no host address is ever visible to a plugin.
//! - **Helpers see the caller, not pointers.** Each execution gets its own
//!   call state (which instance, operation and anchor, the host view, the
//!   decisions so far) passed to every helper; helpers check every argument
//!   against it (flows, counts, stat keys, offsets into the region) and
//!   record decisions there. No helper dereferences anything the plugin
//!   passes.
//! - **Bounded.** The verifier rejects backward jumps and local calls, and
//!   the interpreter only ever moves forward, so a call runs at most as many
//!   instructions as the pluglet has (<= 32767); helper calls per execution
//!   are capped as well.
//! - **Cheap when idle.** An operation without pluglets runs no VM and costs
//!   a bit test ([`Plugin::runs`] lets a host skip building the context too).
//! - **Faults are values.** Out-of-bounds accesses, helper argument errors,
//!   unknown return codes and (in an unwinding build, should a bug ever
//!   panic) panics become a [`Fault`]; the instance is then disabled and
//!   every later call returns the same fault at once, so the host falls back
//!   to no FEC and carries on.
//!
//! # Host API (what pquic-host uses)
//!
//! ```
//! use fec_plugin_sdk::abi::{Anchor, Operation, SourceContext};
//! use fec_plugin_sdk::package::{Manifest, Package, PlugletEntry};
//! use fec_plugin_sdk::runtime::{HostOffer, HostView, Plugin};
//!
//! // r6 = r1; r1 = ctx.flow (offset 16); call fec_protect; r0 = 0; exit
//! let code = fec_plugin_sdk::asm::assemble(
//!     "ldxw r1, [r1+16]\n call 1\n mov r0, 0\n exit",
//! ).unwrap();
//! let package = Package::new(Manifest {
//!     name: "protect-all".into(),
//!     version: "1.0.0".into(),
//!     memory_size: 256,
//!     helpers: vec![1],
//!     pluglets: vec![PlugletEntry {
//!         name: "replace/on_source".into(),
//!         operation: Operation::OnSource,
//!         anchor: Anchor::Replace,
//!         code,
//!     }],
//! }).unwrap();
//! // Once per package (verifies every pluglet); shareable across threads.
//! let plugin = Plugin::load(&package, &HostOffer::all()).unwrap();
//! // Once per connection.
//! let mut instance = plugin.instantiate();
//! let view = HostView::default();
//! let ctx = SourceContext { now_us: 0, seq: 1, flow: 7, len: 1200 };
//! let decisions = instance.on_source(&ctx, &view).unwrap();
//! assert_eq!(decisions.protect, Some(7));
//! ```
//!
//! # Layout
//!
//! This file holds the public types; `instance` the lifecycle ([`Plugin`],
//! [`Instance`]); `call` the per-execution state helpers see; `helpers` the
//! eleven helpers; `vm` the interpreter and its memory model, with the
//! instruction semantics written down.

#![forbid(unsafe_code)]

mod call;
mod helpers;
mod instance;
mod vm;

pub use instance::{Instance, Plugin};

use crate::abi::{
    Anchor, HelperId, Operation, PathStatKey, PathState, ReturnCode, Scheme, SourceContext,
    StatKey, MAX_HELPER_CALLS, MAX_PATHS,
};
use crate::package::Package;
use crate::verify::VerifyError;

/// Most `fec_log` messages kept per call (later ones are dropped, not faults).
pub const MAX_LOGS_PER_CALL: usize = 8;

/// The helpers a host registers. A pluglet that calls anything else is
/// rejected at load time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostOffer {
    /// Offered helper ids.
    pub helpers: Vec<u32>,
}

impl HostOffer {
    /// Every helper of [`HelperId`].
    pub fn all() -> Self {
        HostOffer {
            helpers: HelperId::ALL.iter().map(|h| *h as u32).collect(),
        }
    }
}

/// Pipeline counters a host exposes to `fec_stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Source symbols sent.
    pub sources_sent: u64,
    /// Repair symbols sent.
    pub repair_sent: u64,
    /// Symbols received.
    pub received: u64,
    /// Packets recovered.
    pub recovered: u64,
    /// Packets lost for good.
    pub unrecoverable: u64,
    /// Symbols rejected as malformed.
    pub rejected: u64,
    /// Source symbols in the coding window now.
    pub window_len: u64,
}

impl Stats {
    /// The counter for `key`.
    pub fn value(&self, key: StatKey) -> u64 {
        match key {
            StatKey::SourcesSent => self.sources_sent,
            StatKey::RepairSent => self.repair_sent,
            StatKey::Received => self.received,
            StatKey::Recovered => self.recovered,
            StatKey::Unrecoverable => self.unrecoverable,
            StatKey::Rejected => self.rejected,
            StatKey::WindowLen => self.window_len,
        }
    }
}

/// One path as `fec_path_stat` reads it (every [`PathStatKey`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathStats {
    /// Where the path stands.
    pub state: PathState,
    /// Loss rate of this end's datagrams on it, per mille.
    pub loss_permille: u64,
    /// Smoothed round-trip time in microseconds, 0 while unknown.
    pub rtt_us: u64,
    /// Datagrams this end sent on it.
    pub sent_datagrams: u64,
    /// Bytes of those.
    pub sent_bytes: u64,
    /// Source packets among them.
    pub source_packets: u64,
    /// Repair packets among them.
    pub repair_packets: u64,
    /// Datagrams from the peer that arrived on it.
    pub received_datagrams: u64,
    /// Bytes of those.
    pub received_bytes: u64,
}

impl PathStats {
    /// The value for `key`.
    pub fn value(&self, key: PathStatKey) -> u64 {
        match key {
            PathStatKey::State => self.state as u64,
            PathStatKey::LossPermille => self.loss_permille,
            PathStatKey::RttUs => self.rtt_us,
            PathStatKey::SentDatagrams => self.sent_datagrams,
            PathStatKey::SentBytes => self.sent_bytes,
            PathStatKey::SourcePackets => self.source_packets,
            PathStatKey::RepairPackets => self.repair_packets,
            PathStatKey::ReceivedDatagrams => self.received_datagrams,
            PathStatKey::ReceivedBytes => self.received_bytes,
        }
    }
}

/// What the host shows the plugin during one call (time is a parameter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostView {
    /// Host clock in microseconds (`fec_now_us`).
    pub now_us: u64,
    /// Counters (`fec_stat`).
    pub stats: Stats,
    /// Bit `1 << scheme` for every [`Scheme`] the host can run (`fec_set_code`
    /// rejects others). 0 means "all".
    pub schemes_offered: u32,
    /// Each path's values (`fec_path_stat`), by path id. A host that knows
    /// no paths leaves them all [`PathState::Unused`] (the default); a
    /// single-path host shows its one path as path 0.
    pub paths: [PathStats; MAX_PATHS as usize],
}

/// A code choice made with `fec_set_code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeChoice {
    /// The scheme.
    pub scheme: Scheme,
    /// Source symbols per block / window.
    pub source_symbols: u32,
    /// Repair symbols per block (or per `source_symbols` sources).
    pub repair_symbols: u32,
}

/// The decisions one operation call produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decisions {
    /// What the `replace` pluglet returned; `None` when the package has none
    /// for this operation (then the host applies its default policy).
    pub return_code: Option<ReturnCode>,
    /// `fec_protect(flow)`: protect this source packet.
    pub protect: Option<u32>,
    /// `fec_emit_repair`: repair symbols to send now (sum over calls).
    pub repair: u32,
    /// `fec_window_set`: new window / block size.
    pub window: Option<u32>,
    /// `fec_set_code`: new code and rate.
    pub code: Option<CodeChoice>,
    /// `fec_repair_after`: `schedule_repair` may be skipped while fewer than
    /// this many sources were protected since the last repair.
    pub repair_after: Option<u32>,
    /// `fec_repair_repeat`: the next this-many `schedule_repair` calls would
    /// decide `repair` again; the host may skip them and send `repair`
    /// symbols itself whenever one is due.
    pub repair_repeat: Option<u32>,
    /// `fec_repair_path`: the path repair symbols take from now on (`None`:
    /// keep the last choice).
    pub repair_path: Option<u8>,
    /// `fec_log` messages (at most [`MAX_LOGS_PER_CALL`]).
    pub logs: Vec<String>,
}

impl Decisions {
    /// True when the host should apply its own default policy for this call
    /// (no replace pluglet, or it returned `FEC_RC_DEFAULT`).
    pub fn use_default(&self) -> bool {
        self.return_code != Some(ReturnCode::Ok)
    }
}

/// What went wrong inside a pluglet.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FaultKind {
    /// A load or store outside the instance region and the stack.
    #[error("out-of-bounds {access} of {size} bytes at instruction {instruction}")]
    MemoryAccess {
        /// "load" or "store".
        access: String,
        /// Instruction index.
        instruction: usize,
        /// Access width.
        size: usize,
    },
    /// The interpreter met an instruction it cannot execute. The verifier
    /// rejects every such program, so this names a bug, never a plugin.
    #[error("VM error: {0}")]
    Vm(String),
    /// A helper refused its arguments or its calling context.
    #[error("helper {helper}: {reason}")]
    Helper {
        /// Helper name.
        helper: &'static str,
        /// Why.
        reason: String,
    },
    /// More than [`MAX_HELPER_CALLS`] helper calls in one execution.
    #[error("more than {MAX_HELPER_CALLS} helper calls in one execution")]
    TooManyHelperCalls,
    /// `r0` is not a [`ReturnCode`].
    #[error("unknown return code {0}")]
    BadReturnCode(u64),
    /// The plugin returned `FEC_RC_ERROR`.
    #[error("plugin returned FEC_RC_ERROR")]
    PluginError,
    /// A panic inside the VM, caught. Nothing in the interpreter or the
    /// helpers panics on any input (a test crate built with overflow checks
    /// proves it), so this names a bug; in a `panic = "abort"` build there is
    /// nothing to catch, which is why no plugin may reach a panic at all.
    #[error("panic inside the VM: {0}")]
    Panic(String),
}

/// A fault, with where it happened. The instance that raised it is disabled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("plugin {plugin:?} disabled: pluglet {pluglet:?} ({} {}): {kind}", anchor.name(), operation.name())]
pub struct Fault {
    /// Plugin name.
    pub plugin: String,
    /// Pluglet name.
    pub pluglet: String,
    /// Operation being run.
    pub operation: Operation,
    /// Anchor of the pluglet.
    pub anchor: Anchor,
    /// What went wrong.
    pub kind: FaultKind,
}

/// Why a package could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A pluglet failed static verification.
    #[error("pluglet {pluglet:?}: {error}")]
    Verify {
        /// Pluglet name.
        pluglet: String,
        /// The verifier's reason.
        error: VerifyError,
    },
    /// The manifest breaks a structural rule (possible only if it was
    /// changed after [`Package::new`] or [`Package::parse`] checked it: its
    /// fields are public).
    #[error("manifest: {0}")]
    Manifest(crate::package::PackageError),
    /// The interpreter could not prepare the program: the host offers a
    /// helper id that has no implementation in this runtime.
    #[error("pluglet {pluglet:?}: the interpreter refused it: {message}")]
    Vm {
        /// Pluglet name.
        pluglet: String,
        /// Why.
        message: String,
    },
}

/// Verify and run one raw program once on a fresh region, as `replace` for
/// `on_source`. For quick experiments, the CLI and tests.
pub fn run_raw(code: &[u8], memory_size: u32) -> Result<Decisions, String> {
    let package = Package::new(crate::package::Manifest {
        name: "raw".into(),
        version: "0".into(),
        memory_size,
        helpers: HostOffer::all().helpers,
        pluglets: vec![crate::package::PlugletEntry {
            name: "raw".into(),
            operation: Operation::OnSource,
            anchor: Anchor::Replace,
            code: code.to_vec(),
        }],
    })
    .map_err(|e| e.to_string())?;
    let plugin = Plugin::load(&package, &HostOffer::all()).map_err(|e| e.to_string())?;
    let mut instance = plugin.instantiate();
    instance
        .on_source(&SourceContext::default(), &HostView::default())
        .map_err(|e| e.to_string())
}
