//! RaptorQ (RFC 6330) source blocks through the `raptorq` crate,
//! with fec-core's [`Error`] instead of panics, and two ways for fec-core's
//! SIMD kernels to make the crate's repair symbols: the code's
//! [`Generator`] rows, read off the crate, and an encoding schedule of
//! fec-core's own over the crate's constraint matrix (`schedule.rs`: the
//! HDPC rows by Horner's rule, so it needs about half the crate's symbol
//! operations). The pipeline picks one per block shape by a cost model.
//!
//! The `raptorq` crate asserts on many inputs a network peer controls: a
//! short packet in `EncodingPacket::deserialize`, a symbol of the wrong size,
//! a packet of another source block, an Object Transmission Information with
//! a zero symbol size. This adapter checks every one of them first, so a
//! malformed packet is an [`Error`], never a panic.
//!
//! Packets are the crate's own [`EncodingPacket`]s: the 4-byte FEC Payload ID
//! of RFC 6330 section 3.2 (source block number, 24-bit encoding symbol id)
//! followed by one symbol. So a [`BlockEncoder`]'s packets decode in a plain
//! `raptorq::Decoder`, and a plain `raptorq::Encoder`'s packets decode in a
//! [`BlockDecoder`] (both directions are tested in `tests/raptorq_interop.rs`).
//!
//! ```
//! use fec_core::raptorq::{BlockDecoder, BlockEncoder};
//!
//! // A source block of k = 4 symbols of T = 16 bytes.
//! let block: Vec<u8> = (0..64).collect();
//! let encoder = BlockEncoder::with_symbol_size(0, 16, &block)?;
//! let mut decoder = BlockDecoder::new(0, 4, 16)?;
//!
//! // Lose two source symbols; two repair symbols make up for them.
//! for packet in encoder.source_packets().into_iter().skip(2) {
//!     decoder.add_packet(&packet.serialize())?;
//! }
//! for packet in encoder.repair_packets(0, 2)? {
//!     decoder.add_packet(&packet.serialize())?;
//! }
//! assert_eq!(decoder.block(), Some(&block[..]));
//! # Ok::<(), fec_core::Error>(())
//! ```

#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

pub use ::raptorq::{EncodingPacket, ObjectTransmissionInformation, PayloadId};
use ::raptorq::{SourceBlockDecoder, SourceBlockEncoder, SourceBlockEncodingPlan};

use crate::recent::Recent;

mod schedule;
use crate::Error;
pub(crate) use schedule::Schedule;

/// The largest number of source symbols in one block (K'max, RFC 6330
/// section 5.1.2).
pub const MAX_SOURCE_SYMBOLS: u32 = 56_403;

/// Encoding symbol ids are 24-bit (RFC 6330 section 3.2).
pub const MAX_ENCODING_SYMBOL_ID: u32 = (1 << 24) - 1;

/// Bytes of the FEC Payload ID in front of every serialized packet.
pub const PAYLOAD_ID_LEN: usize = 4;

/// The largest transfer length F (RFC 6330 errata 5548).
const MAX_TRANSFER_LENGTH: u64 = 942_574_504_275;

/// Checks an Object Transmission Information the way RFC 6330 section
/// 4.4.1.2 constrains it, so that nothing downstream divides by zero or
/// exceeds K'max.
pub fn validate_transmission_information(oti: &ObjectTransmissionInformation) -> Result<(), Error> {
    let invalid = |reason| Err(Error::RaptorqTransmissionInformation { reason });
    let symbol_size = u64::from(oti.symbol_size());
    let alignment = u64::from(oti.symbol_alignment());
    if symbol_size == 0 {
        return invalid("symbol size T is zero");
    }
    if alignment == 0 || symbol_size % alignment != 0 {
        return invalid("symbol size T is not a multiple of the alignment Al");
    }
    if oti.source_blocks() == 0 {
        return invalid("number of source blocks Z is zero");
    }
    if oti.sub_blocks() == 0 || u64::from(oti.sub_blocks()) > symbol_size / alignment {
        return invalid("number of sub-blocks N is zero or above T / Al");
    }
    if oti.transfer_length() == 0 || oti.transfer_length() > MAX_TRANSFER_LENGTH {
        return invalid("transfer length F is zero or too large");
    }
    let total_symbols = oti.transfer_length().div_ceil(symbol_size);
    if total_symbols.div_ceil(u64::from(oti.source_blocks())) > u64::from(MAX_SOURCE_SYMBOLS) {
        return invalid("more than K'max symbols per source block");
    }
    Ok(())
}

