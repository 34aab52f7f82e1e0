//! The one error type of fec-core.

/// Everything that can go wrong in fec-core. No input, however malformed,
/// panics; it produces one of these, with enough context to act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // --- Reed-Solomon (rs) ---
    /// Placeholder until the codec variants land.
    #[error("invalid parameter: {0}")]
    InvalidParameter(&'static str),
    // --- end Reed-Solomon ---

    // --- RLC (rlc) ---
    // --- end RLC ---

    // --- RaptorQ (raptorq) ---
    // --- end RaptorQ ---

    // --- pipeline ---
    // --- end pipeline ---
}
