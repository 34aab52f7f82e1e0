//! The sliding-window encoder: keeps the last source symbols and combines any
//! held window of them into repair symbols.

use super::coefficients::{check_density_threshold, check_window_size, CoefficientCache};
use super::Combiner;
use super::{Field, RepairPayloadId, MAX_WINDOW};
use crate::gf256::engine;
use crate::Error;

/// An RFC 8681 encoder over fixed-size source symbols.
///
/// It holds up to `max_window` source symbols (the oldest is dropped when a
/// new one arrives at capacity) and emits repair symbols over the whole held
/// window or any contiguous part of it. Its memory follows the symbols held:
/// the window's buffer doubles as symbols come, up to `max_window` symbols,
/// and is reused from then on. Source symbols themselves are sent
/// unchanged (the code is systematic); [`Encoder::push_source`] only tells
/// their ESI.
#[derive(Debug)]
pub struct Encoder {
    field: Field,
    symbol_size: usize,
    max_window: usize,
    /// Slots of `symbol_size` bytes used as a ring, one per entry of
    /// `dirty`: as many as the most symbols held so far, rounded up to a
    /// power of two (at most `max_window`).
    ring: Vec<u8>,
    /// Per slot, how many leading bytes may be non-zero: past it the slot
    /// reads as zeros, so [`Encoder::push_source_with`] only clears what the
    /// slot's previous symbol left behind.
    dirty: Vec<u16>,
    /// Ring slot of the oldest held symbol.
    oldest_slot: usize,
    held: usize,
    /// ESI of the oldest held symbol (or of the next one when none is held).
    first_esi: u32,
    next_repair_key: u16,
    coefficients: CoefficientCache,
    /// Reused per repair: the non-zero coefficients handed to the kernel.
    scratch_factors: Vec<u8>,
    /// Reused per repair: the kernel and its input list.
    combiner: Combiner,
}

impl Encoder {
    /// An empty encoder whose first source symbol gets ESI 0.
    ///
    /// # Errors
    /// [`Error::RlcConfig`] if `symbol_size` is 0 or above 65535 (E is a
    /// 16-bit field), [`Error::RlcWindowSize`] unless `1 <= max_window <= 4095`.
    pub fn new(field: Field, symbol_size: usize, max_window: usize) -> Result<Encoder, Error> {
        if symbol_size == 0 || symbol_size > usize::from(u16::MAX) {
            return Err(Error::RlcConfig {
                reason: "symbol size must be 1..=65535 bytes",
            });
        }
        check_window_size(max_window, MAX_WINDOW)?;
        Ok(Encoder {
            field,
            symbol_size,
            max_window,
            ring: Vec::new(),
            dirty: Vec::new(),
            oldest_slot: 0,
            held: 0,
            first_esi: 0,
            next_repair_key: 0,
            coefficients: CoefficientCache::default(),
            scratch_factors: Vec::new(),
            combiner: Combiner::default(),
        })
    }

    /// Empties the window; the next source symbol gets ESI `esi`.
    pub fn reset(&mut self, esi: u32) {
        self.oldest_slot = 0;
        self.held = 0;
        self.first_esi = esi;
    }

    /// The coefficient field.
    pub fn field(&self) -> Field {
        self.field
    }

    /// The symbol size E in bytes.
    pub fn symbol_size(&self) -> usize {
        self.symbol_size
    }

    /// The most source symbols held at once.
    pub fn max_window(&self) -> usize {
        self.max_window
    }

    /// The ESI the next pushed source symbol will get.
    pub fn next_esi(&self) -> u32 {
        self.first_esi.wrapping_add(self.held as u32)
    }

    /// The held window as (first ESI, number of symbols), if any.
    pub fn window(&self) -> Option<(u32, u16)> {
        (self.held > 0).then_some((self.first_esi, self.held as u16))
    }

    /// The repair key [`Encoder::next_repair`] will use next.
    pub fn next_repair_key(&self) -> u16 {
        self.next_repair_key
    }

