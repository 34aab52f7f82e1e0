//! The VM boundary: an eBPF interpreter for verified pluglets.
//!
//! It replaces rbpf 0.4's interpreter, which the runtime used before: built
//! with overflow checks (any downstream debug build) rbpf panics on `neg` of
//! `i64::MIN`, and with `panic = "abort"` that panic kills the host; its
//! faults are strings to parse; and every execution allocates a stack and
//! looks each helper up in a hash map. Here a [`Program`] is decoded once at
//! load, with its helpers resolved to a table, and [`run`] is one loop with
//! no panic path at all:
//!
//! - registers are a `[u64; 16]` indexed by the 4-bit register fields, so no
//!   index can be out of range (the verifier keeps programs to r0..r10);
//! - every arithmetic operation is wrapping or explicitly defined below;
//! - instructions, memory and helpers are reached through `get`, and a miss
//!   is a [`FaultKind`], never an index panic;
//! - a jump only moves forward (its offset is read as unsigned: the verifier
//!   rejects every negative one), so each step strictly increases the
//!   program counter and a run ends after at most as many steps as the
//!   program has instructions.
//!
//! # Instruction semantics
//!
//! As RFC 9669 (BPF Instruction Set Architecture) and the Linux kernel
//! define them; the verifier (`crate::verify`) admits exactly this set.
//!
//! - `ALU64` operates on 64 bits, with the immediate sign-extended to 64.
//!   `ALU` (32-bit) operates on the low 32 bits of both operands and
//!   zero-extends the result into the 64-bit register.
//! - `add`, `sub`, `mul`, `neg` wrap modulo 2^64 (2^32): `neg` of
//!   `i64::MIN` is `i64::MIN`.
//! - `div` and `mod` are unsigned. Division by zero gives 0; modulo by zero
//!   leaves the destination unchanged (for the 32-bit form, its low 32 bits,
//!   zero-extended). Signed division is not in the admitted set.
//! - Shift amounts are masked to the width (`& 63`, `& 31`), as the kernel's
//!   interpreter and every JIT do; `arsh` shifts in copies of the sign bit.
//!   The verifier rejects immediate amounts outside the width, so only a
//!   register amount is ever masked.
//! - `le16/32/64` keep the low 16/32/64 bits (the host side is
//!   little-endian); `be16/32/64` reverse their bytes; both zero-extend.
//! - `lddw` loads a 64-bit immediate (the low half from its first slot, the
//!   high half from its second).
//! - Loads zero-extend; `st` stores the immediate truncated to the width
//!   (`stdw` sign-extended to 64 bits first). Memory is little-endian.
//! - Conditional jumps compare the full 64 bits (`JMP`) or the low 32
//!   (`JMP32`); the immediate is sign-extended to 64 bits for `JMP`. `jgt`,
//!   `jge`, `jlt`, `jle` are unsigned, `jsgt`, `jsge`, `jslt`, `jsle` signed,
//!   `jset` tests `dst & src != 0`.
//! - `call` passes `r1..r5` to the helper and puts its result in `r0`; it
//!   leaves `r1..r5` as they were (a plugin must not rely on that: the
//!   kernel clobbers them). `exit` returns `r0`.
//!
//! Two of these differ from rbpf 0.4, whose results plugins were tested
//! against before: rbpf zero-extends the immediate of 64-bit `jeq`, `jne`,
//! `jgt`, `jge`, `jlt` and `jle` (so `jeq r1, -1` never matched
//! `0xffff_ffff_ffff_ffff`), and keeps the upper half of a register on
//! 32-bit modulo by zero. Clang relies on the kernel's reading; no shipped
//! plugin contains either case.
//!
//! # Memory model
//!
//! The instance region is mapped at [`REGION_BASE`] (the pointer `r1` holds
//! on entry) and the zeroed 512-byte stack at [`STACK_BASE`], with `r10` on
//! entry pointing one past its end. An access is allowed only if all its
//! bytes fall inside one of the two; any other address faults, whatever
//! register it came from. The addresses are virtual and fixed, so no host
//! address leaks into a plugin and whether a wild pointer traps never
//! depends on where the host's allocator put the region.

