//! Every error of the GF(2^16) code with its context, and the promise that
//! arbitrary input gives `Ok` or an error, never a panic.

use fec_core::rs16::{self, ReedSolomonDecoder, ReedSolomonEncoder};
use fec_core::Error;
use quickcheck::{Arbitrary, Gen, QuickCheck};

fn unsupported(original_count: usize, recovery_count: usize) -> Error {
    Error::Rs16UnsupportedShardCount {
        original_count,
        recovery_count,
    }
}

#[test]
fn shard_counts_follow_reed_solomon_simd() {
    for (k, m) in [
        (0, 1),
        (1, 0),
        (0, 0),
        (65536, 1),
        (1, 65536),
        (32769, 32768),
        (32768, 32769),
        (40000, 30000),
        (usize::MAX, 1),
        (1, usize::MAX),
    ] {
        assert!(!ReedSolomonEncoder::supports(k, m), "{k}:{m}");
        assert!(!reed_solomon_simd::ReedSolomonEncoder::supports(k, m));
        assert_eq!(
            ReedSolomonEncoder::new(k, m, 64).unwrap_err(),
            unsupported(k, m)
        );
        assert_eq!(
            ReedSolomonDecoder::new(k, m, 64).unwrap_err(),
            unsupported(k, m)
        );
        assert_eq!(
            rs16::encode(k, m, [[0u8; 2]]).unwrap_err(),
            unsupported(k, m)
        );
        let none: [(usize, [u8; 2]); 0] = [];
        assert_eq!(
            rs16::decode(k, m, none, none).unwrap_err(),
            unsupported(k, m)
        );
    }
    for (k, m) in [
        (1, 1),
        (32768, 32768),
        (65535, 1),
        (1, 65535),
        (61440, 4096),
        (4096, 61440),
        (34000, 2000),
    ] {
        assert!(ReedSolomonEncoder::supports(k, m), "{k}:{m}");
        assert!(ReedSolomonDecoder::supports(k, m), "{k}:{m}");
        assert!(reed_solomon_simd::ReedSolomonEncoder::supports(k, m));
    }
    // Agree with the oracle on a sweep across the limit.
    for k in (1..=65535).step_by(997) {
        for m in [1, 2, 1000, 4096, 32767, 32768, 32769, 65535 - k, 65536 - k] {
            assert_eq!(
                ReedSolomonEncoder::supports(k, m),
                reed_solomon_simd::ReedSolomonEncoder::supports(k, m),
                "{k}:{m}"
            );
        }
    }
}

#[test]
fn shard_sizes_must_be_even_and_non_zero() {
    for bytes in [0, 1, 3, 63, 65, 1281] {
        let error = Error::Rs16InvalidShardSize { shard_bytes: bytes };
        assert_eq!(ReedSolomonEncoder::new(3, 2, bytes).unwrap_err(), error);
        assert_eq!(ReedSolomonDecoder::new(3, 2, bytes).unwrap_err(), error);
        let shards = vec![vec![0u8; bytes]; 3];
        assert_eq!(rs16::encode(3, 2, &shards).unwrap_err(), error);
        assert_eq!(
            rs16::decode(3, 2, [(0, &shards[0])], [(0, &shards[1]), (1, &shards[2])]).unwrap_err(),
            error
        );
    }
}

