//! The sending side of a layer: a pipeline encoder for the code the policy
//! picked.

#![forbid(unsafe_code)]

use std::fmt;

use bytes::Bytes;

use super::policy::CodeChoice;
use super::LayerConfig;
use crate::pipeline::{Config, Encoder, Scheme};
use crate::rlc::Field;
use crate::Error;

pub(super) struct Sender {
    encoder: Encoder,
    code: CodeChoice,
    window: usize,
    /// Sources protected under this code (for the RLC window's occupancy).
    protected: u64,
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("code", &self.code)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl Sender {
    /// A sender for `code`; `Ok(None)` for [`CodeChoice::None`].
    pub(super) fn new(code: CodeChoice, layer: &LayerConfig) -> Result<Option<Self>, Error> {
        let (scheme, window) = match code {
            CodeChoice::None => return Ok(None),
            CodeChoice::ReedSolomon { data, parity } => {
                (Scheme::ReedSolomon { data, parity }, data)
            }
            CodeChoice::Rlc { window } => (
                Scheme::Rlc {
                    field: Field::Gf256,
                    window,
                    dt: 15,
                },
                window,
            ),
            CodeChoice::RaptorQ {
                source_symbols,
                repair_symbols,
            } => (
                Scheme::RaptorQ {
                    source_symbols,
                    repair_symbols,
                },
                source_symbols,
            ),
        };
        let mut config = Config::new(scheme);
        config
            .set_symbol_size(layer.symbol_size())
            .set_sized_repairs(layer.sized_repairs());
        Ok(Some(Sender {
            encoder: Encoder::new(&config)?,
            code,
            window,
            protected: 0,
        }))
    }

    pub(super) fn code(&self) -> CodeChoice {
        self.code
    }

    pub(super) fn window(&self) -> usize {
        self.window
    }

    /// Source symbols in the window (RLC) or the open block.
    pub(super) fn window_len(&self) -> usize {
        match self.code {
            CodeChoice::Rlc { .. } => (self.protected.min(self.window as u64)) as usize,
            _ => self.encoder.pending(),
        }
    }

    /// Sources protected since the last repair.
    pub(super) fn pending(&self) -> usize {
        self.encoder.pending()
    }

    /// Wraps an ADU as a source packet; `None` if it cannot be protected
    /// (then it goes out plain).
    pub(super) fn protect(&mut self, flow: u8, adu: &[u8]) -> Option<Bytes> {
        let packet = match self.encoder.protect_slice(flow, adu) {
            Err(Error::PipelineBlockFull { .. }) => {
                // The policy let a block fill up without repair: close it
                // without parity and go on.
                let _ = self.encoder.repair_into(0, &mut Vec::new());
                self.encoder.protect_slice(flow, adu)
            }
            other => other,
        };
        let packet = packet.ok()?;
        self.protected += 1;
        Some(packet)
    }

    /// Takes back a packet that is on the wire ([`Encoder::recycle`]).
    pub(super) fn recycle(&mut self, packet: Bytes) {
        self.encoder.recycle(packet);
    }

    /// Appends up to `count` repair packets covering the recent sources;
    /// returns how many.
    pub(super) fn repair(&mut self, count: usize, out: &mut Vec<Bytes>) -> usize {
        let count = match self.code {
            CodeChoice::ReedSolomon { parity, .. } => count.min(parity),
            CodeChoice::RaptorQ { repair_symbols, .. } => count.min(repair_symbols),
            _ => count,
        };
        if count == 0 || self.encoder.pending() == 0 {
            return 0;
        }
        self.encoder.repair_into(count, out).unwrap_or(0)
    }

    /// Sets the window (RLC) or block length (block codes); false if the
    /// encoder refuses it.
    pub(super) fn set_window(&mut self, size: usize) -> bool {
        let ok = self.encoder.set_window(size).is_ok();
        if ok {
            self.window = size;
        }
        ok
    }
}