#![forbid(unsafe_code)]

use super::call::Call;
use super::helpers::Helper;
use super::FaultKind;

/// Bytes of per-call stack, as in Linux and rbpf.
pub(crate) const STACK_SIZE: usize = 512;
/// Virtual address of the instance region's first byte (`r1` on entry).
/// Above 4 GiB, so no 32-bit value and no small offset is a region pointer.
pub(crate) const REGION_BASE: u64 = 0x1_0000_0000;
/// Virtual address of the stack's lowest byte; `r10` on entry is
/// `STACK_BASE + STACK_SIZE`. Far from the region, so no access straddles
/// both and no small offset from one pointer reaches the other.
pub(crate) const STACK_BASE: u64 = 0x2_0000_0000;

/// One decoded instruction slot, 8 bytes like the encoding it comes from.
#[derive(Clone, Copy, Debug)]
struct Op {
    code: u8,
    /// `dst | src << 4`, as encoded.
    regs: u8,
    off: i16,
    /// The immediate; for `call`, the index into [`Program::helpers`].
    imm: i32,
}

/// A pluglet's bytecode, decoded once at load, and the helpers it may call.
pub(crate) struct Program {
    ops: Box<[Op]>,
    helpers: Box<[Helper]>,
}

impl Program {
    /// Decode verified `code`, binding each helper id it calls with `bind`
    /// (`None`: the id has no implementation). The program must have passed
    /// [`crate::verify::verify`]: this only prepares it, it proves nothing.
    pub(crate) fn new(code: &[u8], bind: impl Fn(u32) -> Option<Helper>) -> Result<Self, String> {
        let mut ops: Vec<Op> = code
            .chunks_exact(8)
            .map(|s| Op {
                code: s[0],
                regs: s[1],
                off: i16::from_le_bytes([s[2], s[3]]),
                imm: i32::from_le_bytes([s[4], s[5], s[6], s[7]]),
            })
            .collect();
        let mut ids: Vec<u32> = Vec::new();
        let mut helpers: Vec<Helper> = Vec::new();
        let mut i = 0;
        while let Some(op) = ops.get_mut(i) {
            match op.code {
                // The second slot of `lddw` is data, not an instruction.
                LDDW => i += 1,
                CALL => {
                    let id = op.imm as u32;
                    let index = match ids.iter().position(|&known| known == id) {
                        Some(index) => index,
                        None => {
                            let helper = bind(id).ok_or_else(|| {
                                format!("helper {id} has no implementation in this runtime")
                            })?;
                            ids.push(id);
                            helpers.push(helper);
                            helpers.len() - 1
                        }
                    };
                    // At most one entry per call instruction: < 32767.
                    op.imm = index as i32;
                }
                _ => {}
            }
            i += 1;
        }
        Ok(Program {
            ops: ops.into(),
            helpers: helpers.into(),
        })
    }
}

// Opcodes the decoder treats specially.
const LDDW: u8 = 0x18;
const CALL: u8 = 0x85;

/// The two areas a plugin can address.
struct Memory<'r> {
    region: &'r mut [u8],
    stack: [u8; STACK_SIZE],
}

/// The `len` bytes at `offset` into `area`, if all of them are inside it.
fn window(area: &[u8], offset: u64, len: usize) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    area.get(start..start.checked_add(len)?)
}

fn window_mut(area: &mut [u8], offset: u64, len: usize) -> Option<&mut [u8]> {
    let start = usize::try_from(offset).ok()?;
    area.get_mut(start..start.checked_add(len)?)
}

fn out_of_bounds(access: &str, instruction: usize, size: usize) -> FaultKind {
    FaultKind::MemoryAccess {
        access: access.into(),
        instruction,
        size,
    }
}

