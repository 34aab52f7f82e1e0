//! The repair-symbol pipeline every transport shares: variable-length ADUs
//! (QUIC packets, datagrams) in, source and repair packets out, and back.
//!
//! - Each ADU becomes one source symbol framed as RFC 8681 section 4.1.1
//!   says: flow id (u8), length (u16), the ADU, zero padding. The framing
//!   lives only in the encoder's symbol buffer; on the wire a source packet
//!   is a short header plus the ADU itself ([`SourcePacket`]), and the
//!   receiver hands that ADU back as a slice of the packet, without a copy.
//! - [`Scheme`] picks the code. Block codes (Reed-Solomon, RaptorQ) close a
//!   block when asked for its repair symbols; the sliding-window RLC code
//!   repairs the last `window` sources.
//! - The encoder is policy-neutral: it never decides on its own what to
//!   protect or when to send repair symbols. The caller (an eBPF plugin
//!   through the SDK's helpers, or native code) calls [`Encoder::protect`],
//!   [`Encoder::repair`] and [`Encoder::set_window`].
//! - The decoder is sans-IO like quinn-proto: feed it packets with
//!   [`Decoder::receive`] in any order, with loss, duplicates and garbage;
//!   take recovered ADUs from [`Decoder::poll_recovered`]. Garbage is
//!   refused with an error and counted in [`Counters::rejected`], never
//!   handed out as data. Memory is bounded by the configuration.
//! - [`wire`] is the one place where headers and symbol framing are built
//!   and parsed; [`loss`] has seeded loss models for tests and emulators.
//!
//! What the pipeline cannot do: tell a forged or corrupted packet that is
//! well-formed from a genuine one. Malformed packets, packets that contradict
//! their block, and decoded symbols whose ADU information is not well-formed
//! (length beyond the symbol, non-zero padding) are refused; but a repair
//! packet with a valid header and altered payload can still yield a wrong
//! ADU. Integrity belongs to the transport (QUIC's AEAD drops such a packet
//! after recovery) or to an authenticated datagram layer.
//!
//! ```
//! use bytes::Bytes;
//! use fec_core::pipeline::{Config, Decoder, Encoder, Scheme};
//!
//! let config = Config::new(Scheme::RaptorQ { source_symbols: 4, repair_symbols: 2 });
//! let mut encoder = Encoder::new(&config)?;
//! let mut decoder = Decoder::new(&config)?;
//!
//! let adus: Vec<Bytes> = ["one", "two", "three", "four"].map(Bytes::from).to_vec();
//! let mut sent = Vec::new();
//! for adu in &adus {
//!     sent.push(encoder.protect(7, adu.clone())?.to_bytes());
//! }
//! sent.extend(encoder.repair(2)?);
//!
//! // "two" is lost on the way; the receiver unwraps the others at once...
//! sent.remove(1);
//! for packet in sent {
//!     if let Some(adu) = decoder.receive(packet)? {
//!         assert!(adus.contains(&adu.data));
//!     }
//! }
//! // ...and the repair symbols bring "two" back.
//! let recovered = decoder.poll_recovered().unwrap();
//! assert_eq!((recovered.flow, &recovered.data[..]), (7, &b"two"[..]));
//! assert_eq!(decoder.counters().recovered, 1);
//! # Ok::<(), fec_core::Error>(())
//! ```

#![forbid(unsafe_code)]

mod block;
pub mod loss;
mod window;
pub mod wire;

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::rlc::{Field, MAX_DENSITY_THRESHOLD, MAX_WINDOW};
use crate::Error;
use wire::{Header, HeaderBytes, SchemeId, ADU_INFO_LEN};

/// Default symbol size: ADUs up to 1500 bytes plus their 3 bytes of ADU
/// information.
pub const DEFAULT_SYMBOL_SIZE: usize = 1500 + ADU_INFO_LEN;

/// Default number of blocks a decoder keeps open.
pub const DEFAULT_MAX_BLOCKS: usize = 16;

/// Default cap on recovered ADUs waiting for [`Decoder::poll_recovered`].
pub const DEFAULT_MAX_RECOVERED: usize = 4096;

