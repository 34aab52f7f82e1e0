//! Lifecycle: a [`Plugin`] is loaded (verified, decoded) once per package;
//! an [`Instance`] per connection owns a memory region and runs the
//! pluglets of one operation per call.

#![forbid(unsafe_code)]

use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use super::call::Call;
use super::vm::{self, Program};
use super::{helpers, Decisions, Fault, FaultKind, HostOffer, HostView, LoadError};
use crate::abi::{
    Anchor, ConfigureContext, Context, FeedbackContext, LossContext, Operation, RecoveredContext,
    ReturnCode, ScheduleContext, SourceContext, CONTEXT_AREA_SIZE,
};
use crate::package::Package;
use crate::verify;

/// One loaded pluglet.
pub(super) struct Pluglet {
    pub(super) name: String,
    pub(super) operation: Operation,
    pub(super) anchor: Anchor,
    /// The bytecode as the package carries it (for [`Plugin::pluglets`]).
    pub(super) code: Box<[u8]>,
    pub(super) program: Program,
}

pub(super) struct PluginInner {
    /// Indices into `pluglets` per operation id (sorted by operation, then
    /// replace before post), so a call finds its pluglets without searching.
    pub(super) by_operation: [Range<usize>; 7],
    pub(super) name: String,
    pub(super) version: String,
    pub(super) digest: [u8; 32],
    pub(super) memory_size: usize,
    pub(super) pluglets: Vec<Pluglet>,
}

/// A verified, loaded package. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Plugin {
    pub(super) inner: Arc<PluginInner>,
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
        // The region must hold the context area the calls write into.
        crate::package::check_manifest(m).map_err(LoadError::Manifest)?;
        let mut pluglets = Vec::with_capacity(m.pluglets.len());
        for p in &m.pluglets {
            verify::verify(&p.code, &m.helpers, &offer.helpers).map_err(|error| {
                LoadError::Verify {
                    pluglet: p.name.clone(),
                    error,
                }
            })?;
            let program =
                Program::new(&p.code, helpers::bind).map_err(|message| LoadError::Vm {
                    pluglet: p.name.clone(),
                    message,
                })?;
            pluglets.push(Pluglet {
                name: p.name.clone(),
                operation: p.operation,
                anchor: p.anchor,
                code: p.code.as_slice().into(),
                program,
            });
        }
        Ok(Self::from_pluglets(
            m.name.clone(),
            m.version.clone(),
            package.digest(),
            m.memory_size as usize,
            pluglets,
        ))
    }

    /// Group `pluglets` by operation (replace first, then observers in
    /// package order) into a plugin.
    pub(super) fn from_pluglets(
        name: String,
        version: String,
        digest: [u8; 32],
        memory_size: usize,
        mut pluglets: Vec<Pluglet>,
    ) -> Self {
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
        Plugin {
            inner: Arc::new(PluginInner {
                by_operation,
                name,
                version,
                digest,
                memory_size,
                pluglets,
            }),
        }
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
            .map(|p| (p.name.as_str(), p.operation, p.anchor, &*p.code))
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
fn execute<C: Context>(
    memory: &mut [u8],
    pluglet: &Pluglet,
    ctx: &C,
    view: &HostView,
    out: &mut Decisions,
) -> Result<(), FaultKind> {
    // Copy in: observers get the pristine context even if the replace
    // pluglet scribbled over the context area, and nothing is copied back.
    // `load` checked that the region holds the area; `get_mut` keeps even a
    // broken invariant from panicking.
    let Some(area) = memory.get_mut(..CONTEXT_AREA_SIZE) else {
        return Err(FaultKind::Vm("region smaller than the context area".into()));
    };
    area.fill(0);
    ctx.write_to(area);
    let flow = source_flow::<C>(memory);

    let mut call = Call::new(C::OPERATION, pluglet.anchor, flow, view, &mut out.logs);
    // Nothing in the interpreter or the helpers panics (the sandbox-check
    // crate runs hostile programs with overflow checks on to prove it); the
    // guard only keeps a future bug from unwinding into the host in
    // unwinding builds. It cannot help under `panic = "abort"`.
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        vm::run(&pluglet.program, memory, &mut call)
    }));
    let raw = match outcome {
        Err(panic) => return Err(FaultKind::Panic(panic_message(&*panic))),
        Ok(result) => result?,
    };
    let choices = call.choices;
    let code = ReturnCode::from_raw(raw).ok_or(FaultKind::BadReturnCode(raw))?;
    if code == ReturnCode::Error {
        return Err(FaultKind::PluginError);
    }
    if pluglet.anchor == Anchor::Replace {
        choices.apply(code, out);
    }
    Ok(())
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// The packet's flow during `on_source`, read from the context just written
/// into `memory`, so the context is serialised once per pluglet, not twice.
fn source_flow<C: Context>(memory: &[u8]) -> Option<u32> {
    if C::OPERATION != Operation::OnSource {
        return None;
    }
    let at = core::mem::offset_of!(SourceContext, flow);
    let bytes = memory.get(at..at + 4)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::super::helpers::Helper;
    use super::*;
    use crate::abi::HelperId;

    #[test]
    fn plugin_is_send_sync_and_instance_is_send() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<Plugin>();
        send::<Instance>();
    }

    /// No production helper can panic, so this one exists only here; it is
    /// bound into a program built by hand, bypassing the verifier (which
    /// would refuse an unknown helper id) and leaving production code as is.
    fn panicking_helper(_: &mut Call<'_>, _: &[u8], _: [u64; 5]) -> Result<u64, String> {
        panic!("helper blew up on purpose");
    }

    const PANICKING_HELPER: u32 = 0x7fff;

    fn plugin_with_panicking_helper() -> Plugin {
        let code =
            crate::asm::assemble(&format!("call {PANICKING_HELPER}\nmov r0, 0\nexit")).unwrap();
        let program = Program::new(&code, |id| {
            (id == PANICKING_HELPER).then_some(Helper {
                name: "boom",
                decision: false,
                run: panicking_helper,
            })
        })
        .unwrap();
        let pluglets = vec![Pluglet {
            name: "boom".into(),
            operation: Operation::OnSource,
            anchor: Anchor::Replace,
            code: code.into(),
            program,
        }];
        Plugin::from_pluglets("panics".into(), "1".into(), [0; 32], 256, pluglets)
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

        // The unwind left nothing behind on this thread (the call state is
        // per execution, not thread-local any more): a healthy plugin runs
        // and its helpers see a fresh call.
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
    }

    #[test]
    fn an_offered_helper_without_implementation_is_refused_at_load() {
        let code = crate::asm::assemble("call 99\nmov r0, 0\nexit").unwrap();
        let package = Package::new(crate::package::Manifest {
            name: "t".into(),
            version: "1".into(),
            memory_size: 256,
            helpers: vec![99],
            pluglets: vec![crate::package::PlugletEntry {
                name: "p".into(),
                operation: Operation::OnSource,
                anchor: Anchor::Replace,
                code,
            }],
        })
        .unwrap();
        let offer = HostOffer { helpers: vec![99] };
        match Plugin::load(&package, &offer) {
            Err(LoadError::Vm { pluglet, message }) => {
                assert_eq!(pluglet, "p");
                assert!(
                    message.contains("helper 99 has no implementation"),
                    "{message}"
                );
            }
            other => panic!("expected the interpreter to refuse it, got {other:?}"),
        }
    }
}
