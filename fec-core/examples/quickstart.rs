//! Placeholder replaced when the codec lands.
fn main() {
    println!("GF(2^8) backend: {}", fec_core::gf256::engine().backend());
}
