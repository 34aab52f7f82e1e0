//! Encoder and decoder edge cases: every documented error, duplicates,
//! eviction, ESI wraparound, bounded state.

use fec_core::rlc::{Decoder, DecoderConfig, Encoder, Field, Reception, RepairPayloadId};
use fec_core::Error;

const E: usize = 8;

fn symbol(i: u32) -> [u8; E] {
    let mut out = [0u8; E];
    for (j, b) in out.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(j as u8 * 7) ^ (i >> 8) as u8;
    }
    out
}

fn decoder(window: usize) -> Decoder {
    Decoder::new(DecoderConfig::new(Field::Gf256, E).with_window(window)).unwrap()
}

fn drain(decoder: &mut Decoder) -> Vec<u32> {
    let mut esis = Vec::new();
    while let Some(source) = decoder.poll_recovered() {
        assert_eq!(
            &source.data[..],
            &symbol(source.esi)[..],
            "ESI {}",
            source.esi
        );
        esis.push(source.esi);
    }
    esis.sort_unstable();
    esis
}

#[test]
fn encoder_rejects_bad_configuration_and_input() {
    assert!(matches!(
        Encoder::new(Field::Gf256, 0, 4),
        Err(Error::RlcConfig { .. })
    ));
    assert!(matches!(
        Encoder::new(Field::Gf256, 65536, 4),
        Err(Error::RlcConfig { .. })
    ));
    assert_eq!(
        Encoder::new(Field::Gf256, 8, 0).unwrap_err(),
        Error::RlcWindowSize { nss: 0, max: 4095 }
    );
    assert!(Encoder::new(Field::Gf256, 8, 4096).is_err());

    let mut encoder = Encoder::new(Field::Gf256, E, 4).unwrap();
    assert_eq!(encoder.repair(1, 15).unwrap_err(), Error::RlcEmptyWindow);
    assert_eq!(
        encoder.push_source(&[0; 7]).unwrap_err(),
        Error::RlcSymbolSize {
            expected: 8,
            got: 7
        }
    );
    for i in 0..6 {
        assert_eq!(encoder.push_source(&symbol(i)).unwrap(), i);
    }
    assert_eq!(encoder.window(), Some((2, 4)));
    assert_eq!(encoder.source(1), None);
    assert_eq!(encoder.source(5), Some(&symbol(5)[..]));
    assert_eq!(
        encoder.repair(1, 16).unwrap_err(),
        Error::RlcDensityThreshold { dt: 16 }
    );
    let mut out = [0u8; E];
    assert_eq!(
        encoder
            .sub_window_repair_into(1, 2, 0, 15, &mut out)
            .unwrap_err(),
        Error::RlcWindowNotHeld {
            first_esi: 1,
            nss: 2
        }
    );
    assert_eq!(
        encoder
            .sub_window_repair_into(4, 3, 0, 15, &mut out)
            .unwrap_err(),
        Error::RlcWindowNotHeld {
            first_esi: 4,
            nss: 3
        }
    );
    assert!(encoder
        .sub_window_repair_into(4, 0, 0, 15, &mut out)
        .is_err());
    assert!(encoder
        .sub_window_repair_into(4, 2, 0, 15, &mut out)
        .is_ok());
    assert_eq!(
        encoder.repair_into(0, 15, &mut [0u8; 9]).unwrap_err(),
        Error::RlcSymbolSize {
            expected: 8,
            got: 9
        }
    );
}

#[test]
fn encoder_keys_increment_and_discard_moves_the_window() {
    let mut encoder = Encoder::new(Field::Gf256, E, 8).unwrap();
    encoder.set_next_repair_key(65535);
    for i in 0..5 {
        encoder.push_source(&symbol(i)).unwrap();
    }
    let (first, _) = encoder.next_repair(15).unwrap();
    let (second, _) = encoder.next_repair(15).unwrap();
    assert_eq!((first.repair_key, second.repair_key), (65535, 0));
    assert_eq!(encoder.next_repair_key(), 1);
    // A failed call does not consume a key.
    assert!(encoder.next_repair(99).is_err());
    assert_eq!(encoder.next_repair_key(), 1);

    encoder.discard_before(3);
    assert_eq!(encoder.window(), Some((3, 2)));
    encoder.discard_before(1); // behind the window: nothing to do
    assert_eq!(encoder.window(), Some((3, 2)));
    encoder.discard_before(5);
    assert_eq!(encoder.window(), None);
    assert_eq!(encoder.next_esi(), 5);
}