/// The code behind the pipeline, with its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// Systematic block Reed-Solomon over GF(2^8) (parity identical to
    /// reed-solomon-erasure's). A block holds at most `data` sources;
    /// `repair` sends up to `parity` parity symbols for it and closes it.
    ReedSolomon {
        /// Most source symbols per block; `data + parity <= 256`.
        data: usize,
        /// Most parity symbols per block, also the count [`Encoder::flush`] sends.
        parity: usize,
    },
    /// RFC 8681 sliding-window random linear code. Repair symbols cover the
    /// last `window` sources (or fewer, see [`Encoder::set_window`]); every
    /// symbol has the configured symbol size E, though a repair packet
    /// leaves off the zeros past the longest source it covers (see
    /// [`Config::set_sized_repairs`]).
    Rlc {
        /// Coefficient field, GF(2^8) or GF(2).
        field: Field,
        /// Largest window, 1..=4095: the encoder keeps this many sources, the
        /// decoder accepts repair windows up to it.
        window: usize,
        /// Density threshold DT, 0..=15 (15: every coefficient non-zero).
        dt: u8,
    },
    /// RFC 6330 RaptorQ. A block holds at most `source_symbols` sources;
    /// `repair` sends up to `repair_symbols` repair symbols and closes it.
    RaptorQ {
        /// Most source symbols per block (K), 1..=8192.
        source_symbols: usize,
        /// Most repair symbols per block, also the count [`Encoder::flush`] sends.
        repair_symbols: usize,
    },
}

/// Largest RaptorQ block the pipeline accepts: a decoder allocates K symbols
/// per open block, and RaptorQ decoding is superlinear in K.
pub const MAX_RAPTORQ_SOURCE_SYMBOLS: usize = 8192;

impl Scheme {
    /// The wire id of this scheme.
    pub fn id(&self) -> SchemeId {
        match self {
            Scheme::ReedSolomon { .. } => SchemeId::ReedSolomon,
            Scheme::Rlc {
                field: Field::Gf256,
                ..
            } => SchemeId::RlcGf256,
            Scheme::Rlc {
                field: Field::Gf2, ..
            } => SchemeId::RlcGf2,
            Scheme::RaptorQ { .. } => SchemeId::RaptorQ,
        }
    }

    /// Checks the parameters.
    pub fn validate(&self) -> Result<(), Error> {
        let fail = |reason| Err(Error::PipelineConfig { reason });
        match *self {
            Scheme::ReedSolomon { data, parity } => {
                if data == 0 || parity == 0 || data + parity > 256 {
                    return fail("Reed-Solomon needs data >= 1, parity >= 1, data + parity <= 256");
                }
            }
            Scheme::Rlc { window, dt, .. } => {
                if window == 0 || window > MAX_WINDOW {
                    return fail("RLC needs a window of 1..=4095 sources");
                }
                if dt > MAX_DENSITY_THRESHOLD {
                    return fail("RLC density threshold DT must be 0..=15");
                }
            }
            Scheme::RaptorQ {
                source_symbols,
                repair_symbols,
            } => {
                if source_symbols == 0 || source_symbols > MAX_RAPTORQ_SOURCE_SYMBOLS {
                    return fail("RaptorQ needs 1..=8192 source symbols per block");
                }
                if repair_symbols == 0 || repair_symbols > usize::from(u16::MAX) {
                    return fail("RaptorQ needs 1..=65535 repair symbols per block");
                }
            }
        }
        Ok(())
    }
}

/// What both ends of a pipeline agree on.
///
/// ```
/// use fec_core::pipeline::{Config, Scheme};
///
/// let mut config = Config::new(Scheme::ReedSolomon { data: 10, parity: 4 });
/// config.set_symbol_size(1203).set_max_blocks(8);
/// assert_eq!(config.max_adu_len(), 1200);
/// assert_eq!(config.max_source_packet_len(), 6 + 1200);
/// assert_eq!(config.max_repair_packet_len(), 7 + 1203);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    scheme: Scheme,
    symbol_size: usize,
    max_blocks: usize,
    max_recovered: usize,
    sized_repairs: bool,
}

impl Config {
    /// A configuration with [`DEFAULT_SYMBOL_SIZE`], [`DEFAULT_MAX_BLOCKS`]
    /// and [`DEFAULT_MAX_RECOVERED`].
    pub fn new(scheme: Scheme) -> Self {
        Config {
            scheme,
            symbol_size: DEFAULT_SYMBOL_SIZE,
            max_blocks: DEFAULT_MAX_BLOCKS,
            max_recovered: DEFAULT_MAX_RECOVERED,
            sized_repairs: true,
        }
    }

