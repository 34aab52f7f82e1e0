//! Resource limits under hostile input, measured with a counting allocator:
//! how much memory a decoder may hold, how much one packet may make it
//! allocate, how big the plugin cache may grow. The bounds are generous
//! multiples of what the configuration implies; what they catch is growth
//! with the length of a hostile stream, which no bound survives.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

use bytes::Bytes;
use fec_core::pipeline::wire::{Header, FIRST_BYTE};
use fec_core::pipeline::{Config, Decoder, Scheme};
use fec_core::rlc::{self, DecoderConfig, Field, RepairPayloadId};
use fec_plugin_sdk::abi::{Anchor, Operation};
use fec_plugin_sdk::package::{Manifest, Package, PlugletEntry};
use pquic_host::fec::QuicLayer;
use pquic_host::layer::FecLayer;
use pquic_host::plugin::PluginCache;
use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use rand_xoshiro::SplitMix64;

/// Counts this thread's live heap bytes and every byte it ever allocated.
/// Per thread, so tests running in parallel do not see each other.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    let _ = LIVE.try_with(|live| live.set(live.get() + delta));
    if delta > 0 {
        let _ = ALLOCATED.try_with(|total| total.set(total.get() + delta as usize));
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged and only adds bookkeeping in thread-locals that never allocate
// (const-initialised `Cell`s, accessed with `try_with`).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize);
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize);
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as isize));
        // SAFETY: `ptr` came from `System` with this layout (every allocation
        // goes through the methods above).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded unchanged; `ptr` and `layout` came from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.with(Cell::get)
}

fn allocated() -> usize {
    ALLOCATED.with(Cell::get)
}

/// Runs `step` `count` times and returns the peak live bytes above `base`
/// (taken before the decoder under test was made) in the first and in the
/// second half of the run, and the most bytes allocated by one step.
fn measure(base: isize, count: usize, mut step: impl FnMut(usize)) -> (isize, isize, usize) {
    let (mut first_half, mut second_half, mut per_call) = (0, 0, 0);
    for i in 0..count {
        let before = allocated();
        step(i);
        per_call = per_call.max(allocated() - before);
        if allocated() - before > 30000 {
            eprintln!("DEBUG op {i} allocated {}", allocated() - before);
        }
        let held = live() - base;
        if i < count / 2 {
            first_half = first_half.max(held);
        } else {
            second_half = second_half.max(held);
        }
    }
    (first_half, second_half, per_call)
}

/// `len` bytes of noise from the seeded generator of hostile field values.
fn noise(random: &mut SplitMix64, len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    random.fill_bytes(&mut bytes);
    bytes
}

fn assert_bounded(what: &str, (first, second, per_call): (isize, isize, usize), limit: usize) {
    eprintln!(
        "{what}: peak live {first} then {second} bytes, at most {per_call} allocated per packet"
    );
    assert!(
        second as usize <= limit,
        "{what}: {second} live bytes, limit {limit}"
    );
    // Bounded means it stops growing: the second half of the flood may not
    // need much more than the first.
    assert!(
        second <= first + first / 4 + 4096,
        "{what}: memory keeps growing ({first} then {second} bytes)"
    );
}

#[test]
fn rlc_decoder_memory_is_capped_under_a_flood_of_distinct_repairs() {
    const E: usize = 1024;
    let config = DecoderConfig::new(Field::Gf256, E).with_window(64);
    let base = live();
    let mut decoder = rlc::Decoder::new(config).expect("valid");
    let mut random = SplitMix64::seed_from_u64(7);
    let mut esi = 0u32;
    let usage = measure(base, 6000, |i| {
        // Distinct keys over windows that creep forward, never a source: every
        // repair is a new pending equation until the store is full.
        if i % 8 == 0 {
            esi = esi.wrapping_add(1 + (random.next_u64() % 3) as u32);
        }
        let id = RepairPayloadId {
            repair_key: random.next_u64() as u16,
            dt: 15,
            nss: 1 + (random.next_u64() % 64) as u16,
            first_source_esi: esi,
        };
        let _ = decoder.add_repair(id, &noise(&mut random, E));
        assert!(decoder.pending_equations() <= config.max_equations);
        while decoder.poll_recovered().is_some() {}
    });
    // Sources, equations (coefficients and data), and the repair digests.
    let implied = config.max_span * E
        + config.max_equations * (config.max_span + E) * 2
        + 4 * config.max_span * 64;
    assert_bounded("RLC decoder", usage, 2 * implied);
    assert!(
        usage.2 <= 4 * E + 64 * 1024,
        "one repair allocated {} bytes",
        usage.2
    );
}

