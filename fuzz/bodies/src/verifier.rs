//! Static verifier plus the runtime's interpreter on arbitrary bytecode.

use std::collections::BTreeSet;

use fec_plugin_sdk::abi::{Anchor, HelperId, Operation, SourceContext};
use fec_plugin_sdk::package::{Manifest, Package, PlugletEntry};
use fec_plugin_sdk::runtime::{HostOffer, HostView, Plugin};
use fec_plugin_sdk::verify::{decode, helpers_called, verify, Insn};

/// Bytes of instance memory the program gets.
const REGION: u32 = 512;

/// Every opcode the interpreter knows in the classes the verifier may
/// accept, so that most generated programs pass and run.
fn opcodes() -> Vec<u8> {
    let mut ops = vec![0x18, 0x05, 0x85, 0x95];
    ops.extend([
        0x61, 0x69, 0x71, 0x79, 0x62, 0x6a, 0x72, 0x7a, 0x63, 0x6b, 0x73, 0x7b,
    ]);
    for class in [0x04u8, 0x07] {
        for op in (0x00u8..=0xc0).step_by(0x10) {
            ops.push(class | op);
            if op != 0x80 {
                ops.push(class | op | 0x08);
            }
        }
    }
    ops.extend([0xd4, 0xdc]);
    for class in [0x05u8, 0x06] {
        for op in [
            0x10u8, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0,
        ] {
            ops.push(class | op);
            ops.push(class | op | 0x08);
        }
    }
    ops
}

/// Turns arbitrary bytes into a program that is likely to pass the
/// verifier: known opcodes, registers r0..r10, short forward jumps, helper
/// ids in range, byte-swap widths the ISA defines, and a final `exit`.
pub(crate) fn shape(raw: &[u8]) -> Vec<u8> {
    let ops = opcodes();
    let mut code = Vec::with_capacity(raw.len() + 8);
    for slot in raw.chunks_exact(8) {
        let mut insn = Insn::decode(slot.try_into().expect("8 bytes"));
        insn.opcode = ops[usize::from(slot[0]) % ops.len()];
        insn.dst %= 11;
        insn.src %= 11;
        match insn.opcode {
            // 0 (unknown) and every helper id.
            0x85 => insn.imm = i32::from(slot[4] % (HelperId::ALL.len() as u8 + 1)),
            0xd4 | 0xdc => insn.imm = [16, 32, 64][usize::from(slot[4]) % 3],
            // Constant shifts stay inside the operand's width (the verifier
            // refuses the others, as Linux's does).
            0x64 | 0x74 | 0xc4 => insn.imm = i32::from(slot[4] % 32),
            0x67 | 0x77 | 0xc7 => insn.imm = i32::from(slot[4] % 64),
            op if op & 0x07 >= 0x05 => insn.off = i16::from(slot[2] % 8),
            _ => {}
        }
        code.extend(insn.encode());
    }
    code.extend(
        Insn {
            opcode: 0x95,
            dst: 0,
            src: 0,
            off: 0,
            imm: 0,
        }
        .encode(),
    );
    code
}

/// Arbitrary bytecode (raw, or shaped to pass the verifier more often) with
/// arbitrary declared and offered helper sets. Properties:
/// - instruction encoding round-trips;
/// - an accepted program's facts are right (length, helpers a subset of
///   declared and offered);
/// - an accepted program runs in the runtime (as a plugin's `on_source`)
///   without panicking, ends (the libFuzzer timeout catches a hang), and
///   keeps its region's size.
pub fn verifier_vm(data: &[u8]) {
    let [mode, declared_mask, offered_mask, raw @ ..] = data else {
        return;
    };
    let code = if mode & 1 == 0 {
        raw.to_vec()
    } else {
        shape(raw)
    };
    // Bits 0..=6 pick helpers (ids above 7 share a bit with id - 7, so the
    // mask stays one byte however many helpers the ABI grows), bit 7 adds an
    // id no host offers.
    let ids = |mask: u8| -> Vec<u32> {
        HelperId::ALL
            .iter()
            .map(|h| *h as u32)
            .filter(|id| mask & (1 << ((id - 1) % 7)) != 0)
            .chain((mask & 0x80 != 0).then_some(99))
            .collect()
    };
    let declared = ids(*declared_mask);
    let offered = ids(*offered_mask);

    for (insn, slot) in decode(&code).iter().zip(code.chunks_exact(8)) {
        assert_eq!(&insn.encode()[..], slot, "instruction does not round-trip");
    }
    let Ok(info) = verify(&code, &declared, &offered) else {
        return;
    };
    assert_eq!(info.instructions * 8, code.len());
    assert_eq!(info.helpers_called, helpers_called(&code));
    let allowed: BTreeSet<u32> = declared
        .iter()
        .filter(|d| offered.contains(d))
        .copied()
        .collect();
    assert!(
        info.helpers_called.is_subset(&allowed),
        "calls {:?}, allowed {allowed:?}",
        info.helpers_called
    );

    let package = Package::new(Manifest {
        name: "fuzz".into(),
        version: "0".into(),
        memory_size: REGION,
        helpers: declared.clone(),
        pluglets: vec![PlugletEntry {
            name: "replace/on_source".into(),
            operation: Operation::OnSource,
            anchor: Anchor::Replace,
            code,
        }],
    });
    // The manifest or the loader may refuse what the bare verifier took (an
    // unknown helper id in the manifest, for one); those never run.
    let Ok(package) = package else {
        return;
    };
    let Ok(plugin) = Plugin::load(&package, &HostOffer { helpers: offered }) else {
        return;
    };
    let mut instance = plugin.instantiate();
    let _ = instance.on_source(&SourceContext::default(), &HostView::default());
    assert_eq!(
        instance.memory().len(),
        REGION as usize,
        "the region keeps its size"
    );
}