    /// Largest source symbol, ADU information included (4..=65535); ADUs up
    /// to `symbol_size - 3` bytes can be protected.
    pub fn set_symbol_size(&mut self, symbol_size: usize) -> &mut Self {
        self.symbol_size = symbol_size;
        self
    }

    /// How many blocks a decoder keeps open (block codes; 1..=128, for
    /// RaptorQ 1..=64); an older block is given up when a newer one would
    /// exceed this.
    pub fn set_max_blocks(&mut self, max_blocks: usize) -> &mut Self {
        self.max_blocks = max_blocks;
        self
    }

    /// Cap on recovered ADUs waiting to be polled; beyond it, recoveries are
    /// dropped and counted as unrecoverable.
    pub fn set_max_recovered(&mut self, max_recovered: usize) -> &mut Self {
        self.max_recovered = max_recovered;
        self
    }

    /// Whether an RLC repair packet ends with the longest source symbol
    /// its window holds (`true`, the default) or carries all E bytes of
    /// its symbol. Past that length every byte of the symbol is zero, so
    /// shortened repairs decode the same: a window of 50-byte packets is
    /// repaired with 53-byte symbols, computed over 53 bytes. Decoders
    /// accept both; `false` is for receivers that predate shortened
    /// repairs. Block codes always size a block's repairs by its longest
    /// source.
    pub fn set_sized_repairs(&mut self, sized: bool) -> &mut Self {
        self.sized_repairs = sized;
        self
    }

    /// See [`set_sized_repairs`](Self::set_sized_repairs).
    pub fn sized_repairs(&self) -> bool {
        self.sized_repairs
    }

    /// The scheme.
    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    /// Largest source symbol in bytes.
    pub fn symbol_size(&self) -> usize {
        self.symbol_size
    }

    /// Largest ADU in bytes.
    pub fn max_adu_len(&self) -> usize {
        self.symbol_size.saturating_sub(ADU_INFO_LEN)
    }

    /// The longest source packet: header plus the longest ADU. A transport
    /// that protects its packets shrinks its own MTU by the header length.
    pub fn max_source_packet_len(&self) -> usize {
        wire::source_header_len(self.scheme.id()) + self.max_adu_len()
    }

    /// The longest repair packet: header plus one symbol of `symbol_size`
    /// bytes. Repair symbols are sized by the longest source they cover
    /// (block codes always, RLC unless [`Config::set_sized_repairs`] is
    /// off), so they are often shorter.
    pub fn max_repair_packet_len(&self) -> usize {
        wire::repair_header_len(self.scheme.id()) + self.symbol_size
    }

    /// Blocks a decoder keeps open.
    pub fn max_blocks(&self) -> usize {
        self.max_blocks
    }

    /// Checks scheme and limits.
    pub fn validate(&self) -> Result<(), Error> {
        self.scheme.validate()?;
        if !(ADU_INFO_LEN + 1..=usize::from(u16::MAX)).contains(&self.symbol_size) {
            return Err(Error::PipelineConfig {
                reason: "symbol size must be 4..=65535",
            });
        }
        if !(1..=128).contains(&self.max_blocks) {
            return Err(Error::PipelineConfig {
                reason: "max blocks must be 1..=128",
            });
        }
        // RaptorQ block numbers are 8 bits: half the space tells old from new.
        if matches!(self.scheme, Scheme::RaptorQ { .. }) && self.max_blocks > 64 {
            return Err(Error::PipelineConfig {
                reason: "max blocks must be 1..=64 for RaptorQ",
            });
        }
        if self.max_recovered == 0 {
            return Err(Error::PipelineConfig {
                reason: "max recovered must be at least 1",
            });
        }
        Ok(())
    }
}

