//! The FEC layer per datagram, with and without authentication: what the
//! tag of every FEC datagram (HMAC-SHA256 over the datagram) costs the
//! sender and the receiver. 1280-byte ADUs, RLC window 32, one repair per 4
//! sources (config P's workload), no loss.
//!
//! `cargo bench -p fec-benches --bench layer`

// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use std::time::Instant;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use fec_core::layer::auth::Keys;
use fec_core::layer::Layer;

const ADU: usize = 1280;
const BATCH: usize = 256;

fn keys() -> (Keys, Keys) {
    Keys::pair([3; 32], [4; 32])
}

fn sender(keyed: bool) -> Layer {
    let config = fec_plugins::drive::layer_config(ADU);
    let policy = fec_plugins::drive::native_policy();
    let mut layer = Layer::new(config, Some(Box::new(policy)), Instant::now());
    if keyed {
        layer.set_keys(&keys().0);
    }
    layer
}

fn receiver(keyed: bool) -> Layer {
    let mut layer = Layer::receive_only(fec_plugins::drive::layer_config(ADU));
    if keyed {
        layer.set_keys(&keys().1);
    }
    layer
}

fn adus() -> Vec<Bytes> {
    (0..BATCH)
        .map(|i| {
            let mut adu = vec![(i % 251) as u8; ADU];
            adu[0] = 0x40;
            Bytes::from(adu)
        })
        .collect()
}

/// What the sender puts on the wire for one batch of ADUs.
fn wire(keyed: bool) -> Vec<Bytes> {
    let mut layer = sender(keyed);
    let mut out = Vec::new();
    for adu in adus() {
        layer.send(Instant::now(), adu, &mut out);
    }
    out
}

fn layer(c: &mut Criterion) {
    let mut group = c.benchmark_group("layer_1280B_rlc32_1in4");
    group.throughput(Throughput::Bytes((BATCH * ADU) as u64));
    let batch = adus();
    for keyed in [false, true] {
        let name = if keyed { "keyed" } else { "unkeyed" };
        group.bench_function(format!("send/{name}"), |b| {
            let mut layer = sender(keyed);
            let mut out = Vec::with_capacity(4);
            let now = Instant::now();
            b.iter(|| {
                for adu in &batch {
                    layer.send(now, adu.clone(), &mut out);
                    std::hint::black_box(&out);
                    out.clear();
                }
            })
        });
        let datagrams = wire(keyed);
        group.bench_function(format!("receive/{name}"), |b| {
            let now = Instant::now();
            b.iter_batched(
                || (receiver(keyed), datagrams.clone()),
                |(mut layer, datagrams)| {
                    let (mut up, mut back) = (Vec::new(), Vec::new());
                    for d in datagrams {
                        layer.receive(now, d, &mut up, &mut back);
                    }
                    assert_eq!(up.len(), BATCH);
                    up
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, layer);
criterion_main!(benches);
