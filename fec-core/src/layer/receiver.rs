//! The receiving side of a layer: one pipeline decoder per scheme the peer
//! uses (made on first sight), and loss accounting from source positions.

#![forbid(unsafe_code)]

use std::fmt;

use bytes::Bytes;

use crate::pipeline::wire::{Header, SchemeId};
use crate::pipeline::{Config, Decoder, Scheme};
use crate::rlc::Field;

/// Cap on losses inferred from one position gap, so a forged header cannot
/// inflate the counters (or the policy's `on_loss` calls) without bound.
pub(super) const MAX_GAP: u32 = 1024;

/// What one received FEC packet gave.
#[derive(Debug, Default)]
pub(super) struct Received {
    /// The ADU a source packet carried (delivered whatever the decoder
    /// thinks of the packet: it arrived intact).
    pub source: Option<(u8, Bytes)>,
    /// ADUs rebuilt thanks to this packet.
    pub recovered: Vec<(u8, Bytes)>,
    /// A run of missing sources this packet revealed: (first position, count).
    pub gap: Option<(u64, u32)>,
    /// Sources accounted for (received or newly known lost).
    pub accounted: u32,
    /// The decoder refused the packet (malformed, inconsistent, or of a
    /// scheme it cannot run).
    pub rejected: bool,
}