/// Event counts of one encoder or decoder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Source packets made by [`Encoder::protect`].
    pub sources_sent: u64,
    /// Repair packets made by [`Encoder::repair`] and [`Encoder::flush`].
    pub repairs_sent: u64,
    /// Well-formed packets a decoder accepted (source and repair, duplicates included).
    pub received: u64,
    /// ADUs rebuilt from repair symbols.
    pub recovered: u64,
    /// Sources known lost that were given up (their block or window left the
    /// decoder's range before it could rebuild them).
    pub unrecoverable: u64,
    /// Packets refused as malformed or inconsistent, plus decode attempts
    /// that failed because inconsistent symbols took part (then the source
    /// packet that triggered the attempt is counted both here and in
    /// `received`: its own ADU is still handed out, since it arrived intact).
    pub rejected: u64,
    /// Packets that carried nothing new.
    pub duplicates: u64,
    /// Repair packets that could not help: every source they cover was
    /// already received or recovered (dropped without arithmetic or a
    /// copy), or, for RLC, the equations held already determined them.
    pub unneeded: u64,
    /// Packets of a block or window the decoder had already given up.
    pub late: u64,
}

/// An ADU with its flow id, as the decoder hands it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adu {
    /// Flow id from the ADU information.
    pub flow: u8,
    /// The ADU's bytes (a slice of a received packet or of a decoded block).
    pub data: Bytes,
}

/// A source packet: the header and the ADU, kept apart so the ADU is never
/// copied here; a transport writes both (or calls [`to_bytes`](Self::to_bytes)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourcePacket {
    header: HeaderBytes,
    adu: Bytes,
}

impl SourcePacket {
    /// The FEC header (a few bytes).
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// The ADU, as given to [`Encoder::protect`].
    pub fn adu(&self) -> &Bytes {
        &self.adu
    }

    /// Length on the wire.
    pub fn len(&self) -> usize {
        self.header.len() + self.adu.len()
    }

    /// Never true: a header is always there.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Appends the packet to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.header);
        out.extend_from_slice(&self.adu);
    }

    /// The packet as one buffer (one allocation and copy), with
    /// [`PACKET_TAILROOM`] spare bytes behind it.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.len() + PACKET_TAILROOM);
        self.write_to(&mut out);
        Bytes::from(out)
    }
}

/// Spare capacity behind every packet buffer the pipeline makes, so that a
/// transport appending a trailer of up to this many bytes (the FEC layer's
/// authentication trailer) neither reallocates nor copies the packet.
pub const PACKET_TAILROOM: usize = 20;

/// Packet buffers given back once their packets are done with (sent, or
/// handed on), reused for the next packets: a sender or receiver in steady
/// state allocates nothing per packet. The encoder keeps one
/// ([`Encoder::recycle`]); transports may keep their own for what they
/// receive.
///
/// ```
/// use fec_core::pipeline::BufferPool;
///
/// let mut pool = BufferPool::new(8);
/// let mut buffer = pool.take(1500);
/// buffer.extend_from_slice(b"a datagram");
/// let packet = buffer.freeze();
/// let at = packet.as_ptr();
/// pool.give(packet); // nothing else refers to it: kept
/// assert_eq!(pool.take(1500).as_ptr(), at);
/// ```
#[derive(Debug)]
pub struct BufferPool {
    spare: Vec<BytesMut>,
    max: usize,
}

impl BufferPool {
    /// A pool that keeps at most `max` buffers.
    pub fn new(max: usize) -> Self {
        BufferPool {
            spare: Vec::new(),
            max,
        }
    }

    /// An empty buffer with room for `capacity` bytes: a given-back one
    /// when there is one.
    pub fn take(&mut self, capacity: usize) -> BytesMut {
        match self.spare.pop() {
            Some(mut buffer) => {
                buffer.clear();
                buffer.reserve(capacity);
                buffer
            }
            // Split off, a buffer is in the `bytes` crate's shared form
            // from the start, so `freeze` and `try_into_mut` move it back
            // and forth without allocating (a plain one would get a new
            // reference-count block at every round).
            None => BytesMut::with_capacity(capacity).split_off(0),
        }
    }

    /// Keeps `packet`'s buffer if nothing else refers to it (and the pool
    /// is not full); otherwise drops it.
    pub fn give(&mut self, packet: Bytes) {
        if self.spare.len() < self.max {
            if let Ok(buffer) = packet.try_into_mut() {
                self.spare.push(buffer);
            }
        }
    }
}

/// Buffers an encoder keeps (about 22 KiB of 1400-byte packets): enough
/// for a send's packets to come back before the next send, small enough
/// for thousands of peers.
const ENCODER_POOL: usize = 16;

/// The bounded queue of recovered ADUs.
pub(crate) struct Recovered {
    queue: VecDeque<Adu>,
    cap: usize,
}

