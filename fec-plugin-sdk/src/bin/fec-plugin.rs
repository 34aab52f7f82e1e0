//! `fec-plugin`: build, pack, inspect, verify, sign and run FEC plugins.
//!
//! ```text
//! fec-plugin build plugin.c -o plugin.o
//! fec-plugin pack plugin.o --name rlc --version 1.0.0 -o rlc.fecp
//! fec-plugin keygen validator.key            # prints the public key
//! fec-plugin sign rlc.fecp --key validator.key
//! fec-plugin verify rlc.fecp --trust <public key hex>
//! fec-plugin verify prog.bin --raw
//! fec-plugin inspect rlc.fecp
//! fec-plugin run rlc.fecp --loss ge:0.05:3 --packets 10000
//! ```
//!
//! `verify` exits 0 when the input is accepted and 1 with the reason on
//! stderr when it is rejected; every other failure also exits 1 with a
//! message, never with a panic.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fec_plugin_sdk::abi::HelperId;
use fec_plugin_sdk::build::{compile_c, pack_assembly, pack_object};
use fec_plugin_sdk::harness::{self, HarnessConfig, LossTrace};
use fec_plugin_sdk::package::{Package, TrustStore};
use fec_plugin_sdk::runtime::{HostOffer, Plugin};
use fec_plugin_sdk::{elf, verify};