/// Floods a pipeline decoder with `count` packets under hostile headers: a
/// repair header carries a full symbol of noise (so it reaches the codec), a
/// source header fewer than `source_len_below` bytes of noise.
fn pipeline_flood(
    config: &Config,
    count: usize,
    source_len_below: u64,
    mut header: impl FnMut(&mut SplitMix64) -> Header,
) -> (isize, isize, usize) {
    let base = live();
    let mut decoder = Decoder::new(config).expect("valid");
    let mut random = SplitMix64::seed_from_u64(11);
    let mut accepted = 0u64;
    let mut packet = |r: &mut SplitMix64| {
        let header = header(r);
        let mut bytes = header.encode().to_vec();
        let len = if header.is_repair() {
            config.symbol_size()
        } else {
            (r.next_u64() % source_len_below) as usize
        };
        bytes.extend(noise(r, len));
        bytes
    };
    let usage = measure(base, count, |_| {
        accepted += u64::from(decoder.receive(Bytes::from(packet(&mut random))).is_ok());
        // Never polled: the recovered queue must stay capped as well.
    });
    let counters = decoder.counters();
    assert_eq!(counters.received, accepted);
    assert!(counters.received + counters.rejected >= count as u64);
    usage
}

#[test]
fn pipeline_decoders_stay_bounded_under_hostile_streams() {
    const E: usize = 1203;
    // Reed-Solomon: sources and repairs of random blocks, indices and shapes.
    let mut rs = Config::new(Scheme::ReedSolomon {
        data: 32,
        parity: 32,
    });
    rs.set_symbol_size(E)
        .set_max_blocks(16)
        .set_max_recovered(256);
    let usage = pipeline_flood(&rs, 6000, E as u64 - 3, |r| {
        let block = (r.next_u64() % 64) as u16;
        if r.next_u64() % 2 == 0 {
            Header::RsSource {
                flow: 0,
                block,
                index: (r.next_u64() % 32) as u8,
            }
        } else {
            Header::RsRepair {
                block,
                data: 32,
                parity: 32,
                index: (r.next_u64() % 32) as u8,
            }
        }
    });
    let blocks = 16 * (32 + 32) * (E + 256);
    assert_bounded(
        "pipeline RS",
        usage,
        3 * blocks + 256 * (E + 64) + (1 << 20),
    );

    // RLC: repair symbols with random keys over creeping windows, and sources.
    let mut rlc = Config::new(Scheme::Rlc {
        field: Field::Gf256,
        window: 128,
        dt: 15,
    });
    rlc.set_symbol_size(E).set_max_recovered(256);
    let mut esi = 0u32;
    let usage = pipeline_flood(&rlc, 20000, 200, |r| {
        esi = esi.wrapping_add((r.next_u64() % 2) as u32);
        if r.next_u64() % 4 == 0 {
            Header::RlcSource {
                gf256: true,
                flow: 1,
                esi,
            }
        } else {
            Header::RlcRepair {
                gf256: true,
                repair_key: r.next_u64() as u16,
                dt: 15,
                nss: 1 + (r.next_u64() % 128) as u16,
                first_esi: esi.wrapping_sub((r.next_u64() % 64) as u32),
            }
        }
    });
    let span = 2 * 128;
    let implied = span * E + 128 * (span + E) * 2 + 4 * span * 64;
    assert_bounded(
        "pipeline RLC",
        usage,
        3 * implied + 256 * (E + 64) + (1 << 20),
    );

    // RaptorQ: repair packets of random blocks and ESIs, and sources.
    let mut raptorq = Config::new(Scheme::RaptorQ {
        source_symbols: 32,
        repair_symbols: 16,
    });
    raptorq
        .set_symbol_size(E)
        .set_max_blocks(8)
        .set_max_recovered(256);
    let usage = pipeline_flood(&raptorq, 3000, E as u64 - 3, |r| {
        let block = (r.next_u64() % 16) as u8;
        if r.next_u64() % 2 == 0 {
            Header::RaptorqSource {
                flow: 2,
                block,
                esi: (r.next_u64() % 32) as u32,
            }
        } else {
            Header::RaptorqRepair {
                source_symbols: 32,
                block,
                esi: 32 + (r.next_u64() % 4096) as u32,
            }
        }
    });
    let blocks = 8 * (32 + 32 + 16) * (E + 256);
    assert_bounded(
        "pipeline RaptorQ",
        usage,
        4 * blocks + 256 * (E + 64) + (1 << 20),
    );
}