#[test]
fn encoder_errors() {
    let mut encoder = ReedSolomonEncoder::new(3, 2, 4).unwrap();
    assert_eq!(
        encoder.add_original_shard([0u8; 6]).unwrap_err(),
        Error::Rs16DifferentShardSize {
            kind: "original",
            index: 0,
            shard_bytes: 4,
            got: 6
        }
    );
    encoder.add_original_shard([1u8; 4]).unwrap();
    assert_eq!(
        encoder.encode().unwrap_err(),
        Error::Rs16TooFewOriginalShards {
            original_count: 3,
            original_received: 1
        }
    );
    // The shard given before the error is kept.
    encoder.add_original_shard([2u8; 4]).unwrap();
    encoder.add_original_shard([3u8; 4]).unwrap();
    assert_eq!(
        encoder.add_original_shard([4u8; 4]).unwrap_err(),
        Error::Rs16TooManyOriginalShards { original_count: 3 }
    );
    let recovery: Vec<Vec<u8>> = encoder
        .encode()
        .unwrap()
        .recovery_iter()
        .map(<[u8]>::to_vec)
        .collect();
    assert_eq!(
        recovery,
        rs16::encode(3, 2, [[1u8; 4], [2; 4], [3; 4]]).unwrap()
    );
    // After an encode the encoder starts over.
    assert!(encoder.encode().is_err());

    assert_eq!(
        rs16::encode(3, 2, [[0u8; 4]; 2]).unwrap_err(),
        Error::Rs16TooFewOriginalShards {
            original_count: 3,
            original_received: 2
        }
    );
    let none: [[u8; 4]; 0] = [];
    assert_eq!(
        rs16::encode(3, 2, none).unwrap_err(),
        Error::Rs16TooFewOriginalShards {
            original_count: 3,
            original_received: 0
        }
    );
    assert_eq!(
        rs16::encode(3, 2, [[0u8; 4]; 4]).unwrap_err(),
        Error::Rs16TooManyOriginalShards { original_count: 3 }
    );
    assert_eq!(
        rs16::encode(3, 2, [vec![0u8; 4], vec![0; 4], vec![0; 2]]).unwrap_err(),
        Error::Rs16DifferentShardSize {
            kind: "original",
            index: 2,
            shard_bytes: 4,
            got: 2
        }
    );
    assert!(encoder.reset(0, 1, 4).is_err());
    encoder.reset(1, 1, 2).unwrap();
    encoder.add_original_shard([7u8, 9]).unwrap();
    assert_eq!(encoder.encode().unwrap().recovery(0), Some(&[7u8, 9][..]));
}

#[test]
fn decoder_errors() {
    let mut decoder = ReedSolomonDecoder::new(3, 2, 4).unwrap();
    assert_eq!(
        decoder.add_original_shard(3, [0u8; 4]).unwrap_err(),
        Error::Rs16OriginalIndex {
            index: 3,
            original_count: 3
        }
    );
    assert_eq!(
        decoder.add_recovery_shard(2, [0u8; 4]).unwrap_err(),
        Error::Rs16RecoveryIndex {
            index: 2,
            recovery_count: 2
        }
    );
    assert_eq!(
        decoder.add_recovery_shard(1, [0u8; 2]).unwrap_err(),
        Error::Rs16DifferentShardSize {
            kind: "recovery",
            index: 1,
            shard_bytes: 4,
            got: 2
        }
    );
    decoder.add_original_shard(0, [1u8; 4]).unwrap();
    assert_eq!(
        decoder.add_original_shard(0, [1u8; 4]).unwrap_err(),
        Error::Rs16DuplicateOriginalIndex { index: 0 }
    );
    decoder.add_recovery_shard(1, [1u8; 4]).unwrap();
    assert_eq!(
        decoder.add_recovery_shard(1, [1u8; 4]).unwrap_err(),
        Error::Rs16DuplicateRecoveryIndex { index: 1 }
    );
    assert_eq!(
        decoder.decode().unwrap_err(),
        Error::Rs16NotEnoughShards {
            original_count: 3,
            original_received: 1,
            recovery_received: 1
        }
    );
    // Shards survive a failed decode; one more is enough.
    let original = [[1u8; 4], [5; 4], [9; 4]];
    let recovery = rs16::encode(3, 2, original).unwrap();
    let mut decoder = ReedSolomonDecoder::new(3, 2, 4).unwrap();
    decoder.add_original_shard(0, original[0]).unwrap();
    decoder.add_recovery_shard(1, &recovery[1]).unwrap();
    assert!(decoder.decode().is_err());
    decoder.add_recovery_shard(0, &recovery[0]).unwrap();
    let result = decoder.decode().unwrap();
    assert_eq!(result.restored_original(1), Some(&original[1][..]));
    assert_eq!(result.restored_original(2), Some(&original[2][..]));
    assert_eq!(result.restored_original(0), None);
    assert_eq!(result.restored_original(3), None);
    assert_eq!(result.restored_original_iter().count(), 2);
}

