//! Hostile programs through the public runtime API, with overflow checks on:
//! each one is refused, faults with a reason, or gives the result eBPF
//! defines ([`sandbox_check::model`]); none panics (see the crate docs for
//! why that covers `panic = "abort"` too).

use fec_plugin_sdk::abi::{Scheme, MAX_INSTRUCTIONS};
use fec_plugin_sdk::asm::assemble;
use fec_plugin_sdk::runtime::{CodeChoice, Decisions, Fault, FaultKind};
use sandbox_check::{insn, lddw, model, run, run_in, Outcome, EPILOGUE};

/// Where programs store their results (the state area).
const STATE: usize = 128;

fn asm(src: &str) -> Vec<u8> {
    assemble(src).unwrap_or_else(|e| panic!("test program does not assemble: {e}\n{src}"))
}

fn ran(name: &str, outcome: Outcome) -> (Decisions, Vec<u8>) {
    match outcome {
        Outcome::Ran { decisions, memory } => (decisions, memory),
        other => panic!("{name}: expected a clean run, got {other:?}"),
    }
}

fn faulted(name: &str, outcome: Outcome) -> Fault {
    match outcome {
        Outcome::Faulted(fault) => fault,
        other => panic!("{name}: expected a fault, got {other:?}"),
    }
}

fn refused(name: &str, outcome: Outcome) -> String {
    match outcome {
        Outcome::Refused(reason) => reason,
        other => panic!("{name}: expected a refusal, got {other:?}"),
    }
}

fn slot(memory: &[u8], index: usize) -> u64 {
    let at = STATE + 8 * index;
    u64::from_le_bytes(memory[at..at + 8].try_into().unwrap())
}

/// Programs that store their result with `stxdw [r1+128], r2`.
fn stored_value(name: &str, src: &str) -> u64 {
    let code = asm(&format!("{src}\nstxdw [r1+128], r2\nmov r0, 0\nexit"));
    slot(&ran(name, run(&code)).1, 0)
}

