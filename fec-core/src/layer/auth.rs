//! Authenticated FEC datagrams: a trailer on every datagram the layer makes,
//! keyed per connection and direction, and a replay window.
//!
//! With [`Keys`] set (see [`super::Layer::set_keys`]), every datagram the
//! layer makes or changes (source and repair packets, receiver reports, a
//! plain ADU behind its prefix byte) ends with a [`TRAILER_LEN`]-byte
//! trailer: a 32-bit datagram number, big-endian, then a 16-byte tag,
//! AEGISMAC-128X2 (draft-irtf-cfrg-aegis-aead, "AEGIS as a Message
//! Authentication Code") over everything before the tag (the datagram and
//! its number), keyed with the first [`MAC_KEY_LEN`] bytes of the sending
//! direction's key, nonce all zeros. A receiver checks the tag, in constant
//! time, before the datagram touches any decoder or policy state; a
//! datagram that fails is counted and dropped. Numbers start at 0 and never
//! repeat under one key (a layer stops adding FEC datagrams before they
//! would wrap). A repair packet or a report whose number was seen before,
//! or is older than the replay window, is ignored. The whole format is in
//! `fec-core/FEC_DATAGRAMS.md`.
//!
//! Why AEGISMAC: of the MACs measured on 1300-byte datagrams (the `mac_*`
//! groups of `benches/benches/layer.rs`), it is the one well under 200 ns
//! a tag, about 75 ns with VAES. HMAC-SHA256 (SHA-NI) and GMAC (AES-GCM with
//! the datagram as associated data, `ring` and RustCrypto alike, which hash
//! associated data 16 bytes at a time) cost 0.8 to 1 µs. Unlike GMAC or
//! Poly1305 it stays a secure MAC when its nonce repeats, which it does
//! here by design: the datagram number is authenticated data, not a nonce.

#![forbid(unsafe_code)]

use aegis::aegis128x2::Aegis128X2Mac;

/// AEGISMAC-128X2 with 128-bit tags.
type Mac = Aegis128X2Mac<TAG_LEN>;

/// Bytes of the datagram number.
pub const NUMBER_LEN: usize = 4;
/// Bytes of the authentication tag.
pub const TAG_LEN: usize = 16;
/// Bytes a keyed layer appends to each datagram it makes.
pub const TRAILER_LEN: usize = NUMBER_LEN + TAG_LEN;
/// Datagram numbers a receiver remembers (the replay window).
pub const REPLAY_WINDOW: u32 = 1024;
/// Bytes of a direction's key that key its MAC: the first 16 of 32
/// (AEGIS-128X takes a 128-bit key; the other 16 bytes are not used).
pub const MAC_KEY_LEN: usize = 16;

/// The two keys of one end of a connection, 32 bytes each, derived by the
/// transport (over QUIC: the TLS keying-material exporter, RFC 8446 section
/// 7.5) so that this end's `send` key is the peer's `receive` key.
#[derive(Clone, PartialEq, Eq)]
pub struct Keys {
    /// Key of the datagrams this end sends.
    pub send: [u8; 32],
    /// Key of the datagrams the peer sends.
    pub receive: [u8; 32],
}

impl Keys {
    /// The keys of both ends: the first end sends under `first` and the
    /// second under `second` (returned in that order).
    pub fn pair(first: [u8; 32], second: [u8; 32]) -> (Keys, Keys) {
        (
            Keys {
                send: first,
                receive: second,
            },
            Keys {
                send: second,
                receive: first,
            },
        )
    }
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys { .. }")
    }
}

/// The MAC state of `key`, initialised once: cloning it is all a datagram
/// costs before its bytes are absorbed (no allocation, no key schedule).
fn mac(key: &[u8; 32]) -> Mac {
    let mut mac_key = [0u8; MAC_KEY_LEN];
    mac_key.copy_from_slice(&key[..MAC_KEY_LEN]);
    // `new` is `Init(key, nonce)` with the all-zero nonce.
    Mac::new(&mac_key)
}