/// Parses the 12-byte serialized Object Transmission Information (RFC 6330
/// section 3.3.2 and 3.3.3) and validates it.
pub fn parse_transmission_information(
    bytes: &[u8],
) -> Result<ObjectTransmissionInformation, Error> {
    let array: &[u8; 12] = bytes.try_into().map_err(|_| Error::RaptorqPacketLength {
        expected: 12,
        got: bytes.len(),
    })?;
    let oti = ObjectTransmissionInformation::deserialize(array);
    validate_transmission_information(&oti)?;
    Ok(oti)
}

/// Parses a serialized [`EncodingPacket`] whose symbol must be `symbol_size`
/// bytes; unlike `EncodingPacket::deserialize`, a short or long packet is an
/// error.
pub fn parse_packet(bytes: &[u8], symbol_size: u16) -> Result<EncodingPacket, Error> {
    let expected = PAYLOAD_ID_LEN + usize::from(symbol_size);
    if bytes.len() != expected {
        return Err(Error::RaptorqPacketLength {
            expected,
            got: bytes.len(),
        });
    }
    let (id, symbol) = bytes.split_at(PAYLOAD_ID_LEN);
    let id: &[u8; PAYLOAD_ID_LEN] = id.try_into().map_err(|_| Error::RaptorqPacketLength {
        expected,
        got: bytes.len(),
    })?;
    Ok(EncodingPacket::new(
        PayloadId::deserialize(id),
        symbol.to_vec(),
    ))
}

/// The Object Transmission Information of one source block of
/// `source_symbols` symbols of `symbol_size` bytes, no sub-blocking, alignment 1.
fn single_block_information(
    source_symbols: u32,
    symbol_size: u16,
) -> Result<ObjectTransmissionInformation, Error> {
    if source_symbols == 0 || source_symbols > MAX_SOURCE_SYMBOLS {
        return Err(Error::RaptorqSourceSymbols {
            got: source_symbols as usize,
            max: MAX_SOURCE_SYMBOLS,
        });
    }
    if symbol_size == 0 {
        return Err(Error::RaptorqTransmissionInformation {
            reason: "symbol size T is zero",
        });
    }
    let length = u64::from(source_symbols) * u64::from(symbol_size);
    Ok(ObjectTransmissionInformation::new(
        length,
        symbol_size,
        1,
        1,
        1,
    ))
}

/// The precomputed schedule of row operations that turns K source symbols
/// into the intermediate symbols of RFC 6330 section 5.3.3.4.
///
/// The schedule depends only on K, not on the data or the symbol size, so
/// one plan serves every block of K symbols. This is the `raptorq` crate's
/// own `SourceBlockEncodingPlan` (any user of the crate can hold one), with
/// K kept beside it: the crate asserts when a plan meets a block of another
/// size, and [`BlockEncoder::with_plan`] returns an error instead.
#[derive(Debug, Clone)]
pub struct EncodingPlan {
    source_symbols: u32,
    inner: SourceBlockEncodingPlan,
}

impl EncodingPlan {
    /// The plan for blocks of `source_symbols` symbols (1..=K'max). Building
    /// it costs about one block encode's worth of matrix work.
    pub fn new(source_symbols: u32) -> Result<Self, Error> {
        if source_symbols == 0 || source_symbols > MAX_SOURCE_SYMBOLS {
            return Err(Error::RaptorqSourceSymbols {
                got: source_symbols as usize,
                max: MAX_SOURCE_SYMBOLS,
            });
        }
        // K'max = 56403 < 2^16, checked above.
        let count = source_symbols as u16;
        Ok(EncodingPlan {
            source_symbols,
            inner: SourceBlockEncodingPlan::generate(count),
        })
    }

