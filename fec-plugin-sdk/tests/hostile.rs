//! Hostile corpus: programs, packages and signatures written to break the
//! host. Each one must be rejected by the verifier / parser / trust check, or
//! trapped at run time with a clear reason; afterwards the same process still
//! runs a well-behaved plugin.

use ed25519_dalek::SigningKey;
use fec_plugin_sdk::abi::{
    Anchor, LossContext, Operation, ScheduleContext, SourceContext, MAX_INSTRUCTIONS,
};
use fec_plugin_sdk::asm::assemble;
use fec_plugin_sdk::package::{Manifest, Package, PlugletEntry, TrustStore};
use fec_plugin_sdk::runtime::{HostOffer, HostView, Plugin};

fn asm(src: &str) -> Vec<u8> {
    assemble(src).unwrap_or_else(|e| panic!("test program does not assemble: {e}\n{src}"))
}

fn raw(insns: &[(u8, u8, u8, i16, i32)]) -> Vec<u8> {
    insns
        .iter()
        .flat_map(|&(op, dst, src, off, imm)| {
            let mut b = vec![op, (src << 4) | dst];
            b.extend_from_slice(&off.to_le_bytes());
            b.extend_from_slice(&imm.to_le_bytes());
            b
        })
        .collect()
}

fn package(pluglets: Vec<(Operation, Anchor, Vec<u8>)>, memory_size: u32) -> Package {
    try_package(pluglets, memory_size).expect("structurally valid package")
}

fn try_package(
    pluglets: Vec<(Operation, Anchor, Vec<u8>)>,
    memory_size: u32,
) -> Result<Package, fec_plugin_sdk::package::PackageError> {
    Package::new(Manifest {
        name: "hostile".into(),
        version: "0.0.1".into(),
        memory_size,
        helpers: HostOffer::all().helpers,
        pluglets: pluglets
            .into_iter()
            .enumerate()
            .map(|(i, (operation, anchor, code))| PlugletEntry {
                name: format!("p{i}"),
                operation,
                anchor,
                code,
            })
            .collect(),
    })
}

enum Outcome {
    Rejected(String),
    Trapped(String),
    Accepted,
}

/// Load `code` as the replace pluglet of on_source (or `op`) and call it twice.
fn run(op: Operation, anchor: Anchor, code: Vec<u8>, offer: &HostOffer) -> Outcome {
    let mut pluglets = vec![(op, anchor, code)];
    if anchor == Anchor::Post && op.accepts_replace() {
        pluglets.push((op, Anchor::Replace, asm("mov r0, 0\nexit")));
    }
    let package = match try_package(pluglets, 256) {
        Ok(p) => p,
        Err(e) => return Outcome::Rejected(e.to_string()),
    };
    let plugin = match Plugin::load(&package, offer) {
        Ok(p) => p,
        Err(e) => return Outcome::Rejected(e.to_string()),
    };
    let mut instance = plugin.instantiate();
    let view = HostView::default();
    let result = match op {
        Operation::ScheduleRepair => instance
            .schedule_repair(&ScheduleContext::default(), &view)
            .map(|_| ()),
        Operation::OnLoss => instance.on_loss(&LossContext::default(), &view).map(|_| ()),
        _ => instance
            .on_source(
                &SourceContext {
                    flow: 3,
                    ..Default::default()
                },
                &view,
            )
            .map(|_| ()),
    };
    match result {
        Ok(()) => Outcome::Accepted,
        Err(fault) => {
            // Disabled for good: the next call fails fast with the same reason.
            let again = instance
                .on_source(&SourceContext::default(), &view)
                .unwrap_err();
            assert_eq!(again, fault);
            assert_eq!(instance.disabled(), Some(&fault));
            Outcome::Trapped(fault.to_string())
        }
    }
}

struct Case {
    name: &'static str,
    op: Operation,
    anchor: Anchor,
    code: Vec<u8>,
    trapped: bool,
    reason: &'static str,
}

fn replace(name: &'static str, code: Vec<u8>, trapped: bool, reason: &'static str) -> Case {
    Case {
        name,
        op: Operation::OnSource,
        anchor: Anchor::Replace,
        code,
        trapped,
        reason,
    }
}

