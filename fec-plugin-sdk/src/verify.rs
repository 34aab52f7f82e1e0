//! Static verifier: the checks every pluglet passes before anything runs.
//!
//! A pure function over bytecode. It admits exactly the instruction set the
//! runtime's interpreter implements (see `runtime`'s `vm` module for the
//! semantics), closes the gaps of rbpf 0.4's own verifier (which lets through
//! programs that panic its interpreter) and proves termination by
//! construction. The runtime does not execute plugins in rbpf: even a
//! program accepted here panics rbpf 0.4's interpreter built with overflow
//! checks if it negates `i64::MIN`, and nothing short of rejecting `neg`
//! could prevent that statically.
//!
//! - the length is a non-zero multiple of 8 and at most
//!   [`MAX_INSTRUCTIONS`] instructions (the interpreter's jump arithmetic is
//!   16-bit);
//! - every opcode is one we know and the interpreter executes as specified:
//!   no legacy packet loads (`ldabs`/`ldind`), no atomics, no tail calls, no
//!   newer-ISA variants (signed division, sign-extending moves), which the
//!   interpreter does not implement and rbpf 0.4 would silently mis-execute;
//! - `lddw` is complete and plain (no map or relocation pseudo-source);
//! - registers are r0..r10 and nothing writes r10 (the frame pointer);
//! - every jump lands inside the program, never in the second half of an
//!   `lddw`, and only forward: with no back edge every instruction runs at
//!   most once per call, so a call executes at most `len` instructions;
//! - no bpf-to-bpf calls (they would reintroduce recursion), and every helper
//!   call names a helper that the manifest declares **and** the host offers;
//! - division or modulo by the constant 0 is rejected. By a register that holds
//!   0 at run time, the runtime's interpreter defines the result (quotient 0,
//!   remainder unchanged, as the Linux kernel does) and never panics; a test
//!   pins that behaviour;
//! - a shift by a constant outside the operand width (`lsh64 r1, 64`,
//!   `rsh32 r1, 32`, any negative amount) is rejected, as the Linux verifier
//!   does: it is always an author's mistake. A register amount is masked to
//!   the width at run time (`& 63`, `& 31`), as the kernel's interpreter and
//!   JITs do;
//! - the last instruction is `exit`.
//!
//! ```
//! use fec_plugin_sdk::verify::verify;
//! // mov r0, 0; exit
//! let code = [0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
//! let info = verify(&code, &[], &[]).unwrap();
//! assert_eq!(info.instructions, 2);
//! // ja -1 (an infinite loop) is rejected with its index.
//! let looped = [0x05, 0, 0xff, 0xff, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
//! let err = verify(&looped, &[], &[]).unwrap_err();
//! assert_eq!(err.index, Some(0));
//! ```

#![forbid(unsafe_code)]

use std::collections::BTreeSet;

use crate::abi::{HelperId, MAX_INSTRUCTIONS};

/// Why a program was rejected, and at which instruction.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{kind}", match index { Some(i) => format!("instruction {i}: "), None => String::new() })]
pub struct VerifyError {
    /// Index (in 8-byte slots) of the offending instruction, when there is one.
    pub index: Option<usize>,
    /// What is wrong.
    pub kind: Rejection,
}

