//! What RFC 8681 puts on the wire, in network byte order: the FEC Payload
//! IDs of section 4.1 and the FEC Scheme-Specific Information that the
//! FEC Framework Configuration Information carries (section 4.1.1).

use super::coefficients::{check_density_threshold, check_window_size};
use super::MAX_WINDOW;
use crate::Error;

/// The Source FEC Payload ID: the 32-bit encoding symbol ID (ESI) of a source
/// symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SourcePayloadId {
    /// Encoding symbol ID of the source symbol.
    pub esi: u32,
}

impl SourcePayloadId {
    /// Bytes on the wire.
    pub const LEN: usize = 4;

    /// The 4-byte big-endian form.
    pub fn to_bytes(&self) -> [u8; 4] {
        self.esi.to_be_bytes()
    }

    /// Parses exactly [`Self::LEN`] bytes.
    ///
    /// # Errors
    /// [`Error::RlcPayloadIdLength`] for any other length.
    pub fn parse(bytes: &[u8]) -> Result<SourcePayloadId, Error> {
        let bytes: [u8; 4] = bytes.try_into().map_err(|_| Error::RlcPayloadIdLength {
            expected: Self::LEN,
            got: bytes.len(),
        })?;
        Ok(SourcePayloadId {
            esi: u32::from_be_bytes(bytes),
        })
    }

    /// Parses the ID at the start of a packet and returns the rest.
    ///
    /// # Errors
    /// [`Error::RlcPayloadIdLength`] if `bytes` is shorter than [`Self::LEN`].
    pub fn parse_prefix(bytes: &[u8]) -> Result<(SourcePayloadId, &[u8]), Error> {
        let (head, rest) = split(bytes, Self::LEN)?;
        Ok((Self::parse(head)?, rest))
    }
}

/// The Repair FEC Payload ID: what a receiver needs to regenerate a repair
/// symbol's coding coefficients and place it over its window.
///
/// Wire form (8 bytes): repair key (16 bits) | DT (4 bits) | NSS (12 bits) |
/// first source ESI (32 bits).
///
/// ```
/// use fec_core::rlc::RepairPayloadId;
///
/// let id = RepairPayloadId { repair_key: 7, dt: 15, nss: 32, first_source_esi: 1000 };
/// let bytes = id.to_bytes()?;
/// assert_eq!(bytes, [0, 7, 0xf0, 32, 0, 0, 0x03, 0xe8]);
/// assert_eq!(RepairPayloadId::parse(&bytes)?, id);
/// # Ok::<(), fec_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RepairPayloadId {
    /// Seed of the coefficient generator.
    pub repair_key: u16,
    /// Density threshold, `0..=15` (15: every coefficient non-zero).
    pub dt: u8,
    /// Number of source symbols in the window, `1..=4095`.
    pub nss: u16,
    /// ESI of the first source symbol of the window.
    pub first_source_esi: u32,
}

impl RepairPayloadId {
    /// Bytes on the wire.
    pub const LEN: usize = 8;

    /// Checks the ranges the wire format can carry.
    ///
    /// # Errors
    /// [`Error::RlcDensityThreshold`] if `dt > 15`, [`Error::RlcWindowSize`]
    /// if `nss` is 0 or above 4095.
    pub fn validate(&self) -> Result<(), Error> {
        check_density_threshold(self.dt)?;
        check_window_size(usize::from(self.nss), MAX_WINDOW)
    }

    /// The 8-byte big-endian form.
    ///
    /// # Errors
    /// As [`Self::validate`]: out-of-range fields are refused rather than
    /// truncated into another valid ID.
    pub fn to_bytes(&self) -> Result<[u8; 8], Error> {
        self.validate()?;
        let mut out = [0; 8];
        out[..2].copy_from_slice(&self.repair_key.to_be_bytes());
        let dt_nss = (u16::from(self.dt) << 12) | self.nss;
        out[2..4].copy_from_slice(&dt_nss.to_be_bytes());
        out[4..].copy_from_slice(&self.first_source_esi.to_be_bytes());
        Ok(out)
    }