fn program_cases() -> Vec<Case> {
    let mut many_calls = String::new();
    for _ in 0..300 {
        many_calls.push_str("call 5\n");
    }
    many_calls.push_str("mov r0, 0\nexit");
    let mut huge = [0xb7u8, 0, 0, 0, 0, 0, 0, 0].repeat(MAX_INSTRUCTIONS + 10);
    huge.extend_from_slice(&[0x95, 0, 0, 0, 0, 0, 0, 0]);
    vec![
        // --- memory: trapped by the interpreter's bounds checks -------------
        // A plugin addresses only its region and its stack, both at fixed
        // virtual addresses, so every address below traps whatever the host
        // allocator did. (Under rbpf, which used host addresses, they were
        // chosen adjacent to the region or in the kernel half of the address
        // space so that they could not land in the per-call stack.)
        replace(
            "load from the kernel half",
            asm("lddw r3, 0x8000000000000000\nxor r3, r1\nldxdw r0, [r3]\nexit"),
            true,
            "out-of-bounds load of 8 bytes at instruction 3",
        ),
        replace(
            "store past region",
            asm("stdw [r1+256], 1\nmov r0, 0\nexit"),
            true,
            "out-of-bounds store",
        ),
        replace(
            "load before region",
            asm("ldxb r0, [r1-1]\nexit"),
            true,
            "out-of-bounds load",
        ),
        replace(
            "load straddling the end",
            asm("ldxdw r0, [r1+252]\nexit"),
            true,
            "out-of-bounds load of 8 bytes",
        ),
        replace(
            "stack escape upwards",
            asm("stxdw [r10+8], r1\nmov r0, 0\nexit"),
            true,
            "out-of-bounds store",
        ),
        replace(
            "stack escape downwards",
            asm("stdw [r10-520], 1\nmov r0, 0\nexit"),
            true,
            "out-of-bounds store",
        ),
        replace(
            "null pointer load",
            asm("mov r2, 0\nldxdw r0, [r2]\nexit"),
            true,
            "out-of-bounds load",
        ),
        replace(
            "forged host pointer",
            asm("lddw r2, 0x7fff00001000\nldxb r0, [r2]\nexit"),
            true,
            "out-of-bounds load",
        ),
        replace(
            "pointer arithmetic beyond region",
            asm("mov r2, r1\nlsh r2, 1\nlddw r3, 0x8000000000000000\nor r2, r3\nstb [r2], 1\nmov r0, 0\nexit"),
            true,
            "out-of-bounds store",
        ),
        // --- helpers: every argument checked against the caller --------------
        replace(
            "emit_repair 1000",
            asm("mov r1, 1000\ncall 2\nmov r0, 0\nexit"),
            true,
            "count 1000 out of range",
        ),
        // 1 + (2^64 - 1) wraps to 0: in a debug build that was an overflow
        // panic inside the helper, in release a silently accepted count.
        replace(
            "emit_repair overflowing the running total",
            asm("mov r1, 1\ncall 2\nmov r1, -1\ncall 2\nmov r0, 0\nexit"),
            true,
            "helper fec_emit_repair: count 18446744073709551615 out of range",
        ),
        replace(
            "emit_repair 0",
            asm("mov r1, 0\ncall 2\nmov r0, 0\nexit"),
            true,
            "count 0 out of range",
        ),
        replace(
            "window 0",
            asm("mov r1, 0\ncall 3\nmov r0, 0\nexit"),
            true,
            "window 0 out of range",
        ),
        replace(
            "window huge",
            asm("mov r1, 100000\ncall 3\nmov r0, 0\nexit"),
            true,
            "window 100000 out of range",
        ),
        replace(
            "unknown stat key",
            asm("mov r1, 99\ncall 4\nmov r0, 0\nexit"),
            true,
            "unknown stat key 99",
        ),
        replace(
            "log with a pointer instead of an offset",
            asm("mov r2, 10\ncall 6\nmov r0, 0\nexit"),
            true,
            "outside the instance region",
        ),
        replace(
            "log too long",
            asm("mov r1, 0\nmov r2, 100000\ncall 6\nmov r0, 0\nexit"),
            true,
            "length 100000 out of range",
        ),
        replace(
            "protect another flow",
            asm("mov r1, 4\ncall 1\nmov r0, 0\nexit"),
            true,
            "flow 4 is not this packet's flow",
        ),
        replace(
            "unknown scheme",
            asm("mov r1, 9\nmov r2, 4\nmov r3, 1\ncall 7\nmov r0, 0\nexit"),
            true,
            "unknown scheme 9",
        ),
        replace(
            "Reed-Solomon beyond 256 shards",
            asm("mov r1, 1\nmov r2, 250\nmov r3, 64\ncall 7\nmov r0, 0\nexit"),
            true,
            "source + repair <= 256",
        ),
        Case {
            name: "decision helper from a post observer",
            op: Operation::OnSource,
            anchor: Anchor::Post,
            code: asm("mov r1, 3\ncall 1\nmov r0, 0\nexit"),
            trapped: true,
            reason: "observers are read-only",
        },
        Case {
            name: "repair_repeat beyond the window",
            op: Operation::ScheduleRepair,
            anchor: Anchor::Replace,
            code: asm("mov r1, 1\ncall 2\nmov r1, 257\ncall 9\nmov r0, 0\nexit"),
            trapped: true,
            reason: "257 calls out of range",
        },
        Case {
            name: "repair_repeat 0",
            op: Operation::ScheduleRepair,
            anchor: Anchor::Replace,
            code: asm("mov r1, 0\ncall 9\nmov r0, 0\nexit"),
            trapped: true,
            reason: "0 calls out of range",
        },
        replace(
            "repair_repeat outside schedule_repair",
            asm("mov r1, 4\ncall 9\nmov r0, 0\nexit"),
            true,
            "only valid in schedule_repair, called in on_source",
        ),
        Case {
            name: "repair_repeat from a post observer",
            op: Operation::ScheduleRepair,
            anchor: Anchor::Post,
            code: asm("mov r1, 4\ncall 9\nmov r0, 0\nexit"),
            trapped: true,
            reason: "observers are read-only",
        },
        Case {
            name: "protect outside on_source",
            op: Operation::ScheduleRepair,
            anchor: Anchor::Replace,
            code: asm("mov r1, 0\ncall 1\nmov r0, 0\nexit"),
            trapped: true,
            reason: "only valid in on_source",
        },
        // --- paths: ids below MAX_PATHS (4), known keys --------------------
        replace(
            "path_stat of path 4 (MAX_PATHS)",
            asm("mov r1, 4\nmov r2, 0\ncall 10\nmov r0, 0\nexit"),
            true,
            "helper fec_path_stat: path 4 out of range (0..4)",
        ),
        replace(
            "path_stat of path 255",
            asm("mov r1, 255\nmov r2, 1\ncall 10\nmov r0, 0\nexit"),
            true,
            "helper fec_path_stat: path 255 out of range (0..4)",
        ),
        // 2^32 + 1 would name path 1 if the id were truncated to 32 bits.
        replace(
            "path_stat of a path past 32 bits",
            asm("lddw r1, 0x100000001\nmov r2, 1\ncall 10\nmov r0, 0\nexit"),
            true,
            "path 4294967297 out of range",
        ),
        replace(
            "path_stat with an unknown key",
            asm("mov r1, 0\nmov r2, 9\ncall 10\nmov r0, 0\nexit"),
            true,
            "helper fec_path_stat: unknown path stat key 9",
        ),
        replace(
            "path_stat with key -1",
            asm("mov r1, 1\nmov r2, -1\ncall 10\nmov r0, 0\nexit"),
            true,
            "unknown path stat key 18446744073709551615",
        ),
        Case {
            name: "repair_path 9",
            op: Operation::ScheduleRepair,
            anchor: Anchor::Replace,
            code: asm("mov r1, 9\ncall 11\nmov r0, 0\nexit"),
            trapped: true,
            reason: "helper fec_repair_path: path 9 out of range (0..4)",
        },
        replace(
            "repair_path -1",
            asm("mov r1, -1\ncall 11\nmov r0, 0\nexit"),
            true,
            "path 18446744073709551615 out of range",
        ),
        Case {
            name: "repair_path from a post observer",
            op: Operation::ScheduleRepair,
            anchor: Anchor::Post,
            code: asm("mov r1, 0\ncall 11\nmov r0, 0\nexit"),
            trapped: true,
            reason: "helper fec_repair_path: decision helper called from a post observer",
        },
        Case {
            name: "repair_path from an on_loss observer",
            op: Operation::OnLoss,
            anchor: Anchor::Post,
            code: asm("mov r1, 1\ncall 11\nmov r0, 0\nexit"),
            trapped: true,
            reason: "observers are read-only",
        },
        replace(
            "too many helper calls",
            asm(&many_calls),
            true,
            "more than 256 helper calls",
        ),
        replace(
            "unknown return code",
            asm("mov r0, 77\nexit"),
            true,
            "unknown return code 77",
        ),
        replace(
            "plugin reports an error",
            asm("mov r0, 2\nexit"),
            true,
            "FEC_RC_ERROR",
        ),
        // --- verifier -----------------------------------------------------
        replace("infinite loop", asm("ja -1\nexit"), false, "backward jump"),
        replace(
            "bounded-looking loop",
            asm("mov r2, 10\nsub r2, 1\njne r2, 0, -2\nmov r0, 0\nexit"),
            false,
            "instruction 2: backward jump",
        ),
        replace(
            "unknown opcode",
            raw(&[(0xff, 0, 0, 0, 0), (0x95, 0, 0, 0, 0)]),
            false,
            "unknown or unsupported opcode 0xff",
        ),
        replace(
            "undeclared helper",
            asm("call 99\nexit"),
            false,
            "helper 99 (unknown) is not declared",
        ),
        replace(
            "truncated program",
            vec![0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0],
            false,
            "code length is 12",
        ),
        replace("huge program", huge, false, "code length is 262224"),
        replace(
            "no final exit",
            asm("mov r0, 0"),
            false,
            "last instruction is not exit",
        ),
        replace(
            "jump out of program",
            asm("ja +5\nexit"),
            false,
            "outside the program",
        ),
        replace(
            "jump into lddw",
            raw(&[
                (0x05, 0, 0, 1, 0),
                (0x18, 1, 0, 0, 0),
                (0, 0, 0, 0, 0),
                (0x95, 0, 0, 0, 0),
            ]),
            false,
            "middle of an lddw",
        ),
        replace("write to r10", asm("mov r10, 0\nexit"), false, "writes r10"),
        replace(
            "shift by the constant 64",
            asm("lsh r0, 64\nexit"),
            false,
            "shift by the constant 64",
        ),
        replace(
            "32-bit shift by the constant 32",
            asm("arsh32 r0, 32\nexit"),
            false,
            "shift by the constant 32",
        ),
        replace(
            "signed division (newer ISA, off = 1)",
            raw(&[(0x3f, 0, 1, 1, 0), (0x95, 0, 0, 0, 0)]),
            false,
            "off must be 0",
        ),
        replace(
            "division by constant zero",
            asm("div r0, 0\nexit"),
            false,
            "division or modulo by the constant 0",
        ),
        replace(
            "bpf-to-bpf call",
            raw(&[(0x85, 0, 1, 0, 0), (0x95, 0, 0, 0, 0)]),
            false,
            "call type 1 not supported",
        ),
        replace(
            "map pseudo lddw (relocated data)",
            raw(&[(0x18, 1, 1, 0, 3), (0, 0, 0, 0, 0), (0x95, 0, 0, 0, 0)]),
            false,
            "pseudo source 1",
        ),
        replace(
            "atomic add",
            raw(&[(0xdb, 1, 2, 0, 0), (0x95, 0, 0, 0, 0)]),
            false,
            "atomic",
        ),
        replace(
            "legacy packet load",
            raw(&[(0x30, 0, 0, 0, 0), (0x95, 0, 0, 0, 0)]),
            false,
            "ldabs",
        ),
        replace(
            "register r11",
            raw(&[(0xbf, 11, 1, 0, 0), (0x95, 0, 0, 0, 0)]),
            false,
            "invalid register r11",
        ),
        replace(
            "tail call",
            raw(&[(0x8d, 0, 0, 0, 0), (0x95, 0, 0, 0, 0)]),
            false,
            "opcode 0x8d",
        ),
    ]
}

