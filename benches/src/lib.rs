//! Shared helpers for the criterion benches and the `compare` binary.
