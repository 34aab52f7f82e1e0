//! Reed-Solomon encode and decode cases for every library, on shared inputs.
//!
//! What each library's timed region contains (setup outside it is not timed):
//!
//! | lib | encode (timed) | decode setup (untimed) | decode (timed) |
//! |---|---|---|---|
//! | `fec-core`, `reed-solomon-erasure` | `encode(&mut shards)` | a fresh codec (`clone`, which both document as starting with an empty decode cache); survivors copied into `Vec<Option<Vec<u8>>>` | `reconstruct_data`: survivor submatrix inversion, decode rows, allocation of the lost shards, the multiply |
//! | `isa-l` | `ec_encode_data` with tables made once | output buffers (an ISA-L user owns them) | submatrix, `gf_invert_matrix`, lost rows, `ec_init_tables`, `ec_encode_data` |
//! | `reed-solomon-simd` | `reset`, `add_original_shard` x k (copies into its work buffer), `encode` | a fresh `ReedSolomonDecoder` | `add_original_shard` for survivors, `add_recovery_shard` x m, `decode`; the restored shards are read in place |
//!
//! Every decode loses `m` data shards (a new pattern from the shared cycle each time)
//! and rebuilds them from the other data shards and all `m` parity shards; MB/s counts
//! the block's `k * shard_bytes` bytes of original data, for encode and decode alike.

use std::hint::black_box;

use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

use crate::isal::{Isal, IsalCodec};
use crate::timing::{Case, Label, Reuse};
use crate::workload::{random_shards, LossPatterns, RsConfig};

/// Patterns in each configuration's erasure cycle.
const PATTERN_CYCLE: usize = 32;

/// The inputs shared by every library for one configuration.
#[derive(Clone, Debug)]
pub struct RsInputs {
    /// The configuration.
    pub config: RsConfig,
    /// The `k` data shards.
    pub data: Vec<Vec<u8>>,
    /// The `m` parity shards of reed-solomon-erasure's code (also fec-core's and,
    /// with the same generator, ISA-L's).
    pub parity: Vec<Vec<u8>>,
    /// The `m` recovery shards of reed-solomon-simd's (different) code.
    pub simd_recovery: Vec<Vec<u8>>,
    /// The erasure cycle every decode walks.
    pub patterns: LossPatterns,
}

impl RsInputs {
    /// Seeded data, both codes' parity, and the erasure cycle for `config`.
    pub fn new(config: RsConfig) -> Self {
        let seed = config.data as u64 * 1000 + config.parity as u64;
        let data = random_shards(config.data, config.shard_bytes, seed);
        let mut shards = data.clone();
        shards.extend(std::iter::repeat_n(
            vec![0u8; config.shard_bytes],
            config.parity,
        ));
        reed_solomon_erasure::galois_8::ReedSolomon::new(config.data, config.parity)
            .expect("valid configuration")
            .encode(&mut shards)
            .expect("reed-solomon-erasure encodes");
        let parity = shards.split_off(config.data);
        let simd_recovery = reed_solomon_simd::encode(config.data, config.parity, &data)
            .expect("reed-solomon-simd encodes");
        let patterns = LossPatterns::new(config.data, config.parity, PATTERN_CYCLE, seed ^ 0x5eed);
        Self {
            config,
            data,
            parity,
            simd_recovery,
            patterns,
        }
    }

    fn label(&self, lib: &'static str, op: &'static str) -> Label {
        Label::new(lib, self.config.name, op, self.config.data_bytes())
    }

    /// Data followed by parity: a complete block of reed-solomon-erasure's code.
    pub fn full_block(&self) -> Vec<Vec<u8>> {
        self.data.iter().chain(&self.parity).cloned().collect()
    }

    /// The complete block with the data shards of `lost` erased.
    pub fn erased_block(&self, lost: &[usize]) -> Vec<Option<Vec<u8>>> {
        self.data
            .iter()
            .chain(&self.parity)
            .enumerate()
            .map(|(index, shard)| (!lost.contains(&index)).then(|| shard.clone()))
            .collect()
    }