#[derive(Parser)]
#[command(
    name = "fec-plugin",
    version,
    about = "Build, pack, inspect, verify, sign and run FEC plugins"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile a C plugin with clang (-O2 -target bpf, fixed flags).
    Build {
        /// C source.
        source: PathBuf,
        /// Output object.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Pack an eBPF object (or `.s` assembly with `.section` lines) into a `.fecp`.
    Pack {
        /// ELF object or assembly file.
        input: PathBuf,
        /// Plugin name.
        #[arg(long)]
        name: String,
        /// Plugin version.
        #[arg(long, default_value = "0.1.0")]
        version: String,
        /// Instance memory size in bytes.
        #[arg(long, default_value_t = 256)]
        memory: u32,
        /// Output package.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Show the manifest and disassembly of a package, object or raw program.
    Inspect {
        /// Input file.
        path: PathBuf,
        /// Treat the input as raw bytecode.
        #[arg(long)]
        raw: bool,
    },
    /// Verify a package, ELF object, or raw bytecode (--raw). Exit 0 if accepted, 1 if not.
    Verify {
        /// Input file.
        path: PathBuf,
        /// Treat the input as raw bytecode.
        #[arg(long)]
        raw: bool,
        /// Trusted validator public key (hex); repeatable.
        #[arg(long)]
        trust: Vec<String>,
        /// Trusted signatures required (default: 1 if --trust is given, else 0).
        #[arg(long)]
        require: Option<usize>,
    },
    /// Create a validator key pair: the secret goes to FILE, the public key to stdout.
    Keygen {
        /// Secret key file to create.
        file: PathBuf,
    },
    /// Sign a package with a validator's secret key (in place, or to --output).
    Sign {
        /// Package.
        path: PathBuf,
        /// Secret key file (64 hex digits).
        #[arg(long)]
        key: PathBuf,
        /// Output (default: overwrite the input).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Run a package in the harness: synthetic packets, a loss trace, the real pipeline.
    Run {
        /// Package (or ELF object).
        path: PathBuf,
        /// Loss: `none`, `RATE`, `bernoulli:RATE[:SEED]`, `ge:RATE:MEAN_BURST[:SEED]`, `every:N` or `at:I,J`
        #[arg(long, default_value = "none")]
        loss: String,
        /// Source packets to send.
        #[arg(long, default_value_t = 10_000)]
        packets: usize,
        /// Packet length in bytes.
        #[arg(long, default_value_t = 1200)]
        packet_len: usize,
        /// Sources per receiver report.
        #[arg(long, default_value_t = 50)]
        feedback_every: usize,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > 64 << 20 {
        return Err(format!("{}: larger than 64 MiB", path.display()));
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

enum Input {
    Package(Package),
    Object(Vec<elf::ElfPluglet>),
    Raw(Vec<u8>),
}

fn load_input(path: &Path, raw: bool) -> Result<Input, String> {
    let bytes = read(path)?;
    if raw {
        return Ok(Input::Raw(bytes));
    }
    if bytes.starts_with(b"FECP") {
        return Package::parse(&bytes)
            .map(Input::Package)
            .map_err(|e| format!("package rejected: {e}"));
    }
    if bytes.starts_with(b"\x7fELF") {
        return elf::load(&bytes)
            .map(Input::Object)
            .map_err(|e| format!("object rejected: {e}"));
    }
    Err(format!(
        "{}: neither a .fecp package nor an ELF object (use --raw for raw bytecode)",
        path.display()
    ))
}

fn package_from(path: &Path) -> Result<Package, String> {
    match load_input(path, false)? {
        Input::Package(p) => Ok(p),
        Input::Object(_) => {
            let bytes = read(path)?;
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("plugin")
                .to_string();
            pack_object(&bytes, &name, "0.0.0", 256).map_err(|e| e.to_string())
        }
        Input::Raw(_) => Err("raw bytecode cannot be run; pack it first".into()),
    }
}

fn disassemble(code: &[u8]) -> String {
    // Only verified-length code reaches rbpf's disassembler, which panics on
    // a ragged length; guard anyway.
    if !code.len().is_multiple_of(8) {
        return "  (length not a multiple of 8)\n".into();
    }
    let listing = std::panic::catch_unwind(|| rbpf::disassembler::to_insn_vec(code));
    match listing {
        Ok(insns) => {
            let mut out = String::new();
            let mut slot = 0;
            for insn in insns {
                out.push_str(&format!("  {slot:5}: {}\n", insn.desc));
                slot += if insn.opc == 0x18 { 2 } else { 1 };
            }
            out
        }
        Err(_) => "  (cannot disassemble)\n".into(),
    }
}

fn helper_names(ids: &[u32]) -> String {
    ids.iter()
        .map(|&id| match HelperId::from_id(id) {
            Some(h) => format!("{id} ({})", h.name()),
            None => format!("{id} (unknown)"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn command(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Build { source, output } => {
            compile_c(&source, &output).map_err(|e| e.to_string())?;
            let object = read(&output)?;
            let pluglets = elf::load(&object).map_err(|e| format!("object rejected: {e}"))?;
            for p in pluglets {
                println!("{}: {} instructions", p.name, p.code.len() / 8);
            }
            Ok(())
        }
        Command::Pack {
            input,
            name,
            version,
            memory,
            output,
        } => {
            let bytes = read(&input)?;
            let package = if bytes.starts_with(b"\x7fELF") {
                pack_object(&bytes, &name, &version, memory)
            } else {
                let text = String::from_utf8(bytes)
                    .map_err(|_| "input is neither ELF nor UTF-8 assembly")?;
                pack_assembly(&text, &name, &version, memory)
            }
            .map_err(|e| e.to_string())?;
            Plugin::load(&package, &HostOffer::all()).map_err(|e| format!("rejected: {e}"))?;
            std::fs::write(&output, package.to_bytes())
                .map_err(|e| format!("{}: {e}", output.display()))?;
            println!("{} sha256:{}", output.display(), package.digest_hex());
            Ok(())
        }
        Command::Inspect { path, raw } => {
            match load_input(&path, raw)? {
                Input::Package(p) => {
                    let m = &p.manifest;
                    println!("name       {}", m.name);
                    println!("version    {}", m.version);
                    println!("sha256     {}", p.digest_hex());
                    println!("memory     {} bytes", m.memory_size);
                    println!("helpers    {}", helper_names(&m.helpers));
                    for s in &p.signatures {
                        println!("signed by  {}", hex::encode(s.key.as_bytes()));
                    }
                    for pl in &m.pluglets {
                        println!(
                            "\n{} ({} {}, {} instructions)",
                            pl.name,
                            pl.anchor.name(),
                            pl.operation.name(),
                            pl.code.len() / 8
                        );
                        print!("{}", disassemble(&pl.code));
                    }
                }
                Input::Object(pluglets) => {
                    for pl in pluglets {
                        println!("\n{} ({} instructions)", pl.name, pl.code.len() / 8);
                        print!("{}", disassemble(&pl.code));
                    }
                }
                Input::Raw(code) => print!("{}", disassemble(&code)),
            }
            Ok(())
        }
        Command::Verify {
            path,
            raw,
            trust,
            require,
        } => {
            let offer = HostOffer::all();
            match load_input(&path, raw)? {
                Input::Package(p) => {
                    let mut store = TrustStore::new();
                    for key in &trust {
                        store
                            .add_hex(key)
                            .map_err(|_| format!("bad public key {key:?}"))?;
                    }
                    let required = require.unwrap_or(usize::from(!trust.is_empty()));
                    let signers = store
                        .check(&p, required)
                        .map_err(|e| format!("rejected: {e}"))?;
                    Plugin::load(&p, &offer).map_err(|e| format!("rejected: {e}"))?;
                    println!(
                        "accepted: {} {} sha256:{} ({} pluglets, {} trusted signatures)",
                        p.manifest.name,
                        p.manifest.version,
                        p.digest_hex(),
                        p.manifest.pluglets.len(),
                        signers
                    );
                }
                Input::Object(pluglets) => {
                    for pl in &pluglets {
                        verify::verify(&pl.code, &offer.helpers, &offer.helpers)
                            .map_err(|e| format!("rejected: {}: {e}", pl.name))?;
                    }
                    println!("accepted: {} pluglets", pluglets.len());
                }
                Input::Raw(code) => {
                    let info = verify::verify(&code, &offer.helpers, &offer.helpers)
                        .map_err(|e| format!("rejected: {e}"))?;
                    println!("accepted: {} instructions", info.instructions);
                }
            }
            Ok(())
        }
        Command::Keygen { file } => {
            let mut secret = [0u8; 32];
            let mut urandom =
                std::fs::File::open("/dev/urandom").map_err(|e| format!("/dev/urandom: {e}"))?;
            std::io::Read::read_exact(&mut urandom, &mut secret)
                .map_err(|e| format!("/dev/urandom: {e}"))?;
            let key = ed25519_dalek::SigningKey::from_bytes(&secret);
            std::fs::write(&file, hex::encode(secret) + "\n")
                .map_err(|e| format!("{}: {e}", file.display()))?;
            println!("{}", hex::encode(key.verifying_key().as_bytes()));
            Ok(())
        }
        Command::Sign { path, key, output } => {
            let mut package =
                Package::parse(&read(&path)?).map_err(|e| format!("package rejected: {e}"))?;
            let secret = String::from_utf8(read(&key)?).map_err(|_| "key file is not text")?;
            let secret: [u8; 32] = hex::decode(secret.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or("key file must hold 64 hex digits")?;
            let key = ed25519_dalek::SigningKey::from_bytes(&secret);
            package.sign(&key);
            let output = output.unwrap_or(path);
            std::fs::write(&output, package.to_bytes())
                .map_err(|e| format!("{}: {e}", output.display()))?;
            println!("signed by {}", hex::encode(key.verifying_key().as_bytes()));
            Ok(())
        }
        Command::Run {
            path,
            loss,
            packets,
            packet_len,
            feedback_every,
        } => {
            let package = package_from(&path)?;
            let plugin =
                Plugin::load(&package, &HostOffer::all()).map_err(|e| format!("rejected: {e}"))?;
            let config = HarnessConfig {
                packets: packets.min(10_000_000),
                packet_len,
                loss: LossTrace::parse(&loss)?,
                feedback_every,
                ..HarnessConfig::default()
            };
            let report = harness::run(&plugin, &config).map_err(|e| e.to_string())?;
            println!("plugin            {} {}", plugin.name(), plugin.version());
            println!("loss              {loss}");
            print!("{report}");
            for l in &report.logs {
                println!("log: {l}");
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match command(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("{reason}");
            ExitCode::FAILURE
        }
    }
}
