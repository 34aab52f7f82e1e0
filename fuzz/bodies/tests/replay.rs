//! Replays every committed corpus entry and every crash input through the
//! same body the fuzzer runs, so regressions stay fixed without nightly.

use std::fs;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("fuzz/bodies has a parent")
        .to_path_buf()
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_target_replays_its_corpus_and_regressions() {
    let fuzz = fuzz_dir();
    for target in fec_fuzz_bodies::TARGETS {
        let corpus = inputs(&fuzz.join("corpus").join(target.name));
        let regressions = inputs(&fuzz.join("regressions").join(target.name));
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{} is empty: seed it (see fuzz/README.md)",
            target.name
        );
        for path in corpus.iter().chain(&regressions) {
            let data = fs::read(path).expect("readable input");
            eprintln!("replaying {}", path.display());
            (target.body)(&data);
        }
    }
}

#[test]
fn every_corpus_directory_belongs_to_a_target() {
    // A renamed target must not leave its corpus silently unreplayed.
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = fs::read_dir(fuzz_dir().join(kind)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(
                fec_fuzz_bodies::TARGETS.iter().any(|t| t.name == name),
                "fuzz/{kind}/{name} has no target"
            );
        }
    }
}

#[test]
fn every_target_has_a_cargo_fuzz_binary_and_back() {
    let fuzz = fuzz_dir();
    let manifest = fs::read_to_string(fuzz.join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for target in fec_fuzz_bodies::TARGETS {
        let source = fuzz
            .join("fuzz_targets")
            .join(format!("{}.rs", target.name));
        let text =
            fs::read_to_string(&source).unwrap_or_else(|_| panic!("missing {}", source.display()));
        assert!(
            text.contains("fec_fuzz_bodies::"),
            "{} calls no body",
            source.display()
        );
        assert!(
            manifest.contains(&format!("name = \"{}\"", target.name)),
            "fuzz/Cargo.toml has no [[bin]] {}",
            target.name
        );
    }
    for path in inputs(&fuzz.join("fuzz_targets")) {
        let stem = path.file_stem().expect("file name").to_string_lossy();
        assert!(
            fec_fuzz_bodies::TARGETS.iter().any(|t| t.name == stem),
            "{} is not in fec_fuzz_bodies::TARGETS",
            path.display()
        );
    }
}
