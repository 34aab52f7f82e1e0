//! Sliding-window RLC (config `D`) and RaptorQ (configs `E32`, `E200`) cases.
//!
//! - `D`: RFC 8681 RLC over GF(2^8), DT=15 (dense), window of 32 source symbols of
//!   1280 B. `encode` = one repair symbol over the full window (coefficient
//!   generation included), MB/s of window data (32 x 1280 B per repair). `decode` = a
//!   fresh decoder (untimed) ingests the 28 received sources and then 5 repair
//!   symbols that cover the window, recovering the 4 lost sources; MB/s of window
//!   data. The repairs come from cu-fec and are fed to every library (RFC 8681 makes
//!   them byte-identical across conforming implementations).
//! - `E32`/`E200`: RaptorQ (RFC 6330) with k=32 or 200 source symbols of 1280 B and
//!   m=k/4 repairs. `encode` = build the source block encoder (intermediate symbols)
//!   and produce the m repair packets. `decode` = a fresh block decoder (untimed)
//!   given the k-m surviving sources and the m repairs, returning the block.

use std::hint::black_box;

use cu_fec::{
    DensityThreshold, EncodingSymbolId, Field, RepairParameters, RepairPayloadId, RlcConfig,
    RlcDecoder, RlcEncoder,
};
use raptorq::{
    EncodingPacket, ObjectTransmissionInformation, SourceBlockDecoder, SourceBlockEncoder,
};

use crate::timing::{Case, Label, Reuse};
use crate::workload::{random_shards, LossPatterns};

/// Source symbols in the RLC window of config `D`.
pub const RLC_WINDOW: usize = 32;
/// Symbol size of configs `D`, `E32`, `E200`.
pub const SYMBOL_BYTES: usize = 1280;
/// Sources lost in each RLC decode.
pub const RLC_LOST: usize = 4;
/// Repair symbols fed to each RLC decode.
pub const RLC_REPAIRS: usize = 5;

type CuEncoder = RlcEncoder<SYMBOL_BYTES, RLC_WINDOW>;
type CuDecoder = RlcDecoder<SYMBOL_BYTES, RLC_WINDOW, RLC_REPAIRS>;

/// One window's sources, the repairs over it, and the loss cycle.
#[derive(Clone, Debug)]
pub struct RlcInputs {
    /// The window's source symbols, ESI 0..32.
    pub sources: Vec<Vec<u8>>,
    /// Repair symbols (with their payload IDs) over the whole window, keys 1..=5.
    pub repairs: Vec<(RepairPayloadId, Vec<u8>)>,
    /// Which sources each decode loses.
    pub patterns: LossPatterns,
}

fn rlc_config() -> RlcConfig {
    RlcConfig::new(SYMBOL_BYTES, RLC_WINDOW, Field::Gf256).expect("valid RLC configuration")
}

fn filled_cu_encoder(sources: &[Vec<u8>]) -> Box<CuEncoder> {
    let mut encoder =
        Box::new(CuEncoder::new(rlc_config(), EncodingSymbolId::new(0)).expect("encoder"));
    for source in sources {
        encoder
            .push_source(source)
            .expect("symbol of the configured size");
    }
    encoder
}

impl RlcInputs {
    /// Seeded window, cu-fec's repairs with keys 1..=5, and the loss cycle.
    pub fn new() -> Self {
        let sources = random_shards(RLC_WINDOW, SYMBOL_BYTES, 8681);
        let encoder = filled_cu_encoder(&sources);
        let repairs = (1..=RLC_REPAIRS as u16)
            .map(|key| {
                let mut symbol = vec![0u8; SYMBOL_BYTES];
                let id = encoder
                    .encode_repair(
                        RepairParameters::new(key, DensityThreshold::FULL),
                        &mut symbol,
                    )
                    .expect("repair over a full window");
                (id, symbol)
            })
            .collect();
        let patterns = LossPatterns::new(RLC_WINDOW, RLC_LOST, 32, 15);
        Self {
            sources,
            repairs,
            patterns,
        }
    }

    /// Bytes of window data per operation.
    pub fn window_bytes(&self) -> usize {
        RLC_WINDOW * SYMBOL_BYTES
    }
}

impl Default for RlcInputs {
    fn default() -> Self {
        Self::new()
    }
}

fn cu_decode(
    decoder: &mut CuDecoder,
    inputs: &RlcInputs,
    lost: &[usize],
) -> Result<(), cu_fec::Error> {
    for (esi, source) in inputs.sources.iter().enumerate() {
        if !lost.contains(&esi) {
            let report = decoder.receive_source(EncodingSymbolId::new(esi as u32), source)?;
            black_box(report.recovered());
        }
    }
    for (id, symbol) in &inputs.repairs {
        let report = decoder.receive_repair(*id, symbol)?;
        black_box(report.recovered());
    }
    Ok(())
}

