//! The runtime's interpreter against rbpf 0.4's, on random programs: a
//! second, independent implementation of the same instruction set, used as
//! the oracle. Both run the same bytecode on the same zeroed region; the
//! region afterwards (where every register is stored at the end) must match.
//!
//! The generator leaves out the three places where the two are known to
//! differ, each pinned by a known-answer test instead (`tests/runtime.rs`,
//! `sandbox-check`): the immediate of 64-bit `jeq`/`jne`/`jgt`/`jge`/`jlt`/
//! `jle` is kept non-negative (rbpf zero-extends it, the kernel and we
//! sign-extend), 32-bit modulo by a register is left out (rbpf keeps the
//! upper half when the divisor is zero, the kernel and we clear it), and a
//! program whose `neg` hits `i64::MIN` is discarded when rbpf panics on it
//! (it does in this build, which has overflow checks on).

use std::sync::atomic::{AtomicUsize, Ordering};

use fec_plugin_sdk::abi::{Anchor, Operation, SourceContext};
use fec_plugin_sdk::package::{Manifest, Package, PlugletEntry};
use fec_plugin_sdk::runtime::{HostOffer, HostView, Plugin};
use fec_plugin_sdk::verify::Insn;
use quickcheck::{QuickCheck, TestResult};

/// Registers the body computes with: never r1 (the region pointer, used as
/// a base) or r10 (the stack pointer), whose values differ between the two
/// VMs.
const REGS: [u8; 9] = [0, 2, 3, 4, 5, 6, 7, 8, 9];

/// Operands on the edges of the ALU and jump rules.
const EDGES: [u64; 12] = [
    0,
    1,
    31,
    32,
    63,
    64,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
];

/// Every opcode the generator draws from.
const OPCODES: &[u8] = &[
    // ALU64, immediate and register
    0x07, 0x17, 0x27, 0x37, 0x47, 0x57, 0x67, 0x77, 0x87, 0x97, 0xa7, 0xb7, 0xc7, 0x0f, 0x1f, 0x2f,
    0x3f, 0x4f, 0x5f, 0x6f, 0x7f, 0x9f, 0xaf, 0xbf, 0xcf,
    // ALU32, immediate and register (no 0x9c, see the module docs)
    0x04, 0x14, 0x24, 0x34, 0x44, 0x54, 0x64, 0x74, 0x84, 0x94, 0xa4, 0xb4, 0xc4, 0x0c, 0x1c, 0x2c,
    0x3c, 0x4c, 0x5c, 0x6c, 0x7c, 0xac, 0xbc, 0xcc, // byte order
    0xd4, 0xdc, // JMP, immediate and register
    0x05, 0x15, 0x25, 0x35, 0x45, 0x55, 0x65, 0x75, 0xa5, 0xb5, 0xc5, 0xd5, 0x1d, 0x2d, 0x3d, 0x4d,
    0x5d, 0x6d, 0x7d, 0xad, 0xbd, 0xcd, 0xdd, // JMP32, immediate and register
    0x16, 0x26, 0x36, 0x46, 0x56, 0x66, 0x76, 0xa6, 0xb6, 0xc6, 0xd6, 0x1e, 0x2e, 0x3e, 0x4e, 0x5e,
    0x6e, 0x7e, 0xae, 0xbe, 0xce, 0xde,
    // stack and region stores and loads, every width
    0x63, 0x6b, 0x73, 0x7b, 0x61, 0x69, 0x71, 0x79, 0x62, 0x6a, 0x72, 0x7a,
];

fn insn(opcode: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    Insn {
        opcode,
        dst,
        src,
        off,
        imm,
    }
    .encode()
}

fn width(opcode: u8) -> i16 {
    match opcode & 0x18 {
        0x00 => 4,
        0x08 => 2,
        0x10 => 1,
        _ => 8,
    }
}

