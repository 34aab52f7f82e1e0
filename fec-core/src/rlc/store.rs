//! Where the decoder keeps its source symbols: memory for the symbols it
//! holds, never for the span it could hold.

/// Fixed-size symbols, handed out by index, in segments that double (1, 1,
/// 2, 4, ... symbols): memory grows with the most symbols held at once, a
/// symbol never moves (growing copies nothing, and the hot path keeps no
/// stale slice), and a freed symbol's bytes are reused by the next one, so
/// a decoder in steady state allocates nothing here.
#[derive(Debug)]
pub(super) struct SymbolStore {
    symbol_size: usize,
    /// Segment `s` holds the symbols `first_index(s)..first_index(s + 1)`;
    /// empty until one of them is first needed.
    segments: [Box<[u8]>; SEGMENTS],
    /// Indices ever handed out are `0..made`.
    made: u32,
    /// Indices handed out and given back, ready for reuse.
    free: Vec<u32>,
}

/// Enough segments for any `u32` index.
const SEGMENTS: usize = 33;

/// The segment of `index` and its place there.
fn locate(index: u32) -> (usize, usize) {
    let segment = (u32::BITS - index.leading_zeros()) as usize;
    (segment, (index - first_index(segment)) as usize)
}

/// The first index of `segment`: 0, 1, 2, 4, 8, ...
fn first_index(segment: usize) -> u32 {
    ((1u64 << segment) >> 1) as u32
}

impl SymbolStore {
    /// An empty store of `symbol_size`-byte symbols; allocates nothing.
    pub(super) fn new(symbol_size: usize) -> SymbolStore {
        SymbolStore {
            symbol_size,
            segments: std::array::from_fn(|_| Box::default()),
            made: 0,
            free: Vec::new(),
        }
    }

    /// Symbols handed out and not given back.
    pub(super) fn held(&self) -> usize {
        self.made as usize - self.free.len()
    }

    /// A symbol's index, its bytes whatever they were last (zero when new).
    pub(super) fn take(&mut self) -> u32 {
        if let Some(index) = self.free.pop() {
            return index;
        }
        let index = self.made;
        let (segment, _) = locate(index);
        if self.segments[segment].is_empty() {
            let symbols = (first_index(segment + 1) - first_index(segment)) as usize;
            self.segments[segment] = vec![0; symbols * self.symbol_size].into_boxed_slice();
        }
        self.made += 1;
        index
    }

    /// Returns `index` (from [`take`](Self::take)) for reuse.
    pub(super) fn give_back(&mut self, index: u32) {
        debug_assert!(index < self.made);
        self.free.push(index);
    }

    /// The bytes of symbol `index`.
    pub(super) fn symbol(&self, index: u32) -> &[u8] {
        let (segment, offset) = locate(index);
        let start = offset * self.symbol_size;
        &self.segments[segment][start..start + self.symbol_size]
    }

    /// The bytes of symbol `index`, to write.
    pub(super) fn symbol_mut(&mut self, index: u32) -> &mut [u8] {
        let (segment, offset) = locate(index);
        let start = offset * self.symbol_size;
        &mut self.segments[segment][start..start + self.symbol_size]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_map_to_doubling_segments() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(1), (1, 0));
        assert_eq!(locate(2), (2, 0));
        assert_eq!(locate(3), (2, 1));
        assert_eq!(locate(4), (3, 0));
        assert_eq!(locate(7), (3, 3));
        assert_eq!(locate(u32::MAX), (32, (u32::MAX - (1 << 31)) as usize));
    }

    #[test]
    fn symbols_keep_their_bytes_and_are_reused() {
        let mut store = SymbolStore::new(3);
        let indices: Vec<u32> = (0..10).map(|_| store.take()).collect();
        assert_eq!(indices, (0..10).collect::<Vec<_>>());
        for &index in &indices {
            store.symbol_mut(index).fill(index as u8);
        }
        for &index in &indices {
            assert_eq!(store.symbol(index), &[index as u8; 3]);
        }
        store.give_back(4);
        store.give_back(7);
        assert_eq!(store.held(), 8);
        assert_eq!(store.take(), 7);
        assert_eq!(store.take(), 4);
        assert_eq!(store.take(), 10);
        // Sixteen symbols' room for eleven: segments 0..=4.
        let allocated: usize = store.segments.iter().map(|s| s.len()).sum();
        assert_eq!(allocated, 16 * 3);
    }
}