#[test]
fn arithmetic_edge_cases_give_the_defined_result() {
    const MIN: u64 = i64::MIN as u64;
    let cases: &[(&str, &str, u64)] = &[
        (
            "neg64 of i64::MIN",
            "lddw r2, 0x8000000000000000\nneg r2",
            MIN,
        ),
        (
            "neg32 of i32::MIN",
            "lddw r2, 0xffffffff80000000\nneg32 r2",
            0x8000_0000,
        ),
        (
            "neg32 zero-extends",
            "lddw r2, 0xffffffff00000001\nneg32 r2",
            0xffff_ffff,
        ),
        ("neg64 of 0", "mov r2, 0\nneg r2", 0),
        ("lsh64 by 63", "mov r2, 1\nlsh r2, 63", 1 << 63),
        ("rsh64 by 63", "lddw r2, 0x8000000000000000\nrsh r2, 63", 1),
        (
            "arsh64 of i64::MIN by 63",
            "lddw r2, 0x8000000000000000\narsh r2, 63",
            u64::MAX,
        ),
        (
            "lsh64 by register 63",
            "mov r2, 1\nmov r3, 63\nlsh r2, r3",
            1 << 63,
        ),
        (
            "lsh64 by register 64 (masked to 0)",
            "mov r2, 1\nmov r3, 64\nlsh r2, r3",
            1,
        ),
        (
            "lsh64 by register 65 (masked to 1)",
            "mov r2, 1\nmov r3, 65\nlsh r2, r3",
            2,
        ),
        (
            "rsh64 by register u64::MAX (masked to 63)",
            "lddw r2, 0x8000000000000000\nmov r3, -1\nrsh r2, r3",
            1,
        ),
        (
            "arsh64 of i64::MIN by register 64",
            "lddw r2, 0x8000000000000000\nmov r3, 64\narsh r2, r3",
            MIN,
        ),
        (
            "arsh64 by register i64::MIN (masked to 0)",
            "mov r2, -8\nlddw r3, 0x8000000000000000\narsh r2, r3",
            (-8i64) as u64,
        ),
        (
            "lsh32 by register 32 (masked to 0)",
            "mov r2, 1\nmov r3, 32\nlsh32 r2, r3",
            1,
        ),
        (
            "arsh32 by register 33 (masked to 1)",
            "mov r2, 0\nadd32 r2, -2147483648\nmov r3, 33\narsh32 r2, r3",
            0xc000_0000,
        ),
        (
            "div64 of i64::MIN by -1 (unsigned)",
            "lddw r2, 0x8000000000000000\ndiv r2, -1",
            0,
        ),
        (
            "mod64 of i64::MIN by -1 (unsigned)",
            "lddw r2, 0x8000000000000000\nmod r2, -1",
            MIN,
        ),
        (
            "div32 of i32::MIN by -1 (unsigned)",
            "lddw r2, 0x80000000\ndiv32 r2, -1",
            0,
        ),
        (
            "mod32 of i32::MIN by -1 (unsigned)",
            "lddw r2, 0x80000000\nmod32 r2, -1",
            0x8000_0000,
        ),
        (
            "div64 by a zero register",
            "mov r2, -1\nmov r3, 0\ndiv r2, r3",
            0,
        ),
        (
            "mod64 by a zero register leaves dst",
            "lddw r2, 0xdeadbeefcafef00d\nmov r3, 0\nmod r2, r3",
            0xdead_beef_cafe_f00d,
        ),
        (
            "div32 by a zero register",
            "mov r2, 7\nmov r3, 0\ndiv32 r2, r3",
            0,
        ),
        (
            "mod32 by a zero register keeps the low half, zero-extended",
            "lddw r2, 0xffffffff00000007\nmov r3, 0\nmod32 r2, r3",
            7,
        ),
        (
            "div32 by a register that is zero only in its low half",
            "mov r2, 7\nlddw r3, 0x100000000\ndiv32 r2, r3",
            0,
        ),
        ("mul64 wraps", "mov r2, -1\nmul r2, r2", 1),
        ("mul32 wraps", "lddw r2, 0xffffffff\nmul32 r2, r2", 1),
        ("add64 wraps", "mov r2, -1\nadd r2, 1", 0),
        ("sub64 wraps", "mov r2, 0\nsub r2, 1", u64::MAX),
        ("add32 wraps and zero-extends", "mov r2, -1\nadd32 r2, 1", 0),
        (
            "sub32 wraps and zero-extends",
            "mov r2, 0\nsub32 r2, 1",
            0xffff_ffff,
        ),
        (
            "add64 of i64::MAX and 1",
            "lddw r2, 0x7fffffffffffffff\nadd r2, 1",
            MIN,
        ),
        ("mov32 zero-extends", "mov32 r2, -1", 0xffff_ffff),
        ("mov64 sign-extends", "mov r2, -1", u64::MAX),
        (
            "be16 swaps and truncates",
            "lddw r2, 0x1122334455667788\nbe16 r2",
            0x8877,
        ),
        (
            "le32 truncates",
            "lddw r2, 0x1122334455667788\nle32 r2",
            0x5566_7788,
        ),
        (
            "be64 swaps",
            "lddw r2, 0x1122334455667788\nbe64 r2",
            0x8877_6655_4433_2211,
        ),
    ];
    for (name, src, expected) in cases {
        assert_eq!(stored_value(name, src), *expected, "{name}");
    }
}

#[test]
fn jump_edge_cases_follow_the_kernel() {
    // 1 if the jump was taken, else 0.
    let taken = |name: &str, setup: &str, jump: &str| -> u64 {
        stored_value(
            name,
            &format!("{setup}\nmov r4, 0\n{jump}, +1\nja +1\nmov r4, 1\nmov r2, r4"),
        )
    };
    // The immediate of a 64-bit jump is sign-extended (rbpf 0.4 got this wrong).
    assert_eq!(taken("jeq -1", "mov r2, -1", "jeq r2, -1"), 1);
    assert_eq!(
        taken("jeq -1 on 0xffffffff", "lddw r2, 0xffffffff", "jeq r2, -1"),
        0
    );
    assert_eq!(taken("jgt -1 (unsigned)", "mov r2, 5", "jgt r2, -1"), 0);
    assert_eq!(taken("jsgt -1 (signed)", "mov r2, 5", "jsgt r2, -1"), 1);
    assert_eq!(
        taken("jslt i64::MIN", "lddw r2, 0x8000000000000000", "jslt r2, 0"),
        1
    );
    // 32-bit jumps look at the low half only.
    assert_eq!(
        taken(
            "jeq32 ignores the high half",
            "lddw r2, 0x1200000005",
            "jeq32 r2, 5"
        ),
        1
    );
    assert_eq!(
        taken("jslt32 of i32::MIN", "lddw r2, 0x80000000", "jslt32 r2, 0"),
        1
    );
    assert_eq!(taken("jset32", "lddw r2, 0x100000000", "jset32 r2, -1"), 0);
}