    /// Number of source symbols K of the blocks this plan encodes.
    pub fn source_symbols(&self) -> u32 {
        self.source_symbols
    }
}

/// The [`EncodingPlan`]s of the last few block sizes an encoder met.
///
/// A sender's blocks mostly repeat a few sizes, so a handful of plans spares
/// every block the plan search. (The `raptorq` crate also keeps plans in a
/// process-wide cache behind a mutex; a cache per encoder needs no lock.)
#[derive(Debug, Clone, Default)]
pub struct EncodingPlanCache {
    plans: Recent<u32, EncodingPlan>,
}

impl EncodingPlanCache {
    /// Plans kept; the oldest is dropped to make room for a new size.
    pub const CAPACITY: usize = Recent::<u32, EncodingPlan>::CAPACITY;

    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The plan for blocks of `source_symbols` symbols, built on first use.
    pub fn plan(&mut self, source_symbols: u32) -> Result<&EncodingPlan, Error> {
        let plan = self
            .plans
            .get_or_try_insert(source_symbols, || EncodingPlan::new(source_symbols))?;
        Ok(plan)
    }

    /// Number of plans held.
    pub fn len(&self) -> usize {
        self.plans.len()
    }

    /// Whether no plan is held yet.
    pub fn is_empty(&self) -> bool {
        self.plans.len() == 0
    }
}

/// Largest K for which a [`Generator`] is built: it encodes a K x K
/// identity block once, so its cost and memory grow with K squared (1 MiB
/// at this bound), and beyond a few hundred symbols applying K-wide
/// coefficient rows stops being cheaper than the crate's own schedule.
pub const MAX_GENERATOR_SOURCE_SYMBOLS: u32 = 1024;

/// RaptorQ for one K as what it is, a linear code over GF(2^8): the
/// coefficients that make each repair symbol out of the K source symbols.
///
/// Every operation of RFC 6330 on symbols is a byte-wise GF(2^8) sum or
/// product, so repair symbol `e` is `sum over i of row(e)[i] * source[i]`
/// for some row that depends only on K and `e`. The rows are read off the
/// `raptorq` crate itself: encoding the K x K identity block (source symbol
/// `i` is the unit vector `e_i`, T = K bytes) makes repair symbol `e` equal
/// to `row(e)`. With the rows, fec-core's SIMD matrix kernel produces the
/// same repair bytes as the crate, and a receiver rebuilds lost sources by
/// inverting the rows at the lost positions (see the pipeline), a
/// decode that succeeds exactly when the crate's would: both ask whether the
/// received symbols determine the block.
///
/// ```
/// use fec_core::gf256;
/// use fec_core::raptorq::{BlockEncoder, Generator};
///
/// let block: Vec<u8> = (0..64u8).collect(); // K = 4 symbols of 16 bytes
/// let generator = Generator::new(4, 2)?;
/// let rows = generator.repair_rows(0, 2)?; // ESIs 4 and 5, 2 x 4 coefficients
/// let sources: Vec<&[u8]> = block.chunks(16).collect();
/// let repairs = gf256::engine().prepare(&rows, 2, 4).apply_new(&sources);
///
/// let crate_repairs = BlockEncoder::with_symbol_size(0, 16, &block)?.repair_packets(0, 2)?;
/// assert_eq!(repairs[0], crate_repairs[0].data());
/// assert_eq!(repairs[1], crate_repairs[1].data());
/// # Ok::<(), fec_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Generator {
    source_symbols: u32,
    /// The crate's encoder over the identity block, for rows not kept.
    identity: SourceBlockEncoder,
    /// Rows of the first repair symbols (ESIs K, K+1, ..), row-major.
    kept: Vec<u8>,
}