#[test]
fn one_shot_decode_errors() {
    let original = [[1u8; 4], [5; 4], [9; 4]];
    let recovery = rs16::encode(3, 2, original).unwrap();
    let r = |i: usize| (i, recovery[i].clone());
    let o = |i: usize| (i, original[i].to_vec());
    assert_eq!(
        rs16::decode(3, 2, [o(0), o(0)], [r(0)]).unwrap_err(),
        Error::Rs16DuplicateOriginalIndex { index: 0 }
    );
    assert_eq!(
        rs16::decode(3, 2, [o(0)], [r(1), r(1)]).unwrap_err(),
        Error::Rs16DuplicateRecoveryIndex { index: 1 }
    );
    assert_eq!(
        rs16::decode(3, 2, [(7, original[0].to_vec())], [r(0), r(1)]).unwrap_err(),
        Error::Rs16OriginalIndex {
            index: 7,
            original_count: 3
        }
    );
    assert_eq!(
        rs16::decode(3, 2, [o(0)], [r(0), (9, recovery[1].clone())]).unwrap_err(),
        Error::Rs16RecoveryIndex {
            index: 9,
            recovery_count: 2
        }
    );
    assert_eq!(
        rs16::decode(3, 2, [o(0)], [r(0)]).unwrap_err(),
        Error::Rs16NotEnoughShards {
            original_count: 3,
            original_received: 1,
            recovery_received: 1
        }
    );
    let none: [(usize, Vec<u8>); 0] = [];
    assert_eq!(
        rs16::decode(3, 2, none.clone(), none.clone()).unwrap_err(),
        Error::Rs16NotEnoughShards {
            original_count: 3,
            original_received: 0,
            recovery_received: 0
        }
    );
    // The size comes from the first recovery shard, else the first original.
    assert_eq!(
        rs16::decode(3, 2, [o(0), o(1)], [(0, vec![0u8; 6])]).unwrap_err(),
        Error::Rs16DifferentShardSize {
            kind: "original",
            index: 0,
            shard_bytes: 6,
            got: 4
        }
    );
    assert_eq!(
        rs16::decode(3, 2, [o(0), o(1), (2, vec![0u8; 2])], none.clone()).unwrap_err(),
        Error::Rs16DifferentShardSize {
            kind: "original",
            index: 2,
            shard_bytes: 4,
            got: 2
        }
    );
    // Nothing lost: nothing to restore, and every shard is still checked
    // (reed-solomon-simd returns early here without looking).
    assert!(rs16::decode(3, 2, [o(0), o(1), o(2)], none.clone())
        .unwrap()
        .is_empty());
    assert_eq!(
        rs16::decode(3, 2, [o(0), o(1), o(1)], none).unwrap_err(),
        Error::Rs16DuplicateOriginalIndex { index: 1 }
    );
}

/// A decode call with arbitrary counts, indexes and sizes.
#[derive(Clone, Debug)]
struct AnyDecode {
    k: usize,
    m: usize,
    original: Vec<(usize, Vec<u8>)>,
    recovery: Vec<(usize, Vec<u8>)>,
}

impl Arbitrary for AnyDecode {
    fn arbitrary(g: &mut Gen) -> Self {
        let small = |g: &mut Gen| usize::arbitrary(g) % 12;
        let k = small(g);
        let m = small(g);
        let len = 2 * (usize::arbitrary(g) % 4) + usize::from(u8::arbitrary(g) % 8 == 0);
        let shards = |g: &mut Gen| -> Vec<(usize, Vec<u8>)> {
            (0..small(g))
                .map(|_| {
                    let odd = u8::arbitrary(g) % 10 == 0;
                    let size = if odd { small(g) } else { len };
                    (small(g), vec![u8::arbitrary(g); size])
                })
                .collect()
        };
        AnyDecode {
            k,
            m,
            original: shards(g),
            recovery: shards(g),
        }
    }
}

#[test]
fn arbitrary_input_never_panics() {
    fn decode(d: AnyDecode) -> bool {
        let _ = rs16::decode(d.k, d.m, d.original.clone(), d.recovery.clone());
        let _ = rs16::encode(d.k, d.m, d.original.iter().map(|(_, s)| s));
        true
    }
    QuickCheck::new()
        .tests(2000)
        .quickcheck(decode as fn(AnyDecode) -> bool);
}
