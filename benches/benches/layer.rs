//! The FEC layer per datagram, with and without authentication: what the
//! tag of every FEC datagram (AEGISMAC-128X2 over the datagram, see
//! `fec_core::layer::auth`) costs the sender and the receiver. 1280-byte
//! ADUs, RLC window 32, one repair per 4 sources (config P's workload), no
//! loss.
//!
//! Two more groups measure work that cannot help:
//! - `layer_repairs_no_loss`: a receiver that already holds every source
//!   gets the repairs of a batch (what a lossless path costs per repair);
//! - `layer_ack_50B_rlc32_1in4`: the receiving side of a bulk transfer,
//!   50-byte ACK-sized ADUs under the symbol size of pquic-host (the
//!   largest QUIC packet plus its ADU information); the repair bytes per
//!   ADU are printed once.
//!
//! The `mac_*` groups time the MAC candidates alone, tagging and verifying
//! 1300-byte and 60-byte datagrams: HMAC-SHA256 (the previous tag), GMAC
//! (ring's AES-128-GCM with the datagram as associated data and nothing to
//! encrypt), ring's ChaCha20-Poly1305 the same way, ring's AES-128-GCM
//! encrypting the datagram instead, and the AEGIS MACs of the aegis crate.
//!
//! `cargo bench -p fec-benches --bench layer` (`-- mac_` for the MACs only)

// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

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

/// A 12-byte AEAD nonce from a datagram number.
fn nonce(number: u32) -> ring::aead::Nonce {
    let mut nonce = [0u8; 12];
    nonce[8..].copy_from_slice(&number.to_be_bytes());
    ring::aead::Nonce::assume_unique_for_key(nonce)
}

fn macs(c: &mut Criterion) {
    use hmac::Mac as _;
    use ring::aead::{Aad, LessSafeKey, UnboundKey, AES_128_GCM, CHACHA20_POLY1305};
    let key = [3u8; 32];
    for len in [1300, 60] {
        let datagram: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let mut group = c.benchmark_group(format!("mac_{len}B"));
        group
            .throughput(Throughput::Bytes(len as u64))
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));

        let hmac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        let tag = {
            let mut mac = hmac.clone();
            mac.update(&datagram);
            mac.finalize().into_bytes()
        };
        group.bench_function("hmac-sha256/tag", |b| {
            b.iter(|| {
                let mut mac = hmac.clone();
                mac.update(black_box(&datagram));
                mac.finalize().into_bytes()
            })
        });
        group.bench_function("hmac-sha256/verify", |b| {
            b.iter(|| {
                let mut mac = hmac.clone();
                mac.update(black_box(&datagram));
                mac.verify_truncated_left(&tag[..16]).unwrap()
            })
        });

        for (name, algorithm, key_len) in [
            ("ring-aes128gcm-gmac", &AES_128_GCM, 16),
            ("ring-chacha20poly1305-aad", &CHACHA20_POLY1305, 32),
        ] {
            let aead = LessSafeKey::new(UnboundKey::new(algorithm, &key[..key_len]).unwrap());
            let mut number = 0u32;
            group.bench_function(format!("{name}/tag"), |b| {
                b.iter(|| {
                    number = number.wrapping_add(1);
                    let aad = Aad::from(black_box(&datagram[..]));
                    aead.seal_in_place_separate_tag(nonce(number), aad, &mut [])
                        .unwrap()
                })
            });
            let tag = aead
                .seal_in_place_separate_tag(nonce(0), Aad::from(&datagram[..]), &mut [])
                .unwrap();
            group.bench_function(format!("{name}/verify"), |b| {
                b.iter(|| {
                    let aad = Aad::from(black_box(&datagram[..]));
                    aead.open_in_place_separate_tag(nonce(0), aad, tag, &mut [], 0..)
                        .unwrap();
                })
            });
        }

        // Encrypting the datagram: GHASH then runs over the ciphertext, which
        // ring hashes many blocks at a time (the associated data goes one
        // block at a time).
        let aead = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &key[..16]).unwrap());
        let mut buffer = datagram.clone();
        let mut number = 0u32;
        group.bench_function("ring-aes128gcm-encrypt/seal", |b| {
            b.iter(|| {
                number = number.wrapping_add(1);
                aead.seal_in_place_separate_tag(nonce(number), Aad::empty(), &mut buffer)
                    .unwrap()
            })
        });
        let mut sealed = datagram.clone();
        let tag = aead
            .seal_in_place_separate_tag(nonce(0), Aad::empty(), &mut sealed)
            .unwrap();
        group.bench_function("ring-aes128gcm-encrypt/open", |b| {
            b.iter(|| {
                buffer.copy_from_slice(black_box(&sealed));
                aead.open_in_place_separate_tag(nonce(0), Aad::empty(), tag, &mut buffer, 0..)
                    .unwrap();
            })
        });

        macro_rules! aegis_mac {
            ($name:literal, $mac:ty, $key_len:literal) => {{
                let mac_key: [u8; $key_len] = key[..$key_len].try_into().unwrap();
                let mac = <$mac>::new(&mac_key);
                let tag = {
                    let mut mac = mac.clone();
                    mac.update(&datagram);
                    mac.finalize()
                };
                group.bench_function(concat!($name, "/tag"), |b| {
                    b.iter(|| {
                        let mut mac = mac.clone();
                        mac.update(black_box(&datagram));
                        mac.finalize()
                    })
                });
                group.bench_function(concat!($name, "/verify"), |b| {
                    b.iter(|| {
                        let mut mac = mac.clone();
                        mac.update(black_box(&datagram));
                        mac.verify(&tag).unwrap()
                    })
                });
            }};
        }
        aegis_mac!("aegismac-128l", aegis::aegis128l::Aegis128LMac<16>, 16);
        aegis_mac!("aegismac-128x2", aegis::aegis128x2::Aegis128X2Mac<16>, 16);
        aegis_mac!("aegismac-256", aegis::aegis256::Aegis256Mac<16>, 32);
        group.finish();
    }
}

criterion_group!(benches, layer, acks, repairs_no_loss, macs);
criterion_main!(benches);