impl Generator {
    /// The rows of K = `source_symbols` (1..=[`MAX_GENERATOR_SOURCE_SYMBOLS`]),
    /// with those of the first `kept_repairs` repair symbols computed now
    /// and kept (a sender numbers its repairs from K up, so a receiver
    /// mostly meets those).
    pub fn new(source_symbols: u32, kept_repairs: u32) -> Result<Self, Error> {
        if source_symbols == 0 || source_symbols > MAX_GENERATOR_SOURCE_SYMBOLS {
            return Err(Error::RaptorqSourceSymbols {
                got: source_symbols as usize,
                max: MAX_GENERATOR_SOURCE_SYMBOLS,
            });
        }
        let k = source_symbols as usize;
        let mut identity = vec![0u8; k * k];
        for i in 0..k {
            identity[i * k + i] = 1;
        }
        // K <= 1024 fits the u16 symbol size.
        let information = single_block_information(source_symbols, k as u16)?;
        let mut generator = Generator {
            source_symbols,
            identity: SourceBlockEncoder::new(0, &information, &identity),
            kept: Vec::new(),
        };
        let kept_repairs = kept_repairs
            .min(Self::MAX_KEPT_REPAIRS)
            .min(MAX_ENCODING_SYMBOL_ID + 1 - source_symbols);
        generator.kept = generator.repair_rows(0, kept_repairs)?;
        Ok(generator)
    }

    /// Most repair rows [`new`](Self::new) keeps (more are computed when
    /// asked for).
    pub const MAX_KEPT_REPAIRS: u32 = 1024;

    /// Repair rows kept by the generators of [`shared`](Self::shared).
    pub const SHARED_KEPT_REPAIRS: u32 = 256;

    /// The generator of K = `source_symbols`, from a process-wide cache of
    /// the last few K asked for (built on first use, with
    /// [`SHARED_KEPT_REPAIRS`](Self::SHARED_KEPT_REPAIRS) rows kept), so a
    /// new encoder or decoder, one per connection, does not build it again;
    /// the `raptorq` crate keeps its encoding plans the same way.
    pub fn shared(source_symbols: u32) -> Result<Arc<Generator>, Error> {
        if let Some(generator) = Self::cached(source_symbols) {
            return Ok(generator);
        }
        // Built outside the lock: another thread may build the same one
        // meanwhile, and the second to finish keeps the first's.
        let built = Arc::new(Generator::new(source_symbols, Self::SHARED_KEPT_REPAIRS)?);
        let mut shared = shared_generators();
        let kept = shared.get_or_try_insert(source_symbols, || Ok::<_, Error>(built))?;
        Ok(Arc::clone(kept))
    }

    /// The generator of K = `source_symbols` if the process-wide cache of
    /// [`shared`](Self::shared) holds it; never builds one.
    pub fn cached(source_symbols: u32) -> Option<Arc<Generator>> {
        shared_generators().get(&source_symbols).map(Arc::clone)
    }

    /// Number of source symbols K.
    pub fn source_symbols(&self) -> u32 {
        self.source_symbols
    }

    /// The rows of `count` repair symbols from repair number `first_repair`
    /// (ESI `K + first_repair`) on, row-major: `count x K` coefficients.
    pub fn repair_rows(&self, first_repair: u32, count: u32) -> Result<Vec<u8>, Error> {
        let mut rows = Vec::with_capacity(count as usize * self.source_symbols as usize);
        self.append_repair_rows(first_repair, count, &mut rows)?;
        Ok(rows)
    }

    /// The row of encoding symbol `esi`: a unit row for a source symbol.
    pub fn row(&self, esi: u32) -> Result<Vec<u8>, Error> {
        let mut row = Vec::with_capacity(self.source_symbols as usize);
        self.append_row(esi, &mut row)?;
        Ok(row)
    }

