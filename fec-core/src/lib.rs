//! Forward erasure correction codecs over a SIMD GF(2^8) engine.
//!
//! - [`gf256`]: field arithmetic and slice kernels (scalar, SSSE3, AVX2,
//!   AVX-512BW, GFNI), selected once at run time.
//! - [`rs`]: systematic Reed-Solomon, parity byte-identical to
//!   reed-solomon-erasure 6.
//! - [`rlc`]: RFC 8681 sliding-window random linear codes (GF(2) and GF(2^8)).
//! - [`raptorq`]: RFC 6330 through the `raptorq` crate.
//! - [`pipeline`]: variable-length ADUs to source and repair symbols and back.

#![cfg_attr(not(target_arch = "x86_64"), forbid(unsafe_code))]

mod error;
pub mod gf256;
pub mod pipeline;
pub mod raptorq;
pub mod rlc;
pub mod rs;

pub use error::Error;
