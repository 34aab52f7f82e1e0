//! Property tests: the encoder against the RFC 8681 formula computed byte by
//! byte, and the decoder against a naive Gauss-Jordan solver over the same
//! received symbols, with random windows, losses, order and duplicates.

mod rlc_support;

use fec_core::rlc::{Decoder, DecoderConfig, Encoder, Field, Reception, RepairPayloadId};
use quickcheck::QuickCheck;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rlc_support::{reference_repair, ReferenceSystem};

fn random_dt(rng: &mut StdRng) -> u8 {
    if rng.gen_bool(0.5) {
        15
    } else {
        rng.gen_range(0..=15)
    }
}

/// Random sources pushed through a small encoder; repairs over random held
/// sub-windows compared with the reference formula.
fn encoder_matches_formula(seed: u64) -> bool {
    let mut rng = StdRng::seed_from_u64(seed);
    let field = if rng.gen() { Field::Gf256 } else { Field::Gf2 };
    let size = rng.gen_range(1..=200);
    let max_window = rng.gen_range(1..=40);
    let mut encoder = Encoder::new(field, size, max_window).unwrap();
    encoder.reset(rng.gen_range(u32::MAX - 50..=u32::MAX));
    let mut history: Vec<(u32, Vec<u8>)> = Vec::new();
    for _ in 0..rng.gen_range(1..=80) {
        let symbol: Vec<u8> = (0..size).map(|_| rng.gen()).collect();
        let esi = encoder.push_source(&symbol).unwrap();
        history.push((esi, symbol));
        let held = history.len().min(max_window);
        let (first, count) = encoder.window().unwrap();
        if usize::from(count) != held || first != history[history.len() - held].0 {
            return false;
        }
        let start = rng.gen_range(0..held);
        let nss = rng.gen_range(1..=held - start);
        let window = &history[history.len() - held + start..][..nss];
        let key = rng.gen();
        let dt = random_dt(&mut rng);
        let mut out = vec![0xa5; size];
        let id = encoder
            .sub_window_repair_into(window[0].0, nss as u16, key, dt, &mut out)
            .unwrap();
        let sources: Vec<&[u8]> = window.iter().map(|(_, s)| &s[..]).collect();
        let expected = reference_repair(field, key, dt, &sources);
        let expected_id = RepairPayloadId {
            repair_key: key,
            dt,
            nss: nss as u16,
            first_source_esi: window[0].0,
        };
        if out != expected || id != expected_id {
            return false;
        }
    }
    true
}

enum Delivery {
    Source(u32, Vec<u8>),
    Repair(RepairPayloadId, Vec<u8>),
}

/// One random scenario; returns a description of the first disagreement.
fn decoder_matches_reference(seed: u64) -> Result<(), String> {
    decoder_scenario(seed, false)
}