/// cu-fec's encode and decode cases for config `D`.
pub fn cu_fec_cases(inputs: &RlcInputs) -> Vec<Case<'_>> {
    const LIB: &str = "cu-fec";
    let bytes = inputs.window_bytes();
    let mut repair_key = 0u16;
    let encode = Case::new(
        Label::new(LIB, "D", "encode", bytes),
        Reuse::Many,
        || (filled_cu_encoder(&inputs.sources), vec![0u8; SYMBOL_BYTES]),
        move |(encoder, symbol)| {
            repair_key = repair_key.wrapping_add(1);
            let id = encoder
                .encode_repair(
                    RepairParameters::new(repair_key, DensityThreshold::FULL),
                    symbol,
                )
                .expect("repair over a full window");
            black_box(id);
        },
        || {
            let encoder = filled_cu_encoder(&inputs.sources);
            let mut symbol = vec![0u8; SYMBOL_BYTES];
            let (id, expected) = &inputs.repairs[0];
            encoder
                .encode_repair(
                    RepairParameters::new(id.repair_key(), DensityThreshold::FULL),
                    &mut symbol,
                )
                .map_err(|error| error.to_string())?;
            if symbol == *expected {
                Ok(())
            } else {
                Err("repair symbol is not reproducible".into())
            }
        },
    );
    let new_decoder = || Box::new(CuDecoder::new(rlc_config(), RLC_REPAIRS).expect("decoder"));
    let mut patterns = inputs.patterns.clone();
    let decode = Case::new(
        Label::new(LIB, "D", "decode", bytes),
        Reuse::Once,
        move || (new_decoder(), patterns.next_pattern().to_vec()),
        |(decoder, lost)| cu_decode(decoder, inputs, lost).expect("consistent symbols"),
        move || {
            for lost in inputs.patterns.all().iter().take(4) {
                let mut decoder = new_decoder();
                cu_decode(&mut decoder, inputs, lost).map_err(|error| error.to_string())?;
                for &esi in lost {
                    if decoder.symbol(EncodingSymbolId::new(esi as u32))
                        != Some(&inputs.sources[esi][..])
                    {
                        return Err(format!("source {esi} not recovered"));
                    }
                }
            }
            Ok(())
        },
    );
    vec![encode, decode]
}

/// A RaptorQ configuration: `k` source symbols of 1280 B, `k/4` repairs.
#[derive(Clone, Debug)]
pub struct RaptorqInputs {
    /// Configuration name (`E32`, `E200`).
    pub name: &'static str,
    /// Source symbols per block.
    pub k: usize,
    /// The block's data, `k * 1280` bytes.
    pub data: Vec<u8>,
    /// The raptorq crate's transmission parameters for one block.
    pub oti: ObjectTransmissionInformation,
    /// The k source packets.
    pub source_packets: Vec<EncodingPacket>,
    /// The m = k/4 repair packets.
    pub repair_packets: Vec<EncodingPacket>,
    /// Which sources each decode loses.
    pub patterns: LossPatterns,
}

impl RaptorqInputs {
    /// Seeded block and packets for `k` sources; `name` is the report's config.
    pub fn new(name: &'static str, k: usize) -> Self {
        let data = random_shards(1, k * SYMBOL_BYTES, 6330 + k as u64).remove(0);
        let oti =
            ObjectTransmissionInformation::new(data.len() as u64, SYMBOL_BYTES as u16, 1, 1, 8);
        let encoder = SourceBlockEncoder::new(0, &oti, &data);
        let source_packets = encoder.source_packets();
        let repair_packets = encoder.repair_packets(0, (k / 4) as u32);
        let patterns = LossPatterns::new(k, k / 4, 16, k as u64);
        Self {
            name,
            k,
            data,
            oti,
            source_packets,
            repair_packets,
            patterns,
        }
    }

    /// Repair symbols per block (m = k/4).
    pub fn repairs(&self) -> usize {
        self.k / 4
    }

    /// The surviving packets when the sources in `lost` are missing.
    pub fn received(&self, lost: &[usize]) -> Vec<EncodingPacket> {
        self.source_packets
            .iter()
            .enumerate()
            .filter(|(esi, _)| !lost.contains(esi))
            .map(|(_, packet)| packet.clone())
            .chain(self.repair_packets.iter().cloned())
            .collect()
    }
}

/// The raptorq crate's encode and decode cases, used directly.
pub fn raptorq_cases(inputs: &RaptorqInputs) -> Vec<Case<'_>> {
    const LIB: &str = "raptorq";
    let bytes = inputs.data.len();
    let repairs = inputs.repairs() as u32;
    let encode_block =
        move || SourceBlockEncoder::new(0, &inputs.oti, &inputs.data).repair_packets(0, repairs);
    let encode = Case::new(
        Label::new(LIB, inputs.name, "encode", bytes),
        Reuse::Many,
        || (),
        move |_| {
            black_box(encode_block());
        },
        move || {
            if encode_block() == inputs.repair_packets {
                Ok(())
            } else {
                Err("repair packets differ between runs".into())
            }
        },
    );
    let new_decoder = move || SourceBlockDecoder::new(0, &inputs.oti, bytes as u64);
    let mut patterns = inputs.patterns.clone();
    let decode = Case::new(
        Label::new(LIB, inputs.name, "decode", bytes),
        Reuse::Once,
        move || {
            (
                new_decoder(),
                Some(inputs.received(patterns.next_pattern())),
            )
        },
        |(decoder, packets)| {
            let block = decoder.decode(packets.take().unwrap_or_default());
            black_box(block);
        },
        move || {
            for lost in inputs.patterns.all() {
                match new_decoder().decode(inputs.received(lost)) {
                    Some(block) if block == inputs.data => {}
                    Some(_) => return Err(format!("wrong block for loss {lost:?}")),
                    None => return Err(format!("no block for loss {lost:?}")),
                }
            }
            Ok(())
        },
    );
    vec![encode, decode]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rlc_and_raptorq_cases_pass_their_checks() {
        let rlc = RlcInputs::new();
        let raptorq = RaptorqInputs::new("E32", 32);
        let mut cases = cu_fec_cases(&rlc);
        cases.extend(raptorq_cases(&raptorq));
        for case in &mut cases {
            let label = case.label.clone();
            assert_eq!(case.check(), Ok(()), "{label:?}");
        }
    }
}
