//! Known-answer tests: RFC 8682 TinyMT32 and RFC 8681 rand256/rand16
//! vectors (data files under tests/vectors/rlc), coefficient rules of RFC
//! 8681 section 3.6, and the FEC Payload ID formats of section 4.1.

use fec_core::rlc::{coding_coefficients, Field, RepairPayloadId, SourcePayloadId, TinyMt32};
use fec_core::Error;

fn vector(name: &str) -> Vec<u32> {
    let path = format!("{}/tests/vectors/rlc/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let values: Vec<u32> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.parse().unwrap_or_else(|e| panic!("{path}: {l:?}: {e}")))
        .collect();
    assert!(!values.is_empty(), "{path} holds no value");
    values
}

#[test]
fn tinymt32_matches_rfc8682_check_values() {
    let expected = vector("tinymt32_seed1.txt");
    let mut generator = TinyMt32::new(1);
    let got: Vec<u32> = expected.iter().map(|_| generator.next_u32()).collect();
    assert_eq!(got, expected);
}

#[test]
fn rand256_matches_rfc8681_vector() {
    let expected = vector("rand256_seed1.txt");
    let mut generator = TinyMt32::new(1);
    let got: Vec<u32> = expected
        .iter()
        .map(|_| u32::from(generator.next_rand256()))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn rand16_matches_rfc8681_vector() {
    let expected = vector("rand16_seed1.txt");
    let mut generator = TinyMt32::new(1);
    let got: Vec<u32> = expected
        .iter()
        .map(|_| u32::from(generator.next_rand16()))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn dense_gf256_coefficients_are_the_non_zero_rand256_draws() {
    for key in [0u16, 1, 2, 77, 65535] {
        let mut generator = TinyMt32::new(u32::from(key));
        let mut expected = Vec::new();
        while expected.len() < 300 {
            let draw = generator.next_rand256();
            if draw != 0 {
                expected.push(draw);
            }
        }
        assert_eq!(
            coding_coefficients(Field::Gf256, key, 15, 300).unwrap(),
            expected
        );
    }
}

#[test]
fn sparse_coefficients_follow_the_density_threshold() {
    for dt in 0..15u8 {
        let gf2 = coding_coefficients(Field::Gf2, 1234, dt, 4000).unwrap();
        let gf256 = coding_coefficients(Field::Gf256, 1234, dt, 4000).unwrap();
        assert!(gf2.iter().all(|&c| c <= 1));
        let ones = gf2.iter().filter(|&&c| c == 1).count() as f64 / 4000.0;
        let non_zero = gf256.iter().filter(|&&c| c != 0).count() as f64 / 4000.0;
        let p = f64::from(dt + 1) / 16.0;
        assert!((ones - p).abs() < 0.05, "dt {dt}: GF(2) density {ones}");
        assert!(
            (non_zero - p).abs() < 0.05,
            "dt {dt}: GF(2^8) density {non_zero}"
        );
        // The GF(2) draw decides exactly where GF(2^8) has a non-zero
        // coefficient only for the first one (later draws interleave), so
        // check the first position.
        assert_eq!(gf2[0] == 1, gf256[0] != 0, "dt {dt}");
    }
    assert_eq!(
        coding_coefficients(Field::Gf2, 999, 15, 50).unwrap(),
        vec![1; 50]
    );
}

#[test]
fn coefficient_arguments_are_checked() {
    assert_eq!(
        coding_coefficients(Field::Gf256, 1, 16, 4),
        Err(Error::RlcDensityThreshold { dt: 16 })
    );
    assert_eq!(
        coding_coefficients(Field::Gf2, 1, 255, 4),
        Err(Error::RlcDensityThreshold { dt: 255 })
    );
    assert_eq!(
        coding_coefficients(Field::Gf256, 1, 15, 0),
        Err(Error::RlcWindowSize { nss: 0, max: 4095 })
    );
    assert_eq!(
        coding_coefficients(Field::Gf256, 1, 15, 4096),
        Err(Error::RlcWindowSize {
            nss: 4096,
            max: 4095
        })
    );
    assert_eq!(
        coding_coefficients(Field::Gf256, 1, 15, 4095)
            .unwrap()
            .len(),
        4095
    );
}

#[test]
fn repair_payload_id_wire_form() {
    let id = RepairPayloadId {
        repair_key: 0xabcd,
        dt: 7,
        nss: 0x0123,
        first_source_esi: 0xdead_beef,
    };
    let bytes = id.to_bytes().unwrap();
    assert_eq!(bytes, [0xab, 0xcd, 0x71, 0x23, 0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(RepairPayloadId::parse(&bytes).unwrap(), id);
    let mut packet = bytes.to_vec();
    packet.extend_from_slice(b"payload");
    let (parsed, rest) = RepairPayloadId::parse_prefix(&packet).unwrap();
    assert_eq!((parsed, rest), (id, &b"payload"[..]));
}

#[test]
fn repair_payload_id_rejects_bad_input() {
    for len in [0, 1, 7, 9] {
        assert_eq!(
            RepairPayloadId::parse(&vec![0x10; len]),
            Err(Error::RlcPayloadIdLength {
                expected: 8,
                got: len
            })
        );
    }
    assert!(RepairPayloadId::parse_prefix(&[0; 7]).is_err());
    // NSS = 0 cannot describe a window.
    assert_eq!(
        RepairPayloadId::parse(&[0, 1, 0xf0, 0, 0, 0, 0, 1]),
        Err(Error::RlcWindowSize { nss: 0, max: 4095 })
    );
    let mut id = RepairPayloadId {
        repair_key: 1,
        dt: 16,
        nss: 1,
        first_source_esi: 0,
    };
    assert_eq!(id.to_bytes(), Err(Error::RlcDensityThreshold { dt: 16 }));
    id.dt = 15;
    id.nss = 4096;
    assert!(id.to_bytes().is_err());
    id.nss = 4095;
    let bytes = id.to_bytes().unwrap();
    assert_eq!(RepairPayloadId::parse(&bytes).unwrap(), id);
}

#[test]
fn every_repair_payload_id_round_trips() {
    // All DT/NSS combinations through one key and ESI pattern.
    for dt in 0..=15u8 {
        for nss in (1..=4095u16).step_by(97).chain([4095]) {
            let id = RepairPayloadId {
                repair_key: nss.wrapping_mul(31),
                dt,
                nss,
                first_source_esi: u32::from(nss) << 20 | u32::from(dt),
            };
            assert_eq!(RepairPayloadId::parse(&id.to_bytes().unwrap()).unwrap(), id);
        }
    }
}

#[test]
fn source_payload_id_wire_form() {
    let id = SourcePayloadId { esi: 0x0102_0304 };
    assert_eq!(id.to_bytes(), [1, 2, 3, 4]);
    assert_eq!(SourcePayloadId::parse(&[1, 2, 3, 4]).unwrap(), id);
    assert_eq!(
        SourcePayloadId::parse(&[1, 2, 3]),
        Err(Error::RlcPayloadIdLength {
            expected: 4,
            got: 3
        })
    );
    assert!(SourcePayloadId::parse(&[1, 2, 3, 4, 5]).is_err());
    let (parsed, rest) = SourcePayloadId::parse_prefix(&[9, 9, 9, 9, 42]).unwrap();
    assert_eq!((parsed.esi, rest), (0x0909_0909, &[42][..]));
}

#[test]
fn field_encoding_ids() {
    assert_eq!(Field::Gf2.fec_encoding_id(), 9);
    assert_eq!(Field::Gf256.fec_encoding_id(), 10);
}

#[test]
fn scheme_specific_information_wire_form() {
    use fec_core::rlc::SchemeSpecificInfo;
    let info = SchemeSpecificInfo {
        symbol_size: 0x0578,
        window_size_ratio: 0xbf,
    };
    assert_eq!(info.to_bytes(), Ok([0x05, 0x78, 0xbf]));
    assert_eq!(SchemeSpecificInfo::parse(&[0x05, 0x78, 0xbf]), Ok(info));
    assert_eq!(
        SchemeSpecificInfo::parse(&[0x05, 0x78]),
        Err(Error::RlcSchemeInfoLength {
            expected: 3,
            got: 2
        })
    );
    assert_eq!(
        SchemeSpecificInfo::parse(&[0x05, 0x78, 0xbf, 0]),
        Err(Error::RlcSchemeInfoLength {
            expected: 3,
            got: 4
        })
    );
    // E = 0 is refused both ways rather than configuring a useless decoder.
    assert!(matches!(
        SchemeSpecificInfo::parse(&[0, 0, 7]),
        Err(Error::RlcConfig { .. })
    ));
    let empty = SchemeSpecificInfo {
        symbol_size: 0,
        window_size_ratio: 7,
    };
    assert!(matches!(empty.to_bytes(), Err(Error::RlcConfig { .. })));
}
