//! The sliding-window RLC code (RFC 8681) behind the pipeline, through
//! [`crate::rlc`]. Symbols have the fixed size E of the configuration, as
//! RFC 8681 requires; a repair packet leaves off the trailing zeros past
//! the longest source symbol it covers (unless configured not to), and the
//! receiver puts them back before decoding, so the code is RFC 8681's
//! whatever the packet's length.

use std::collections::VecDeque;

use bytes::Bytes;

use super::wire::{self, Header};
use super::{Adu, Counters, Recovered};
use crate::rlc::{self, DecoderConfig, Field, Reception, RepairPayloadId};
use crate::Error;

/// A symbol-sized scratch buffer whose bytes past `dirty` are zero, so that
/// writing a prefix into it only clears what the previous one left behind:
/// it puts back the trailing zeros of shortened repair symbols. Allocated
/// at first use: a decoder that only ever gets repair packets it does not
/// need, or garbage, never needs it.
struct Scratch {
    symbol_size: usize,
    symbol: Vec<u8>,
    dirty: usize,
}

impl Scratch {
    fn new(symbol_size: usize) -> Self {
        Scratch {
            symbol_size,
            symbol: Vec::new(),
            dirty: 0,
        }
    }

    /// The symbol whose first bytes `write` writes (returning how many),
    /// zeros after.
    fn fill(
        &mut self,
        write: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
    ) -> Result<&[u8], Error> {
        if self.symbol.is_empty() {
            self.symbol = vec![0; self.symbol_size];
        }
        let written = match write(&mut self.symbol) {
            Ok(written) => written,
            Err(error) => {
                self.dirty = self.symbol_size;
                return Err(error);
            }
        };
        if self.dirty > written {
            self.symbol[written..self.dirty].fill(0);
        }
        self.dirty = written;
        Ok(&self.symbol)
    }

    /// A shortened repair symbol with its trailing zeros put back.
    fn pad(&mut self, prefix: &[u8]) -> Result<&[u8], Error> {
        self.fill(|symbol| {
            symbol[..prefix.len()].copy_from_slice(prefix);
            Ok(prefix.len())
        })
    }
}

pub(super) struct WindowEncoder {
    inner: rlc::Encoder,
    gf256: bool,
    dt: u8,
    window: usize,
    /// Sources protected since the last repair.
    pending: usize,
    /// Repair symbols end with the longest source symbol they cover
    /// (see [`super::Config::set_sized_repairs`]).
    sized: bool,
}

impl WindowEncoder {
    pub(super) fn new(
        field: Field,
        max_window: usize,
        dt: u8,
        symbol_size: usize,
        sized: bool,
    ) -> Result<Self, Error> {
        Ok(WindowEncoder {
            inner: rlc::Encoder::new(field, symbol_size, max_window)?,
            gf256: field == Field::Gf256,
            dt,
            window: max_window,
            pending: 0,
            sized,
        })
    }

    pub(super) fn pending(&self) -> usize {
        self.pending
    }

    pub(super) fn set_window(&mut self, window: usize) -> Result<(), Error> {
        if window == 0 || window > self.inner.max_window() {
            return Err(Error::PipelineConfig {
                reason: "RLC window must be 1..=the scheme's window",
            });
        }
        self.window = window;
        Ok(())
    }

    pub(super) fn protect(&mut self, flow: u8, adu: &[u8]) -> Result<Header, Error> {
        // Checked first: a failed framing at capacity would cost the window
        // its oldest symbol.
        let max = self.inner.symbol_size().saturating_sub(wire::ADU_INFO_LEN);
        if adu.len() > max {
            return Err(Error::PipelineAduTooLong {
                len: adu.len(),
                max,
            });
        }
        // Framed straight into the encoder's window: no copy besides the ADU's own.
        let esi = self
            .inner
            .push_source_with(|slot| wire::frame_symbol(slot, flow, adu))?;
        self.pending += 1;
        Ok(Header::RlcSource {
            gf256: self.gf256,
            flow,
            esi,
        })
    }

    pub(super) fn repair(
        &mut self,
        count: usize,
        out: &mut Vec<Bytes>,
        pool: &mut super::BufferPool,
    ) -> Result<usize, Error> {
        let Some((first, held)) = self.inner.window() else {
            return Ok(0);
        };
        // The most recent `window` sources.
        let nss = usize::from(held).min(self.window);
        let first = first.wrapping_add((usize::from(held) - nss) as u32);
        // Past the longest source symbol of the window every repair symbol
        // over it is zero: those bytes stay off the wire, and the receiver
        // puts them back (FEC_DATAGRAMS.md section 3).
        let size = if self.sized {
            self.inner.significant_len(first, nss as u16)?
        } else {
            self.inner.symbol_size()
        };
        for _ in 0..count {
            let key = self.inner.next_repair_key();
            let header = Header::RlcRepair {
                gf256: self.gf256,
                repair_key: key,
                dt: self.dt,
                nss: nss as u16,
                first_esi: first,
            }
            .encode();
            let mut packet = pool.take(header.len() + size + super::PACKET_TAILROOM);
            packet.extend_from_slice(&header);
            packet.resize(header.len() + size, 0);
            self.inner.sub_window_repair_into(
                first,
                nss as u16,
                key,
                self.dt,
                &mut packet[header.len()..],
            )?;
            self.inner.set_next_repair_key(key.wrapping_add(1));
            out.push(packet.freeze());
        }
        if count > 0 {
            self.pending = 0;
        }
        Ok(count)
    }
}

