//! A QUIC endpoint (quinn) with a forward-erasure-correction layer between
//! quinn and the UDP socket, driven by FEC plugins the server ships to the
//! client over the connection, for operators (the `pquic-host` binary) and
//! applications ([`builder`]).
//!
//! - [`impair`]: seeded, reproducible loss (Bernoulli, Gilbert-Elliott),
//!   delay, jitter, reordering and rate limiting (sans-IO).
//! - [`layer`]: the socket adapter's [`layer::FecLayer`] interface, the
//!   QUIC / FEC first-byte demultiplexing, pass-through; [`fec`]: the shared
//!   sans-IO `fec_core::layer::Layer` with QUIC's settings
//!   ([`fec::QuicLayer`]), driven by a native policy or by a plugin through
//!   `fec_plugin_sdk::host::PluginPolicy`.
//! - [`builder`]: **the API for applications**: server and client
//!   endpoints (any address, identity or trust, their own ALPN, the plugin
//!   to offer or the trust store to accept with, FEC off/on/required)
//!   yielding quinn connections plus an FEC handle (state, counters).
//! - [`socket`]: the one I/O adapter, a quinn `AsyncUdpSocket` running a
//!   layer per connection (bounded peer table, per-peer locks) and the
//!   impairment; [`endpoint`]: quinn configurations and endpoints on it;
//!   [`identity`]: certificates (PEM files, stored self-signed) and roots.
//! - [`plugin`]: cache, trust store, verification and the in-band exchange;
//!   [`congestion`]: repaired losses charged to quinn's congestion
//!   controller (RFC 9265), per connection.
//! - [`tunnel`]: the QUIC VPN of `pquic-host tunnel`: UDP port forwarding
//!   over QUIC datagrams (RFC 9221) with FEC under them, and its probe.
//! - [`relay`]: the impairing UDP relay of `pquic-host relay`. The binary's
//!   own session, workload and demo code is not public API (hidden).
//!
//! See [`builder`] for an echo over FEC-protected QUIC in a few lines.
//!
//! Both ends of an in-memory FEC path, with a fake clock:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use pquic_host::fec::{QuicLayer, RepairedLosses};
//! use pquic_host::layer::FecLayer;
//!
//! let mut now = Instant::now();
//! let mut sender = QuicLayer::native(RepairedLosses::default(), now);
//! let mut receiver = QuicLayer::receive_only();
//! let (mut wire, mut to_quinn, mut back) = (Vec::new(), Vec::new(), Vec::new());
//! let quic_packet = [0x40u8; 100]; // fixed bit set, as in every QUIC packet
//! sender.on_outgoing(now, &quic_packet, &mut wire);
//! now += Duration::from_millis(2);
//! sender.handle_timeout(now, &mut wire); // idle tick: a repair packet
//! assert_eq!(wire.len(), 2);
//! wire.remove(0); // the source packet is lost...
//! for datagram in wire {
//!     receiver.on_incoming(now, datagram, &mut to_quinn, &mut back);
//! }
//! assert_eq!(to_quinn[0][..], quic_packet[..]); // ...and rebuilt
//! assert_eq!(receiver.stats().recovered, 1);
//! ```

pub mod builder;
pub mod congestion;
#[doc(hidden)]
pub mod demo;
pub mod endpoint;
pub mod error;
pub mod fec;
pub mod files;
pub mod identity;
pub mod impair;
pub mod layer;
pub mod multipath;
pub mod plugin;
pub mod relay;
pub mod rng;
#[doc(hidden)]
pub mod session;
pub mod socket;
pub mod tunnel;
#[doc(hidden)]
pub mod workload;

pub use error::{Error, Result};