/// The sending direction: numbers and tags.
pub(super) struct Sealer {
    /// The keyed state, cloned per datagram.
    mac: Mac,
    next: u64,
}

impl Sealer {
    pub(super) fn new(key: &[u8; 32]) -> Self {
        Sealer {
            mac: mac(key),
            next: 0,
        }
    }

    /// The trailer of `datagram` (its number and tag); `None` once the
    /// numbers are used up.
    pub(super) fn trailer(&mut self, datagram: &[u8]) -> Option<[u8; TRAILER_LEN]> {
        let number = u32::try_from(self.next).ok()?;
        self.next += 1;
        let mut trailer = [0u8; TRAILER_LEN];
        trailer[..NUMBER_LEN].copy_from_slice(&number.to_be_bytes());
        let mut mac = self.mac.clone();
        mac.update(datagram);
        mac.update(&trailer[..NUMBER_LEN]);
        trailer[NUMBER_LEN..].copy_from_slice(&mac.finalize());
        Some(trailer)
    }

    /// Appends the trailer to `datagram`; false (and `datagram` unchanged)
    /// once the numbers are used up.
    #[cfg(test)]
    pub(super) fn seal(&mut self, datagram: &mut Vec<u8>) -> bool {
        let Some(trailer) = self.trailer(datagram) else {
            return false;
        };
        datagram.extend_from_slice(&trailer);
        true
    }
}

/// The receiving direction: tag check and replay window.
pub(super) struct Opener {
    mac: Mac,
    /// Newest number accepted into the window, and a bit per number below
    /// it (bit `i` of word `i / 64`: `newest - i` was seen).
    newest: Option<u32>,
    seen: [u64; (REPLAY_WINDOW / 64) as usize],
}

impl Opener {
    pub(super) fn new(key: &[u8; 32]) -> Self {
        Opener {
            mac: mac(key),
            newest: None,
            seen: [0; (REPLAY_WINDOW / 64) as usize],
        }
    }

    /// Checks `datagram`'s trailer: its body length and number if the tag
    /// is right.
    pub(super) fn open(&self, datagram: &[u8]) -> Option<(usize, u32)> {
        let body = datagram.len().checked_sub(TRAILER_LEN)?;
        let (signed, tag) = datagram.split_at(body + NUMBER_LEN);
        let number = u32::from_be_bytes(signed[body..].try_into().ok()?);
        let tag: &[u8; TAG_LEN] = tag.try_into().ok()?;
        let mut mac = self.mac.clone();
        mac.update(signed);
        // `verify` compares in constant time.
        mac.verify(tag).ok()?;
        Some((body, number))
    }

    /// Marks `number` seen; false if it was seen before or is older than
    /// the window (a replay).
    pub(super) fn first_sight(&mut self, number: u32) -> bool {
        let Some(newest) = self.newest else {
            self.newest = Some(number);
            self.seen = [0; (REPLAY_WINDOW / 64) as usize];
            self.seen[0] = 1;
            return true;
        };
        if number > newest {
            self.shift(number - newest);
            self.newest = Some(number);
            self.seen[0] |= 1;
            return true;
        }
        let age = newest - number;
        if age >= REPLAY_WINDOW {
            return false;
        }
        let (word, bit) = ((age / 64) as usize, age % 64);
        let fresh = self.seen[word] & (1 << bit) == 0;
        self.seen[word] |= 1 << bit;
        fresh
    }

