//! The assembler route, for authors without clang: rbpf's assembler, made
//! total (it panics on some malformed numbers, which we turn into errors),
//! plus a section syntax so one file can hold several pluglets.
//!
//! ```text
//! ; comments start with ';' or '#'
//! .section replace/on_source
//! ldxw r1, [r1+16]
//! call 1
//! mov r0, 0
//! exit
//! .section post/on_loss
//! mov r0, 0
//! exit
//! ```
//!
//! ```
//! use fec_plugin_sdk::asm::{assemble, assemble_sections};
//!
//! // mov r0, 0; exit: two 8-byte instructions.
//! assert_eq!(assemble("mov r0, 0 ; comment\nexit")?.len(), 16);
//! let sections = assemble_sections(
//!     ".section replace/on_source\nmov r0, 1\nexit\n.section post/on_loss\nmov r0, 0\nexit",
//! )?;
//! let names: Vec<&str> = sections.iter().map(|(name, _)| name.as_str()).collect();
//! assert_eq!(names, ["replace/on_source", "post/on_loss"]);
//! // Malformed operands are errors, not panics.
//! assert!(assemble("mov r0, 0xzz\nexit").is_err());
//! # Ok::<(), String>(())
//! ```

#![forbid(unsafe_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Assemble one program (rbpf syntax, one instruction per line).
pub fn assemble(source: &str) -> Result<Vec<u8>, String> {
    let cleaned: Vec<&str> = source
        .lines()
        .map(|l| l.split([';', '#']).next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect();
    if cleaned.is_empty() {
        return Err("no instructions".into());
    }
    let text = cleaned.join("\n");
    match catch_unwind(AssertUnwindSafe(|| rbpf::assembler::assemble(&text))) {
        Ok(result) => result,
        Err(_) => Err("assembler rejected a malformed operand".into()),
    }
}

/// Assemble a file with `.section NAME` lines into `(name, code)` pairs.
pub fn assemble_sections(source: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in source.lines() {
        if let Some(name) = line.trim().strip_prefix(".section") {
            sections.push((name.trim().to_string(), String::new()));
        } else if let Some((_, body)) = sections.last_mut() {
            body.push_str(line);
            body.push('\n');
        } else if !line
            .split([';', '#'])
            .next()
            .unwrap_or("")
            .trim()
            .is_empty()
        {
            return Err("instruction before the first .section line".into());
        }
    }
    sections
        .into_iter()
        .map(|(name, body)| {
            let code = assemble(&body).map_err(|e| format!("section {name}: {e}"))?;
            Ok((name, code))
        })
        .collect()
}
