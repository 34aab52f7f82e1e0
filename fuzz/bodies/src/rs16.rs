//! GF(2^16) Reed-Solomon: the reusable decoder restores exactly the encoded
//! originals from any sufficient set of shards, whichever decode route the
//! loss takes, every backend encodes the scalar backend's bytes, and every
//! malformed call is a clear error that leaves the decoder usable.

use arbitrary::{Arbitrary, Unstructured};
use fec_core::gf256::{Backend, Engine};
use fec_core::rs16::{ReedSolomonDecoder, ReedSolomonEncoder};
use fec_core::Error;

use crate::seed::SplitMix;

#[derive(Arbitrary, Debug)]
struct Input {
    original_count: u16,
    recovery_count: u16,
    /// Up to 2000 shards of each kind; otherwise up to 64 + 64, which keeps
    /// most executions fast.
    wide: bool,
    /// Half the shard size, less one (sizes are even and non-zero).
    half_len: u16,
    /// 0 asks for an odd or zero shard size instead, which must be refused.
    bad_size: u8,
    backend: u8,
    seed: u64,
    rounds: Vec<Round>,
}

#[derive(Arbitrary, Debug)]
struct Round {
    /// How many originals are lost: modulo `min(k, m) + 2`, so now and then
    /// one more than the recovery shards can restore.
    lost_originals: u16,
    /// How many recovery shards are lost, modulo `m + 1`.
    lost_recovery: u16,
    /// Which ones (a seeded shuffle).
    seed: u64,
    damage: Option<Damage>,
}

/// A malformed call in the middle of a round: it must be refused with an
/// error and change nothing.
#[derive(Arbitrary, Debug)]
enum Damage {
    /// A shard of another length.
    Length { len: u16 },
    /// An original index past the count.
    OriginalIndex { past: u16 },
    /// A recovery index past the count.
    RecoveryIndex { past: u16 },
    /// A shard given twice.
    Duplicate,
}

/// The property: see the module docs.
pub fn decode(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let (k, m) = if input.wide {
        (
            1 + usize::from(input.original_count) % 2000,
            1 + usize::from(input.recovery_count) % 2000,
        )
    } else {
        (
            1 + usize::from(input.original_count) % 64,
            1 + usize::from(input.recovery_count) % 64,
        )
    };
    let supported = Backend::supported();
    let backend = supported[usize::from(input.backend) % supported.len()];
    let Some(engine) = Engine::new(backend) else {
        panic!("{backend} is listed as supported but has no engine");
    };
    if input.bad_size == 0 {
        // Odd, or zero when `half_len` is even.
        let shard_len = if input.half_len % 2 == 1 {
            2 * usize::from(input.half_len % 350) + 1
        } else {
            0
        };
        assert!(
            matches!(
                ReedSolomonEncoder::with_engine(k, m, shard_len, engine),
                Err(Error::Rs16InvalidShardSize { .. })
            ),
            "shard size {shard_len} accepted"
        );
        return;
    }
    let shard_len = 2 * (1 + usize::from(input.half_len) % 350);
    let what = format!("{k}:{m}, {shard_len} bytes, {backend}");

    let mut random = SplitMix::new(input.seed);
    let original: Vec<Vec<u8>> = (0..k).map(|_| random.bytes(shard_len)).collect();
    let recovery = encode(k, m, shard_len, engine, &original);
    if backend != Backend::Scalar {
        let scalar = Engine::new(Backend::Scalar).expect("the scalar engine always exists");
        assert!(
            recovery == encode(k, m, shard_len, scalar, &original),
            "{what}: recovery differs from the scalar backend's"
        );
    }

    let mut decoder =
        ReedSolomonDecoder::with_engine(k, m, shard_len, engine).expect("a shape the encoder took");
    for round in input.rounds.iter().take(8) {
        let mut pick = SplitMix::new(round.seed);
        let mut kept_original = survivors(
            k,
            usize::from(round.lost_originals) % (k.min(m) + 2),
            &mut pick,
        );
        let kept_recovery = survivors(m, usize::from(round.lost_recovery) % (m + 1), &mut pick);
        for (i, shard) in original.iter().enumerate() {
            if kept_original[i] {
                decoder
                    .add_original_shard(i, shard)
                    .expect("a valid original");
            }
        }
        for (i, shard) in recovery.iter().enumerate() {
            if kept_recovery[i] {
                decoder
                    .add_recovery_shard(i, shard)
                    .expect("a valid recovery shard");
            }
        }
        if let Some(damage) = &round.damage {
            let lost = kept_original.iter().position(|&kept| !kept);
            let added = refuse(&mut decoder, damage, (k, m), lost, &original, &what);
            if let Some(i) = added {
                kept_original[i] = true;
            }
        }
        let present = kept_original
            .iter()
            .chain(&kept_recovery)
            .filter(|&&p| p)
            .count();
        let result = decoder.decode();
        if present < k {
            assert!(
                matches!(result, Err(Error::Rs16NotEnoughShards { .. })),
                "{what}: {present} shards decoded"
            );
            // The shards stay; the next round starts from a clean decoder.
            decoder
                .reset(k, m, shard_len)
                .expect("the same shape again");
            continue;
        }
        let result = result.expect("enough shards");
        let restored: Vec<(usize, &[u8])> = result.restored_original_iter().collect();
        let lost: Vec<usize> = (0..k).filter(|&i| !kept_original[i]).collect();
        assert_eq!(
            restored.iter().map(|r| r.0).collect::<Vec<_>>(),
            lost,
            "{what}: restored the wrong set"
        );
        for (i, shard) in restored {
            assert!(shard == original[i], "{what}: original {i} restored wrong");
        }
    }
}

