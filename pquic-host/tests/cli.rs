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

#[test]
fn numbers_are_validated_when_parsed_in_every_subcommand() {
    let scratch = Scratch::new("numbers");
    let cases: [(&[&str], &str); 9] = [
        (&["client", "--loss", "-5"], "-5"),
        (&["client", "--loss", "nan"], "nan"),
        (&["server", "--loss", "150"], "150"),
        (
            &["relay", "--listen", "x", "--to", "y", "--loss", "100"],
            "100",
        ),
        (&["demo", "--loss", "-0.5"], "-0.5"),
        (&["demo", "--burst", "0.5"], "0.5"),
        (&["server", "--burst", "0"], "0"),
        (&["demo", "--duration-s", "0"], "0"),
        (&["client", "--messages-s", "-1"], "-1"),
    ];
    for (args, value) in cases {
        let output = run(&scratch, args);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
        assert!(
            message.contains(&format!("invalid value '{value}'")),
            "{args:?}: {message}"
        );
    }
}

#[cfg(unix)]
#[test]
fn path_specs_and_arrangements_are_checked_when_parsed() {
    let scratch = Scratch::new("paths");
    let cases: [(&[&str], &str); 6] = [
        (&["client", "--path", "nowhere"], "not an IP address"),
        (
            &["client", "--path", "10.0.0.2=10.0.0.1"],
            "must be IP:port",
        ),
        (&["client", "--path", "10.0.0.2,loss=100"], "below 100"),
        (
            &["tunnel", "client", "--path", "10.0.0.2,speed=3"],
            "unknown path option",
        ),
        (
            &["server", "--path", "10.0.0.1:4433,rtt-ms=x"],
            "not a whole number",
        ),
        (
            &["multipath", "--only", "clean-alone,sideways"],
            "no such arrangement",
        ),
    ];
    for (args, expected) in cases {
        let output = run(&scratch, args);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
        assert!(message.contains(expected), "{args:?}: {message}");
    }
}

#[test]
fn validator_keys_are_private_and_never_overwritten_without_force() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = Scratch::new("keys");
    let key = scratch.path("validator.key");
    let first = run(&scratch, &["plugin", "keygen", "--out", &key]);
    assert!(first.status.success(), "{}", stderr(&first));
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let secret = std::fs::read(&key).unwrap();
    let again = run(&scratch, &["plugin", "keygen", "--out", &key]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    assert_eq!(std::fs::read(&key).unwrap(), secret, "kept");
    let forced = run(&scratch, &["plugin", "keygen", "--out", &key, "--force"]);
    assert!(forced.status.success());
    assert_ne!(std::fs::read(&key).unwrap(), secret, "replaced");
}

