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
//! ```
//! // Not an ELF object: a clear error, no panic.
//! let err = fec_plugin_sdk::elf::load(b"\x7fELF\x01").unwrap_err();
//! assert!(err.to_string().contains("truncated"));
//! ```

#![forbid(unsafe_code)]

use crate::abi::{Anchor, Operation, MAX_INSTRUCTIONS};
use crate::package::MAX_PLUGLETS;

/// Largest object accepted.
pub const MAX_OBJECT_SIZE: usize = 16 << 20;
/// Most section headers accepted.
pub const MAX_SECTIONS: usize = 1024;

const EM_BPF: u16 = 247;
const SHT_PROGBITS: u32 = 1;
const SHT_SYMTAB: u32 = 2;
const SHT_RELA: u32 = 4;
const SHT_REL: u32 = 9;
const SHF_EXECINSTR: u64 = 4;

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

struct Section {
    name: String,
    kind: u32,
    flags: u64,
    offset: usize,
    size: usize,
    link: usize,
    info: usize,
    entsize: usize,
}

fn slice<'a>(
    bytes: &'a [u8],
    offset: usize,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], ElfError> {
    offset
        .checked_add(len)
        .and_then(|end| bytes.get(offset..end))
        .ok_or(ElfError::Truncated(what))
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, ElfError> {
    let s = slice(b, at, 2, "header field")?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, ElfError> {
    let s = slice(b, at, 4, "header field")?;
    Ok(u32::from_le_bytes(s.try_into().expect("4 bytes")))
}

fn u64_at(b: &[u8], at: usize) -> Result<u64, ElfError> {
    let s = slice(b, at, 8, "header field")?;
    Ok(u64::from_le_bytes(s.try_into().expect("8 bytes")))
}

fn usize_at(b: &[u8], at: usize) -> Result<usize, ElfError> {
    usize::try_from(u64_at(b, at)?).map_err(|_| ElfError::Truncated("offset overflows"))
}

fn c_string(table: &[u8], at: usize) -> String {
    let Some(rest) = table.get(at..) else {
        return String::from("?");
    };
    let end = rest
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(rest.len())
        .min(256);
    String::from_utf8_lossy(&rest[..end]).into_owned()
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
    let ident = slice(bytes, 0, 64, "ELF header")?;
    if &ident[..4] != b"\x7fELF" {
        return Err(ElfError::NotBpf("bad magic".into()));
    }
    if ident[4] != 2 || ident[5] != 1 {
        return Err(ElfError::NotBpf(format!(
            "class {} / data encoding {} (need 64-bit little-endian)",
            ident[4], ident[5]
        )));
    }
    let machine = u16_at(bytes, 18)?;
    if machine != EM_BPF {
        return Err(ElfError::NotBpf(format!(
            "machine {machine}, expected {EM_BPF} (EM_BPF)"
        )));
    }
    let shoff = usize_at(bytes, 0x28)?;
    let shentsize = usize::from(u16_at(bytes, 0x3a)?);
    let shnum = usize::from(u16_at(bytes, 0x3c)?);
    let shstrndx = usize::from(u16_at(bytes, 0x3e)?);
    if shentsize != 64 {
        return Err(ElfError::NotBpf(format!("section header size {shentsize}")));
    }
    if shnum > MAX_SECTIONS {
        return Err(ElfError::NotBpf(format!("{shnum} sections")));
    }
    let table = slice(bytes, shoff, shnum * 64, "section header table")?;
    let mut raw = Vec::with_capacity(shnum);
    for i in 0..shnum {
        let h = &table[i * 64..(i + 1) * 64];
        raw.push((
            u32_at(h, 0)? as usize,
            Section {
                name: String::new(),
                kind: u32_at(h, 4)?,
                flags: u64_at(h, 8)?,
                offset: usize_at(h, 0x18)?,
                size: usize_at(h, 0x20)?,
                link: u32_at(h, 0x28)? as usize,
                info: u32_at(h, 0x2c)? as usize,
                entsize: usize_at(h, 0x38)?,
            },
        ));
    }
    let names = match raw.get(shstrndx) {
        Some((_, s)) => slice(bytes, s.offset, s.size, "section name table")?,
        None => return Err(ElfError::Truncated("section name table index")),
    };
    let sections: Vec<Section> = raw
        .into_iter()
        .map(|(name_at, mut s)| {
            s.name = c_string(names, name_at);
            s
        })
        .collect();

    let mut pluglets = Vec::new();
    let mut pluglet_index = vec![false; sections.len()];
    for (i, s) in sections.iter().enumerate() {
        if s.kind != SHT_PROGBITS || s.flags & SHF_EXECINSTR == 0 || s.size == 0 {
            continue;
        }
        let Some((anchor, operation)) = parse_section_name(&s.name) else {
            if s.name.contains('/') {
                return Err(ElfError::BadSectionName {
                    section: s.name.clone(),
                });
            }
            return Err(ElfError::StrayCode {
                section: s.name.clone(),
            });
        };
        if pluglets.len() == MAX_PLUGLETS {
            return Err(ElfError::TooManyPluglets);
        }
        if s.size > MAX_INSTRUCTIONS * 8 {
            return Err(ElfError::PlugletTooLarge {
                section: s.name.clone(),
                size: s.size,
            });
        }
        if !s.size.is_multiple_of(8) {
            return Err(ElfError::PartialInstruction {
                section: s.name.clone(),
                size: s.size,
            });
        }
        pluglet_index[i] = true;
        pluglets.push(ElfPluglet {
            name: s.name.clone(),
            operation,
            anchor,
            code: slice(bytes, s.offset, s.size, "section contents")?.to_vec(),
        });
    }

    // Any relocation that applies to a pluglet section is unsupported.
    for s in &sections {
        if s.kind != SHT_REL && s.kind != SHT_RELA {
            continue;
        }
        if !pluglet_index.get(s.info).copied().unwrap_or(false) {
            continue;
        }
        let entsize = if s.kind == SHT_REL { 16 } else { 24 };
        if s.entsize != 0 && s.entsize != entsize {
            return Err(ElfError::Truncated("relocation entry size"));
        }
        // A partial entry would otherwise be skipped, and a relocation that
        // is not reported lets unrelocated code through.
        if s.size % entsize != 0 {
            return Err(ElfError::Truncated("relocation section size"));
        }
        let relocs = slice(bytes, s.offset, s.size, "relocation section")?;
        if let Some(r) = relocs.chunks_exact(entsize).next() {
            let offset = u64_at(r, 0)?;
            let info = u64_at(r, 8)?;
            let rtype = (info & 0xffff_ffff) as u32;
            let symbol_index = (info >> 32) as usize;
            let symbol = symbol_name(bytes, &sections, s.link, symbol_index);
            let (kind, hint) = relocation_name(rtype);
            return Err(ElfError::Relocation {
                section: sections[s.info].name.clone(),
                instruction: offset / 8,
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

fn symbol_name(bytes: &[u8], sections: &[Section], symtab: usize, index: usize) -> String {
    let lookup = || -> Option<String> {
        let table = sections.get(symtab).filter(|s| s.kind == SHT_SYMTAB)?;
        let strings = sections.get(table.link)?;
        let strings = bytes.get(strings.offset..strings.offset.checked_add(strings.size)?)?;
        let at = table.offset.checked_add(index.checked_mul(24)?)?;
        let entry = bytes.get(at..at.checked_add(24)?)?;
        let name_at = u32::from_le_bytes(entry[..4].try_into().ok()?) as usize;
        let name = c_string(strings, name_at);
        if name.is_empty() {
            // Section symbols have no name: name the section instead.
            let shndx = u16::from_le_bytes(entry[6..8].try_into().ok()?) as usize;
            return sections.get(shndx).map(|s| s.name.clone());
        }
        Some(name)
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
        out[18..20].copy_from_slice(&EM_BPF.to_le_bytes());
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
                SHT_PROGBITS,
                SHF_EXECINSTR | 2,
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
            h[4..8].copy_from_slice(&SHT_REL.to_le_bytes());
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
