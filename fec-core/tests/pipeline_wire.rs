//! The wire format: header round trips, the QUIC fixed bit, and decoders
//! that never panic on arbitrary input.

use bytes::Bytes;
use fec_core::pipeline::wire::{self, Header, SchemeId, FIRST_BYTE, MAX_HEADER_LEN};
use fec_core::pipeline::{Config, Decoder, Encoder, Scheme};
use fec_core::rlc::Field;
use quickcheck::{Arbitrary, Gen, QuickCheck};

#[derive(Clone, Debug)]
struct AnyHeader(Header);

impl Arbitrary for AnyHeader {
    fn arbitrary(g: &mut Gen) -> Self {
        let gf256 = bool::arbitrary(g);
        let header = match u8::arbitrary(g) % 6 {
            0 => Header::RsSource {
                flow: u8::arbitrary(g),
                block: u16::arbitrary(g),
                index: u8::arbitrary(g),
            },
            1 => {
                let data = u8::arbitrary(g).max(1);
                let parity = (u8::arbitrary(g) % (255 - data + 1)).max(1);
                Header::RsRepair {
                    block: u16::arbitrary(g),
                    data,
                    parity,
                    index: u8::arbitrary(g) % parity,
                }
            }
            2 => Header::RlcSource {
                gf256,
                flow: u8::arbitrary(g),
                esi: u32::arbitrary(g),
            },
            3 => Header::RlcRepair {
                gf256,
                repair_key: u16::arbitrary(g),
                dt: u8::arbitrary(g) % 16,
                nss: (u16::arbitrary(g) % 4095).max(1),
                first_esi: u32::arbitrary(g),
            },
            4 => Header::RaptorqSource {
                flow: u8::arbitrary(g),
                block: u8::arbitrary(g),
                esi: u32::arbitrary(g) >> 8,
            },
            _ => {
                let source_symbols = u16::arbitrary(g).max(1);
                let esi = u32::from(source_symbols)
                    + (u32::arbitrary(g) % ((1 << 24) - u32::from(source_symbols)));
                Header::RaptorqRepair {
                    source_symbols,
                    block: u8::arbitrary(g),
                    esi,
                }
            }
        };
        AnyHeader(header)
    }
}

#[test]
fn headers_round_trip_with_the_quic_bit_clear() {
    fn property(header: AnyHeader, payload: Vec<u8>) -> bool {
        let bytes = header.0.encode();
        let mut packet = bytes.to_vec();
        packet.extend_from_slice(&payload);
        bytes[0] == FIRST_BYTE
            && bytes[0] & 0x40 == 0
            && wire::is_fec_packet(packet[0])
            && bytes.len() == header.0.len()
            && bytes.len() <= MAX_HEADER_LEN
            && Header::parse(&packet).ok() == Some((header.0, bytes.len()))
            // Any truncation of the header is an error.
            && (0..bytes.len()).all(|n| Header::parse(&packet[..n]).is_err())
    }
    QuickCheck::new()
        .tests(3000)
        .quickcheck(property as fn(AnyHeader, Vec<u8>) -> bool);
}

#[test]
fn parse_never_panics() {
    fn property(bytes: Vec<u8>, first: u8, second: u8) -> bool {
        let _ = Header::parse(&bytes);
        let mut plausible = vec![FIRST_BYTE, second, first];
        plausible.extend_from_slice(&bytes);
        match Header::parse(&plausible) {
            Ok((header, len)) => len <= plausible.len() && header.encode()[..] == plausible[..len],
            Err(_) => true,
        }
    }
    QuickCheck::new()
        .tests(5000)
        .quickcheck(property as fn(Vec<u8>, u8, u8) -> bool);
}

