//! RFC 8681 sliding-window random linear codes (RLC) over GF(2) and GF(2^8).
//!
//! A sliding-window code protects a stream instead of blocks: the sender
//! keeps the last source symbols (its window) and now and then sends a
//! repair symbol, a random linear combination of the window. A receiver
//! rebuilds a lost source as soon as it holds enough independent repair
//! symbols covering it, without waiting for a block to end.
//!
//! - [`TinyMt32`]: the RFC 8682 generator that derives coefficients from a
//!   repair key.
//! - [`coding_coefficients`]: RFC 8681 section 3.6, bit-exact, so repair
//!   symbols are byte-identical to any conforming implementation.
//! - [`SourcePayloadId`], [`RepairPayloadId`]: RFC 8681 section 4.1;
//!   [`SchemeSpecificInfo`]: the FSSI of section 4.1.1 (E and WSR).
//! - [`Encoder`]: source symbols in, repair symbols over the whole window or
//!   any held sub-window out.
//! - [`Decoder`]: sources and repairs in any order; incremental Gauss-Jordan
//!   elimination on the [`gf256`](crate::gf256) engine; every source is
//!   released by [`Decoder::poll_recovered`] the moment it is determined.
//!
//! The GF(2^8) field is the one of RFC 8681 (polynomial 0x11D), the same as
//! [`crate::gf256`]; GF(2) is its subfield {0, 1}, so one elimination serves
//! both.
//!
//! # Conformance notes
//!
//! - Coefficients, repair symbols and payload IDs are bit-exact with RFC
//!   8681 (checked against the RFC vectors and against the independent
//!   `cu-fec` crate in `tests/rlc_interop.rs`).
//! - GF(2) with DT = 15 makes every coefficient 1 and never seeds the
//!   generator, so the repair key does not matter there; [`Encoder`] accepts
//!   any key (`cu-fec` insists on 0 when sending, and decodes any).
//! - [`Encoder::next_repair`] increments the key per repair symbol, so
//!   overlapping windows never share a key, as the RFC asks.
//! - The decoder's policy is ours (the RFC leaves it open): ESIs are ordered
//!   by serial-number arithmetic; a bounded span of ESIs behind the newest
//!   is kept; an unknown source leaving the span costs one pending equation
//!   (the others are cleared of it and kept); at the equation limit the
//!   equation with the oldest pivot is dropped. See [`DecoderConfig`].
//! - A payload ID seen twice with different bytes is an error; telling the
//!   two apart uses a fast non-cryptographic digest, so it catches mistakes
//!   and replays, not a forger who can choose colliding bytes.
//!
//! # Example: encode, lose, decode
//!
//! ```
//! use fec_core::rlc::{Decoder, DecoderConfig, Encoder, Field, Reception};
//!
//! const E: usize = 16;
//! let mut encoder = Encoder::new(Field::Gf256, E, 8)?;
//! let mut decoder = Decoder::new(DecoderConfig::new(Field::Gf256, E).with_window(8))?;
//!
//! let sources: Vec<[u8; E]> = (0..8u8).map(|i| [i.wrapping_mul(37); E]).collect();
//! for (i, source) in sources.iter().enumerate() {
//!     let esi = encoder.push_source(source)?;
//!     // Sources 2 and 5 are lost on the way.
//!     if i != 2 && i != 5 {
//!         decoder.add_source(esi, source)?;
//!     }
//! }
//! // Two repair symbols over the window (DT = 15: dense coefficients).
//! for _ in 0..2 {
//!     let (id, repair) = encoder.next_repair(15)?;
//!     let wire = id.to_bytes()?; // 8-byte Repair FEC Payload ID
//!     let id = fec_core::rlc::RepairPayloadId::parse(&wire)?;
//!     assert_eq!(decoder.add_repair(id, &repair)?, Reception::New);
//! }
//! let mut rebuilt = Vec::new();
//! while let Some(recovered) = decoder.poll_recovered() {
//!     assert_eq!(&recovered.data[..], &sources[recovered.esi as usize][..]);
//!     rebuilt.push(recovered.esi);
//! }
//! rebuilt.sort();
//! assert_eq!(rebuilt, [2, 5]);
//! # Ok::<(), fec_core::Error>(())
//! ```

#![forbid(unsafe_code)]

mod coefficients;
mod decoder;
mod encoder;
mod payload_id;
mod store;
mod tinymt;