    /// Sets the repair key [`Encoder::next_repair`] uses next.
    pub fn set_next_repair_key(&mut self, repair_key: u16) -> &mut Self {
        self.next_repair_key = repair_key;
        self
    }

    /// Appends a source symbol to the window and returns its ESI. At
    /// capacity the oldest symbol leaves the window.
    ///
    /// # Errors
    /// [`Error::RlcSymbolSize`] if `data` is not E bytes long.
    pub fn push_source(&mut self, data: &[u8]) -> Result<u32, Error> {
        self.check_size(data.len())?;
        self.push_source_with(|slot| {
            slot.copy_from_slice(data);
            Ok(slot.len())
        })
    }

    /// Appends a source symbol written in place, saving the copy
    /// [`Encoder::push_source`] makes when the caller has to build the
    /// symbol anyway (for example framing an ADU with its length).
    ///
    /// `fill` gets the symbol's E-byte slot, whose bytes are whatever an
    /// earlier symbol left there; it writes the symbol's first `n` bytes and
    /// returns `n` (at most E). The encoder makes the bytes past `n` zero,
    /// so `fill` must not write past the `n` it returns. The result is the
    /// same window, and the same repair symbols, as `push_source` of those
    /// `n` bytes followed by E - `n` zeros.
    ///
    /// # Errors
    /// Whatever `fill` returns, and [`Error::RlcSymbolSize`] if it claims more
    /// than E bytes. On error no ESI is used; but at capacity `fill` was
    /// handed the oldest symbol's slot, so that symbol leaves the window.
    ///
    /// ```
    /// use fec_core::rlc::{Encoder, Field};
    ///
    /// let mut encoder = Encoder::new(Field::Gf256, 8, 4)?;
    /// let payload = b"abc";
    /// let esi = encoder.push_source_with(|slot| {
    ///     slot[0] = payload.len() as u8;
    ///     slot[1..1 + payload.len()].copy_from_slice(payload);
    ///     Ok(1 + payload.len())
    /// })?;
    /// assert_eq!(encoder.source(esi), Some(&[3, b'a', b'b', b'c', 0, 0, 0, 0][..]));
    /// # Ok::<(), fec_core::Error>(())
    /// ```
    pub fn push_source_with<F>(&mut self, fill: F) -> Result<u32, Error>
    where
        F: FnOnce(&mut [u8]) -> Result<usize, Error>,
    {
        if self.held == self.slots() && self.held < self.max_window {
            self.grow();
        }
        let slots = self.slots();
        let at_capacity = self.held == self.max_window;
        let slot = if at_capacity {
            self.oldest_slot
        } else {
            (self.oldest_slot + self.held) % slots
        };
        if at_capacity {
            // The slot is about to be overwritten, whether `fill` succeeds or
            // not: its symbol leaves the window first.
            self.oldest_slot = (self.oldest_slot + 1) % slots;
            self.first_esi = self.first_esi.wrapping_add(1);
            self.held -= 1;
        }
        let start = slot * self.symbol_size;
        let bytes = &mut self.ring[start..start + self.symbol_size];
        let written = match fill(bytes) {
            Ok(written) if written <= self.symbol_size => written,
            Ok(written) => {
                // The slot's contents are unknown now: have it cleared in full next time.
                self.dirty[slot] = self.symbol_size as u16;
                return Err(Error::RlcSymbolSize {
                    expected: self.symbol_size,
                    got: written,
                });
            }
            Err(error) => {
                self.dirty[slot] = self.symbol_size as u16;
                return Err(error);
            }
        };
        let dirty = usize::from(self.dirty[slot]);
        if dirty > written {
            bytes[written..dirty].fill(0);
        }
        self.dirty[slot] = written as u16;
        self.held += 1;
        Ok(self.first_esi.wrapping_add(self.held as u32 - 1))
    }

