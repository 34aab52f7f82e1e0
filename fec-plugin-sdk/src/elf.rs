//! Loader for `clang -O2 -target bpf` objects: a pure function over bytes.
//!
//! Every executable section named `<anchor>/<operation>` (what
//! `FEC_PLUGLET(replace, on_source)` in `fec_plugin.h` produces) becomes one
//! pluglet. Helper calls (`call N`) need no relocation. Anything that would
//! need one is rejected with the section, instruction and symbol: global or
//! static data and maps (`R_BPF_64_64`), calls to functions that were not
//! inlined (`R_BPF_64_32`), and every other relocation type. Code in other
//! executable sections (e.g. a non-inlined helper in `.text`) is rejected too.
//!
//! The bytes are read through the `object` crate's ELF reader, which checks
//! every offset and size against the input; the limits (object size, section
//! count, pluglet count and length) and what is refused are this module's.
//!
//! ```
//! // Not an ELF object: a clear error, no panic.
//! let err = fec_plugin_sdk::elf::load(b"\x7fELF\x01").unwrap_err();
//! assert!(err.to_string().contains("truncated"));
//! ```

#![forbid(unsafe_code)]

use object::elf::{FileHeader64, Rel64, SectionHeader64, EM_BPF, SHF_EXECINSTR, SHT_PROGBITS};
use object::elf::{SHT_REL, SHT_RELA};
use object::read::elf::{FileHeader, Rel, SectionHeader, SectionTable, Sym};
use object::{LittleEndian as LE, SectionIndex, SymbolIndex};

use crate::abi::{Anchor, Operation, MAX_INSTRUCTIONS};
use crate::package::MAX_PLUGLETS;

/// Largest object accepted.
pub const MAX_OBJECT_SIZE: usize = 16 << 20;
/// Most section headers accepted.
pub const MAX_SECTIONS: usize = 1024;

type Sections<'a> = SectionTable<'a, FileHeader64<LE>, &'a [u8]>;

/// Why an object was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ElfError {
    /// Larger than [`MAX_OBJECT_SIZE`].
    #[error("object is {0} bytes, the limit is {MAX_OBJECT_SIZE}")]
    TooLarge(usize),
    /// A structure extends past the end of the file.
    #[error("truncated or malformed ELF: {0}")]
    Truncated(&'static str),
    /// Not a 64-bit little-endian eBPF relocatable object.
    #[error("not a 64-bit little-endian eBPF object: {0}")]
    NotBpf(String),
    /// An executable section has code but is not named `<anchor>/<operation>`.
    #[error("section {section:?} holds code but is not named <anchor>/<operation> (e.g. replace/on_source); non-inlined functions are not supported: mark them static __always_inline")]
    StrayCode {
        /// Section name.
        section: String,
    },
    /// A pluglet section named with an unknown anchor or operation.
    #[error("section {section:?}: unknown anchor or operation")]
    BadSectionName {
        /// Section name.
        section: String,
    },
    /// A relocation the loader does not support.
    #[error("section {section:?}, instruction {instruction}: unsupported relocation {kind} (type {rtype}) against {symbol:?}: {hint}")]
    Relocation {
        /// Section being relocated.
        section: String,
        /// Instruction index.
        instruction: u64,
        /// Relocation type number.
        rtype: u32,
        /// Its name.
        kind: &'static str,
        /// Symbol name.
        symbol: String,
        /// What to do instead.
        hint: &'static str,
    },
    /// More pluglet sections than a package can hold. Refused before their
    /// code is copied: sections may overlap, so without this bound a small
    /// object could make the loader copy its own bytes a thousand times.
    #[error("more than {MAX_PLUGLETS} pluglet sections")]
    TooManyPluglets,
    /// A pluglet section longer than a program may be.
    #[error("section {section:?} is {size} bytes, more than {MAX_INSTRUCTIONS} instructions")]
    PlugletTooLarge {
        /// Section name.
        section: String,
        /// Its size in bytes.
        size: usize,
    },
    /// A pluglet section that ends inside an instruction (its size is not a
    /// multiple of the 8-byte instruction size).
    #[error("section {section:?} is {size} bytes, which ends inside an 8-byte instruction")]
    PartialInstruction {
        /// Section name.
        section: String,
        /// Its size in bytes.
        size: usize,
    },
    /// No pluglet section at all.
    #[error("no pluglet sections (name functions' sections <anchor>/<operation>)")]
    NoPluglets,
}

