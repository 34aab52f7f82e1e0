//! The body of every fuzz target, defined once.
//!
//! Each body takes the raw bytes libFuzzer hands over and checks
//! properties, not only the absence of panics: Reed-Solomon reconstruction
//! agrees with reed-solomon-erasure, the RLC decoder never releases data
//! that was not sent, a verified program terminates inside its memory, a
//! parser's output round-trips. Two callers share them:
//!
//! - the cargo-fuzz crate in `fuzz/` (outside the workspace; it needs
//!   nightly-only compiler flags), one `fuzz_target!` per entry of
//!   [`TARGETS`];
//! - the `replay` test of this crate, which runs every file under
//!   `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through the
//!   same body, so an ordinary `cargo test` keeps every crash fixed.
//!
//! A body signals a violated property by panicking, which is what libFuzzer
//! reports as a crash.
//!
//! ```
//! // An empty input is valid for every target and must not crash.
//! for target in fec_fuzz_bodies::TARGETS {
//!     (target.body)(&[]);
//! }
//! ```

#![forbid(unsafe_code)]

pub mod fec_layer;
pub mod pipeline;
pub mod plugin;
pub mod raptorq;
pub mod rlc;
pub mod rs;
pub mod rs16;
pub mod verifier;

mod seed;

/// A fuzz target: its name (the cargo-fuzz binary and corpus directory) and
/// its body.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// Directory name under `fuzz/corpus/` and `fuzz/regressions/`, and the
    /// cargo-fuzz target name.
    pub name: &'static str,
    /// The body: panics if and only if a property is violated.
    pub body: fn(&[u8]),
}

/// Every target, in the order `fuzz/run.sh` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "rlc_payload_id",
        body: rlc::payload_id,
    },
    Target {
        name: "rlc_decoder",
        body: rlc::decoder,
    },
    Target {
        name: "rs_reconstruct",
        body: rs::reconstruct,
    },
    Target {
        name: "rs16_decode",
        body: rs16::decode,
    },
    Target {
        name: "raptorq_packets",
        body: raptorq::packets,
    },
    Target {
        name: "raptorq_block",
        body: raptorq::block,
    },
    Target {
        name: "verifier_vm",
        body: verifier::verifier_vm,
    },
    Target {
        name: "wire_header",
        body: pipeline::wire_header,
    },
    Target {
        name: "pipeline_decoder",
        body: pipeline::decoder,
    },
    Target {
        name: "plugin_package",
        body: plugin::package,
    },
    Target {
        name: "elf_loader",
        body: plugin::elf_object,
    },
    Target {
        name: "plugin_runtime",
        body: plugin::runtime,
    },
    Target {
        name: "fec_layer_receive",
        body: fec_layer::receive,
    },
];