/// The reasons the verifier rejects a program.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// No instructions at all.
    #[error("empty program")]
    Empty,
    /// Length not a multiple of the 8-byte instruction size.
    #[error("length {len} bytes is not a multiple of 8 (truncated instruction)")]
    Truncated {
        /// Length in bytes.
        len: usize,
    },
    /// More than [`MAX_INSTRUCTIONS`].
    #[error("program has {count} instructions, the limit is {MAX_INSTRUCTIONS}")]
    TooLong {
        /// Instruction count.
        count: usize,
    },
    /// The opcode is unknown or not supported.
    #[error("unknown or unsupported opcode {opcode:#04x}{}", if note.is_empty() { String::new() } else { format!(" ({note})") })]
    Opcode {
        /// The opcode byte.
        opcode: u8,
        /// Why, when known.
        note: &'static str,
    },
    /// A field that must be zero for this opcode is not.
    #[error("{field} must be 0 for opcode {opcode:#04x} (newer-ISA variant not supported)")]
    NonZeroField {
        /// The opcode byte.
        opcode: u8,
        /// `off`, `src` or `imm`.
        field: &'static str,
    },
    /// Register number above r10.
    #[error("invalid register r{register}")]
    Register {
        /// The register number.
        register: u8,
    },
    /// An instruction writes (or names as destination) the read-only frame pointer.
    #[error("writes r10, the read-only frame pointer (r10 may only be a store's base)")]
    WritesFramePointer,
    /// `lddw` is the last slot or its second half is malformed.
    #[error("incomplete or malformed lddw")]
    BadLddw,
    /// `lddw` with a pseudo source (map fd, relocation) we do not support.
    #[error("lddw with pseudo source {src} (maps and relocated data are not supported)")]
    PseudoLddw {
        /// The src field.
        src: u8,
    },
    /// Jump target outside the program.
    #[error("jump to {target} is outside the program ({count} instructions)")]
    JumpOutOfRange {
        /// Target index.
        target: i64,
        /// Instruction count.
        count: usize,
    },
    /// Jump into the second half of an `lddw`.
    #[error("jump to {target} lands in the middle of an lddw")]
    JumpIntoLddw {
        /// Target index.
        target: usize,
    },
    /// Backward jump: a possible loop.
    #[error("backward jump to {target} (loops are not allowed; termination must be provable)")]
    BackEdge {
        /// Target index.
        target: usize,
    },
    /// Division or modulo by the constant 0.
    #[error("division or modulo by the constant 0")]
    DivisionByZero,
    /// Shift by a constant outside `0..width`.
    #[error("shift by the constant {amount} (must be 0..{width} for a {width}-bit operation)")]
    ShiftAmount {
        /// The imm field.
        amount: i32,
        /// Operand width in bits: 32 or 64.
        width: u32,
    },
    /// Byte swap with a width other than 16, 32 or 64.
    #[error("byte swap width {imm} (must be 16, 32 or 64)")]
    SwapWidth {
        /// The imm field.
        imm: i32,
    },
    /// bpf-to-bpf call or other call type.
    #[error("call type {src} not supported (only helper calls; inline local functions)")]
    CallType {
        /// The src field.
        src: u8,
    },
    /// Helper call to an id the manifest does not declare.
    #[error("helper {id} ({name}) is not declared by the manifest")]
    HelperNotDeclared {
        /// Helper id.
        id: u32,
        /// Its name, or "unknown".
        name: &'static str,
    },
    /// Helper call to an id the host does not offer.
    #[error("helper {id} ({name}) is not offered by this host")]
    HelperNotOffered {
        /// Helper id.
        id: u32,
        /// Its name, or "unknown".
        name: &'static str,
    },
    /// The last instruction is not `exit`.
    #[error("last instruction is not exit")]
    NoFinalExit,
}

/// What the verifier learned about an accepted program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramInfo {
    /// Number of 8-byte instruction slots.
    pub instructions: usize,
    /// Helper ids the program calls.
    pub helpers_called: BTreeSet<u32>,
}

/// One decoded instruction slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// Opcode byte.
    pub opcode: u8,
    /// Destination register.
    pub dst: u8,
    /// Source register.
    pub src: u8,
    /// Signed offset.
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

impl Insn {
    /// Decode one 8-byte slot.
    pub fn decode(slot: &[u8; 8]) -> Self {
        Insn {
            opcode: slot[0],
            dst: slot[1] & 0x0f,
            src: slot[1] >> 4,
            off: i16::from_le_bytes([slot[2], slot[3]]),
            imm: i32::from_le_bytes([slot[4], slot[5], slot[6], slot[7]]),
        }
    }

    /// Encode into one 8-byte slot.
    pub fn encode(&self) -> [u8; 8] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [
            self.opcode,
            (self.src << 4) | (self.dst & 0x0f),
            off[0],
            off[1],
            imm[0],
            imm[1],
            imm[2],
            imm[3],
        ]
    }
}

/// Decode a whole program (the length must be a multiple of 8; extra bytes are ignored).
pub fn decode(code: &[u8]) -> Vec<Insn> {
    code.chunks_exact(8)
        .map(|c| Insn::decode(c.try_into().expect("chunks_exact(8) yields 8 bytes")))
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Lddw,
    Load,
    Store,
    Alu {
        imm: bool,
        div: bool,
        /// Operand width in bits when the operation is a shift.
        shift: Option<u32>,
    },
    Neg,
    Swap,
    Jump {
        imm: bool,
    },
    Ja,
    Call,
    Exit,
}