#[test]
fn constants_the_interpreter_could_not_honour_are_refused_statically() {
    let mut too_long = [0xb7u8, 0, 0, 0, 0, 0, 0, 0].repeat(MAX_INSTRUCTIONS);
    too_long.extend(insn(0x95, 0, 0, 0, 0));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "lsh64 by 64",
            asm("lsh r2, 64\nexit"),
            "shift by the constant 64",
        ),
        (
            "rsh64 by 65",
            asm("rsh r2, 65\nexit"),
            "shift by the constant 65",
        ),
        (
            "arsh64 by -1",
            asm("arsh r2, -1\nexit"),
            "shift by the constant -1",
        ),
        (
            "lsh32 by 32",
            asm("lsh32 r2, 32\nexit"),
            "shift by the constant 32",
        ),
        (
            "rsh32 by 64",
            asm("rsh32 r2, 64\nexit"),
            "shift by the constant 64",
        ),
        (
            "div by the constant 0",
            asm("div r2, 0\nexit"),
            "division or modulo by the constant 0",
        ),
        (
            "mod32 by the constant 0",
            asm("mod32 r2, 0\nexit"),
            "division or modulo by the constant 0",
        ),
        (
            "signed division (sdiv64, off = 1)",
            [insn(0x3f, 2, 3, 1, 0), insn(0x95, 0, 0, 0, 0)].concat(),
            "off must be 0",
        ),
        (
            "signed modulo by -1 (smod64, off = 1)",
            [insn(0x97, 2, 0, 1, -1), insn(0x95, 0, 0, 0, 0)].concat(),
            "off must be 0",
        ),
        (
            "signed division of i32::MIN by -1 (sdiv32)",
            [insn(0x34, 2, 0, 1, -1), insn(0x95, 0, 0, 0, 0)].concat(),
            "off must be 0",
        ),
        (
            "sign-extending move (movsx)",
            [insn(0xbf, 2, 3, 8, 0), insn(0x95, 0, 0, 0, 0)].concat(),
            "off must be 0",
        ),
        (
            "unconditional byte swap (bswap)",
            [insn(0xd7, 2, 0, 0, 16), insn(0x95, 0, 0, 0, 0)].concat(),
            "unconditional byte swap",
        ),
        (
            "backward jump",
            asm("mov r0, 0\nja -2\nexit"),
            "backward jump",
        ),
        (
            "jump past the end",
            asm("ja +1\nexit"),
            "outside the program",
        ),
        (
            "lddw in the last slot",
            [insn(0x95, 0, 0, 0, 0), insn(0x18, 0, 0, 0, 0)].concat(),
            "lddw",
        ),
        ("one instruction too many", too_long, "code length"),
    ];
    for (name, code, reason) in cases {
        let why = refused(name, run(&code));
        assert!(why.contains(reason), "{name}: {why:?} lacks {reason:?}");
    }
}

fn memory_fault(name: &str, outcome: Outcome) -> (String, usize, usize) {
    match faulted(name, outcome).kind {
        FaultKind::MemoryAccess {
            access,
            instruction,
            size,
        } => (access, instruction, size),
        other => panic!("{name}: expected an out-of-bounds access, got {other:?}"),
    }
}

