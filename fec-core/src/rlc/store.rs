//! Where the decoder keeps its symbols (sources, and the right-hand sides
//! of pending equations): memory for the symbols it holds, never for the
//! span it could hold.

use std::cmp::Ordering;

/// Fixed-size symbols, handed out by index, in segments that double (1, 1,
/// 2, 4, 8 symbols) and then stay at [`MAX_ROOM`] symbols, so no single
/// allocation, whatever a peer sends, is larger than [`MAX_ROOM`] symbols:
/// memory grows with the most symbols held at once, a
/// symbol never moves (growing copies nothing), and a freed symbol's bytes
/// are reused by the next one, so a decoder in steady state allocates
/// nothing here. A new symbol is appended to its segment from the bytes it
/// gets, so nothing is zeroed only to be overwritten.
#[derive(Debug)]
pub(super) struct SymbolStore {
    symbol_size: usize,
    /// Segment `s` has room for the symbols from `first_index(s)` up to
    /// `first_index(s + 1)` and holds those made so far; unallocated until
    /// the first of them is needed.
    segments: Vec<Vec<u8>>,
    /// Indices ever handed out are `0..made`.
    made: u32,
    /// Indices handed out and given back, ready for reuse.
    free: Vec<u32>,
}

/// The most symbols in one segment (one allocation).
const MAX_ROOM: u32 = 8;
/// Segments that double before they reach [`MAX_ROOM`]: rooms 1, 1, 2, 4,
/// 8, covering indices `0..2 * MAX_ROOM`.
const DOUBLING: usize = 5;

/// The segment of `index` and its place there.
#[inline]
fn locate(index: u32) -> (usize, usize) {
    if index < 2 * MAX_ROOM {
        let segment = (u32::BITS - index.leading_zeros()) as usize;
        (segment, (index - first_index(segment)) as usize)
    } else {
        let past = index - 2 * MAX_ROOM;
        (
            DOUBLING + (past / MAX_ROOM) as usize,
            (past % MAX_ROOM) as usize,
        )
    }
}

/// How many symbols `segment` has room for: 1, 1, 2, 4, 8, 8, ...
fn room(segment: usize) -> usize {
    if segment < DOUBLING {
        (1usize << segment) >> 1 | usize::from(segment == 0)
    } else {
        MAX_ROOM as usize
    }
}

/// The first index of `segment`: 0, 1, 2, 4, 8, 16, 24, ...
#[inline]
fn first_index(segment: usize) -> u32 {
    if segment < DOUBLING {
        ((1u64 << segment) >> 1) as u32
    } else {
        2 * MAX_ROOM + (segment - DOUBLING) as u32 * MAX_ROOM
    }
}

impl SymbolStore {
    /// An empty store of `symbol_size`-byte symbols; allocates nothing.
    pub(super) fn new(symbol_size: usize) -> SymbolStore {
        SymbolStore {
            symbol_size,
            segments: Vec::new(),
            made: 0,
            free: Vec::new(),
        }
    }

    /// Symbols handed out and not given back.
    pub(super) fn held(&self) -> usize {
        self.made as usize - self.free.len()
    }

    /// A new symbol holding `data` (`symbol_size` bytes); its index.
    #[cfg(test)]
    pub(super) fn insert(&mut self, data: &[u8]) -> u32 {
        debug_assert_eq!(data.len(), self.symbol_size);
        match self.free.pop() {
            Some(index) => {
                self.symbol_mut(index).copy_from_slice(data);
                index
            }
            None => self.append(|segment| segment.extend_from_slice(data)),
        }
    }

    /// A new symbol, its bytes whatever they were last (zeros when new),
    /// for the caller to overwrite; its index.
    pub(super) fn take(&mut self) -> u32 {
        match self.free.pop() {
            Some(index) => index,
            None => {
                let size = self.symbol_size;
                self.append(|segment| segment.resize(segment.len() + size, 0))
            }
        }
    }

    /// Makes symbol `made` with `extend`, which appends its bytes to its
    /// segment (indices are made in order, so it is the segment's last).
    fn append(&mut self, extend: impl FnOnce(&mut Vec<u8>)) -> u32 {
        let index = self.made;
        let (segment, _) = locate(index);
        let symbols = room(segment);
        if self.segments.len() <= segment {
            self.segments.resize_with(segment + 1, Vec::new);
        }
        let segment = &mut self.segments[segment];
        if segment.capacity() == 0 {
            // Exactly the segment's room: `extend` never reallocates, so no
            // symbol moves.
            segment.reserve_exact(symbols * self.symbol_size);
        }
        extend(segment);
        self.made += 1;
        index
    }

    /// Returns `index` (from [`take`](Self::take)) for reuse.
    pub(super) fn give_back(&mut self, index: u32) {
        debug_assert!(index < self.made);
        self.free.push(index);
    }

    /// The bytes of symbol `index`.
    #[inline]
    pub(super) fn symbol(&self, index: u32) -> &[u8] {
        let (segment, offset) = locate(index);
        let start = offset * self.symbol_size;
        &self.segments[segment][start..start + self.symbol_size]
    }