    fn check_rebuilt(&self, lost: &[usize], rebuilt: &[impl AsRef<[u8]>]) -> Result<(), String> {
        if rebuilt.len() != lost.len() {
            return Err(format!(
                "{} shards rebuilt, {} lost",
                rebuilt.len(),
                lost.len()
            ));
        }
        match lost
            .iter()
            .zip(rebuilt)
            .find(|(&index, shard)| shard.as_ref() != self.data[index])
        {
            Some((index, _)) => Err(format!("data shard {index} rebuilt wrong")),
            None => Ok(()),
        }
    }
}

/// A codec with reed-solomon-erasure's API shape (fec-core's contract is the same).
pub trait ShardCodec: Sized {
    /// Library name in the report.
    const LIB: &'static str;
    /// A new codec.
    fn create(data: usize, parity: usize) -> Self;
    /// A codec equal to `self` but with nothing cached: made (untimed) before every
    /// decode, so each decode meets its erasure pattern for the first time.
    fn fresh(&self) -> Self;
    /// Fills the parity shards of `shards` (data then parity).
    fn encode_shards(&self, shards: &mut [Vec<u8>]);
    /// Rebuilds the `None` data shards.
    fn reconstruct_data_shards(&self, shards: &mut [Option<Vec<u8>>]);
}

impl ShardCodec for reed_solomon_erasure::galois_8::ReedSolomon {
    const LIB: &'static str = "reed-solomon-erasure";

    fn create(data: usize, parity: usize) -> Self {
        Self::new(data, parity).expect("valid configuration")
    }

    fn fresh(&self) -> Self {
        // Its `Clone` is `new`: an empty decode-matrix cache.
        self.clone()
    }

    fn encode_shards(&self, shards: &mut [Vec<u8>]) {
        self.encode(shards).expect("well-formed shards");
    }

    fn reconstruct_data_shards(&self, shards: &mut [Option<Vec<u8>>]) {
        self.reconstruct_data(shards)
            .expect("enough shards survive");
    }
}

impl ShardCodec for fec_core::rs::ReedSolomon {
    const LIB: &'static str = crate::report::OURS;

    fn create(data: usize, parity: usize) -> Self {
        Self::new(data, parity).expect("valid configuration")
    }

    fn fresh(&self) -> Self {
        // Documented to start with an empty decode cache.
        self.clone()
    }

    fn encode_shards(&self, shards: &mut [Vec<u8>]) {
        self.encode(shards).expect("well-formed shards");
    }

    fn reconstruct_data_shards(&self, shards: &mut [Option<Vec<u8>>]) {
        self.reconstruct_data(shards)
            .expect("enough shards survive");
    }
}

/// Encode and decode cases for a [`ShardCodec`] library.
pub fn shard_codec_cases<C: ShardCodec + 'static>(inputs: &RsInputs) -> Vec<Case<'_>> {
    let config = inputs.config;
    let encode = Case::new(
        inputs.label(C::LIB, "encode"),
        Reuse::Many,
        move || (C::create(config.data, config.parity), inputs.full_block()),
        |(codec, shards)| codec.encode_shards(shards),
        move || {
            let codec = C::create(config.data, config.parity);
            let mut shards = inputs.full_block();
            shards[config.data..]
                .iter_mut()
                .for_each(|shard| shard.fill(0));
            codec.encode_shards(&mut shards);
            if shards[config.data..] == inputs.parity[..] {
                Ok(())
            } else {
                Err("parity differs from reed-solomon-erasure's".into())
            }
        },
    );
    let mut patterns = inputs.patterns.clone();
    let prototype = C::create(config.data, config.parity);
    let decode = Case::new(
        inputs.label(C::LIB, "decode"),
        Reuse::Once,
        move || {
            let shards = inputs.erased_block(patterns.next_pattern());
            (prototype.fresh(), shards)
        },
        |(codec, shards)| codec.reconstruct_data_shards(shards),
        move || {
            for lost in inputs.patterns.all().iter().take(4) {
                let mut shards = inputs.erased_block(lost);
                C::create(config.data, config.parity).reconstruct_data_shards(&mut shards);
                let rebuilt: Vec<Vec<u8>> = lost
                    .iter()
                    .map(|&index| shards[index].clone().unwrap_or_default())
                    .collect();
                inputs.check_rebuilt(lost, &rebuilt)?;
            }
            Ok(())
        },
    );
    vec![encode, decode]
}