    /// Ring slots allocated.
    fn slots(&self) -> usize {
        self.dirty.len()
    }

    /// Doubles the ring (up to `max_window` slots), which is full: its
    /// symbols are rotated to start at slot 0, so they stay in order
    /// followed by the new, zeroed slots.
    fn grow(&mut self) {
        let slots = (2 * self.slots()).clamp(1, self.max_window);
        self.ring.rotate_left(self.oldest_slot * self.symbol_size);
        self.dirty.rotate_left(self.oldest_slot);
        self.oldest_slot = 0;
        self.ring.resize(slots * self.symbol_size, 0);
        self.dirty.resize(slots, 0);
    }

    /// Drops every held symbol whose ESI comes before `esi` (for example
    /// because the application no longer needs it). ESIs are compared in
    /// wrapping order relative to the held window.
    pub fn discard_before(&mut self, esi: u32) {
        let ahead = esi.wrapping_sub(self.first_esi);
        // Only a point inside or just past the window moves it; anything else
        // lies behind the window, where there is nothing to drop.
        if ahead as usize <= self.held && ahead <= MAX_WINDOW as u32 {
            let drop = ahead as usize;
            // `max(1)`: nothing to drop when no slot was ever allocated.
            self.oldest_slot = (self.oldest_slot + drop) % self.slots().max(1);
            self.held -= drop;
            self.first_esi = esi;
        }
    }

    /// A held source symbol.
    pub fn source(&self, esi: u32) -> Option<&[u8]> {
        let offset = esi.wrapping_sub(self.first_esi) as usize;
        (offset < self.held).then(|| self.slot(offset))
    }

    /// Writes the repair symbol over the whole held window into `out`.
    ///
    /// # Errors
    /// [`Error::RlcEmptyWindow`], [`Error::RlcDensityThreshold`] for
    /// `dt > 15`, [`Error::RlcSymbolSize`] if `out` is not E bytes.
    pub fn repair_into(
        &mut self,
        repair_key: u16,
        dt: u8,
        out: &mut [u8],
    ) -> Result<RepairPayloadId, Error> {
        let (first, held) = self.window().ok_or(Error::RlcEmptyWindow)?;
        self.sub_window_repair_into(first, held, repair_key, dt, out)
    }

    /// How many leading bytes of a repair symbol over the held sub-window
    /// `[first_esi, first_esi + nss)` can be non-zero: the longest of its
    /// source symbols, counting what each [`Encoder::push_source_with`]
    /// fill wrote (E for [`Encoder::push_source`]). Every repair symbol
    /// over the window is zero past it, so a transport may leave those
    /// bytes off and the receiver put them back; pass an `out` of this
    /// length to [`Encoder::sub_window_repair_into`] to compute only the
    /// rest.
    ///
    /// # Errors
    /// [`Error::RlcWindowNotHeld`] if that range is not entirely held,
    /// [`Error::RlcWindowSize`] for `nss == 0`.
    ///
    /// ```
    /// use fec_core::rlc::{Encoder, Field};
    ///
    /// let mut encoder = Encoder::new(Field::Gf256, 100, 4)?;
    /// for len in [3, 9, 5] {
    ///     encoder.push_source_with(|slot| { slot[..len].fill(7); Ok(len) })?;
    /// }
    /// assert_eq!(encoder.significant_len(0, 3)?, 9);
    /// assert_eq!(encoder.significant_len(2, 1)?, 5);
    /// let (mut full, mut short) = ([0; 100], [0; 9]);
    /// encoder.sub_window_repair_into(0, 3, 1, 15, &mut full)?;
    /// encoder.sub_window_repair_into(0, 3, 1, 15, &mut short)?;
    /// assert_eq!((&full[..9], &full[9..]), (&short[..], &[0; 91][..]));
    /// # Ok::<(), fec_core::Error>(())
    /// ```
    pub fn significant_len(&self, first_esi: u32, nss: u16) -> Result<usize, Error> {
        let offset = self.sub_window(first_esi, nss)?;
        let slots = self.slots();
        Ok((offset..offset + usize::from(nss))
            .map(|i| usize::from(self.dirty[(self.oldest_slot + i) % slots]))
            .max()
            .unwrap_or(0))
    }