#[test]
fn hostile_programs_are_rejected_or_trapped_with_a_reason() {
    let offer = HostOffer::all();
    let cases = program_cases();
    let mut rejected = 0;
    let mut trapped = 0;
    for case in &cases {
        let (was_trapped, reason) = match run(case.op, case.anchor, case.code.clone(), &offer) {
            Outcome::Accepted => panic!("{}: accepted and ran cleanly", case.name),
            Outcome::Rejected(reason) => (false, reason),
            Outcome::Trapped(reason) => (true, reason),
        };
        let (outcome, expected) = if was_trapped {
            ("trapped", "static rejection")
        } else {
            ("rejected statically", "a trap")
        };
        assert_eq!(
            was_trapped, case.trapped,
            "{}: {outcome} ({reason}), expected {expected}",
            case.name
        );
        assert!(
            reason.contains(case.reason),
            "{}: reason {reason:?} lacks {:?}",
            case.name,
            case.reason
        );
        if was_trapped {
            trapped += 1;
        } else {
            rejected += 1;
        }
    }
    assert!(cases.len() >= 30);
    eprintln!(
        "hostile programs: {rejected} rejected by the verifier, {trapped} trapped at run time"
    );
    host_still_works();
}

#[test]
fn helper_the_host_does_not_offer_is_rejected() {
    let offer = HostOffer {
        helpers: vec![4, 5],
    };
    match run(
        Operation::OnSource,
        Anchor::Replace,
        asm("mov r1, 0\nmov r2, 1\ncall 6\nmov r0, 0\nexit"),
        &offer,
    ) {
        Outcome::Rejected(reason) => {
            assert!(reason.contains("not offered by this host"), "{reason}")
        }
        _ => panic!("accepted a helper the host does not offer"),
    }
}

