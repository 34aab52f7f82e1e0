//! A QUIC endpoint (quinn) with a forward-erasure-correction layer between
//! quinn and the UDP socket, and the tools to exercise it over an impaired
//! loopback path.
//!
//! - [`impair`]: seeded, reproducible loss, delay, jitter, reordering and
//!   rate limiting (sans-IO).

pub mod endpoint;
pub mod error;
pub mod impair;
pub mod layer;
pub mod rng;
pub mod socket;

pub use error::{Error, Result};
pub mod congestion;
pub mod demo;
pub mod fec;
pub mod plugin;
pub mod relay;
pub mod session;
pub mod workload;