    /// The offset of the held sub-window `[first_esi, first_esi + nss)`.
    fn sub_window(&self, first_esi: u32, nss: u16) -> Result<usize, Error> {
        check_window_size(usize::from(nss), MAX_WINDOW)?;
        let offset = first_esi.wrapping_sub(self.first_esi) as usize;
        if offset >= self.held || usize::from(nss) > self.held - offset {
            return Err(Error::RlcWindowNotHeld {
                first_esi,
                nss: usize::from(nss),
            });
        }
        Ok(offset)
    }

    /// Writes the repair symbol over the held sub-window
    /// `[first_esi, first_esi + nss)` into `out`: E bytes, or its first
    /// `out.len()` bytes when that is shorter but at least the window's
    /// [`significant_len`](Encoder::significant_len) (the bytes left out
    /// are zero).
    ///
    /// # Errors
    /// [`Error::RlcWindowNotHeld`] if that range is not entirely held,
    /// [`Error::RlcWindowSize`] for `nss == 0`, [`Error::RlcSymbolSize`] if
    /// `out` is longer than E or shorter than the significant length,
    /// otherwise as [`Encoder::repair_into`].
    pub fn sub_window_repair_into(
        &mut self,
        first_esi: u32,
        nss: u16,
        repair_key: u16,
        dt: u8,
        out: &mut [u8],
    ) -> Result<RepairPayloadId, Error> {
        check_density_threshold(dt)?;
        let offset = self.sub_window(first_esi, nss)?;
        if out.len() != self.symbol_size
            && (out.len() > self.symbol_size || out.len() < self.significant_len(first_esi, nss)?)
        {
            return Err(Error::RlcSymbolSize {
                expected: self.symbol_size,
                got: out.len(),
            });
        }
        let len = out.len();
        let coefficients = self
            .coefficients
            .coefficients(self.field, repair_key, dt, nss);
        let mut used = std::mem::take(&mut self.scratch_factors);
        used.clear();
        let mut combiner = std::mem::take(&mut self.combiner);
        let mut inputs = combiner.inputs();
        for (i, &c) in coefficients.iter().enumerate() {
            if c != 0 {
                used.push(c);
                inputs.push(&self.slot(offset + i)[..len]);
            }
        }
        combiner.combine(engine(), &used, inputs, out);
        self.combiner = combiner;
        self.scratch_factors = used;
        Ok(RepairPayloadId {
            repair_key,
            dt,
            nss,
            first_source_esi: first_esi,
        })
    }

    /// The repair symbol over the whole held window, in a new buffer.
    ///
    /// # Errors
    /// As [`Encoder::repair_into`].
    pub fn repair(&mut self, repair_key: u16, dt: u8) -> Result<(RepairPayloadId, Vec<u8>), Error> {
        let mut out = vec![0; self.symbol_size];
        let id = self.repair_into(repair_key, dt, &mut out)?;
        Ok((id, out))
    }

    /// The repair symbol over the whole held window with the next repair key
    /// (which then increments, wrapping), so repairs of overlapping windows
    /// never share a key as RFC 8681 asks.
    ///
    /// # Errors
    /// As [`Encoder::repair_into`]; the key is not consumed on error.
    pub fn next_repair(&mut self, dt: u8) -> Result<(RepairPayloadId, Vec<u8>), Error> {
        let mut out = vec![0; self.symbol_size];
        let id = self.next_repair_into(dt, &mut out)?;
        Ok((id, out))
    }

