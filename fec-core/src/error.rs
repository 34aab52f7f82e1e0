//! The one error type of fec-core.

/// Everything that can go wrong in fec-core. No input, however malformed,
/// panics; it produces one of these, with enough context to act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // --- Reed-Solomon (rs) ---
    /// A Reed-Solomon code needs at least one data shard.
    #[error("Reed-Solomon: the number of data shards must be at least 1")]
    NoDataShards,
    /// A Reed-Solomon code needs at least one parity shard.
    #[error("Reed-Solomon: the number of parity shards must be at least 1")]
    NoParityShards,
    /// GF(2^8) allows at most 256 shards in total.
    #[error("Reed-Solomon: {data} data + {parity} parity shards exceed the GF(2^8) limit of 256")]
    TooManyShards {
        /// Requested data shards.
        data: usize,
        /// Requested parity shards.
        parity: usize,
    },
    /// The shard slice does not have the code's number of shards.
    #[error("Reed-Solomon: expected {expected} shards, got {got}")]
    ShardCount {
        /// The count the code needs here.
        expected: usize,
        /// The count passed.
        got: usize,
    },
    /// A shard differs in length from the first (present) shard.
    #[error("Reed-Solomon: shard {index} is {got} bytes long, expected {expected}")]
    ShardLength {
        /// Index of the offending shard.
        index: usize,
        /// Length of the first shard.
        expected: usize,
        /// Length of this shard.
        got: usize,
    },
    /// A shard has no bytes.
    #[error("Reed-Solomon: shard {index} is empty")]
    EmptyShard {
        /// Index of the empty shard.
        index: usize,
    },
    /// Too few shards survive to rebuild the missing ones.
    #[error("Reed-Solomon: {present} shards present, at least {needed} needed to reconstruct")]
    TooFewShardsPresent {
        /// Shards present.
        present: usize,
        /// The data shard count, the minimum to decode.
        needed: usize,
    },
    // --- end Reed-Solomon ---

    // --- RLC (rlc) ---
    /// An RFC 8681 density threshold (DT) above 15.
    #[error("RLC density threshold {dt} is out of range 0..=15")]
    RlcDensityThreshold {
        /// The rejected value.
        dt: u8,
    },
    /// A coding window of zero symbols, or larger than allowed (the 12-bit
    /// NSS field, or the configured maximum).
    #[error("RLC window of {nss} source symbols is outside 1..={max}")]
    RlcWindowSize {
        /// The requested number of source symbols.
        nss: usize,
        /// The largest window accepted here.
        max: usize,
    },
    /// An FEC Payload ID of the wrong length.
    #[error("RLC FEC payload ID needs {expected} bytes, got {got}")]
    RlcPayloadIdLength {
        /// Bytes a payload ID of this kind occupies.
        expected: usize,
        /// Bytes supplied.
        got: usize,
    },
    /// A source or repair symbol whose length is not the configured size E.
    #[error("RLC symbol of {got} bytes, expected {expected}")]
    RlcSymbolSize {
        /// The configured symbol size E.
        expected: usize,
        /// The length supplied.
        got: usize,
    },
    /// A repair symbol was requested while the encoder holds no source.
    #[error("RLC encoder window is empty")]
    RlcEmptyWindow,
    /// A repair sub-window that the encoder does not (or no longer) hold.
    #[error("RLC window [{first_esi}, +{nss}) is not held by the encoder")]
    RlcWindowNotHeld {
        /// First ESI of the requested window.
        first_esi: u32,
        /// Number of source symbols requested.
        nss: usize,
    },
    /// A repair symbol whose payload ID was already received with other bytes.
    #[error("RLC repair symbol (key {repair_key}, first ESI {first_source_esi}) repeated with different data")]
    RlcConflictingRepair {
        /// Repair key of the conflicting symbol.
        repair_key: u16,
        /// First source ESI of its window.
        first_source_esi: u32,
    },
    /// A source symbol whose ESI is already known with other bytes.
    #[error("RLC source symbol {esi} repeated with different data")]
    RlcConflictingSource {
        /// ESI of the conflicting symbol.
        esi: u32,
    },
    /// An encoder or decoder configuration that cannot work.
    #[error("invalid RLC configuration: {reason}")]
    RlcConfig {
        /// What is wrong.
        reason: &'static str,
    },
    /// FEC Scheme-Specific Information of the wrong length.
    #[error("RLC FEC Scheme-Specific Information needs {expected} bytes, got {got}")]
    RlcSchemeInfoLength {
        /// Bytes the information occupies.
        expected: usize,
        /// Bytes supplied.
        got: usize,
    },
    // --- end RLC ---

    // --- RaptorQ (raptorq) ---
    /// A serialized RaptorQ packet or Object Transmission Information of the
    /// wrong length.
    #[error("RaptorQ packet of {got} bytes, expected {expected}")]
    RaptorqPacketLength {
        /// Bytes required.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// A source block with no symbols or more than K'max.
    #[error("RaptorQ source block of {got} symbols, must be 1..={max}")]
    RaptorqSourceSymbols {
        /// Symbols asked for.
        got: usize,
        /// K'max.
        max: u32,
    },
    /// Source block data that is not a non-zero multiple of the symbol size.
    #[error("RaptorQ source block of {length} bytes is not a non-zero multiple of symbol size {symbol_size}")]
    RaptorqBlockLength {
        /// Bytes given.
        length: usize,
        /// Symbol size T.
        symbol_size: u16,
    },
    /// Object Transmission Information that RFC 6330 section 4.4.1.2 forbids.
    #[error("invalid RaptorQ transmission information: {reason}")]
    RaptorqTransmissionInformation {
        /// Which constraint failed.
        reason: &'static str,
    },
    /// An encoding symbol id beyond 24 bits.
    #[error("RaptorQ encoding symbol id {esi} exceeds 24 bits")]
    RaptorqEncodingSymbolId {
        /// The id asked for or received.
        esi: u64,
    },
    /// A packet for another source block than the decoder's.
    #[error("RaptorQ packet of source block {got}, decoder is for block {expected}")]
    RaptorqBlockMismatch {
        /// The decoder's block.
        expected: u8,
        /// The packet's block.
        got: u8,
    },
    /// A source block number beyond the object's number of blocks.
    #[error("RaptorQ source block {got} of an object with {blocks} blocks")]
    RaptorqBlockNumber {
        /// Block asked for.
        got: u8,
        /// Blocks in the object.
        blocks: u8,
    },
    /// More distinct repair symbols than the decoder holds for one block.
    #[error("RaptorQ decoder already holds {max} repair symbols for this block")]
    RaptorqTooManyRepairSymbols {
        /// The cap.
        max: usize,
    },
    /// An encoding plan used for a block of another number of symbols.
    #[error("RaptorQ encoding plan for {plan} source symbols used on a block of {block}")]
    RaptorqPlanMismatch {
        /// K of the plan.
        plan: u32,
        /// Symbols in the block.
        block: usize,
    },
    // --- end RaptorQ ---

    // --- pipeline ---
    /// A pipeline configuration the chosen scheme cannot run.
    #[error("invalid pipeline configuration: {reason}")]
    PipelineConfig {
        /// Which constraint failed.
        reason: &'static str,
    },
    /// An FEC packet header that does not parse.
    #[error("malformed FEC header: {reason}")]
    PipelineHeader {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An FEC packet of a wire version this code does not speak.
    #[error("FEC wire version {got} is not supported")]
    PipelineVersion {
        /// The version in the packet.
        got: u8,
    },
    /// An FEC packet of another scheme than the decoder's.
    #[error("FEC packet of scheme {got}, decoder runs scheme {expected}")]
    PipelineWrongScheme {
        /// The decoder's scheme id.
        expected: u8,
        /// The packet's scheme id.
        got: u8,
    },
    /// An ADU too long for the configured symbol size.
    #[error("ADU of {len} bytes exceeds the {max} bytes a symbol can carry")]
    PipelineAduTooLong {
        /// The ADU's length.
        len: usize,
        /// Symbol size minus the 3 bytes of ADU information.
        max: usize,
    },
    /// `protect` on a block that already holds its maximum number of source
    /// symbols: call `repair` (with any count, even 0) to close it.
    #[error("block already holds {data} source symbols; close it with repair()")]
    PipelineBlockFull {
        /// The block's capacity.
        data: usize,
    },
    /// More repair symbols asked for than the scheme allows at once.
    #[error("{requested} repair symbols asked for, at most {max} allowed")]
    PipelineRepairCount {
        /// The count asked for.
        requested: usize,
        /// The limit.
        max: usize,
    },
    /// A payload of the wrong length for its header or block.
    #[error("FEC payload of {got} bytes, expected {expected}")]
    PipelinePayloadLength {
        /// What the header or the block implies.
        expected: usize,
        /// What arrived.
        got: usize,
    },
    /// A packet that contradicts what earlier packets said about the same
    /// block or window, or a recovered symbol whose ADU information is not
    /// well-formed.
    #[error("inconsistent FEC packet: {reason}")]
    PipelineInconsistent {
        /// What contradicts what.
        reason: &'static str,
    },
    // --- end pipeline ---

    // --- Reed-Solomon over GF(2^16) (rs16) ---
    /// A shard-count combination GF(2^16) Reed-Solomon cannot encode: a zero
    /// count, or more than 65535 shards once the smaller count is rounded up
    /// to a power of two (reed-solomon-simd's limit).
    #[error("GF(2^16) Reed-Solomon: {original_count} original + {recovery_count} recovery shards are not supported")]
    Rs16UnsupportedShardCount {
        /// Original (data) shards asked for.
        original_count: usize,
        /// Recovery shards asked for.
        recovery_count: usize,
    },
    /// A shard size that is zero or odd (elements are two bytes).
    #[error("GF(2^16) Reed-Solomon: shard size {shard_bytes} must be even and non-zero")]
    Rs16InvalidShardSize {
        /// The size given or taken from the first shard.
        shard_bytes: usize,
    },
    /// A shard whose size differs from the code's.
    #[error("GF(2^16) Reed-Solomon: {kind} shard {index} is {got} bytes, expected {shard_bytes}")]
    Rs16DifferentShardSize {
        /// `"original"` or `"recovery"`.
        kind: &'static str,
        /// The shard's index among its kind.
        index: usize,
        /// The code's shard size.
        shard_bytes: usize,
        /// This shard's size.
        got: usize,
    },
    /// An original shard index at or beyond the original count.
    #[error(
        "GF(2^16) Reed-Solomon: original shard index {index} out of range 0..{original_count}"
    )]
    Rs16OriginalIndex {
        /// The index given.
        index: usize,
        /// The code's original count.
        original_count: usize,
    },
    /// A recovery shard index at or beyond the recovery count.
    #[error(
        "GF(2^16) Reed-Solomon: recovery shard index {index} out of range 0..{recovery_count}"
    )]
    Rs16RecoveryIndex {
        /// The index given.
        index: usize,
        /// The code's recovery count.
        recovery_count: usize,
    },
    /// The same original shard index given twice.
    #[error("GF(2^16) Reed-Solomon: original shard {index} given twice")]
    Rs16DuplicateOriginalIndex {
        /// The repeated index.
        index: usize,
    },
    /// The same recovery shard index given twice.
    #[error("GF(2^16) Reed-Solomon: recovery shard {index} given twice")]
    Rs16DuplicateRecoveryIndex {
        /// The repeated index.
        index: usize,
    },
    /// Fewer shards than originals: nothing can be restored.
    #[error("GF(2^16) Reed-Solomon: {original_received} original + {recovery_received} recovery shards received, {original_count} needed")]
    Rs16NotEnoughShards {
        /// The code's original count, the minimum to decode.
        original_count: usize,
        /// Original shards received.
        original_received: usize,
        /// Recovery shards received.
        recovery_received: usize,
    },
    /// `encode` before every original shard was given.
    #[error("GF(2^16) Reed-Solomon: {original_received} of {original_count} original shards given to the encoder")]
    Rs16TooFewOriginalShards {
        /// The code's original count.
        original_count: usize,
        /// Original shards given so far.
        original_received: usize,
    },
    /// More original shards than the code has.
    #[error(
        "GF(2^16) Reed-Solomon: more than {original_count} original shards given to the encoder"
    )]
    Rs16TooManyOriginalShards {
        /// The code's original count.
        original_count: usize,
    },
    // --- end rs16 ---
}
