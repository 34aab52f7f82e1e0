//! Shared helpers for the criterion benches and the `compare` binary.
//!
//! The compare binary (`cargo run --release -p fec-benches --bin compare -- --json`)
//! measures fec-core and its peers in one process, on the same inputs, with one
//! timing routine ([`timing::measure`]) for every library. The modules:
//!
//! - [`timing`]: the timing loop, cases, and interleaved rounds;
//! - [`workload`]: configurations A/B/C, seeded data and erasure patterns;
//! - [`rs_cases`]: Reed-Solomon cases per library (what each one's timed region
//!   contains is tabled there), and the memcpy baseline;
//! - [`rs16_cases`]: GF(2^16) Reed-Solomon (`fec_core::rs16`) against reed-solomon-simd;
//! - [`window_cases`]: RLC (config D) and RaptorQ (E32/E200) cases;
//! - [`plugin_cases`]: config P, the pipeline driven by an eBPF plugin vs natively;
//! - [`isal`]: ISA-L loaded at run time;
//! - [`report`]: JSON lines and the human table;
//! - [`quic`]: the QUIC benchmark (`quic` binary): stock quinn against
//!   `pquic-host` with FEC off and with a plugin, bulk and loss cases.

pub mod isal;
pub mod plugin_cases;
pub mod quic;
pub mod report;
pub mod rs16_cases;
pub mod rs_cases;
pub mod timing;
pub mod window_cases;
pub mod workload;
