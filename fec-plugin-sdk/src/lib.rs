//! FEC plugin SDK: what a bytecode author and any plugin host need.
//!
//! Plugins are eBPF bytecode that decide FEC *policy* (what to protect, when
//! to send repair, which code and rate); the host's native pipeline does the
//! work. This crate holds:
//!
//! - [`abi`]: operations, anchors, helper ids, `#[repr(C)]` contexts, return
//!   codes; `include/fec_plugin.h` mirrors it for C authors.
//! - [`verify`] (contract): the static verifier.
//! - [`package`]: the `.fecp` format, SHA-256 identity, ed25519 signatures and
//!   the receiver's [`package::TrustStore`].
//! - [`elf`]: loader for `clang -O2 -target bpf` objects; [`asm`]: the
//!   assembler route.
//! - [`runtime`] (contract): the sandboxed interpreter (our own, panic-free
//!   in every build profile) with FEC helpers.
//! - [`host`]: the one plugin host, [`host::PluginPolicy`], a
//!   `fec_core::layer` policy driven by a plugin, used by every host.
//! - [`hints`]: [`hints::RepairHints`], how a host follows a plugin's
//!   `fec_repair_after` / `fec_repair_repeat` hints to skip VM calls.
//! - [`harness`]: run a package against a packet stream and a loss trace,
//!   through two `fec_core::layer::Layer`s and [`host::PluginPolicy`]
//!   ([`harness::run_on_paths`]: with scheduled per-path views, recording
//!   the plugin's repair path choices).
//! - the `fec-plugin` binary: `build`, `pack`, `inspect`, `verify`, `sign`,
//!   `keygen`, `run`.
//!
//! # Host API in five steps
//!
//! 1. `Package::parse(bytes)` — strict, bounded; checks the SHA-256.
//! 2. `TrustStore::check(&package, required)` — trusted validator signatures.
//! 3. `Plugin::load(&package, &HostOffer::all())` — verifies every pluglet
//!    against the declared and offered helpers; `Plugin` is `Send + Sync`.
//! 4. `plugin.instantiate()` per connection — a private, persistent region.
//! 5. `instance.on_source(&ctx, &view)` (and `configure`, `schedule_repair`,
//!    `on_feedback`, `on_recovered`, `on_loss`) returns
//!    [`runtime::Decisions`] or a [`runtime::Fault`]; after a fault the
//!    instance stays disabled and the host runs without FEC.
//!    [`runtime::Plugin::runs`] says which operations have pluglets (skip
//!    building the others' contexts); [`hints::RepairHints`] says which
//!    `schedule_repair` calls can be skipped.
//!
//! [`load_package`] does steps 1-3 in one call:
//!
//! ```
//! use fec_plugin_sdk::abi::{Anchor, Operation, ScheduleContext};
//! use fec_plugin_sdk::package::{Manifest, Package, PlugletEntry, TrustStore};
//! use fec_plugin_sdk::runtime::{HostOffer, HostView};
//!
//! // Ask for one repair symbol each time schedule_repair runs.
//! let code = fec_plugin_sdk::asm::assemble("mov r1, 1\n call 2\n mov r0, 0\n exit").unwrap();
//! let mut package = Package::new(Manifest {
//!     name: "one-repair".into(),
//!     version: "1.0.0".into(),
//!     memory_size: 256,
//!     helpers: vec![2],
//!     pluglets: vec![PlugletEntry {
//!         name: "replace/schedule_repair".into(),
//!         operation: Operation::ScheduleRepair,
//!         anchor: Anchor::Replace,
//!         code,
//!     }],
//! }).unwrap();
//! let validator = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
//! package.sign(&validator);
//! let bytes = package.to_bytes();
//!
//! let mut trust = TrustStore::new();
//! trust.add(validator.verifying_key());
//! let plugin = fec_plugin_sdk::load_package(&bytes, &trust, 1, &HostOffer::all()).unwrap();
//! let mut connection = plugin.instantiate();
//! let decisions = connection
//!     .schedule_repair(&ScheduleContext::default(), &HostView::default())
//!     .unwrap();
//! assert_eq!(decisions.repair, 1);
//! ```

pub mod abi;
pub mod asm;
pub mod build;
pub mod elf;
pub mod harness;
pub mod hints;
pub mod host;
pub mod package;
pub mod runtime;
pub mod verify;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The package is malformed or untrusted.
    #[error("package: {0}")]
    Package(#[from] package::PackageError),
    /// A pluglet failed verification or could not be prepared.
    #[error("load: {0}")]
    Load(#[from] runtime::LoadError),
    /// The static verifier rejected raw bytecode.
    #[error("verify: {0}")]
    Verify(#[from] verify::VerifyError),
    /// A plugin faulted at run time.
    #[error("{0}")]
    Fault(#[from] runtime::Fault),
    /// Anything else (assembler, I/O, build), with its message.
    #[error("{0}")]
    Other(String),
}

/// Parse, check trust (at least `required` trusted signatures; 0 accepts
/// unsigned packages), and load a package: steps 1-3 of the host API.
pub fn load_package(
    bytes: &[u8],
    trust: &package::TrustStore,
    required: usize,
    offer: &runtime::HostOffer,
) -> Result<runtime::Plugin, Error> {
    let package = package::Package::parse(bytes)?;
    trust.check(&package, required)?;
    Ok(runtime::Plugin::load(&package, offer)?)
}
