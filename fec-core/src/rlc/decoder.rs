//! The sliding-window decoder: an incremental Gauss-Jordan elimination over
//! the source symbols that are missing, fed by repair symbols as they come.
//!
//! Invariants of the equation store (`rows`):
//! - a row only has non-zero coefficients on *unknown* sources inside the
//!   held span (known ones are substituted out at once);
//! - every row has a pivot column, and no other row has a non-zero
//!   coefficient there (reduced form), so when a row is left with its pivot
//!   alone, that pivot's source is exactly determined and is released.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use super::coefficients::{check_density_threshold, check_window_size, CoefficientCache};
use super::store::SymbolStore;
use super::{Combiner, Field, RepairPayloadId, MAX_WINDOW};
use crate::gf256::{self, engine, Engine};
use crate::Error;

/// The most memory a decoder's limits may commit it to.
const MAX_MEMORY: usize = 256 << 20;

/// Repair payload IDs remembered (to tell duplicates from conflicts) per
/// ESI of the span.
const REPAIRS_REMEMBERED_PER_SPAN_SLOT: usize = 4;

/// Room the digest tables take for their first repair.
const FIRST_REMEMBERED_REPAIRS: usize = 8;
/// Room the queue of released sources takes at the first repair.
const FIRST_RECOVERED: usize = 64;

/// Bytes one remembered repair costs: a hash-table entry (the table may be
/// up to twice its length, plus a control byte per bucket) and its place in
/// the eviction queue.
const BYTES_PER_REMEMBERED_REPAIR: usize = 3 * std::mem::size_of::<(RepairPayloadId, u64)>() + 2;

/// Limits and parameters of a [`Decoder`]. Build with [`DecoderConfig::new`]
/// and adjust the public fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecoderConfig {
    /// Coefficient field the sender uses (FEC Encoding ID 9 = GF(2),
    /// 10 = GF(2^8)).
    pub field: Field,
    /// Symbol size E in bytes.
    pub symbol_size: usize,
    /// Largest repair window (NSS) accepted; larger ones are errors.
    /// `1..=4095`, default 64.
    pub max_window: usize,
    /// How many consecutive ESIs, ending at the newest seen, the decoder
    /// keeps: older sources and the equations that still need them are
    /// evicted. At least `max_window`; default `4 * max_window` (at heavy
    /// loss, solvable systems can stretch over several windows).
    ///
    /// Memory follows what the decoder holds, never these limits: about
    /// `symbol_size` per source held, `symbol_size + S` per pending
    /// equation (`S`: the positions between the oldest thing held and the
    /// newest, rounded up to a power of two) and a few dozen bytes per
    /// recent repair symbol. A decoder that got one datagram holds about
    /// one symbol. The limits bound how far that can grow: with `S` =
    /// `max_span` rounded up to a power of two, at most `S * symbol_size`
    /// for sources, `max_equations * (S + symbol_size)` for equations and
    /// about 300 bytes per span slot for the digests of recent repairs.
    pub max_span: usize,
    /// Most pending (not yet solved) equations kept; at the limit the one
    /// with the oldest pivot is dropped. Default `max_window`.
    pub max_equations: usize,
    // Limits that together would need more than 256 MiB are refused.
}

impl DecoderConfig {
    /// Defaults for the given field and symbol size.
    pub fn new(field: Field, symbol_size: usize) -> DecoderConfig {
        DecoderConfig {
            field,
            symbol_size,
            max_window: 64,
            max_span: 256,
            max_equations: 64,
        }
    }

    /// Sets [`Self::max_window`] and, to keep them consistent, `max_span`
    /// to four times that and `max_equations` to it.
    pub fn with_window(mut self, max_window: usize) -> DecoderConfig {
        self.max_window = max_window;
        self.max_span = max_window.saturating_mul(4);
        self.max_equations = max_window;
        self
    }

    fn validate(&self) -> Result<(), Error> {
        // Checked first so the products below cannot overflow.
        if self.max_span > 1 << 20 || self.max_equations > 1 << 20 {
            return Err(Error::RlcConfig {
                reason: "max_span and max_equations must be at most 2^20",
            });
        }
        if self.symbol_size == 0 || self.symbol_size > usize::from(u16::MAX) {
            return Err(Error::RlcConfig {
                reason: "symbol size must be 1..=65535 bytes",
            });
        }
        check_window_size(self.max_window, MAX_WINDOW)?;
        if self.max_span < self.max_window || self.max_span > 1 << 20 {
            return Err(Error::RlcConfig {
                reason: "max_span must be at least max_window and at most 2^20",
            });
        }
        if self.max_equations == 0 || self.max_equations > self.max_span {
            return Err(Error::RlcConfig {
                reason: "max_equations must be 1..=max_span",
            });
        }
        let slots = self.max_span.next_power_of_two();
        let remembered = REPAIRS_REMEMBERED_PER_SPAN_SLOT * self.max_span;
        let memory = slots * (self.symbol_size + 1)
            + self.max_equations * (slots + self.symbol_size)
            + remembered * BYTES_PER_REMEMBERED_REPAIR;
        if memory > MAX_MEMORY {
            return Err(Error::RlcConfig {
                reason: "limits would take more than 256 MiB",
            });
        }
        Ok(())
    }
}

/// What a received symbol did to the decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reception {
    /// New information: a source not known before, or a repair symbol that
    /// added an independent equation (check [`Decoder::poll_recovered`]).
    New,
    /// Already received (or recovered) with identical bytes.
    Duplicate,
    /// A repair symbol that adds nothing: its sources are known or already
    /// determined by the pending equations.
    Redundant,
    /// Older than the decoder's span; ignored.
    Expired,
}

/// A source symbol rebuilt from repair symbols.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveredSource {
    /// Its ESI.
    pub esi: u32,
    /// Its E bytes.
    pub data: Bytes,
}

/// Counters since the decoder was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecoderStats {
    /// Sources rebuilt from repair symbols.
    pub recovered: u64,
    /// Pending equations dropped because a source they needed left the span
    /// or the equation store was full.
    pub equations_evicted: u64,
    /// Equations found to contradict received data (0 = non-zero), dropped.
    pub equations_inconsistent: u64,
    /// Recovered sources dropped from the queue because it was not polled.
    pub recoveries_unpolled: u64,
}

/// ESIs are unwrapped to a 64-bit position so that arithmetic never wraps;
/// this is where the first symbol lands (far from 0 so reordered older
/// symbols still have room).
const FIRST_POSITION: u64 = 1 << 40;

/// A ring slot that holds no source.
const EMPTY: u32 = u32::MAX;

/// The fewest ring slots a decoder starts with once it holds anything:
/// below this, growing the ring would cost more than the slots it saves.
const MIN_SLOTS: usize = 64;