/// Starts `pquic-host server ARGS`, returns its stderr up to the line
/// saying it listens (or everything, if it exited first), then stops it.
fn server_banner(scratch: &Scratch, args: &[&str]) -> (bool, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(BIN)
        .arg("server")
        .args(args)
        .env("HOME", &scratch.0)
        .env_remove("XDG_CONFIG_HOME")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the server");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut text = String::new();
    let mut listening = false;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
        text.push_str(&line);
        text.push('\n');
        if line.contains("SIGTERM to stop") {
            listening = true;
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    (listening, text)
}

#[test]
fn a_plugin_file_is_offered_with_its_own_signatures() {
    let scratch = Scratch::new("plugin-file");
    let key = scratch.path("validator.key");
    let public = run(&scratch, &["plugin", "keygen", "--out", &key]);
    let public = String::from_utf8(public.stdout).unwrap();
    let signed = scratch.path("realtime.fecp");
    let built = run(
        &scratch,
        &["plugin", "build-realtime", "--key", &key, "--out", &signed],
    );
    assert!(built.status.success(), "{}", stderr(&built));
    let (listening, banner) =
        server_banner(&scratch, &["--listen", "127.0.0.1:0", "--plugin", &signed]);
    assert!(listening, "{banner}");
    assert!(banner.contains(public.trim()), "its own signer: {banner}");
    // A file without any signature is refused, and the error says why.
    let unsigned = scratch.path("unsigned.fecp");
    let bytes = pquic_host::plugin::package_from_assembly(
        "realtime",
        pquic_host::plugin::REALTIME_VERSION,
        pquic_host::plugin::REALTIME_SOURCE,
        None,
    )
    .unwrap();
    std::fs::write(&unsigned, bytes).unwrap();
    let (listening, banner) = server_banner(
        &scratch,
        &["--listen", "127.0.0.1:0", "--plugin", &unsigned],
    );
    assert!(!listening);
    assert!(banner.contains("carries no signature"), "{banner}");
    assert!(banner.contains("--sign-key"), "{banner}");
}

#[test]
fn the_demo_explains_itself_when_piped_and_plots_its_latencies() {
    let scratch = Scratch::new("demo");
    let plot = scratch.path("cdf.svg");
    let output = run(
        &scratch,
        &["demo", "--duration-s", "1", "--loss", "0", "--plot", &plot],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", stderr(&output));
    // Progress as lines, since stderr is a pipe here.
    assert!(
        stderr(&output).contains("QUIC + FEC: 100%"),
        "{}",
        stderr(&output)
    );
    for expected in [
        "plugin exchange",
        "offer ",
        "trust ",
        "verifier  accepted",
        "active ",
        "what the rows mean",
    ] {
        assert!(stdout.contains(expected), "{expected}: {stdout}");
    }
    let svg = std::fs::read_to_string(&plot).expect("the plot was written");
    assert!(svg.starts_with("<svg") && svg.contains("polyline"), "{svg}");
    assert!(svg.contains("QUIC + FEC") && svg.contains("plain QUIC"));
}

#[test]
fn the_tunnel_subcommands_take_the_contract_flags() {
    let scratch = Scratch::new("tunnel-help");
    let cases: [(&[&str], &[&str]); 3] = [
        (
            &["tunnel", "server", "--help"],
            &[
                "--listen",
                "--forward",
                "--cert",
                "--key",
                "--plugin",
                "--no-plugin",
                "--sign-key",
                "--loss",
                "--burst",
                "--rtt-ms",
                "--seed",
                "--max-flows",
                "--flow-idle-s",
                "--min-mtu",
                "--tun",
                "--address",
            ],
        ),
        (
            &["tunnel", "client", "--help"],
            &[
                "--connect",
                "--udp-listen",
                "--ca",
                "--trust",
                "--require-fec",
                "--no-plugin",
                "--loss",
                "--burst",
                "--rtt-ms",
                "--seed",
                "--tun",
                "--address",
            ],
        ),
        (
            &["tunnel", "probe", "--help"],
            &[
                "--rate", "--size", "--plugin", "--loss", "--burst", "--seed",
            ],
        ),
    ];
    for (args, flags) in cases {
        let output = run(&scratch, args);
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        for flag in flags {
            assert!(help.contains(flag), "{args:?} lacks {flag}: {help}");
        }
    }
    let cases: [(&[&str], &str); 8] = [
        (&["tunnel", "server"], "--forward"),
        (&["tunnel", "server", "--tun", "pq0"], "--address"),
        (
            &[
                "tunnel",
                "client",
                "--udp-listen",
                "x",
                "--tun",
                "pq0",
                "--address",
                "a",
            ],
            "cannot be used with",
        ),
        (
            &["tunnel", "client", "--udp-listen", "x", "--min-mtu", "1500"],
            "invalid value '1500'",
        ),
        (&["tunnel", "client"], "--udp-listen"),
        (
            &["tunnel", "client", "--udp-listen", "x", "--loss", "100"],
            "invalid value '100'",
        ),
        (
            &["tunnel", "server", "--forward", "x", "--max-flows", "0"],
            "invalid value '0'",
        ),
        (&["tunnel", "probe", "--rate", "0"], "invalid value '0'"),
    ];
    for (args, expected) in cases {
        let output = run(&scratch, args);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
        assert!(message.contains(expected), "{args:?}: {message}");
    }
}

#[test]
fn a_tunnel_client_names_the_udp_address_it_cannot_bind() {
    let scratch = Scratch::new("tunnel-bind");
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = run(
        &scratch,
        &[
            "tunnel",
            "client",
            "--udp-listen",
            &addr,
            "--connect",
            "127.0.0.1:9",
        ],
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains(&format!("bind {addr}")), "{message}");
}

/// A child killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary with `args` and waits for the stderr line that says
/// it runs ("SIGTERM to stop"); returns it and everything before.
fn start(scratch: &Scratch, args: &[&str]) -> (Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Child(
        Command::new(BIN)
            .args(args)
            .env("HOME", &scratch.0)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_CACHE_HOME")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pquic-host"),
    );
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut text = String::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        text.push_str(&line);
        text.push('\n');
        if line.contains("SIGTERM to stop") {
            return (child, text);
        }
    }
    panic!("pquic-host {} did not start: {text}", args.join(" "));
}

fn free_udp_port() -> String {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().to_string()
}

#[test]
fn tunnel_server_and_client_carry_udp_with_fec_over_a_lossy_path() {
    let scratch = Scratch::new("tunnel-e2e");
    let echo = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let forward = echo.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((len, from)) = echo.recv_from(&mut buf) {
            let _ = echo.send_to(&buf[..len], from);
        }
    });
    let listen = free_udp_port();
    let cert = scratch.path("server.der");
    let (_server, banner) = start(
        &scratch,
        &[
            "tunnel",
            "server",
            "--listen",
            &listen,
            "--forward",
            &forward,
            "--cert-out",
            &cert,
            "--loss",
            "10",
            "--seed",
            "3",
        ],
    );
    let key = banner
        .split("signed by validator(s) ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("no validator key in {banner}"));
    let trusted = run(&scratch, &["plugin", "trust", key]);
    assert!(trusted.status.success(), "{}", stderr(&trusted));
    let udp_listen = free_udp_port();
    let (_client, banner) = start(
        &scratch,
        &[
            "tunnel",
            "client",
            "--connect",
            &listen,
            "--ca",
            &cert,
            "--udp-listen",
            &udp_listen,
            "--require-fec",
            "--loss",
            "10",
            "--seed",
            "4",
        ],
    );
    // A tunnel server offers the tunnel plugin by default.
    assert!(banner.contains("FEC on, plugin tunnel"), "{banner}");
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sender
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut back = std::collections::HashSet::new();
    for seq in 0u32..200 {
        sender.send_to(&seq.to_be_bytes(), &udp_listen).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut buf = [0u8; 64];
    while let Ok(len) = sender.recv(&mut buf) {
        assert_eq!(len, 4, "an echo intact");
        back.insert(u32::from_be_bytes(buf[..4].try_into().unwrap()));
    }
    // 10% loss each way: about 19% of round trips lost without FEC.
    assert!(back.len() >= 190, "{} of 200 came back", back.len());
}