pub use coefficients::coding_coefficients;
pub use decoder::{Decoder, DecoderConfig, DecoderStats, Reception, RecoveredSource};
pub use encoder::Encoder;
pub use payload_id::{RepairPayloadId, SchemeSpecificInfo, SourcePayloadId};
pub use tinymt::TinyMt32;

use crate::gf256::{Engine, MatrixKernel};

/// One output as a linear combination of symbols, on the fused matrix
/// kernel, with the kernel's tables and the input list kept across calls:
/// the encoder's and decoder's per-symbol passes allocate nothing once
/// they have seen a window as large.
#[derive(Debug, Default)]
struct Combiner {
    kernel: Option<MatrixKernel>,
    /// The allocation of the input list (empty between calls).
    inputs: Vec<&'static [u8]>,
}

impl Combiner {
    /// An empty input list on the kept allocation, for
    /// [`combine`](Self::combine).
    fn inputs<'a>(&mut self) -> Vec<&'a [u8]> {
        reuse(std::mem::take(&mut self.inputs))
    }

    /// `out = sum of factors[i] * inputs[i]` (zeros for no inputs); keeps
    /// the list's allocation.
    fn combine(&mut self, engine: Engine, factors: &[u8], inputs: Vec<&[u8]>, out: &mut [u8]) {
        if inputs.is_empty() {
            out.fill(0);
        } else {
            let kernel = self.kernel.get_or_insert_with(|| engine.prepare(&[], 0, 0));
            engine.prepare_into(kernel, factors, 1, inputs.len());
            kernel.apply(&inputs, &mut [out]);
        }
        self.inputs = reuse(inputs);
    }
}

/// An empty list of slices on `list`'s allocation: std collects a vector's
/// own `into_iter` in place when the element layouts agree, so a list of
/// borrowed inputs keeps its memory across calls without keeping a borrow.
fn reuse<'b>(mut list: Vec<&[u8]>) -> Vec<&'b [u8]> {
    list.clear();
    list.into_iter().map(|_| -> &'b [u8] { &[] }).collect()
}

/// The finite field of the coding coefficients (RFC 8681 parameter m).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// GF(2), m = 1: coefficients 0 or 1, repair = XOR of a subset. FEC
    /// Encoding ID 9.
    Gf2,
    /// GF(2^8), m = 8, polynomial 0x11D. FEC Encoding ID 10.
    Gf256,
}

impl Field {
    /// The FEC Encoding ID RFC 8681 assigns (9 for GF(2), 10 for GF(2^8)).
    pub fn fec_encoding_id(self) -> u8 {
        match self {
            Field::Gf2 => 9,
            Field::Gf256 => 10,
        }
    }
}

/// The largest density threshold; at 15 every coefficient is non-zero.
pub const MAX_DENSITY_THRESHOLD: u8 = 15;

/// The largest window a repair symbol can cover (NSS is a 12-bit field).
pub const MAX_WINDOW: usize = 0x0fff;

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards a performance property, not correctness: std documents the
    /// in-place collect as an optimisation it may drop. Should a toolchain
    /// stop doing it, this fails and `reuse` needs another way (the
    /// combiner would still be right, allocating a list per call).
    #[test]
    fn reused_input_lists_keep_their_memory() {
        let data = [1u8; 4];
        let mut list: Vec<&[u8]> = Vec::with_capacity(16);
        list.push(&data);
        let at = list.as_ptr() as usize;
        let list = reuse(list);
        assert!(list.is_empty());
        assert_eq!(list.capacity(), 16);
        assert_eq!(list.as_ptr() as usize, at);
    }

    #[test]
    fn a_combiner_matches_a_fresh_kernel_across_shapes() {
        let engine = crate::gf256::engine();
        let symbols: Vec<Vec<u8>> = (0..9u8)
            .map(|i| (0..37u8).map(|b| b.wrapping_mul(i + 3) ^ i).collect())
            .collect();
        let mut combiner = Combiner::default();
        for count in [3usize, 9, 1, 0, 5] {
            let factors: Vec<u8> = (0..count as u8).map(|i| i.wrapping_mul(29) | 1).collect();
            let mut inputs = combiner.inputs();
            inputs.extend(symbols[..count].iter().map(Vec::as_slice));
            let mut out = vec![0xaa; 37];
            combiner.combine(engine, &factors, inputs, &mut out);
            let mut expected = vec![0; 37];
            for (c, symbol) in factors.iter().zip(&symbols) {
                for (e, s) in expected.iter_mut().zip(symbol) {
                    *e ^= crate::gf256::mul(*c, *s);
                }
            }
            assert_eq!(out, expected, "{count} inputs");
        }
    }
}
