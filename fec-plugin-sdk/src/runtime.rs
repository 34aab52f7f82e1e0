//! The reference runtime: verified pluglets in rbpf's interpreter, sandboxed.
//!
//! - **Interpreter only.** rbpf's JIT and cranelift engines do not bound-check
//!   memory, so this module never calls them.
//! - **One region per instance.** [`Plugin::instantiate`] allocates the
//!   instance's memory (the manifest's `memory_size`), zeroed; it persists
//!   across calls and no other instance can name it. It is the VM's `mem`
//!   argument, so every plugin load and store goes through the interpreter's
//!   bounds check (region, the per-call stack, nothing else). rbpf's
//!   `register_allowed_memory` (which checks only start addresses) is never
//!   used. rbpf accepts an address in either range whatever register it came
//!   from, so a plugin can reach its per-call stack by pointer arithmetic on
//!   `r1`; that stack is its own zeroed scratch, so nothing leaks, but whether
//!   a wild pointer traps can depend on where the allocator put the stack.
//! - **Helpers see the caller, not pointers.** rbpf helpers are plain
//!   `fn(u64, u64, u64, u64, u64) -> u64`. Before each execution the runtime
//!   moves a per-call state (which instance, operation and anchor, the host
//!   view when the pluglet calls a helper that reads it, the decisions so
//!   far) into a thread-local; helpers check every
//!   argument against it (flows, counts, stat keys, offsets into the region)
//!   and record decisions there. No helper dereferences anything the plugin
//!   passes.
//! - **Bounded.** The verifier rejects backward jumps and local calls, so a
//!   call runs at most as many instructions as the pluglet has (<= 32767);
//!   helper calls per execution are capped as well.
//! - **Cheap when idle.** An operation without pluglets runs no VM and costs
//!   a bit test ([`Plugin::runs`] lets a host skip building the context too).
//! - **Faults are values.** VM errors, helper argument errors, unknown return
//!   codes and panics (caught) become a [`Fault`]; the instance is then
//!   disabled and every later call returns the same fault at once, so the
//!   host falls back to no FEC and carries on.
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

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::abi::{
    Anchor, ConfigureContext, Context, FeedbackContext, HelperId, LossContext, Operation,
    RecoveredContext, ReturnCode, ScheduleContext, Scheme, SourceContext, StatKey,
    CONTEXT_AREA_SIZE, MAX_HELPER_CALLS, MAX_LOG_LEN, MAX_REPAIR_PER_CALL, MAX_WINDOW,
};
use crate::package::Package;
use crate::verify::{self, VerifyError};

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
    /// Any other interpreter error (message without host addresses).
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
    /// A panic inside the VM, caught.
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
    /// rbpf refused the program (should not happen after our verifier).
    #[error("pluglet {pluglet:?}: rbpf refused it: {message}")]
    Vm {
        /// Pluglet name.
        pluglet: String,
        /// rbpf's message.
        message: String,
    },
}

/// One loaded pluglet: the program and an interpreter VM over it.
struct Engine {
    // Declared before `code` so it is dropped first: it borrows `code`.
    vm: rbpf::EbpfVmRaw<'static>,
    // An `Arc`, not a `Box`: moving the owner must not assert uniqueness
    // over the bytes the VM borrows.
    code: Arc<[u8]>,
}

// SAFETY: the VM holds a borrowed program, a map of plain `fn` helpers, an
// allowed-memory set that we leave empty, and a stack verifier whose optional
// `Box<dyn Any>` we never set (it is `None`); it has no JIT state because we
// never compile. Nothing in it is tied to a thread, and `execute_program`
// takes `&self` and only reads those fields, so sharing and sending it are
// sound. The per-call state lives in a thread-local, not in the VM.
unsafe impl Send for Engine {}
// SAFETY: see the `Send` impl above; concurrent `execute_program` calls only
// read the VM and each uses its own memory region and thread-local state.
unsafe impl Sync for Engine {}

