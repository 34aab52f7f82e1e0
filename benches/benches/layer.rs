//! The FEC layer per datagram, with and without authentication: what the
//! tag of every FEC datagram (HMAC-SHA256 over the datagram) costs the
//! sender and the receiver. 1280-byte ADUs, RLC window 32, one repair per 4
//! sources (config P's workload), no loss.
//!
//! Two more groups measure work that cannot help:
//! - `layer_repairs_no_loss`: a receiver that already holds every source
//!   gets the repairs of a batch (what a lossless path costs per repair);
//! - `layer_ack_50B_rlc32_1in4`: the receiving side of a bulk transfer,
//!   50-byte ACK-sized ADUs under the symbol size of pquic-host (the
//!   largest QUIC packet plus its ADU information); the repair bytes per
//!   ADU are printed once.
//!
//! `cargo bench -p fec-benches --bench layer`

// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use std::time::Instant;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use fec_core::layer::auth::Keys;
use fec_core::layer::{DatagramKind, Layer, LayerConfig};
use fec_core::pipeline::wire::{Header, ADU_INFO_LEN};

const ADU: usize = 1280;
const BATCH: usize = 256;
/// An ACK-only QUIC packet: short header, 8-byte connection id, ACK frame,
/// AEAD tag.
const ACK: usize = 50;
/// pquic-host's symbol size: its largest QUIC packet (a 1452-byte UDP
/// payload less the layer's overhead) plus the ADU information.
const QUIC_SYMBOL_SIZE: usize = 1452 - fec_core::layer::MAX_OVERHEAD + ADU_INFO_LEN;

fn keys() -> (Keys, Keys) {
    Keys::pair([3; 32], [4; 32])
}

fn config(adu: usize) -> LayerConfig {
    if adu == ADU {
        return fec_plugins::drive::layer_config(ADU);
    }
    let mut config = fec_plugins::drive::layer_config(adu);
    config.set_symbol_size(QUIC_SYMBOL_SIZE);
    config
}

fn sender(adu: usize, keyed: bool) -> Layer {
    let policy = fec_plugins::drive::native_policy();
    let mut layer = Layer::new(config(adu), Some(Box::new(policy)), Instant::now());
    if keyed {
        layer.set_keys(&keys().0);
    }
    layer
}

fn receiver(adu: usize, keyed: bool) -> Layer {
    let mut layer = Layer::receive_only(config(adu));
    if keyed {
        layer.set_keys(&keys().1);
    }
    layer
}

fn adus(len: usize) -> Vec<Bytes> {
    (0..BATCH)
        .map(|i| {
            let mut adu = vec![(i % 251) as u8; len];
            adu[0] = 0x40;
            Bytes::from(adu)
        })
        .collect()
}

/// What the sender puts on the wire for one batch of ADUs, and its repair
/// bytes.
fn wire(adu: usize, keyed: bool) -> (Vec<Bytes>, u64) {
    let mut layer = sender(adu, keyed);
    let mut out = Vec::new();
    for adu in adus(adu) {
        layer.send(Instant::now(), adu, &mut out);
    }
    (out, layer.stats().repair_bytes)
}

fn is_repair(datagram: &[u8]) -> bool {
    DatagramKind::of(datagram) == DatagramKind::Fec
        && Header::parse(datagram).is_ok_and(|(h, _)| h.is_repair())
}

fn send_receive(c: &mut Criterion, group: &str, adu: usize) {
    let mut group = c.benchmark_group(group);
    group.throughput(Throughput::Bytes((BATCH * adu) as u64));
    let batch = adus(adu);
    for keyed in [false, true] {
        let name = if keyed { "keyed" } else { "unkeyed" };
        group.bench_function(format!("send/{name}"), |b| {
            let mut layer = sender(adu, keyed);
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
        let (datagrams, repair_bytes) = wire(adu, keyed);
        eprintln!(
            "{adu}-byte ADUs, {name}: {} datagrams, {} repairs, {repair_bytes} repair bytes per {BATCH} ADUs ({:.1} per ADU)",
            datagrams.len(),
            datagrams.iter().filter(|d| is_repair(d)).count(),
            repair_bytes as f64 / BATCH as f64
        );
        group.bench_function(format!("receive/{name}"), |b| {
            let now = Instant::now();
            b.iter_batched(
                || (receiver(adu, keyed), datagrams.clone()),
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

fn layer(c: &mut Criterion) {
    send_receive(c, "layer_1280B_rlc32_1in4", ADU);
}

fn acks(c: &mut Criterion) {
    send_receive(c, "layer_ack_50B_rlc32_1in4", ACK);
}

/// The repairs of a lossless batch, at a receiver that already holds every
/// source they cover: all the work they cause is work that cannot help.
fn repairs_no_loss(c: &mut Criterion) {
    let mut group = c.benchmark_group("layer_repairs_no_loss");
    for (adu, keyed) in [(ADU, false), (ADU, true), (ACK, false)] {
        let (datagrams, _) = wire(adu, keyed);
        let (repairs, sources): (Vec<Bytes>, Vec<Bytes>) =
            datagrams.into_iter().partition(|d| is_repair(d));
        group.throughput(Throughput::Elements(repairs.len() as u64));
        let name = format!("{adu}B/{}", if keyed { "keyed" } else { "unkeyed" });
        group.bench_function(name, |b| {
            let now = Instant::now();
            b.iter_batched(
                || {
                    let mut layer = receiver(adu, keyed);
                    let (mut up, mut back) = (Vec::new(), Vec::new());
                    for d in &sources {
                        layer.receive(now, d.clone(), &mut up, &mut back);
                    }
                    assert_eq!(up.len(), BATCH);
                    (layer, repairs.clone())
                },
                |(mut layer, repairs)| {
                    let (mut up, mut back) = (Vec::new(), Vec::new());
                    for d in repairs {
                        layer.receive(now, d, &mut up, &mut back);
                    }
                    assert!(up.is_empty());
                    layer
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, layer, acks, repairs_no_loss);
criterion_main!(benches);
