//! The one place that builds and parses FEC packet headers (wire version 1).
//!
//! Every FEC packet starts with two bytes:
//!
//! ```text
//!  byte 0: 1 0 v v v v v v   0x80 | version (version 1: 0x81)
//!  byte 1: s s s s k k k k   scheme id (high nibble), kind (low nibble)
//! ```
//!
//! Bit 0x40 of byte 0 is always clear. QUIC sets that bit (the "fixed bit",
//! RFC 9000 section 17) in every packet, so a receiver demultiplexes FEC
//! packets from QUIC packets on the first byte alone, as RFC 7983 does for
//! other protocols sharing a port; [`is_fec_packet`] is that test.
//!
//! The rest of the header depends on scheme and kind (all integers
//! big-endian); what follows the header is the ADU itself (source packets,
//! without padding: the receiver rebuilds the padded symbol) or one repair
//! symbol (repair packets):
//!
//! | scheme (id)          | source header after byte 1   | repair header after byte 1                 |
//! |----------------------|------------------------------|--------------------------------------------|
//! | Reed-Solomon (1)     | flow u8, block u16, index u8 | block u16, data u8, parity u8, index u8    |
//! | RLC GF(2^8) (2)      | flow u8, ESI u32             | RFC 8681 Repair FEC Payload ID (8 bytes)   |
//! | RLC GF(2) (3)        | flow u8, ESI u32             | RFC 8681 Repair FEC Payload ID (8 bytes)   |
//! | RaptorQ (4)          | flow u8, SBN u8, ESI u24     | K u16, SBN u8, ESI u24                     |
//!
//! The RLC payload ids are those of RFC 8681 section 4.1 (source: ESI;
//! repair: repair key u16, DT 4 bits, NSS 12 bits, first source ESI u32).
//! The RaptorQ ones are RFC 6330 section 3.2's FEC Payload ID, so a RaptorQ
//! repair packet minus its first four bytes is exactly a serialized
//! `raptorq::EncodingPacket`.
//!
//! ```
//! use fec_core::pipeline::wire::{self, Header};
//!
//! let header = Header::RsRepair { block: 7, data: 10, parity: 4, index: 2 };
//! let bytes = header.encode();
//! assert!(wire::is_fec_packet(bytes[0]));
//! let mut packet = bytes.to_vec();
//! packet.extend_from_slice(b"repair symbol");
//! assert_eq!(Header::parse(&packet)?, (header, bytes.len()));
//! # Ok::<(), fec_core::Error>(())
//! ```

use std::ops::Deref;

use crate::Error;

/// The wire version this code writes and accepts.
pub const VERSION: u8 = 1;

/// Byte 0 of every version-1 FEC packet.
pub const FIRST_BYTE: u8 = 0x80 | VERSION;

/// QUIC's fixed bit; clear in every FEC packet.
pub const QUIC_FIXED_BIT: u8 = 0x40;

/// The longest header of any scheme.
pub const MAX_HEADER_LEN: usize = 10;

/// Whether a datagram starting with `first_byte` is an FEC packet rather
/// than a QUIC packet (QUIC always sets bit 0x40).
pub fn is_fec_packet(first_byte: u8) -> bool {
    first_byte & QUIC_FIXED_BIT == 0
}

/// Whether `packet`, an FEC packet, is a repair packet, by its kind nibble
/// (cheaper than parsing the header; malformed packets may answer either).
pub fn is_repair_packet(packet: &[u8]) -> bool {
    packet.get(1).is_some_and(|b| b & 0x0f == KIND_REPAIR)
}

/// Length of a source packet's header for each scheme.
pub fn source_header_len(scheme: SchemeId) -> usize {
    match scheme {
        SchemeId::ReedSolomon => 6,
        SchemeId::RlcGf256 | SchemeId::RlcGf2 | SchemeId::RaptorQ => 7,
    }
}

/// Length of a repair packet's header for each scheme.
pub fn repair_header_len(scheme: SchemeId) -> usize {
    match scheme {
        SchemeId::ReedSolomon => 7,
        SchemeId::RlcGf256 | SchemeId::RlcGf2 => 10,
        SchemeId::RaptorQ => 8,
    }
}

