//! Interop with `cu-fec`, an independent scalar RFC 8681 implementation:
//! same coefficients, byte-identical repair symbols and payload IDs for the
//! same window, key and DT, and each side decodes the other's repairs.

use cu_fec::{
    generate_coding_coefficients, DensityThreshold, EncodingSymbolId, RepairParameters, RlcConfig,
    RlcDecoder, RlcEncoder,
};
use fec_core::rlc::{
    coding_coefficients, Decoder, DecoderConfig, Encoder, Field, RepairPayloadId,
    SchemeSpecificInfo,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn theirs(field: Field) -> cu_fec::Field {
    match field {
        Field::Gf2 => cu_fec::Field::Gf2,
        Field::Gf256 => cu_fec::Field::Gf256,
    }
}

fn random_symbol(rng: &mut StdRng, size: usize) -> Vec<u8> {
    (0..size).map(|_| rng.gen()).collect()
}

#[test]
fn coefficients_match_cu_fec() {
    let mut rng = StdRng::seed_from_u64(1);
    for field in [Field::Gf2, Field::Gf256] {
        for dt in 0..=15u8 {
            for _ in 0..40 {
                let key: u16 = rng.gen();
                let count = rng.gen_range(1..=300);
                let mut expected = vec![0u8; count];
                generate_coding_coefficients(
                    theirs(field),
                    key,
                    DensityThreshold::new(dt).unwrap(),
                    &mut expected,
                );
                assert_eq!(
                    coding_coefficients(field, key, dt, count).unwrap(),
                    expected,
                    "{field:?} key {key} dt {dt} count {count}"
                );
            }
        }
    }
}

/// Drives both encoders through the same stream (starting just below the
/// ESI wrap) and compares every repair symbol and payload ID.
fn compare_encoders<const E: usize, const W: usize>(field: Field, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let start = u32::MAX - 40;
    let config = RlcConfig::new(E, W, theirs(field)).unwrap();
    let mut reference = RlcEncoder::<E, W>::new(config, EncodingSymbolId::new(start)).unwrap();
    let mut ours = Encoder::new(field, E, W).unwrap();
    ours.reset(start);
    let mut out = vec![0u8; E];
    let mut expected = vec![0u8; E];
    for step in 0..3 * W {
        let symbol = random_symbol(&mut rng, E);
        let esi = ours.push_source(&symbol).unwrap();
        assert_eq!(reference.push_source(&symbol).unwrap().get(), esi);
        assert_eq!(
            ours.window().map(|(first, n)| (first, usize::from(n))),
            reference.window().map(|(first, n)| (first.get(), n))
        );
        for _ in 0..2 {
            let dt: u8 = if rng.gen_bool(0.5) {
                15
            } else {
                rng.gen_range(0..15)
            };
            // cu-fec insists on key 0 for GF(2) at full density, where the
            // key does not matter.
            let key: u16 = if field == Field::Gf2 && dt == 15 {
                0
            } else {
                rng.gen()
            };
            let their_id = reference
                .encode_repair(
                    RepairParameters::new(key, DensityThreshold::new(dt).unwrap()),
                    &mut expected,
                )
                .unwrap();
            let id = ours.repair_into(key, dt, &mut out).unwrap();
            assert_eq!(id.to_bytes().unwrap(), their_id.to_bytes(), "step {step}");
            assert_eq!(out, expected, "{field:?} step {step} key {key} dt {dt}");
        }
    }
}

#[test]
fn repair_symbols_match_cu_fec_gf256() {
    compare_encoders::<64, 16>(Field::Gf256, 2);
    compare_encoders::<1280, 32>(Field::Gf256, 3);
    compare_encoders::<33, 5>(Field::Gf256, 4);
}

#[test]
fn repair_symbols_match_cu_fec_gf2() {
    compare_encoders::<64, 16>(Field::Gf2, 5);
    compare_encoders::<17, 3>(Field::Gf2, 6);
}

const E: usize = 48;
const W: usize = 24;
const EQUATIONS: usize = 24;

#[test]
fn we_decode_cu_fec_repairs() {
    let mut rng = StdRng::seed_from_u64(7);
    let config = RlcConfig::new(E, W, cu_fec::Field::Gf256).unwrap();
    let start = u32::MAX - 5;
    let mut encoder = RlcEncoder::<E, W>::new(config, EncodingSymbolId::new(start)).unwrap();
    let mut decoder = Decoder::new(DecoderConfig::new(Field::Gf256, E).with_window(W)).unwrap();
    let mut sent = Vec::new();
    let mut lost = Vec::new();
    for i in 0..W {
        let symbol = random_symbol(&mut rng, E);
        let esi = encoder.push_source(&symbol).unwrap().get();
        if i % 5 == 1 {
            lost.push(esi);
        } else {
            decoder.add_source(esi, &symbol).unwrap();
        }
        sent.push((esi, symbol));
    }
    let mut repair = [0u8; E];
    for key in 100..100 + lost.len() as u16 + 1 {
        let id = encoder
            .encode_repair(
                RepairParameters::new(key, DensityThreshold::FULL),
                &mut repair,
            )
            .unwrap();
        let id = RepairPayloadId::parse(&id.to_bytes()).unwrap();
        decoder.add_repair(id, &repair).unwrap();
    }
    let mut recovered = Vec::new();
    while let Some(source) = decoder.poll_recovered() {
        let (_, original) = sent.iter().find(|(esi, _)| *esi == source.esi).unwrap();
        assert_eq!(&source.data[..], &original[..]);
        recovered.push(source.esi);
    }
    recovered.sort_unstable();
    lost.sort_unstable();
    assert_eq!(recovered, lost);
}

#[test]
fn cu_fec_decodes_our_repairs() {
    let mut rng = StdRng::seed_from_u64(8);
    let config = RlcConfig::new(E, W, cu_fec::Field::Gf256).unwrap();
    let mut decoder = RlcDecoder::<E, W, EQUATIONS>::new(config, EQUATIONS).unwrap();
    let mut encoder = Encoder::new(Field::Gf256, E, W).unwrap();
    encoder.reset(u32::MAX - 3);
    let mut sent = Vec::new();
    let mut lost = Vec::new();
    for i in 0..W {
        let symbol = random_symbol(&mut rng, E);
        let esi = encoder.push_source(&symbol).unwrap();
        if i % 4 == 2 {
            lost.push(esi);
        } else {
            let _ = decoder
                .receive_source(EncodingSymbolId::new(esi), &symbol)
                .unwrap();
        }
        sent.push((esi, symbol));
    }
    for _ in 0..=lost.len() {
        let (id, repair) = encoder.next_repair(15).unwrap();
        let id = cu_fec::RepairPayloadId::from_bytes(id.to_bytes().unwrap()).unwrap();
        let _ = decoder.receive_repair(id, &repair).unwrap();
    }
    for (esi, symbol) in &sent {
        assert_eq!(
            decoder.symbol(EncodingSymbolId::new(*esi)),
            Some(&symbol[..]),
            "ESI {esi}"
        );
    }
}

#[test]
fn scheme_specific_information_matches_cu_fec() {
    let mut rng = StdRng::seed_from_u64(8);
    for _ in 0..200 {
        let symbol_size: u16 = rng.gen_range(1..=u16::MAX);
        let window_size_ratio: u8 = rng.gen();
        let ours = SchemeSpecificInfo {
            symbol_size,
            window_size_ratio,
        };
        let theirs = cu_fec::FecSchemeSpecificInfo::new(symbol_size, window_size_ratio);
        let bytes = ours.to_bytes().unwrap();
        assert_eq!(bytes, theirs.to_bytes());
        let parsed = SchemeSpecificInfo::parse(&bytes).unwrap();
        assert_eq!(parsed, ours);
        let back = cu_fec::FecSchemeSpecificInfo::from_bytes(bytes);
        assert_eq!(back.symbol_size(), parsed.symbol_size);
        assert_eq!(back.window_size_ratio(), parsed.window_size_ratio);
    }
}