impl Memory<'_> {
    /// Read `N` bytes at `base + off` (instruction `at` faults if any byte
    /// is outside the region and the stack).
    fn load<const N: usize>(&self, base: u64, off: i16, at: usize) -> Result<[u8; N], FaultKind> {
        let addr = base.wrapping_add_signed(i64::from(off));
        window(self.region, addr.wrapping_sub(REGION_BASE), N)
            .or_else(|| window(&self.stack, addr.wrapping_sub(STACK_BASE), N))
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| out_of_bounds("load", at, N))
    }

    /// Write `value` at `base + off`, under the same rule as [`Self::load`].
    fn store<const N: usize>(
        &mut self,
        base: u64,
        off: i16,
        value: [u8; N],
        at: usize,
    ) -> Result<(), FaultKind> {
        let addr = base.wrapping_add_signed(i64::from(off));
        let bytes = match window_mut(self.region, addr.wrapping_sub(REGION_BASE), N) {
            Some(bytes) => Some(bytes),
            None => window_mut(&mut self.stack, addr.wrapping_sub(STACK_BASE), N),
        };
        // An array, not `copy_from_slice`, so not even a length check could panic.
        let bytes: &mut [u8; N] = bytes
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| out_of_bounds("store", at, N))?;
        *bytes = value;
        Ok(())
    }
}

fn div64(a: u64, b: u64) -> u64 {
    a.checked_div(b).unwrap_or(0)
}

fn mod64(a: u64, b: u64) -> u64 {
    a.checked_rem(b).unwrap_or(a)
}

fn div32(a: u64, b: u64) -> u64 {
    u64::from((a as u32).checked_div(b as u32).unwrap_or(0))
}

fn mod32(a: u64, b: u64) -> u64 {
    let a = a as u32;
    u64::from(a.checked_rem(b as u32).unwrap_or(a))
}

/// A 32-bit ALU result, zero-extended into the register.
fn low(value: u32) -> u64 {
    u64::from(value)
}

