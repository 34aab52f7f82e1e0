//! The sandbox proof: hostile plugins through `fec_plugin_sdk::runtime`'s
//! public API, in a build with overflow checks on.
//!
//! A downstream crate may build the SDK in debug (overflow checks on) or with
//! `panic = "abort"`. Either way no plugin may panic or abort the host: every
//! program is refused at load, faults with a reason, or gives the result
//! eBPF defines. This crate checks that from the outside, as such a crate
//! would see it:
//!
//! - `tests/build_config.rs` fails unless this build really has overflow
//!   checks on, for itself and for every package of the workspace (no
//!   `overflow-checks = false` in a dev or test profile), and shows that
//!   rbpf 0.4's interpreter built this way does panic on `neg` of
//!   `i64::MIN`, which the runtime no longer runs plugins in;
//! - `tests/hostile.rs` runs the hostile programs (negation of the most
//!   negative integers, shifts by 63, 64, 65 and by register values past the
//!   width, division and modulo by zero and of the minimum by -1, address
//!   wraparound, helpers given `u64::MAX`...) and sweeps every ALU and jump
//!   opcode over edge operands against [`model`], an independent statement
//!   of the semantics.
//!
//! Why a test in an unwinding build also proves the `panic = "abort"` case:
//! [`run`] installs a panic hook that records every panic raised while the
//! runtime runs, including one the runtime's own unwind guard would catch
//! and turn into a fault. A panic is a panic before the strategy decides
//! what follows, so "no panic observed" here means "no abort" there.

use std::cell::{Cell, RefCell};
use std::sync::Once;

use fec_plugin_sdk::abi::{Anchor, Operation, SourceContext};
use fec_plugin_sdk::package::{Manifest, Package, PlugletEntry};
use fec_plugin_sdk::runtime::{Decisions, Fault, FaultKind, HostOffer, HostView, Plugin};
use fec_plugin_sdk::verify::Insn;

/// What one program did, seen through the public runtime API.
#[derive(Debug)]
pub enum Outcome {
    /// Refused before running (package rules, verifier or interpreter).
    Refused(String),
    /// Ran to `exit`: its decisions and the instance region afterwards.
    Ran {
        /// What the call decided.
        decisions: Decisions,
        /// The region after the call (state from offset 128).
        memory: Vec<u8>,
    },
    /// Faulted with a reason other than a panic; the instance is disabled.
    Faulted(Fault),
    /// Something panicked inside the runtime (caught or not): a sandbox hole.
    Panicked(Vec<String>),
}

thread_local! {
    /// Set while this thread is inside the runtime, so the hook blames only
    /// panics raised there (tests run on several threads at once).
    static INSIDE_RUNTIME: Cell<bool> = const { Cell::new(false) };
    static PANICS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn watch_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if INSIDE_RUNTIME.with(Cell::get) {
                PANICS.with(|p| p.borrow_mut().push(info.to_string()));
            }
            previous(info);
        }));
    });
}

/// Run `f` with the panic watch on; the panics it raised, if any.
fn watched<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    watch_panics();
    PANICS.with(|p| p.borrow_mut().clear());
    INSIDE_RUNTIME.with(|c| c.set(true));
    // The runtime must not unwind into us; if it does, that is the finding.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    INSIDE_RUNTIME.with(|c| c.set(false));
    let panics = PANICS.with(|p| std::mem::take(&mut *p.borrow_mut()));
    match result {
        Ok(value) => (value, panics),
        Err(_) => panic!("the runtime unwound into its caller: {panics:?}"),
    }
}

/// Load `code` as the `replace` pluglet of `on_source` (every helper
/// declared and offered) in a region of `memory_size` bytes, and call it
/// once for a packet of flow 3.
pub fn run_in(code: &[u8], memory_size: u32) -> Outcome {
    let (outcome, panics) = watched(|| {
        let package = Package::new(Manifest {
            name: "hostile".into(),
            version: "0".into(),
            memory_size,
            helpers: HostOffer::all().helpers,
            pluglets: vec![PlugletEntry {
                name: "p".into(),
                operation: Operation::OnSource,
                anchor: Anchor::Replace,
                code: code.to_vec(),
            }],
        });
        let package = match package {
            Ok(p) => p,
            Err(e) => return Outcome::Refused(e.to_string()),
        };
        let plugin = match Plugin::load(&package, &HostOffer::all()) {
            Ok(p) => p,
            Err(e) => return Outcome::Refused(e.to_string()),
        };
        let mut instance = plugin.instantiate();
        let ctx = SourceContext {
            now_us: 1,
            seq: 1,
            flow: 3,
            len: 1200,
        };
        match instance.on_source(&ctx, &HostView::default()) {
            Ok(decisions) => Outcome::Ran {
                decisions,
                memory: instance.memory().to_vec(),
            },
            Err(fault) => match &fault.kind {
                FaultKind::Panic(message) => Outcome::Panicked(vec![message.clone()]),
                _ => Outcome::Faulted(fault),
            },
        }
    });
    if panics.is_empty() {
        outcome
    } else {
        Outcome::Panicked(panics)
    }
}