#[derive(Debug)]
struct Row {
    /// Position of the pivot column.
    pivot: u64,
    /// Non-zero coefficients lie within positions `lo..hi`.
    lo: u64,
    hi: u64,
    /// One coefficient per ring slot, indexed like the source ring.
    coefficients: Vec<u8>,
    /// The index in the decoder's store of the row's symbol (the repair
    /// minus what is substituted out), or [`EMPTY`] for a spare row. Kept
    /// with the sources so that equations take memory as the sources do
    /// (segments, not a buffer each) and a solved row becomes its source
    /// where it is.
    data: u32,
}

impl Default for Row {
    fn default() -> Row {
        Row {
            pivot: 0,
            lo: 0,
            hi: 0,
            coefficients: Vec::new(),
            data: EMPTY,
        }
    }
}

/// An RFC 8681 decoder. Feed it source and repair symbols in any order;
/// every source it can rebuild is queued for [`Decoder::poll_recovered`] the
/// moment the received equations determine it.
///
/// ESIs wrap: they are ordered by serial-number arithmetic, so an ESI less
/// than 2^31 ahead of the newest one seen is newer (it moves the span
/// forward, evicting what falls behind), and any other is older (ignored as
/// [`Reception::Expired`] once outside the span). A garbage ESI can thus
/// flush the decoder's state, never corrupt it.
///
/// Memory grows with what the decoder holds, up to the bounds of
/// [`DecoderConfig`]; no input makes it panic or grow past those limits,
/// and what leaves the span is reused by what comes. A recovered symbol is
/// only released when consistent equations pin it down exactly, but an
/// erasure code cannot detect a corrupted repair symbol that is the only one
/// covering a loss: check integrity before feeding symbols in.
#[derive(Debug)]
pub struct Decoder {
    config: DecoderConfig,
    engine: Engine,
    /// The newest ESI seen and its position.
    newest: Option<(u32, u64)>,
    /// One past the newest position; the span held is `end - max_span..end`.
    end: u64,
    /// The lowest position that may hold a source or a pending equation's
    /// coefficient (`u64::MAX` when nothing is held). Everything held lies
    /// in `low..end`, and `end - low` never exceeds the ring's length.
    low: u64,
    /// Ring slots are `position & slot_mask`, so the hot paths need no
    /// division. The ring's length is a power of two covering `low..end`,
    /// so positions held never share a slot; it grows (doubling) as that
    /// range does, up to `max_span` rounded up to a power of two.
    slot_mask: u64,
    /// Per ring slot, the index in `store` of the source held there, or
    /// [`EMPTY`]. Sources live apart from the ring so that memory follows
    /// the sources held, not the positions between them.
    slots: Vec<u32>,
    store: SymbolStore,
    rows: Vec<Row>,
    spare_rows: Vec<Row>,
    coefficients: CoefficientCache,
    /// Digest of each repair symbol received, to tell duplicates from
    /// conflicting reuse of a payload ID.
    repairs_seen: HashMap<RepairPayloadId, u64>,
    repairs_order: VecDeque<(RepairPayloadId, u64)>,
    recovered: VecDeque<RecoveredSource>,
    stats: DecoderStats,
    /// Reused per repair: known sources (coefficient, position), pending
    /// rows (factor, index) and kernel factors.
    scratch_known: Vec<(u8, u64)>,
    scratch_rows: Vec<(u8, usize)>,
    scratch_factors: Vec<u8>,
    /// Reused per repair: the fused kernel and its input list.
    combiner: Combiner,
    /// True while [`Decoder::add_source_with`] holds a store symbol not
    /// placed yet (which [`Decoder::holds_anything`] must not count).
    placing: bool,
    /// Tests only: whether [`Decoder::repair_is_known`] may say yes.
    #[cfg(test)]
    skip_known_windows: bool,
}

