//! Verifier plus VM on random programs: whatever the verifier accepts runs to
//! completion or faults cleanly; nothing panics, hangs or escapes.

use fec_plugin_sdk::abi::{Anchor, Operation, ScheduleContext, SourceContext};
use fec_plugin_sdk::package::{Manifest, Package, PlugletEntry};
use fec_plugin_sdk::runtime::{FaultKind, HostOffer, HostView, Plugin};
use fec_plugin_sdk::verify::{verify, Insn};
use std::sync::atomic::{AtomicUsize, Ordering};

use quickcheck::{QuickCheck, TestResult};

static EXECUTED: AtomicUsize = AtomicUsize::new(0);

/// Opcodes the generator draws from: every class the verifier knows, plus a
/// few it must reject.
const OPCODES: &[u8] = &[
    0x07, 0x0f, 0x17, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x47, 0x4f, 0x57, 0x5f, 0x67, 0x6f, 0x77, 0x7f,
    0x87, 0x97, 0x9f, 0xa7, 0xaf, 0xb7, 0xbf, 0xc7, 0xcf, 0x04, 0x0c, 0x14, 0x1c, 0x24, 0x34, 0x3c,
    0x84, 0x94, 0x9c, 0xb4, 0xbc, 0xd4, 0xdc, 0x61, 0x69, 0x71, 0x79, 0x62, 0x6a, 0x72, 0x7a, 0x63,
    0x6b, 0x73, 0x7b, 0x05, 0x15, 0x1d, 0x25, 0x2d, 0x35, 0x45, 0x55, 0x5d, 0x65, 0x75, 0xa5, 0xb5,
    0xc5, 0xd5, 0x16, 0x1e, 0x56, 0x85, 0x95, 0x18, 0x00, 0xc3, 0x30, 0x8d, 0xff, 0x64, 0x6c, 0x74,
    0x7c, 0xc4, 0xcc,
];

fn program(raw: &[(u8, u8, u8, i8, i16)]) -> Vec<u8> {
    let mut code: Vec<u8> = raw
        .iter()
        .flat_map(|&(op, dst, src, off, imm)| {
            let opcode = OPCODES[op as usize % OPCODES.len()];
            let imm = match opcode {
                // Mostly helper ids 1..=9, sometimes anything.
                0x85 if imm % 7 != 0 => i32::from(imm.rem_euclid(9) + 1),
                0xd4 | 0xdc => [16, 32, 64, 8][imm.rem_euclid(4) as usize],
                // Shift amounts mostly inside the width, sometimes not (the
                // verifier refuses those).
                0x67 | 0x77 | 0xc7 if imm % 5 != 0 => i32::from(imm.rem_euclid(64)),
                0x64 | 0x74 | 0xc4 if imm % 5 != 0 => i32::from(imm.rem_euclid(32)),
                _ => i32::from(imm),
            };
            // Memory offsets mostly near the context and state.
            let off = match opcode & 0x07 {
                0x01..=0x03 => i16::from(off) * 4,
                _ => i16::from(off) % 6,
            };
            Insn {
                opcode,
                dst: dst % 12,
                src: src % 12,
                off,
                imm,
            }
            .encode()
        })
        .collect();
    code.extend_from_slice(&[0x95, 0, 0, 0, 0, 0, 0, 0]);
    code
}

fn check(raw: Vec<(u8, u8, u8, i8, i16)>) -> TestResult {
    let code = program(&raw);
    let all: Vec<u32> = (1..=8).collect();
    if verify(&code, &all, &all).is_err() {
        return TestResult::discard();
    }
    let package = Package::new(Manifest {
        name: "random".into(),
        version: "0".into(),
        memory_size: 256,
        helpers: all,
        pluglets: vec![
            PlugletEntry {
                name: "a".into(),
                operation: Operation::OnSource,
                anchor: Anchor::Replace,
                code: code.clone(),
            },
            PlugletEntry {
                name: "b".into(),
                operation: Operation::ScheduleRepair,
                anchor: Anchor::Post,
                code,
            },
        ],
    })
    .unwrap();
    // Whatever the verifier accepts, the runtime's interpreter loads.
    let plugin = match Plugin::load(&package, &HostOffer::all()) {
        Ok(p) => p,
        Err(e) => return TestResult::error(format!("verified program refused at load: {e}")),
    };
    EXECUTED.fetch_add(1, Ordering::Relaxed);
    let mut instance = plugin.instantiate();
    let view = HostView::default();
    for seq in 0..3 {
        let results = [
            instance.on_source(
                &SourceContext {
                    seq,
                    flow: 1,
                    len: 100,
                    now_us: seq,
                },
                &view,
            ),
            instance.schedule_repair(&ScheduleContext::default(), &view),
        ];
        for result in results {
            let Err(fault) = result else { continue };
            // The unwind guard kept the host alive, but a verified program
            // that panics the interpreter is a hole in the verifier.
            if let FaultKind::Panic(message) = &fault.kind {
                return TestResult::error(format!("verified program panicked the VM: {message}"));
            }
            if instance.disabled() != Some(&fault) {
                return TestResult::error(format!("fault {fault} did not disable the instance"));
            }
        }
    }
    TestResult::passed()
}

#[test]
fn accepted_random_programs_never_panic_the_host() {
    QuickCheck::new()
        .tests(300)
        .max_tests(20_000)
        .quickcheck(check as fn(Vec<(u8, u8, u8, i8, i16)>) -> TestResult);
    let executed = EXECUTED.load(Ordering::Relaxed);
    assert!(
        executed >= 100,
        "only {executed} random programs passed the verifier"
    );
}
