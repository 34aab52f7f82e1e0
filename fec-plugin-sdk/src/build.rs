//! Building and packing plugins: clang with fixed flags (reproducible), then
//! a `.fecp` whose manifest declares exactly the helpers the bytecode calls.
//!
//! ```
//! use fec_plugin_sdk::build::pack_assembly;
//! let package = pack_assembly(
//!     ".section replace/schedule_repair\n mov r1, 1\n call 2\n mov r0, 0\n exit",
//!     "one-repair", "1.0.0", 256,
//! ).unwrap();
//! assert_eq!(package.manifest.helpers, vec![2]);
//! ```

#![forbid(unsafe_code)]

use std::path::Path;
use std::process::Command;

use crate::elf::{self, parse_section_name};
use crate::package::{Manifest, Package, PlugletEntry};
use crate::verify::helpers_called;
use crate::Error;

/// Directory holding `fec_plugin.h`.
pub const INCLUDE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/include");

/// The clang flags every plugin is built with. No debug info and no
/// optimisation choices left to the environment, so the same clang produces
/// the same bytecode.
pub const CLANG_FLAGS: &[&str] = &["-O2", "-target", "bpf", "-g0", "-Wall", "-Werror"];

/// The clang binary: `$CLANG` or `clang`.
pub fn clang() -> String {
    std::env::var("CLANG").unwrap_or_else(|_| "clang".into())
}

/// Whether clang is available.
pub fn clang_available() -> bool {
    Command::new(clang())
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Compile a C plugin into an eBPF object at `output`.
pub fn compile_c(source: &Path, output: &Path) -> Result<(), Error> {
    let out = Command::new(clang())
        .args(CLANG_FLAGS)
        .arg("-I")
        .arg(INCLUDE_DIR)
        .arg("-c")
        .arg(source)
        .arg("-o")
        .arg(output)
        .output()
        .map_err(|e| Error::Other(format!("cannot run {}: {e}", clang())))?;
    if !out.status.success() {
        return Err(Error::Other(format!(
            "clang failed on {}:\n{}",
            source.display(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

fn package_of(
    pluglets: Vec<PlugletEntry>,
    name: &str,
    version: &str,
    memory_size: u32,
) -> Result<Package, Error> {
    let mut helpers: Vec<u32> = pluglets
        .iter()
        .flat_map(|p| helpers_called(&p.code))
        .collect();
    helpers.sort_unstable();
    helpers.dedup();
    Ok(Package::new(Manifest {
        name: name.into(),
        version: version.into(),
        memory_size,
        helpers,
        pluglets,
    })?)
}

/// Pack the pluglets of an eBPF object (see [`crate::elf`]).
pub fn pack_object(
    object: &[u8],
    name: &str,
    version: &str,
    memory_size: u32,
) -> Result<Package, Error> {
    let pluglets = elf::load(object)
        .map_err(|e| Error::Other(format!("ELF: {e}")))?
        .into_iter()
        .map(PlugletEntry::from)
        .collect();
    package_of(pluglets, name, version, memory_size)
}

/// Pack an assembly file with `.section <anchor>/<operation>` lines (see [`crate::asm`]).
pub fn pack_assembly(
    source: &str,
    name: &str,
    version: &str,
    memory_size: u32,
) -> Result<Package, Error> {
    let mut pluglets = Vec::new();
    for (section, code) in crate::asm::assemble_sections(source).map_err(Error::Other)? {
        let (anchor, operation) = parse_section_name(&section).ok_or_else(|| {
            Error::Other(format!("section {section:?} is not <anchor>/<operation>"))
        })?;
        pluglets.push(PlugletEntry {
            name: section,
            operation,
            anchor,
            code,
        });
    }
    package_of(pluglets, name, version, memory_size)
}