/// Scheme ids of byte 1's high nibble.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SchemeId {
    /// Block Reed-Solomon over GF(2^8).
    ReedSolomon = 1,
    /// RFC 8681 sliding-window RLC over GF(2^8).
    RlcGf256 = 2,
    /// RFC 8681 sliding-window RLC over GF(2).
    RlcGf2 = 3,
    /// RFC 6330 RaptorQ.
    RaptorQ = 4,
}

impl SchemeId {
    fn from_nibble(nibble: u8) -> Option<Self> {
        Some(match nibble {
            1 => SchemeId::ReedSolomon,
            2 => SchemeId::RlcGf256,
            3 => SchemeId::RlcGf2,
            4 => SchemeId::RaptorQ,
            _ => return None,
        })
    }
}

const KIND_SOURCE: u8 = 0;
const KIND_REPAIR: u8 = 1;

/// A parsed FEC packet header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Header {
    /// A source packet of a Reed-Solomon block.
    RsSource {
        /// ADU flow id.
        flow: u8,
        /// Block number (wraps).
        block: u16,
        /// Position of the source symbol in the block.
        index: u8,
    },
    /// A parity packet of a Reed-Solomon block.
    RsRepair {
        /// Block number (wraps).
        block: u16,
        /// Number of source symbols in the block (1..=255).
        data: u8,
        /// Number of parity symbols sent for the block.
        parity: u8,
        /// Which parity symbol this is (0..parity).
        index: u8,
    },
    /// An RLC source packet (RFC 8681 Source FEC Payload ID).
    RlcSource {
        /// GF(2) when false, GF(2^8) when true.
        gf256: bool,
        /// ADU flow id.
        flow: u8,
        /// Encoding symbol id.
        esi: u32,
    },
    /// An RLC repair packet (RFC 8681 Repair FEC Payload ID).
    RlcRepair {
        /// GF(2) when false, GF(2^8) when true.
        gf256: bool,
        /// Seed of the coefficient generator.
        repair_key: u16,
        /// Density threshold, 0..=15.
        dt: u8,
        /// Number of source symbols in the window, 1..=4095.
        nss: u16,
        /// ESI of the first source symbol of the window.
        first_esi: u32,
    },
    /// A RaptorQ source packet (RFC 6330 FEC Payload ID).
    RaptorqSource {
        /// ADU flow id.
        flow: u8,
        /// Source block number (wraps).
        block: u8,
        /// Encoding symbol id (< K for a source symbol).
        esi: u32,
    },
    /// A RaptorQ repair packet: K, then the RFC 6330 FEC Payload ID.
    RaptorqRepair {
        /// Number of source symbols K of the block.
        source_symbols: u16,
        /// Source block number (wraps).
        block: u8,
        /// Encoding symbol id (>= K for a repair symbol), 24 bits.
        esi: u32,
    },
}

/// An encoded header: a few bytes kept inline, no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderBytes {
    bytes: [u8; MAX_HEADER_LEN],
    len: u8,
}

impl Deref for HeaderBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl AsRef<[u8]> for HeaderBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