    /// Appends [`row`](Self::row)`(esi)` to `rows` (a caller gathering the
    /// rows of several symbols makes no vector per row).
    pub fn append_row(&self, esi: u32, rows: &mut Vec<u8>) -> Result<(), Error> {
        match esi.checked_sub(self.source_symbols) {
            Some(repair) => self.append_repair_rows(repair, 1, rows),
            None => {
                let start = rows.len();
                rows.resize(start + self.source_symbols as usize, 0);
                rows[start + esi as usize] = 1;
                Ok(())
            }
        }
    }

    /// Appends [`repair_rows`](Self::repair_rows)`(first_repair, count)`:
    /// copied from the kept rows when they cover the range, else computed.
    fn append_repair_rows(
        &self,
        first_repair: u32,
        count: u32,
        rows: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let last = u64::from(self.source_symbols) + u64::from(first_repair) + u64::from(count);
        if count > 0 && last - 1 > u64::from(MAX_ENCODING_SYMBOL_ID) {
            return Err(Error::RaptorqEncodingSymbolId { esi: last - 1 });
        }
        let k = self.source_symbols as usize;
        let kept = (self.kept.len() / k) as u32;
        if first_repair.saturating_add(count) <= kept {
            let start = first_repair as usize * k;
            rows.extend_from_slice(&self.kept[start..start + count as usize * k]);
        } else {
            for packet in self.identity.repair_packets(first_repair, count) {
                rows.extend_from_slice(packet.data());
            }
        }
        Ok(())
    }
}

/// The process-wide generators of [`Generator::shared`], locked.
fn shared_generators() -> MutexGuard<'static, Recent<u32, Arc<Generator>>> {
    static SHARED: OnceLock<Mutex<Recent<u32, Arc<Generator>>>> = OnceLock::new();
    SHARED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Number of `symbol_size` symbols in `block`, which must be a multiple of a
/// non-zero symbol size.
fn symbol_count(block: &[u8], symbol_size: u16) -> Result<usize, Error> {
    if symbol_size == 0 || !block.len().is_multiple_of(usize::from(symbol_size)) {
        return Err(Error::RaptorqBlockLength {
            length: block.len(),
            symbol_size,
        });
    }
    Ok(block.len() / usize::from(symbol_size))
}

/// Encodes one source block (RFC 6330 section 5.3): the source symbols as
/// they are (the code is systematic) and any number of repair symbols.
#[derive(Debug, Clone)]
pub struct BlockEncoder {
    inner: SourceBlockEncoder,
    information: ObjectTransmissionInformation,
    source_block_number: u8,
    source_symbols: u32,
}

impl BlockEncoder {
    /// A block of `block.len() / symbol_size` source symbols; `block.len()`
    /// must be a non-zero multiple of `symbol_size`. No sub-blocking,
    /// alignment 1: the [`transmission_information`](Self::transmission_information)
    /// tells a plain `raptorq::Decoder` so.
    pub fn with_symbol_size(
        source_block_number: u8,
        symbol_size: u16,
        block: &[u8],
    ) -> Result<Self, Error> {
        let source_symbols = u32::try_from(symbol_count(block, symbol_size)?).unwrap_or(u32::MAX);
        let information = single_block_information(source_symbols, symbol_size)?;
        Self::new(source_block_number, &information, block)
    }

    /// Like [`with_symbol_size`](Self::with_symbol_size), with the
    /// intermediate-symbol schedule taken from `plan` instead of looked up:
    /// the repair symbols are the same bytes. `plan` must be for
    /// `block.len() / symbol_size` symbols.
    pub fn with_plan(
        source_block_number: u8,
        symbol_size: u16,
        block: &[u8],
        plan: &EncodingPlan,
    ) -> Result<Self, Error> {
        let symbols = symbol_count(block, symbol_size)?;
        if symbols != plan.source_symbols as usize {
            return Err(Error::RaptorqPlanMismatch {
                plan: plan.source_symbols,
                block: symbols,
            });
        }
        let information = single_block_information(plan.source_symbols, symbol_size)?;
        Ok(BlockEncoder {
            inner: SourceBlockEncoder::with_encoding_plan(
                source_block_number,
                &information,
                block,
                &plan.inner,
            ),
            information,
            source_block_number,
            source_symbols: plan.source_symbols,
        })
    }

