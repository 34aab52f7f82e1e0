//! End-to-end across two network namespaces joined by a veth pair, with
//! non-loopback addresses (10.77.0.1/24 and 10.77.0.2/24, fd77::1/64 and
//! fd77::2/64): the `pquic-host` binary as an operator runs it, `server` in
//! one namespace, `client` (and `relay`) in the other, checking the
//! client's JSON verdict and exit code.
//!
//! These tests need root (network namespaces) and iproute2 (`ip`); without
//! either they fail with a message saying so, they never pass or skip
//! silently. Every test creates its own pair of namespaces, named after the
//! process id and the test, and a guard deletes them however the test ends.
//! No traffic leaves those namespaces. The kernel here has no netem, so loss
//! comes from the binary's own impairment (`--loss`) or its relay.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

const BIN: &str = env!("CARGO_BIN_EXE_pquic-host");
const SERVER_V4: &str = "10.77.0.1";
const CLIENT_V4: &str = "10.77.0.2";
/// The second link of the multipath tests (veth1).
const SERVER2_V4: &str = "10.78.0.1";
const CLIENT2_V4: &str = "10.78.0.2";
const SERVER_V6: &str = "fd77::1";
const CLIENT_V6: &str = "fd77::2";
/// The name the client's namespace resolves to the server (its
/// `/etc/netns/NAME/hosts`, which `ip netns exec` mounts over /etc/hosts).
const SERVER_NAME: &str = "fec-server.test";

/// Sends `count` ICMP echo requests to `to` from inside namespace `ns`
/// (20 ms apart, as `ping -i 0.02` would; `ping` itself is not installed
/// here) and returns the round-trip time of each reply that came back
/// within a second, by sequence number.
fn ping(ns: &str, to: Ipv4Addr, count: u16) -> Vec<(u16, Duration)> {
    let ns = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let handle = std::fs::File::open(&ns).unwrap_or_else(|e| panic!("open {ns}: {e}"));
        // Only this thread moves: the socket below lives in that namespace.
        nix::sched::setns(handle, nix::sched::CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("setns into {ns}: {e}"));
        let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
            .unwrap_or_else(|e| panic!("raw ICMP socket in {ns} (needs root): {e}"));
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("read timeout");
        let id = (std::process::id() & 0xffff) as u16;
        let target = SockAddr::from(SocketAddrV4::new(to, 0));
        let mut sent_at = vec![None; usize::from(count)];
        let mut replies = Vec::new();
        let mut buffer = [0u8; 1500];
        let deadline = |sent: Instant| sent + Duration::from_secs(1);
        let mut next = 0u16;
        let start = Instant::now();
        loop {
            if next < count && start.elapsed() >= Duration::from_millis(20) * u32::from(next) {
                sent_at[usize::from(next)] = Some(Instant::now());
                socket
                    .send_to(&echo_request(id, next), &target)
                    .unwrap_or_else(|e| panic!("send echo request {next} to {to}: {e}"));
                next += 1;
            }
            if let Ok(len) = (&socket).read(&mut buffer) {
                if let Some(seq) = echo_reply_seq(&buffer[..len], id) {
                    if let Some(Some(sent)) = sent_at.get(usize::from(seq)) {
                        if !replies.iter().any(|(s, _)| *s == seq) {
                            replies.push((seq, sent.elapsed()));
                        }
                    }
                }
            }
            let last = sent_at.iter().flatten().last().copied();
            if next == count && last.is_some_and(|sent| Instant::now() > deadline(sent)) {
                break;
            }
        }
        replies
    })
    .join()
    .expect("the ping thread")
}

/// An ICMP echo request (type 8) with a 56-byte payload.
fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut packet = vec![8, 0, 0, 0];
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend((0..56).map(|i| i as u8));
    let checksum = internet_checksum(&packet);
    packet[2..4].copy_from_slice(&checksum.to_be_bytes());
    packet
}

/// The sequence number of an echo reply (type 0) to `id` in an IPv4 packet
/// as a raw socket reads it (IP header first).
fn echo_reply_seq(packet: &[u8], id: u16) -> Option<u16> {
    let header = usize::from(packet.first()? & 0x0f) * 4;
    let icmp = packet.get(header..)?;
    let field = |at: usize| Some(u16::from_be_bytes([*icmp.get(at)?, *icmp.get(at + 1)?]));
    (icmp.first() == Some(&0) && field(4)? == id).then_some(())?;
    field(6)
}