impl Decoder {
    /// An empty decoder.
    ///
    /// # Errors
    /// [`Error::RlcConfig`] or [`Error::RlcWindowSize`] for inconsistent
    /// limits (see [`DecoderConfig`]).
    pub fn new(config: DecoderConfig) -> Result<Decoder, Error> {
        config.validate()?;
        // Nothing is reserved up to the limits: a decoder made for a peer's
        // first datagram must cost about that datagram. Every table below
        // grows with what is held and keeps its room for reuse, so a
        // decoder in steady state allocates only the buffers of the sources
        // it hands out.
        Ok(Decoder {
            config,
            engine: engine(),
            newest: None,
            end: FIRST_POSITION,
            low: u64::MAX,
            slot_mask: 0,
            slots: Vec::new(),
            store: SymbolStore::new(config.symbol_size),
            rows: Vec::new(),
            spare_rows: Vec::new(),
            coefficients: CoefficientCache::default(),
            repairs_seen: HashMap::new(),
            repairs_order: VecDeque::new(),
            recovered: VecDeque::new(),
            stats: DecoderStats::default(),
            scratch_known: Vec::new(),
            scratch_rows: Vec::new(),
            scratch_factors: Vec::new(),
            combiner: Combiner::default(),
            placing: false,
            #[cfg(test)]
            skip_known_windows: true,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Counters since creation.
    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// Equations received but not yet solved.
    pub fn pending_equations(&self) -> usize {
        self.rows.len()
    }

    /// The next recovered source, oldest recovery first.
    pub fn poll_recovered(&mut self) -> Option<RecoveredSource> {
        self.recovered.pop_front()
    }

    /// A source held by the decoder, received or recovered.
    pub fn source(&self, esi: u32) -> Option<&[u8]> {
        let position = self.position(esi)?;
        if !self.in_span(position) || position < self.low {
            return None;
        }
        match self.slots[self.slot(position)] {
            EMPTY => None,
            index => Some(self.store.symbol(index)),
        }
    }

    /// Takes a source symbol.
    ///
    /// # Errors
    /// [`Error::RlcSymbolSize`] if `data` is not E bytes;
    /// [`Error::RlcConflictingSource`] if this ESI is already known with
    /// other bytes (then nothing changes).
    pub fn add_source(&mut self, esi: u32, data: &[u8]) -> Result<Reception, Error> {
        self.check_size(data.len())?;
        self.add_source_with(esi, |slot| {
            slot.copy_from_slice(data);
            Ok(data.len())
        })
    }

    /// [`add_source`](Self::add_source) for a symbol that `fill` writes
    /// straight into the decoder's memory (E bytes holding whatever was
    /// there), returning how many leading bytes it wrote; the rest are
    /// zeroed. A caller that frames symbols saves a copy.
    ///
    /// # Errors
    /// `fill`'s own error, [`Error::RlcSymbolSize`] if it reports more
    /// than E bytes, otherwise as [`add_source`](Self::add_source). Nothing
    /// changes on error.
    pub fn add_source_with<F>(&mut self, esi: u32, fill: F) -> Result<Reception, Error>
    where
        F: FnOnce(&mut [u8]) -> Result<usize, Error>,
    {
        let size = self.config.symbol_size;
        let index = self.store.take();
        let symbol = self.store.symbol_mut(index);
        let written = match fill(symbol) {
            Ok(written) if written <= size => written,
            other => {
                self.store.give_back(index);
                return Err(match other {
                    Ok(got) => Error::RlcSymbolSize {
                        expected: size,
                        got,
                    },
                    Err(error) => error,
                });
            }
        };
        self.store.symbol_mut(index)[written..].fill(0);
        self.placing = true;
        let reception = self.place_source(esi, index);
        self.placing = false;
        if !matches!(reception, Ok(Reception::New)) {
            self.store.give_back(index);
        }
        reception
    }

    /// Puts the source held in store symbol `index` at `esi`; anything but
    /// `Ok(New)` leaves the symbol to the caller.
    fn place_source(&mut self, esi: u32, index: u32) -> Result<Reception, Error> {
        let position = self.position_or_start(esi);
        if position >= self.end {
            self.advance_to(esi, position + 1);
        }
        if !self.in_span(position) {
            return Ok(Reception::Expired);
        }
        self.cover(position);
        let slot = self.slot(position);
        if self.slots[slot] != EMPTY {
            return if self.ring_symbol(position) == self.store.symbol(index) {
                Ok(Reception::Duplicate)
            } else {
                Err(Error::RlcConflictingSource { esi })
            };
        }
        self.slots[slot] = index;

        let mut lost_pivot = Vec::new();
        for (row_index, row) in self.rows.iter_mut().enumerate() {
            if position < row.lo || position >= row.hi {
                continue;
            }
            let c = std::mem::take(&mut row.coefficients[slot]);
            if c != 0 {
                let (out, others) = self.store.split(row.data);
                self.engine.mul_add_slice(c, others.symbol(index), out);
                if row.pivot == position {
                    lost_pivot.push(row_index);
                }
            }
        }
        for row_index in lost_pivot.into_iter().rev() {
            self.repivot(row_index);
        }
        self.release_solved();
        Ok(Reception::New)
    }

    /// Takes a repair symbol.
    ///
    /// # Errors
    /// [`Error::RlcSymbolSize`] if `data` is not E bytes,
    /// [`Error::RlcDensityThreshold`] for DT > 15, [`Error::RlcWindowSize`]
    /// for NSS = 0 or above the configured `max_window`,
    /// [`Error::RlcConflictingRepair`] if this payload ID came before with
    /// other bytes. Nothing changes on error.
    pub fn add_repair(&mut self, id: RepairPayloadId, data: &[u8]) -> Result<Reception, Error> {
        self.check_size(data.len())?;
        check_density_threshold(id.dt)?;
        check_window_size(usize::from(id.nss), self.config.max_window)?;
        if self.knows_window(id.first_source_esi, id.nss) {
            // Nothing to learn, now or later: held sources stay held while
            // they are in the span, and no equation ever names one.
            return Ok(Reception::Redundant);
        }
        if self.recovered.capacity() == 0 {
            // Room for a window's releases at the first repair (2 KB at
            // most), so the packet that makes a whole window solvable then
            // allocates only the sources it releases.
            self.recovered
                .reserve(self.config.max_window.min(FIRST_RECOVERED));
        }
        let digest = digest(data);
        match self.repairs_seen.get(&id) {
            Some(&seen) if seen == digest => return Ok(Reception::Duplicate),
            Some(_) => {
                return Err(Error::RlcConflictingRepair {
                    repair_key: id.repair_key,
                    first_source_esi: id.first_source_esi,
                })
            }
            None => {}
        }
        let first = self.position_or_start(id.first_source_esi);
        let end = first + u64::from(id.nss);
        if end > self.end {
            self.advance_to(id.end_esi().wrapping_sub(1), end);
        }
        if !self.in_span(first) {
            return Ok(Reception::Expired);
        }
        self.remember_repair(id, digest, first);
        self.cover(first);

        let coefficients =
            self.coefficients
                .coefficients(self.config.field, id.repair_key, id.dt, id.nss);
        // Spare rows are all zeros, so a shorter one (from before the ring
        // grew) only needs more zeros.
        let mut row = self.spare_rows.pop().unwrap_or_default();
        row.coefficients.resize(self.slots.len(), 0);
        row.lo = end;
        row.hi = first;
        // Kernel inputs beyond the repair itself: known sources (by
        // position) and pending rows (by index), with their factors.
        // The scratch vectors take their room at once (not by doubling) the
        // first time a repair needs it, and keep it; at most one term per
        // symbol held.
        let mut known_terms = std::mem::take(&mut self.scratch_known);
        known_terms.clear();
        known_terms.reserve(coefficients.len().min(self.store.held()));
        for (offset, &c) in coefficients.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let position = first + offset as u64;
            let slot = self.slot(position);
            if self.slots[slot] != EMPTY {
                known_terms.push((c, position));
            } else {
                row.coefficients[slot] = c;
                row.lo = row.lo.min(position);
                row.hi = row.hi.max(position + 1);
            }
        }
        // Eliminate the existing pivots, on coefficients only, so that a
        // redundant repair costs no pass over the data.
        let mut row_terms = std::mem::take(&mut self.scratch_rows);
        row_terms.clear();
        row_terms.reserve(self.rows.len());
        if row.lo < row.hi {
            for (index, pending) in self.rows.iter().enumerate() {
                if pending.pivot < row.lo || pending.pivot >= row.hi {
                    continue;
                }
                let slot = self.slot(pending.pivot);
                let c = row.coefficients[slot];
                if c == 0 {
                    continue;
                }
                let factor = gf256::div(c, pending.coefficients[slot]).unwrap_or(0);
                self.add_row_coefficients(&mut row, factor, pending);
                row_terms.push((factor, index));
            }
        }
        let Some(pivot) = self.first_non_zero(&mut row) else {
            self.recycle(row);
            self.scratch_known = known_terms;
            self.scratch_rows = row_terms;
            return Ok(Reception::Redundant);
        };
        row.pivot = pivot;
        // The row is scaled so that its pivot is 1: the fused pass below
        // does it for free, and a row solved later is its source as it is,
        // released without a scaling pass. (A row that changes pivot keeps
        // whatever coefficient its new pivot has; release scales those.)
        let scale = gf256::inv(row.coefficients[self.slot(pivot)]).unwrap_or(1);
        if scale != 1 {
            for position in row.lo..row.hi {
                let slot = self.slot(position);
                row.coefficients[slot] = gf256::mul(row.coefficients[slot], scale);
            }
        }

        // One fused pass: repair + known sources + pending rows, into the
        // row's own symbol (every input is another symbol of the store).
        let mut factors = std::mem::take(&mut self.scratch_factors);
        factors.clear();
        factors.reserve(1 + known_terms.len() + row_terms.len());
        let mut inputs = self.combiner.inputs();
        row.data = self.store.take();
        let (out, others) = self.store.split(row.data);
        factors.push(scale);
        inputs.push(data);
        for &(c, position) in &known_terms {
            factors.push(gf256::mul(c, scale));
            inputs.push(others.symbol(self.slots[(position & self.slot_mask) as usize]));
        }
        for &(factor, index) in &row_terms {
            factors.push(gf256::mul(factor, scale));
            inputs.push(others.symbol(self.rows[index].data));
        }
        self.combiner.combine(self.engine, &factors, inputs, out);
        self.scratch_known = known_terms;
        self.scratch_rows = row_terms;
        self.scratch_factors = factors;

        self.eliminate_from_others(&row);
        self.rows.push(row);
        if self.rows.len() > self.config.max_equations {
            self.evict_oldest_equation();
        }
        self.release_solved();
        Ok(Reception::New)
    }

    /// Whether [`Decoder::add_repair`] would take a repair symbol with this
    /// ID as [`Reception::Redundant`] without reading its bytes: the ID is
    /// valid (DT, NSS within `max_window`) and every source of its window
    /// is held, received or recovered. Such a repair cannot help, now or
    /// later (a held source stays held while it is in the span, and no
    /// equation names one), so a caller may drop it unread, unpadded and
    /// uncopied.
    pub fn repair_is_known(&self, id: &RepairPayloadId) -> bool {
        check_density_threshold(id.dt).is_ok()
            && check_window_size(usize::from(id.nss), self.config.max_window).is_ok()
            && self.knows_window(id.first_source_esi, id.nss)
    }

    /// Whether every source of the window `[first_esi, first_esi + nss)`
    /// is held. Looks at `nss` ring slots and nothing else; false for a
    /// window not wholly inside the range held, or an `nss` of 0.
    fn knows_window(&self, first_esi: u32, nss: u16) -> bool {
        if nss == 0 || self.skip_known_windows_off() {
            return false;
        }
        let Some(first) = self.position(first_esi) else {
            return false;
        };
        let end = first.saturating_add(u64::from(nss));
        // Held sources lie in `low..end`; a window reaching outside that
        // range holds an unknown (and its slots would alias).
        if first < self.low.max(self.base()) || end > self.end {
            return false;
        }
        (first..end).all(|position| self.slots[self.slot(position)] != EMPTY)
    }

    #[cfg(test)]
    fn skip_known_windows_off(&self) -> bool {
        !self.skip_known_windows
    }

    #[cfg(not(test))]
    fn skip_known_windows_off(&self) -> bool {
        false
    }

    /// Tests only: turns the [`Decoder::repair_is_known`] shortcut off (or on
    /// again), to check it changes nothing but the work done.
    #[cfg(test)]
    pub(crate) fn set_skip_known_windows(&mut self, skip: bool) {
        self.skip_known_windows = skip;
    }

    fn check_size(&self, got: usize) -> Result<(), Error> {
        if got != self.config.symbol_size {
            return Err(Error::RlcSymbolSize {
                expected: self.config.symbol_size,
                got,
            });
        }
        Ok(())
    }

    /// The position of `esi` relative to the newest ESI seen (serial-number
    /// arithmetic: within 2^31 either side).
    fn position(&self, esi: u32) -> Option<u64> {
        let (newest_esi, newest_position) = self.newest?;
        let delta = i64::from(esi.wrapping_sub(newest_esi) as i32);
        newest_position.checked_add_signed(delta)
    }

    /// The position of `esi`, placing it at [`FIRST_POSITION`] when nothing
    /// was seen yet or when it lies so far ahead that moving there forgets
    /// everything held.
    ///
    /// The restart keeps positions small: each ESI may jump up to 2^31
    /// ahead, so without it a sender of far-ahead ESIs would push positions
    /// towards `u64::MAX` by 2^31 per packet (an overflow panic in debug
    /// builds, a decoder that calls everything expired in release, after
    /// some 2^33 packets). With it, a packet moves the span by at most
    /// `max_span + MAX_WINDOW`.
    fn position_or_start(&mut self, esi: u32) -> u64 {
        let flushing_jump = self.end.saturating_add(self.config.max_span as u64);
        match self.position(esi) {
            Some(position) if position < flushing_jump => position,
            _ => {
                self.forget_everything();
                self.newest = Some((esi, FIRST_POSITION));
                self.end = FIRST_POSITION;
                FIRST_POSITION
            }
        }
    }

    /// What a jump ahead by more than the span does: no source, equation or
    /// repair digest stays (queued recoveries carry their ESIs and stay).
    fn forget_everything(&mut self) {
        for slot in &mut self.slots {
            if *slot != EMPTY {
                self.store.give_back(std::mem::replace(slot, EMPTY));
            }
        }
        self.stats.equations_evicted += self.rows.len() as u64;
        while let Some(row) = self.rows.pop() {
            self.recycle(row);
        }
        self.low = u64::MAX;
        self.repairs_order.clear();
        self.repairs_seen.clear();
    }

    fn base(&self) -> u64 {
        self.end - self.config.max_span as u64
    }

    fn in_span(&self, position: u64) -> bool {
        position >= self.base() && position < self.end
    }

    fn slot(&self, position: u64) -> usize {
        (position & self.slot_mask) as usize
    }

    /// The source held at `position`, which must be known.
    fn ring_symbol(&self, position: u64) -> &[u8] {
        self.store.symbol(self.slots[self.slot(position)])
    }

    /// Whether any source or pending equation is held.
    fn holds_anything(&self) -> bool {
        self.store.held() > usize::from(self.placing) || !self.rows.is_empty()
    }

    /// Makes the ring cover `from..end` (`from` in the span) besides what
    /// it holds, growing it if need be, before `from` is written.
    fn cover(&mut self, from: u64) {
        let low = self.low.min(from);
        // `low` and `from` lie in the span, so this is at most `max_span`.
        let needed = (self.end - low) as usize;
        if needed > self.slots.len() {
            let most = self.config.max_span.next_power_of_two();
            self.grow(needed.next_power_of_two().max(MIN_SLOTS).min(most));
        }
        self.low = low;
    }

    /// Moves every source and coefficient held to a ring of `len` slots.
    ///
    /// Everything held lies in `low..end` with `end - low` at most the old
    /// length, so the positions `low..low + old length` meet every old
    /// slot exactly once: each slot's position is known without a record
    /// of it.
    fn grow(&mut self, len: usize) {
        let old_mask = self.slot_mask;
        let new_mask = len as u64 - 1;
        let mut slots = vec![EMPTY; len];
        if self.low != u64::MAX {
            for position in self.low..self.low + self.slots.len() as u64 {
                slots[(position & new_mask) as usize] = self.slots[(position & old_mask) as usize];
            }
        }
        for row in &mut self.rows {
            let mut coefficients = vec![0; len];
            for position in row.lo..row.hi {
                coefficients[(position & new_mask) as usize] =
                    row.coefficients[(position & old_mask) as usize];
            }
            row.coefficients = coefficients;
        }
        self.slots = slots;
        self.slot_mask = new_mask;
    }

    /// Moves the span forward so it ends at `new_end` (whose last ESI is
    /// `last_esi`), forgetting sources and equations that fall out of it.
    fn advance_to(&mut self, last_esi: u32, new_end: u64) {
        let old_end = self.end;
        self.end = new_end;
        self.newest = Some((last_esi, new_end - 1));
        let new_base = self.base();
        // Digests go with their first position, held or not (a repair
        // whose coefficients are all zero leaves a digest and nothing else).
        while let Some(&(id, first)) = self.repairs_order.front() {
            if first >= new_base {
                break;
            }
            self.repairs_order.pop_front();
            self.repairs_seen.remove(&id);
        }
        if self.low == u64::MAX {
            // Nothing is held, so nothing else leaves.
            return;
        }
        // Free every source that left the span: all lie in `low..old_end`,
        // at most one ring's worth of positions, so every slot they may
        // occupy is visited (after a jump past the ring, all of them).
        for position in self.low..new_base.min(old_end) {
            let slot = self.slot(position);
            let index = std::mem::replace(&mut self.slots[slot], EMPTY);
            if index != EMPTY {
                self.store.give_back(index);
            }
        }
        if self.rows.iter().all(|row| row.hi <= new_base) {
            // Everything pending lies behind the span (a long jump).
            self.stats.equations_evicted += self.rows.len() as u64;
            while let Some(row) = self.rows.pop() {
                self.recycle(row);
            }
        }
        // Nothing below the lowest pending column needs a look.
        let lowest = self.rows.iter().map(|row| row.lo).min().unwrap_or(new_base);
        // An unknown that leaves the span is eliminated rather than
        // dropping every equation it appears in: one equation is spent to
        // clear it from the others, which keep their information.
        for position in self.low.max(lowest)..new_base.min(old_end) {
            let slot = self.slot(position);
            let mut holders = self.rows.iter().enumerate().filter(|(_, row)| {
                position >= row.lo && position < row.hi && row.coefficients[slot] != 0
            });
            let Some((spent, _)) = holders.next() else {
                continue;
            };
            let spent = self.rows.swap_remove(spent);
            self.stats.equations_evicted += 1;
            let value = spent.coefficients[slot];
            for index in 0..self.rows.len() {
                let mut target = std::mem::take(&mut self.rows[index]);
                if position >= target.lo && position < target.hi {
                    let c = target.coefficients[slot];
                    if c != 0 {
                        let factor = gf256::div(c, value).unwrap_or(0);
                        self.add_row_coefficients(&mut target, factor, &spent);
                        let (target_data, others) = self.store.split(target.data);
                        self.engine
                            .mul_add_slice(factor, others.symbol(spent.data), target_data);
                    }
                }
                self.rows[index] = target;
            }
            self.recycle(spent);
        }
        for row in &mut self.rows {
            // Keep `lo..hi` inside the span so ring slots never alias.
            if row.lo < new_base {
                row.lo = new_base;
                row.hi = row.hi.max(new_base);
            }
        }
        if self.holds_anything() {
            // What stays lies in the new span; the ring must reach its end.
            self.low = self.low.max(new_base);
            let low = self.low;
            self.cover(low);
        } else {
            self.low = u64::MAX;
        }
    }

    fn remember_repair(&mut self, id: RepairPayloadId, digest: u64, first: u64) {
        // Bounded even if a sender floods one window with distinct keys.
        let limit = REPAIRS_REMEMBERED_PER_SPAN_SLOT * self.config.max_span;
        while self.repairs_order.len() >= limit {
            if let Some((old, _)) = self.repairs_order.pop_front() {
                self.repairs_seen.remove(&old);
            }
        }
        if self.repairs_order.capacity() == 0 {
            // A few repairs' room at once: tables grown from nothing one
            // doubling at a time cost a fresh decoder several allocations.
            self.repairs_seen.reserve(FIRST_REMEMBERED_REPAIRS);
            self.repairs_order.reserve(FIRST_REMEMBERED_REPAIRS);
        }
        self.repairs_seen.insert(id, digest);
        self.repairs_order.push_back((id, first));
    }

    /// `row.coefficients += factor * other.coefficients`.
    fn add_row_coefficients(&self, row: &mut Row, factor: u8, other: &Row) {
        for position in other.lo..other.hi {
            let slot = self.slot(position);
            row.coefficients[slot] ^= gf256::mul(factor, other.coefficients[slot]);
        }
        row.lo = row.lo.min(other.lo);
        row.hi = row.hi.max(other.hi);
    }

    /// The first non-zero column of `row`, tightening its bounds.
    fn first_non_zero(&self, row: &mut Row) -> Option<u64> {
        while row.lo < row.hi && row.coefficients[self.slot(row.lo)] == 0 {
            row.lo += 1;
        }
        while row.hi > row.lo && row.coefficients[self.slot(row.hi - 1)] == 0 {
            row.hi -= 1;
        }
        (row.lo < row.hi).then_some(row.lo)
    }

    /// Clears `pivot`'s column of `source` from every other row (keeps the
    /// store reduced).
    fn eliminate_from_others(&mut self, source: &Row) {
        let slot = self.slot(source.pivot);
        let pivot_value = source.coefficients[slot];
        for index in 0..self.rows.len() {
            let mut target = std::mem::take(&mut self.rows[index]);
            if source.pivot >= target.lo && source.pivot < target.hi {
                let c = target.coefficients[slot];
                if c != 0 {
                    let factor = gf256::div(c, pivot_value).unwrap_or(0);
                    self.add_row_coefficients(&mut target, factor, source);
                    let (target_data, others) = self.store.split(target.data);
                    self.engine
                        .mul_add_slice(factor, others.symbol(source.data), target_data);
                }
            }
            self.rows[index] = target;
        }
    }

    /// Row `index` lost its pivot to a newly received source: pick another,
    /// or drop the row if nothing unknown remains in it.
    fn repivot(&mut self, index: usize) {
        let mut row = self.rows.swap_remove(index);
        match self.first_non_zero(&mut row) {
            Some(pivot) => {
                row.pivot = pivot;
                self.eliminate_from_others(&row);
                self.rows.push(row);
            }
            None => {
                if self.store.symbol(row.data).iter().any(|&b| b != 0) {
                    self.stats.equations_inconsistent += 1;
                }
                self.recycle(row);
            }
        }
    }

    fn evict_oldest_equation(&mut self) {
        if let Some((index, _)) = self.rows.iter().enumerate().min_by_key(|(_, r)| r.pivot) {
            let row = self.rows.swap_remove(index);
            self.stats.equations_evicted += 1;
            self.recycle(row);
        }
    }

    /// Releases every row reduced to its pivot alone.
    fn release_solved(&mut self) {
        let mut index = 0;
        while index < self.rows.len() {
            let mut row = std::mem::take(&mut self.rows[index]);
            let alone = self.first_non_zero(&mut row) == Some(row.pivot) && row.hi == row.pivot + 1;
            if !alone {
                self.rows[index] = row;
                index += 1;
                continue;
            }
            self.rows.swap_remove(index);
            let slot = self.slot(row.pivot);
            let c = row.coefficients[slot];
            // The row's symbol becomes the source where it is, scaled by
            // way of the caller's copy (made anyway): no buffer besides it.
            let symbol = std::mem::replace(&mut row.data, EMPTY);
            let data = match gf256::inv(c) {
                Some(1) => Bytes::copy_from_slice(self.store.symbol(symbol)),
                Some(scale) => {
                    let mut solved = vec![0; self.config.symbol_size];
                    self.engine
                        .mul_slice(scale, self.store.symbol(symbol), &mut solved);
                    self.store.symbol_mut(symbol).copy_from_slice(&solved);
                    Bytes::from(solved)
                }
                None => {
                    unreachable_zero_pivot();
                    Bytes::copy_from_slice(self.store.symbol(symbol))
                }
            };
            self.slots[slot] = symbol;
            let esi = self.esi_at(row.pivot);
            self.recycle(row);
            self.stats.recovered += 1;
            if self.recovered.len() >= self.config.max_span {
                self.recovered.pop_front();
                self.stats.recoveries_unpolled += 1;
            }
            self.recovered.push_back(RecoveredSource { esi, data });
        }
    }

    fn esi_at(&self, position: u64) -> u32 {
        let (newest_esi, newest_position) = self.newest.unwrap_or((0, FIRST_POSITION));
        newest_esi.wrapping_sub((newest_position - position) as u32)
    }

    fn recycle(&mut self, mut row: Row) {
        for position in row.lo..row.hi {
            let slot = self.slot(position);
            row.coefficients[slot] = 0;
        }
        row.lo = 0;
        row.hi = 0;
        if row.data != EMPTY {
            self.store
                .give_back(std::mem::replace(&mut row.data, EMPTY));
        }
        if self.spare_rows.len() < self.config.max_equations {
            self.spare_rows.push(row);
        }
    }
}

/// A pivot coefficient is non-zero by construction; this documents the one
/// branch the type system cannot rule out.
fn unreachable_zero_pivot() {
    debug_assert!(false, "zero pivot in the RLC equation store");
}

/// A fast 64-bit digest for duplicate detection: four independent lanes so
/// the multiply chains overlap. Not collision-resistant against an
/// adversary; integrity belongs to the layer below.
fn digest(data: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut lanes = [K, K ^ 1, K ^ 2, K ^ 3];
    let mut blocks = data.chunks_exact(32);
    for block in &mut blocks {
        for (lane, word) in lanes.iter_mut().zip(block.chunks_exact(8)) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(word);
            *lane = (*lane ^ u64::from_le_bytes(bytes))
                .rotate_left(23)
                .wrapping_mul(K);
        }
    }
    let mut h = data.len() as u64;
    for lane in lanes {
        h = (h ^ lane).rotate_left(31).wrapping_mul(K);
    }
    for &byte in blocks.remainder() {
        h = (h ^ u64::from(byte)).rotate_left(23).wrapping_mul(K);
    }
    h ^ (h >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const E: usize = 8;

    fn decoder() -> Decoder {
        Decoder::new(DecoderConfig::new(Field::Gf256, E).with_window(4)).unwrap()
    }

    /// Losing source `lost` of the window `first..first + 4` and getting
    /// it back from one repair proves the decoder still works after `jumps`.
    fn recovers_after(decoder: &mut Decoder, first: u32) {
        let sources: Vec<[u8; E]> = (0..4u8).map(|i| [i ^ first as u8; E]).collect();
        let coefficients = coding_coefficients_for_test(7, 4);
        let mut repair = [0u8; E];
        for (c, source) in coefficients.iter().zip(&sources) {
            for (r, s) in repair.iter_mut().zip(source) {
                *r ^= gf256::mul(*c, *s);
            }
        }
        for (i, source) in sources.iter().enumerate() {
            if i != 2 {
                let esi = first.wrapping_add(i as u32);
                assert_eq!(decoder.add_source(esi, source).unwrap(), Reception::New);
            }
        }
        let id = RepairPayloadId {
            repair_key: 7,
            dt: 15,
            nss: 4,
            first_source_esi: first,
        };
        assert_eq!(decoder.add_repair(id, &repair).unwrap(), Reception::New);
        let recovered = decoder.poll_recovered().unwrap();
        assert_eq!(recovered.esi, first.wrapping_add(2));
        assert_eq!(&recovered.data[..], &sources[2][..]);
    }

    fn coding_coefficients_for_test(key: u16, count: usize) -> Vec<u8> {
        super::super::coding_coefficients(Field::Gf256, key, 15, count).unwrap()
    }

    /// SplitMix64: the few random draws of the property below.
    fn next(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[derive(Clone, Debug)]
    enum Symbol {
        Source(u32, Vec<u8>),
        Repair(RepairPayloadId, Vec<u8>),
    }

    /// A seeded stream of sources (short and long) with repairs over
    /// random sub-windows, then lost, duplicated and reordered.
    fn stream(seed: u64, count: usize) -> Vec<Symbol> {
        const SIZE: usize = 24;
        let mut state = seed;
        let mut encoder = super::super::Encoder::new(Field::Gf256, SIZE, 8).unwrap();
        let loss = next(&mut state) % 40; // percent
        let mut sent = Vec::new();
        for n in 0..count {
            let len = 1 + (next(&mut state) % SIZE as u64) as usize;
            let byte = next(&mut state) as u8 | 1;
            let esi = encoder
                .push_source_with(|slot| {
                    slot[..len].fill(byte);
                    Ok(len)
                })
                .unwrap();
            sent.push(Symbol::Source(esi, encoder.source(esi).unwrap().to_vec()));
            if next(&mut state).is_multiple_of(3) || n + 1 == count {
                for _ in 0..1 + next(&mut state) % 2 {
                    let (first, held) = encoder.window().unwrap();
                    let nss = 1 + (next(&mut state) % u64::from(held)) as u16;
                    let first = first.wrapping_add(u32::from(held - nss));
                    let dt = if next(&mut state).is_multiple_of(4) {
                        7
                    } else {
                        15
                    };
                    let key = encoder.next_repair_key();
                    encoder.set_next_repair_key(key.wrapping_add(1));
                    let mut repair = vec![0; SIZE];
                    let id = encoder
                        .sub_window_repair_into(first, nss, key, dt, &mut repair)
                        .unwrap();
                    sent.push(Symbol::Repair(id, repair));
                }
            }
        }
        let mut wire = Vec::new();
        for symbol in sent {
            match next(&mut state) % 100 {
                roll if roll < loss => {}
                roll if roll < loss + 10 => wire.extend([symbol.clone(), symbol]),
                _ => wire.push(symbol),
            }
        }
        for i in 1..wire.len() {
            if next(&mut state).is_multiple_of(5) {
                wire.swap(i - 1, i);
            }
        }
        wire
    }

    /// The shortcut for repairs over held sources changes no outcome: the
    /// same sources come back at the same moments, with the same counters,
    /// as through the full elimination. Only the verdict on a repeated
    /// redundant repair differs (redundant at once, rather than a
    /// duplicate of a remembered digest). Seeded streams, so a failure
    /// names its seed and replays.
    #[test]
    fn skipping_known_windows_recovers_exactly_what_elimination_does() {
        fn compare(seed: u64) -> Result<usize, String> {
            let config = DecoderConfig::new(Field::Gf256, 24).with_window(8);
            let mut fast = Decoder::new(config).unwrap();
            let mut full = Decoder::new(config).unwrap();
            full.set_skip_known_windows(false);
            let mut skipped = 0;
            for (step, symbol) in stream(seed, 60).into_iter().enumerate() {
                let (a, b) = match &symbol {
                    Symbol::Source(esi, data) => {
                        (fast.add_source(*esi, data), full.add_source(*esi, data))
                    }
                    Symbol::Repair(id, data) => {
                        if fast.repair_is_known(id) {
                            skipped += 1;
                        }
                        (fast.add_repair(*id, data), full.add_repair(*id, data))
                    }
                };
                let same = match (&a, &b) {
                    (Ok(Reception::Redundant), Ok(Reception::Duplicate)) => true,
                    (a, b) => a == b,
                };
                if !same {
                    return Err(format!("step {step} {symbol:?}: {a:?} against {b:?}"));
                }
                loop {
                    match (fast.poll_recovered(), full.poll_recovered()) {
                        (None, None) => break,
                        (a, b) if a == b => {}
                        (a, b) => return Err(format!("step {step}: {a:?} against {b:?}")),
                    }
                }
            }
            let (a, b) = (fast.stats(), full.stats());
            if a != b {
                return Err(format!("counters {a:?} against {b:?}"));
            }
            Ok(skipped)
        }
        let (mut skipped, mut recovered) = (0, 0);
        for seed in 0..3000u64 {
            match compare(seed) {
                Ok(n) => skipped += n,
                Err(why) => panic!("seed {seed}: {why}"),
            }
        }
        for seed in 0..100u64 {
            let mut decoder =
                Decoder::new(DecoderConfig::new(Field::Gf256, 24).with_window(8)).unwrap();
            for symbol in stream(seed, 60) {
                let _ = match symbol {
                    Symbol::Source(esi, data) => decoder.add_source(esi, &data),
                    Symbol::Repair(id, data) => decoder.add_repair(id, &data),
                };
            }
            recovered += decoder.stats().recovered;
        }
        // The comparison means something only if both happened often.
        assert!(skipped > 10_000, "only {skipped} repairs skipped");
        assert!(recovered > 500, "only {recovered} sources recovered");
    }

    /// Sources written in place (`add_source_with`, only their non-zero
    /// prefix, over whatever the decoder's memory held) decode exactly as
    /// copied ones; a failing or oversized write changes nothing.
    #[test]
    fn sources_framed_in_place_decode_as_copied_ones() {
        fn compare(seed: u64) -> Result<u64, String> {
            let config = DecoderConfig::new(Field::Gf256, 24).with_window(8);
            let mut copied = Decoder::new(config).unwrap();
            let mut framed = Decoder::new(config).unwrap();
            for (step, symbol) in stream(seed, 60).into_iter().enumerate() {
                let (a, b) = match &symbol {
                    Symbol::Source(esi, data) => {
                        let failed = framed.add_source_with(*esi, |slot| {
                            slot.fill(0xee);
                            Err(Error::RlcSymbolSize {
                                expected: 24,
                                got: 0,
                            })
                        });
                        let oversized = framed.add_source_with(*esi, |_| Ok(25));
                        if failed.is_ok() || !matches!(oversized, Err(Error::RlcSymbolSize { .. }))
                        {
                            return Err(format!("step {step}: {failed:?} / {oversized:?}"));
                        }
                        let len = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                        let written = framed.add_source_with(*esi, |slot| {
                            slot[..len].copy_from_slice(&data[..len]);
                            Ok(len)
                        });
                        (copied.add_source(*esi, data), written)
                    }
                    Symbol::Repair(id, data) => {
                        (copied.add_repair(*id, data), framed.add_repair(*id, data))
                    }
                };
                if a != b {
                    return Err(format!("step {step} {symbol:?}: {a:?} against {b:?}"));
                }
                let shape = |d: &Decoder| (d.low, d.end, d.slots.len(), d.store.held());
                if shape(&copied) != shape(&framed) {
                    let (a, b) = (shape(&copied), shape(&framed));
                    return Err(format!("step {step}: span/ring/store {a:?} against {b:?}"));
                }
                loop {
                    match (copied.poll_recovered(), framed.poll_recovered()) {
                        (None, None) => break,
                        (a, b) if a == b => {}
                        (a, b) => return Err(format!("step {step}: {a:?} against {b:?}")),
                    }
                }
            }
            let (a, b) = (copied.stats(), framed.stats());
            if a != b {
                return Err(format!("counters {a:?} against {b:?}"));
            }
            Ok(a.recovered)
        }
        let mut recovered = 0;
        for seed in 0..1000u64 {
            match compare(seed) {
                Ok(n) => recovered += n,
                Err(why) => panic!("seed {seed}: {why}"),
            }
        }
        assert!(recovered > 200, "only {recovered} sources recovered");
        // Sources only, then a jump by the span: everything held leaves,
        // and both hold the one new source over the same span and ring.
        let config = DecoderConfig::new(Field::Gf256, 24).with_window(8);
        let mut copied = Decoder::new(config).unwrap();
        let mut framed = Decoder::new(config).unwrap();
        let far = 3 + config.max_span as u32;
        for esi in [0, 1, 2, 3, far] {
            let symbol = [esi as u8 | 1; 24];
            let a = copied.add_source(esi, &symbol);
            let b = framed.add_source_with(esi, |slot| {
                slot.copy_from_slice(&symbol);
                Ok(24)
            });
            assert_eq!(a, b, "esi {esi}");
        }
        let shape = |d: &Decoder| (d.low, d.end, d.slots.len(), d.store.held());
        assert_eq!(shape(&copied), shape(&framed));
        // The source being placed is not counted as held while the jump
        // empties the span: what is held starts at the new source.
        assert_eq!(framed.low, framed.end - 1);
    }

    #[test]
    fn a_repair_over_held_sources_is_dropped_unread_and_one_over_a_missing_source_kept() {
        let mut decoder = decoder();
        let sources: Vec<[u8; E]> = (0..4u8).map(|i| [i + 1; E]).collect();
        let repair = |first: u32, nss: u16| {
            let coefficients = coding_coefficients_for_test(3, usize::from(nss));
            let mut symbol = [0u8; E];
            for (c, source) in coefficients.iter().zip(&sources[first as usize..]) {
                for (r, s) in symbol.iter_mut().zip(source) {
                    *r ^= gf256::mul(*c, *s);
                }
            }
            let id = RepairPayloadId {
                repair_key: 3,
                dt: 15,
                nss,
                first_source_esi: first,
            };
            (id, symbol)
        };
        for (esi, source) in sources.iter().enumerate().take(3) {
            decoder.add_source(esi as u32, source).unwrap();
        }
        let (held, held_symbol) = repair(0, 3);
        assert!(decoder.repair_is_known(&held));
        // Its bytes are not read: garbage of the right length changes nothing.
        assert_eq!(
            decoder.add_repair(held, &[0xee; E]).unwrap(),
            Reception::Redundant
        );
        assert_eq!(
            decoder.add_repair(held, &held_symbol).unwrap(),
            Reception::Redundant
        );
        assert!(decoder.repairs_seen.is_empty(), "nothing remembered");
        // Source 3 has not come (yet): the repair over 0..4 is kept...
        let (open, open_symbol) = repair(0, 4);
        assert!(!decoder.repair_is_known(&open));
        assert!(!decoder.repair_is_known(&RepairPayloadId { nss: 5, ..held }));
        assert_eq!(
            decoder.add_repair(open, &open_symbol).unwrap(),
            Reception::New
        );
        // ...and rebuilds it when it turns out lost.
        let rebuilt = decoder.poll_recovered().unwrap();
        assert_eq!((rebuilt.esi, &rebuilt.data[..]), (3, &sources[3][..]));
        // Now everything is held; an invalid ID is still an error.
        assert!(decoder.repair_is_known(&open));
        assert!(!decoder.repair_is_known(&RepairPayloadId { dt: 16, ..open }));
        assert!(decoder
            .add_repair(RepairPayloadId { dt: 16, ..open }, &open_symbol)
            .is_err());
    }

    #[test]
    fn a_digest_leaves_with_its_window_when_nothing_is_held() {
        // A sparse repair whose one coefficient is zero adds nothing, so the
        // decoder holds nothing but its digest.
        let key = (0..)
            .find(|&key| super::super::coding_coefficients(Field::Gf256, key, 0, 1).unwrap() == [0])
            .unwrap();
        let mut decoder = decoder();
        let id = |first_source_esi| RepairPayloadId {
            repair_key: key,
            dt: 0,
            nss: 1,
            first_source_esi,
        };
        assert_eq!(
            decoder.add_repair(id(0), &[1; E]).unwrap(),
            Reception::Redundant
        );
        // Another such repair moves the span (16 ESIs) past ESI 0, still
        // holding nothing: the first digest must go.
        assert_eq!(
            decoder.add_repair(id(20), &[1; E]).unwrap(),
            Reception::Redundant
        );
        assert_eq!(
            decoder.add_repair(id(0), &[2; E]).unwrap(),
            Reception::Expired
        );
    }

    #[test]
    fn the_memory_ceiling_counts_the_repair_digest_tables() {
        // Sources and equations here may take about 2 MiB, but the
        // duplicate-detection tables may grow to 4 repairs per span slot:
        // 4 Mi entries, about 300 MiB, which the limit used to miss.
        let config = DecoderConfig {
            field: Field::Gf256,
            symbol_size: 1,
            max_window: 16,
            max_span: 1 << 20,
            max_equations: 1,
        };
        assert!(matches!(
            Decoder::new(config),
            Err(Error::RlcConfig { reason }) if reason.contains("256 MiB")
        ));
        // A quarter of that span fits.
        let config = DecoderConfig {
            max_span: 1 << 18,
            ..config
        };
        assert!(Decoder::new(config).is_ok());
    }

    #[test]
    fn far_jumps_keep_positions_small() {
        let mut decoder = decoder();
        let mut esi = 0u32;
        // Each source is as far ahead as serial-number arithmetic allows.
        for _ in 0..1000 {
            esi = esi.wrapping_add((1 << 31) - 1);
            assert_eq!(decoder.add_source(esi, &[1; E]).unwrap(), Reception::New);
        }
        // Without the restart `end` grew by 2^31 per source (2^41 here, on
        // its way to u64::MAX).
        let bound = FIRST_POSITION + 2 * decoder.config.max_span as u64 + MAX_WINDOW as u64;
        assert!(decoder.end <= bound, "end {} > {bound}", decoder.end);
        recovers_after(&mut decoder, esi.wrapping_add(1));
    }

    #[test]
    fn a_decoder_near_the_end_of_the_position_space_keeps_working() {
        // The state a decoder without the restart reached after ~2^33 far
        // jumps: the next far ESI overflowed its position.
        let mut decoder = decoder();
        decoder.add_source(5, &[1; E]).unwrap();
        decoder.end = u64::MAX - 10;
        decoder.newest = Some((5, u64::MAX - 11));
        let far = 5u32.wrapping_add(1 << 30);
        recovers_after(&mut decoder, far);
    }

    #[test]
    fn a_far_jump_forgets_pending_equations_and_repair_digests() {
        let mut decoder = decoder();
        let id = RepairPayloadId {
            repair_key: 1,
            dt: 15,
            nss: 4,
            first_source_esi: 0,
        };
        assert_eq!(decoder.add_repair(id, &[9; E]).unwrap(), Reception::New);
        assert_eq!(decoder.pending_equations(), 1);
        decoder.add_source(1 << 30, &[2; E]).unwrap();
        assert_eq!(decoder.pending_equations(), 0);
        assert_eq!(decoder.stats().equations_evicted, 1);
        assert!(decoder.source(1 << 30).is_some());
        // The digest went with the equation: the same ID with other bytes
        // is no longer a conflict, merely expired.
        assert_eq!(decoder.add_repair(id, &[8; E]).unwrap(), Reception::Expired);
    }
}