fn classify(opcode: u8) -> Result<Class, &'static str> {
    const ALU_OPS: [u8; 12] = [
        0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x90, 0xa0, 0xb0, 0xc0,
    ];
    const JMP_OPS: [u8; 11] = [
        0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0,
    ];
    let class = opcode & 0x07;
    let op = opcode & 0xf0;
    let source_reg = opcode & 0x08 != 0;
    match class {
        // BPF_LD
        0x00 => match opcode {
            0x18 => Ok(Class::Lddw),
            0x20 | 0x28 | 0x30 | 0x38 | 0x40 | 0x48 | 0x50 | 0x58 => {
                Err("legacy packet load ldabs/ldind")
            }
            _ => Err(""),
        },
        // BPF_LDX, BPF_ST, BPF_STX with MEM mode
        0x01 => match opcode {
            0x61 | 0x69 | 0x71 | 0x79 => Ok(Class::Load),
            _ => Err("only ldx{b,h,w,dw} in MEM mode"),
        },
        0x02 => match opcode {
            0x62 | 0x6a | 0x72 | 0x7a => Ok(Class::Store),
            _ => Err("only st{b,h,w,dw} in MEM mode"),
        },
        0x03 => match opcode {
            0x63 | 0x6b | 0x73 | 0x7b => Ok(Class::Store),
            0xc3 | 0xdb => Err("atomic operations are not supported"),
            _ => Err("only stx{b,h,w,dw} in MEM mode"),
        },
        // BPF_ALU (32) and BPF_ALU64
        0x04 | 0x07 => {
            if op == 0x80 {
                return if source_reg { Err("") } else { Ok(Class::Neg) };
            }
            if op == 0xd0 {
                return if class == 0x04 {
                    Ok(Class::Swap)
                } else {
                    Err("unconditional byte swap is not supported")
                };
            }
            if ALU_OPS.contains(&op) {
                Ok(Class::Alu {
                    imm: !source_reg,
                    div: op == 0x30 || op == 0x90,
                    shift: matches!(op, 0x60 | 0x70 | 0xc0).then_some(if class == 0x07 {
                        64
                    } else {
                        32
                    }),
                })
            } else {
                Err("")
            }
        }
        // BPF_JMP
        0x05 => match opcode {
            0x05 => Ok(Class::Ja),
            0x85 => Ok(Class::Call),
            0x95 => Ok(Class::Exit),
            0xf5 | 0xfd => Err(""),
            _ if JMP_OPS.contains(&op) => Ok(Class::Jump { imm: !source_reg }),
            _ if opcode == 0x8d => Err("indirect call"),
            _ => Err("tail calls and unknown jumps are not supported"),
        },
        // BPF_JMP32
        0x06 => {
            if JMP_OPS.contains(&op) {
                Ok(Class::Jump { imm: !source_reg })
            } else {
                Err("")
            }
        }
        _ => Err(""),
    }
}

fn helper_name(id: u32) -> &'static str {
    HelperId::from_id(id).map_or("unknown", HelperId::name)
}

