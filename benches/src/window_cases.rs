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
//!   m=k/4 repairs. Both sides go from the bytes a sender has to the bytes that
//!   travel, and back, as a user of the `raptorq` crate would write it. `encode` =
//!   build the source block encoder (intermediate symbols) and produce the m repair
//!   packets serialized for the wire (`EncodingPacket::serialize`, since a packet
//!   struct cannot be sent; the pipeline's repairs come out as wire bytes too).
//!   `decode` = the k-m surviving sources and the m repairs as received bytes
//!   (picked untimed), parsed with `EncodingPacket::deserialize` (the pipeline
//!   parses its headers from the received bytes too) into a block decoder made,
//!   used and dropped in the timed region (the pipeline makes and drops its
//!   per-block state there too), each datagram freed once parsed, returning the
//!   block. The crate keeps its encoding plans in a process-wide cache, so after
//!   the first block neither side pays for the plan search; the pipeline keeps
//!   its schedules, generator rows and kernels per K the same way.

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

/// What a receiver gets of one block when the sources in `lost` are missing:
/// the surviving sources in order, then every repair. One rule for the peer's
/// packets and the pipeline's, so both decode the same arrivals.
fn survivors<P: Clone>(sources: &[P], repairs: &[P], lost: &[usize]) -> Vec<P> {
    sources
        .iter()
        .enumerate()
        .filter(|(esi, _)| !lost.contains(esi))
        .map(|(_, packet)| packet.clone())
        .chain(repairs.iter().cloned())
        .collect()
}

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

/// Config `D`'s encode case for one library: each op writes one repair symbol over
/// the full window into the same buffer, under the next repair key, so every op
/// generates its coefficients afresh as a sender does and no library can hand back
/// a symbol it computed before.
fn rlc_encode_case<'a, E: 'a, Id>(
    lib: &'static str,
    inputs: &'a RlcInputs,
    filled_encoder: impl Fn(&[Vec<u8>]) -> E + 'a,
    mut repair_into: impl FnMut(&mut E, u16, &mut [u8]) -> Id + 'a,
    check: impl FnMut() -> Result<(), String> + 'a,
) -> Case<'a> {
    let mut repair_key = 0u16;
    Case::new(
        Label::new(lib, "D", "encode", inputs.window_bytes()),
        Reuse::Many,
        move || (filled_encoder(&inputs.sources), vec![0u8; SYMBOL_BYTES]),
        move |(encoder, symbol)| {
            repair_key = repair_key.wrapping_add(1);
            black_box(repair_into(encoder, repair_key, symbol));
        },
        check,
    )
}