fn signed_sample(key: &SigningKey) -> Package {
    let mut p = package(
        vec![(Operation::OnSource, Anchor::Replace, asm("mov r0, 0\nexit"))],
        256,
    );
    p.sign(key);
    p
}

#[test]
fn hostile_packages_and_signatures_are_rejected() {
    let validator = SigningKey::from_bytes(&[1; 32]);
    let stranger = SigningKey::from_bytes(&[2; 32]);
    let mut trust = TrustStore::new();
    trust.add(validator.verifying_key());

    let good = signed_sample(&validator).to_bytes();
    assert_eq!(trust.check(&Package::parse(&good).unwrap(), 1), Ok(1));

    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    // Forged: flip a bit of the signature.
    let mut forged = good.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    cases.push(("forged signature", forged, "does not verify"));
    // A valid signature, but by someone we do not trust.
    cases.push((
        "signed by a stranger",
        signed_sample(&stranger).to_bytes(),
        "0 valid signature(s) by trusted validators, 1 required",
    ));
    // Signature copied onto a different package: the digest differs.
    let mut other = package(
        vec![(Operation::OnSource, Anchor::Replace, asm("mov r0, 1\nexit"))],
        256,
    );
    other.signatures = signed_sample(&validator).signatures;
    cases.push((
        "signature transplanted",
        other.to_bytes(),
        "does not verify",
    ));
    // Tampered code with the old digest.
    let mut tampered = good.clone();
    let code_at = tampered.len() - 32 - 1 - 96 - 16;
    tampered[code_at + 4] = 1;
    cases.push(("tampered body", tampered, "digest mismatch"));
    cases.push((
        "truncated package",
        good[..good.len() / 2].to_vec(),
        "truncated",
    ));
    cases.push((
        "oversized package",
        vec![0u8; 2 << 20],
        "the limit is 1048576",
    ));
    cases.push(("bad magic", b"ELF\x7f and more".to_vec(), "bad magic"));
    // Code length field claims 4 GiB: must fail without allocating it.
    let mut claim = b"FECP\x01\x00\x00\x00\x01a\x011\x00\x01\x00\x00\x00\x01\x01p\x02\x01".to_vec();
    claim.extend_from_slice(&u32::MAX.to_le_bytes());
    cases.push((
        "code length claims 4 GiB",
        claim,
        "truncated: code needs 4294967295 bytes",
    ));
    let mut bad_utf8 = b"FECP\x01\x00\x00\x00\x02\xff\xfe".to_vec();
    bad_utf8.extend_from_slice(&[0; 40]);
    cases.push(("name not UTF-8", bad_utf8, "not printable UTF-8"));

    for (name, bytes, reason) in cases {
        let outcome = Package::parse(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|p| trust.check(&p, 1).map_err(|e| e.to_string()));
        let err = outcome.expect_err(name);
        assert!(err.contains(reason), "{name}: {err:?} lacks {reason:?}");
    }

    // Structural abuse caught when building or parsing the manifest.
    let exit_ok = || asm("mov r0, 0\nexit");
    let two_replace = try_package(
        vec![
            (Operation::OnSource, Anchor::Replace, exit_ok()),
            (Operation::OnSource, Anchor::Replace, exit_ok()),
        ],
        256,
    );
    assert!(two_replace
        .unwrap_err()
        .to_string()
        .contains("second replace pluglet"));
    let replace_notification =
        try_package(vec![(Operation::OnLoss, Anchor::Replace, exit_ok())], 256);
    assert!(replace_notification
        .unwrap_err()
        .to_string()
        .contains("post observers only"));
    host_still_works();
}