#[test]
fn wild_and_wrapping_addresses_fault_with_the_instruction() {
    let cases: &[(&str, &str, (&str, usize, usize))] = &[
        (
            "address 0 after wrapping past u64::MAX",
            "lddw r2, -1\nldxb r0, [r2+1]",
            ("load", 2, 1),
        ),
        (
            "8 bytes from u64::MAX - 2 (the end overflows)",
            "lddw r2, -3\nldxdw r0, [r2]",
            ("load", 2, 8),
        ),
        (
            "r1 + (2^64 - 1), one byte before the region",
            "mov r2, r1\nadd r2, -1\nstb [r2], 1",
            ("store", 2, 1),
        ),
        (
            "r1 - 2^63",
            "mov r2, r1\nlddw r3, 0x8000000000000000\nsub r2, r3\nldxb r0, [r2]",
            ("load", 4, 1),
        ),
        ("r10 - 32768", "ldxb r0, [r10-32768]", ("load", 0, 1)),
        ("r1 + 32767", "stxb [r1+32767], r0", ("store", 0, 1)),
        ("the top of the stack", "stxb [r10+0], r0", ("store", 0, 1)),
        (
            "a doubleword straddling the top of the stack",
            "stdw [r10-4], 1",
            ("store", 0, 8),
        ),
        (
            "one byte below the stack",
            "ldxb r0, [r10-513]",
            ("load", 0, 1),
        ),
        (
            "a word straddling the end of the region",
            "ldxw r0, [r1+254]",
            ("load", 0, 4),
        ),
        (
            "a truncated 32-bit copy of r1",
            "mov32 r2, r1\nldxb r0, [r2]",
            ("load", 1, 1),
        ),
        (
            "the region pointer shifted",
            "mov r2, r1\nlsh r2, 2\nstxdw [r2], r2",
            ("store", 2, 8),
        ),
    ];
    for (name, src, (access, instruction, size)) in cases {
        let code = asm(&format!("{src}\nmov r0, 0\nexit"));
        let got = memory_fault(name, run_in(&code, 256));
        assert_eq!(got, (access.to_string(), *instruction, *size), "{name}");
        // A fault names the instruction, not a host address.
        let fault = faulted(name, run_in(&code, 256));
        assert!(!fault.to_string().contains("0x"), "{name}: {fault}");
    }
    // The edges themselves are usable.
    for (name, src) in [
        ("last byte of the stack", "stb [r10-1], 1\nldxb r2, [r10-1]"),
        (
            "first byte of the stack",
            "stb [r10-512], 1\nldxb r2, [r10-512]",
        ),
        (
            "last doubleword of the region",
            "stdw [r1+248], 1\nldxdw r2, [r1+248]",
        ),
        (
            "a pointer kept across arithmetic",
            "mov r3, r1\nadd r3, -1\nadd r3, 1\nldxb r2, [r3]",
        ),
    ] {
        let code = asm(&format!("{src}\nmov r0, 0\nexit"));
        ran(name, run_in(&code, 256));
    }
}