    /// Ages every remembered number by `by`.
    fn shift(&mut self, by: u32) {
        if by >= REPLAY_WINDOW {
            self.seen = [0; (REPLAY_WINDOW / 64) as usize];
            return;
        }
        let (words, bits) = ((by / 64) as usize, by % 64);
        let n = self.seen.len();
        for i in (0..n).rev() {
            let from = i.checked_sub(words);
            let high = from.map_or(0, |f| self.seen[f] << bits);
            let carry = match (from.and_then(|f| f.checked_sub(1)), bits) {
                (Some(f), b) if b > 0 => self.seen[f] >> (64 - b),
                _ => 0,
            };
            self.seen[i] = high | carry;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_datagrams_open_and_tampered_ones_do_not() {
        let key = [9u8; 32];
        let mut sealer = Sealer::new(&key);
        let opener = Opener::new(&key);
        let mut datagram = b"\x81 a repair".to_vec();
        assert!(sealer.seal(&mut datagram));
        assert_eq!(datagram.len(), 10 + TRAILER_LEN);
        assert_eq!(opener.open(&datagram), Some((10, 0)));
        for i in 0..datagram.len() {
            let mut flipped = datagram.clone();
            flipped[i] ^= 1;
            assert_eq!(opener.open(&flipped), None, "bit flip at {i}");
        }
        assert_eq!(opener.open(&datagram[..datagram.len() - 1]), None);
        assert_eq!(opener.open(&datagram[..3]), None);
        assert_eq!(Opener::new(&[8u8; 32]).open(&datagram), None, "another key");
        let mut second = b"\x81 a repair".to_vec();
        assert!(sealer.seal(&mut second));
        assert_ne!(second, datagram, "numbers advance");
        assert_eq!(opener.open(&second), Some((10, 1)));
    }

    #[test]
    fn numbers_stop_at_the_last_one_and_never_wrap() {
        let key = [5u8; 32];
        let mut sealer = Sealer::new(&key);
        sealer.next = u64::from(u32::MAX);
        let mut last = b"\x10 a report".to_vec();
        assert!(sealer.seal(&mut last));
        assert_eq!(Opener::new(&key).open(&last), Some((10, u32::MAX)));
        for _ in 0..3 {
            let mut refused = b"\x10 a report".to_vec();
            assert!(!sealer.seal(&mut refused), "number 0 again");
            assert_eq!(refused, b"\x10 a report", "left as it was");
        }
    }

    #[test]
    fn the_tag_is_aegismac_128x2_under_the_first_half_of_the_key() {
        let key: [u8; 32] = std::array::from_fn(|i| i as u8);
        let mut datagram = b"\x20 plain".to_vec();
        assert!(Sealer::new(&key).seal(&mut datagram));
        let (signed, tag) = datagram.split_at(datagram.len() - TAG_LEN);
        let mac_key: [u8; 16] = key[..16].try_into().unwrap();
        let mut mac = Aegis128X2Mac::<16>::new_with_nonce(&mac_key, &[0; 16]);
        mac.update(signed);
        assert_eq!(mac.finalize(), tag);
        assert_eq!(&signed[signed.len() - NUMBER_LEN..], &[0, 0, 0, 0]);
        // The second half of the key is not used.
        let mut other = key;
        other[16..].fill(0xff);
        assert_eq!(Opener::new(&other).open(&datagram), Some((7, 0)));
    }

    #[test]
    fn the_replay_window_takes_each_number_once() {
        let mut opener = Opener::new(&[1u8; 32]);
        assert!(opener.first_sight(5));
        assert!(!opener.first_sight(5));
        assert!(opener.first_sight(3), "reordered, within the window");
        assert!(!opener.first_sight(3));
        assert!(opener.first_sight(70));
        assert!(opener.first_sight(6));
        assert!(!opener.first_sight(5));
        assert!(opener.first_sight(70 + REPLAY_WINDOW - 1));
        assert!(!opener.first_sight(70), "fell out of the window");
        assert!(opener.first_sight(71), "just inside");
        assert!(!opener.first_sight(71));
        assert!(opener.first_sight(u32::MAX));
        assert!(!opener.first_sight(0));
        // Against a plain set over a pseudo-random walk.
        let mut opener = Opener::new(&[1u8; 32]);
        let mut seen = std::collections::BTreeSet::new();
        let mut newest = 0u32;
        let mut x = 12345u32;
        for _ in 0..20_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let number = (newest + 40).saturating_sub(x % 1500);
            let expected = if number + REPLAY_WINDOW <= newest {
                false
            } else {
                seen.insert(number)
            };
            let fresh = opener.first_sight(number);
            newest = newest.max(number);
            assert_eq!(fresh, expected, "number {number}, newest {newest}");
        }
    }
}