/// A valid program from raw choices: load `initial` into the registers,
/// run the body, store every register at `[r1 + 128 + 8k]`, return 0.
fn program(initial: &[(u8, u64)], body: &[(u8, u8, u8, u8, u32)]) -> Vec<u8> {
    let mut code = Vec::new();
    for (k, reg) in REGS.iter().enumerate() {
        let (pick, raw) = initial.get(k).copied().unwrap_or((0, 0));
        let value = if pick % 3 == 0 {
            raw
        } else {
            EDGES[usize::from(pick) % EDGES.len()]
        };
        code.extend(insn(0x18, *reg, 0, 0, value as u32 as i32));
        code.extend(insn(0, 0, 0, 0, (value >> 32) as u32 as i32));
    }
    let len = body.len();
    for (i, &(op, dst, src, jump, seed)) in body.iter().enumerate() {
        let opcode = OPCODES[usize::from(op) % OPCODES.len()];
        let (mut dst, mut src) = (
            REGS[usize::from(dst) % REGS.len()],
            REGS[usize::from(src) % REGS.len()],
        );
        let edge_imm = [0i32, 1, -1, 31, 32, 63, i32::MAX, i32::MIN][(seed % 8) as usize];
        let mut imm = if seed % 3 == 0 { edge_imm } else { seed as i32 };
        let mut off = 0i16;
        match opcode {
            0x37 | 0x97 | 0x34 | 0x94 if imm == 0 => imm = 1,
            0x67 | 0x77 | 0xc7 => imm &= 63,
            0x64 | 0x74 | 0xc4 => imm &= 31,
            0x87 | 0x84 => imm = 0,
            0xd4 | 0xdc => imm = [16, 32, 64][(seed % 3) as usize],
            _ => {}
        }
        match opcode & 0x07 {
            // Forward jumps that stay inside the body (or land on the epilogue).
            0x05 | 0x06 => {
                off = i16::from(jump % 8).min((len - i - 1) as i16);
                if matches!(opcode, 0x15 | 0x25 | 0x35 | 0x55 | 0xa5 | 0xb5) {
                    imm &= i32::MAX;
                }
            }
            // Memory: on the stack (below r10) or in the region's state area.
            0x01..=0x03 => {
                let size = width(opcode);
                let slots = 512 / size;
                if seed % 2 == 0 {
                    off = -size * (1 + (jump as i16 % slots));
                    if opcode & 0x07 == 0x01 {
                        src = 10;
                    } else {
                        dst = 10;
                    }
                } else {
                    off = 128 + size * (jump as i16 % (128 / size));
                    if opcode & 0x07 == 0x01 {
                        src = 1;
                    } else {
                        dst = 1;
                    }
                }
            }
            _ => {}
        }
        code.extend(insn(opcode, dst, src, off, imm));
    }
    for (k, reg) in REGS.iter().enumerate() {
        code.extend(insn(0x7b, 1, *reg, 128 + 8 * k as i16, 0));
    }
    code.extend(insn(0xb7, 0, 0, 0, 0));
    code.extend(insn(0x95, 0, 0, 0, 0));
    code
}

static COMPARED: AtomicUsize = AtomicUsize::new(0);

fn ours(code: &[u8]) -> Result<Vec<u8>, String> {
    let package = Package::new(Manifest {
        name: "diff".into(),
        version: "0".into(),
        memory_size: 256,
        helpers: vec![],
        pluglets: vec![PlugletEntry {
            name: "p".into(),
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
        .map_err(|e| e.to_string())?;
    Ok(instance.memory().to_vec())
}

fn agree(initial: Vec<(u8, u64)>, body: Vec<(u8, u8, u8, u8, u32)>) -> TestResult {
    let code = program(&initial, &body);
    let ours = match ours(&code) {
        Ok(memory) => memory,
        Err(e) => return TestResult::error(format!("our runtime: {e}")),
    };
    let mut region = vec![0u8; 256];
    let theirs = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let vm = rbpf::EbpfVmRaw::new(Some(&code)).map_err(|e| e.to_string())?;
        vm.execute_program(&mut region).map_err(|e| e.to_string())
    }));
    match theirs {
        // rbpf's `neg` of i64::MIN; ours gave the defined result above.
        Err(_) => return TestResult::discard(),
        Ok(Err(e)) => return TestResult::error(format!("rbpf: {e}")),
        Ok(Ok(_)) => {}
    }
    if ours != region {
        return TestResult::error(format!(
            "registers differ\n ours:  {:02x?}\n rbpf: {:02x?}",
            &ours[128..200],
            &region[128..200]
        ));
    }
    COMPARED.fetch_add(1, Ordering::Relaxed);
    TestResult::passed()
}

#[test]
fn the_interpreter_agrees_with_rbpf_on_random_programs() {
    // rbpf's panics on `neg` are expected and discarded; keep them quiet,
    // and report through our own assert once the hook is back.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = QuickCheck::new()
        .tests(2000)
        .max_tests(10_000)
        .quicktest(agree as fn(Vec<(u8, u64)>, Vec<(u8, u8, u8, u8, u32)>) -> TestResult);
    std::panic::set_hook(hook);
    if let Err(failure) = result {
        panic!("{failure:?}");
    }
    let compared = COMPARED.load(Ordering::Relaxed);
    assert!(compared >= 1000, "only {compared} programs compared");
}
