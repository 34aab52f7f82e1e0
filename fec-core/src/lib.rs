//! Forward erasure correction codecs over a SIMD GF(2^8) engine.
//!
//! - [`gf256`]: field arithmetic and slice kernels (scalar, SSSE3, AVX2,
//!   AVX-512BW, GFNI), selected once at run time.
//! - [`rs`]: systematic Reed-Solomon, parity byte-identical to
//!   reed-solomon-erasure 6.
//! - [`rs16`]: systematic Reed-Solomon over GF(2^16) for up to 65535 shards,
//!   O(n log n) by additive FFT, shards byte-identical to reed-solomon-simd 3.
//! - [`rlc`]: RFC 8681 sliding-window random linear codes (GF(2) and GF(2^8)).
//! - [`raptorq`]: RFC 6330 through the `raptorq` crate, and its generator
//!   rows for the SIMD kernels (the pipeline's RaptorQ encode and decode).
//! - [`layer`]: the sans-IO FEC layer every transport runs, one per peer:
//!   ADUs in, protected datagrams out, feedback, timers, a [`layer::policy::Policy`]
//!   deciding what to protect and when (native policies included).
//! - [`pipeline`]: variable-length ADUs to source and repair symbols and
//!   back, with one wire format ([`pipeline::wire`], whose first byte keeps
//!   QUIC's fixed bit clear so a transport can demultiplex) and seeded loss
//!   models ([`pipeline::loss`]) for tests.
//!
//! Deviations from the standards and peers are listed in `SPEC_NOTES.md`.
//!
//! ```
//! use fec_core::rs::ReedSolomon;
//!
//! let rs = ReedSolomon::new(3, 2)?;
//! let mut shards = vec![vec![1u8, 2], vec![3, 4], vec![5, 6], vec![0; 2], vec![0; 2]];
//! rs.encode(&mut shards)?; // the same parity bytes as reed-solomon-erasure 6
//! let mut received: Vec<Option<Vec<u8>>> = shards.iter().cloned().map(Some).collect();
//! received[0] = None;
//! received[4] = None;
//! rs.reconstruct(&mut received)?;
//! assert_eq!(received[0].as_deref(), Some(&[1u8, 2][..]));
//! # Ok::<(), fec_core::Error>(())
//! ```

#![cfg_attr(not(target_arch = "x86_64"), forbid(unsafe_code))]

mod error;
pub mod gf256;
pub mod layer;
pub mod pipeline;
pub mod raptorq;
mod recent;
pub mod rlc;
pub mod rs;
pub mod rs16;

pub use error::Error;