impl Engine {
    fn new(code: &[u8], helpers: &[u32]) -> Result<Self, String> {
        let code: Arc<[u8]> = code.into();
        // SAFETY: the slice points into the shared, never mutated heap
        // allocation of `code`, whose address does not change when the
        // `Engine` moves and which lives as long as `vm` (dropped first, by
        // field order). The `'static` is never observable outside this struct.
        let program: &'static [u8] =
            unsafe { std::slice::from_raw_parts(code.as_ptr(), code.len()) };
        let mut vm = rbpf::EbpfVmRaw::new(Some(program)).map_err(|e| e.to_string())?;
        for id in helpers {
            if let Some(f) = helper_fn(*id) {
                vm.register_helper(*id, f).map_err(|e| e.to_string())?;
            }
        }
        Ok(Engine { vm, code })
    }

    fn code(&self) -> &[u8] {
        &self.code
    }
}

struct Pluglet {
    name: String,
    operation: Operation,
    anchor: Anchor,
    /// Whether it calls a helper that reads the [`HostView`] (`fec_stat`,
    /// `fec_now_us`, `fec_set_code`); only then is the view copied into the
    /// call state.
    reads_view: bool,
    engine: Engine,
}

/// Whether any helper in `called` reads the host view.
fn reads_view(called: &std::collections::BTreeSet<u32>) -> bool {
    [HelperId::Stat, HelperId::NowUs, HelperId::SetCode]
        .iter()
        .any(|h| called.contains(&(*h as u32)))
}

struct PluginInner {
    /// Indices into `pluglets` per operation id (sorted by operation, then
    /// replace before post), so a call finds its pluglets without searching.
    by_operation: [std::ops::Range<usize>; 7],
    name: String,
    version: String,
    digest: [u8; 32],
    memory_size: usize,
    pluglets: Vec<Pluglet>,
}

/// A verified, loaded package. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.inner.name)
            .field("version", &self.inner.version)
            .field("digest", &hex::encode(self.inner.digest))
            .field("pluglets", &self.inner.pluglets.len())
            .finish()
    }
}

impl Plugin {
    /// Verify every pluglet of `package` against the helpers it declares and
    /// the host offers, and prepare an interpreter for each. Does not judge
    /// signatures: do that first with [`crate::package::TrustStore::check`].
    pub fn load(package: &Package, offer: &HostOffer) -> Result<Self, LoadError> {
        let m = &package.manifest;
        // The region must hold the context area, or `execute` would index
        // past it outside the VM's unwind guard.
        crate::package::check_manifest(m).map_err(LoadError::Manifest)?;
        let mut pluglets = Vec::with_capacity(m.pluglets.len());
        for p in &m.pluglets {
            let info = verify::verify(&p.code, &m.helpers, &offer.helpers).map_err(|error| {
                LoadError::Verify {
                    pluglet: p.name.clone(),
                    error,
                }
            })?;
            let engine = Engine::new(&p.code, &offer.helpers).map_err(|message| LoadError::Vm {
                pluglet: p.name.clone(),
                message,
            })?;
            pluglets.push(Pluglet {
                name: p.name.clone(),
                operation: p.operation,
                anchor: p.anchor,
                reads_view: reads_view(&info.helpers_called),
                engine,
            });
        }
        // Grouped by operation; replace first, then observers in package order.
        pluglets.sort_by_key(|p| (p.operation, p.anchor));
        let by_operation = std::array::from_fn(|id| {
            let start = pluglets
                .iter()
                .position(|p| p.operation as usize == id)
                .unwrap_or(0);
            let count = pluglets
                .iter()
                .filter(|p| p.operation as usize == id)
                .count();
            start..start + count
        });
        Ok(Plugin {
            inner: Arc::new(PluginInner {
                by_operation,
                name: m.name.clone(),
                version: m.version.clone(),
                digest: package.digest(),
                memory_size: m.memory_size as usize,
                pluglets,
            }),
        })
    }

    /// Plugin name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Plugin version.
    pub fn version(&self) -> &str {
        &self.inner.version
    }

    /// SHA-256 of the package body.
    pub fn digest(&self) -> [u8; 32] {
        self.inner.digest
    }

    /// Whether a pluglet is attached to `operation` with `anchor`.
    pub fn implements(&self, operation: Operation, anchor: Anchor) -> bool {
        self.inner
            .pluglets
            .iter()
            .any(|p| p.operation == operation && p.anchor == anchor)
    }

    /// The bytecode of each pluglet: `(name, operation, anchor, code)`.
    pub fn pluglets(&self) -> impl Iterator<Item = (&str, Operation, Anchor, &[u8])> {
        self.inner
            .pluglets
            .iter()
            .map(|p| (p.name.as_str(), p.operation, p.anchor, p.engine.code()))
    }

