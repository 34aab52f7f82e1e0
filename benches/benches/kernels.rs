//! GF(2^8) kernel benches (work in progress).
fn main() {}
