//! The `pquic-host` binary as an operator meets it, on loopback only:
//! what it writes to disk, what it refuses, and what its errors say.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pquic-host");

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("pqh-cli-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the binary with `args` (HOME pointed into `scratch`), bounded in
/// time.
fn run(scratch: &Scratch, args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("HOME", &scratch.0)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_CACHE_HOME")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pquic-host");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pquic-host {} did not finish", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_server_that_cannot_bind_writes_no_identity() {
    let scratch = Scratch::new("bind");
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = run(
        &scratch,
        &[
            "server",
            "--listen",
            &addr,
            "--identity-dir",
            &scratch.path("identity"),
            "--no-plugin",
        ],
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains(&format!("bind {addr}")), "{message}");
    assert!(
        !std::path::Path::new(&scratch.path("identity")).exists(),
        "nothing written by a server that did not start"
    );
}

#[test]
fn missing_files_are_named_in_errors() {
    let scratch = Scratch::new("missing");
    let missing = scratch.path("no-such.pem");
    let client = run(
        &scratch,
        &["client", "--connect", "127.0.0.1:9", "--ca", &missing],
    );
    assert!(!client.status.success());
    assert!(stderr(&client).contains(&missing), "{}", stderr(&client));
    let server = run(
        &scratch,
        &[
            "server",
            "--listen",
            "127.0.0.1:0",
            "--cert",
            &missing,
            "--key",
            &missing,
        ],
    );
    assert!(!server.status.success());
    assert!(stderr(&server).contains(&missing), "{}", stderr(&server));
}