/// RFC 1071's one's-complement sum.
fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Runs `ip ARGS`, panicking with its output when it fails.
fn ip(args: &[&str]) {
    let output = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ip {}`: {e}", args.join(" ")));
    assert!(
        output.status.success(),
        "`ip {}` failed ({}): {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

/// Checks the preconditions, failing the test with what is missing.
fn preconditions() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("unknown");
    if euid != "0" {
        panic!("the network-namespace tests need root (effective uid is {euid}); run them as root");
    }
    let found = Command::new("ip")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "the network-namespace tests need iproute2's `ip` on PATH (apt-get install iproute2; \
         .ci/run installs it)"
    );
}

/// Two namespaces joined by a veth pair, deleted on drop.
struct Namespaces {
    server: String,
    client: String,
}

impl Namespaces {
    /// `tag` tells the tests of one process apart.
    fn create(tag: &str) -> Self {
        let base = format!("pqh{}-{tag}", std::process::id());
        let pair = Namespaces {
            server: format!("{base}-s"),
            client: format!("{base}-c"),
        };
        // Leftovers of a process that had our id before (its guard could not
        // run): remove them quietly.
        for ns in [&pair.server, &pair.client] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
        ip(&["netns", "add", &pair.server]);
        // From here on the guard cleans up, even if a later step fails.
        let guard = pair;
        ip(&["netns", "add", &guard.client]);
        // Created inside the namespaces, so the interface names only need
        // to be unique there.
        ip(&[
            "link",
            "add",
            "veth0",
            "netns",
            &guard.server,
            "type",
            "veth",
            "peer",
            "name",
            "veth0",
            "netns",
            &guard.client,
        ]);
        for (ns, v4, v6) in [
            (&guard.server, SERVER_V4, SERVER_V6),
            (&guard.client, CLIENT_V4, CLIENT_V6),
        ] {
            ip(&["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", "veth0"]);
            ip(&[
                "-n",
                ns,
                "-6",
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                "veth0",
                "nodad",
            ]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&["-n", ns, "link", "set", "veth0", "up"]);
        }
        let hosts = guard.etc_dir(&guard.client);
        std::fs::create_dir_all(&hosts).expect("create /etc/netns/NAME");
        std::fs::write(
            hosts.join("hosts"),
            format!("127.0.0.1 localhost\n{SERVER_V4} {SERVER_NAME}\n"),
        )
        .expect("write the client namespace's hosts file");
        guard
    }

    /// A second veth pair between the two namespaces (veth1: 10.78.0.1/24
    /// on the server's side, 10.78.0.2/24 on the client's): a second path.
    fn add_second_link(&self) {
        ip(&[
            "link",
            "add",
            "veth1",
            "netns",
            &self.server,
            "type",
            "veth",
            "peer",
            "name",
            "veth1",
            "netns",
            &self.client,
        ]);
        for (ns, v4) in [(&self.server, SERVER2_V4), (&self.client, CLIENT2_V4)] {
            ip(&["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", "veth1"]);
            ip(&["-n", ns, "link", "set", "veth1", "up"]);
        }
    }

    fn etc_dir(&self, ns: &str) -> PathBuf {
        Path::new("/etc/netns").join(ns)
    }

    /// `pquic-host ARGS` inside namespace `ns`.
    fn command(&self, ns: &str, args: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns, BIN]).args(args);
        command
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in [&self.server, &self.client] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
            let _ = std::fs::remove_dir_all(self.etc_dir(ns));
        }
    }
}

/// A process killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A test's scratch directory (keys, trust store, cache, certificates).
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("pqh-netns-{}-{tag}", std::process::id()));
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

fn run_local(args: &[&str]) -> String {
    let output = Command::new(BIN)
        .args(args)
        .output()
        .expect("run pquic-host");
    assert!(
        output.status.success(),
        "pquic-host {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// A validator key the server signs with and the client trusts.
fn validator(scratch: &Scratch) {
    let public = run_local(&["plugin", "keygen", "--out", &scratch.path("validator.key")]);
    run_local(&[
        "plugin",
        "trust",
        public.trim(),
        "--trust",
        &scratch.path("trusted_keys"),
    ]);
}

/// Starts `pquic-host server ARGS` in the server namespace and waits until
/// it listens.
fn start_server(namespaces: &Namespaces, args: &[&str]) -> Running {
    start_in(
        namespaces,
        &namespaces.server,
        &[&["server"], args].concat(),
    )
}

/// Starts `pquic-host ARGS` in namespace `ns` and waits until it says it
/// runs ("SIGTERM to stop").
fn start_in(namespaces: &Namespaces, ns: &str, args: &[&str]) -> Running {
    let mut child = namespaces
        .command(ns, args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the server");
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("SIGTERM to stop") => {
                // Keep draining so the server never blocks on a full pipe.
                std::thread::spawn(move || for _ in rx {});
                return running;
            }
            Ok(line) => seen.push(line),
            Err(_) => panic!(
                "pquic-host {} did not start:\n{}",
                args.join(" "),
                seen.join("\n")
            ),
        }
    }
}

/// Runs `pquic-host ARGS` in the client namespace, bounded in time.
fn run_client(namespaces: &Namespaces, args: &[&str]) -> Output {
    run_client_while(namespaces, args, || {})
}

/// [`run_client`], running `meanwhile` once the client started.
fn run_client_while(namespaces: &Namespaces, args: &[&str], meanwhile: impl FnOnce()) -> Output {
    let child = namespaces
        .command(&namespaces.client, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the client");
    let id = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    meanwhile();
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(output) => output.expect("client output"),
        Err(_) => {
            let _ = Command::new("kill").arg(id.to_string()).status();
            panic!("the client did not finish within 60 s");
        }
    }
}

/// The client's JSON verdict (its stdout), checked against its exit code.
fn verdict(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let json: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("client JSON ({e}):\n{stdout}\nstderr:\n{stderr}"));
    let requirement_met = json["fec_required"] != true || json["fec"] == "active";
    assert_eq!(
        output.status.success(),
        json["verified"] == true && requirement_met,
        "exit code follows the verdict: {json}\nstderr:\n{stderr}"
    );
    json
}

/// Client arguments for a short transfer to `connect`, trusting the
/// scratch validator.
fn client_args(scratch: &Scratch, connect: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "client",
        "--connect",
        connect,
        "--trust",
        &scratch.path("trusted_keys"),
        "--cache",
        &scratch.path("cache"),
        "--messages-s",
        "1",
        "--bulk-s",
        "0.5",
    ]
    .map(String::from)
    .to_vec();
    if !extra.contains(&"--ca") {
        // The old flag name, as written by `server --cert-out` (DER).
        args.extend(["--cert".to_string(), scratch.path("server.der")]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn server_args<'a>(scratch: &'a Scratch, listen: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--listen",
        listen,
        "--sign-key",
        &scratch.path("validator.key"),
        "--cert-out",
        &scratch.path("server.der"),
        "--identity-dir",
        &scratch.path("identity"),
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// One server and one client transfer; returns the client's verdict.
fn transfer(tag: &str, listen: &str, connect: &str, server: &[&str], client: &[&str]) -> Value {
    let namespaces = Namespaces::create(tag);
    let scratch = Scratch::new(tag);
    validator(&scratch);
    let _server = start_server(&namespaces, &strs(&server_args(&scratch, listen, server)));
    let output = run_client(&namespaces, &strs(&client_args(&scratch, connect, client)));
    let json = verdict(&output);
    assert!(
        output.status.success(),
        "client failed: {json}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    json
}

use serde_json::Value;

fn assert_fec_active(json: &Value) {
    assert_eq!(json["verified"], true, "{json}");
    assert!(json["plugin_sha256"].is_string(), "plugin active: {json}");
    assert!(json["plain_quic_because"].is_null(), "{json}");
    assert_eq!(json["fec"], "active", "{json}");
}

#[test]
fn ipv4_across_namespaces() {
    preconditions();
    let json = transfer(
        "v4",
        &format!("{SERVER_V4}:4433"),
        &format!("{SERVER_V4}:4433"),
        &[],
        &[],
    );
    assert_fec_active(&json);
    assert_eq!(json["plugin_fetched"], true, "empty cache: fetched");
}

#[test]
fn ipv4_with_emulated_loss_fec_repairs() {
    preconditions();
    let json = transfer(
        "loss",
        &format!("{SERVER_V4}:4433"),
        &format!("{SERVER_V4}:4433"),
        &["--loss", "5"],
        &["--loss", "5"],
    );
    assert_fec_active(&json);
    assert!(json["recovered"].as_u64().unwrap() > 0, "repaired: {json}");
}

#[test]
fn require_fec_fails_against_a_plain_server() {
    preconditions();
    let tag = "require";
    let namespaces = Namespaces::create(tag);
    let scratch = Scratch::new(tag);
    validator(&scratch);
    let listen = format!("{SERVER_V4}:4433");
    let _server = start_server(
        &namespaces,
        &strs(&server_args(&scratch, &listen, &["--no-plugin"])),
    );
    let args = client_args(&scratch, &listen, &["--require-fec"]);
    let output = run_client(&namespaces, &strs(&args));
    let json = verdict(&output);
    assert_eq!(json["verified"], true, "the data arrived: {json}");
    assert_eq!(json["fec"], "off");
    assert!(!output.status.success(), "but FEC was required");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("FEC required"), "{stderr}");
    let reason = json["plain_quic_because"].as_str().unwrap();
    assert!(reason.contains("offers no plugin"), "{reason}");
    // The same client against a server that offers a trusted plugin passes.
    drop(_server);
    let _server = start_server(&namespaces, &strs(&server_args(&scratch, &listen, &[])));
    let output = run_client(&namespaces, &strs(&args));
    assert!(output.status.success());
    assert_eq!(verdict(&output)["fec"], "active");
}

#[test]
fn ipv6_across_namespaces() {
    preconditions();
    let json = transfer(
        "v6",
        &format!("[{SERVER_V6}]:4433"),
        &format!("[{SERVER_V6}]:4433"),
        &[],
        &[],
    );
    assert_fec_active(&json);
}

#[test]
fn wildcard_listen_and_a_host_name() {
    preconditions();
    // `[::]` serves IPv4 too (dual-stack); the client resolves the server's
    // name through its namespace's hosts file and checks the self-signed
    // certificate made for that name (`--ca`, PEM, as the server stored it).
    let tag = "name";
    let namespaces = Namespaces::create(tag);
    let scratch = Scratch::new(tag);
    validator(&scratch);
    let _server = start_server(
        &namespaces,
        &strs(&server_args(
            &scratch,
            "[::]:4433",
            &["--name", SERVER_NAME, "--name", SERVER_V4],
        )),
    );
    let stored = scratch.path(&format!(
        "identity/self-signed-{SERVER_NAME}+{SERVER_V4}.cert.pem"
    ));
    let by_name = client_args(&scratch, &format!("{SERVER_NAME}:4433"), &["--ca", &stored]);
    let json = verdict(&run_client(&namespaces, &strs(&by_name)));
    assert_fec_active(&json);
    // The certificate names the address too; a wrong name is refused.
    let by_address = client_args(
        &scratch,
        &format!("{SERVER_V4}:4433"),
        &["--ca", &stored, "--server-name", SERVER_V4],
    );
    assert_fec_active(&verdict(&run_client(&namespaces, &strs(&by_address))));
    let wrong = client_args(
        &scratch,
        &format!("{SERVER_V4}:4433"),
        &["--ca", &stored, "--server-name", "other.test"],
    );
    let output = run_client(&namespaces, &strs(&wrong));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("certificate"), "{stderr}");
}

#[test]
fn operator_certificate_and_key() {
    preconditions();
    // A chain and key as an operator has them (PEM files), for the server's
    // name; the client trusts the issuing certificate.
    let tag = "pem";
    let namespaces = Namespaces::create(tag);
    let scratch = Scratch::new(tag);
    validator(&scratch);
    let certified = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_string()]).unwrap();
    std::fs::write(scratch.path("chain.pem"), certified.cert.pem()).unwrap();
    std::fs::write(scratch.path("key.pem"), certified.key_pair.serialize_pem()).unwrap();
    let mut args = server_args(&scratch, &format!("{SERVER_V4}:4433"), &[]);
    args.extend(
        [
            "--cert",
            &scratch.path("chain.pem"),
            "--key",
            &scratch.path("key.pem"),
        ]
        .map(String::from),
    );
    let _server = start_server(&namespaces, &strs(&args));
    let client = client_args(
        &scratch,
        &format!("{SERVER_NAME}:4433"),
        &["--ca", &scratch.path("chain.pem")],
    );
    assert_fec_active(&verdict(&run_client(&namespaces, &strs(&client))));
}

#[test]
fn through_a_lossy_relay() {
    preconditions();
    let tag = "relay";
    let namespaces = Namespaces::create(tag);
    let scratch = Scratch::new(tag);
    validator(&scratch);
    // The server listens on the server namespace's loopback only; the relay
    // there forwards from its veth address, losing 5% each way.
    let _server = start_server(
        &namespaces,
        &strs(&server_args(&scratch, "127.0.0.1:4433", &[])),
    );
    let relay = namespaces
        .command(
            &namespaces.server,
            &[
                "relay",
                "--listen",
                &format!("{SERVER_V4}:4434"),
                "--to",
                "127.0.0.1:4433",
                "--loss",
                "5",
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the relay");
    let _relay = Running(relay);
    // The relay binds at once; give it a moment before the first Initial.
    std::thread::sleep(Duration::from_millis(300));
    let output = run_client(
        &namespaces,
        &strs(&client_args(&scratch, &format!("{SERVER_V4}:4434"), &[])),
    );
    let json = verdict(&output);
    assert_fec_active(&json);
    assert!(json["recovered"].as_u64().unwrap() > 0, "repaired: {json}");
}

#[test]
fn ip_tunnel_over_tun_devices_carries_a_quic_transfer_through_loss() {
    preconditions();
    let namespaces = Namespaces::create("tun");
    let scratch = Scratch::new("tun");
    validator(&scratch);
    let listen = format!("{SERVER_V4}:4433");
    let mut server = vec!["tunnel".to_string(), "server".to_string()];
    server.extend(server_args(
        &scratch,
        &listen,
        &[
            "--tun",
            "pqt0",
            "--address",
            "10.99.0.1/24",
            "--loss",
            "10",
            "--seed",
            "5",
            "--min-mtu",
            "1419",
        ],
    ));
    let _server = start_in(&namespaces, &namespaces.server, &strs(&server));
    let (trust, cache, cert) = (
        scratch.path("trusted_keys"),
        scratch.path("cache"),
        scratch.path("server.der"),
    );
    let _client = start_in(
        &namespaces,
        &namespaces.client,
        &[
            "tunnel",
            "client",
            "--connect",
            &listen,
            "--ca",
            &cert,
            "--trust",
            &trust,
            "--cache",
            &cache,
            "--require-fec",
            "--tun",
            "pqt0",
            "--address",
            "10.99.0.2/24",
            "--loss",
            "10",
            "--seed",
            "6",
            "--min-mtu",
            "1419",
        ],
    );
    // ICMP echo across the tunnel, from the client's TUN address to the
    // server's: the kernels on both ends answer, FEC repairs the loss.
    let replies = ping(&namespaces.client, Ipv4Addr::new(10, 99, 0, 1), 50);
    assert!(
        replies.len() >= 49,
        "ping through the tunnel: {} of 50 echo replies ({replies:?})",
        replies.len()
    );
    // Through the IP tunnel: the workload server and client on the TUN
    // addresses (QUIC over the tunnel's QUIC), checked as in the other tests.
    let _inner = start_server(
        &namespaces,
        &strs(&server_args(&scratch, "10.99.0.1:4444", &[])),
    );
    let output = run_client(
        &namespaces,
        &strs(&client_args(&scratch, "10.99.0.1:4444", &["--require-fec"])),
    );
    assert_fec_active(&verdict(&output));
}

/// The client's view of path `i` in its verdict.
fn path_of(json: &Value, i: usize) -> &Value {
    &json["paths"][i]
}

fn number(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("not a count: {value}"))
}

/// Two namespaces joined by two links, a server listening on both (what
/// arrives on the second impaired by `server_impair`, such as
/// `,loss=10`), and the client's `--path` for the second link (impaired by
/// `client_impair`). Fields drop in order: the server before the rest.
struct TwoLinks {
    _server: Running,
    scratch: Scratch,
    namespaces: Namespaces,
    client_path: String,
}

fn two_links(tag: &str, server_impair: &str, client_impair: &str) -> TwoLinks {
    let namespaces = Namespaces::create(tag);
    namespaces.add_second_link();
    let scratch = Scratch::new(tag);
    validator(&scratch);
    let server_path = format!("{SERVER2_V4}:4433{server_impair}");
    let server = start_server(
        &namespaces,
        &strs(&server_args(
            &scratch,
            &format!("{SERVER_V4}:4433"),
            &["--path", &server_path],
        )),
    );
    TwoLinks {
        _server: server,
        scratch,
        namespaces,
        client_path: format!("{CLIENT2_V4}={SERVER2_V4}:4433{client_impair}"),
    }
}

#[test]
fn multipath_over_two_links_one_lossy_repairs_on_the_clean_one() {
    let links = two_links("mp", ",loss=10,seed=3", ",loss=10,seed=4");
    let output = run_client(
        &links.namespaces,
        &strs(&client_args(
            &links.scratch,
            &format!("{SERVER_V4}:4433"),
            &["--path", &links.client_path],
        )),
    );
    let json = verdict(&output);
    assert!(output.status.success(), "{json}");
    assert_fec_active(&json);
    let (clean, lossy) = (path_of(&json, 0), path_of(&json, 1));
    assert_eq!(lossy["state"], "validated", "{json}");
    assert_eq!(clean["state"], "validated", "{json}");
    assert!(number(&lossy["received_datagrams"]) > 50, "{json}");
    assert!(number(&lossy["source_packets"]) > 50, "{json}");
    // Each end measures its own direction: 10% loss on veth1, none on veth0.
    let lossy_loss = number(&lossy["loss_permille"]);
    assert!(
        (30..=250).contains(&lossy_loss),
        "path 1 loss {lossy_loss}: {json}"
    );
    assert!(number(&clean["loss_permille"]) <= 20, "{json}");
    // Repairs go on the path that is not losing.
    assert!(
        number(&clean["repair_packets"]) > 4 * number(&lossy["repair_packets"]),
        "{json}"
    );
    let rtt = lossy["rtt_ms"].as_f64().expect("path 1 RTT measured");
    assert!(rtt > 0.0 && rtt < 50.0, "{json}");
    assert_eq!(json["path_events"]["failed"], 0, "{json}");
    assert!(number(&json["path_events"]["validated"]) >= 1, "{json}");
}

#[test]
fn multipath_survives_cutting_the_first_link_mid_transfer() {
    let links = two_links("mpcut", "", "");
    let (namespaces, scratch) = (&links.namespaces, &links.scratch);
    let client_path = &links.client_path;
    let connect = format!("{SERVER_V4}:4433");
    let args = [
        "client",
        "--connect",
        &connect,
        "--trust",
        &scratch.path("trusted_keys"),
        "--cache",
        &scratch.path("cache"),
        "--cert",
        &scratch.path("server.der"),
        "--messages-s",
        "4",
        "--bulk-s",
        "2",
        "--path",
        client_path,
    ];
    let output = run_client_while(namespaces, &args, || {
        std::thread::sleep(Duration::from_millis(1500));
        // The link quinn connected over goes away under the transfer.
        ip(&["-n", &namespaces.client, "link", "set", "veth0", "down"]);
    });
    let json = verdict(&output);
    assert!(
        output.status.success(),
        "every message and byte arrives: {json}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(json["sent"], json["delivered"], "{json}");
    assert_eq!(json["bulk_sha256_matches"], true, "{json}");
    assert_eq!(path_of(&json, 0)["state"], "failed", "{json}");
    assert_eq!(path_of(&json, 1)["state"], "validated", "{json}");
    assert!(number(&json["path_events"]["failed"]) >= 1, "{json}");
    // After the cut everything went over path 1.
    assert!(
        number(&path_of(&json, 1)["source_packets"]) > number(&path_of(&json, 0)["source_packets"]),
        "{json}"
    );
}
