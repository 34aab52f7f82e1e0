//! Fuzzer findings whose fix belongs to another module's owner. Each test
//! states the property the code should have; it is ignored until the fix
//! lands (then remove the `ignore`). The inputs also replay, with the
//! property the code has today, in `replay.rs`.

use std::path::Path;

fn regression(target: &str, name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../regressions")
        .join(target)
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
#[ignore = "bug: elf::load returns a pluglet whose section size is not a multiple of 8 \
            (a partial instruction); it should refuse the section by name"]
fn elf_loader_refuses_a_partial_instruction() {
    let object = regression("elf_loader", "partial-instruction-section");
    if let Ok(pluglets) = fec_plugin_sdk::elf::load(&object) {
        for p in pluglets {
            assert!(
                !p.code.is_empty() && p.code.len() % 8 == 0,
                "section {:?} holds {} bytes",
                p.name,
                p.code.len()
            );
        }
    }
}