#[test]
fn quic_packets_and_other_versions_are_refused() {
    for first in [0x40u8, 0xc0, 0xc3, 0x41, 0x7f, 0xff] {
        assert!(!wire::is_fec_packet(first));
        assert!(Header::parse(&[first, 0x10, 0, 0, 0, 0, 0, 0]).is_err());
    }
    assert!(matches!(
        Header::parse(&[0x82, 0x10, 0, 0, 0, 0, 0]),
        Err(fec_core::Error::PipelineVersion { got: 2 })
    ));
    // Unknown scheme, unknown kind, impossible shapes.
    for packet in [
        [FIRST_BYTE, 0x00, 0, 0, 0, 0, 0, 0, 0, 0],
        [FIRST_BYTE, 0x50, 0, 0, 0, 0, 0, 0, 0, 0],
        [FIRST_BYTE, 0x12, 0, 0, 0, 0, 0, 0, 0, 0],
        [FIRST_BYTE, 0x11, 0, 0, 0, 1, 0, 0, 0, 0], // data 0
        [FIRST_BYTE, 0x11, 0, 0, 200, 57, 0, 0, 0, 0], // data + parity > 256
        [FIRST_BYTE, 0x11, 0, 0, 4, 2, 2, 0, 0, 0], // index >= parity
        [FIRST_BYTE, 0x21, 0, 0, 0xf0, 0, 0, 0, 0, 0], // NSS 0
        [FIRST_BYTE, 0x41, 0, 0, 0, 0, 0, 0, 0, 0], // K 0
        [FIRST_BYTE, 0x41, 0, 8, 0, 0, 0, 7, 0, 0], // repair ESI < K
    ] {
        assert!(Header::parse(&packet).is_err(), "{packet:?}");
    }
    assert_eq!(
        Header::RsSource {
            flow: 0,
            block: 0,
            index: 0
        }
        .scheme(),
        SchemeId::ReedSolomon
    );
}

#[test]
fn symbol_framing() {
    let mut symbol = [0u8; 10];
    assert_eq!(wire::frame_symbol(&mut symbol, 9, b"abc").unwrap(), 6);
    assert_eq!(symbol, [9, 0, 3, b'a', b'b', b'c', 0, 0, 0, 0]);
    assert_eq!(wire::parse_symbol(&symbol).unwrap(), (9, 3..6));
    assert!(wire::frame_symbol(&mut symbol, 9, b"12345678").is_err());
    symbol[8] = 1;
    assert!(wire::parse_symbol(&symbol).is_err(), "non-zero padding");
    assert!(
        wire::parse_symbol(&[0, 0, 8, 1, 2]).is_err(),
        "length beyond the symbol"
    );
    assert!(wire::parse_symbol(&[0, 0]).is_err());
    // The allocating form builds the same bytes and refuses the same ADUs.
    assert_eq!(
        wire::framed_symbol(9, b"abc", 10).unwrap(),
        [9, 0, 3, b'a', b'b', b'c', 0, 0, 0, 0]
    );
    assert_eq!(wire::framed_symbol(9, b"abcdefg", 10).unwrap().len(), 10);
    assert!(wire::framed_symbol(9, b"12345678", 10).is_err());
    assert!(wire::framed_symbol(9, &vec![0; 70_000], 80_000).is_err());
}

fn schemes() -> Vec<Scheme> {
    vec![
        Scheme::ReedSolomon { data: 6, parity: 3 },
        Scheme::RaptorQ {
            source_symbols: 6,
            repair_symbols: 3,
        },
        Scheme::Rlc {
            field: Field::Gf256,
            window: 8,
            dt: 15,
        },
        Scheme::Rlc {
            field: Field::Gf2,
            window: 8,
            dt: 7,
        },
    ]
}

/// The decoder's source ADU is a slice of the received packet, not a copy.
#[test]
fn source_adus_are_handed_back_without_copy() {
    for scheme in schemes() {
        let config = Config::new(scheme);
        let mut encoder = Encoder::new(&config).unwrap();
        let mut decoder = Decoder::new(&config).unwrap();
        let adu = Bytes::from_static(b"a QUIC packet");
        let packet = encoder.protect(3, adu.clone()).unwrap();
        assert_eq!(packet.header().len() + adu.len(), packet.len());
        let bytes = packet.to_bytes();
        let out = decoder.receive(bytes.clone()).unwrap().unwrap();
        assert_eq!((out.flow, &out.data), (3, &adu));
        assert_eq!(out.data.as_ptr(), bytes[packet.header().len()..].as_ptr());
        assert_eq!(decoder.receive(bytes).unwrap(), None, "duplicate");
        assert_eq!(decoder.counters().duplicates, 1);
    }
}