    /// [`Encoder::next_repair`] into a caller-owned buffer.
    ///
    /// # Errors
    /// As [`Encoder::repair_into`]; the key is not consumed on error.
    pub fn next_repair_into(&mut self, dt: u8, out: &mut [u8]) -> Result<RepairPayloadId, Error> {
        let id = self.repair_into(self.next_repair_key, dt, out)?;
        self.next_repair_key = self.next_repair_key.wrapping_add(1);
        Ok(id)
    }

    fn slot(&self, offset: usize) -> &[u8] {
        let slot = (self.oldest_slot + offset) % self.slots();
        &self.ring[slot * self.symbol_size..(slot + 1) * self.symbol_size]
    }

    fn check_size(&self, got: usize) -> Result<(), Error> {
        if got != self.symbol_size {
            return Err(Error::RlcSymbolSize {
                expected: self.symbol_size,
                got,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{QuickCheck, TestResult};

    /// Writes `len` bytes derived from `seed` into the front of `slot`.
    fn prefix(slot: &mut [u8], seed: u8, len: usize) -> usize {
        for (i, byte) in slot[..len].iter_mut().enumerate() {
            *byte = seed.wrapping_mul(31).wrapping_add(i as u8) | 1;
        }
        len
    }

    /// The same sources through `push_source` (zero-padded copies) and
    /// `push_source_with` (written in place over stale slots) give the same
    /// ESIs, held symbols and repair symbols, across ring wrap-around.
    #[test]
    fn push_source_with_matches_push_source() {
        fn property(lengths: Vec<u8>, window: u8, dt: u8) -> TestResult {
            const SIZE: usize = 40;
            let window = usize::from(window % 8) + 1;
            let dt = dt % 16;
            let mut copied = Encoder::new(Field::Gf256, SIZE, window).unwrap();
            let mut framed = Encoder::new(Field::Gf256, SIZE, window).unwrap();
            for (seed, &len) in lengths.iter().enumerate() {
                let len = usize::from(len) % (SIZE + 1);
                let mut symbol = vec![0; SIZE];
                prefix(&mut symbol, seed as u8, len);
                let a = copied.push_source(&symbol).unwrap();
                let b = framed
                    .push_source_with(|slot| Ok(prefix(slot, seed as u8, len)))
                    .unwrap();
                if a != b || framed.source(b) != Some(&symbol[..]) {
                    return TestResult::failed();
                }
                if copied.window() != framed.window()
                    || copied.repair(seed as u16, dt).unwrap()
                        != framed.repair(seed as u16, dt).unwrap()
                {
                    return TestResult::failed();
                }
            }
            TestResult::passed()
        }
        QuickCheck::new()
            .tests(200)
            .quickcheck(property as fn(Vec<u8>, u8, u8) -> TestResult);
    }

    #[test]
    fn failed_fill_uses_no_esi_and_evicts_only_at_capacity() {
        let mut encoder = Encoder::new(Field::Gf256, 4, 2).unwrap();
        let failure = || Err(Error::RlcEmptyWindow);
        assert!(encoder.push_source_with(|_| failure()).is_err());
        assert_eq!((encoder.window(), encoder.next_esi()), (None, 0));
        encoder.push_source(&[1; 4]).unwrap();
        encoder.push_source(&[2; 4]).unwrap();
        assert!(encoder.push_source_with(|_| failure()).is_err());
        // The oldest slot was handed out, so ESI 0 is gone; ESI 1 is intact.
        assert_eq!(encoder.window(), Some((1, 1)));
        assert_eq!(encoder.source(1), Some(&[2; 4][..]));
        assert_eq!(encoder.next_esi(), 2);
        // A claim past E is refused, and the slot reads as zeros afterwards.
        assert!(matches!(
            encoder.push_source_with(|slot| {
                slot.fill(9);
                Ok(5)
            }),
            Err(Error::RlcSymbolSize {
                expected: 4,
                got: 5
            })
        ));
        assert_eq!(encoder.push_source_with(|_| Ok(0)).unwrap(), 2);
        assert_eq!(encoder.source(2), Some(&[0; 4][..]));
    }
}