/// Verify `code` (raw eBPF bytecode, little-endian).
///
/// `declared` are the helper ids the manifest lists; `offered` those the host
/// registers. A helper call passes only if its id is in both.
pub fn verify(code: &[u8], declared: &[u32], offered: &[u32]) -> Result<ProgramInfo, VerifyError> {
    let whole = |kind| VerifyError { index: None, kind };
    if code.is_empty() {
        return Err(whole(Rejection::Empty));
    }
    if !code.len().is_multiple_of(8) {
        return Err(whole(Rejection::Truncated { len: code.len() }));
    }
    let count = code.len() / 8;
    if count > MAX_INSTRUCTIONS {
        return Err(whole(Rejection::TooLong { count }));
    }
    let insns = decode(code);

    // First pass: mark the second halves of lddw, so jump targets can be checked.
    let mut lddw_tail = vec![false; count];
    let mut i = 0;
    while i < count {
        if insns[i].opcode == 0x18 {
            if i + 1 >= count {
                return Err(VerifyError {
                    index: Some(i),
                    kind: Rejection::BadLddw,
                });
            }
            lddw_tail[i + 1] = true;
            i += 2;
        } else {
            i += 1;
        }
    }

    let mut helpers_called = BTreeSet::new();
    let mut i = 0;
    while i < count {
        let insn = insns[i];
        let at = |kind| VerifyError {
            index: Some(i),
            kind,
        };
        if insn.dst > 10 {
            return Err(at(Rejection::Register { register: insn.dst }));
        }
        if insn.src > 10 {
            return Err(at(Rejection::Register { register: insn.src }));
        }
        let class = classify(insn.opcode).map_err(|note| {
            at(Rejection::Opcode {
                opcode: insn.opcode,
                note,
            })
        })?;
        // r10 (the frame pointer) may only be the base of a store; rbpf's own
        // verifier refuses it as the destination of anything else (jumps
        // included), and a program accepted here stays loadable there.
        if insn.dst == 10 && class != Class::Store {
            return Err(at(Rejection::WritesFramePointer));
        }
        let check_jump = |target: i64| -> Result<(), VerifyError> {
            if target < 0 || target >= count as i64 {
                return Err(at(Rejection::JumpOutOfRange { target, count }));
            }
            let target = target as usize;
            if target <= i {
                return Err(at(Rejection::BackEdge { target }));
            }
            if lddw_tail[target] {
                return Err(at(Rejection::JumpIntoLddw { target }));
            }
            Ok(())
        };
        match class {
            Class::Lddw => {
                if insn.src != 0 {
                    return Err(at(Rejection::PseudoLddw { src: insn.src }));
                }
                let tail = insns[i + 1];
                if tail.opcode != 0 || tail.dst != 0 || tail.src != 0 || tail.off != 0 {
                    return Err(at(Rejection::BadLddw));
                }
                i += 2;
                continue;
            }
            Class::Load | Class::Store => {}
            Class::Alu { imm, div, shift } => {
                if insn.off != 0 {
                    return Err(at(Rejection::NonZeroField {
                        opcode: insn.opcode,
                        field: "off",
                    }));
                }
                if imm && div && insn.imm == 0 {
                    return Err(at(Rejection::DivisionByZero));
                }
                if let Some(width) = shift.filter(|_| imm) {
                    if u32::try_from(insn.imm).map_or(true, |amount| amount >= width) {
                        return Err(at(Rejection::ShiftAmount {
                            amount: insn.imm,
                            width,
                        }));
                    }
                }
            }
            Class::Neg => {}
            Class::Swap => {
                if !matches!(insn.imm, 16 | 32 | 64) {
                    return Err(at(Rejection::SwapWidth { imm: insn.imm }));
                }
            }
            Class::Jump { .. } | Class::Ja => {
                check_jump(i as i64 + 1 + i64::from(insn.off))?;
            }
            Class::Call => {
                if insn.src != 0 {
                    return Err(at(Rejection::CallType { src: insn.src }));
                }
                let id = insn.imm as u32;
                if !declared.contains(&id) {
                    return Err(at(Rejection::HelperNotDeclared {
                        id,
                        name: helper_name(id),
                    }));
                }
                if !offered.contains(&id) {
                    return Err(at(Rejection::HelperNotOffered {
                        id,
                        name: helper_name(id),
                    }));
                }
                helpers_called.insert(id);
            }
            Class::Exit => {}
        }
        i += 1;
    }
    if insns[count - 1].opcode != 0x95 || lddw_tail[count - 1] {
        return Err(VerifyError {
            index: Some(count - 1),
            kind: Rejection::NoFinalExit,
        });
    }
    Ok(ProgramInfo {
        instructions: count,
        helpers_called,
    })
}