/// Arbitrary packets, and real packets with bytes flipped, truncated or of
/// another scheme: the decoder never panics, and whatever it hands out as
/// a *recovered* ADU passed the framing checks.
#[test]
fn decoders_survive_arbitrary_and_mangled_packets() {
    fn property(seed: u64, mutations: Vec<(u16, u8)>, junk: Vec<Vec<u8>>) -> bool {
        for (s, scheme) in schemes().into_iter().enumerate() {
            let mut config = Config::new(scheme);
            config.set_symbol_size(40);
            let mut encoder = Encoder::new(&config).unwrap();
            let mut decoder = Decoder::new(&config).unwrap();
            let mut packets = Vec::new();
            for i in 0..12u64 {
                let len = ((seed >> (i % 32)) % 30) as usize;
                let adu = Bytes::from(vec![i as u8; len]);
                packets.push(encoder.protect(s as u8, adu).unwrap().to_bytes().to_vec());
                if encoder.pending() == 4 {
                    packets.extend(encoder.repair(2).unwrap().into_iter().map(|b| b.to_vec()));
                }
            }
            for (n, (at, value)) in mutations.iter().enumerate() {
                if packets.is_empty() {
                    break;
                }
                let p = n % packets.len();
                let packet = &mut packets[p];
                match value % 3 {
                    0 if !packet.is_empty() => {
                        let at = usize::from(*at) % packet.len();
                        packet[at] ^= value | 1;
                    }
                    1 => packet.truncate(usize::from(*at) % (packet.len() + 1)),
                    _ => packet.extend_from_slice(&[*value; 3]),
                }
            }
            packets.extend(junk.iter().cloned());
            for packet in packets {
                let _ = decoder.receive(Bytes::from(packet));
                while let Some(adu) = decoder.poll_recovered() {
                    assert!(adu.data.len() <= config.max_adu_len());
                }
            }
            let counters = decoder.counters();
            assert!(counters.received + counters.rejected > 0);
        }
        true
    }
    QuickCheck::new()
        .tests(300)
        .quickcheck(property as fn(u64, Vec<(u16, u8)>, Vec<Vec<u8>>) -> bool);
}

#[test]
fn bad_configurations_are_errors() {
    let bad = [
        Scheme::ReedSolomon { data: 0, parity: 1 },
        Scheme::ReedSolomon { data: 1, parity: 0 },
        Scheme::ReedSolomon {
            data: 200,
            parity: 57,
        },
        Scheme::RaptorQ {
            source_symbols: 0,
            repair_symbols: 1,
        },
        Scheme::RaptorQ {
            source_symbols: 8193,
            repair_symbols: 1,
        },
        Scheme::RaptorQ {
            source_symbols: 10,
            repair_symbols: 0,
        },
        Scheme::Rlc {
            field: Field::Gf256,
            window: 0,
            dt: 15,
        },
        Scheme::Rlc {
            field: Field::Gf256,
            window: 4096,
            dt: 15,
        },
        Scheme::Rlc {
            field: Field::Gf2,
            window: 8,
            dt: 16,
        },
    ];
    for scheme in bad {
        let config = Config::new(scheme.clone());
        assert!(Encoder::new(&config).is_err(), "{scheme:?}");
        assert!(Decoder::new(&config).is_err(), "{scheme:?}");
    }
    for size in [0, 3, 65536] {
        let mut config = Config::new(Scheme::ReedSolomon { data: 4, parity: 2 });
        config.set_symbol_size(size);
        assert!(Encoder::new(&config).is_err());
    }
    let mut config = Config::new(Scheme::ReedSolomon { data: 4, parity: 2 });
    config.set_max_blocks(0);
    assert!(Decoder::new(&config).is_err());
}

/// A decoder refuses packets of another scheme.
#[test]
fn other_schemes_are_refused() {
    let all = schemes();
    for a in &all {
        let mut encoder = Encoder::new(&Config::new(a.clone())).unwrap();
        let packet = encoder
            .protect(0, Bytes::from_static(b"x"))
            .unwrap()
            .to_bytes();
        for b in &all {
            let mut decoder = Decoder::new(&Config::new(b.clone())).unwrap();
            let result = decoder.receive(packet.clone());
            assert_eq!(result.is_ok(), a.id() == b.id(), "{a:?} into {b:?}");
        }
    }
}

/// Packets never exceed the lengths the configuration announces.
#[test]
fn packet_lengths_stay_within_the_announced_bounds() {
    for scheme in schemes() {
        let mut config = Config::new(scheme);
        config.set_symbol_size(300);
        let mut encoder = Encoder::new(&config).unwrap();
        for i in 0..6 {
            let packet = encoder
                .protect(0, Bytes::from(vec![1; config.max_adu_len() - i]))
                .unwrap();
            assert!(packet.len() <= config.max_source_packet_len());
            assert_eq!(
                packet.header().len(),
                wire::source_header_len(config.scheme().id())
            );
        }
        for repair in encoder.flush().unwrap() {
            assert!(
                repair.len() <= config.max_repair_packet_len(),
                "{} > {}",
                repair.len(),
                config.max_repair_packet_len()
            );
        }
    }
}