/// Config `D`'s decode case for one library: a fresh decoder (made untimed) per op,
/// which loses the next pattern of the loss cycle every library shares.
fn rlc_decode_case<'a, D: 'a>(
    lib: &'static str,
    inputs: &'a RlcInputs,
    new_decoder: impl Fn() -> D + 'a,
    mut decode: impl FnMut(&mut D, &[usize]) + 'a,
    check: impl FnMut() -> Result<(), String> + 'a,
) -> Case<'a> {
    let mut patterns = inputs.patterns.clone();
    Case::new(
        Label::new(lib, "D", "decode", inputs.window_bytes()),
        Reuse::Once,
        move || (new_decoder(), patterns.next_pattern().to_vec()),
        move |(decoder, lost)| decode(decoder, lost),
        check,
    )
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
    let encode = rlc_encode_case(
        LIB,
        inputs,
        filled_cu_encoder,
        |encoder, repair_key, symbol| {
            encoder
                .encode_repair(
                    RepairParameters::new(repair_key, DensityThreshold::FULL),
                    symbol,
                )
                .expect("repair over a full window")
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
    let decode = rlc_decode_case(
        LIB,
        inputs,
        new_decoder,
        |decoder, lost| cu_decode(decoder, inputs, lost).expect("consistent symbols"),
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

/// fec-core's RLC encoder holding the window `sources` (ESIs from 0).
pub fn filled_our_encoder(sources: &[Vec<u8>]) -> fec_core::rlc::Encoder {
    let mut encoder =
        fec_core::rlc::Encoder::new(fec_core::rlc::Field::Gf256, SYMBOL_BYTES, RLC_WINDOW)
            .expect("valid RLC configuration");
    for source in sources {
        encoder
            .push_source(source)
            .expect("symbol of the configured size");
    }
    encoder
}

/// A fresh fec-core RLC decoder for config `D`.
pub fn new_our_decoder() -> fec_core::rlc::Decoder {
    let config = fec_core::rlc::DecoderConfig::new(fec_core::rlc::Field::Gf256, SYMBOL_BYTES)
        .with_window(RLC_WINDOW);
    fec_core::rlc::Decoder::new(config).expect("valid RLC decoder configuration")
}

/// cu-fec's payload ID as fec-core reads it off the wire.
pub fn our_repair_id(id: &RepairPayloadId) -> fec_core::rlc::RepairPayloadId {
    fec_core::rlc::RepairPayloadId::parse(&id.to_bytes()).expect("cu-fec writes valid payload IDs")
}

/// Feeds one decode's symbols to fec-core's decoder and drains what it recovers
/// (the user's `poll_recovered` loop is part of the timed decode).
pub fn our_decode(
    decoder: &mut fec_core::rlc::Decoder,
    inputs: &RlcInputs,
    repair_ids: &[fec_core::rlc::RepairPayloadId],
    lost: &[usize],
    recovered: &mut dyn FnMut(u32, &[u8]),
) -> Result<(), fec_core::Error> {
    for (esi, source) in inputs.sources.iter().enumerate() {
        if !lost.contains(&esi) {
            black_box(decoder.add_source(esi as u32, source)?);
        }
    }
    for (id, (_, symbol)) in repair_ids.iter().zip(&inputs.repairs) {
        black_box(decoder.add_repair(*id, symbol)?);
    }
    while let Some(source) = decoder.poll_recovered() {
        recovered(source.esi, &source.data);
    }
    Ok(())
}

/// fec-core's encode and decode cases for config `D`, on cu-fec's repairs.
pub fn our_rlc_cases(inputs: &RlcInputs) -> Vec<Case<'_>> {
    const LIB: &str = crate::report::OURS;
    let encode = rlc_encode_case(
        LIB,
        inputs,
        filled_our_encoder,
        |encoder, repair_key, symbol| {
            encoder
                .repair_into(repair_key, 15, symbol)
                .expect("repair over a full window")
        },
        || {
            let mut encoder = filled_our_encoder(&inputs.sources);
            for (id, expected) in &inputs.repairs {
                let (our_id, symbol) = encoder
                    .repair(id.repair_key(), 15)
                    .map_err(|error| error.to_string())?;
                if our_id != our_repair_id(id) || symbol != *expected {
                    return Err(format!(
                        "repair key {} differs from cu-fec's",
                        id.repair_key()
                    ));
                }
            }
            Ok(())
        },
    );
    let repair_ids: Vec<_> = inputs
        .repairs
        .iter()
        .map(|(id, _)| our_repair_id(id))
        .collect();
    let check_ids = repair_ids.clone();
    let decode = rlc_decode_case(
        LIB,
        inputs,
        new_our_decoder,
        move |decoder, lost| {
            our_decode(decoder, inputs, &repair_ids, lost, &mut |esi, data| {
                black_box((esi, data));
            })
            .expect("consistent symbols")
        },
        move || {
            for lost in inputs.patterns.all().iter().take(4) {
                let mut rebuilt = Vec::new();
                our_decode(
                    &mut new_our_decoder(),
                    inputs,
                    &check_ids,
                    lost,
                    &mut |esi, data| rebuilt.push((esi as usize, data.to_vec())),
                )
                .map_err(|error| error.to_string())?;
                rebuilt.sort();
                let expected: Vec<(usize, Vec<u8>)> = lost
                    .iter()
                    .map(|&esi| (esi, inputs.sources[esi].clone()))
                    .collect();
                if rebuilt != expected {
                    return Err(format!("lost {lost:?} not recovered exactly"));
                }
            }
            Ok(())
        },
    );
    vec![encode, decode]
}

/// The cost of taking in one source symbol (config `D`, op `source`, ns): through
/// `fec_core::pipeline` (`protect` of a 1280-byte ADU: framing, header, window
/// copy) and through the bare `fec_core::rlc::Encoder` (`push_source` of the
/// already framed 1283-byte symbol). The difference is what the pipeline adds per
/// source symbol over the codec.
pub fn source_ingest_cases(inputs: &RlcInputs) -> Vec<Case<'_>> {
    use fec_core::pipeline::wire::ADU_INFO_LEN;
    use fec_core::pipeline::{Config, Encoder, Scheme};

    let symbol_bytes = SYMBOL_BYTES + ADU_INFO_LEN;
    let new_pipeline = move || {
        let mut config = Config::new(Scheme::Rlc {
            field: fec_core::rlc::Field::Gf256,
            window: RLC_WINDOW,
            dt: 15,
        });
        config.set_symbol_size(symbol_bytes);
        Encoder::new(&config).expect("valid pipeline configuration")
    };
    let adus: Vec<bytes::Bytes> = inputs
        .sources
        .iter()
        .map(|source| bytes::Bytes::copy_from_slice(source))
        .collect();
    let check_adus = adus.clone();
    let mut next = 0usize;
    let pipeline = Case::new(
        Label::latency(crate::report::OURS, "D", "source"),
        Reuse::Many,
        new_pipeline,
        move |encoder| {
            next = (next + 1) % adus.len();
            black_box(encoder.protect(0, adus[next].clone()).expect("ADU fits"));
        },
        move || {
            // Many more sources than the window, and no repair: must keep working.
            let mut encoder = new_pipeline();
            for adu in check_adus.iter().cycle().take(8 * RLC_WINDOW) {
                let packet = encoder
                    .protect(0, adu.clone())
                    .map_err(|error| error.to_string())?;
                if packet.adu() != adu {
                    return Err("the source packet does not carry its ADU".into());
                }
            }
            Ok(())
        },
    );
    let framed: Vec<Vec<u8>> = inputs
        .sources
        .iter()
        .map(|source| {
            let mut symbol = vec![0u8; symbol_bytes];
            symbol[ADU_INFO_LEN..].copy_from_slice(source);
            symbol
        })
        .collect();
    let mut next = 0usize;
    let new_bare = move || {
        fec_core::rlc::Encoder::new(fec_core::rlc::Field::Gf256, symbol_bytes, RLC_WINDOW)
            .expect("valid RLC configuration")
    };
    let bare = Case::new(
        Label::latency("fec-core-rlc", "D", "source"),
        Reuse::Many,
        new_bare,
        move |encoder| {
            next = (next + 1) % framed.len();
            black_box(
                encoder
                    .push_source(&framed[next])
                    .expect("symbol of the configured size"),
            );
        },
        move || {
            let mut encoder = new_bare();
            let symbol = vec![1u8; symbol_bytes];
            for esi in 0..(8 * RLC_WINDOW) as u32 {
                if encoder
                    .push_source(&symbol)
                    .map_err(|error| error.to_string())?
                    != esi
                {
                    return Err("ESIs are not consecutive".into());
                }
            }
            Ok(())
        },
    );
    vec![pipeline, bare]
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
        survivors(&self.source_packets, &self.repair_packets, lost)
    }

    /// [`received`](Self::received), serialized as they arrive off the network.
    pub fn received_bytes(&self, lost: &[usize]) -> Vec<Vec<u8>> {
        self.received(lost)
            .iter()
            .map(EncodingPacket::serialize)
            .collect()
    }
}