#[test]
fn loads_and_stores_are_allowed_exactly_inside_the_region_and_the_stack() {
    const REGION: i64 = 256;
    const STACK: i64 = 512;
    let sizes: [(u8, u8, i64); 4] = [
        (0x71, 0x72, 1),
        (0x69, 0x6a, 2),
        (0x61, 0x62, 4),
        (0x79, 0x7a, 8),
    ];
    let mut checked = 0;
    for (load, store, size) in sizes {
        for (base, lo, hi) in [(1u8, 0, REGION), (10u8, -STACK, 0)] {
            let offsets = (lo - 9..=lo + 1).chain(hi - 9..=hi + 1);
            for off in offsets {
                let inside = off >= lo && off + size <= hi;
                for (opcode, dst, src, access) in
                    [(load, 0, base, "load"), (store, base, 0, "store")]
                {
                    let code = [
                        insn(opcode, dst, src, off as i16, 1),
                        insn(0xb7, 0, 0, 0, 0),
                        insn(0x95, 0, 0, 0, 0),
                    ]
                    .concat();
                    let name = format!("{access} of {size} at r{base}{off:+}");
                    let outcome = run_in(&code, REGION as u32);
                    if inside {
                        ran(&name, outcome);
                    } else {
                        let got = memory_fault(&name, outcome);
                        assert_eq!(got, (access.to_string(), 0, size as usize), "{name}");
                    }
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 4 * 2 * 2 * 2 * 11);
}

#[test]
fn helpers_given_extreme_arguments_refuse_or_decide_within_bounds() {
    let helper_fault = |name: &str, src: &str| -> String {
        let code = asm(&format!("{src}\nmov r0, 0\nexit"));
        match faulted(name, run(&code)).kind {
            FaultKind::Helper { reason, .. } => reason,
            other => panic!("{name}: expected a helper refusal, got {other:?}"),
        }
    };
    let cases: &[(&str, &str, &str)] = &[
        (
            "fec_protect(u64::MAX)",
            "mov r1, -1\ncall 1",
            "flow 18446744073709551615 is not",
        ),
        (
            "fec_emit_repair(u64::MAX)",
            "mov r1, -1\ncall 2",
            "count 18446744073709551615 out of range",
        ),
        (
            "fec_emit_repair past the running total",
            "mov r1, 64\ncall 2\nmov r1, 1\ncall 2",
            "64 already",
        ),
        (
            "fec_window_set(u64::MAX)",
            "mov r1, -1\ncall 3",
            "window 18446744073709551615 out of range",
        ),
        (
            "fec_stat(u64::MAX)",
            "mov r1, -1\ncall 4",
            "unknown stat key",
        ),
        (
            "fec_log(u64::MAX, 1)",
            "mov r1, -1\nmov r2, 1\ncall 6",
            "outside the instance region",
        ),
        (
            "fec_log whose end overflows",
            "mov r1, -2\nmov r2, 200\ncall 6",
            "outside the instance region",
        ),
        (
            "fec_log(0, u64::MAX)",
            "mov r1, 0\nmov r2, -1\ncall 6",
            "out of range",
        ),
        (
            "fec_log one past the region",
            "lddw r1, 65536\nmov r2, 1\ncall 6",
            "outside the instance region",
        ),
        (
            "fec_set_code(u64::MAX, ..)",
            "mov r1, -1\nmov r2, 1\nmov r3, 1\ncall 7",
            "unknown scheme",
        ),
        (
            "fec_set_code(RS, u64::MAX, u64::MAX)",
            "mov r1, 1\nmov r2, -1\nmov r3, -1\ncall 7",
            "source_symbols 18446744073709551615 out of range",
        ),
        (
            "fec_set_code(RS, 1, u64::MAX)",
            "mov r1, 1\nmov r2, 1\nmov r3, -1\ncall 7",
            "repair_symbols 18446744073709551615 out of range",
        ),
        (
            "fec_set_code(RS, 256, 64)",
            "mov r1, 1\nmov r2, 256\nmov r3, 64\ncall 7",
            "source + repair <= 256, got 320",
        ),
        (
            "fec_repair_after(u64::MAX) in on_source",
            "mov r1, -1\ncall 8",
            "only valid in configure",
        ),
        (
            "fec_repair_repeat(u64::MAX) in on_source",
            "mov r1, -1\ncall 9",
            "only valid in schedule_repair",
        ),
    ];
    for (name, src, reason) in cases {
        let why = helper_fault(name, src);
        assert!(why.contains(reason), "{name}: {why:?} lacks {reason:?}");
    }

    // Accepted at the edges.
    let (d, _) = ran(
        "fec_log of the last byte",
        run(&asm("lddw r1, 65535\nmov r2, 1\ncall 6\nmov r0, 0\nexit")),
    );
    assert_eq!(d.logs, ["\0"]);
    let (d, _) = ran(
        "fec_set_code(None, u64::MAX, u64::MAX)",
        run(&asm(
            "mov r1, 0\nmov r2, -1\nmov r3, -1\ncall 7\nmov r0, 0\nexit",
        )),
    );
    assert_eq!(
        d.code,
        Some(CodeChoice {
            scheme: Scheme::None,
            source_symbols: u32::MAX,
            repair_symbols: u32::MAX
        })
    );
    let (d, _) = ran(
        "fec_emit_repair up to the cap",
        run(&asm(
            "mov r1, 63\ncall 2\nmov r1, 1\ncall 2\nmov r0, 0\nexit",
        )),
    );
    assert_eq!(d.repair, 64);

    // The budget and the return code.
    let mut many = String::from("mov r1, 0\n");
    many.push_str(&"call 5\n".repeat(257));
    many.push_str("mov r0, 0\nexit");
    assert_eq!(
        faulted("257 helper calls", run(&asm(&many))).kind,
        FaultKind::TooManyHelperCalls
    );
    assert_eq!(
        faulted("r0 = u64::MAX", run(&asm("mov r0, -1\nexit"))).kind,
        FaultKind::BadReturnCode(u64::MAX)
    );
    assert_eq!(
        faulted("FEC_RC_ERROR", run(&asm("mov r0, 2\nexit"))).kind,
        FaultKind::PluginError
    );
}

#[test]
fn the_longest_program_and_the_longest_jump_run() {
    // 2 (lddw) + n (neg) + 3 (store, mov, exit) = MAX_INSTRUCTIONS slots; an
    // even number of negations of i64::MIN gives it back.
    let negations = MAX_INSTRUCTIONS - 5;
    assert_eq!(negations % 2, 0);
    let mut code = lddw(2, i64::MIN as u64).to_vec();
    code.extend(insn(0x87, 2, 0, 0, 0).repeat(negations));
    code.extend(insn(0x7b, 1, 2, STATE as i16, 0));
    code.extend(EPILOGUE);
    assert_eq!(code.len(), MAX_INSTRUCTIONS * 8);
    let (_, memory) = ran("32767 slots", run(&code));
    assert_eq!(slot(&memory, 0), i64::MIN as u64);

    // `ja` from slot 0 over every other slot (each of which would return
    // FEC_RC_ERROR) to the final exit.
    let last = MAX_INSTRUCTIONS - 1;
    let mut code = insn(0xb7, 0, 0, 0, 0).to_vec();
    code.extend(insn(0x05, 0, 0, (last - 2) as i16, 0));
    code.extend(insn(0xb7, 0, 0, 0, 2).repeat(last - 2));
    code.extend(insn(0x95, 0, 0, 0, 0));
    assert_eq!(code.len(), MAX_INSTRUCTIONS * 8);
    ran("a jump of 32764 slots", run(&code));
}

// ---- sweeps against the model ----------------------------------------------

/// Operands that sit on every edge the ALU and jump rules have.
const VALUES: [u64; 17] = [
    0,
    1,
    2,
    31,
    32,
    63,
    64,
    65,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
    u64::MAX - 1,
    0xdead_beef_cafe_f00d,
];

/// Immediates, likewise (each is sign-extended to 64 bits).
const IMMEDIATES: [i32; 14] = [
    0,
    1,
    -1,
    2,
    7,
    31,
    32,
    33,
    63,
    64,
    65,
    i32::MAX,
    i32::MIN,
    -65,
];

/// `(opcode & 0xf0)` of the binary ALU operations.
const ALU_OPS: [u8; 12] = [
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x90, 0xa0, 0xb0, 0xc0,
];

/// `(opcode & 0xf0)` of the conditional jumps.
const JUMP_OPS: [u8; 11] = [
    0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0,
];

/// Why the verifier refuses ALU `opcode` with immediate `imm`, if it does.
fn refused_immediate(opcode: u8, imm: i32) -> Option<&'static str> {
    let width = if opcode & 0x07 == 0x07 { 64 } else { 32 };
    match opcode & 0xf0 {
        0x30 | 0x90 if imm == 0 => Some("division or modulo by the constant 0"),
        0x60 | 0x70 | 0xc0 if !(0..width).contains(&imm) => Some("shift by the constant"),
        _ => None,
    }
}

/// Run a batch of `(code for one case)`, each of which stores its result at
/// its slot, and return the slots.
fn batch(name: &str, cases: &[Vec<u8>], slot_bytes: usize) -> Vec<u8> {
    let mut code: Vec<u8> = cases.concat();
    code.extend(EPILOGUE);
    let (_, memory) = ran(name, run(&code));
    memory[STATE..STATE + cases.len() * slot_bytes].to_vec()
}

#[test]
fn every_alu_operation_matches_the_model_on_edge_operands() {
    let mut checked = 0;
    for class in [0x07u8, 0x04] {
        // Register operands, and `neg`, which has no operand.
        for op in ALU_OPS
            .iter()
            .map(|op| class | op | 0x08)
            .chain([class | 0x80])
        {
            let pairs: Vec<(u64, u64)> = VALUES
                .iter()
                .flat_map(|&a| VALUES.iter().map(move |&b| (a, b)))
                .collect();
            let cases: Vec<Vec<u8>> = pairs
                .iter()
                .enumerate()
                .map(|(i, &(a, b))| {
                    [
                        &lddw(2, a)[..],
                        &lddw(3, b)[..],
                        &insn(op, 2, if op & 0x08 != 0 { 3 } else { 0 }, 0, 0),
                        &insn(0x7b, 1, 2, (STATE + 8 * i) as i16, 0),
                    ]
                    .concat()
                })
                .collect();
            let results = batch(&format!("opcode {op:#04x}"), &cases, 8);
            for (i, &(a, b)) in pairs.iter().enumerate() {
                let got = u64::from_le_bytes(results[8 * i..8 * i + 8].try_into().unwrap());
                assert_eq!(
                    got,
                    model::alu(op, a, b),
                    "opcode {op:#04x} on {a:#x}, {b:#x}"
                );
                checked += 1;
            }
        }
        // Immediate operands.
        for op in ALU_OPS.iter().map(|op| class | op) {
            let mut pairs = Vec::new();
            for imm in IMMEDIATES {
                match refused_immediate(op, imm) {
                    Some(reason) => {
                        let code = [insn(op, 2, 0, 0, imm), insn(0x95, 0, 0, 0, 0)].concat();
                        let name = format!("opcode {op:#04x} with {imm}");
                        let why = refused(&name, run(&code));
                        assert!(why.contains(reason), "{name}: {why}");
                        checked += 1;
                    }
                    None => pairs.extend(VALUES.iter().map(|&a| (a, imm))),
                }
            }
            let cases: Vec<Vec<u8>> = pairs
                .iter()
                .enumerate()
                .map(|(i, &(a, imm))| {
                    [
                        &lddw(2, a)[..],
                        &insn(op, 2, 0, 0, imm),
                        &insn(0x7b, 1, 2, (STATE + 8 * i) as i16, 0),
                    ]
                    .concat()
                })
                .collect();
            let results = batch(&format!("opcode {op:#04x}"), &cases, 8);
            for (i, &(a, imm)) in pairs.iter().enumerate() {
                let got = u64::from_le_bytes(results[8 * i..8 * i + 8].try_into().unwrap());
                let b = i64::from(imm) as u64;
                assert_eq!(
                    got,
                    model::alu(op, a, b),
                    "opcode {op:#04x} on {a:#x}, imm {imm}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 10_000, "{checked}");
}

#[test]
fn every_conditional_jump_matches_the_model_on_edge_operands() {
    let mut checked = 0;
    for class in [0x05u8, 0x06] {
        for op in JUMP_OPS {
            for register in [true, false] {
                let opcode = class | op | if register { 0x08 } else { 0 };
                let pairs: Vec<(u64, u64, i32)> = if register {
                    VALUES
                        .iter()
                        .flat_map(|&a| VALUES.iter().map(move |&b| (a, b, 0)))
                        .collect()
                } else {
                    VALUES
                        .iter()
                        .flat_map(|&a| IMMEDIATES.iter().map(move |&k| (a, i64::from(k) as u64, k)))
                        .collect()
                };
                // r4 = taken; stored as one byte per case.
                let cases: Vec<Vec<u8>> = pairs
                    .iter()
                    .enumerate()
                    .map(|(i, &(a, b, k))| {
                        [
                            &lddw(2, a)[..],
                            &lddw(3, b)[..],
                            &insn(0xb7, 4, 0, 0, 0),
                            &insn(opcode, 2, if register { 3 } else { 0 }, 1, k),
                            &insn(0x05, 0, 0, 1, 0),
                            &insn(0xb7, 4, 0, 0, 1),
                            &insn(0x73, 1, 4, (STATE + i) as i16, 0),
                        ]
                        .concat()
                    })
                    .collect();
                let results = batch(&format!("jump {opcode:#04x}"), &cases, 1);
                for (i, &(a, b, _)) in pairs.iter().enumerate() {
                    let expected = model::jump_taken(opcode, a, b);
                    assert_eq!(
                        results[i] == 1,
                        expected,
                        "jump {opcode:#04x} on {a:#x}, {b:#x}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 10_000, "{checked}");
}

#[test]
fn byte_order_operations_match_the_model() {
    for opcode in [0xd4u8, 0xdc] {
        for bits in [16u32, 32, 64] {
            let cases: Vec<Vec<u8>> = VALUES
                .iter()
                .enumerate()
                .map(|(i, &a)| {
                    [
                        &lddw(2, a)[..],
                        &insn(opcode, 2, 0, 0, bits as i32),
                        &insn(0x7b, 1, 2, (STATE + 8 * i) as i16, 0),
                    ]
                    .concat()
                })
                .collect();
            let results = batch(&format!("{opcode:#04x}/{bits}"), &cases, 8);
            for (i, &a) in VALUES.iter().enumerate() {
                let got = u64::from_le_bytes(results[8 * i..8 * i + 8].try_into().unwrap());
                assert_eq!(
                    got,
                    model::byte_order(opcode, bits, a),
                    "{opcode:#04x}/{bits} of {a:#x}"
                );
            }
        }
    }
}