fn host_still_works() {
    let plugin = Plugin::load(
        &package(
            vec![(
                Operation::OnSource,
                Anchor::Replace,
                asm("ldxw r1, [r1+16]\ncall 1\nmov r0, 0\nexit"),
            )],
            256,
        ),
        &HostOffer::all(),
    )
    .unwrap();
    let mut instance = plugin.instantiate();
    let d = instance
        .on_source(
            &SourceContext {
                flow: 5,
                ..Default::default()
            },
            &HostView::default(),
        )
        .unwrap();
    assert_eq!(d.protect, Some(5));
}

#[test]
fn hostile_objects_are_rejected_with_the_reason() {
    use fec_plugin_sdk::elf;
    let data = |name: &str| {
        std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    };
    let good = data("good.o");
    let mut corrupt_shoff = good.clone();
    corrupt_shoff[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
    let mut huge_shnum = good.clone();
    huge_shnum[0x3c..0x3e].copy_from_slice(&u16::MAX.to_le_bytes());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "global data relocation",
            data("global_data.o"),
            "unsupported relocation R_BPF_64_64 (type 1) against \"counter\"",
        ),
        (
            "non-inlined function",
            data("local_call.o"),
            "section \".text\" holds code",
        ),
        (
            "x86-64 object",
            data("x86_64.o"),
            "machine 62, expected 247",
        ),
        (
            "truncated object",
            good[..good.len() - 100].to_vec(),
            "truncated",
        ),
        (
            "section table offset past the end",
            corrupt_shoff,
            "truncated",
        ),
        ("65535 sections", huge_shnum, "65535 sections"),
    ];
    for (name, bytes, reason) in cases {
        let err = elf::load(&bytes).expect_err(name).to_string();
        assert!(err.contains(reason), "{name}: {err:?} lacks {reason:?}");
    }
    host_still_works();
}

