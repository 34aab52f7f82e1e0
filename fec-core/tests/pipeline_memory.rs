//! Memory follows what is held, never the configured maximum.
//!
//! A counting global allocator tracks the bytes each thread has live, so
//! the figures below are those of the decoder (or encoder) under test, whatever
//! other tests run meanwhile on other threads. Each decoder is made with the
//! wide limits a QUIC host gives a peer it has just met (RLC window 256, RS
//! 128 + 128, RaptorQ 256 sources / 1024 repairs, symbol size 1445): one
//! datagram from a spoofed source used to cost 2.2 MB (RLC), 8.3 KB (RS) or
//! 13.4 KB (RaptorQ) of server memory, reserved up to those limits.
//!
//! Run `cargo test -p fec-core --test pipeline_memory -- --nocapture` to see
//! the measured bytes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use fec_core::pipeline::wire::Header;
use fec_core::pipeline::{Config, Decoder, Encoder, Scheme};
use fec_core::rlc::Field;

/// [`System`], counting the bytes and allocations of the calling thread.
struct Counting;

thread_local! {
    /// Bytes allocated minus bytes freed by this thread.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// Allocations (and reallocations) made by this thread.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// Adds `bytes` to the calling thread's live count and, when `allocation`,
/// one to its allocation count. `try_with`: a thread's own teardown may free
/// memory after its counters are gone, and that must not panic.
fn count(bytes: isize, allocation: bool) {
    let _ = LIVE.try_with(|live| live.set(live.get() + bytes));
    if allocation {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every method forwards its arguments unchanged to `System`, which
// implements `GlobalAlloc` correctly; the counting touches only const-
// initialised thread-local cells, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract (non-zero size), which
        // is all `System.alloc` needs.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            count(layout.size() as isize, true);
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            count(layout.size() as isize, true);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: the caller passes a block this allocator (that is, `System`)
        // handed out with this layout.
        unsafe { System.dealloc(pointer, layout) };
        count(-(layout.size() as isize), false);
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller passes a block `System` handed out with `layout`
        // and a valid new size, as `System.realloc` requires.
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            count(new_size as isize - layout.size() as isize, true);
        }
        moved
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn live() -> isize {
    LIVE.with(Cell::get)
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

/// The symbol size the QUIC host uses.
const E: usize = 1445;

/// The bound for a decoder made and handed one datagram: a few symbols'
/// worth. Measured: at most 5.7 KB (an RLC decoder after one repair: the
/// equation's symbol and coefficients, the ring's slots for the 256
/// positions it covers, the repair's digest and coefficients); before memory
/// followed what is held, the RLC decoders took 2.4 MB here, the RaptorQ
/// one 13 KB.
const ONE_DATAGRAM_BOUND: isize = 8 << 10;

/// A deterministic pseudo-random u64 for (a, b) (SplitMix64's finaliser).
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b.wrapping_add(0x632b_e59b_d9b4_e019);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn bytes(seed: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| mix(seed, i as u64) as u8).collect()
}

/// The schemes and limits a QUIC host gives a decoder on first sight of a
/// peer's scheme.
fn wide() -> Vec<(&'static str, Config)> {
    let schemes = [
        (
            "RLC GF(2^8)",
            Scheme::Rlc {
                field: Field::Gf256,
                window: 256,
                dt: 15,
            },
        ),
        (
            "RLC GF(2)",
            Scheme::Rlc {
                field: Field::Gf2,
                window: 256,
                dt: 15,
            },
        ),
        (
            "Reed-Solomon",
            Scheme::ReedSolomon {
                data: 128,
                parity: 128,
            },
        ),
        (
            "RaptorQ",
            Scheme::RaptorQ {
                source_symbols: 256,
                repair_symbols: 1024,
            },
        ),
    ];
    schemes
        .into_iter()
        .map(|(name, scheme)| {
            let mut config = Config::new(scheme);
            config.set_symbol_size(E);
            (name, config)
        })
        .collect()
}

fn packet(header: Header, payload: &[u8]) -> Bytes {
    let mut packet = header.encode().to_vec();
    packet.extend_from_slice(payload);
    Bytes::from(packet)
}

/// Source packet number `n` of `config`'s scheme carrying a longest ADU
/// (`seed` varies its bytes): RLC ESI `n`; block codes fill block after block.
fn source(config: &Config, n: u32, seed: u64) -> Bytes {
    let adu = bytes(seed ^ u64::from(n), config.max_adu_len());
    let header = match *config.scheme() {
        Scheme::Rlc { field, .. } => Header::RlcSource {
            gf256: field == Field::Gf256,
            flow: 1,
            esi: n,
        },
        Scheme::ReedSolomon { data, .. } => Header::RsSource {
            flow: 1,
            block: (n as usize / data) as u16,
            index: (n as usize % data) as u8,
        },
        Scheme::RaptorQ { source_symbols, .. } => Header::RaptorqSource {
            flow: 1,
            block: (n as usize / source_symbols) as u8,
            esi: n % source_symbols as u32,
        },
        _ => unreachable!("a scheme this test does not know"),
    };
    packet(header, &adu)
}

/// Repair packet number `n` of block 0 (or of the window of ESIs 0..256)
/// with a garbage symbol: what a peer that lies costs.
fn repair(config: &Config, n: u32, seed: u64) -> Bytes {
    let header = match *config.scheme() {
        Scheme::Rlc { field, window, .. } => Header::RlcRepair {
            gf256: field == Field::Gf256,
            repair_key: n as u16,
            dt: 15,
            nss: window as u16,
            first_esi: 0,
        },
        Scheme::ReedSolomon { data, parity } => Header::RsRepair {
            block: 0,
            data: data as u8,
            parity: parity as u8,
            index: (n as usize % parity) as u8,
        },
        Scheme::RaptorQ { source_symbols, .. } => Header::RaptorqRepair {
            source_symbols: source_symbols as u16,
            block: 0,
            esi: source_symbols as u32 + n,
        },
        _ => unreachable!("a scheme this test does not know"),
    };
    packet(header, &bytes(seed ^ u64::from(n), E))
}

/// Live bytes of a decoder for `config` after it received `packets(n)` for
/// `n` in `0..count`, each packet made inside the measurement (a host
/// allocates the datagram it hands over). The decoder's own answers (ADUs,
/// errors) are dropped as a host would.
fn decoder_bytes(config: &Config, count: u32, packets: impl Fn(u32) -> Bytes) -> isize {
    let before = live();
    let mut decoder = Decoder::new(config).unwrap();
    for n in 0..count {
        let _ = decoder.receive(packets(n));
    }
    while decoder.poll_recovered().is_some() {}
    let held = live() - before;
    drop(decoder);
    held
}

/// Makes one-off process-wide state (the GF(2^8) engine choice, the
/// thread's own buffers) exist before anything is measured.
fn warm_up() {
    for (_, config) in wide() {
        decoder_bytes(&config, 4, |n| source(&config, n, 0));
        decoder_bytes(&config, 4, |n| repair(&config, n, 0));
    }
}

#[test]
fn one_source_datagram_costs_a_few_symbols() {
    warm_up();
    for (name, config) in wide() {
        let created = decoder_bytes(&config, 0, |_| Bytes::new());
        let one = decoder_bytes(&config, 1, |n| source(&config, n, 1));
        eprintln!("{name}: new decoder {created} B, after one source datagram {one} B");
        assert!(
            one < ONE_DATAGRAM_BOUND,
            "{name}: one source datagram holds {one} bytes"
        );
    }
}

#[test]
fn a_source_far_into_a_large_block_costs_no_more() {
    warm_up();
    // The largest blocks the pipeline takes; the source is the block's last.
    let mut config = Config::new(Scheme::RaptorQ {
        source_symbols: 8192,
        repair_symbols: 1024,
    });
    config.set_symbol_size(E);
    let one = decoder_bytes(&config, 1, |_| {
        let header = Header::RaptorqSource {
            flow: 1,
            block: 0,
            esi: 8191,
        };
        packet(header, &bytes(8, config.max_adu_len()))
    });
    // Before, a block took 40 bytes per possible source up front: 320 KB.
    eprintln!("RaptorQ K = 8192: after source 8191 {one} B");
    assert!(one < ONE_DATAGRAM_BOUND, "source 8191 holds {one} bytes");
}

#[test]
fn one_repair_or_garbage_datagram_costs_a_few_symbols() {
    warm_up();
    for (name, config) in wide() {
        let one = decoder_bytes(&config, 1, |n| repair(&config, n, 2));
        eprintln!("{name}: after one repair datagram {one} B");
        assert!(
            one < ONE_DATAGRAM_BOUND,
            "{name}: one repair datagram holds {one} bytes"
        );
    }
}

/// Bytes a decoder may hold per source or repair datagram it keeps: the
/// symbol, its share of geometric growth (at most as much again), and its
/// bookkeeping.
const PER_HELD_DATAGRAM: isize = 2 * E as isize + 1024;

#[test]
fn memory_grows_with_the_sources_held() {
    warm_up();
    for (name, config) in wide() {
        for count in [8, 64, 200] {
            let held = decoder_bytes(&config, count, |n| source(&config, n, 3));
            eprintln!("{name}: after {count} source datagrams {held} B");
            let bound = ONE_DATAGRAM_BOUND + count as isize * PER_HELD_DATAGRAM;
            assert!(
                held < bound,
                "{name}: {count} sources hold {held} > {bound} bytes"
            );
        }
        // Sources spread over the whole span (RLC) or block (block codes)
        // cost no more than packed ones.
        let spread = |n: u32| match *config.scheme() {
            Scheme::Rlc { .. } => source(&config, n * 100, 4),
            Scheme::ReedSolomon { .. } => source(&config, [0, 127, 60][n as usize], 4),
            _ => source(&config, [0, 255, 100][n as usize], 4),
        };
        let held = decoder_bytes(&config, 3, spread);
        eprintln!("{name}: after 3 spread-out source datagrams {held} B");
        let bound = ONE_DATAGRAM_BOUND + 3 * PER_HELD_DATAGRAM;
        assert!(
            held < bound,
            "{name}: 3 spread sources hold {held} > {bound} bytes"
        );
    }
}

#[test]
fn memory_grows_with_the_repairs_held() {
    warm_up();
    for (name, config) in wide() {
        for count in [8, 64] {
            let held = decoder_bytes(&config, count, |n| repair(&config, n, 5));
            eprintln!("{name}: after {count} garbage repair datagrams {held} B");
            // An RLC equation also keeps a coefficient per position of the
            // span it covers (the window, 256 here).
            let bound = ONE_DATAGRAM_BOUND + count as isize * (PER_HELD_DATAGRAM + 512);
            assert!(
                held < bound,
                "{name}: {count} repairs hold {held} > {bound} bytes"
            );
        }
    }
}

#[test]
fn garbage_holds_nothing() {
    warm_up();
    for (name, config) in wide() {
        // Random bytes, then random bytes behind a valid first byte (they
        // parse as some scheme's header more often).
        let held = decoder_bytes(&config, 2000, |n| {
            let mut datagram = bytes(u64::from(n) ^ 6, 1200);
            if n % 2 == 0 {
                datagram[0] = fec_core::pipeline::wire::FIRST_BYTE;
            }
            Bytes::from(datagram)
        });
        eprintln!("{name}: after 2000 garbage datagrams {held} B");
        assert!(
            held < ONE_DATAGRAM_BOUND,
            "{name}: garbage holds {held} bytes"
        );
    }
}

#[test]
fn a_new_encoder_holds_no_block_or_window() {
    warm_up();
    for (name, config) in wide() {
        let adu = Bytes::from(bytes(7, config.max_adu_len()));
        let before = live();
        let mut encoder = Encoder::new(&config).unwrap();
        let created = live() - before;
        let packet = encoder.protect(1, adu.clone()).unwrap();
        drop(packet);
        let one = live() - before;
        eprintln!("{name}: new encoder {created} B, after one ADU {one} B");
        assert!(
            one < ONE_DATAGRAM_BOUND,
            "{name}: encoder holds {one} bytes"
        );
        for _ in 1..100 {
            let _ = encoder.protect(1, adu.clone());
        }
        let hundred = live() - before;
        eprintln!("{name}: encoder after 100 ADUs {hundred} B");
        let bound = ONE_DATAGRAM_BOUND + 100 * PER_HELD_DATAGRAM;
        assert!(
            hundred < bound,
            "{name}: encoder holds {hundred} > {bound} bytes"
        );
    }
}

/// Sends `rounds` rounds of `per_round` ADUs through an encoder and a
/// decoder for `config` (every fifth source lost, block codes in blocks of
/// 32, four repairs per 32 sources), and returns the live bytes of both after
/// each round, and the source packets the decoder received in the last
/// round with the allocations those receives made.
fn stream(config: &Config, rounds: usize, per_round: u32) -> (Vec<isize>, usize, usize) {
    let mut encoder = Encoder::new(config).unwrap();
    if !matches!(config.scheme(), Scheme::Rlc { .. }) {
        encoder.set_window(32).unwrap();
    }
    let mut decoder = Decoder::new(config).unwrap();
    let adus: Vec<Bytes> = (0..64)
        .map(|n| {
            Bytes::from(bytes(
                n,
                100 + (n as usize * 37) % (config.max_adu_len() - 100),
            ))
        })
        .collect();
    // Bytes made from a vector allocate their shared header on the first
    // clone: done here, not inside the measured rounds.
    for adu in &adus {
        drop(adu.clone());
    }
    let before = live();
    let mut after_round = Vec::new();
    let mut source_allocations = 0;
    let mut sources_received = 0;
    let mut n = 0u32;
    for round in 0..rounds {
        for _ in 0..per_round {
            let packet = encoder
                .protect(1, adus[n as usize % adus.len()].clone())
                .unwrap()
                .to_bytes();
            n += 1;
            if !n.is_multiple_of(5) {
                let at = allocations();
                decoder.receive(packet).unwrap();
                if round == rounds - 1 {
                    source_allocations += allocations() - at;
                    sources_received += 1;
                }
            }
            if n.is_multiple_of(32) {
                for repair in encoder.repair(4).unwrap() {
                    decoder.receive(repair).unwrap();
                }
            }
            while decoder.poll_recovered().is_some() {}
        }
        after_round.push(live() - before);
    }
    (after_round, sources_received, source_allocations)
}

#[test]
fn a_long_stream_reuses_what_leaves_the_window() {
    warm_up();
    for (name, config) in wide() {
        // Enough for the RLC span (1024 ESIs) and 16 open blocks of 32 to
        // fill, and a multiple of the loss, ADU and block cycles, so every
        // round ends in the same state.
        let per_round = 5 * 64 * 32;
        let (after_round, received, source_allocations) = stream(&config, 3, per_round);
        eprintln!(
            "{name}: encoder and decoder after rounds of {per_round} ADUs: {after_round:?} B, \
             {source_allocations} allocations in the last round's {received} source receives"
        );
        // Once full, what leaves the window or block range makes room for what comes.
        let growth = after_round[2] - after_round[1];
        assert!(
            growth <= 0,
            "{name}: {growth} bytes more after another {per_round} ADUs"
        );
        // One per packet at most, and not the decoder's: `Bytes` allocates a
        // shared header the first time a packet made from a vector is sliced
        // or cloned, as the decoder does to hand out or keep its ADU. Block
        // bookkeeping is reused, so a new block allocates nothing (before
        // it was reused, block codes made 64 more here per 2048 ADUs).
        assert!(
            source_allocations <= received,
            "{name}: {source_allocations} allocations receiving {received} sources"
        );
    }
}

#[test]
fn codec_decoders_hold_nothing_until_packets_come() {
    warm_up();
    // The largest limits each codec takes.
    let before = live();
    let rlc = fec_core::rlc::Decoder::new(
        fec_core::rlc::DecoderConfig::new(Field::Gf256, E).with_window(fec_core::rlc::MAX_WINDOW),
    )
    .unwrap();
    let rlc_bytes = live() - before;
    let before = live();
    let raptorq =
        fec_core::raptorq::BlockDecoder::new(0, fec_core::raptorq::MAX_SOURCE_SYMBOLS, 1400)
            .unwrap();
    let raptorq_bytes = live() - before;
    // Before, each took its limits' worth: about 100 MB (RLC), 1.4 MB (RaptorQ).
    eprintln!(
        "empty codec decoders: RLC window 4095 {rlc_bytes} B, RaptorQ K'max {raptorq_bytes} B"
    );
    assert!(
        rlc_bytes < 4096,
        "empty RLC decoder holds {rlc_bytes} bytes"
    );
    assert!(
        raptorq_bytes < 4096,
        "empty RaptorQ decoder holds {raptorq_bytes} bytes"
    );
    drop((rlc, raptorq));
}