impl Recovered {
    pub(crate) fn push(&mut self, counters: &mut Counters, adu: Adu) {
        if self.queue.len() >= self.cap {
            counters.unrecoverable += 1;
        } else {
            counters.recovered += 1;
            self.queue.push_back(adu);
        }
    }
}

enum EncoderEngine {
    Block(block::BlockEncoder),
    Window(window::WindowEncoder),
}

enum DecoderEngine {
    Block(block::BlockDecoder),
    Window(Box<window::WindowDecoder>),
}

/// The sending side: turns ADUs into source packets and, when told to,
/// repair packets.
///
/// A policy (here: Reed-Solomon, 2 parity packets per 4 sources, the last
/// block closed early) is the caller's:
///
/// ```
/// use bytes::Bytes;
/// use fec_core::pipeline::{Config, Encoder, Scheme};
///
/// let mut encoder = Encoder::new(&Config::new(Scheme::ReedSolomon { data: 4, parity: 2 }))?;
/// let mut wire = Vec::new();
/// for i in 0..10u8 {
///     let packet = encoder.protect(0, Bytes::from(vec![i; 100]))?;
///     wire.push(packet.to_bytes());
///     if encoder.pending() == 4 {
///         wire.extend(encoder.repair(2)?);
///     }
/// }
/// wire.extend(encoder.flush()?); // the 2 sources left, with 2 parity packets
/// assert_eq!(wire.len(), 10 + 3 * 2);
/// assert_eq!(encoder.counters().repairs_sent, 6);
/// # Ok::<(), fec_core::Error>(())
/// ```
pub struct Encoder {
    config: Config,
    engine: EncoderEngine,
    default_repair: usize,
    counters: Counters,
    pool: BufferPool,
}

