//! A few values kept by key, for codecs whose per-shape setup (a Reed-Solomon
//! matrix inverse, a RaptorQ plan or generator) costs more than a block's
//! work, while a sender's blocks mostly repeat a few shapes.

use std::collections::VecDeque;

/// The values of the [`CAPACITY`](Self::CAPACITY) keys asked for most
/// recently: a key used again moves to the back, and the one unused the
/// longest is dropped to make room for a new key.
#[derive(Debug, Clone)]
pub(crate) struct Recent<K, V> {
    entries: VecDeque<(K, V)>,
}

impl<K, V> Default for Recent<K, V> {
    fn default() -> Self {
        Recent {
            entries: VecDeque::new(),
        }
    }
}

impl<K: PartialEq, V> Recent<K, V> {
    /// Values kept.
    pub(crate) const CAPACITY: usize = 8;

    /// The value for `key`, made by `make` on first use (an error is
    /// returned and nothing kept).
    pub(crate) fn get_or_try_insert<E>(
        &mut self,
        key: K,
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<&mut V, E> {
        let position = match self.promote(&key) {
            Some(position) => position,
            None => {
                let value = make()?;
                if self.entries.len() == Self::CAPACITY {
                    self.entries.pop_front();
                }
                self.entries.push_back((key, value));
                self.entries.len() - 1
            }
        };
        Ok(&mut self.entries[position].1)
    }

    /// The value kept for `key`, if any (it becomes the most recent).
    pub(crate) fn get(&mut self, key: &K) -> Option<&V> {
        let position = self.promote(key)?;
        Some(&self.entries[position].1)
    }

    /// Moves `key`'s entry to the back; its new position.
    fn promote(&mut self, key: &K) -> Option<usize> {
        let position = self.entries.iter().position(|(k, _)| k == key)?;
        let entry = self.entries.remove(position)?;
        self.entries.push_back(entry);
        Some(self.entries.len() - 1)
    }

    /// Number of values kept.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Recent;

    #[test]
    fn keeps_the_last_keys_and_makes_each_once() {
        let mut recent: Recent<u32, u32> = Recent::default();
        let mut made = 0;
        for key in [1, 2, 1, 1, 2] {
            let value = recent.get_or_try_insert(key, || -> Result<u32, ()> {
                made += 1;
                Ok(key * 10)
            });
            assert_eq!(value.copied(), Ok(key * 10));
        }
        assert_eq!(made, 2);
        assert_eq!(recent.get(&2), Some(&20));
        assert_eq!(recent.get(&3), None);
        // Key 1 is used between the newcomers, so it outlives key 2.
        for key in 100..100 + Recent::<u32, u32>::CAPACITY as u32 - 1 {
            let _ = recent.get_or_try_insert(key, || -> Result<u32, ()> { Ok(key) });
            assert_eq!(recent.get(&1), Some(&10));
        }
        assert_eq!(recent.get(&2), None);
        for key in 0..20 {
            let _ = recent.get_or_try_insert(key, || -> Result<u32, ()> { Ok(key) });
        }
        assert_eq!(recent.len(), Recent::<u32, u32>::CAPACITY);
        assert!(recent.get_or_try_insert(99, || Err("refused")).is_err());
        assert_eq!(recent.len(), Recent::<u32, u32>::CAPACITY);
    }
}