    /// Parses exactly [`Self::LEN`] bytes.
    ///
    /// # Errors
    /// [`Error::RlcPayloadIdLength`] for any other length,
    /// [`Error::RlcWindowSize`] for NSS = 0.
    pub fn parse(bytes: &[u8]) -> Result<RepairPayloadId, Error> {
        let bytes: [u8; 8] = bytes.try_into().map_err(|_| Error::RlcPayloadIdLength {
            expected: Self::LEN,
            got: bytes.len(),
        })?;
        let dt_nss = u16::from_be_bytes([bytes[2], bytes[3]]);
        let id = RepairPayloadId {
            repair_key: u16::from_be_bytes([bytes[0], bytes[1]]),
            dt: (dt_nss >> 12) as u8,
            nss: dt_nss & 0x0fff,
            first_source_esi: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        };
        id.validate()?;
        Ok(id)
    }

    /// Parses the ID at the start of a packet and returns the rest.
    ///
    /// # Errors
    /// As [`Self::parse`], and [`Error::RlcPayloadIdLength`] if `bytes` is
    /// shorter than [`Self::LEN`].
    pub fn parse_prefix(bytes: &[u8]) -> Result<(RepairPayloadId, &[u8]), Error> {
        let (head, rest) = split(bytes, Self::LEN)?;
        Ok((Self::parse(head)?, rest))
    }

    /// The ESI one past the last source symbol of the window (wrapping).
    pub fn end_esi(&self) -> u32 {
        self.first_source_esi.wrapping_add(u32::from(self.nss))
    }
}

/// The FEC Scheme-Specific Information (FSSI) of both RLC schemes: what a
/// receiver learns out of band (session set-up) before it can decode.
///
/// Wire form (3 bytes): encoding symbol size E (16 bits) | window size
/// ratio WSR (8 bits).
///
/// ```
/// use fec_core::rlc::{DecoderConfig, Field, SchemeSpecificInfo};
///
/// let info = SchemeSpecificInfo { symbol_size: 1280, window_size_ratio: 0 };
/// let bytes = info.to_bytes()?;
/// assert_eq!(bytes, [0x05, 0x00, 0]);
/// let info = SchemeSpecificInfo::parse(&bytes)?;
/// let config = DecoderConfig::new(Field::Gf256, usize::from(info.symbol_size));
/// assert_eq!(config.symbol_size, 1280);
/// # Ok::<(), fec_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SchemeSpecificInfo {
    /// Encoding symbol size E in bytes, at least 1.
    pub symbol_size: u16,
    /// The window size ratio (WSR) hint RFC 8681 lets a sender give about
    /// its encoding window; 0 says nothing. Carried, not interpreted: the
    /// [`Decoder`](super::Decoder) takes its limits from
    /// [`DecoderConfig`](super::DecoderConfig).
    pub window_size_ratio: u8,
}

impl SchemeSpecificInfo {
    /// Bytes on the wire.
    pub const LEN: usize = 3;

    /// The 3-byte big-endian form.
    ///
    /// # Errors
    /// [`Error::RlcConfig`] for a symbol size of 0, which no decoder accepts.
    pub fn to_bytes(&self) -> Result<[u8; 3], Error> {
        self.validate()?;
        let [high, low] = self.symbol_size.to_be_bytes();
        Ok([high, low, self.window_size_ratio])
    }

    /// Parses exactly [`Self::LEN`] bytes.
    ///
    /// # Errors
    /// [`Error::RlcSchemeInfoLength`] for any other length,
    /// [`Error::RlcConfig`] for a symbol size of 0.
    pub fn parse(bytes: &[u8]) -> Result<SchemeSpecificInfo, Error> {
        let [high, low, window_size_ratio]: [u8; 3] =
            bytes.try_into().map_err(|_| Error::RlcSchemeInfoLength {
                expected: Self::LEN,
                got: bytes.len(),
            })?;
        let info = SchemeSpecificInfo {
            symbol_size: u16::from_be_bytes([high, low]),
            window_size_ratio,
        };
        info.validate()?;
        Ok(info)
    }

    fn validate(&self) -> Result<(), Error> {
        if self.symbol_size == 0 {
            return Err(Error::RlcConfig {
                reason: "encoding symbol size E must be at least 1 byte",
            });
        }
        Ok(())
    }
}

fn split(bytes: &[u8], len: usize) -> Result<(&[u8], &[u8]), Error> {
    if bytes.len() < len {
        return Err(Error::RlcPayloadIdLength {
            expected: len,
            got: bytes.len(),
        });
    }
    Ok(bytes.split_at(len))
}
