//! GF(2^16) Reed-Solomon cases: `fec_core::rs16` against reed-solomon-simd, on
//! shared inputs and identical timed regions.
//!
//! | lib | encode (timed) | decode setup (untimed) | decode (timed) |
//! |---|---|---|---|
//! | `fec-core`, `reed-solomon-simd` | `reset`, `add_original_shard` x k (copies into the work buffer), `encode`, the recovery shards read in place | a fresh decoder | `add_original_shard` for survivors, `add_recovery_shard` x m, `decode`; the restored shards read in place |
//!
//! A decode loses `min(k, m)` originals (a new pattern from a shared cycle each
//! time; every original when `m >= k`) and restores them from the other originals
//! and every recovery shard. MB/s counts the `k * shard_bytes` original bytes.
//! Both libraries produce the same recovery bytes, so one set of recovery shards
//! serves both decoders, and each case's check compares against the other library.

use std::hint::black_box;

use crate::timing::{Case, Label, Reuse};
use crate::workload::{random_shards, LossPatterns, RsConfig};

/// The GF(2^16) configurations: a small code, a high-rate one past 256
/// shards, a medium equal-rate one, the largest equal-rate one; 1280-byte
/// shards (a packet payload).
pub const RS16_CONFIGS: [RsConfig; 4] = [
    RsConfig {
        name: "RS16-100:20",
        data: 100,
        parity: 20,
        shard_bytes: 1280,
    },
    RsConfig {
        name: "RS16-1000:100",
        data: 1000,
        parity: 100,
        shard_bytes: 1280,
    },
    RsConfig {
        name: "RS16-1000:1000",
        data: 1000,
        parity: 1000,
        shard_bytes: 1280,
    },
    RsConfig {
        name: "RS16-32768:32768",
        data: 32768,
        parity: 32768,
        shard_bytes: 1280,
    },
];

/// The table line for a GF(2^16) configuration, or `None` for another name.
pub fn describe(name: &str) -> Option<String> {
    RS16_CONFIGS.iter().find(|c| c.name == name).map(|c| {
        format!(
            "Reed-Solomon GF(2^16) {}, decode: {} originals lost",
            c.describe(),
            c.data.min(c.parity)
        )
    })
}

/// Patterns in the erasure cycle.
const PATTERN_CYCLE: usize = 16;

/// The inputs both libraries share for one configuration.
#[derive(Clone, Debug)]
pub struct Rs16Inputs {
    /// The configuration.
    pub config: RsConfig,
    /// The `k` originals.
    pub original: Vec<Vec<u8>>,
    /// The `m` recovery shards (reed-solomon-simd's, which are also ours).
    pub recovery: Vec<Vec<u8>>,
    /// The erasure cycle every decode walks.
    pub patterns: LossPatterns,
}

impl Rs16Inputs {
    /// Seeded originals, their recovery shards and the erasure cycle.
    pub fn new(config: RsConfig) -> Self {
        let seed = config.data as u64 * 1000 + config.parity as u64 + 16;
        let original = random_shards(config.data, config.shard_bytes, seed);
        let recovery = reed_solomon_simd::encode(config.data, config.parity, &original)
            .expect("reed-solomon-simd encodes");
        let lost = config.data.min(config.parity);
        let patterns = LossPatterns::new(config.data, lost, PATTERN_CYCLE, seed ^ 0x5eed);
        Self {
            config,
            original,
            recovery,
            patterns,
        }
    }

    fn label(&self, lib: &'static str, op: &'static str) -> Label {
        Label::new(lib, self.config.name, op, self.config.data_bytes())
    }

    /// Checks restored `(index, shard)` pairs against the originals `lost`.
    fn check_restored(
        &self,
        lost: &[usize],
        mut restored: Vec<(usize, Vec<u8>)>,
    ) -> Result<(), String> {
        restored.sort();
        let indices: Vec<usize> = restored.iter().map(|(index, _)| *index).collect();
        if indices != lost {
            return Err(format!(
                "restored {} shards, lost {}",
                indices.len(),
                lost.len()
            ));
        }
        match restored
            .iter()
            .find(|(index, shard)| *shard != self.original[*index])
        {
            Some((index, _)) => Err(format!("original {index} restored wrong")),
            None => Ok(()),
        }
    }
}

/// The reusable encoder and decoder of one library, as the cases drive them.
trait Library {
    const NAME: &'static str;
    type Encoder: 'static;
    type Decoder: 'static;
    fn encoder(config: RsConfig) -> Self::Encoder;
    /// `reset`, every original added, `encode`; `read` sees each recovery shard.
    fn encode(encoder: &mut Self::Encoder, inputs: &Rs16Inputs, read: &mut dyn FnMut(&[u8]));
    fn decoder(config: RsConfig) -> Self::Decoder;
    /// Survivors and recovery added, `decode`; `read` sees each restored original.
    fn decode(
        decoder: &mut Self::Decoder,
        inputs: &Rs16Inputs,
        lost: &[usize],
        read: &mut dyn FnMut(usize, &[u8]),
    ) -> Result<(), String>;
}

