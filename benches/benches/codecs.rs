//! Codec benches (work in progress).
fn main() {}