impl Encoder {
    /// An encoder for `config`.
    pub fn new(config: &Config) -> Result<Self, Error> {
        config.validate()?;
        let (engine, default_repair) = match *config.scheme() {
            Scheme::ReedSolomon { data, parity } => (
                EncoderEngine::Block(block::BlockEncoder::new(
                    block::Code::ReedSolomon,
                    data,
                    parity,
                    config.symbol_size,
                )),
                parity,
            ),
            Scheme::Rlc { field, window, dt } => (
                EncoderEngine::Window(window::WindowEncoder::new(
                    field,
                    window,
                    dt,
                    config.symbol_size,
                    config.sized_repairs,
                )?),
                1,
            ),
            Scheme::RaptorQ {
                source_symbols,
                repair_symbols,
            } => (
                EncoderEngine::Block(block::BlockEncoder::new(
                    block::Code::RaptorQ,
                    source_symbols,
                    repair_symbols,
                    config.symbol_size,
                )),
                repair_symbols,
            ),
        };
        Ok(Encoder {
            config: config.clone(),
            engine,
            default_repair,
            counters: Counters::default(),
            pool: BufferPool::new(ENCODER_POOL),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Adds `adu` to the current block or window and returns its source
    /// packet. The ADU is copied once, into the symbol buffer, with its
    /// framing; the packet refers to `adu` itself.
    ///
    /// Errors: ADU longer than [`Config::max_adu_len`]; for block codes, a
    /// full block ([`Error::PipelineBlockFull`]: call [`repair`](Self::repair)).
    pub fn protect(&mut self, flow: u8, adu: Bytes) -> Result<SourcePacket, Error> {
        Ok(SourcePacket {
            header: self.take_source(flow, &adu)?,
            adu,
        })
    }

    /// Puts `adu` into the block or window; its source header.
    fn take_source(&mut self, flow: u8, adu: &[u8]) -> Result<HeaderBytes, Error> {
        let header = match &mut self.engine {
            EncoderEngine::Block(engine) => engine.protect(flow, adu)?,
            EncoderEngine::Window(engine) => engine.protect(flow, adu)?,
        };
        self.counters.sources_sent += 1;
        Ok(header.encode())
    }

    /// Like [`protect`](Self::protect) for a borrowed ADU: the source packet
    /// on the wire (header and ADU in one buffer with [`PACKET_TAILROOM`]
    /// spare bytes), with the ADU copied once into it (and once into the
    /// encoder's symbols) and nothing else allocated.
    /// The buffer comes from those given back by [`recycle`](Self::recycle)
    /// when there is one.
    pub fn protect_slice(&mut self, flow: u8, adu: &[u8]) -> Result<Bytes, Error> {
        let header = self.take_source(flow, adu)?;
        let mut packet = self.pool.take(header.len() + adu.len() + PACKET_TAILROOM);
        packet.extend_from_slice(&header);
        packet.extend_from_slice(adu);
        Ok(packet.freeze())
    }

    /// Gives back a packet this encoder made (or any other) once it is on
    /// the wire: when nothing else refers to its buffer, the buffer holds
    /// the next source or repair packet instead of a new allocation.
    ///
    /// ```
    /// use fec_core::pipeline::{Config, Encoder, Scheme};
    /// use fec_core::rlc::Field;
    ///
    /// let scheme = Scheme::Rlc { field: Field::Gf256, window: 8, dt: 15 };
    /// let mut encoder = Encoder::new(&Config::new(scheme))?;
    /// let first = encoder.protect_slice(0, b"first")?;
    /// let at = first.as_ptr();
    /// encoder.recycle(first); // sent: its buffer is free again
    /// let second = encoder.protect_slice(0, b"again")?;
    /// assert_eq!(second.as_ptr(), at);
    /// # Ok::<(), fec_core::Error>(())
    /// ```
    pub fn recycle(&mut self, packet: Bytes) {
        self.pool.give(packet);
    }

    /// `count` repair packets for the current block or window. For block
    /// codes this closes the block (even with `count == 0`), and the next
    /// ADU starts a new one. With nothing protected since, it returns nothing.
    pub fn repair(&mut self, count: usize) -> Result<Vec<Bytes>, Error> {
        let mut out = Vec::with_capacity(count);
        self.repair_into(count, &mut out)?;
        Ok(out)
    }

    /// Like [`repair`](Self::repair), appending to `out`; returns how many
    /// packets were appended.
    pub fn repair_into(&mut self, count: usize, out: &mut Vec<Bytes>) -> Result<usize, Error> {
        let made = match &mut self.engine {
            EncoderEngine::Block(engine) => engine.repair(count, out)?,
            EncoderEngine::Window(engine) => engine.repair(count, out, &mut self.pool)?,
        };
        self.counters.repairs_sent += made as u64;
        Ok(made)
    }

    /// Block codes: the most sources per block from now on (1..=the scheme's
    /// `data` or `source_symbols`; applies from the next block, or to the
    /// current one if it holds fewer). RLC: the window size.
    pub fn set_window(&mut self, size: usize) -> Result<(), Error> {
        match &mut self.engine {
            EncoderEngine::Block(engine) => engine.set_block_len(size),
            EncoderEngine::Window(engine) => engine.set_window(size),
        }
    }

    /// Protects whatever is pending with the scheme's default repair count
    /// (`parity` or `repair_symbols`; one for RLC); nothing when nothing is
    /// pending.
    pub fn flush(&mut self) -> Result<Vec<Bytes>, Error> {
        if self.pending() == 0 {
            return Ok(Vec::new());
        }
        self.repair(self.default_repair)
    }

    /// Sources protected since the last repair (block codes: in the current block).
    pub fn pending(&self) -> usize {
        match &self.engine {
            EncoderEngine::Block(engine) => engine.pending(),
            EncoderEngine::Window(engine) => engine.pending(),
        }
    }

    /// What this encoder has sent.
    pub fn counters(&self) -> Counters {
        self.counters
    }
}

/// The receiving side: accepts packets in any order and rebuilds lost ADUs.
///
/// With the sliding-window code, a loss is repaired by the next repair
/// packet that covers it, without waiting for a block to end:
///
/// ```
/// use bytes::Bytes;
/// use fec_core::pipeline::{Config, Decoder, Encoder, Scheme};
/// use fec_core::rlc::Field;
///
/// let config = Config::new(Scheme::Rlc { field: Field::Gf256, window: 16, dt: 15 });
/// let mut encoder = Encoder::new(&config)?;
/// let mut decoder = Decoder::new(&config)?;
/// for i in 0..8u8 {
///     let packet = encoder.protect(1, Bytes::from(vec![i; 20 + usize::from(i)]))?;
///     if i != 5 {
///         decoder.receive(packet.to_bytes())?; // packet 5 is lost
///     }
/// }
/// assert!(decoder.receive(Bytes::from_static(b"\xc3 a QUIC packet")).is_err());
/// for repair in encoder.repair(1)? {
///     assert_eq!(decoder.receive(repair)?, None);
/// }
/// let adu = decoder.poll_recovered().expect("rebuilt from one repair");
/// assert_eq!(&adu.data[..], &[5u8; 25][..]);
/// assert_eq!(decoder.counters().rejected, 1);
/// # Ok::<(), fec_core::Error>(())
/// ```
pub struct Decoder {
    config: Config,
    engine: DecoderEngine,
    recovered: Recovered,
    counters: Counters,
}

impl Decoder {
    /// A decoder for `config` (the same as the encoder's).
    pub fn new(config: &Config) -> Result<Self, Error> {
        config.validate()?;
        let engine = match *config.scheme() {
            Scheme::ReedSolomon { data, parity } => DecoderEngine::Block(block::BlockDecoder::new(
                block::Code::ReedSolomon,
                data,
                parity,
                config.symbol_size,
                config.max_blocks,
            )),
            Scheme::Rlc { field, window, .. } => DecoderEngine::Window(Box::new(
                window::WindowDecoder::new(field, window, config.symbol_size)?,
            )),
            Scheme::RaptorQ {
                source_symbols,
                repair_symbols,
            } => DecoderEngine::Block(block::BlockDecoder::new(
                block::Code::RaptorQ,
                source_symbols,
                repair_symbols,
                config.symbol_size,
                config.max_blocks,
            )),
        };
        Ok(Decoder {
            config: config.clone(),
            engine,
            recovered: Recovered {
                queue: VecDeque::new(),
                cap: config.max_recovered,
            },
            counters: Counters::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Takes one packet. For a source packet seen for the first time, returns
    /// its ADU (a slice of `packet`) so a transport can unwrap it at once;
    /// for a repair packet or a duplicate, `None`. Whatever it recovers waits
    /// in [`poll_recovered`](Self::poll_recovered).
    ///
    /// A source packet of a block or window the decoder has already given up
    /// is still handed out (counted in [`Counters::late`]), without a
    /// duplicate check: it may repeat an ADU recovered long ago.
    ///
    /// Errors (the packet is dropped and counted in [`Counters::rejected`]):
    /// a header that does not parse, another scheme's packet, a payload of
    /// the wrong size, a packet that contradicts earlier ones of its block.
    ///
    /// Held source packets are kept as the `Bytes` given (no copy), so each
    /// keeps its whole buffer alive until its block or window is done: give
    /// the decoder packets in buffers of their own, not slices of a large
    /// receive buffer.
    pub fn receive(&mut self, packet: Bytes) -> Result<Option<Adu>, Error> {
        let result = self.receive_inner(packet);
        match &result {
            Ok(_) => self.counters.received += 1,
            Err(_) => self.counters.rejected += 1,
        }
        result
    }

    fn receive_inner(&mut self, packet: Bytes) -> Result<Option<Adu>, Error> {
        let (header, payload_at) = Header::parse(&packet)?;
        let expected = self.config.scheme.id();
        if header.scheme() != expected {
            return Err(Error::PipelineWrongScheme {
                expected: expected as u8,
                got: header.scheme() as u8,
            });
        }
        match &mut self.engine {
            DecoderEngine::Block(engine) => engine.receive(
                header,
                packet,
                payload_at,
                &mut self.counters,
                &mut self.recovered,
            ),
            DecoderEngine::Window(engine) => engine.receive(
                header,
                &packet,
                payload_at,
                &mut self.counters,
                &mut self.recovered,
            ),
        }
    }

    /// Tests only: turns off (or on again) the RLC decoder's shortcut for
    /// repairs over held sources ([`crate::rlc::Decoder::repair_is_known`]).
    #[cfg(test)]
    pub(crate) fn set_skip_known_windows(&mut self, skip: bool) {
        if let DecoderEngine::Window(engine) = &mut self.engine {
            engine.set_skip_known_windows(skip);
        }
    }

    /// The next recovered ADU, oldest first.
    pub fn poll_recovered(&mut self) -> Option<Adu> {
        self.recovered.queue.pop_front()
    }

    /// What this decoder has seen.
    pub fn counters(&self) -> Counters {
        self.counters
    }
}