/// One pluglet extracted from an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfPluglet {
    /// Section name, `<anchor>/<operation>`.
    pub name: String,
    /// Operation.
    pub operation: Operation,
    /// Anchor.
    pub anchor: Anchor,
    /// Bytecode.
    pub code: Vec<u8>,
}

impl From<ElfPluglet> for crate::package::PlugletEntry {
    fn from(p: ElfPluglet) -> Self {
        crate::package::PlugletEntry {
            name: p.name,
            operation: p.operation,
            anchor: p.anchor,
            code: p.code,
        }
    }
}

/// A name from a string table, as text for messages: at most 256 bytes.
fn text(name: &[u8]) -> String {
    String::from_utf8_lossy(&name[..name.len().min(256)]).into_owned()
}

/// A section's name, if it is a NUL-terminated string inside the name table.
fn name_of(sections: &Sections<'_>, section: &SectionHeader64<LE>) -> Option<String> {
    sections.section_name(LE, section).ok().map(text)
}

/// A section's size, saturated: anything past `usize` is over every limit.
fn size_of(section: &SectionHeader64<LE>) -> usize {
    usize::try_from(section.sh_size(LE)).unwrap_or(usize::MAX)
}

/// Parse a pluglet section name `<anchor>/<operation>`.
pub fn parse_section_name(name: &str) -> Option<(Anchor, Operation)> {
    let (anchor, operation) = name.split_once('/')?;
    Some((Anchor::from_name(anchor)?, Operation::from_name(operation)?))
}

fn relocation_name(rtype: u32) -> (&'static str, &'static str) {
    match rtype {
        1 => (
            "R_BPF_64_64",
            "global/static data and maps are not supported; keep state in the instance region (FEC_STATE)",
        ),
        10 => (
            "R_BPF_64_32",
            "calls to non-inlined functions are not supported; mark them static __always_inline",
        ),
        2 => ("R_BPF_64_ABS64", "data relocations are not supported"),
        3 => ("R_BPF_64_ABS32", "data relocations are not supported"),
        4 => ("R_BPF_64_NODYLD32", "data relocations are not supported"),
        _ => ("unknown", "not supported"),
    }
}