#[test]
fn fec_layer_receive_path_stays_bounded_under_huge_sequence_gaps() {
    // A peer that claims enormous sequence gaps: every source packet jumps
    // the ESI by more than the per-gap cap, and no timer runs in between.
    let base = live();
    let mut layer = QuicLayer::receive_only();
    let now = Instant::now();
    let mut esi = 0u32;
    let mut random = SplitMix64::seed_from_u64(3);
    let usage = measure(base, 8000, |_| {
        esi = esi.wrapping_add(5000);
        let mut packet = Header::RlcSource {
            gf256: true,
            flow: 0,
            esi,
        }
        .encode()
        .to_vec();
        packet.extend(noise(&mut random, 40));
        let (mut to_quinn, mut out) = (Vec::new(), Vec::new());
        layer.on_incoming(now, Bytes::from(packet), &mut to_quinn, &mut out);
        assert_eq!(to_quinn.len(), 1, "the source's own QUIC packet");
    });
    assert_bounded("FEC layer", usage, 16 << 20);
    assert_eq!(layer.stats().rejected, 0);
}

#[test]
fn fec_layer_refuses_forged_packets_without_growing() {
    let base = live();
    let mut layer = QuicLayer::receive_only();
    let now = Instant::now();
    let mut random = SplitMix64::seed_from_u64(5);
    let usage = measure(base, 4000, |_| {
        let len = 1 + (random.next_u64() % 1400) as usize;
        let mut datagram = noise(&mut random, len);
        datagram[0] = if random.next_u64().is_multiple_of(2) {
            FIRST_BYTE
        } else {
            datagram[0] & !0x40
        };
        let (mut to_quinn, mut out) = (Vec::new(), Vec::new());
        layer.on_incoming(now, Bytes::from(datagram), &mut to_quinn, &mut out);
    });
    assert_bounded("FEC layer, forged datagrams", usage, 64 << 20);
}

#[test]
fn plugin_cache_stays_within_its_byte_bound() {
    let dir = tempfile::tempdir().expect("scratch directory");
    const MAX: u64 = 4096;
    let cache = PluginCache::open(dir.path(), MAX).expect("cache dir");
    let mut largest = 0;
    let mut last = String::new();
    for i in 0..60u32 {
        // Distinct valid packages of 1-100 instructions.
        let instructions = 1 + (i as usize * 37) % 100;
        let mut code = Vec::new();
        for _ in 1..instructions {
            code.extend([0xb7, 0, 0, 0, i as u8, 0, 0, 0]); // mov r0, i
        }
        code.extend([0x95, 0, 0, 0, 0, 0, 0, 0]); // exit
        let package = Package::new(Manifest {
            name: format!("p{i}"),
            version: "1".into(),
            memory_size: 256,
            helpers: vec![],
            pluglets: vec![PlugletEntry {
                name: "replace/on_source".into(),
                operation: Operation::OnSource,
                anchor: Anchor::Replace,
                code,
            }],
        })
        .expect("valid package")
        .to_bytes();
        largest = largest.max(package.len() as u64);
        last = cache.put(&package).expect("stored");
        let total: u64 = cache
            .list()
            .expect("listed")
            .iter()
            .map(|(_, size)| size)
            .sum();
        assert!(
            total <= MAX.max(largest),
            "cache holds {total} bytes, bound {MAX}"
        );
    }
    assert!(cache.get(&last).is_some(), "the newest package was evicted");
}