    /// A block laid out as `information` says (symbol size, sub-blocks,
    /// alignment); `block` is the whole source block, a multiple of the symbol
    /// size (zero-padded by the caller if the object ends inside it).
    pub fn new(
        source_block_number: u8,
        information: &ObjectTransmissionInformation,
        block: &[u8],
    ) -> Result<Self, Error> {
        validate_transmission_information(information)?;
        let symbol_size = information.symbol_size();
        if block.is_empty() || !block.len().is_multiple_of(usize::from(symbol_size)) {
            return Err(Error::RaptorqBlockLength {
                length: block.len(),
                symbol_size,
            });
        }
        let symbols = block.len() / usize::from(symbol_size);
        if symbols > MAX_SOURCE_SYMBOLS as usize {
            return Err(Error::RaptorqSourceSymbols {
                got: symbols,
                max: MAX_SOURCE_SYMBOLS,
            });
        }
        Ok(BlockEncoder {
            inner: SourceBlockEncoder::new(source_block_number, information, block),
            information: *information,
            source_block_number,
            source_symbols: symbols as u32,
        })
    }

    /// Number of source symbols K in the block.
    pub fn source_symbols(&self) -> u32 {
        self.source_symbols
    }

    /// Symbol size T in bytes.
    pub fn symbol_size(&self) -> u16 {
        self.information.symbol_size()
    }

    /// The source block number (SBN) in every packet's payload id.
    pub fn source_block_number(&self) -> u8 {
        self.source_block_number
    }

    /// What a receiver needs to build its decoder (RFC 6330 section 3.3).
    pub fn transmission_information(&self) -> ObjectTransmissionInformation {
        self.information
    }

    /// The K source packets, ESI 0..K.
    pub fn source_packets(&self) -> Vec<EncodingPacket> {
        self.inner.source_packets()
    }

    /// `count` repair packets, the first with ESI `K + first_repair`
    /// (RFC 6330 section 5.3.4). Any range of repair symbols can be asked
    /// for, in any order: the code is a fountain.
    pub fn repair_packets(
        &self,
        first_repair: u32,
        count: u32,
    ) -> Result<Vec<EncodingPacket>, Error> {
        self.check_repair_range(first_repair, count)?;
        Ok(self.inner.repair_packets(first_repair, count))
    }

    /// Refuses repair ranges whose last ESI exceeds what a payload id holds.
    fn check_repair_range(&self, first_repair: u32, count: u32) -> Result<(), Error> {
        let last = u64::from(self.source_symbols) + u64::from(first_repair) + u64::from(count);
        if count > 0 && last - 1 > u64::from(MAX_ENCODING_SYMBOL_ID) {
            return Err(Error::RaptorqEncodingSymbolId { esi: last - 1 });
        }
        Ok(())
    }

    /// Hands the same symbols as [`repair_packets`](Self::repair_packets) to
    /// `emit` in order, with their ESI. At most [`REPAIR_BATCH`](Self::REPAIR_BATCH)
    /// of the crate's symbol buffers are alive at a time, where `repair_packets`
    /// holds all `count`: a caller that copies each symbol into its own packet
    /// keeps its peak memory near what the block itself needs. (A burst of
    /// short-lived buffers is what makes glibc give heap pages back to the
    /// kernel after a block and fault them in again for the next.)
    pub fn for_each_repair(
        &self,
        first_repair: u32,
        count: u32,
        mut emit: impl FnMut(u32, &[u8]),
    ) -> Result<(), Error> {
        self.check_repair_range(first_repair, count)?;
        // Each call of the crate looks K's parameters up in its tables again,
        // so one call per symbol would cost more than the memory it saves.
        let mut first = first_repair;
        let end = first_repair + count;
        while first < end {
            let batch = (end - first).min(Self::REPAIR_BATCH);
            for packet in self.inner.repair_packets(first, batch) {
                emit(packet.payload_id().encoding_symbol_id(), packet.data());
            }
            first += batch;
        }
        Ok(())
    }