    /// The bytes of symbol `index`, to write.
    #[inline]
    pub(super) fn symbol_mut(&mut self, index: u32) -> &mut [u8] {
        let (segment, offset) = locate(index);
        let start = offset * self.symbol_size;
        &mut self.segments[segment][start..start + self.symbol_size]
    }

    /// Symbol `index` to write, and every other symbol to read: what a
    /// kernel combining symbols into one of them needs.
    pub(super) fn split(&mut self, index: u32) -> (&mut [u8], Others<'_>) {
        let (segment, offset) = locate(index);
        let size = self.symbol_size;
        let (segments_before, rest) = self.segments.split_at_mut(segment);
        let (this, segments_after) = rest
            .split_first_mut()
            .unwrap_or_else(|| unreachable!("a made index has its segment"));
        let (before, rest) = this.split_at_mut(offset * size);
        let (symbol, after) = rest.split_at_mut(size);
        let others = Others {
            symbol_size: size,
            segments_before,
            segments_after,
            segment,
            offset,
            before,
            after,
        };
        (symbol, others)
    }
}

/// Every symbol of a [`SymbolStore`] but the one [`SymbolStore::split`]
/// took out, to read.
pub(super) struct Others<'a> {
    symbol_size: usize,
    segments_before: &'a [Vec<u8>],
    segments_after: &'a [Vec<u8>],
    /// Where the symbol taken out is.
    segment: usize,
    offset: usize,
    /// Its segment's bytes before and after it.
    before: &'a [u8],
    after: &'a [u8],
}

impl<'a> Others<'a> {
    /// The bytes of symbol `index`, which must not be the one taken out.
    #[inline]
    pub(super) fn symbol(&self, index: u32) -> &'a [u8] {
        let (segment, offset) = locate(index);
        let size = self.symbol_size;
        let (bytes, start) = match segment.cmp(&self.segment) {
            Ordering::Less => (&self.segments_before[segment][..], offset * size),
            Ordering::Greater => (
                &self.segments_after[segment - self.segment - 1][..],
                offset * size,
            ),
            Ordering::Equal if offset < self.offset => (self.before, offset * size),
            Ordering::Equal => {
                debug_assert!(offset != self.offset, "the symbol taken out");
                (self.after, (offset - self.offset - 1) * size)
            }
        };
        &bytes[start..start + size]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_map_to_doubling_then_capped_segments() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(1), (1, 0));
        assert_eq!(locate(2), (2, 0));
        assert_eq!(locate(3), (2, 1));
        assert_eq!(locate(4), (3, 0));
        assert_eq!(locate(7), (3, 3));
        assert_eq!(locate(15), (4, 7));
        assert_eq!(locate(16), (5, 0));
        assert_eq!(locate(24), (6, 0));
        let past = u32::MAX - 16;
        assert_eq!(
            locate(u32::MAX),
            (5 + (past / 8) as usize, (past % 8) as usize)
        );
        // Every index lies inside its segment's room, in order.
        let mut expected = (0, 0);
        for index in 0..10_000u32 {
            let (segment, offset) = locate(index);
            assert_eq!((segment, offset), expected, "index {index}");
            assert_eq!(first_index(segment) + offset as u32, index);
            assert!(room(segment) <= MAX_ROOM as usize);
            expected = if offset + 1 == room(segment) {
                (segment + 1, 0)
            } else {
                (segment, offset + 1)
            };
        }
    }

    #[test]
    fn split_reads_every_other_symbol() {
        let mut store = SymbolStore::new(2);
        for i in 0..40u8 {
            store.insert(&[i, i]);
        }
        for taken in 0..40u32 {
            let (symbol, others) = store.split(taken);
            assert_eq!(symbol, &[taken as u8; 2]);
            for index in (0..40).filter(|&i| i != taken) {
                assert_eq!(others.symbol(index), &[index as u8; 2]);
            }
            symbol.fill(99);
            assert_eq!(store.symbol(taken), &[99; 2]);
            store.symbol_mut(taken).fill(taken as u8);
        }
    }

    #[test]
    fn symbols_keep_their_bytes_and_are_reused() {
        let mut store = SymbolStore::new(3);
        let indices: Vec<u32> = (0..10u8).map(|i| store.insert(&[i; 3])).collect();
        assert_eq!(indices, (0..10).collect::<Vec<_>>());
        assert_eq!(store.take(), 10);
        assert_eq!(store.symbol(10), &[0; 3]);
        store.symbol_mut(10).fill(10);
        for index in 0..=10 {
            assert_eq!(store.symbol(index), &[index as u8; 3]);
        }
        store.give_back(4);
        store.give_back(7);
        assert_eq!(store.held(), 9);
        assert_eq!(store.insert(&[70; 3]), 7);
        assert_eq!(store.take(), 4);
        assert_eq!(store.symbol(4), &[4; 3], "a reused symbol keeps its bytes");
        assert_eq!(store.symbol(7), &[70; 3]);
        assert_eq!(store.insert(&[11; 3]), 11);
        // Sixteen symbols' room for twelve: segments 0..=4, none grown
        // past its room, none made beyond.
        let room: Vec<usize> = store.segments.iter().map(Vec::capacity).collect();
        assert_eq!(room, [3, 3, 6, 12, 24]);
    }
}
