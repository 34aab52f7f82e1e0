//! Loss-trace tests (issue 3, part 4, RLC): seeded Bernoulli and
//! Gilbert-Elliott losses over source and repair packets alike. Every
//! recovered symbol must be byte-identical to what was sent, and the
//! residual loss must be exactly what the received equations allow (checked
//! against a naive solver over the whole trace), or, with streaming limits,
//! no more than a small margin above it.

mod rlc_support;

use std::collections::BTreeMap;

use fec_core::rlc::{Decoder, DecoderConfig, Encoder, Field, RepairPayloadId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rlc_support::{Loss, ReferenceSystem};

const E: usize = 16;

struct Outcome {
    /// Source symbols lost in transit.
    lost: usize,
    /// Lost sources rebuilt.
    recovered: usize,
    /// Lost sources the received equations determine (the best any decoder
    /// can do).
    determinable: usize,
}

impl Outcome {
    fn residual(&self, sent: usize) -> f64 {
        (self.lost - self.recovered) as f64 / sent as f64
    }
}

/// The sender's side: one repair over the current window after every
/// `interval` sources.
#[derive(Clone, Copy)]
struct Code {
    field: Field,
    dt: u8,
    window: usize,
    interval: usize,
}

const DENSE: Code = Code {
    field: Field::Gf256,
    dt: 15,
    window: 16,
    interval: 4,
};
const BINARY: Code = Code {
    field: Field::Gf2,
    dt: 7,
    window: 16,
    interval: 3,
};

/// A stream of `sources` symbols through `loss`.
fn run(code: Code, sources: usize, loss: Loss, config: DecoderConfig, seed: u64) -> Outcome {
    let Code {
        field,
        dt,
        window,
        interval,
    } = code;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut channel = loss.model(seed ^ 0x5eed);
    let start: u32 = u32::MAX - 100;
    let mut encoder = Encoder::new(field, E, window).unwrap();
    encoder.reset(start);
    let mut decoder = Decoder::new(config).unwrap();
    let mut reference = ReferenceSystem::default();
    let mut sent: Vec<[u8; E]> = Vec::new();
    let mut lost = Vec::new();
    let mut recovered: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let index_of = |esi: u32| u64::from(esi.wrapping_sub(start));
    let mut collect = |decoder: &mut Decoder, sent: &[[u8; E]]| {
        while let Some(source) = decoder.poll_recovered() {
            let index = index_of(source.esi);
            assert_eq!(
                &source.data[..],
                &sent[index as usize][..],
                "recovered ESI {} differs from what was sent",
                source.esi
            );
            assert!(recovered.insert(index, source.data.to_vec()).is_none());
        }
    };
    for n in 0..sources {
        let mut symbol = [0u8; E];
        rng.fill(&mut symbol[..]);
        sent.push(symbol);
        let esi = encoder.push_source(&symbol).unwrap();
        if channel.lost() {
            lost.push(n as u64);
        } else {
            decoder.add_source(esi, &symbol).unwrap();
            reference.add_source(index_of(esi), &symbol);
        }
        if (n + 1) % interval == 0 {
            let (id, repair) = encoder.next_repair(dt).unwrap();
            if !channel.lost() {
                let wire = id.to_bytes().unwrap();
                let id = RepairPayloadId::parse(&wire).unwrap();
                decoder.add_repair(id, &repair).unwrap();
                reference.add_repair(field, index_of(id.first_source_esi), &id, &repair);
            }
        }
        collect(&mut decoder, &sent);
    }
    let determinable = reference.solve();
    // Everything recovered was lost (a source that arrived is never
    // "recovered" again) and is among what the equations determine.
    for (index, data) in &recovered {
        assert!(lost.contains(index), "index {index} was not lost");
        assert_eq!(determinable.get(index), Some(data));
    }
    Outcome {
        lost: lost.len(),
        recovered: recovered.len(),
        determinable: determinable.len(),
    }
}

fn unlimited(field: Field, sources: usize) -> DecoderConfig {
    DecoderConfig {
        max_window: 64,
        max_span: sources + 64,
        max_equations: sources,
        ..DecoderConfig::new(field, E)
    }
}

const SOURCES: usize = 1200;

fn bernoulli_levels() -> [f64; 5] {
    [0.01, 0.02, 0.05, 0.10, 0.20]
}

fn gilbert_elliott_models() -> [(&'static str, Loss); 3] {
    [
        // mean burst 2, about 2% loss
        (
            "ge-short",
            Loss::GilbertElliott {
                p: 0.01,
                r: 0.5,
                k: 1.0,
                h: 0.0,
            },
        ),
        // mean burst 4, about 5% loss
        (
            "ge-medium",
            Loss::GilbertElliott {
                p: 0.013,
                r: 0.25,
                k: 0.995,
                h: 0.1,
            },
        ),
        // mean burst 10, about 9% loss
        (
            "ge-long",
            Loss::GilbertElliott {
                p: 0.01,
                r: 0.1,
                k: 1.0,
                h: 0.0,
            },
        ),
    ]
}

#[test]
fn unbounded_decoder_recovers_exactly_what_the_equations_determine() {
    // Window 16, one repair per 4 sources (25% overhead), GF(2^8) dense.
    for (i, p) in bernoulli_levels().into_iter().enumerate() {
        let outcome = run(
            DENSE,
            SOURCES,
            Loss::Bernoulli(p),
            unlimited(Field::Gf256, SOURCES),
            100 + i as u64,
        );
        assert_eq!(outcome.recovered, outcome.determinable, "bernoulli {p}");
    }
    for (i, (name, model)) in gilbert_elliott_models().into_iter().enumerate() {
        let outcome = run(
            DENSE,
            SOURCES,
            model,
            unlimited(Field::Gf256, SOURCES),
            200 + i as u64,
        );
        assert_eq!(outcome.recovered, outcome.determinable, "{name}");
    }
    // GF(2), half-density coefficients.
    for (i, p) in bernoulli_levels().into_iter().enumerate() {
        let outcome = run(
            BINARY,
            SOURCES,
            Loss::Bernoulli(p),
            unlimited(Field::Gf2, SOURCES),
            300 + i as u64,
        );
        assert_eq!(outcome.recovered, outcome.determinable, "gf2 bernoulli {p}");
    }
}

#[test]
fn streaming_decoder_recovers_nearly_all_it_can() {
    // Streaming limits: span 4x the window, as many equations as the window.
    let mut report = Vec::new();
    let streaming = DecoderConfig::new(Field::Gf256, E).with_window(16);
    for (i, p) in bernoulli_levels().into_iter().enumerate() {
        let outcome = run(
            DENSE,
            SOURCES,
            Loss::Bernoulli(p),
            streaming,
            400 + i as u64,
        );
        report.push((format!("bernoulli {p}"), outcome));
    }
    for (i, (name, model)) in gilbert_elliott_models().into_iter().enumerate() {
        let outcome = run(DENSE, SOURCES, model, streaming, 500 + i as u64);
        report.push((name.to_string(), outcome));
    }
    for (name, outcome) in &report {
        eprintln!(
            "{name}: lost {}, recovered {}, determinable {}, residual {:.4}",
            outcome.lost,
            outcome.recovered,
            outcome.determinable,
            outcome.residual(SOURCES)
        );
        // Eviction may cost a little, never much.
        let missed = outcome.determinable - outcome.recovered;
        assert!(
            missed * 50 <= outcome.determinable.max(1),
            "{name}: missed {missed} of {}",
            outcome.determinable
        );
    }
    // At low loss 25% overhead leaves (almost) nothing behind.
    for (name, outcome) in &report[..2] {
        assert!(outcome.residual(SOURCES) <= 0.002, "{name}");
    }
}

/// RFC 8681 / issue 3 statistic: GF(2^8), DT = 15, L losses in a window of
/// 32 and L + 1 repair symbols over that window: all L rebuilt in at least
/// 99.9% of 10^4 seeded trials.
#[test]
fn dense_gf256_recovers_l_losses_from_l_plus_one_repairs() {
    const WINDOW: usize = 32;
    const TRIALS: usize = 10_000;
    let mut rng = StdRng::seed_from_u64(8681);
    let mut failures = 0;
    let mut encoder = Encoder::new(Field::Gf256, E, WINDOW).unwrap();
    for trial in 0..TRIALS {
        let losses = rng.gen_range(1..=10);
        let mut lost = rand::seq::index::sample(&mut rng, WINDOW, losses).into_vec();
        lost.sort_unstable();
        encoder.reset(rng.gen());
        encoder.set_next_repair_key(rng.gen());
        let mut decoder =
            Decoder::new(DecoderConfig::new(Field::Gf256, E).with_window(WINDOW)).unwrap();
        let mut sent = Vec::with_capacity(WINDOW);
        for i in 0..WINDOW {
            let mut symbol = [0u8; E];
            rng.fill(&mut symbol[..]);
            let esi = encoder.push_source(&symbol).unwrap();
            if lost.binary_search(&i).is_err() {
                decoder.add_source(esi, &symbol).unwrap();
            }
            sent.push((esi, symbol));
        }
        for _ in 0..=losses {
            let (id, repair) = encoder.next_repair(15).unwrap();
            decoder.add_repair(id, &repair).unwrap();
        }
        let mut recovered = 0;
        while let Some(source) = decoder.poll_recovered() {
            let offset = source.esi.wrapping_sub(sent[0].0) as usize;
            assert_eq!(&source.data[..], &sent[offset].1[..], "trial {trial}");
            recovered += 1;
        }
        if recovered != losses {
            failures += 1;
        }
    }
    eprintln!("L+1 repairs: {failures} failures in {TRIALS} trials");
    assert!(failures * 1000 <= TRIALS, "{failures} failures in {TRIALS}");
}