/// `count` flags, `lost` of them (at most all) false, chosen by `pick`.
fn survivors(count: usize, lost: usize, pick: &mut SplitMix) -> Vec<bool> {
    let mut kept = vec![true; count];
    let mut order: Vec<usize> = (0..count).collect();
    // Fisher-Yates on the seeded bytes.
    for i in (1..count).rev() {
        let bytes = pick.bytes(8);
        let word = u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8]));
        order.swap(i, (word % (i as u64 + 1)) as usize);
    }
    for &i in order.iter().take(lost) {
        kept[i] = false;
    }
    kept
}

fn encode(k: usize, m: usize, len: usize, engine: Engine, original: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut encoder = ReedSolomonEncoder::with_engine(k, m, len, engine).expect("a valid shape");
    for shard in original {
        encoder.add_original_shard(shard).expect("a valid original");
    }
    let result = encoder.encode().expect("every original added");
    result.recovery_iter().map(<[u8]>::to_vec).collect()
}

/// Makes one malformed call and asserts it is refused with the right error
/// (`lost`: an original not given yet). Returns the original it added when
/// the call turned out valid.
fn refuse(
    decoder: &mut ReedSolomonDecoder,
    damage: &Damage,
    (k, m): (usize, usize),
    lost: Option<usize>,
    original: &[Vec<u8>],
    what: &str,
) -> Option<usize> {
    match *damage {
        Damage::Length { len } => {
            let len = usize::from(len) % 700;
            let i = lost?;
            if len != original[i].len() {
                let result = decoder.add_original_shard(i, vec![0; len]);
                assert!(
                    matches!(result, Err(Error::Rs16DifferentShardSize { .. })),
                    "{what}: a {len}-byte original {i}: {result:?}"
                );
            }
            None
        }
        Damage::OriginalIndex { past } => {
            let index = k + usize::from(past);
            let result = decoder.add_original_shard(index, &original[0]);
            assert!(
                matches!(result, Err(Error::Rs16OriginalIndex { .. })),
                "{what}: original index {index}: {result:?}"
            );
            None
        }
        Damage::RecoveryIndex { past } => {
            let index = m + usize::from(past);
            let result = decoder.add_recovery_shard(index, &original[0]);
            assert!(
                matches!(result, Err(Error::Rs16RecoveryIndex { .. })),
                "{what}: recovery index {index}: {result:?}"
            );
            None
        }
        Damage::Duplicate => {
            // Original 0 was either given (then this is a duplicate) or
            // lost (then giving it is valid).
            let result = decoder.add_original_shard(0, &original[0]);
            match lost {
                Some(0) => {
                    result.expect("a lost original given late");
                    Some(0)
                }
                _ => {
                    assert!(
                        matches!(result, Err(Error::Rs16DuplicateOriginalIndex { index: 0 })),
                        "{what}: original 0 twice: {result:?}"
                    );
                    None
                }
            }
        }
    }
}