/// Encode and decode cases for ISA-L (see the module table for what is timed).
pub fn isal_cases<'a>(isal: &'a Isal, inputs: &'a RsInputs) -> Vec<Case<'a>> {
    const LIB: &str = "isa-l";
    let config = inputs.config;
    let codec = std::rc::Rc::new(IsalCodec::new(isal, config.data, config.parity));
    let encode_codec = codec.clone();
    let check_codec = codec.clone();
    let encode = Case::new(
        inputs.label(LIB, "encode"),
        Reuse::Many,
        move || vec![vec![0u8; config.shard_bytes]; config.parity],
        move |parity| encode_codec.encode(&inputs.data, parity),
        move || {
            let mut parity = vec![vec![0u8; config.shard_bytes]; config.parity];
            check_codec.encode(&inputs.data, &mut parity);
            if parity == inputs.parity {
                Ok(())
            } else {
                Err("parity differs from reed-solomon-erasure's".into())
            }
        },
    );
    let survivors = |lost: &[usize]| -> Vec<Option<&'a [u8]>> {
        inputs
            .data
            .iter()
            .chain(&inputs.parity)
            .enumerate()
            .map(|(index, shard)| (!lost.contains(&index)).then_some(shard.as_slice()))
            .collect()
    };
    let decode_codec = codec.clone();
    let mut patterns = inputs.patterns.clone();
    let decode = Case::new(
        inputs.label(LIB, "decode"),
        Reuse::Once,
        move || {
            let shards = survivors(patterns.next_pattern());
            (shards, vec![vec![0u8; config.shard_bytes]; config.parity])
        },
        move |(shards, outputs)| {
            decode_codec
                .reconstruct_data(shards, outputs)
                .expect("enough shards survive")
        },
        move || {
            for lost in inputs.patterns.all().iter().take(4) {
                let mut rebuilt = vec![vec![0u8; config.shard_bytes]; lost.len()];
                codec.reconstruct_data(&survivors(lost), &mut rebuilt)?;
                inputs.check_rebuilt(lost, &rebuilt)?;
            }
            Ok(())
        },
    );
    vec![encode, decode]
}

/// Feeds the survivors of `lost` to a decoder and decodes; `read` sees the restored
/// shards in index order (borrowed from the decoder, as its users read them).
fn simd_decode(
    decoder: &mut ReedSolomonDecoder,
    inputs: &RsInputs,
    lost: &[usize],
    read: &mut dyn FnMut(usize, &[u8]),
) -> Result<(), reed_solomon_simd::Error> {
    for (index, shard) in inputs.data.iter().enumerate() {
        if !lost.contains(&index) {
            decoder.add_original_shard(index, shard)?;
        }
    }
    for (index, shard) in inputs.simd_recovery.iter().enumerate() {
        decoder.add_recovery_shard(index, shard)?;
    }
    let result = decoder.decode()?;
    for (index, shard) in result.restored_original_iter() {
        read(index, shard);
    }
    Ok(())
}

