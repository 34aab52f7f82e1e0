//! The `fec-plugin` binary: exit codes and reasons, never a panic.

use std::path::PathBuf;
use std::process::Command;

use tempfile::TempDir;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fec-plugin"))
}

/// A scratch directory per test, removed when the test ends (pass or fail).
fn scratch() -> TempDir {
    tempfile::tempdir().expect("scratch directory")
}

fn temp(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = bin().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

#[test]
fn verify_accepts_and_rejects_with_exit_codes() {
    let dir = scratch();
    let good = temp(
        &dir,
        "good.bin",
        &[0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0],
    );
    let (code, stdout, _) = run(&["verify", "--raw", good.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(stdout.contains("accepted: 2 instructions"));

    let looped = temp(
        &dir,
        "loop.bin",
        &[0x05, 0, 0xff, 0xff, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0],
    );
    let (code, _, stderr) = run(&["verify", "--raw", looped.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("instruction 0: backward jump"), "{stderr}");

    let object = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/global_data.o");
    let (code, _, stderr) = run(&["verify", object]);
    assert_eq!(code, 1);
    assert!(stderr.contains("R_BPF_64_64"), "{stderr}");

    let object = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/good.o");
    assert_eq!(run(&["verify", object]).0, 0);

    for (name, bytes) in [
        ("garbage", &b"\x00\x01garbage"[..]),
        ("short.fecp", &b"FECP\x01"[..]),
        ("short.o", &b"\x7fELF\x02\x01"[..]),
        ("ragged.bin", &[0x95u8, 0, 0][..]),
    ] {
        let path = temp(&dir, name, bytes);
        let raw = name.ends_with(".bin");
        let mut args = vec!["verify"];
        if raw {
            args.push("--raw");
        }
        args.push(path.to_str().unwrap());
        let (code, _, stderr) = run(&args);
        assert_eq!(code, 1, "{name}");
        assert!(!stderr.is_empty(), "{name}: no reason given");
    }
    let (code, _, stderr) = run(&["verify", "/nonexistent/file"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("/nonexistent/file"));
}

#[test]
fn pack_sign_verify_inspect_and_run() {
    let dir = scratch();
    let asm = temp(
        &dir,
        "plugin.s",
        b".section replace/configure
          mov r1, 2
          mov r2, 16
          mov r3, 1
          call 7
          mov r0, 0
          exit
          .section replace/schedule_repair
          ldxw r2, [r1+8]
          mov r0, 0
          jlt r2, 4, +2
          mov r1, 1
          call 2
          mov r0, 0
          exit",
    );
    let package = asm.with_file_name("plugin.fecp");
    let key = asm.with_file_name("validator.key");
    let p = package.to_str().unwrap();
    let (code, _, stderr) = run(&["pack", asm.to_str().unwrap(), "--name", "rlc4", "-o", p]);
    assert_eq!(code, 0, "{stderr}");
    let (code, public, _) = run(&["keygen", key.to_str().unwrap()]);
    assert_eq!(code, 0);
    let public = public.trim().to_string();
    // Unsigned but a signature is required: rejected.
    let (code, _, stderr) = run(&["verify", p, "--trust", &public]);
    assert_eq!(code, 1);
    assert!(stderr.contains("0 valid signature(s)"), "{stderr}");
    assert_eq!(run(&["sign", p, "--key", key.to_str().unwrap()]).0, 0);
    let (code, stdout, _) = run(&["verify", p, "--trust", &public]);
    assert_eq!(code, 0);
    assert!(stdout.contains("1 trusted signatures"));

    let (code, stdout, _) = run(&["inspect", p]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("replace/schedule_repair (replace schedule_repair, 7 instructions)"),
        "{stdout}"
    );
    assert!(stdout.contains("call 0x2"), "{stdout}");

    let (code, stdout, stderr) = run(&["run", p, "--loss", "every:7", "--packets", "200"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("repairs sent      50"), "{stdout}");
    assert!(stdout.contains("unrecovered       0"), "{stdout}");
    let (code, _, stderr) = run(&["run", p, "--loss", "bogus:x"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("bad number"), "{stderr}");
}
