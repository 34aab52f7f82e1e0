//! `pquic-host` binary (work in progress).
fn main() {}
