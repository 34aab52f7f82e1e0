//! `FEC_CORE_BACKEND` selects the GF(2^16) kernels too (the engine is the
//! GF(2^8) one, detected once per process), so this file holds one test that
//! sets the variable before anything touches the engine.

use fec_core::gf256::Backend;
use fec_core::rs16::{self, ReedSolomonDecoder, ReedSolomonEncoder};

#[test]
fn environment_variable_forces_the_backend() {
    // SSSE3 is never the best backend on a machine that also has AVX2, so on
    // such a machine this fails if the variable is ignored.
    std::env::set_var("FEC_CORE_BACKEND", "ssse3");
    let expected = if Backend::Ssse3.is_supported() {
        Backend::Ssse3
    } else {
        Backend::best()
    };
    let encoder = ReedSolomonEncoder::new(3, 2, 64).unwrap();
    assert_eq!(encoder.engine().backend(), expected);
    let decoder = ReedSolomonDecoder::new(3, 2, 64).unwrap();
    assert_eq!(decoder.engine().backend(), expected);

    // And it computes what reed-solomon-simd computes.
    let original: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i * 50 + 1; 64]).collect();
    let ours = rs16::encode(3, 2, &original).unwrap();
    assert_eq!(ours, reed_solomon_simd::encode(3, 2, &original).unwrap());
}