pub(super) struct Receiver {
    symbol_size: usize,
    max_window: usize,
    decoders: Vec<(SchemeId, Decoder)>,
    /// Position of the newest source seen: (block, index) for block codes,
    /// (0, esi) for RLC.
    last_source: Option<(SchemeId, u32, u32)>,
    /// Tests only: whether the decoders skip repairs over held sources.
    #[cfg(test)]
    skip_known_windows: bool,
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field(
                "schemes",
                &self.decoders.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Receiver {
    pub(super) fn new(symbol_size: usize, max_window: usize) -> Self {
        Receiver {
            symbol_size,
            max_window,
            decoders: Vec::new(),
            last_source: None,
            #[cfg(test)]
            skip_known_windows: true,
        }
    }

    /// Tests only: the decoders made from now on skip repairs over held
    /// sources (the default) or run them through elimination.
    #[cfg(test)]
    pub(super) fn set_skip_known_windows(&mut self, skip: bool) {
        self.skip_known_windows = skip;
    }

    fn decoder(&mut self, scheme: SchemeId) -> Option<&mut Decoder> {
        if let Some(i) = self.decoders.iter().position(|(s, _)| *s == scheme) {
            return Some(&mut self.decoders[i].1);
        }
        let window = self.max_window;
        // Wide enough for any code a sender of this layer may pick.
        let wide = match scheme {
            SchemeId::ReedSolomon => Scheme::ReedSolomon {
                data: window.min(super::RS_MAX_DATA),
                parity: super::RS_MAX_PARITY,
            },
            SchemeId::RlcGf256 | SchemeId::RlcGf2 => Scheme::Rlc {
                field: if scheme == SchemeId::RlcGf2 {
                    Field::Gf2
                } else {
                    Field::Gf256
                },
                window,
                dt: 15,
            },
            SchemeId::RaptorQ => Scheme::RaptorQ {
                source_symbols: window,
                repair_symbols: 1024,
            },
        };
        let mut config = Config::new(wide);
        config.set_symbol_size(self.symbol_size);
        #[allow(unused_mut)]
        let mut decoder = Decoder::new(&config).ok()?;
        #[cfg(test)]
        decoder.set_skip_known_windows(self.skip_known_windows);
        self.decoders.push((scheme, decoder));
        self.decoders.last_mut().map(|(_, d)| d)
    }

    /// Loss accounting from a source's position.
    fn account(&mut self, scheme: SchemeId, block: u32, index: u32, received: &mut Received) {
        let (gap, first) = match self.last_source {
            None => (0, 0),
            Some((s, b, i)) if s == scheme && b == block => {
                if index <= i {
                    return; // reordered or duplicate: counted when it went missing
                }
                (index - i - 1, u64::from(i) + 1)
            }
            // A new block (or scheme): sources missing at its start.
            Some(_) => (index, 0),
        };
        self.count_gap(first, gap, received);
        received.accounted += 1;
        self.last_source = Some((scheme, block, index));
    }

    /// Loss accounting from a repair packet, which tells where its block or
    /// window ends (`end` exclusive): sources missing at the tail, or a
    /// whole block whose sources all went missing.
    fn account_end(&mut self, scheme: SchemeId, block: u32, end: u32, received: &mut Received) {
        let Some(last) = end.checked_sub(1) else {
            return;
        };
        let (gap, first) = match self.last_source {
            Some((s, b, i)) if s == scheme && b == block => {
                if last <= i {
                    return;
                }
                (last - i, u64::from(i) + 1)
            }
            // RLC has one position space: a repair never starts a new one.
            Some((s, _, _))
                if s == scheme && matches!(scheme, SchemeId::RlcGf256 | SchemeId::RlcGf2) =>
            {
                return;
            }
            _ => (end, 0),
        };
        self.count_gap(first, gap, received);
        self.last_source = Some((scheme, block, last));
    }

    fn count_gap(&mut self, first: u64, gap: u32, received: &mut Received) {
        let gap = gap.min(MAX_GAP);
        if gap > 0 {
            received.gap = Some((first, gap));
            received.accounted += gap;
        }
    }

    /// Takes one FEC packet (first byte with bit 0x80 set).
    pub(super) fn receive(&mut self, packet: Bytes) -> Received {
        let mut received = Received::default();
        let Ok((header, payload_at)) = Header::parse(&packet) else {
            received.rejected = true;
            return received;
        };
        let source = match header {
            Header::RsSource { flow, block, index } => {
                Some((flow, u32::from(block), u32::from(index)))
            }
            Header::RlcSource { flow, esi, .. } => Some((flow, 0, esi)),
            Header::RaptorqSource { flow, block, esi } => Some((flow, u32::from(block), esi)),
            _ => None,
        };
        let scheme = header.scheme();
        let outcome = match self.decoder(scheme) {
            Some(decoder) => decoder.receive(packet.clone()),
            None => Err(crate::Error::PipelineWrongScheme {
                expected: 0,
                got: scheme as u8,
            }),
        };
        match outcome {
            Ok(adu) => received.source = adu.map(|a| (a.flow, a.data)),
            Err(_) => {
                received.rejected = true;
                // A source packet carries its ADU as is: a decoder that
                // refuses it (a conflicting or forged earlier packet took its
                // place) costs FEC's help, never the packet.
                if let Some((flow, _, _)) = source {
                    received.source = Some((flow, packet.slice(payload_at..)));
                }
            }
        }
        if let Some(decoder) = self.decoders.iter_mut().find(|(s, _)| *s == scheme) {
            while let Some(adu) = decoder.1.poll_recovered() {
                received.recovered.push((adu.flow, adu.data));
            }
        }
        if received.rejected {
            return received;
        }
        if let (Some((_, block, index)), Some(_)) = (source, &received.source) {
            self.account(scheme, block, index, &mut received);
        }
        let end = match header {
            Header::RsRepair { block, data, .. } => Some((u32::from(block), u32::from(data))),
            Header::RaptorqRepair {
                source_symbols,
                block,
                ..
            } => Some((u32::from(block), u32::from(source_symbols))),
            Header::RlcRepair { first_esi, nss, .. } => {
                Some((0, first_esi.saturating_add(u32::from(nss))))
            }
            _ => None,
        };
        if let Some((block, end)) = end {
            self.account_end(scheme, block, end, &mut received);
        }
        received
    }

    /// Repairs the decoders found they did not need, summed.
    pub(super) fn unneeded(&self) -> u64 {
        self.decoders
            .iter()
            .map(|(_, d)| d.counters().unneeded)
            .sum()
    }

    /// Sources the decoders gave up on, summed.
    pub(super) fn unrecoverable(&self) -> u64 {
        self.decoders
            .iter()
            .map(|(_, d)| d.counters().unrecoverable)
            .sum()
    }
}
