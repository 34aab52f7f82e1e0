//! Reed-Solomon: parity and reconstruction checked against
//! reed-solomon-erasure and the shards that were actually encoded.

use std::cell::RefCell;
use std::collections::HashMap;

use arbitrary::{Arbitrary, Unstructured};
use fec_core::gf256::{Backend, Engine};
use fec_core::rs::{ReedSolomon, MAX_SHARDS};
use fec_core::Error;

use crate::seed::SplitMix;

#[derive(Arbitrary, Debug)]
struct Input {
    data_shards: u8,
    parity_shards: u8,
    /// Allows up to 256 shards in total (at most 8 parity); otherwise at
    /// most 32 + 32, which keeps most executions fast.
    wide: bool,
    shard_len: u16,
    backend: u8,
    seed: u64,
    rounds: Vec<Round>,
}

#[derive(Arbitrary, Debug)]
struct Round {
    /// Indices (modulo the shard count) of lost shards.
    erased: Vec<u8>,
    data_only: bool,
    damage: Option<Damage>,
}

/// Malformed shard sets: reconstruction must refuse them with an error.
#[derive(Arbitrary, Debug)]
enum Damage {
    /// One present shard gets another length (possibly zero).
    Length { index: u8, len: u16 },
    /// A shard more or a shard fewer than the code has.
    Count { more: bool },
}

/// Parity equals reed-solomon-erasure's, `verify` tells intact from altered
/// shards, `reconstruct` and `reconstruct_data` return exactly the encoded
/// shards whenever at least `data` shards are present and a clear error
/// otherwise, and the decode-plan cache stays bounded.
pub fn reconstruct(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let (data_shards, parity_shards) = if input.wide {
        let data = 1 + usize::from(input.data_shards) % (MAX_SHARDS - 1);
        let parity = 1 + usize::from(input.parity_shards) % (MAX_SHARDS - data).min(8);
        (data, parity)
    } else {
        (
            1 + usize::from(input.data_shards) % 32,
            1 + usize::from(input.parity_shards) % 32,
        )
    };
    let total = data_shards + parity_shards;
    // Odd lengths reach every SIMD tail path; 0 must be an error.
    let shard_len = usize::from(input.shard_len) % 1100;
    let supported = Backend::supported();
    let backend = supported[usize::from(input.backend) % supported.len()];
    let code = codec(data_shards, parity_shards, backend);

    let mut random = SplitMix::new(input.seed);
    let mut shards: Vec<Vec<u8>> = (0..total)
        .map(|i| {
            if i < data_shards {
                random.bytes(shard_len)
            } else {
                vec![0; shard_len]
            }
        })
        .collect();
    if shard_len == 0 {
        assert!(
            matches!(code.encode(&mut shards), Err(Error::EmptyShard { .. })),
            "empty shards must be refused"
        );
        let mut options: Vec<Option<Vec<u8>>> = shards.into_iter().map(Some).collect();
        options[0] = None;
        assert!(code.reconstruct(&mut options).is_err());
        return;
    }
    code.encode(&mut shards).expect("encode");
    if total <= REFERENCE_MAX_SHARDS {
        let mut expected = shards.clone();
        for parity in &mut expected[data_shards..] {
            parity.fill(0);
        }
        reference(data_shards, parity_shards)
            .encode(&mut expected)
            .expect("reference encode");
        assert!(
            shards == expected,
            "parity differs from reed-solomon-erasure ({data_shards}+{parity_shards}, \
             len {shard_len}, {backend})"
        );
    }
    assert_eq!(code.verify(&shards).ok(), Some(true));
    {
        let mut altered = shards.clone();
        let byte = (input.seed as usize) % shard_len;
        let shard = data_shards + (input.seed >> 32) as usize % parity_shards;
        altered[shard][byte] ^= 1 | (input.seed >> 16) as u8;
        assert_eq!(
            code.verify(&altered).ok(),
            Some(false),
            "altered parity verified"
        );
    }

    for round in input.rounds.iter().take(16) {
        let mut received: Vec<Option<Vec<u8>>> = shards.iter().cloned().map(Some).collect();
        for &index in &round.erased {
            received[usize::from(index) % total] = None;
        }
        let present = received.iter().filter(|s| s.is_some()).count();
        let lost: Vec<bool> = received.iter().map(Option::is_none).collect();

        if let Some(damage) = &round.damage {
            let refused = match *damage {
                Damage::Length { index, len } => {
                    let len = usize::from(len) % 1100;
                    let index = usize::from(index) % total;
                    match &mut received[index] {
                        Some(shard) if len != shard_len => {
                            shard.resize(len, 0);
                            true
                        }
                        _ => false,
                    }
                }
                Damage::Count { more } => {
                    if more {
                        received.push(Some(vec![0; shard_len]));
                    } else {
                        received.pop();
                    }
                    true
                }
            };
            if refused {
                let before = received.clone();
                let result = if round.data_only {
                    code.reconstruct_data(&mut received)
                } else {
                    code.reconstruct(&mut received)
                };
                assert!(result.is_err(), "malformed shard set accepted: {damage:?}");
                assert!(received == before, "a refused call changed the shards");
                continue;
            }
        }

        let result = if round.data_only {
            code.reconstruct_data(&mut received)
        } else {
            code.reconstruct(&mut received)
        };
        if present < data_shards {
            assert!(
                matches!(result, Err(Error::TooFewShardsPresent { present: p, needed })
                    if p == present && needed == data_shards),
                "{present} of {data_shards} shards: {result:?}"
            );
            continue;
        }
        result.expect("enough shards present");
        for (index, (shard, original)) in received.iter().zip(&shards).enumerate() {
            let should_exist = !lost[index] || !round.data_only || index < data_shards;
            if should_exist {
                assert_eq!(
                    shard.as_deref(),
                    Some(&original[..]),
                    "shard {index} wrong after reconstruct ({data_shards}+{parity_shards}, \
                     len {shard_len}, {backend}, data_only {})",
                    round.data_only
                );
            } else {
                assert!(shard.is_none(), "shard {index} invented");
            }
        }
        assert!(code.cached_patterns() <= 256, "decode-plan cache unbounded");
    }
}

/// Above this many shards the reference is not consulted: building its
/// matrix costs seconds under coverage instrumentation, and fec-core's own
/// interop tests cover every size.
const REFERENCE_MAX_SHARDS: usize = 96;

type Reference = reed_solomon_erasure::galois_8::ReedSolomon;

thread_local! {
    static CODECS: RefCell<HashMap<(usize, usize, Backend), ReedSolomon>> =
        RefCell::new(HashMap::new());
    static REFERENCES: RefCell<HashMap<(usize, usize), Reference>> =
        RefCell::new(HashMap::new());
}

/// A fresh codec (empty decode-plan cache, so every input runs the same way
/// whatever ran before), cloned from a memo: building the matrices is the
/// expensive part under instrumentation.
fn codec(data: usize, parity: usize, backend: Backend) -> ReedSolomon {
    CODECS.with(|codecs| {
        codecs
            .borrow_mut()
            .entry((data, parity, backend))
            .or_insert_with(|| {
                let engine = Engine::new(backend).expect("supported backend");
                ReedSolomon::with_engine(data, parity, engine).expect("valid shard counts")
            })
            .clone()
    })
}

fn reference(data: usize, parity: usize) -> Reference {
    REFERENCES.with(|references| {
        references
            .borrow_mut()
            .entry((data, parity))
            .or_insert_with(|| Reference::new(data, parity).expect("reference accepts the counts"))
            .clone()
    })
}
