//! Shared loss-trace harness of the pipeline tests: self-describing ADUs,
//! one run of an encoder and a decoder over a loss model, and the checks
//! every scheme must pass.
#![allow(dead_code)]

use std::collections::HashSet;

use bytes::Bytes;
use fec_core::pipeline::loss::LossModel;
use fec_core::pipeline::{Adu, Config, Counters, Decoder, Encoder};

/// A deterministic pseudo-random u64 for (a, b).
pub fn mix(a: u64, b: u64) -> u64 {
    let mut z = a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b.wrapping_add(0x632b_e59b_d9b4_e019);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// ADU number `index` of a run with `seed`: 8 bytes of index, then
/// pseudo-random bytes; length in `min_len..=max_len`.
pub fn make_adu(seed: u64, index: u64, min_len: usize, max_len: usize) -> (u8, Bytes) {
    let len = min_len.max(8) + (mix(seed, index) as usize) % (max_len - min_len.max(8) + 1);
    let mut data = index.to_be_bytes().to_vec();
    data.extend((8..len).map(|j| mix(seed ^ index, j as u64) as u8));
    ((index % 5) as u8, Bytes::from(data))
}

/// Checks that `adu` is exactly ADU number n of the run (n read from its
/// first bytes), and returns n.
pub fn check_adu(seed: u64, adu: &Adu, min_len: usize, max_len: usize, sent: u64) -> u64 {
    assert!(adu.data.len() >= 8, "garbage handed out: {adu:?}");
    let index = u64::from_be_bytes(adu.data[..8].try_into().unwrap());
    assert!(index < sent, "garbage handed out (index {index})");
    let (flow, expected) = make_adu(seed, index, min_len, max_len);
    assert_eq!(adu.flow, flow, "flow of ADU {index}");
    assert_eq!(adu.data, expected, "bytes of ADU {index}");
    index
}

/// One packet as it went over the simulated link.
#[derive(Clone, Debug)]
pub struct Sent {
    pub bytes: Bytes,
    /// Source: the ADU index; repair: None.
    pub adu: Option<u64>,
    pub lost: bool,
}

/// What came out of a run.
pub struct Outcome {
    pub packets: Vec<Sent>,
    /// Per ADU: delivered directly or recovered.
    pub delivered: Vec<bool>,
    pub recovered: Vec<bool>,
    pub encoder: Counters,
    pub decoder: Counters,
}

impl Outcome {
    pub fn lost_sources(&self) -> usize {
        self.packets
            .iter()
            .filter(|p| p.lost && p.adu.is_some())
            .count()
    }

    pub fn residual(&self) -> usize {
        self.delivered.iter().filter(|&&d| !d).count()
    }

    pub fn recovered_count(&self) -> usize {
        self.recovered.iter().filter(|&&r| r).count()
    }
}

/// Sends `count` ADUs: after every `every` sources, `repairs` repair packets
/// (`flush` at the end), each packet dropped as `loss` says; the decoder
/// sees the survivors in order, or reordered when `shuffle_seed` is set,
/// each delivered ADU checked byte for byte.
pub struct Run {
    pub seed: u64,
    pub count: u64,
    pub every: usize,
    pub repairs: usize,
    pub min_len: usize,
    pub max_len: usize,
    pub shuffle_seed: Option<u64>,
    pub duplicate: bool,
    /// Garbage packets (see [`garbage`]) after every this many packets.
    pub garbage_every: Option<usize>,
}

impl Run {
    pub fn new(seed: u64, count: u64, every: usize, repairs: usize) -> Self {
        Run {
            seed,
            count,
            every,
            repairs,
            min_len: 8,
            max_len: 1200,
            shuffle_seed: None,
            duplicate: false,
            garbage_every: None,
        }
    }

    pub fn go(&self, config: &Config, loss: &mut dyn LossModel) -> Outcome {
        let mut encoder = Encoder::new(config).unwrap();
        let mut decoder = Decoder::new(config).unwrap();
        let mut packets = Vec::new();
        for index in 0..self.count {
            let (flow, adu) = make_adu(self.seed, index, self.min_len, self.max_len);
            let packet = encoder.protect(flow, adu.clone()).unwrap();
            assert_eq!(packet.adu(), &adu);
            assert!(fec_core::pipeline::wire::is_fec_packet(packet.header()[0]));
            packets.push(Sent {
                bytes: packet.to_bytes(),
                adu: Some(index),
                lost: false,
            });
            if encoder.pending() == self.every {
                for bytes in encoder.repair(self.repairs).unwrap() {
                    packets.push(Sent {
                        bytes,
                        adu: None,
                        lost: false,
                    });
                }
            }
        }
        for bytes in encoder.flush().unwrap() {
            packets.push(Sent {
                bytes,
                adu: None,
                lost: false,
            });
        }
        for packet in &mut packets {
            packet.lost = loss.lost();
        }
        let mut order: Vec<usize> = (0..packets.len()).filter(|&i| !packets[i].lost).collect();
        if let Some(seed) = self.shuffle_seed {
            // Local reordering: swap neighbours within a distance of 8.
            for i in 0..order.len() {
                let j = i + (mix(seed, i as u64) % 8) as usize;
                if j < order.len() {
                    order.swap(i, j);
                }
            }
        }
        let mut delivered = vec![false; self.count as usize];
        let mut recovered = vec![false; self.count as usize];
        let mut seen = HashSet::new();
        let junk = garbage(self.seed, order.len());
        let mut injected = 0;
        for (step, &i) in order.iter().enumerate() {
            if self.garbage_every.is_some_and(|every| step % every == 0) {
                assert!(
                    decoder.receive(junk[step].clone()).is_err(),
                    "garbage accepted: {:?}",
                    junk[step]
                );
                injected += 1;
            }
            let times = if self.duplicate && mix(self.seed, i as u64).is_multiple_of(7) {
                2
            } else {
                1
            };
            for _ in 0..times {
                let direct = decoder.receive(packets[i].bytes.clone()).unwrap();
                if let Some(adu) = direct {
                    let index = check_adu(self.seed, &adu, self.min_len, self.max_len, self.count);
                    assert_eq!(Some(index), packets[i].adu);
                    assert!(seen.insert(index), "ADU {index} handed out twice");
                    delivered[index as usize] = true;
                }
                while let Some(adu) = decoder.poll_recovered() {
                    let index = check_adu(self.seed, &adu, self.min_len, self.max_len, self.count);
                    assert!(seen.insert(index), "ADU {index} handed out twice");
                    delivered[index as usize] = true;
                    recovered[index as usize] = true;
                }
            }
        }
        let outcome = Outcome {
            packets,
            delivered,
            recovered,
            encoder: encoder.counters(),
            decoder: decoder.counters(),
        };
        assert_eq!(outcome.decoder.rejected, injected);
        assert_eq!(outcome.encoder.sources_sent, self.count);
        for (i, r) in outcome.recovered.iter().enumerate() {
            // Reordered, a source can arrive after repairs rebuilt it.
            if *r && self.shuffle_seed.is_none() {
                assert!(
                    outcome
                        .packets
                        .iter()
                        .any(|p| p.adu == Some(i as u64) && p.lost),
                    "recovered an ADU that was never lost"
                );
            }
        }
        outcome
    }
}

/// Random garbage and plausible-looking malformed packets.
pub fn garbage(seed: u64, n: usize) -> Vec<Bytes> {
    (0..n as u64)
        .map(|i| {
            let r = mix(seed, i);
            let len = (r % 1600) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|j| mix(r, j as u64) as u8).collect();
            match (r >> 32) % 4 {
                // A valid first byte and a plausible second, truncated or with
                // an odd-sized payload.
                0 if !bytes.is_empty() => {
                    bytes[0] = fec_core::pipeline::wire::FIRST_BYTE;
                    if bytes.len() > 1 {
                        bytes[1] = [0x10, 0x11, 0x20, 0x21, 0x30, 0x31, 0x40, 0x41, 0x12, 0x51]
                            [(r >> 40) as usize % 10];
                    }
                    bytes.truncate(((r >> 48) % 6) as usize);
                }
                // A QUIC-looking packet.
                1 if !bytes.is_empty() => bytes[0] |= 0x40,
                // Another wire version.
                2 if !bytes.is_empty() => bytes[0] = 0x80 | ((r >> 40) as u8 % 64).max(2),
                _ => {}
            }
            Bytes::from(bytes)
        })
        .collect()
}