/// The two libraries have the same API (ours is reed-solomon-simd's by
/// design), so one body serves both.
macro_rules! library {
    ($(#[$doc:meta])* $name:ident, $label:expr, $encoder:ty, $decoder:ty, $error:ty) => {
        $(#[$doc])*
        struct $name;

        impl Library for $name {
            const NAME: &'static str = $label;
            type Encoder = $encoder;
            type Decoder = $decoder;

            fn encoder(c: RsConfig) -> Self::Encoder {
                Self::Encoder::new(c.data, c.parity, c.shard_bytes).expect("supported configuration")
            }

            fn encode(encoder: &mut Self::Encoder, inputs: &Rs16Inputs, read: &mut dyn FnMut(&[u8])) {
                let c = inputs.config;
                encoder
                    .reset(c.data, c.parity, c.shard_bytes)
                    .expect("supported configuration");
                for shard in &inputs.original {
                    encoder
                        .add_original_shard(shard)
                        .expect("well-formed shard");
                }
                let result = encoder.encode().expect("all shards given");
                for shard in result.recovery_iter() {
                    read(shard);
                }
            }

            fn decoder(c: RsConfig) -> Self::Decoder {
                Self::Decoder::new(c.data, c.parity, c.shard_bytes).expect("supported configuration")
            }

            fn decode(
                decoder: &mut Self::Decoder,
                inputs: &Rs16Inputs,
                lost: &[usize],
                read: &mut dyn FnMut(usize, &[u8]),
            ) -> Result<(), String> {
                let error = |e: $error| e.to_string();
                for (index, shard) in inputs.original.iter().enumerate() {
                    if lost.binary_search(&index).is_err() {
                        decoder.add_original_shard(index, shard).map_err(error)?;
                    }
                }
                for (index, shard) in inputs.recovery.iter().enumerate() {
                    decoder.add_recovery_shard(index, shard).map_err(error)?;
                }
                let result = decoder.decode().map_err(error)?;
                for (index, shard) in result.restored_original_iter() {
                    read(index, shard);
                }
                Ok(())
            }
        }
    };
}

library!(
    /// `fec_core::rs16`.
    FecCore,
    crate::report::OURS,
    fec_core::rs16::ReedSolomonEncoder,
    fec_core::rs16::ReedSolomonDecoder,
    fec_core::Error
);
library!(
    /// reed-solomon-simd 3.
    Simd,
    "reed-solomon-simd",
    reed_solomon_simd::ReedSolomonEncoder,
    reed_solomon_simd::ReedSolomonDecoder,
    reed_solomon_simd::Error
);

fn library_cases<L: Library>(inputs: &Rs16Inputs) -> Vec<Case<'_>> {
    let config = inputs.config;
    let encode = Case::new(
        inputs.label(L::NAME, "encode"),
        Reuse::Many,
        move || L::encoder(config),
        move |encoder| {
            L::encode(encoder, inputs, &mut |shard| {
                black_box(shard);
            })
        },
        move || {
            let mut recovery = Vec::new();
            L::encode(&mut L::encoder(config), inputs, &mut |shard| {
                recovery.push(shard.to_vec())
            });
            if recovery == inputs.recovery {
                Ok(())
            } else {
                Err("recovery differs from reed_solomon_simd::encode".into())
            }
        },
    );
    let mut patterns = inputs.patterns.clone();
    let decode = Case::new(
        inputs.label(L::NAME, "decode"),
        Reuse::Once,
        move || (L::decoder(config), patterns.next_pattern().to_vec()),
        move |(decoder, lost)| {
            L::decode(decoder, inputs, lost, &mut |_, shard| {
                black_box(shard);
            })
            .expect("enough shards survive")
        },
        move || {
            for lost in inputs.patterns.all().iter().take(2) {
                let mut restored = Vec::new();
                L::decode(
                    &mut L::decoder(config),
                    inputs,
                    lost,
                    &mut |index, shard| restored.push((index, shard.to_vec())),
                )?;
                inputs.check_restored(lost, restored)?;
            }
            Ok(())
        },
    );
    vec![encode, decode]
}

/// Both libraries' encode and decode cases on one configuration.
pub fn rs16_cases(inputs: &Rs16Inputs) -> Vec<Case<'_>> {
    let mut cases = library_cases::<FecCore>(inputs);
    cases.extend(library_cases::<Simd>(inputs));
    cases
}

/// The backend fec-core runs on, for the report.
pub fn backend_note() -> String {
    format!(
        "fec-core backend: {} (FEC_CORE_BACKEND=scalar|ssse3|avx2|avx512|gfni forces one); \
         reed-solomon-simd picks its own (AVX2 or SSSE3 on x86)",
        fec_core::gf256::engine().backend()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_passes_its_own_check() {
        let inputs = Rs16Inputs::new(RsConfig {
            name: "RS16-small",
            data: 30,
            parity: 7,
            shard_bytes: 130,
        });
        for mut case in rs16_cases(&inputs) {
            let label = case.label.clone();
            assert_eq!(case.check(), Ok(()), "{label:?}");
        }
    }
}