    /// Repair symbols [`for_each_repair`](Self::for_each_repair) asks the
    /// crate for at once.
    pub const REPAIR_BATCH: u32 = 16;
}

/// Decodes one source block from any K or slightly more of its packets
/// (RFC 6330 section 5.4), in any order, with duplicates.
///
/// Memory is bounded: at most K source symbols and `max_repair_symbols`
/// distinct repair symbols are held (by default K + 64 of them). It follows
/// what is held: a new decoder holds nothing, and the crate's decoder (which
/// takes a slot per source symbol, 24 bytes each) is made with the first
/// packet.
#[derive(Debug, Clone)]
pub struct BlockDecoder {
    /// Made by the first packet the crate must see.
    inner: Option<SourceBlockDecoder>,
    information: ObjectTransmissionInformation,
    source_block_number: u8,
    source_symbols: u32,
    symbol_size: u16,
    /// One bit per source ESI seen; words are added as ESIs come.
    sources_seen: Vec<u64>,
    repairs_seen: HashSet<u32>,
    max_repair_symbols: usize,
    block: Option<Vec<u8>>,
}

impl BlockDecoder {
    /// A decoder for a block of `source_symbols` symbols of `symbol_size`
    /// bytes, no sub-blocking, alignment 1 (as [`BlockEncoder::with_symbol_size`]
    /// makes).
    pub fn new(
        source_block_number: u8,
        source_symbols: u32,
        symbol_size: u16,
    ) -> Result<Self, Error> {
        let information = single_block_information(source_symbols, symbol_size)?;
        Ok(Self::build(
            source_block_number,
            &information,
            source_symbols,
        ))
    }

    /// A decoder for source block `source_block_number` of the object that
    /// `information` describes (for packets of a plain `raptorq::Encoder`).
    pub fn with_transmission_information(
        information: &ObjectTransmissionInformation,
        source_block_number: u8,
    ) -> Result<Self, Error> {
        validate_transmission_information(information)?;
        // Partition[] of RFC 6330 section 4.4.1.2: the first ZL blocks have KL
        // symbols, the remaining ZS blocks KS.
        let total = information
            .transfer_length()
            .div_ceil(u64::from(information.symbol_size()));
        let blocks = u64::from(information.source_blocks());
        if u64::from(source_block_number) >= blocks {
            return Err(Error::RaptorqBlockNumber {
                got: source_block_number,
                blocks: information.source_blocks(),
            });
        }
        let large = total.div_ceil(blocks);
        let small = total / blocks;
        let large_count = total - small * blocks;
        let symbols = if u64::from(source_block_number) < large_count {
            large
        } else {
            small
        };
        if symbols == 0 {
            return Err(Error::RaptorqTransmissionInformation {
                reason: "source block would be empty",
            });
        }
        Ok(Self::build(
            source_block_number,
            information,
            symbols as u32,
        ))
    }

    fn build(
        source_block_number: u8,
        information: &ObjectTransmissionInformation,
        source_symbols: u32,
    ) -> Self {
        BlockDecoder {
            inner: None,
            information: *information,
            source_block_number,
            source_symbols,
            symbol_size: information.symbol_size(),
            sources_seen: Vec::new(),
            repairs_seen: HashSet::new(),
            max_repair_symbols: source_symbols as usize + 64,
            block: None,
        }
    }

    /// Caps the number of distinct repair symbols held; later ones are
    /// refused with [`Error::RaptorqTooManyRepairSymbols`].
    pub fn set_max_repair_symbols(&mut self, max: usize) -> &mut Self {
        self.max_repair_symbols = max;
        self
    }

    /// Number of source symbols K.
    pub fn source_symbols(&self) -> u32 {
        self.source_symbols
    }

    /// Symbol size T in bytes.
    pub fn symbol_size(&self) -> u16 {
        self.symbol_size
    }