/// The path cases again, inside the layer the hosts run (through the
/// harness): the first bad call disables the plugin, the layer goes on
/// without FEC, and nothing panics.
#[test]
fn hostile_path_helpers_disable_the_plugin_inside_a_layer() {
    use fec_plugin_sdk::harness::{run, HarnessConfig, LossTrace};
    let ok = asm("mov r0, 0\nexit");
    let cases: [(&str, Anchor, &str, &str); 5] = [
        (
            "path_stat of path 4",
            Anchor::Replace,
            "mov r1, 4\nmov r2, 0\ncall 10\nmov r0, 0\nexit",
            "path 4 out of range (0..4)",
        ),
        (
            "path_stat of path 255",
            Anchor::Replace,
            "mov r1, 255\nmov r2, 2\ncall 10\nmov r0, 0\nexit",
            "path 255 out of range (0..4)",
        ),
        (
            "unknown path stat key",
            Anchor::Replace,
            "mov r1, 0\nmov r2, 9\ncall 10\nmov r0, 0\nexit",
            "unknown path stat key 9",
        ),
        (
            "repair_path 9",
            Anchor::Replace,
            "mov r1, 9\ncall 11\nmov r0, 0\nexit",
            "path 9 out of range (0..4)",
        ),
        (
            "repair_path from a post observer",
            Anchor::Post,
            "mov r1, 1\ncall 11\nmov r0, 0\nexit",
            "fec_repair_path: decision helper called from a post observer",
        ),
    ];
    for (name, anchor, src, reason) in cases {
        let mut pluglets = vec![(Operation::ScheduleRepair, anchor, asm(src))];
        if anchor == Anchor::Post {
            pluglets.push((Operation::ScheduleRepair, Anchor::Replace, ok.clone()));
        }
        let plugin = Plugin::load(&package(pluglets, 256), &HostOffer::all()).unwrap();
        let report = run(
            &plugin,
            &HarnessConfig {
                packets: 100,
                loss: LossTrace::Every(10),
                ..HarnessConfig::default()
            },
        )
        .unwrap();
        let fault = report
            .fault
            .as_deref()
            .unwrap_or_else(|| panic!("{name}: no fault"));
        assert!(fault.contains(reason), "{name}: {fault:?} lacks {reason:?}");
        // The first source went out protected, then the plugin was disabled.
        assert_eq!(report.sources, 100, "{name}");
        assert_eq!((report.protected, report.repairs), (1, 0), "{name}");
        assert_eq!(report.unrecovered, report.lost_sources, "{name}");
        assert!(report.path_choices.is_empty(), "{name}");
    }
    host_still_works();
}
