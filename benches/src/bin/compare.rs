//! Compare binary (work in progress).
fn main() {}