/// Extract the pluglets of an eBPF object.
pub fn load(bytes: &[u8]) -> Result<Vec<ElfPluglet>, ElfError> {
    if bytes.len() > MAX_OBJECT_SIZE {
        return Err(ElfError::TooLarge(bytes.len()));
    }
    // The identification bytes first, for reasons more precise than
    // object's "Unsupported ELF header".
    let ident = bytes.get(..64).ok_or(ElfError::Truncated("ELF header"))?;
    if &ident[..4] != b"\x7fELF" {
        return Err(ElfError::NotBpf("bad magic".into()));
    }
    if ident[4] != 2 || ident[5] != 1 {
        return Err(ElfError::NotBpf(format!(
            "class {} / data encoding {} (need 64-bit little-endian)",
            ident[4], ident[5]
        )));
    }
    // Read as plain data rather than through `FileHeader::parse`, which
    // would also demand EI_VERSION 1: this loader never has.
    let (header, _) = object::pod::from_bytes::<FileHeader64<LE>>(ident)
        .map_err(|()| ElfError::Truncated("ELF header"))?;
    let machine = header.e_machine(LE).0;
    if machine != EM_BPF.0 {
        return Err(ElfError::NotBpf(format!(
            "machine {machine}, expected {} (EM_BPF)",
            EM_BPF.0
        )));
    }
    let shentsize = header.e_shentsize(LE);
    if shentsize != 64 {
        return Err(ElfError::NotBpf(format!("section header size {shentsize}")));
    }
    let shnum = header
        .shnum(LE, bytes)
        .map_err(|_| ElfError::Truncated("section count"))?;
    if shnum as usize > MAX_SECTIONS {
        return Err(ElfError::NotBpf(format!("{shnum} sections")));
    }
    let table = header
        .section_headers(LE, bytes)
        .map_err(|_| ElfError::Truncated("section header table"))?;
    let names = header
        .section_strings(LE, bytes, table)
        .map_err(|_| ElfError::Truncated("section name table index"))?;
    let sections: Sections<'_> = SectionTable::new(table, names);

    let mut pluglets = Vec::new();
    let mut pluglet_index = vec![false; sections.len()];
    for (index, s) in sections.enumerate() {
        if s.sh_type(LE) != SHT_PROGBITS || s.sh_flags(LE).0 & SHF_EXECINSTR.0 == 0 {
            continue;
        }
        let size = size_of(s);
        if size == 0 {
            continue;
        }
        let name = name_of(&sections, s).ok_or(ElfError::Truncated("section name"))?;
        let Some((anchor, operation)) = parse_section_name(&name) else {
            if name.contains('/') {
                return Err(ElfError::BadSectionName { section: name });
            }
            return Err(ElfError::StrayCode { section: name });
        };
        if pluglets.len() == MAX_PLUGLETS {
            return Err(ElfError::TooManyPluglets);
        }
        if size > MAX_INSTRUCTIONS * 8 {
            return Err(ElfError::PlugletTooLarge {
                section: name,
                size,
            });
        }
        if !size.is_multiple_of(8) {
            return Err(ElfError::PartialInstruction {
                section: name,
                size,
            });
        }
        let code = s
            .data(LE, bytes)
            .map_err(|_| ElfError::Truncated("section contents"))?;
        pluglet_index[index.0] = true;
        pluglets.push(ElfPluglet {
            name,
            operation,
            anchor,
            code: code.to_vec(),
        });
    }

    // Any relocation that applies to a pluglet section is unsupported.
    for s in sections.iter() {
        let kind = s.sh_type(LE);
        let target = s.sh_info(LE) as usize;
        if (kind != SHT_REL && kind != SHT_RELA)
            || !pluglet_index.get(target).copied().unwrap_or(false)
        {
            continue;
        }
        let entsize = if kind == SHT_REL { 16 } else { 24 };
        let declared = s.sh_entsize(LE);
        if declared != 0 && declared != entsize as u64 {
            return Err(ElfError::Truncated("relocation entry size"));
        }
        // A partial entry would otherwise be skipped, and a relocation that
        // is not reported lets unrelocated code through.
        if !size_of(s).is_multiple_of(entsize) {
            return Err(ElfError::Truncated("relocation section size"));
        }
        let relocs = s
            .data(LE, bytes)
            .map_err(|_| ElfError::Truncated("relocation section"))?;
        // REL and RELA entries both start with r_offset and r_info.
        if let Ok((r, _)) = object::pod::from_bytes::<Rel64<LE>>(relocs) {
            let rtype = r.r_type(LE).0;
            let symbol = symbol_name(bytes, &sections, s.sh_link(LE), r.r_sym(LE));
            let (kind, hint) = relocation_name(rtype);
            return Err(ElfError::Relocation {
                section: sections
                    .section(SectionIndex(target))
                    .ok()
                    .and_then(|t| name_of(&sections, t))
                    .unwrap_or_default(),
                instruction: r.r_offset(LE) / 8,
                rtype,
                kind,
                symbol,
                hint,
            });
        }
    }
    if pluglets.is_empty() {
        return Err(ElfError::NoPluglets);
    }
    Ok(pluglets)
}