/// Encode and decode cases for reed-solomon-simd (see the module table).
pub fn simd_cases(inputs: &RsInputs) -> Vec<Case<'_>> {
    const LIB: &str = "reed-solomon-simd";
    let config = inputs.config;
    let new_encoder = move || {
        ReedSolomonEncoder::new(config.data, config.parity, config.shard_bytes)
            .expect("supported configuration")
    };
    let encode_once = move |encoder: &mut ReedSolomonEncoder, read: &mut dyn FnMut(&[u8])| {
        encoder
            .reset(config.data, config.parity, config.shard_bytes)
            .expect("supported configuration");
        for shard in &inputs.data {
            encoder
                .add_original_shard(shard)
                .expect("well-formed shard");
        }
        let result = encoder.encode().expect("all shards given");
        for shard in result.recovery_iter() {
            read(shard);
        }
    };
    let encode = Case::new(
        inputs.label(LIB, "encode"),
        Reuse::Many,
        new_encoder,
        move |encoder| {
            encode_once(encoder, &mut |shard| {
                black_box(shard);
            })
        },
        move || {
            let mut recovery = Vec::new();
            encode_once(&mut new_encoder(), &mut |shard| {
                recovery.push(shard.to_vec())
            });
            if recovery == inputs.simd_recovery {
                Ok(())
            } else {
                Err("recovery differs from reed_solomon_simd::encode".into())
            }
        },
    );
    let new_decoder = move || {
        ReedSolomonDecoder::new(config.data, config.parity, config.shard_bytes)
            .expect("supported configuration")
    };
    let mut patterns = inputs.patterns.clone();
    let decode = Case::new(
        inputs.label(LIB, "decode"),
        Reuse::Once,
        move || (new_decoder(), patterns.next_pattern().to_vec()),
        move |(decoder, lost)| {
            simd_decode(decoder, inputs, lost, &mut |_, shard| {
                black_box(shard);
            })
            .expect("enough shards survive")
        },
        move || {
            for lost in inputs.patterns.all().iter().take(4) {
                let mut rebuilt = Vec::new();
                simd_decode(&mut new_decoder(), inputs, lost, &mut |index, shard| {
                    rebuilt.push((index, shard.to_vec()))
                })
                .map_err(|error| error.to_string())?;
                rebuilt.sort();
                let indices: Vec<usize> = rebuilt.iter().map(|(index, _)| *index).collect();
                if indices != *lost {
                    return Err(format!("restored {indices:?}, lost {lost:?}"));
                }
                let shards: Vec<Vec<u8>> = rebuilt.into_iter().map(|(_, shard)| shard).collect();
                inputs.check_rebuilt(lost, &shards)?;
            }
            Ok(())
        },
    );
    vec![encode, decode]
}

/// Every library's cases on one RS configuration: fec-core, reed-solomon-erasure,
/// reed-solomon-simd, and ISA-L when it was found. One list, so the `compare` run
/// and the self-check test cover the same libraries.
pub fn all_rs_cases<'a>(inputs: &'a RsInputs, isal: Option<&'a Isal>) -> Vec<Case<'a>> {
    let mut cases = shard_codec_cases::<fec_core::rs::ReedSolomon>(inputs);
    cases.extend(shard_codec_cases::<
        reed_solomon_erasure::galois_8::ReedSolomon,
    >(inputs));
    cases.extend(simd_cases(inputs));
    if let Some(isal) = isal {
        cases.extend(isal_cases(isal, inputs));
    }
    cases
}

/// The in-cache memcpy baseline: copying a 1 MiB buffer into another.
pub fn memcpy_case() -> Case<'static> {
    const BYTES: usize = 1 << 20;
    Case::new(
        Label::new("memcpy", "1MiB", "copy", BYTES),
        Reuse::Many,
        || (random_shards(1, BYTES, 1).remove(0), vec![0u8; BYTES]),
        |(source, destination)| {
            destination.copy_from_slice(black_box(source));
            black_box(destination);
        },
        || Ok(()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: RsConfig = RsConfig {
        name: "small",
        data: 6,
        parity: 3,
        shard_bytes: 64,
    };

    #[test]
    fn every_case_passes_its_own_check() {
        let inputs = RsInputs::new(SMALL);
        let isal = Isal::load().ok();
        let mut cases = all_rs_cases(&inputs, isal.as_ref());
        cases.push(memcpy_case());
        for case in &mut cases {
            let label = case.label.clone();
            assert_eq!(case.check(), Ok(()), "{label:?}");
        }
    }

    #[test]
    fn check_catches_a_decode_that_rebuilds_nothing() {
        let inputs = RsInputs::new(SMALL);
        let lost = &inputs.patterns.all()[0];
        let zeros = vec![vec![0u8; SMALL.shard_bytes]; lost.len()];
        assert!(inputs.check_rebuilt(lost, &zeros).is_err());
        let right: Vec<&Vec<u8>> = lost.iter().map(|&index| &inputs.data[index]).collect();
        let right: Vec<&[u8]> = right.iter().map(|shard| shard.as_slice()).collect();
        assert_eq!(inputs.check_rebuilt(lost, &right), Ok(()));
    }
}