/// Run `program` once over `region`. Returns `r0` at `exit`, or the first
/// fault (an out-of-bounds access, or whatever a helper refused).
pub(crate) fn run(
    program: &Program,
    region: &mut [u8],
    call: &mut Call<'_>,
) -> Result<u64, FaultKind> {
    let mut memory = Memory {
        region,
        stack: [0; STACK_SIZE],
    };
    let mut r = [0u64; 16];
    r[1] = REGION_BASE;
    r[10] = STACK_BASE + STACK_SIZE as u64;
    let ops = &*program.ops;
    let mut pc = 0usize;
    loop {
        let Some(&op) = ops.get(pc) else {
            return Err(FaultKind::Vm(format!(
                "instruction {pc} is past the end of the program"
            )));
        };
        let at = pc;
        // `pc < ops.len()`, so this cannot overflow.
        pc += 1;
        let d = usize::from(op.regs & 0x0f);
        let s = usize::from(op.regs >> 4);
        // The immediate as a 64-bit operand: sign-extended.
        let k = i64::from(op.imm) as u64;
        macro_rules! jump_if {
            ($taken:expr) => {
                if $taken {
                    // Forward only: a negative offset (which the verifier
                    // rejects) would read as a far forward jump and fault.
                    pc += usize::from(op.off as u16);
                }
            };
        }
        match op.code {
            // --- 64-bit ALU: immediate (0x?7) and register (0x?f) forms ---
            0x07 => r[d] = r[d].wrapping_add(k),
            0x0f => r[d] = r[d].wrapping_add(r[s]),
            0x17 => r[d] = r[d].wrapping_sub(k),
            0x1f => r[d] = r[d].wrapping_sub(r[s]),
            0x27 => r[d] = r[d].wrapping_mul(k),
            0x2f => r[d] = r[d].wrapping_mul(r[s]),
            0x37 => r[d] = div64(r[d], k),
            0x3f => r[d] = div64(r[d], r[s]),
            0x47 => r[d] |= k,
            0x4f => r[d] |= r[s],
            0x57 => r[d] &= k,
            0x5f => r[d] &= r[s],
            // `wrapping_sh*` masks the amount to the width, as eBPF does.
            0x67 => r[d] = r[d].wrapping_shl(k as u32),
            0x6f => r[d] = r[d].wrapping_shl(r[s] as u32),
            0x77 => r[d] = r[d].wrapping_shr(k as u32),
            0x7f => r[d] = r[d].wrapping_shr(r[s] as u32),
            0x87 => r[d] = r[d].wrapping_neg(),
            0x97 => r[d] = mod64(r[d], k),
            0x9f => r[d] = mod64(r[d], r[s]),
            0xa7 => r[d] ^= k,
            0xaf => r[d] ^= r[s],
            0xb7 => r[d] = k,
            0xbf => r[d] = r[s],
            0xc7 => r[d] = (r[d] as i64).wrapping_shr(k as u32) as u64,
            0xcf => r[d] = (r[d] as i64).wrapping_shr(r[s] as u32) as u64,

            // --- 32-bit ALU: low halves in, result zero-extended ---------
            0x04 => r[d] = low((r[d] as u32).wrapping_add(k as u32)),
            0x0c => r[d] = low((r[d] as u32).wrapping_add(r[s] as u32)),
            0x14 => r[d] = low((r[d] as u32).wrapping_sub(k as u32)),
            0x1c => r[d] = low((r[d] as u32).wrapping_sub(r[s] as u32)),
            0x24 => r[d] = low((r[d] as u32).wrapping_mul(k as u32)),
            0x2c => r[d] = low((r[d] as u32).wrapping_mul(r[s] as u32)),
            0x34 => r[d] = div32(r[d], k),
            0x3c => r[d] = div32(r[d], r[s]),
            0x44 => r[d] = low(r[d] as u32 | k as u32),
            0x4c => r[d] = low(r[d] as u32 | r[s] as u32),
            0x54 => r[d] = low(r[d] as u32 & k as u32),
            0x5c => r[d] = low(r[d] as u32 & r[s] as u32),
            0x64 => r[d] = low((r[d] as u32).wrapping_shl(k as u32)),
            0x6c => r[d] = low((r[d] as u32).wrapping_shl(r[s] as u32)),
            0x74 => r[d] = low((r[d] as u32).wrapping_shr(k as u32)),
            0x7c => r[d] = low((r[d] as u32).wrapping_shr(r[s] as u32)),
            0x84 => r[d] = low((r[d] as u32).wrapping_neg()),
            0x94 => r[d] = mod32(r[d], k),
            0x9c => r[d] = mod32(r[d], r[s]),
            0xa4 => r[d] = low(r[d] as u32 ^ k as u32),
            0xac => r[d] = low(r[d] as u32 ^ r[s] as u32),
            0xb4 => r[d] = low(k as u32),
            0xbc => r[d] = low(r[s] as u32),
            0xc4 => r[d] = low((r[d] as i32).wrapping_shr(k as u32) as u32),
            0xcc => r[d] = low((r[d] as i32).wrapping_shr(r[s] as u32) as u32),
            // Byte order: to little-endian keeps the low bits, to big-endian
            // reverses them; the verifier admits widths 16, 32 and 64 only.
            0xd4 => {
                r[d] = match op.imm {
                    16 => u64::from(r[d] as u16),
                    32 => u64::from(r[d] as u32),
                    _ => r[d],
                }
            }
            0xdc => {
                r[d] = match op.imm {
                    16 => u64::from((r[d] as u16).swap_bytes()),
                    32 => u64::from((r[d] as u32).swap_bytes()),
                    _ => r[d].swap_bytes(),
                }
            }

            // --- 64-bit immediate load (two slots) ------------------------
            LDDW => {
                let Some(high) = ops.get(pc) else {
                    return Err(FaultKind::Vm(format!(
                        "instruction {at}: lddw has no second slot"
                    )));
                };
                r[d] = u64::from(op.imm as u32) | u64::from(high.imm as u32) << 32;
                pc += 1;
            }

            // --- loads: ldx{w,h,b,dw} dst, [src + off] ---------------------
            0x61 => r[d] = u64::from(u32::from_le_bytes(memory.load(r[s], op.off, at)?)),
            0x69 => r[d] = u64::from(u16::from_le_bytes(memory.load(r[s], op.off, at)?)),
            0x71 => r[d] = u64::from(u8::from_le_bytes(memory.load(r[s], op.off, at)?)),
            0x79 => r[d] = u64::from_le_bytes(memory.load(r[s], op.off, at)?),
            // --- stores of the immediate: st{w,h,b,dw} [dst + off], imm -----
            0x62 => memory.store(r[d], op.off, (op.imm as u32).to_le_bytes(), at)?,
            0x6a => memory.store(r[d], op.off, (op.imm as u16).to_le_bytes(), at)?,
            0x72 => memory.store(r[d], op.off, (op.imm as u8).to_le_bytes(), at)?,
            0x7a => memory.store(r[d], op.off, k.to_le_bytes(), at)?,
            // --- stores of a register: stx{w,h,b,dw} [dst + off], src -------
            0x63 => memory.store(r[d], op.off, (r[s] as u32).to_le_bytes(), at)?,
            0x6b => memory.store(r[d], op.off, (r[s] as u16).to_le_bytes(), at)?,
            0x73 => memory.store(r[d], op.off, (r[s] as u8).to_le_bytes(), at)?,
            0x7b => memory.store(r[d], op.off, r[s].to_le_bytes(), at)?,

            // --- 64-bit jumps: immediate (0x?5) and register (0x?d) forms ---
            0x05 => jump_if!(true),
            0x15 => jump_if!(r[d] == k),
            0x1d => jump_if!(r[d] == r[s]),
            0x25 => jump_if!(r[d] > k),
            0x2d => jump_if!(r[d] > r[s]),
            0x35 => jump_if!(r[d] >= k),
            0x3d => jump_if!(r[d] >= r[s]),
            0x45 => jump_if!(r[d] & k != 0),
            0x4d => jump_if!(r[d] & r[s] != 0),
            0x55 => jump_if!(r[d] != k),
            0x5d => jump_if!(r[d] != r[s]),
            0x65 => jump_if!((r[d] as i64) > k as i64),
            0x6d => jump_if!((r[d] as i64) > r[s] as i64),
            0x75 => jump_if!((r[d] as i64) >= k as i64),
            0x7d => jump_if!((r[d] as i64) >= r[s] as i64),
            0xa5 => jump_if!(r[d] < k),
            0xad => jump_if!(r[d] < r[s]),
            0xb5 => jump_if!(r[d] <= k),
            0xbd => jump_if!(r[d] <= r[s]),
            0xc5 => jump_if!((r[d] as i64) < k as i64),
            0xcd => jump_if!((r[d] as i64) < r[s] as i64),
            0xd5 => jump_if!((r[d] as i64) <= k as i64),
            0xdd => jump_if!((r[d] as i64) <= r[s] as i64),

            // --- 32-bit jumps: the low halves --------------------------------
            0x16 => jump_if!(r[d] as u32 == k as u32),
            0x1e => jump_if!(r[d] as u32 == r[s] as u32),
            0x26 => jump_if!(r[d] as u32 > k as u32),
            0x2e => jump_if!(r[d] as u32 > r[s] as u32),
            0x36 => jump_if!(r[d] as u32 >= k as u32),
            0x3e => jump_if!(r[d] as u32 >= r[s] as u32),
            0x46 => jump_if!(r[d] as u32 & k as u32 != 0),
            0x4e => jump_if!(r[d] as u32 & r[s] as u32 != 0),
            0x56 => jump_if!(r[d] as u32 != k as u32),
            0x5e => jump_if!(r[d] as u32 != r[s] as u32),
            0x66 => jump_if!((r[d] as i32) > k as i32),
            0x6e => jump_if!((r[d] as i32) > r[s] as i32),
            0x76 => jump_if!((r[d] as i32) >= k as i32),
            0x7e => jump_if!((r[d] as i32) >= r[s] as i32),
            0xa6 => jump_if!((r[d] as u32) < k as u32),
            0xae => jump_if!((r[d] as u32) < r[s] as u32),
            0xb6 => jump_if!(r[d] as u32 <= k as u32),
            0xbe => jump_if!(r[d] as u32 <= r[s] as u32),
            0xc6 => jump_if!((r[d] as i32) < k as i32),
            0xce => jump_if!((r[d] as i32) < r[s] as i32),
            0xd6 => jump_if!((r[d] as i32) <= k as i32),
            0xde => jump_if!((r[d] as i32) <= r[s] as i32),

            // --- helper call and exit ----------------------------------------
            CALL => {
                let Some(helper) = program.helpers.get(op.imm as u32 as usize) else {
                    return Err(FaultKind::Vm(format!(
                        "instruction {at}: call to an unbound helper"
                    )));
                };
                r[0] = call.helper(helper, memory.region, [r[1], r[2], r[3], r[4], r[5]])?;
            }
            0x95 => return Ok(r[0]),

            code => {
                return Err(FaultKind::Vm(format!(
                    "instruction {at}: opcode {code:#04x} is not executable"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{Anchor, Operation};
    use crate::runtime::{helpers, HostView};

    /// Run `code` as given, without the verifier: what the interpreter does
    /// on its own with programs the verifier would refuse.
    fn run_unverified(code: &[u8]) -> Result<u64, FaultKind> {
        let program = Program::new(code, helpers::bind).expect("decodes");
        let view = HostView::default();
        let mut logs = Vec::new();
        let mut call = Call::new(
            Operation::ScheduleRepair,
            Anchor::Replace,
            None,
            &view,
            &mut logs,
        );
        let mut region = vec![0u8; 256];
        run(&program, &mut region, &mut call)
    }

    fn slot(opcode: u8, regs: u8, off: i16, imm: i32) -> [u8; 8] {
        let [o0, o1] = off.to_le_bytes();
        let [i0, i1, i2, i3] = imm.to_le_bytes();
        [opcode, regs, o0, o1, i0, i1, i2, i3]
    }

    #[test]
    fn without_the_verifier_it_still_ends_and_never_panics() {
        let vm_error = |code: &[u8]| match run_unverified(code) {
            Err(FaultKind::Vm(message)) => message,
            other => panic!("expected a VM error, got {other:?}"),
        };
        // A backward jump reads as a far forward one: it ends, no loop.
        let looped = [slot(0x05, 0, -1, 0), slot(0x95, 0, 0, 0)].concat();
        assert!(vm_error(&looped).contains("past the end"));
        // Falling off the end, an unknown opcode, a truncated lddw.
        assert!(vm_error(&slot(0xb7, 0, 0, 0)).contains("past the end"));
        assert!(vm_error(&slot(0xff, 0, 0, 0)).contains("opcode 0xff"));
        assert!(vm_error(&slot(0x18, 0, 0, 0)).contains("no second slot"));
        // Registers past r10 are just more registers, never an index panic.
        let r15 = [
            slot(0xb7, 0x0f, 0, 7),
            slot(0xbf, 0xf0, 0, 0),
            slot(0x95, 0, 0, 0),
        ]
        .concat();
        assert_eq!(run_unverified(&r15), Ok(7));
    }

    #[test]
    fn helpers_are_bound_once_per_program_and_unknown_ids_refused() {
        let call = |id: i32| slot(CALL, 0, 0, id);
        let code = [call(4), call(5), call(4), slot(0x95, 0, 0, 0)].concat();
        let program = Program::new(&code, helpers::bind).unwrap();
        assert_eq!(program.helpers.len(), 2);
        let indices: Vec<i32> = program.ops.iter().take(3).map(|op| op.imm).collect();
        assert_eq!(indices, [0, 1, 0]);
        let err = Program::new(&call(99), helpers::bind).err().unwrap();
        assert!(err.contains("helper 99"), "{err}");
        // The second slot of an lddw is data, even if it looks like a call.
        let lddw = [slot(LDDW, 0, 0, 0), call(99), slot(0x95, 0, 0, 0)].concat();
        assert!(Program::new(&lddw, helpers::bind).is_ok());
    }
}
