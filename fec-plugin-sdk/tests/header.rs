//! Proves `include/fec_plugin.h` and `fec_plugin_sdk::abi` agree: every
//! constant, every context struct (fields, order, sizes, offsets) and every
//! helper id, in both directions.

use std::collections::BTreeMap;

use fec_plugin_sdk::abi::{self, HelperId};

const HEADER: &str = include_str!("../include/fec_plugin.h");

fn header_defines() -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in HEADER.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("#define") {
            continue;
        }
        let (Some(name), Some(value), None) = (words.next(), words.next(), words.next()) else {
            continue;
        };
        if let Ok(v) = value.parse::<u64>() {
            out.insert(name.to_string(), v);
        }
    }
    out
}

/// `struct name { type field; ... };` -> (name, [(field, size)]).
fn header_structs() -> BTreeMap<String, Vec<(String, usize)>> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, Vec<(String, usize)>)> = None;
    for line in HEADER.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("struct ") {
            if let Some(name) = rest.strip_suffix(" {") {
                current = Some((name.to_string(), Vec::new()));
                continue;
            }
        }
        if line == "};" {
            if let Some((name, fields)) = current.take() {
                out.insert(name, fields);
            }
            continue;
        }
        if let Some((_, fields)) = current.as_mut() {
            let decl = line
                .strip_suffix(';')
                .expect("field declaration ends with ;");
            let (ty, field) = decl.split_once(' ').expect("type and name");
            let size = match ty {
                "fec_u64" => 8,
                "fec_u32" => 4,
                "fec_u8" => 1,
                other => panic!("unexpected field type {other} in the header"),
            };
            fields.push((field.trim().to_string(), size));
        }
    }
    out
}

/// `static T (*name)(...) = (void *)N;` -> name -> N.
fn header_helpers() -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for line in HEADER.lines() {
        let line = line.trim();
        if !line.starts_with("static ") {
            continue;
        }
        let name_start = line.find("(*").expect("function pointer") + 2;
        let name_end = name_start + line[name_start..].find(')').expect("name end");
        let id = line
            .rsplit("(void *)")
            .next()
            .and_then(|s| s.strip_suffix(';'))
            .expect("(void *)N;")
            .parse()
            .expect("numeric helper id");
        out.insert(line[name_start..name_end].to_string(), id);
    }
    out
}

#[test]
fn constants_agree() {
    let header = header_defines();
    let rust: BTreeMap<String, u64> = abi::constants().into_iter().collect();
    assert_eq!(
        header, rust,
        "#define values in fec_plugin.h differ from abi::constants()"
    );
}

#[test]
fn context_structs_agree() {
    let header = header_structs();
    assert_eq!(header.len(), abi::context_layouts().len());
    for (c_name, op, size, fields) in abi::context_layouts() {
        let c_fields = header
            .get(c_name)
            .unwrap_or_else(|| panic!("struct {c_name} missing from the header"));
        let names: Vec<&str> = c_fields.iter().map(|(n, _)| n.as_str()).collect();
        let rust_names: Vec<&str> = fields.iter().map(|f| f.name).collect();
        assert_eq!(names, rust_names, "{c_name}: field names or order");
        // C layout with natural alignment, computed from the header's types.
        let mut offset = 0usize;
        let mut align = 1usize;
        for ((name, c_size), rust) in c_fields.iter().zip(fields) {
            offset = offset.next_multiple_of(*c_size);
            align = align.max(*c_size);
            assert_eq!(*c_size, rust.size, "{c_name}.{name}: size");
            assert_eq!(offset, rust.offset, "{c_name}.{name}: offset");
            offset += c_size;
        }
        assert_eq!(offset.next_multiple_of(align), size, "{c_name}: sizeof");
        assert_eq!(op.context_size(), size);
        assert!(size <= abi::CONTEXT_AREA_SIZE);
    }
}

#[test]
fn helper_ids_agree() {
    let header = header_helpers();
    let rust: BTreeMap<String, u32> = HelperId::ALL
        .into_iter()
        .map(|h| (h.name().to_string(), h as u32))
        .collect();
    assert_eq!(header, rust);
}