/// The helper ids a program calls, without judging it (for `pack`, which
/// declares exactly what the bytecode uses). Stops at the first malformed slot.
pub fn helpers_called(code: &[u8]) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    let insns = decode(code);
    let mut i = 0;
    while i < insns.len() {
        let insn = insns[i];
        if insn.opcode == 0x85 && insn.src == 0 {
            out.insert(insn.imm as u32);
        }
        i += if insn.opcode == 0x18 { 2 } else { 1 };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prog(insns: &[Insn]) -> Vec<u8> {
        insns.iter().flat_map(|i| i.encode()).collect()
    }
    fn ins(opcode: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            opcode,
            dst,
            src,
            off,
            imm,
        }
    }
    const EXIT: Insn = Insn {
        opcode: 0x95,
        dst: 0,
        src: 0,
        off: 0,
        imm: 0,
    };

    fn rejection(code: &[u8]) -> VerifyError {
        verify(code, &[4], &[4, 5]).unwrap_err()
    }

    #[test]
    fn accepts_forward_jumps_lddw_and_declared_helpers() {
        let code = prog(&[
            ins(0x18, 1, 0, 0, 5),
            ins(0, 0, 0, 0, 0),
            ins(0x15, 1, 0, 1, 5),
            ins(0x85, 0, 0, 0, 4),
            EXIT,
        ]);
        let info = verify(&code, &[4], &[4, 5]).unwrap();
        assert_eq!(info.instructions, 5);
        assert_eq!(info.helpers_called, BTreeSet::from([4]));
    }

    #[test]
    fn rejections_name_the_instruction() {
        let e = rejection(&prog(&[ins(0x05, 0, 0, -1, 0), EXIT]));
        assert_eq!(e.kind, Rejection::BackEdge { target: 0 });
        assert!(e.to_string().starts_with("instruction 0: backward jump"));

        let e = rejection(&prog(&[ins(0x05, 0, 0, 5, 0), EXIT]));
        assert!(matches!(
            e.kind,
            Rejection::JumpOutOfRange { target: 6, .. }
        ));

        let e = rejection(&prog(&[
            ins(0x05, 0, 0, 1, 0),
            ins(0x18, 1, 0, 0, 0),
            ins(0, 0, 0, 0, 0),
            EXIT,
        ]));
        assert_eq!(e.kind, Rejection::JumpIntoLddw { target: 2 });

        let e = rejection(&prog(&[ins(0xb7, 10, 0, 0, 0), EXIT]));
        assert_eq!((e.index, e.kind), (Some(0), Rejection::WritesFramePointer));

        let e = rejection(&prog(&[ins(0x37, 1, 0, 0, 0), EXIT]));
        assert_eq!(e.kind, Rejection::DivisionByZero);
        let e = rejection(&prog(&[ins(0x94, 1, 0, 0, 0), EXIT]));
        assert_eq!(e.kind, Rejection::DivisionByZero);

        let e = rejection(&prog(&[ins(0x85, 0, 0, 0, 5), EXIT]));
        assert!(matches!(e.kind, Rejection::HelperNotDeclared { id: 5, .. }));
        let e = verify(&prog(&[ins(0x85, 0, 0, 0, 6), EXIT]), &[6], &[4]).unwrap_err();
        assert!(matches!(e.kind, Rejection::HelperNotOffered { id: 6, .. }));

        let e = rejection(&prog(&[ins(0x85, 0, 1, 0, 1), EXIT]));
        assert_eq!(e.kind, Rejection::CallType { src: 1 });

        let e = rejection(&prog(&[ins(0xb7, 0, 0, 0, 0)]));
        assert_eq!((e.index, e.kind), (Some(0), Rejection::NoFinalExit));

        let e = rejection(&prog(&[ins(0x18, 0, 0, 0, 0)]));
        assert_eq!(e.kind, Rejection::BadLddw);

        let e = rejection(&[0x95, 0, 0, 0]);
        assert_eq!(e.kind, Rejection::Truncated { len: 4 });
        let e = rejection(&[]);
        assert_eq!(e.kind, Rejection::Empty);

        // Constant shifts outside the width; 63 and 31 are the largest kept.
        for (opcode, amount, width) in [
            (0x67, 64, 64),
            (0x77, 65, 64),
            (0xc7, -1, 64),
            (0x64, 32, 32),
            (0x74, 33, 32),
            (0xc4, i32::MIN, 32),
        ] {
            let e = rejection(&prog(&[ins(opcode, 1, 0, 0, amount), EXIT]));
            assert_eq!(
                e.kind,
                Rejection::ShiftAmount { amount, width },
                "{opcode:#x}"
            );
        }
        for (opcode, amount) in [(0x67, 63), (0x77, 0), (0xc7, 63), (0x64, 31), (0xc4, 31)] {
            verify(&prog(&[ins(opcode, 1, 0, 0, amount), EXIT]), &[], &[]).unwrap();
        }
        // A register amount is not judged statically (it is masked at run time).
        verify(
            &prog(&[ins(0x6f, 1, 2, 0, 0), ins(0x6c, 1, 2, 0, 0), EXIT]),
            &[],
            &[],
        )
        .unwrap();

        let e = rejection(&prog(&[ins(0xdc, 1, 0, 0, 8), EXIT]));
        assert_eq!(e.kind, Rejection::SwapWidth { imm: 8 });
        let e = rejection(&prog(&[ins(0x3f, 1, 2, 1, 0), EXIT]));
        assert!(matches!(
            e.kind,
            Rejection::NonZeroField { field: "off", .. }
        ));
        let e = rejection(&prog(&[ins(0xbf, 11, 0, 0, 0), EXIT]));
        assert_eq!(e.kind, Rejection::Register { register: 11 });
        for bad in [0x20u8, 0xc3, 0x8d, 0xff, 0x06, 0xd7, 0x18 | 0x80] {
            let e = rejection(&prog(&[ins(bad, 0, 0, 0, 0), ins(0, 0, 0, 0, 0), EXIT]));
            assert!(
                matches!(e.kind, Rejection::Opcode { .. }),
                "opcode {bad:#x}: {e}"
            );
        }
    }

    #[test]
    fn the_path_helpers_pass_when_declared_and_offered_like_any_other() {
        // fec_path_stat(1, loss), then fec_repair_path(1). Their arguments
        // are checked at run time (a path >= MAX_PATHS traps), and whether
        // an observer may take the decision too, as for every helper.
        let code = prog(&[
            ins(0xb7, 1, 0, 0, 1),
            ins(0xb7, 2, 0, 0, 1),
            ins(0x85, 0, 0, 0, HelperId::PathStat as i32),
            ins(0xb7, 1, 0, 0, 1),
            ins(0x85, 0, 0, 0, HelperId::RepairPath as i32),
            ins(0xb7, 0, 0, 0, 0),
            EXIT,
        ]);
        let all: Vec<u32> = HelperId::ALL.iter().map(|h| *h as u32).collect();
        let info = verify(&code, &all, &all).unwrap();
        assert_eq!(info.helpers_called, BTreeSet::from([10, 11]));
        let e = verify(&code, &[10], &all).unwrap_err();
        assert_eq!(e.index, Some(4));
        assert_eq!(
            e.kind,
            Rejection::HelperNotDeclared {
                id: 11,
                name: "fec_repair_path"
            }
        );
        let e = verify(&code, &all, &[11]).unwrap_err();
        assert_eq!(
            (e.index, e.kind),
            (
                Some(2),
                Rejection::HelperNotOffered {
                    id: 10,
                    name: "fec_path_stat"
                }
            )
        );
    }

    #[test]
    fn huge_program_is_rejected_without_scanning() {
        let code = vec![0u8; (MAX_INSTRUCTIONS + 1) * 8];
        assert!(matches!(
            rejection(&code).kind,
            Rejection::TooLong { count } if count == MAX_INSTRUCTIONS + 1
        ));
    }

    /// What `verify` says agrees with the program: an accepted one has the
    /// shape and helpers the checks promise, a rejection points inside it.
    fn verdict_is_consistent(code: &[u8]) -> bool {
        const DECLARED: [u32; 3] = [1, 2, 5];
        const OFFERED: [u32; 4] = [1, 2, 3, 5];
        match verify(code, &DECLARED, &OFFERED) {
            Ok(info) => {
                let insns = decode(code);
                info.instructions * 8 == code.len()
                    && info.instructions <= MAX_INSTRUCTIONS
                    && insns.last().map(|i| i.opcode) == Some(0x95)
                    && info.helpers_called.iter().all(|h| DECLARED.contains(h))
                    && info.helpers_called == helpers_called(code)
                    && insns.iter().all(|i| i.dst <= 10 && i.src <= 10)
            }
            Err(e) => e.index.is_none_or(|i| i < code.len() / 8) && !e.to_string().is_empty(),
        }
    }

    quickcheck::quickcheck! {
        fn arbitrary_bytes_get_a_consistent_verdict(code: Vec<u8>, exits: u8) -> bool {
            // Random bytes, then the same ending in `exit` so more of them
            // reach the checks past the last instruction.
            let mut ending_in_exit = code.clone();
            ending_in_exit.truncate(ending_in_exit.len() / 8 * 8);
            for _ in 0..=exits % 2 {
                ending_in_exit.extend_from_slice(&[0x95, 0, 0, 0, 0, 0, 0, 0]);
            }
            verdict_is_consistent(&code) && verdict_is_consistent(&ending_in_exit)
        }
    }
}