/// Per block of a block code: (sources, received sources + repairs, lost source ADUs).
pub fn blocks(outcome: &Outcome) -> Vec<(usize, usize, Vec<u64>)> {
    use fec_core::pipeline::wire::Header;
    use std::collections::BTreeMap;
    let mut by_block: BTreeMap<u32, (usize, usize, Vec<u64>)> = BTreeMap::new();
    let mut generation = 0u32;
    let mut last_block = None;
    for packet in &outcome.packets {
        let (header, _) = Header::parse(&packet.bytes).unwrap();
        let id = match header {
            Header::RsSource { block, .. } | Header::RsRepair { block, .. } => u32::from(block),
            Header::RaptorqSource { block, .. } | Header::RaptorqRepair { block, .. } => {
                u32::from(block)
            }
            other => panic!("not a block code: {other:?}"),
        };
        // Block ids wrap; the encoder numbers them in order.
        if last_block.is_some_and(|last| id < last) {
            generation += 1;
        }
        last_block = Some(id);
        let entry = by_block.entry((generation << 16) | id).or_default();
        if let Some(adu) = packet.adu {
            entry.0 += 1;
            if packet.lost {
                entry.2.push(adu);
            }
        }
        if !packet.lost {
            entry.1 += 1;
        }
    }
    by_block.into_values().collect()
}

/// What a block code must do: a block with at least `k + overhead` packets
/// received is fully delivered; one with fewer than k loses exactly its lost
/// sources. Returns (blocks decodable, blocks not).
pub fn check_block_code(outcome: &Outcome, overhead: usize) -> (usize, usize) {
    let (mut good, mut bad) = (0, 0);
    for (k, received, lost) in blocks(outcome) {
        if received >= k + overhead {
            good += 1;
            for adu in &lost {
                assert!(
                    outcome.delivered[*adu as usize],
                    "ADU {adu} of a decodable block ({received} of {k}) missing"
                );
            }
        } else if received < k {
            bad += 1;
            for adu in &lost {
                assert!(
                    !outcome.delivered[*adu as usize],
                    "ADU {adu} recovered from fewer than k packets"
                );
            }
        }
    }
    (good, bad)
}