/// The raptorq crate's encode and decode cases, used directly.
pub fn raptorq_cases(inputs: &RaptorqInputs) -> Vec<Case<'_>> {
    const LIB: &str = "raptorq";
    let bytes = inputs.data.len();
    let repairs = inputs.repairs() as u32;
    let encode_block = move || -> Vec<Vec<u8>> {
        SourceBlockEncoder::new(0, &inputs.oti, &inputs.data)
            .repair_packets(0, repairs)
            .iter()
            .map(EncodingPacket::serialize)
            .collect()
    };
    let expected: Vec<Vec<u8>> = inputs
        .repair_packets
        .iter()
        .map(EncodingPacket::serialize)
        .collect();
    let encode = Case::new(
        Label::new(LIB, inputs.name, "encode", bytes),
        Reuse::Many,
        || (),
        move |_| {
            black_box(encode_block());
        },
        move || {
            if encode_block() == expected {
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
        move || inputs.received_bytes(patterns.next_pattern()),
        move |packets| {
            // The block's decoder lives and dies inside the timed region, and
            // each datagram is freed once parsed, as in the pipeline's decode.
            let mut decoder = new_decoder();
            let block = decoder.decode(
                std::mem::take(packets)
                    .into_iter()
                    .map(|bytes| EncodingPacket::deserialize(&bytes)),
            );
            black_box(block);
        },
        move || {
            for lost in inputs.patterns.all() {
                let packets = inputs.received_bytes(lost);
                let parsed = packets
                    .iter()
                    .map(|bytes| EncodingPacket::deserialize(bytes));
                match new_decoder().decode(parsed) {
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

/// The packets of one RaptorQ block through `fec_core::pipeline`.
struct PipelineBlock {
    config: fec_core::pipeline::Config,
    adus: Vec<bytes::Bytes>,
    source_packets: Vec<bytes::Bytes>,
    repair_packets: Vec<bytes::Bytes>,
}

/// Protects every ADU and asks for the block's repairs: the pipeline's encode.
fn pipeline_encode(
    encoder: &mut fec_core::pipeline::Encoder,
    adus: &[bytes::Bytes],
    repairs: usize,
    sent: &mut dyn FnMut(&fec_core::pipeline::SourcePacket),
) -> Result<Vec<bytes::Bytes>, fec_core::Error> {
    for adu in adus {
        sent(&encoder.protect(0, adu.clone())?);
    }
    encoder.repair(repairs)
}

impl PipelineBlock {
    /// The packets that arrive when the sources in `lost` are missing: the
    /// surviving sources in order, then the repairs. Picked before the clock
    /// starts, as [`RaptorqInputs::received_bytes`] is for the peer.
    fn survivors(&self, lost: &[usize]) -> Vec<bytes::Bytes> {
        survivors(&self.source_packets, &self.repair_packets, lost)
    }
}

/// Feeds the packets to the pipeline's decoder and drains what it recovers.
fn pipeline_decode(
    decoder: &mut fec_core::pipeline::Decoder,
    packets: Vec<bytes::Bytes>,
    recovered: &mut dyn FnMut(&fec_core::pipeline::Adu),
) -> Result<(), fec_core::Error> {
    for packet in packets {
        black_box(decoder.receive(packet)?);
    }
    while let Some(adu) = decoder.poll_recovered() {
        recovered(&adu);
    }
    Ok(())
}

/// fec-core's RaptorQ through `fec_core::pipeline`, with the same symbol size
/// (T = 1280) and block shape as [`raptorq_cases`], and the same repair bytes
/// (the case's check compares them): each symbol carries one 1277-byte ADU
/// (the first `k * 1277` bytes of the block) after its 3 bytes of RFC
/// 8681-style ADU information. The pipeline computes RaptorQ's repairs and lost
/// sources with fec-core's SIMD kernels instead of the crate's schedule: by
/// its own schedule of the constraint matrix or by the code's generator rows
/// (which that schedule also keeps), whichever costs less on the backend.
/// `encode` =
/// `protect` every ADU (framing copy included) and `repair(m)`; `decode` = a
/// pipeline decoder made in the timed region, as the peer's block decoder is,
/// `receive`s the k-m surviving source packets and the m repair packets (picked
/// untimed, like the peer's received bytes), and the lost ADUs are taken with
/// `poll_recovered`; the schedule and rows of K come from process-wide caches,
/// as the crate's encoding plans do for the peer's encode. MB/s count
/// ADU bytes (`k * 1277`): the 0.2% of framing is the pipeline's own cost.
pub fn our_raptorq_cases(inputs: &RaptorqInputs) -> Vec<Case<'_>> {
    use fec_core::pipeline::wire::ADU_INFO_LEN;
    use fec_core::pipeline::{Config, Decoder, Encoder, Scheme};
    use std::rc::Rc;

    const LIB: &str = crate::report::OURS;
    let repairs = inputs.repairs();
    let mut config = Config::new(Scheme::RaptorQ {
        source_symbols: inputs.k,
        repair_symbols: repairs,
    });
    config.set_symbol_size(SYMBOL_BYTES);
    let adu_len = SYMBOL_BYTES - ADU_INFO_LEN;
    let adus: Vec<bytes::Bytes> = inputs
        .data
        .chunks(adu_len)
        .take(inputs.k)
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    let mut source_packets = Vec::new();
    let mut encoder = Encoder::new(&config).expect("valid pipeline configuration");
    let repair_packets = pipeline_encode(&mut encoder, &adus, repairs, &mut |packet| {
        source_packets.push(packet.to_bytes())
    })
    .expect("one block of ADUs");
    let block = Rc::new(PipelineBlock {
        config,
        adus,
        source_packets,
        repair_packets,
    });

    let bytes = inputs.k * adu_len;
    let encode_block = block.clone();
    let check_block = block.clone();
    let encode = Case::new(
        Label::new(LIB, inputs.name, "encode", bytes),
        Reuse::Many,
        move || Encoder::new(&encode_block.config).expect("valid pipeline configuration"),
        {
            let block = block.clone();
            move |encoder| {
                let repair = pipeline_encode(encoder, &block.adus, repairs, &mut |packet| {
                    black_box(packet);
                })
                .expect("one block of ADUs");
                black_box(repair);
            }
        },
        move || {
            let mut encoder =
                Encoder::new(&check_block.config).map_err(|error| error.to_string())?;
            let repair = pipeline_encode(&mut encoder, &check_block.adus, repairs, &mut |_| {})
                .map_err(|error| error.to_string())?;
            if repair == check_block.repair_packets {
                Ok(())
            } else {
                Err("repair packets differ between runs".into())
            }
        },
    );
    let decode_block = block.clone();
    let mut patterns = inputs.patterns.clone();
    let decode = Case::new(
        Label::new(LIB, inputs.name, "decode", bytes),
        Reuse::Once,
        {
            let block = block.clone();
            move || block.survivors(patterns.next_pattern())
        },
        move |packets: &mut Vec<bytes::Bytes>| {
            let mut decoder =
                Decoder::new(&decode_block.config).expect("valid pipeline configuration");
            pipeline_decode(&mut decoder, std::mem::take(packets), &mut |adu| {
                black_box(adu);
            })
            .expect("well-formed packets")
        },
        move || {
            for lost in inputs.patterns.all() {
                let mut decoder = Decoder::new(&block.config).map_err(|error| error.to_string())?;
                let mut recovered = Vec::new();
                pipeline_decode(&mut decoder, block.survivors(lost), &mut |adu| {
                    recovered.push(adu.data.clone())
                })
                .map_err(|error| error.to_string())?;
                // Compared as sets: the order of recovery is the decoder's business.
                let mut expected: Vec<&bytes::Bytes> =
                    lost.iter().map(|&esi| &block.adus[esi]).collect();
                let mut recovered: Vec<&bytes::Bytes> = recovered.iter().collect();
                expected.sort();
                recovered.sort();
                if recovered != expected {
                    return Err(format!("lost {lost:?}: {} ADUs recovered", recovered.len()));
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
        cases.extend(our_rlc_cases(&rlc));
        cases.extend(raptorq_cases(&raptorq));
        cases.extend(our_raptorq_cases(&raptorq));
        cases.extend(source_ingest_cases(&rlc));
        for case in &mut cases {
            let label = case.label.clone();
            assert_eq!(case.check(), Ok(()), "{label:?}");
        }
    }
}