    /// A fresh instance (one per connection): its own zeroed memory region.
    pub fn instantiate(&self) -> Instance {
        Instance {
            plugin: self.clone(),
            memory: vec![0u8; self.inner.memory_size].into_boxed_slice(),
            disabled: None,
            calls: 0,
            runs: self.operations_run(),
        }
    }

    /// Whether any pluglet (replace or observer) is attached to `operation`.
    /// When none is, calling the operation runs no VM and returns the host's
    /// default, so a host may skip building its context altogether.
    pub fn runs(&self, operation: Operation) -> bool {
        !self.inner.by_operation[operation as usize].is_empty()
    }

    /// Bit `1 << operation` for every operation with at least one pluglet.
    fn operations_run(&self) -> u8 {
        Operation::ALL
            .iter()
            .filter(|op| self.runs(**op))
            .fold(0, |bits, op| bits | 1 << *op as u8)
    }
}

/// One plugin instance: a memory region and a status. `Send`.
pub struct Instance {
    plugin: Plugin,
    memory: Box<[u8]>,
    disabled: Option<Fault>,
    calls: u64,
    /// [`Plugin::runs`] for every operation as bits `1 << operation`, kept
    /// here so a call with nothing to run touches only the instance (the host
    /// makes such calls for every packet; the plugin's tables may be out of
    /// cache by then).
    runs: u8,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("plugin", &self.plugin.inner.name)
            .field("memory", &self.memory.len())
            .field("disabled", &self.disabled)
            .field("calls", &self.calls)
            .finish()
    }
}

/// Per-execution state the helpers see through the thread-local.
struct CallState {
    /// Set only while a pluglet executes on this thread.
    active: bool,
    operation: Operation,
    anchor: Anchor,
    flow: Option<u32>,
    view: HostView,
    memory_len: usize,
    helper_calls: u32,
    decisions: Decisions,
    pending_logs: Vec<(usize, usize)>,
    fault: Option<FaultKind>,
}

const IDLE: CallState = CallState {
    active: false,
    operation: Operation::Configure,
    anchor: Anchor::Replace,
    flow: None,
    view: HostView {
        now_us: 0,
        stats: Stats {
            sources_sent: 0,
            repair_sent: 0,
            received: 0,
            recovered: 0,
            unrecoverable: 0,
            rejected: 0,
            window_len: 0,
        },
        schemes_offered: 0,
    },
    memory_len: 0,
    helper_calls: 0,
    decisions: Decisions {
        return_code: None,
        protect: None,
        repair: 0,
        window: None,
        code: None,
        repair_after: None,
        repair_repeat: None,
        logs: Vec::new(),
    },
    pending_logs: Vec::new(),
    fault: None,
};

thread_local! {
    // The state lives here for the thread's lifetime and is reset per call,
    // so starting and finishing a call moves no large values around.
    static CURRENT: RefCell<CallState> = const { RefCell::new(IDLE) };
}

impl Instance {
    /// The plugin this instance runs.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// The fault that disabled this instance, if any.
    pub fn disabled(&self) -> Option<&Fault> {
        self.disabled.as_ref()
    }

    /// Pluglet executions so far.
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// The instance's memory region (for inspection and tests).
    pub fn memory(&self) -> &[u8] {
        &self.memory
    }

    /// `configure`.
    pub fn configure(
        &mut self,
        ctx: &ConfigureContext,
        view: &HostView,
    ) -> Result<Decisions, Fault> {
        self.invoke(ctx, view)
    }

    /// `on_source`.
    pub fn on_source(&mut self, ctx: &SourceContext, view: &HostView) -> Result<Decisions, Fault> {
        self.invoke(ctx, view)
    }

    /// `schedule_repair`.
    pub fn schedule_repair(
        &mut self,
        ctx: &ScheduleContext,
        view: &HostView,
    ) -> Result<Decisions, Fault> {
        self.invoke(ctx, view)
    }

    /// `on_feedback`.
    pub fn on_feedback(
        &mut self,
        ctx: &FeedbackContext,
        view: &HostView,
    ) -> Result<Decisions, Fault> {
        self.invoke(ctx, view)
    }

