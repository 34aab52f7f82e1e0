//! A QUIC endpoint (quinn) with a forward-erasure-correction layer between
//! quinn and the UDP socket, driven by FEC plugins the server ships to the
//! client over the connection, and the tools to exercise it over an impaired
//! loopback path.
//!
//! - [`impair`]: seeded, reproducible loss (Bernoulli, Gilbert-Elliott),
//!   delay, jitter, reordering and rate limiting (sans-IO).
//! - [`layer`]: the sans-IO [`layer::FecLayer`] trait, first-byte demux,
//!   pass-through; [`fec`]: the protecting layer over `fec_core::pipeline`,
//!   receiver feedback, the [`fec::RepairPolicy`] trait.
//! - [`socket`]: the one I/O adapter, a quinn `AsyncUdpSocket` running a
//!   layer per peer (and the impairment); [`endpoint`]: quinn endpoints on it.
//! - [`plugin`]: cache, trust store, verification, the plugin-driven policy
//!   and the in-band exchange; [`congestion`]: repaired losses charged to
//!   quinn's congestion controller (RFC 9265).
//! - [`session`], [`workload`], [`demo`], [`relay`]: what the `pquic-host`
//!   binary runs.
//!
//! Both ends of an in-memory FEC path, with a fake clock:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use pquic_host::fec::{ProtectedLayer, RepairedLosses};
//! use pquic_host::layer::FecLayer;
//!
//! let mut sender = ProtectedLayer::native(RepairedLosses::default());
//! let mut receiver = ProtectedLayer::receive_only();
//! let mut now = Instant::now();
//! let (mut wire, mut to_quinn, mut back) = (Vec::new(), Vec::new(), Vec::new());
//! let quic_packet = [0x40u8; 100]; // fixed bit set, as in every QUIC packet
//! sender.on_outgoing(now, &quic_packet, &mut wire);
//! now += Duration::from_millis(2);
//! sender.handle_timeout(now, &mut wire); // idle flush: a repair packet
//! assert_eq!(wire.len(), 2);
//! wire.remove(0); // the source packet is lost...
//! for datagram in wire {
//!     receiver.on_incoming(now, datagram, &mut to_quinn, &mut back);
//! }
//! assert_eq!(to_quinn[0][..], quic_packet[..]); // ...and rebuilt
//! assert_eq!(receiver.stats().recovered, 1);
//! ```

pub mod congestion;
pub mod demo;
pub mod endpoint;
pub mod error;
pub mod fec;
pub mod impair;
pub mod layer;
pub mod plugin;
pub mod relay;
pub mod rng;
pub mod session;
pub mod socket;
pub mod workload;

pub use error::{Error, Result};
