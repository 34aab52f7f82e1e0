//! Bugs the fuzzers found in other modules, pinned through the public API
//! (the crash inputs also replay from `fuzz/regressions/` in `replay.rs`).
//! Both were fixed in 89f7b79. A new finding whose fix is not in yet goes
//! here with `#[ignore = "bug: ..."]`, its input in `fuzz/known-bugs/`.

use std::path::Path;

use fec_core::rlc::{Decoder, DecoderConfig, Field, RepairPayloadId};

fn regression(target: &str, name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../regressions")
        .join(target)
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fuzzer's input: real symbols, a delayed repair delivered after the
/// decoder's span jumped past everything it held.
#[test]
fn rlc_decoder_fuzz_input_with_a_long_jump() {
    fec_fuzz_bodies::rlc::decoder(&regression("rlc_decoder", "stale-ring-slot-after-jump"));
}

/// The same bug through the public API alone: with `max_span = 3` (ring of 4
/// slots), ESIs 0..3 received, then a repair over 7..9 moves the span to
/// 6..9. ESI 6 was never received, yet the decoder reports ESI 2's bytes for
/// it and refuses the genuine source 6 as conflicting. A repair covering ESI
/// 6 would be solved against those wrong bytes.
#[test]
fn rlc_decoder_forgets_everything_a_long_jump_leaves_behind() {
    let mut config = DecoderConfig::new(Field::Gf256, 4).with_window(3);
    config.max_span = 3;
    config.max_equations = 1;
    let mut decoder = Decoder::new(config).expect("valid config");
    for esi in 0..3u32 {
        decoder
            .add_source(esi, &[esi as u8 + 1; 4])
            .expect("new source");
    }
    let id = RepairPayloadId {
        repair_key: 4,
        dt: 15,
        nss: 2,
        first_source_esi: 7,
    };
    decoder.add_repair(id, &[9; 4]).expect("in range");
    assert_eq!(decoder.source(6), None, "ESI 6 was never received");
    assert!(
        decoder.add_source(6, &[7; 4]).is_ok(),
        "the real ESI 6 is refused"
    );
}

/// The pipeline reaches it with any RLC window whose decoder span is not a
/// power of two (window 40 here).
#[test]
fn pipeline_rlc_window_40_accepts_sources_after_a_long_jump() {
    use bytes::Bytes;
    use fec_core::pipeline::wire::Header;
    use fec_core::pipeline::{Config, Decoder, Scheme};

    let mut config = Config::new(Scheme::Rlc {
        field: Field::Gf256,
        window: 40,
        dt: 15,
    });
    config.set_symbol_size(64);
    let mut decoder = Decoder::new(&config).expect("valid");
    let source = |esi: u32, byte: u8| {
        let mut packet = Header::RlcSource {
            gf256: true,
            flow: 0,
            esi,
        }
        .encode()
        .to_vec();
        packet.extend([byte; 20]);
        Bytes::from(packet)
    };
    for esi in 0..1000 {
        decoder.receive(source(esi, esi as u8)).expect("new source");
    }
    // A jump longer than any span: everything held leaves it.
    decoder.receive(source(5000, 1)).expect("new source");
    // Every ESI below is new to the decoder (or too old): none may conflict.
    for esi in 4000..5000 {
        let result = decoder.receive(source(esi, 0xee));
        assert!(result.is_ok(), "ESI {esi} refused: {result:?}");
    }
}

/// A pluglet section whose size is not a multiple of 8 came back as a
/// pluglet (packaging refused it later, without naming the section).
#[test]
fn elf_loader_refuses_a_partial_instruction() {
    let object = regression("elf_loader", "partial-instruction-section");
    if let Ok(pluglets) = fec_plugin_sdk::elf::load(&object) {
        for p in pluglets {
            assert!(
                !p.code.is_empty() && p.code.len() % 8 == 0,
                "section {:?} holds {} bytes",
                p.name,
                p.code.len()
            );
        }
    }
}