    /// `on_recovered` (observers only).
    pub fn on_recovered(
        &mut self,
        ctx: &RecoveredContext,
        view: &HostView,
    ) -> Result<Decisions, Fault> {
        self.invoke(ctx, view)
    }

    /// `on_loss` (observers only).
    pub fn on_loss(&mut self, ctx: &LossContext, view: &HostView) -> Result<Decisions, Fault> {
        self.invoke(ctx, view)
    }

    /// Run the pluglets of `C::OPERATION`: the replace pluglet (if any) takes
    /// the decisions, then every observer runs with a fresh copy of the same
    /// context. On a fault the instance is disabled and stays so.
    pub fn invoke<C: Context>(&mut self, ctx: &C, view: &HostView) -> Result<Decisions, Fault> {
        if let Some(fault) = &self.disabled {
            return Err(fault.clone());
        }
        if self.runs & (1 << C::OPERATION as u8) == 0 {
            // The host's default policy applies; no VM runs.
            return Ok(Decisions::default());
        }
        self.run_pluglets(ctx, view)
    }

    fn run_pluglets<C: Context>(&mut self, ctx: &C, view: &HostView) -> Result<Decisions, Fault> {
        let inner = &*self.plugin.inner;
        let pluglets = &inner.pluglets[inner.by_operation[C::OPERATION as usize].clone()];
        let mut decisions = Decisions::default();
        for pluglet in pluglets {
            self.calls += 1;
            if let Err(kind) = execute(&mut self.memory, pluglet, ctx, view, &mut decisions) {
                let fault = Fault {
                    plugin: inner.name.clone(),
                    pluglet: pluglet.name.clone(),
                    operation: pluglet.operation,
                    anchor: pluglet.anchor,
                    kind,
                };
                self.disabled = Some(fault.clone());
                return Err(fault);
            }
        }
        Ok(decisions)
    }
}

/// One pluglet execution. A replace pluglet sets every decision of `out`
/// (`return_code` included); an observer only adds its logs.
///
/// `out` is filled in place, field by field, rather than returned: the
/// helpers' narrow stores would otherwise be read back by whole-struct copies
/// (stalling store forwarding), once per layer a `Decisions` is moved through.
fn execute<C: Context>(
    memory: &mut [u8],
    pluglet: &Pluglet,
    ctx: &C,
    view: &HostView,
    out: &mut Decisions,
) -> Result<(), FaultKind> {
    // Copy in: observers get the pristine context even if the replace
    // pluglet scribbled over the context area, and nothing is copied back.
    memory[..CONTEXT_AREA_SIZE].fill(0);
    ctx.write_to(&mut memory[..CONTEXT_AREA_SIZE]);
    let flow = source_flow::<C>(memory);

    CURRENT.with(|c| {
        let mut s = c.borrow_mut();
        s.active = true;
        s.operation = C::OPERATION;
        s.anchor = pluglet.anchor;
        s.flow = flow;
        if pluglet.reads_view {
            s.view = *view;
        }
        s.memory_len = memory.len();
        s.helper_calls = 0;
        s.decisions.protect = None;
        s.decisions.repair = 0;
        s.decisions.window = None;
        s.decisions.code = None;
        s.decisions.repair_after = None;
        s.decisions.repair_repeat = None;
        s.pending_logs.clear();
        s.fault = None;
    });
    let region_ptr = memory.as_mut_ptr();
    let region_len = memory.len();
    // The unwind stops here, so the call state is always finished below,
    // panic or not.
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `region_ptr..+region_len` is this instance's live, owned
        // region and `&mut self` guarantees no other reference to it exists
        // for the duration of the call. rbpf's `EbpfVmRaw<'static>` demands
        // a `&'static mut`, but it only uses the slice during
        // `execute_program` and keeps no copy of it after returning (it takes
        // `&self` and has no interior mutability, so it has nowhere to keep
        // one), so the extended lifetime is never exercised.
        let region: &'static mut [u8] =
            unsafe { std::slice::from_raw_parts_mut(region_ptr, region_len) };
        pluglet.engine.vm.execute_program(region)
    }));

    // One visit to the thread-local finishes the call: idle again, then the
    // first failure wins (panic, VM error, helper refusal, return code).
    CURRENT.with(|c| {
        let mut s = c.borrow_mut();
        s.active = false;
        let raw = match outcome {
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                return Err(FaultKind::Panic(message));
            }
            Ok(Err(e)) => return Err(vm_fault(&e.to_string())),
            Ok(Ok(raw)) => raw,
        };
        if let Some(kind) = s.fault.take() {
            return Err(kind);
        }
        let code = ReturnCode::from_raw(raw).ok_or(FaultKind::BadReturnCode(raw))?;
        if code == ReturnCode::Error {
            return Err(FaultKind::PluginError);
        }
        if pluglet.anchor == Anchor::Replace {
            let taken = &s.decisions;
            out.return_code = Some(code);
            out.protect = taken.protect;
            out.repair = taken.repair;
            out.window = taken.window;
            out.code = taken.code;
            out.repair_after = taken.repair_after;
            out.repair_repeat = taken.repair_repeat;
        }
        for &(offset, len) in &s.pending_logs {
            if out.logs.len() == MAX_LOGS_PER_CALL {
                break;
            }
            let bytes = &memory[offset..offset + len];
            out.logs.push(String::from_utf8_lossy(bytes).into_owned());
        }
        Ok(())
    })
}

