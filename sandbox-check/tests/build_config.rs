//! The proof in `hostile.rs` is only worth something in the build it claims:
//! these tests fail loudly when that build is not what it should be.

use std::hint::black_box;
use std::panic::{catch_unwind, AssertUnwindSafe};

use sandbox_check::{lddw, Outcome};

#[test]
fn this_crate_is_built_with_overflow_checks() {
    // Deliberately overflows; the panic message on stderr is expected.
    let overflowed = catch_unwind(|| black_box(u64::MAX) + black_box(1)).is_err();
    assert!(
        overflowed,
        "sandbox-check must be built with overflow checks on (the dev or test profile, \
         not --release): that is the build whose safety it proves"
    );
}

/// Sections of the workspace manifest that turn overflow checks off for a
/// dev or test build (and so would hide what this crate checks).
fn sections_disabling_overflow_checks(manifest: &str) -> Vec<String> {
    let mut section = String::new();
    let mut offenders = Vec::new();
    for line in manifest.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.starts_with('[') {
            section = line.to_string();
            continue;
        }
        let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
        let dev_or_test =
            section.starts_with("[profile.dev") || section.starts_with("[profile.test");
        if dev_or_test && compact == "overflow-checks=false" {
            offenders.push(section.clone());
        }
    }
    offenders
}

#[test]
fn the_workspace_leaves_overflow_checks_on_for_every_package() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let manifest = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read the workspace manifest {path}: {e}"));
    assert!(
        manifest.contains("\"sandbox-check\""),
        "{path} is not the workspace that lists sandbox-check"
    );
    let offenders = sections_disabling_overflow_checks(&manifest);
    assert!(
        offenders.is_empty(),
        "{offenders:?} switch overflow checks off: the runtime must be safe without that, \
         and this crate must see the build a downstream debug build gets"
    );
    // The scan itself finds what it looks for.
    assert_eq!(
        sections_disabling_overflow_checks(
            "[profile.dev.package.rbpf]\nopt-level = 3\noverflow-checks = false\n"
        ),
        ["[profile.dev.package.rbpf]"]
    );
}

/// rbpf 0.4's interpreter, built like this crate, panics on `neg` of
/// `i64::MIN` (it computes `-(x as i64)`). That is the hazard this crate
/// exists for, and the reason the runtime does not run plugins in rbpf.
#[test]
fn rbpf_built_here_panics_where_the_runtime_does_not() {
    let mut code = lddw(0, i64::MIN as u64).to_vec();
    code.extend(sandbox_check::insn(0x87, 0, 0, 0, 0));
    code.extend(sandbox_check::insn(0x95, 0, 0, 0, 0));
    let vm = rbpf::EbpfVmNoData::new(Some(&code)).expect("rbpf loads it");
    let rbpf_result = catch_unwind(AssertUnwindSafe(|| vm.execute_program()));
    assert!(
        rbpf_result.is_err(),
        "rbpf did not panic on neg of i64::MIN ({rbpf_result:?}): either this build has \
         overflow checks off for rbpf (a [profile.*.package.rbpf] entry hides the hazard \
         this crate checks) or rbpf fixed it (then update this canary)"
    );

    // The same instruction in the runtime: the defined result, stored.
    let mut code = lddw(2, i64::MIN as u64).to_vec();
    code.extend(sandbox_check::insn(0x87, 2, 0, 0, 0));
    code.extend(sandbox_check::insn(0x7b, 1, 2, 128, 0));
    code.extend(sandbox_check::EPILOGUE);
    match sandbox_check::run(&code) {
        Outcome::Ran { memory, .. } => {
            let stored = u64::from_le_bytes(memory[128..136].try_into().unwrap());
            assert_eq!(stored, i64::MIN as u64);
        }
        other => panic!("neg of i64::MIN in the runtime: {other:?}"),
    }
}
