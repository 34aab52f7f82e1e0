//! `FEC_CORE_BACKEND` selects the process-wide engine. Detection happens once
//! per process, so this file holds a single test that sets the variable
//! before anything touches the engine.

use fec_core::gf256::{self, Backend};

#[test]
fn environment_variable_forces_the_backend() {
    // SSSE3 is never the best backend on a machine that also has AVX2, so on
    // such a machine this fails if the variable is ignored.
    std::env::set_var("FEC_CORE_BACKEND", "SSSE3");
    let expected = if Backend::Ssse3.is_supported() {
        Backend::Ssse3
    } else {
        Backend::best()
    };
    assert_eq!(gf256::engine().backend(), expected);

    // The forced engine computes the same products as any other.
    let src = [1u8, 2, 3, 0x80];
    let mut dst = [0u8; 4];
    gf256::mul_slice(2, &src, &mut dst);
    assert_eq!(dst, [2, 4, 6, 0x1D]);
}