/// The packet's flow during `on_source`, read from the context just written
/// into `memory`, so the context is serialised once per pluglet, not twice.
fn source_flow<C: Context>(memory: &[u8]) -> Option<u32> {
    if C::OPERATION != Operation::OnSource {
        return None;
    }
    let at = core::mem::offset_of!(SourceContext, flow);
    Some(u32::from_le_bytes(
        memory[at..at + 4].try_into().expect("4 bytes"),
    ))
}

/// Turn an rbpf error message into a fault without the host addresses it carries.
fn vm_fault(message: &str) -> FaultKind {
    // rbpf: "Error: out of bounds memory store (insn #5), addr 0x..., size 8\n..."
    if let Some(rest) = message.strip_prefix("Error: out of bounds memory ") {
        let access = rest
            .split_whitespace()
            .next()
            .unwrap_or("access")
            .to_string();
        let number_after = |tag: &str| -> Option<usize> {
            let start = rest.find(tag)? + tag.len();
            let digits: String = rest[start..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        };
        // rbpf reports the index after the faulting instruction.
        let instruction = number_after("insn #").map_or(0, |n| n.saturating_sub(1));
        let size = number_after("size ").unwrap_or(0);
        return FaultKind::MemoryAccess {
            access,
            instruction,
            size,
        };
    }
    FaultKind::Vm(message.lines().next().unwrap_or(message).to_string())
}

// ---- helpers -------------------------------------------------------------

fn helper_fn(id: u32) -> Option<rbpf::ebpf::Helper> {
    let f: rbpf::ebpf::Helper = match HelperId::from_id(id)? {
        HelperId::Protect => helper_protect,
        HelperId::EmitRepair => helper_emit_repair,
        HelperId::WindowSet => helper_window_set,
        HelperId::Stat => helper_stat,
        HelperId::NowUs => helper_now_us,
        HelperId::Log => helper_log,
        HelperId::SetCode => helper_set_code,
        HelperId::RepairAfter => helper_repair_after,
        HelperId::RepairRepeat => helper_repair_repeat,
    };
    Some(f)
}

/// Run a helper body against the calling instance's state. A refused call
/// records the fault (the execution's result is then discarded) and returns 0.
fn with_call(id: HelperId, body: impl FnOnce(&mut CallState) -> Result<u64, String>) -> u64 {
    CURRENT
        .try_with(|c| {
            let Ok(mut slot) = c.try_borrow_mut() else {
                return 0;
            };
            let state = &mut *slot;
            if !state.active || state.fault.is_some() {
                return 0;
            }
            state.helper_calls += 1;
            if state.helper_calls > MAX_HELPER_CALLS {
                state.fault = Some(FaultKind::TooManyHelperCalls);
                return 0;
            }
            if id.is_decision() && state.anchor == Anchor::Post {
                state.fault = Some(FaultKind::Helper {
                    helper: id.name(),
                    reason: "decision helper called from a post observer (observers are read-only)"
                        .into(),
                });
                return 0;
            }
            match body(state) {
                Ok(v) => v,
                Err(reason) => {
                    state.fault = Some(FaultKind::Helper {
                        helper: id.name(),
                        reason,
                    });
                    0
                }
            }
        })
        .unwrap_or(0)
}

fn helper_protect(flow: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    with_call(HelperId::Protect, |s| {
        let Some(expected) = s.flow else {
            return Err(format!(
                "only valid in on_source, called in {}",
                s.operation.name()
            ));
        };
        if flow != u64::from(expected) {
            return Err(format!(
                "flow {flow} is not this packet's flow ({expected})"
            ));
        }
        s.decisions.protect = Some(expected);
        Ok(0)
    })
}

fn helper_emit_repair(count: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    with_call(HelperId::EmitRepair, |s| {
        if !matches!(s.operation, Operation::OnSource | Operation::ScheduleRepair) {
            return Err(format!(
                "only valid in on_source and schedule_repair, called in {}",
                s.operation.name()
            ));
        }
        // `count` is any u64 the plugin chose: a plain `+` would overflow.
        let total = u64::from(s.decisions.repair).saturating_add(count);
        if count == 0 || total > u64::from(MAX_REPAIR_PER_CALL) {
            return Err(format!(
                "count {count} out of range (1..={MAX_REPAIR_PER_CALL} per call, {} already)",
                s.decisions.repair
            ));
        }
        s.decisions.repair = total as u32;
        Ok(count)
    })
}

fn helper_window_set(n: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    with_call(HelperId::WindowSet, |s| {
        if n == 0 || n > u64::from(MAX_WINDOW) {
            return Err(format!("window {n} out of range (1..={MAX_WINDOW})"));
        }
        s.decisions.window = Some(n as u32);
        Ok(0)
    })
}

fn helper_stat(key: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    with_call(HelperId::Stat, |s| {
        let key = StatKey::from_id(key).ok_or_else(|| format!("unknown stat key {key}"))?;
        Ok(s.view.stats.value(key))
    })
}

fn helper_now_us(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    with_call(HelperId::NowUs, |s| Ok(s.view.now_us))
}

fn helper_log(offset: u64, len: u64, _: u64, _: u64, _: u64) -> u64 {
    with_call(HelperId::Log, |s| {
        if len == 0 || len > u64::from(MAX_LOG_LEN) {
            return Err(format!("length {len} out of range (1..={MAX_LOG_LEN})"));
        }
        let end = offset
            .checked_add(len)
            .filter(|e| *e <= s.memory_len as u64);
        if end.is_none() {
            return Err(format!(
                "bytes {offset}..+{len} are outside the instance region ({} bytes); pass an offset into the region, not a pointer",
                s.memory_len
            ));
        }
        // The bytes are copied after the execution returns, so the helper never
        // touches the region while the VM holds it.
        if s.pending_logs.len() < MAX_LOGS_PER_CALL {
            s.pending_logs.push((offset as usize, len as usize));
        }
        Ok(0)
    })
}

fn helper_set_code(scheme: u64, source: u64, repair: u64, _: u64, _: u64) -> u64 {
    with_call(HelperId::SetCode, |s| {
        let scheme = Scheme::from_id(scheme).ok_or_else(|| format!("unknown scheme {scheme}"))?;
        let offered = s.view.schemes_offered;
        if offered != 0 && offered & (1 << scheme as u32) == 0 {
            return Err(format!("scheme {scheme:?} is not offered by this host"));
        }
        if scheme != Scheme::None {
            if source == 0 || source > u64::from(MAX_WINDOW) {
                return Err(format!(
                    "source_symbols {source} out of range (1..={MAX_WINDOW})"
                ));
            }
            if repair > u64::from(MAX_REPAIR_PER_CALL) {
                return Err(format!(
                    "repair_symbols {repair} out of range (0..={MAX_REPAIR_PER_CALL})"
                ));
            }
            if scheme == Scheme::ReedSolomon && source + repair > 256 {
                return Err(format!(
                    "Reed-Solomon needs source + repair <= 256, got {}",
                    source + repair
                ));
            }
        }
        s.decisions.code = Some(CodeChoice {
            scheme,
            source_symbols: source as u32,
            repair_symbols: repair as u32,
        });
        Ok(0)
    })
}

fn helper_repair_after(n: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    with_call(HelperId::RepairAfter, |s| {
        if !matches!(
            s.operation,
            Operation::Configure | Operation::OnFeedback | Operation::ScheduleRepair
        ) {
            return Err(format!(
                "only valid in configure, on_feedback and schedule_repair, called in {}",
                s.operation.name()
            ));
        }
        if n == 0 || n > u64::from(MAX_WINDOW) {
            return Err(format!("{n} sources out of range (1..={MAX_WINDOW})"));
        }
        s.decisions.repair_after = Some(n as u32);
        Ok(0)
    })
}

fn helper_repair_repeat(k: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    with_call(HelperId::RepairRepeat, |s| {
        if s.operation != Operation::ScheduleRepair {
            return Err(format!(
                "only valid in schedule_repair, called in {}",
                s.operation.name()
            ));
        }
        if k == 0 || k > u64::from(MAX_WINDOW) {
            return Err(format!("{k} calls out of range (1..={MAX_WINDOW})"));
        }
        s.decisions.repair_repeat = Some(k as u32);
        Ok(0)
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_is_send_sync_and_instance_is_send() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<Plugin>();
        send::<Instance>();
    }

    /// No production helper can panic, so this one exists only here; it is
    /// registered on an engine built by hand, bypassing the verifier (which
    /// would refuse an unknown helper id) and leaving production code as is.
    fn panicking_helper(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
        panic!("helper blew up on purpose");
    }

    const PANICKING_HELPER: u32 = 0x7fff;

    fn plugin_with_panicking_helper() -> Plugin {
        let code =
            crate::asm::assemble(&format!("call {PANICKING_HELPER}\nmov r0, 0\nexit")).unwrap();
        let mut engine = Engine::new(&code, &[]).unwrap();
        engine
            .vm
            .register_helper(PANICKING_HELPER, panicking_helper)
            .unwrap();
        let pluglets = vec![Pluglet {
            name: "boom".into(),
            operation: Operation::OnSource,
            anchor: Anchor::Replace,
            reads_view: true,
            engine,
        }];
        let mut by_operation: [std::ops::Range<usize>; 7] = Default::default();
        by_operation[Operation::OnSource as usize] = 0..1;
        Plugin {
            inner: Arc::new(PluginInner {
                by_operation,
                name: "panics".into(),
                version: "1".into(),
                digest: [0; 32],
                memory_size: 256,
                pluglets,
            }),
        }
    }

    #[test]
    fn a_panic_inside_the_vm_is_caught_and_disables_the_instance() {
        let plugin = plugin_with_panicking_helper();
        let mut instance = plugin.instantiate();
        let view = HostView::default();
        let fault = instance
            .on_source(&SourceContext::default(), &view)
            .unwrap_err();
        assert_eq!(
            fault.kind,
            FaultKind::Panic("helper blew up on purpose".into())
        );
        assert_eq!(fault.pluglet, "boom");
        assert_eq!(instance.disabled(), Some(&fault));
        // Disabled for good: the VM does not run again.
        let calls = instance.calls();
        assert_eq!(
            instance.on_source(&SourceContext::default(), &view),
            Err(fault)
        );
        assert_eq!(instance.calls(), calls);

        // The unwind left this thread's call state usable: a healthy plugin
        // runs and its helpers see an active call.
        let code = crate::asm::assemble("mov r1, 3\ncall 2\nmov r0, 0\nexit").unwrap();
        let package = Package::new(crate::package::Manifest {
            name: "healthy".into(),
            version: "1".into(),
            memory_size: 256,
            helpers: vec![HelperId::EmitRepair as u32],
            pluglets: vec![crate::package::PlugletEntry {
                name: "p".into(),
                operation: Operation::OnSource,
                anchor: Anchor::Replace,
                code,
            }],
        })
        .unwrap();
        let mut healthy = Plugin::load(&package, &HostOffer::all())
            .unwrap()
            .instantiate();
        let decisions = healthy.on_source(&SourceContext::default(), &view).unwrap();
        assert_eq!(decisions.repair, 3);
        CURRENT.with(|c| assert!(!c.borrow().active));
    }

    #[test]
    fn vm_messages_lose_host_addresses() {
        let kind = vm_fault(
            "Error: out of bounds memory store (insn #5), addr 0x7f00, size 8\nmbuff: 0x1/0x0",
        );
        assert_eq!(
            kind,
            FaultKind::MemoryAccess {
                access: "store".into(),
                instruction: 4,
                size: 8
            }
        );
        assert!(!kind.to_string().contains("0x"));
    }
}