/// [`run_in`] with a 64 KiB region (room for 8,000 results).
pub fn run(code: &[u8]) -> Outcome {
    run_in(code, 65536)
}

/// One encoded instruction.
pub fn insn(opcode: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    Insn {
        opcode,
        dst,
        src,
        off,
        imm,
    }
    .encode()
}

/// `lddw dst, value` (two slots).
pub fn lddw(dst: u8, value: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&insn(0x18, dst, 0, 0, value as u32 as i32));
    out[8..].copy_from_slice(&insn(0, 0, 0, 0, (value >> 32) as u32 as i32));
    out
}

/// `mov r0, 0; exit`.
pub const EPILOGUE: [u8; 16] = [0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];

/// The eBPF semantics (RFC 9669, as the Linux kernel runs them), stated
/// independently of the runtime's interpreter: on 128-bit integers, with the
/// operand width as a parameter, so that neither shares a mistake with the
/// other.
pub mod model {
    /// Width in bits and the mask of an operation's class (32 or 64 bits).
    fn width(opcode: u8, wide_class: u8) -> (u32, u128) {
        if opcode & 0x07 == wide_class {
            (64, (1u128 << 64) - 1)
        } else {
            (32, (1u128 << 32) - 1)
        }
    }

    /// `v` (already masked to `bits`) read as a two's-complement number.
    fn signed(v: u128, bits: u32) -> i128 {
        if v >> (bits - 1) & 1 == 1 {
            v as i128 - (1i128 << bits)
        } else {
            v as i128
        }
    }

    /// The destination register after ALU `opcode` (`ALU` or `ALU64`, either
    /// operand form) on `dst` with the operand `src` (for an immediate form,
    /// the immediate sign-extended to 64 bits). `neg` ignores `src`.
    pub fn alu(opcode: u8, dst: u64, src: u64) -> u64 {
        let (bits, mask) = width(opcode, 0x07);
        let modulus = mask + 1;
        let a = u128::from(dst) & mask;
        let b = u128::from(src) & mask;
        let amount = (b % u128::from(bits)) as u32;
        let result = match opcode & 0xf0 {
            0x00 => a + b,
            0x10 => a + modulus - b,
            0x20 => a * b,
            // Division by zero gives 0.
            0x30 => a.checked_div(b).unwrap_or(0),
            0x40 => a | b,
            0x50 => a & b,
            0x60 => a << amount,
            0x70 => a >> amount,
            0x80 => modulus - a,
            // Modulo by zero leaves the (masked) destination.
            0x90 => a.checked_rem(b).unwrap_or(a),
            0xa0 => a ^ b,
            0xb0 => b,
            0xc0 => (signed(a, bits) >> amount) as u128,
            other => panic!("not an ALU operation: {other:#x}"),
        };
        (result & mask) as u64
    }

    /// Whether jump `opcode` (`JMP` or `JMP32`, either operand form) is
    /// taken for `dst` and `src` (for an immediate form, the immediate
    /// sign-extended to 64 bits).
    pub fn jump_taken(opcode: u8, dst: u64, src: u64) -> bool {
        let (bits, mask) = width(opcode, 0x05);
        let (a, b) = (u128::from(dst) & mask, u128::from(src) & mask);
        let (sa, sb) = (signed(a, bits), signed(b, bits));
        match opcode & 0xf0 {
            0x00 => true,
            0x10 => a == b,
            0x20 => a > b,
            0x30 => a >= b,
            0x40 => a & b != 0,
            0x50 => a != b,
            0x60 => sa > sb,
            0x70 => sa >= sb,
            0xa0 => a < b,
            0xb0 => a <= b,
            0xc0 => sa < sb,
            0xd0 => sa <= sb,
            other => panic!("not a conditional jump: {other:#x}"),
        }
    }

    /// `le{bits}` (opcode 0xd4) or `be{bits}` (0xdc) of `dst`: the low
    /// `bits` as little- or big-endian bytes, zero-extended.
    pub fn byte_order(opcode: u8, bits: u32, dst: u64) -> u64 {
        let n = bits as usize / 8;
        let mut bytes: Vec<u8> = dst.to_le_bytes()[..n].to_vec();
        if opcode == 0xdc {
            bytes.reverse();
        }
        bytes
            .iter()
            .rev()
            .fold(0u64, |acc, b| acc << 8 | u64::from(*b))
    }
}