#[test]
fn decoder_rejects_bad_configuration() {
    let base = DecoderConfig::new(Field::Gf256, E);
    for bad in [
        DecoderConfig {
            symbol_size: 0,
            ..base
        },
        DecoderConfig {
            max_window: 0,
            ..base
        },
        DecoderConfig {
            max_window: 4096,
            max_span: 8192,
            ..base
        },
        DecoderConfig {
            max_span: 10,
            ..base
        },
        DecoderConfig {
            max_equations: 0,
            ..base
        },
        DecoderConfig {
            max_equations: 1000,
            ..base
        },
    ] {
        assert!(Decoder::new(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn decoder_rejects_bad_symbols_without_changing_state() {
    let mut decoder = decoder(8);
    let id = RepairPayloadId {
        repair_key: 1,
        dt: 15,
        nss: 4,
        first_source_esi: 0,
    };
    assert_eq!(
        decoder.add_source(0, &[0; 9]).unwrap_err(),
        Error::RlcSymbolSize {
            expected: 8,
            got: 9
        }
    );
    assert_eq!(
        decoder.add_repair(id, &[0; 3]).unwrap_err(),
        Error::RlcSymbolSize {
            expected: 8,
            got: 3
        }
    );
    assert_eq!(
        decoder
            .add_repair(RepairPayloadId { dt: 16, ..id }, &[0; E])
            .unwrap_err(),
        Error::RlcDensityThreshold { dt: 16 }
    );
    assert_eq!(
        decoder
            .add_repair(RepairPayloadId { nss: 9, ..id }, &[0; E])
            .unwrap_err(),
        Error::RlcWindowSize { nss: 9, max: 8 }
    );
    assert_eq!(
        decoder
            .add_repair(RepairPayloadId { nss: 0, ..id }, &[0; E])
            .unwrap_err(),
        Error::RlcWindowSize { nss: 0, max: 8 }
    );
    assert_eq!(decoder.pending_equations(), 0);
    assert_eq!(decoder.poll_recovered(), None);
}

#[test]
fn duplicates_and_conflicts() {
    let mut encoder = Encoder::new(Field::Gf256, E, 8).unwrap();
    let mut decoder = decoder(8);
    for i in 0..4 {
        encoder.push_source(&symbol(i)).unwrap();
    }
    let (id, repair) = encoder.repair(42, 15).unwrap();
    assert_eq!(decoder.add_repair(id, &repair).unwrap(), Reception::New);
    assert_eq!(
        decoder.add_repair(id, &repair).unwrap(),
        Reception::Duplicate
    );
    let mut forged = repair.clone();
    forged[0] ^= 1;
    assert_eq!(
        decoder.add_repair(id, &forged).unwrap_err(),
        Error::RlcConflictingRepair {
            repair_key: 42,
            first_source_esi: 0
        }
    );
    assert_eq!(decoder.add_source(0, &symbol(0)).unwrap(), Reception::New);
    assert_eq!(
        decoder.add_source(0, &symbol(0)).unwrap(),
        Reception::Duplicate
    );
    assert_eq!(
        decoder.add_source(0, &symbol(1)).unwrap_err(),
        Error::RlcConflictingSource { esi: 0 }
    );
    assert_eq!(decoder.add_source(1, &symbol(1)).unwrap(), Reception::New);
    assert_eq!(decoder.add_source(2, &symbol(2)).unwrap(), Reception::New);
    // The repair's last unknown is now determined by it alone.
    assert_eq!(drain(&mut decoder), [3]);
    assert_eq!(
        decoder.add_source(3, &symbol(3)).unwrap(),
        Reception::Duplicate
    );
    assert_eq!(decoder.stats().recovered, 1);
    // A second repair over known sources adds nothing.
    let (id, repair) = encoder.repair(43, 15).unwrap();
    assert_eq!(
        decoder.add_repair(id, &repair).unwrap(),
        Reception::Redundant
    );
}

#[test]
fn recovers_across_esi_wraparound() {
    let mut encoder = Encoder::new(Field::Gf256, E, 6).unwrap();
    encoder.reset(u32::MAX - 2);
    let mut decoder = decoder(6);
    let mut lost = Vec::new();
    for n in 0..6 {
        let esi = encoder.next_esi();
        encoder.push_source(&symbol(esi)).unwrap();
        if n % 2 == 0 {
            lost.push(esi);
        } else {
            decoder.add_source(esi, &symbol(esi)).unwrap();
        }
    }
    assert_eq!(encoder.window(), Some((u32::MAX - 2, 6)));
    for _ in 0..4 {
        let (id, repair) = encoder.next_repair(15).unwrap();
        decoder.add_repair(id, &repair).unwrap();
    }
    lost.sort_unstable();
    assert_eq!(drain(&mut decoder), lost);
}

#[test]
fn old_symbols_expire_and_equations_needing_them_are_evicted() {
    let mut encoder = Encoder::new(Field::Gf256, E, 4).unwrap();
    let mut decoder = Decoder::new(DecoderConfig {
        max_window: 4,
        max_span: 8,
        max_equations: 4,
        ..DecoderConfig::new(Field::Gf256, E)
    })
    .unwrap();
    for i in 0..4 {
        encoder.push_source(&symbol(i)).unwrap();
    }
    // Sources 0 and 1 lost, one repair: not enough yet.
    decoder.add_source(2, &symbol(2)).unwrap();
    decoder.add_source(3, &symbol(3)).unwrap();
    let (old_id, old_repair) = encoder.repair(1, 15).unwrap();
    assert_eq!(
        decoder.add_repair(old_id, &old_repair).unwrap(),
        Reception::New
    );
    assert_eq!(decoder.pending_equations(), 1);
    // The stream moves on far enough that ESI 0 leaves the span.
    decoder.add_source(8, &symbol(8)).unwrap();
    assert_eq!(decoder.pending_equations(), 0);
    assert_eq!(decoder.stats().equations_evicted, 1);
    assert_eq!(
        decoder.add_source(0, &symbol(0)).unwrap(),
        Reception::Expired
    );
    assert_eq!(decoder.source(0), None);
    assert_eq!(decoder.source(2), Some(&symbol(2)[..]));
    let (id, repair) = encoder.repair(2, 15).unwrap();
    assert_eq!(decoder.add_repair(id, &repair).unwrap(), Reception::Expired);
    assert_eq!(decoder.poll_recovered(), None);
    assert_eq!(decoder.source(8), Some(&symbol(8)[..]));
}

#[test]
fn a_long_jump_forward_clears_everything_behind_it() {
    let mut encoder = Encoder::new(Field::Gf256, E, 4).unwrap();
    let mut decoder = decoder(4);
    for i in 0..4 {
        encoder.push_source(&symbol(i)).unwrap();
    }
    let (id, repair) = encoder.repair(5, 15).unwrap();
    decoder.add_repair(id, &repair).unwrap();
    assert_eq!(decoder.pending_equations(), 1);
    let far = 2_000_000_000u32; // under 2^31 ahead: newer, by serial arithmetic
    assert_eq!(
        decoder.add_source(far, &symbol(far)).unwrap(),
        Reception::New
    );
    assert_eq!(decoder.pending_equations(), 0);
    assert_eq!(
        decoder.add_source(2, &symbol(2)).unwrap(),
        Reception::Expired
    );
    assert_eq!(decoder.source(far), Some(&symbol(far)[..]));
    // More than 2^31 ahead reads as behind: ignored, nothing moves.
    let behind = far.wrapping_add(2_500_000_000);
    assert_eq!(
        decoder.add_source(behind, &symbol(behind)).unwrap(),
        Reception::Expired
    );
    assert_eq!(decoder.source(far), Some(&symbol(far)[..]));
}

#[test]
fn equation_store_is_bounded() {
    let config = DecoderConfig {
        max_equations: 3,
        ..DecoderConfig::new(Field::Gf256, E)
    };
    let mut decoder = Decoder::new(config).unwrap();
    let mut encoder = Encoder::new(Field::Gf256, E, 64).unwrap();
    // Every source lost and one repair per pair of them: never solvable,
    // and never more than three equations kept.
    let mut out = [0u8; E];
    for i in 0..20 {
        let first = encoder.push_source(&symbol(2 * i)).unwrap();
        encoder.push_source(&symbol(2 * i + 1)).unwrap();
        let id = encoder
            .sub_window_repair_into(first, 2, i as u16, 15, &mut out)
            .unwrap();
        assert_eq!(decoder.add_repair(id, &out).unwrap(), Reception::New);
        assert!(decoder.pending_equations() <= 3);
    }
    assert_eq!(decoder.poll_recovered(), None);
    assert!(decoder.stats().equations_evicted > 0);
}

#[test]
fn gf2_decoding_with_sparse_coefficients() {
    let mut encoder = Encoder::new(Field::Gf2, E, 16).unwrap();
    let mut decoder = Decoder::new(DecoderConfig::new(Field::Gf2, E).with_window(16)).unwrap();
    let lost = [3u32, 7, 12];
    for i in 0..16 {
        encoder.push_source(&symbol(i)).unwrap();
        if !lost.contains(&i) {
            decoder.add_source(i, &symbol(i)).unwrap();
        }
    }
    for _ in 0..12 {
        let (id, repair) = encoder.next_repair(7).unwrap();
        decoder.add_repair(id, &repair).unwrap();
    }
    assert_eq!(drain(&mut decoder), lost);
}

#[test]
fn garbage_never_panics() {
    // Arbitrary IDs and data: only errors or statuses, bounded state.
    let mut decoder = decoder(16);
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut recovered = 0;
    for _ in 0..5000 {
        let word = next();
        let data = next().to_le_bytes();
        if word & 1 == 0 {
            let esi = (word >> 32) as u32 % 64;
            match decoder.add_source(esi, &data) {
                // A source taken is held with exactly its bytes.
                Ok(Reception::New | Reception::Duplicate) => {
                    assert_eq!(decoder.source(esi), Some(&data[..]))
                }
                Ok(other) => assert_eq!(other, Reception::Expired),
                // Only a clash with what is held (possibly a garbage
                // recovery) can refuse a well-sized source.
                Err(e) => {
                    assert_eq!(e, Error::RlcConflictingSource { esi });
                    assert_ne!(decoder.source(esi), Some(&data[..]));
                }
            }
        } else {
            let id = RepairPayloadId {
                repair_key: (word >> 8) as u16,
                dt: (word >> 24) as u8 & 0x1f,
                nss: (word >> 32) as u16 % 20,
                first_source_esi: (word >> 48) as u32 % 64,
            };
            match decoder.add_repair(id, &data) {
                Ok(_) => assert!(id.dt <= 15 && (1..=16).contains(&id.nss), "{id:?}"),
                Err(Error::RlcDensityThreshold { dt }) => assert!(dt > 15),
                Err(Error::RlcWindowSize { nss, max: 16 }) => {
                    assert!(id.dt <= 15 && (nss == 0 || nss > 16))
                }
                Err(Error::RlcConflictingRepair { .. }) => {}
                Err(other) => panic!("{id:?}: unexpected {other}"),
            }
        }
        assert!(decoder.pending_equations() <= 16);
        while let Some(source) = decoder.poll_recovered() {
            assert_eq!(source.data.len(), 8);
            recovered += 1;
        }
    }
    // The stream is dense enough in a 64-ESI range that garbage equations
    // do solve; each solution is counted once.
    assert!(recovered > 0);
    assert_eq!(decoder.stats().recovered, recovered);
}