pub(super) struct WindowDecoder {
    inner: rlc::Decoder,
    scratch: Scratch,
    /// Which ESIs of the tracked span are known (received or recovered), to
    /// count the ones that leave it unknown as unrecoverable.
    tracked: VecDeque<bool>,
    /// Unwrapped position of `tracked[0]`, and the newest ESI with its position.
    base: i64,
    newest: Option<(u32, i64)>,
    span: usize,
}

impl WindowDecoder {
    pub(super) fn new(field: Field, max_window: usize, symbol_size: usize) -> Result<Self, Error> {
        let config = DecoderConfig::new(field, symbol_size).with_window(max_window);
        Ok(WindowDecoder {
            inner: rlc::Decoder::new(config)?,
            scratch: Scratch::new(symbol_size),
            tracked: VecDeque::new(),
            base: 0,
            newest: None,
            span: config.max_span,
        })
    }

    pub(super) fn receive(
        &mut self,
        header: Header,
        packet: &Bytes,
        payload_at: usize,
        counters: &mut Counters,
        recovered: &mut Recovered,
    ) -> Result<Option<Adu>, Error> {
        let result = match header {
            Header::RlcSource { flow, esi, .. } => {
                let adu = packet.slice(payload_at..);
                // Framed straight into the decoder's memory.
                let framed = |slot: &mut [u8]| wire::frame_symbol(slot, flow, &adu);
                match self.inner.add_source_with(esi, framed)? {
                    Reception::Duplicate | Reception::Redundant => {
                        counters.duplicates += 1;
                        None
                    }
                    Reception::Expired => {
                        counters.late += 1;
                        Some(Adu { flow, data: adu })
                    }
                    _ => {
                        self.mark(esi, counters);
                        Some(Adu { flow, data: adu })
                    }
                }
            }
            Header::RlcRepair {
                repair_key,
                dt,
                nss,
                first_esi,
                ..
            } => {
                let id = RepairPayloadId {
                    repair_key,
                    dt,
                    nss,
                    first_source_esi: first_esi,
                };
                // A repair symbol may come without its trailing zeros, but
                // never shorter than the ADU information of what it covers.
                let expected = self.inner.config().symbol_size;
                let payload = &packet[payload_at..];
                if !(wire::ADU_INFO_LEN..=expected).contains(&payload.len()) {
                    return Err(Error::PipelinePayloadLength {
                        expected,
                        got: payload.len(),
                    });
                }
                let reception = if self.inner.repair_is_known(&id) {
                    // Every source it covers is held: no padding, no copy,
                    // no arithmetic.
                    Reception::Redundant
                } else if payload.len() == expected {
                    self.inner.add_repair(id, payload)?
                } else {
                    let symbol = self.scratch.pad(payload)?;
                    self.inner.add_repair(id, symbol)?
                };
                match reception {
                    Reception::Duplicate => counters.duplicates += 1,
                    Reception::Expired => counters.late += 1,
                    reception => {
                        if reception == Reception::Redundant {
                            counters.unneeded += 1;
                        }
                        self.extend(id.end_esi().wrapping_sub(1), counters);
                    }
                }
                None
            }
            _ => {
                return Err(Error::PipelineInconsistent {
                    reason: "header of another scheme",
                })
            }
        };
        let mut failure = Ok(());
        while let Some(source) = self.inner.poll_recovered() {
            match wire::parse_symbol(&source.data) {
                Ok((flow, range)) => {
                    self.mark(source.esi, counters);
                    recovered.push(
                        counters,
                        Adu {
                            flow,
                            data: source.data.slice(range),
                        },
                    );
                }
                Err(error) => failure = Err(error),
            }
        }
        match (result, failure) {
            // A source is good data whatever the decoder made of the rest.
            (Some(adu), Err(_)) => {
                counters.rejected += 1;
                Ok(Some(adu))
            }
            (_, Err(error)) => Err(error),
            (result, Ok(())) => Ok(result),
        }
    }

    #[cfg(test)]
    pub(super) fn set_skip_known_windows(&mut self, skip: bool) {
        self.inner.set_skip_known_windows(skip);
    }

    /// Unwrapped position of `esi` relative to the newest ESI seen.
    fn position(&mut self, esi: u32) -> i64 {
        match self.newest {
            Some((newest, at)) => at + i64::from(esi.wrapping_sub(newest) as i32),
            None => {
                self.newest = Some((esi, 0));
                self.base = 0;
                0
            }
        }
    }

    /// Grows the tracked span to include `esi`, giving up positions that
    /// fall out of it.
    fn extend(&mut self, esi: u32, counters: &mut Counters) -> Option<usize> {
        let position = self.position(esi);
        if position < self.base {
            return None;
        }
        if let Some((_, newest_at)) = self.newest {
            if position > newest_at {
                self.newest = Some((esi, position));
            }
        }
        let end = self.base + self.tracked.len() as i64;
        if position >= end {
            let grow = (position - end + 1) as usize;
            if grow > self.span {
                // A jump far ahead: everything tracked leaves the span.
                counters.unrecoverable +=
                    self.tracked.iter().filter(|&&known| !known).count() as u64;
                self.tracked.clear();
                self.base = position;
                self.tracked.push_back(false);
            } else {
                self.tracked.extend(std::iter::repeat_n(false, grow));
            }
            while self.tracked.len() > self.span {
                if self.tracked.pop_front() == Some(false) {
                    counters.unrecoverable += 1;
                }
                self.base += 1;
            }
        }
        Some((position - self.base) as usize)
    }

    fn mark(&mut self, esi: u32, counters: &mut Counters) {
        if let Some(index) = self.extend(esi, counters) {
            if let Some(known) = self.tracked.get_mut(index) {
                *known = true;
            }
        }
    }
}