/// With `tight` limits, the decoder may evict and so recover less than the
/// reference, but never anything else.
fn decoder_scenario(seed: u64, tight: bool) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let field = if rng.gen_bool(0.7) {
        Field::Gf256
    } else {
        Field::Gf2
    };
    let size = rng.gen_range(1..=40);
    let n = rng.gen_range(1..=40usize);
    let max_window = rng.gen_range(1..=n.min(24));
    let start: u32 = rng.gen_range(u32::MAX - 30..=u32::MAX);
    let loss = rng.gen_range(0.0..0.6);

    let mut encoder = Encoder::new(field, size, max_window).unwrap();
    encoder.reset(start);
    let mut reference = ReferenceSystem::default();
    let mut deliveries = Vec::new();
    let mut originals = Vec::new();
    for index in 0..n as u64 {
        let symbol: Vec<u8> = (0..size).map(|_| rng.gen()).collect();
        let esi = encoder.push_source(&symbol).unwrap();
        if !rng.gen_bool(loss) {
            reference.add_source(index, &symbol);
            deliveries.push(Delivery::Source(esi, symbol.clone()));
        }
        originals.push(symbol);
        while rng.gen_bool(0.4) {
            let (first, held) = encoder.window().unwrap();
            let offset = rng.gen_range(0..held);
            let nss = rng.gen_range(1..=held - offset);
            let first_esi = first.wrapping_add(u32::from(offset));
            let mut out = vec![0; size];
            let id = encoder
                .sub_window_repair_into(first_esi, nss, rng.gen(), random_dt(&mut rng), &mut out)
                .unwrap();
            let first_index = u64::from(first_esi.wrapping_sub(start));
            reference.add_repair(field, first_index, &id, &out);
            deliveries.push(Delivery::Repair(id, out));
        }
    }
    deliveries.shuffle(&mut rng);
    // Some duplicates, anywhere.
    for _ in 0..rng.gen_range(0..4) {
        if let Some(pick) = deliveries.choose(&mut rng) {
            let copy = match pick {
                Delivery::Source(esi, data) => Delivery::Source(*esi, data.clone()),
                Delivery::Repair(id, data) => Delivery::Repair(*id, data.clone()),
            };
            let at = rng.gen_range(0..=deliveries.len());
            deliveries.insert(at, copy);
        }
    }

    // Limits large enough that nothing is evicted: the decoder must then
    // find exactly what the equations determine.
    let config = if tight {
        let max_span = rng.gen_range(24..=40);
        DecoderConfig {
            max_window: 24,
            max_span,
            max_equations: rng.gen_range(1..=8),
            ..DecoderConfig::new(field, size)
        }
    } else {
        DecoderConfig {
            max_window: 24,
            max_span: 64,
            max_equations: 64,
            ..DecoderConfig::new(field, size)
        }
    };
    let mut decoder = Decoder::new(config).unwrap();
    let mut recovered = std::collections::BTreeMap::new();
    for delivery in &deliveries {
        let outcome = match delivery {
            Delivery::Source(esi, data) => decoder.add_source(*esi, data),
            Delivery::Repair(id, data) => decoder.add_repair(*id, data),
        };
        match outcome {
            Ok(Reception::Expired) if !tight => {
                return Err("expired although the span covers all".into())
            }
            Ok(_) => {}
            Err(e) => return Err(format!("error {e}")),
        }
        while let Some(source) = decoder.poll_recovered() {
            let index = u64::from(source.esi.wrapping_sub(start));
            if recovered.insert(index, source.data.to_vec()).is_some() {
                return Err(format!("ESI {} released twice", source.esi));
            }
        }
    }
    let expected = reference.solve();
    for (index, data) in &recovered {
        if data != &originals[*index as usize] {
            return Err(format!(
                "wrong bytes for index {index} (n {n}, field {field:?})"
            ));
        }
    }
    // A source that also arrives may be rebuilt before it does; compare on
    // the ones that never arrived.
    let lost: std::collections::BTreeMap<u64, Vec<u8>> = recovered
        .iter()
        .filter(|(index, _)| !reference.known.contains_key(index))
        .map(|(index, data)| (*index, data.clone()))
        .collect();
    let agrees = if tight {
        lost.iter()
            .all(|(index, data)| expected.get(index) == Some(data))
    } else {
        lost == expected
    };
    if !agrees {
        return Err(format!(
            "recovered {:?}, reference determines {:?}",
            lost.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>()
        ));
    }
    for (index, data) in &recovered {
        let esi = start.wrapping_add(*index as u32);
        if !tight && decoder.source(esi) != Some(&data[..]) {
            return Err(format!("source({esi}) disagrees"));
        }
    }
    Ok(())
}

#[test]
fn encoder_matches_formula_seeded() {
    for seed in 0..150 {
        assert!(encoder_matches_formula(seed), "seed {seed}");
    }
}

#[test]
fn encoder_matches_formula_quickcheck() {
    QuickCheck::new()
        .tests(100)
        .quickcheck(encoder_matches_formula as fn(u64) -> bool);
}

#[test]
fn decoder_matches_reference_seeded() {
    for seed in 0..600 {
        if let Err(e) = decoder_matches_reference(seed) {
            panic!("seed {seed}: {e}");
        }
    }
}

#[test]
fn decoder_matches_reference_quickcheck() {
    fn property(seed: u64) -> bool {
        decoder_matches_reference(seed).is_ok()
    }
    QuickCheck::new()
        .tests(300)
        .quickcheck(property as fn(u64) -> bool);
}

#[test]
fn decoder_under_tight_limits_never_invents_data() {
    for seed in 0..400 {
        if let Err(e) = decoder_scenario(seed, true) {
            panic!("seed {seed}: {e}");
        }
    }
}