fn invalid(reason: &'static str) -> Error {
    Error::PipelineHeader { reason }
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be24(b: &[u8]) -> u32 {
    u32::from_be_bytes([0, b[0], b[1], b[2]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl Header {
    /// The scheme this header belongs to.
    pub fn scheme(&self) -> SchemeId {
        match self {
            Header::RsSource { .. } | Header::RsRepair { .. } => SchemeId::ReedSolomon,
            Header::RlcSource { gf256, .. } | Header::RlcRepair { gf256, .. } => {
                if *gf256 {
                    SchemeId::RlcGf256
                } else {
                    SchemeId::RlcGf2
                }
            }
            Header::RaptorqSource { .. } | Header::RaptorqRepair { .. } => SchemeId::RaptorQ,
        }
    }

    /// Whether this is a repair packet's header.
    pub fn is_repair(&self) -> bool {
        matches!(
            self,
            Header::RsRepair { .. } | Header::RlcRepair { .. } | Header::RaptorqRepair { .. }
        )
    }

    /// Length of the encoded header in bytes.
    pub fn len(&self) -> usize {
        if self.is_repair() {
            repair_header_len(self.scheme())
        } else {
            source_header_len(self.scheme())
        }
    }

    /// Headers are never empty; here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Encodes the header. Fields wider on the wire than in the type are
    /// masked: a 24-bit ESI keeps its low 24 bits, DT its low 4, NSS its low 12.
    pub fn encode(&self) -> HeaderBytes {
        let mut b = [0u8; MAX_HEADER_LEN];
        b[0] = FIRST_BYTE;
        let kind = if self.is_repair() {
            KIND_REPAIR
        } else {
            KIND_SOURCE
        };
        b[1] = ((self.scheme() as u8) << 4) | kind;
        match *self {
            Header::RsSource { flow, block, index } => {
                b[2] = flow;
                b[3..5].copy_from_slice(&block.to_be_bytes());
                b[5] = index;
            }
            Header::RsRepair {
                block,
                data,
                parity,
                index,
            } => {
                b[2..4].copy_from_slice(&block.to_be_bytes());
                b[4] = data;
                b[5] = parity;
                b[6] = index;
            }
            Header::RlcSource { flow, esi, .. } => {
                b[2] = flow;
                b[3..7].copy_from_slice(&esi.to_be_bytes());
            }
            Header::RlcRepair {
                repair_key,
                dt,
                nss,
                first_esi,
                ..
            } => {
                b[2..4].copy_from_slice(&repair_key.to_be_bytes());
                let dt_nss = (u16::from(dt & 0x0f) << 12) | (nss & 0x0fff);
                b[4..6].copy_from_slice(&dt_nss.to_be_bytes());
                b[6..10].copy_from_slice(&first_esi.to_be_bytes());
            }
            Header::RaptorqSource { flow, block, esi } => {
                b[2] = flow;
                b[3] = block;
                b[4..7].copy_from_slice(&esi.to_be_bytes()[1..]);
            }
            Header::RaptorqRepair {
                source_symbols,
                block,
                esi,
            } => {
                b[2..4].copy_from_slice(&source_symbols.to_be_bytes());
                b[4] = block;
                b[5..8].copy_from_slice(&esi.to_be_bytes()[1..]);
            }
        }
        HeaderBytes {
            bytes: b,
            len: self.len() as u8,
        }
    }

    /// Parses the header at the start of `packet`; returns it and its length
    /// (the payload starts there). Checks everything the header alone can
    /// tell: version, scheme, kind, and each field's range.
    pub fn parse(packet: &[u8]) -> Result<(Header, usize), Error> {
        let (&first, rest) = packet.split_first().ok_or(invalid("empty packet"))?;
        if !is_fec_packet(first) {
            return Err(invalid("QUIC fixed bit set: not an FEC packet"));
        }
        if first != FIRST_BYTE {
            return Err(Error::PipelineVersion { got: first & 0x3f });
        }
        let &second = rest.first().ok_or(invalid("truncated header"))?;
        let scheme = SchemeId::from_nibble(second >> 4).ok_or(invalid("unknown scheme id"))?;
        let repair = match second & 0x0f {
            KIND_SOURCE => false,
            KIND_REPAIR => true,
            _ => return Err(invalid("unknown packet kind")),
        };
        let len = if repair {
            repair_header_len(scheme)
        } else {
            source_header_len(scheme)
        };
        let b = packet.get(..len).ok_or(invalid("truncated header"))?;
        let gf256 = scheme == SchemeId::RlcGf256;
        let header = match (scheme, repair) {
            (SchemeId::ReedSolomon, false) => Header::RsSource {
                flow: b[2],
                block: be16(&b[3..]),
                index: b[5],
            },
            (SchemeId::ReedSolomon, true) => {
                let (data, parity, index) = (b[4], b[5], b[6]);
                if data == 0 || usize::from(data) + usize::from(parity) > 256 || index >= parity {
                    return Err(invalid("Reed-Solomon block shape out of range"));
                }
                Header::RsRepair {
                    block: be16(&b[2..]),
                    data,
                    parity,
                    index,
                }
            }
            (_, false) if scheme != SchemeId::RaptorQ => Header::RlcSource {
                gf256,
                flow: b[2],
                esi: be32(&b[3..]),
            },
            (SchemeId::RaptorQ, false) => Header::RaptorqSource {
                flow: b[2],
                block: b[3],
                esi: be24(&b[4..]),
            },
            (SchemeId::RaptorQ, true) => {
                let source_symbols = be16(&b[2..]);
                let esi = be24(&b[5..]);
                if source_symbols == 0 || esi < u32::from(source_symbols) {
                    return Err(invalid("RaptorQ repair id out of range"));
                }
                Header::RaptorqRepair {
                    source_symbols,
                    block: b[4],
                    esi,
                }
            }
            _ => {
                let dt_nss = be16(&b[4..]);
                let nss = dt_nss & 0x0fff;
                if nss == 0 {
                    return Err(invalid("RLC repair with an empty window"));
                }
                Header::RlcRepair {
                    gf256,
                    repair_key: be16(&b[2..]),
                    dt: (dt_nss >> 12) as u8,
                    nss,
                    first_esi: be32(&b[6..]),
                }
            }
        };
        Ok((header, len))
    }
}

/// Bytes of ADU information in front of the ADU in a source symbol
/// (RFC 8681 section 4.1.1: flow id u8, length u16).
pub const ADU_INFO_LEN: usize = 3;

/// The ADU information (flow id, length) of `adu`, checked to fit a symbol
/// of `size` bytes.
fn adu_info(flow: u8, adu: &[u8], size: usize) -> Result<[u8; ADU_INFO_LEN], Error> {
    let Ok(len) = u16::try_from(adu.len()) else {
        return Err(Error::PipelineAduTooLong {
            len: adu.len(),
            max: usize::from(u16::MAX),
        });
    };
    if ADU_INFO_LEN + adu.len() > size {
        return Err(Error::PipelineAduTooLong {
            len: adu.len(),
            max: size.saturating_sub(ADU_INFO_LEN),
        });
    }
    let [high, low] = len.to_be_bytes();
    Ok([flow, high, low])
}

/// Writes the source symbol of an ADU into `symbol`: flow id, length, the
/// ADU; the caller guarantees the rest of `symbol` is zero (the padding).
/// Returns the framed length (`ADU_INFO_LEN + adu.len()`).
pub fn frame_symbol(symbol: &mut [u8], flow: u8, adu: &[u8]) -> Result<usize, Error> {
    let info = adu_info(flow, adu, symbol.len())?;
    let framed = ADU_INFO_LEN + adu.len();
    symbol[..ADU_INFO_LEN].copy_from_slice(&info);
    symbol[ADU_INFO_LEN..framed].copy_from_slice(adu);
    Ok(framed)
}

/// The source symbol of an ADU as a new `size`-byte buffer (what
/// [`frame_symbol`] writes into a zeroed one, without zeroing the bytes the
/// ADU then overwrites).
pub fn framed_symbol(flow: u8, adu: &[u8], size: usize) -> Result<Vec<u8>, Error> {
    let info = adu_info(flow, adu, size)?;
    let mut symbol = Vec::with_capacity(size);
    symbol.extend_from_slice(&info);
    symbol.extend_from_slice(adu);
    symbol.resize(size, 0);
    Ok(symbol)
}

/// Reads a (recovered) source symbol: returns the flow id and the byte range
/// of the ADU inside `symbol`. The length must fit, and the padding after the
/// ADU must be zero: a symbol that fails either did not come from a
/// conforming encoder (garbage took part in decoding), so it is refused
/// rather than handed out as data.
pub fn parse_symbol(symbol: &[u8]) -> Result<(u8, std::ops::Range<usize>), Error> {
    if symbol.len() < ADU_INFO_LEN {
        return Err(Error::PipelineInconsistent {
            reason: "symbol shorter than its ADU information",
        });
    }
    let len = usize::from(be16(&symbol[1..]));
    let end = ADU_INFO_LEN + len;
    if end > symbol.len() {
        return Err(Error::PipelineInconsistent {
            reason: "ADU length beyond the symbol",
        });
    }
    if symbol[end..].iter().any(|&b| b != 0) {
        return Err(Error::PipelineInconsistent {
            reason: "non-zero padding after the ADU",
        });
    }
    Ok((symbol[0], ADU_INFO_LEN..end))
}