fn symbol_name(bytes: &[u8], sections: &Sections<'_>, symtab: u32, index: u32) -> String {
    let lookup = || -> Option<String> {
        let symbols = sections
            .symbol_table_by_index(LE, bytes, SectionIndex(symtab as usize))
            .ok()?;
        let symbol = symbols.symbol(SymbolIndex(index as usize)).ok()?;
        let name = symbol.name(LE, symbols.strings()).ok()?;
        if name.is_empty() {
            // Section symbols have no name: name the section instead.
            let section = sections.section(SectionIndex(usize::from(symbol.st_shndx(LE).0)));
            return name_of(sections, section.ok()?);
        }
        Some(text(name))
    };
    lookup().unwrap_or_else(|| format!("symbol #{index}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal eBPF object: `count` executable sections all named
    /// `replace/on_source`, all pointing at the same `code_len` bytes.
    fn overlapping_pluglets(count: usize, code_len: usize) -> Vec<u8> {
        let names = b"\0.shstrtab\0replace/on_source\0";
        let code_at = 64;
        let names_at = code_at + code_len;
        let headers_at = names_at + names.len();
        let shnum = 2 + count;
        let mut out = vec![0u8; headers_at + shnum * 64];
        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = 2; // 64-bit
        out[5] = 1; // little-endian
        out[18..20].copy_from_slice(&EM_BPF.0.to_le_bytes());
        out[0x28..0x30].copy_from_slice(&(headers_at as u64).to_le_bytes());
        out[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        out[0x3c..0x3e].copy_from_slice(&(shnum as u16).to_le_bytes());
        out[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        for chunk in out[code_at..names_at].chunks_exact_mut(8) {
            chunk[0] = 0x95; // exit
        }
        out[names_at..headers_at].copy_from_slice(names);
        let mut header = |index: usize, name: u32, kind: u32, flags: u64, at: usize, len: usize| {
            let h = &mut out[headers_at + index * 64..][..64];
            h[0..4].copy_from_slice(&name.to_le_bytes());
            h[4..8].copy_from_slice(&kind.to_le_bytes());
            h[8..16].copy_from_slice(&flags.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&(at as u64).to_le_bytes());
            h[0x20..0x28].copy_from_slice(&(len as u64).to_le_bytes());
        };
        header(1, 1, 3, 0, names_at, names.len());
        for index in 2..shnum {
            header(
                index,
                11,
                SHT_PROGBITS.0,
                SHF_EXECINSTR.0 | 2,
                code_at,
                code_len,
            );
        }
        out
    }

    #[test]
    fn a_relocation_section_with_a_partial_entry_is_refused() {
        // Turn the second pluglet's header into SHT_REL for the first one.
        let object = |size: u64| {
            let mut elf = overlapping_pluglets(2, 16);
            let headers_at = elf.len() - 4 * 64;
            let h = &mut elf[headers_at + 3 * 64..][..64];
            h[4..8].copy_from_slice(&SHT_REL.0.to_le_bytes());
            h[8..16].fill(0);
            h[0x20..0x28].copy_from_slice(&size.to_le_bytes());
            h[0x2c..0x30].copy_from_slice(&2u32.to_le_bytes());
            elf
        };
        assert!(matches!(
            load(&object(16)),
            Err(ElfError::Relocation { section, .. }) if section == "replace/on_source"
        ));
        // 8 bytes: half an entry, which used to be skipped silently.
        assert_eq!(
            load(&object(8)),
            Err(ElfError::Truncated("relocation section size"))
        );
    }

    /// Whatever `load` accepts respects the limits a package has and names
    /// its pluglets consistently.
    fn accepted_pluglets_are_bounded(bytes: &[u8]) -> bool {
        match load(bytes) {
            Ok(pluglets) => {
                !pluglets.is_empty()
                    && pluglets.len() <= MAX_PLUGLETS
                    && pluglets.iter().all(|p| {
                        !p.code.is_empty()
                            && p.code.len() <= MAX_INSTRUCTIONS * 8
                            && parse_section_name(&p.name) == Some((p.anchor, p.operation))
                    })
            }
            Err(e) => !e.to_string().is_empty(),
        }
    }

    #[test]
    fn overlapping_sections_cannot_multiply_the_copy() {
        let one = load(&overlapping_pluglets(1, 16)).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].code.len(), 16);
        assert_eq!(one[0].operation, Operation::OnSource);
        // 1000 sections over the same bytes used to be copied 1000 times
        // (a 16 MiB object would have asked for 16 GiB).
        assert_eq!(
            load(&overlapping_pluglets(1000, 16)),
            Err(ElfError::TooManyPluglets)
        );
        let too_long = (MAX_INSTRUCTIONS + 1) * 8;
        assert_eq!(
            load(&overlapping_pluglets(1, too_long)),
            Err(ElfError::PlugletTooLarge {
                section: "replace/on_source".into(),
                size: too_long,
            })
        );
    }

    quickcheck::quickcheck! {
        fn arbitrary_bytes_are_rejected_or_bounded(bytes: Vec<u8>) -> bool {
            let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
            elf.extend_from_slice(&bytes);
            accepted_pluglets_are_bounded(&bytes) && accepted_pluglets_are_bounded(&elf)
        }

        fn mutated_objects_are_rejected_or_bounded(at: Vec<(u16, u8)>) -> bool {
            // Past the magic, so the section table and names are exercised.
            let mut elf = overlapping_pluglets(3, 16);
            for (index, value) in at {
                let len = elf.len();
                elf[usize::from(index) % len] = value;
            }
            accepted_pluglets_are_bounded(&elf)
        }
    }
}
