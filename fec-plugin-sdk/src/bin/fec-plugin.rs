//! `fec-plugin` command-line tool (work in progress).
fn main() {}