    /// Adds a serialized packet (payload id + symbol). Returns whether the
    /// block is decoded now.
    pub fn add_packet(&mut self, bytes: &[u8]) -> Result<bool, Error> {
        let packet = parse_packet(bytes, self.symbol_size)?;
        self.add(packet)
    }

    /// Adds one packet. Returns whether the block is decoded now. A packet
    /// of another block, with a symbol of the wrong size or an ESI out of
    /// range is refused; a duplicate is ignored.
    pub fn add(&mut self, packet: EncodingPacket) -> Result<bool, Error> {
        if self.admit(&packet)? {
            self.block = self.crate_decoder().decode(std::iter::once(packet));
        }
        Ok(self.block.is_some())
    }

    /// Adds packets as [`add`](Self::add) does, all in one step: the crate
    /// looks the block's parameters up once, not once per packet. On the
    /// first refused packet, the packets before it are kept and the error is
    /// returned; the rest are not looked at.
    pub fn add_all(
        &mut self,
        packets: impl IntoIterator<Item = EncodingPacket>,
    ) -> Result<bool, Error> {
        let mut admitted = Vec::new();
        let mut refused = None;
        for packet in packets {
            match self.admit(&packet) {
                Ok(true) => admitted.push(packet),
                Ok(false) => {}
                Err(error) => {
                    refused = Some(error);
                    break;
                }
            }
        }
        if !admitted.is_empty() {
            self.block = self.crate_decoder().decode(admitted);
        }
        match refused {
            Some(error) => Err(error),
            None => Ok(self.block.is_some()),
        }
    }

    /// The crate's decoder, made on first use.
    fn crate_decoder(&mut self) -> &mut SourceBlockDecoder {
        let (number, information) = (self.source_block_number, self.information);
        let length = u64::from(self.source_symbols) * u64::from(information.symbol_size());
        self.inner
            .get_or_insert_with(|| SourceBlockDecoder::new(number, &information, length))
    }

    /// Checks `packet` and records its ESI; whether the crate's decoder
    /// should see it (a duplicate, or any packet once decoded, need not).
    fn admit(&mut self, packet: &EncodingPacket) -> Result<bool, Error> {
        let id = packet.payload_id();
        if id.source_block_number() != self.source_block_number {
            return Err(Error::RaptorqBlockMismatch {
                expected: self.source_block_number,
                got: id.source_block_number(),
            });
        }
        if packet.data().len() != usize::from(self.symbol_size) {
            return Err(Error::RaptorqPacketLength {
                expected: PAYLOAD_ID_LEN + usize::from(self.symbol_size),
                got: PAYLOAD_ID_LEN + packet.data().len(),
            });
        }
        let esi = id.encoding_symbol_id();
        if esi > MAX_ENCODING_SYMBOL_ID {
            return Err(Error::RaptorqEncodingSymbolId {
                esi: u64::from(esi),
            });
        }
        if self.block.is_some() {
            return Ok(false);
        }
        if esi < self.source_symbols {
            let (word, bit) = (esi as usize / 64, 1u64 << (esi % 64));
            if self.sources_seen.len() <= word {
                self.sources_seen.resize(word + 1, 0);
            }
            if self.sources_seen[word] & bit != 0 {
                return Ok(false);
            }
            self.sources_seen[word] |= bit;
        } else {
            if self.repairs_seen.contains(&esi) {
                return Ok(false);
            }
            if self.repairs_seen.len() >= self.max_repair_symbols {
                return Err(Error::RaptorqTooManyRepairSymbols {
                    max: self.max_repair_symbols,
                });
            }
            self.repairs_seen.insert(esi);
        }
        Ok(true)
    }

    /// Whether the whole block is known.
    pub fn is_decoded(&self) -> bool {
        self.block.is_some()
    }

    /// The decoded source block (K * T bytes), once known.
    pub fn block(&self) -> Option<&[u8]> {
        self.block.as_deref()
    }

    /// The decoded source block, taken out of the decoder.
    pub fn into_block(self) -> Option<Vec<u8>> {
        self.block
    }
}
