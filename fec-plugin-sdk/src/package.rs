//! The `.fecp` package: manifest, bytecode per pluglet, SHA-256, signatures.
//!
//! # Format (version 1, all integers little-endian)
//!
//! ```text
//! body (covered by the digest):
//!   "FECP"  u16 format = 1  u16 reserved = 0
//!   name:    u8 len (1..=64) + UTF-8
//!   version: u8 len (1..=32) + UTF-8
//!   u32 memory_size (256..=65536)
//!   u8 helper count (<= 32), then u32 helper id each (distinct)
//!   u8 pluglet count (1..=16), then per pluglet:
//!     name: u8 len (1..=64) + UTF-8
//!     u8 operation id, u8 anchor id
//!     u32 code length (multiple of 8, 8..=32767*8), code
//! trailer:
//!   [32] SHA-256 of the body
//!   u8 signature count (<= 8), then per signature:
//!     [32] ed25519 public key, [64] signature of "fecp-signature-v1" || digest
//! ```
//!
//! Nothing may follow the trailer. The whole package is at most
//! [`MAX_PACKAGE_SIZE`] bytes. Parsing checks every length against the bytes
//! that remain before it allocates, so hostile input costs at most its own
//! size. The digest identifies a package (hosts offer `name, version, digest`).
//!
//! ```
//! use fec_plugin_sdk::abi::{Anchor, Operation};
//! use fec_plugin_sdk::package::{Manifest, Package, PlugletEntry};
//! let manifest = Manifest {
//!     name: "noop".into(),
//!     version: "1.0.0".into(),
//!     memory_size: 256,
//!     helpers: vec![],
//!     pluglets: vec![PlugletEntry {
//!         name: "replace/on_source".into(),
//!         operation: Operation::OnSource,
//!         anchor: Anchor::Replace,
//!         // mov r0, 1 (FEC_RC_DEFAULT); exit
//!         code: vec![0xb7, 0, 0, 0, 1, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0],
//!     }],
//! };
//! let package = Package::new(manifest).unwrap();
//! let bytes = package.to_bytes();
//! assert_eq!(Package::parse(&bytes).unwrap(), package);
//! ```

#![forbid(unsafe_code)]

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::abi::{Anchor, Operation, MAX_INSTRUCTIONS, MAX_MEMORY_SIZE, MIN_MEMORY_SIZE};

/// Largest package accepted, in bytes.
pub const MAX_PACKAGE_SIZE: usize = 1 << 20;
/// Most pluglets in one package.
pub const MAX_PLUGLETS: usize = 16;
/// Most helper ids a manifest may declare.
pub const MAX_HELPERS: usize = 32;
/// Most signatures on one package.
pub const MAX_SIGNATURES: usize = 8;
/// Longest plugin or pluglet name.
pub const MAX_NAME_LEN: usize = 64;
/// Longest version string.
pub const MAX_VERSION_LEN: usize = 32;

const MAGIC: &[u8; 4] = b"FECP";
const FORMAT: u16 = 1;
const SIGNATURE_CONTEXT: &[u8] = b"fecp-signature-v1";

/// Why a package was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    /// Larger than [`MAX_PACKAGE_SIZE`].
    #[error("package is {size} bytes, the limit is {MAX_PACKAGE_SIZE}")]
    TooLarge {
        /// Size in bytes.
        size: usize,
    },
    /// Input ended inside a field.
    #[error("truncated: {field} needs {needed} bytes at offset {offset}, {available} left")]
    Truncated {
        /// Field being read.
        field: &'static str,
        /// Offset of the field.
        offset: usize,
        /// Bytes needed.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// Not a package.
    #[error("bad magic (not a .fecp package)")]
    BadMagic,
    /// Unknown format version or reserved bits set.
    #[error("unsupported format {format} / reserved {reserved:#x}")]
    Format {
        /// Format field.
        format: u16,
        /// Reserved field.
        reserved: u16,
    },
    /// A field is out of its allowed range.
    #[error("{field} is {value}, allowed {allowed}")]
    OutOfRange {
        /// Field name.
        field: &'static str,
        /// Value found.
        value: u64,
        /// Allowed range, in words.
        allowed: &'static str,
    },
    /// A string is not valid UTF-8 or contains control characters.
    #[error("{field} is not printable UTF-8")]
    BadString {
        /// Field name.
        field: &'static str,
    },
    /// Two entries that must be distinct are not.
    #[error("duplicate {what}: {value}")]
    Duplicate {
        /// What is duplicated.
        what: &'static str,
        /// The value.
        value: String,
    },
    /// Unknown operation or anchor id.
    #[error("pluglet {pluglet:?}: unknown {what} id {id}")]
    UnknownId {
        /// Pluglet name.
        pluglet: String,
        /// "operation" or "anchor".
        what: &'static str,
        /// The id.
        id: u8,
    },
    /// Anchoring not allowed (two replace pluglets, or replace on a notification).
    #[error("pluglet {pluglet:?}: {reason}")]
    Anchoring {
        /// Pluglet name.
        pluglet: String,
        /// Why.
        reason: String,
    },
    /// The SHA-256 in the trailer does not match the body.
    #[error("digest mismatch: package says {stated}, body hashes to {computed}")]
    DigestMismatch {
        /// Hex digest stated in the package.
        stated: String,
        /// Hex digest computed.
        computed: String,
    },
    /// A public key is not a valid ed25519 point.
    #[error("signature {index}: invalid public key")]
    BadKey {
        /// Signature index.
        index: usize,
    },
    /// A signature by a trusted key does not verify.
    #[error("signature {index} by trusted key {key} does not verify (forged or corrupted)")]
    Forged {
        /// Signature index.
        index: usize,
        /// Hex public key.
        key: String,
    },
    /// Fewer trusted signatures than the policy requires.
    #[error("{found} valid signature(s) by trusted validators, {required} required")]
    Untrusted {
        /// Valid trusted signatures found.
        found: usize,
        /// Required.
        required: usize,
    },
    /// Bytes after the trailer.
    #[error("{extra} unexpected byte(s) after the package")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
}

/// One pluglet: an eBPF function attached to an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlugletEntry {
    /// Name (e.g. the ELF section it came from).
    pub name: String,
    /// Operation it implements or observes.
    pub operation: Operation,
    /// Replace or post.
    pub anchor: Anchor,
    /// eBPF bytecode.
    pub code: Vec<u8>,
}

/// What a package declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// Size of each instance's memory region.
    pub memory_size: u32,
    /// Helper ids the pluglets may call.
    pub helpers: Vec<u32>,
    /// The pluglets.
    pub pluglets: Vec<PlugletEntry>,
}

/// One validator signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageSignature {
    /// The validator's public key.
    pub key: VerifyingKey,
    /// The signature bytes.
    pub signature: [u8; 64],
}

/// A parsed (or built) package. Its manifest is checked for structure; the
/// bytecode is verified when a runtime loads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    /// The manifest and bytecode.
    pub manifest: Manifest,
    digest: [u8; 32],
    /// Validator signatures (not yet judged: see [`TrustStore::check`]).
    pub signatures: Vec<PackageSignature>,
}

fn check_string(field: &'static str, s: &str, max: usize) -> Result<(), PackageError> {
    if s.is_empty() || s.len() > max {
        return Err(PackageError::OutOfRange {
            field,
            value: s.len() as u64,
            allowed: if max == MAX_VERSION_LEN {
                "1..=32 bytes"
            } else {
                "1..=64 bytes"
            },
        });
    }
    if s.chars().any(char::is_control) {
        return Err(PackageError::BadString { field });
    }
    Ok(())
}

/// A count field: its name, the range it must fall in, and that range in
/// words for the error.
struct CountLimit {
    field: &'static str,
    min: usize,
    max: usize,
    allowed: &'static str,
}

const HELPER_COUNT: CountLimit = CountLimit {
    field: "helper count",
    min: 0,
    max: MAX_HELPERS,
    allowed: "0..=32",
};
const PLUGLET_COUNT: CountLimit = CountLimit {
    field: "pluglet count",
    min: 1,
    max: MAX_PLUGLETS,
    allowed: "1..=16",
};
const SIGNATURE_COUNT: CountLimit = CountLimit {
    field: "signature count",
    min: 0,
    max: MAX_SIGNATURES,
    allowed: "0..=8",
};

fn check_count(limit: CountLimit, count: usize) -> Result<(), PackageError> {
    if (limit.min..=limit.max).contains(&count) {
        return Ok(());
    }
    Err(PackageError::OutOfRange {
        field: limit.field,
        value: count as u64,
        allowed: limit.allowed,
    })
}

pub(crate) fn check_manifest(m: &Manifest) -> Result<(), PackageError> {
    check_string("name", &m.name, MAX_NAME_LEN)?;
    check_string("version", &m.version, MAX_VERSION_LEN)?;
    if !(MIN_MEMORY_SIZE..=MAX_MEMORY_SIZE).contains(&m.memory_size) {
        return Err(PackageError::OutOfRange {
            field: "memory_size",
            value: m.memory_size.into(),
            allowed: "256..=65536",
        });
    }
    check_count(HELPER_COUNT, m.helpers.len())?;
    for (i, h) in m.helpers.iter().enumerate() {
        if m.helpers[..i].contains(h) {
            return Err(PackageError::Duplicate {
                what: "helper",
                value: h.to_string(),
            });
        }
    }
    check_count(PLUGLET_COUNT, m.pluglets.len())?;
    for (i, p) in m.pluglets.iter().enumerate() {
        check_string("pluglet name", &p.name, MAX_NAME_LEN)?;
        if m.pluglets[..i].iter().any(|q| q.name == p.name) {
            return Err(PackageError::Duplicate {
                what: "pluglet name",
                value: p.name.clone(),
            });
        }
        if p.code.is_empty() || p.code.len() % 8 != 0 || p.code.len() > MAX_INSTRUCTIONS * 8 {
            return Err(PackageError::OutOfRange {
                field: "code length",
                value: p.code.len() as u64,
                allowed: "a multiple of 8 in 8..=262136",
            });
        }
        if p.anchor == Anchor::Replace {
            if !p.operation.accepts_replace() {
                return Err(PackageError::Anchoring {
                    pluglet: p.name.clone(),
                    reason: format!(
                        "{} is a notification and takes post observers only",
                        p.operation.name()
                    ),
                });
            }
            if m.pluglets[..i]
                .iter()
                .any(|q| q.anchor == Anchor::Replace && q.operation == p.operation)
            {
                return Err(PackageError::Anchoring {
                    pluglet: p.name.clone(),
                    reason: format!("second replace pluglet for {}", p.operation.name()),
                });
            }
        }
    }
    Ok(())
}

fn encode_body(m: &Manifest) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    let string = |out: &mut Vec<u8>, s: &str| {
        out.push(s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    };
    string(&mut out, &m.name);
    string(&mut out, &m.version);
    out.extend_from_slice(&m.memory_size.to_le_bytes());
    out.push(m.helpers.len() as u8);
    for h in &m.helpers {
        out.extend_from_slice(&h.to_le_bytes());
    }
    out.push(m.pluglets.len() as u8);
    for p in &m.pluglets {
        string(&mut out, &p.name);
        out.push(p.operation as u32 as u8);
        out.push(p.anchor as u32 as u8);
        out.extend_from_slice(&(p.code.len() as u32).to_le_bytes());
        out.extend_from_slice(&p.code);
    }
    out
}

fn signed_message(digest: &[u8; 32]) -> Vec<u8> {
    let mut msg = SIGNATURE_CONTEXT.to_vec();
    msg.extend_from_slice(digest);
    msg
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], PackageError> {
        let available = self.bytes.len() - self.at;
        if n > available {
            return Err(PackageError::Truncated {
                field,
                offset: self.at,
                needed: n,
                available,
            });
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }
    fn u8(&mut self, field: &'static str) -> Result<u8, PackageError> {
        Ok(self.take(field, 1)?[0])
    }
    fn u16(&mut self, field: &'static str) -> Result<u16, PackageError> {
        let b = self.take(field, 2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, field: &'static str) -> Result<u32, PackageError> {
        let b = self.take(field, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self, field: &'static str) -> Result<String, PackageError> {
        let len = self.u8(field)? as usize;
        let bytes = self.take(field, len)?;
        let s = std::str::from_utf8(bytes).map_err(|_| PackageError::BadString { field })?;
        Ok(s.to_string())
    }
}

impl Package {
    /// Build an unsigned package from a manifest (checked for structure).
    pub fn new(manifest: Manifest) -> Result<Self, PackageError> {
        check_manifest(&manifest)?;
        let body = encode_body(&manifest);
        // Room for the trailer with every signature it may carry, so that
        // whatever is built here, and signed later, parses on the far side.
        let largest = body.len() + 32 + 1 + MAX_SIGNATURES * (32 + 64);
        if largest > MAX_PACKAGE_SIZE {
            return Err(PackageError::TooLarge { size: largest });
        }
        let digest = Sha256::digest(&body).into();
        Ok(Package {
            manifest,
            digest,
            signatures: Vec::new(),
        })
    }

    /// SHA-256 of the body: the package's identity.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// The digest in lower-case hex.
    pub fn digest_hex(&self) -> String {
        hex::encode(self.digest)
    }

    /// Add (or replace) this validator's signature. A package holds at most
    /// [`MAX_SIGNATURES`]; when full, the oldest signature makes room, so the
    /// one just made is always kept.
    pub fn sign(&mut self, key: &SigningKey) {
        let signature = key.sign(&signed_message(&self.digest)).to_bytes();
        let verifying = key.verifying_key();
        self.signatures.retain(|s| s.key != verifying);
        if self.signatures.len() >= MAX_SIGNATURES {
            let excess = self.signatures.len() + 1 - MAX_SIGNATURES;
            self.signatures.drain(..excess);
        }
        self.signatures.push(PackageSignature {
            key: verifying,
            signature,
        });
    }

    /// Serialise.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = encode_body(&self.manifest);
        out.extend_from_slice(&self.digest);
        out.push(self.signatures.len() as u8);
        for s in &self.signatures {
            out.extend_from_slice(s.key.as_bytes());
            out.extend_from_slice(&s.signature);
        }
        out
    }

    /// Parse and check a package: bounds, UTF-8, ranges, anchoring, digest.
    /// Signatures are parsed, not judged (see [`TrustStore::check`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, PackageError> {
        if bytes.len() > MAX_PACKAGE_SIZE {
            return Err(PackageError::TooLarge { size: bytes.len() });
        }
        let mut r = Reader { bytes, at: 0 };
        if r.take("magic", 4)? != MAGIC {
            return Err(PackageError::BadMagic);
        }
        let format = r.u16("format")?;
        let reserved = r.u16("reserved")?;
        if format != FORMAT || reserved != 0 {
            return Err(PackageError::Format { format, reserved });
        }
        let name = r.string("name")?;
        let version = r.string("version")?;
        let memory_size = r.u32("memory_size")?;
        // Counts are checked before they size an allocation.
        let helper_count = r.u8("helper count")? as usize;
        check_count(HELPER_COUNT, helper_count)?;
        let mut helpers = Vec::with_capacity(helper_count);
        for _ in 0..helper_count {
            helpers.push(r.u32("helper id")?);
        }
        let pluglet_count = r.u8("pluglet count")? as usize;
        check_count(PLUGLET_COUNT, pluglet_count)?;
        let mut pluglets = Vec::with_capacity(pluglet_count);
        for _ in 0..pluglet_count {
            let name = r.string("pluglet name")?;
            let op_id = r.u8("operation")?;
            let anchor_id = r.u8("anchor")?;
            let operation =
                Operation::from_id(op_id.into()).ok_or_else(|| PackageError::UnknownId {
                    pluglet: name.clone(),
                    what: "operation",
                    id: op_id,
                })?;
            let anchor =
                Anchor::from_id(anchor_id.into()).ok_or_else(|| PackageError::UnknownId {
                    pluglet: name.clone(),
                    what: "anchor",
                    id: anchor_id,
                })?;
            let len = r.u32("code length")? as usize;
            // `take` checks `len` against the remaining input before anything is copied.
            let code = r.take("code", len)?.to_vec();
            pluglets.push(PlugletEntry {
                name,
                operation,
                anchor,
                code,
            });
        }
        let body_end = r.at;
        let manifest = Manifest {
            name,
            version,
            memory_size,
            helpers,
            pluglets,
        };
        check_manifest(&manifest)?;
        let stated: [u8; 32] = r.take("digest", 32)?.try_into().expect("32 bytes");
        let computed: [u8; 32] = Sha256::digest(&bytes[..body_end]).into();
        if stated != computed {
            return Err(PackageError::DigestMismatch {
                stated: hex::encode(stated),
                computed: hex::encode(computed),
            });
        }
        let signature_count = r.u8("signature count")? as usize;
        check_count(SIGNATURE_COUNT, signature_count)?;
        let mut signatures: Vec<PackageSignature> = Vec::with_capacity(signature_count);
        for index in 0..signature_count {
            let key: [u8; 32] = r.take("public key", 32)?.try_into().expect("32 bytes");
            let signature: [u8; 64] = r.take("signature", 64)?.try_into().expect("64 bytes");
            let key = VerifyingKey::from_bytes(&key).map_err(|_| PackageError::BadKey { index })?;
            if signatures.iter().any(|s| s.key == key) {
                return Err(PackageError::Duplicate {
                    what: "signer",
                    value: hex::encode(key.as_bytes()),
                });
            }
            signatures.push(PackageSignature { key, signature });
        }
        if r.at != bytes.len() {
            return Err(PackageError::TrailingBytes {
                extra: bytes.len() - r.at,
            });
        }
        Ok(Package {
            manifest,
            digest: computed,
            signatures,
        })
    }
}

/// The validators a receiver trusts, and how many of them must have signed.
#[derive(Clone, Debug, Default)]
pub struct TrustStore {
    keys: Vec<VerifyingKey>,
}

impl TrustStore {
    /// An empty store: trusts nobody.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trust this validator.
    pub fn add(&mut self, key: VerifyingKey) -> &mut Self {
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
        self
    }

    /// Trust a validator given as 64 hex digits.
    pub fn add_hex(&mut self, hex_key: &str) -> Result<&mut Self, PackageError> {
        let bytes: [u8; 32] = hex::decode(hex_key.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(PackageError::BadKey { index: 0 })?;
        let key =
            VerifyingKey::from_bytes(&bytes).map_err(|_| PackageError::BadKey { index: 0 })?;
        Ok(self.add(key))
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }

    /// Check that at least `required` trusted validators signed `package`.
    /// A signature by a trusted key that does not verify is an error even when
    /// enough others verify (someone forged or damaged it); signatures by
    /// unknown keys are ignored. Returns the number of valid trusted signatures.
    pub fn check(&self, package: &Package, required: usize) -> Result<usize, PackageError> {
        let message = signed_message(&package.digest);
        let mut found = 0;
        for (index, s) in package.signatures.iter().enumerate() {
            if !self.keys.contains(&s.key) {
                continue;
            }
            let signature = ed25519_dalek::Signature::from_bytes(&s.signature);
            if s.key.verify_strict(&message, &signature).is_err() {
                return Err(PackageError::Forged {
                    index,
                    key: hex::encode(s.key.as_bytes()),
                });
            }
            found += 1;
        }
        if found < required {
            return Err(PackageError::Untrusted { found, required });
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Package {
        Package::new(Manifest {
            name: "sample".into(),
            version: "0.1.0".into(),
            memory_size: 1024,
            helpers: vec![1, 4],
            pluglets: vec![PlugletEntry {
                name: "replace/on_source".into(),
                operation: Operation::OnSource,
                anchor: Anchor::Replace,
                code: vec![0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0],
            }],
        })
        .unwrap()
    }

    #[test]
    fn round_trip_with_signatures() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut p = sample();
        p.sign(&key);
        let parsed = Package::parse(&p.to_bytes()).unwrap();
        assert_eq!(parsed, p);
        let mut store = TrustStore::new();
        assert_eq!(
            store.check(&parsed, 1),
            Err(PackageError::Untrusted {
                found: 0,
                required: 1
            })
        );
        store.add(key.verifying_key());
        assert_eq!(store.check(&parsed, 1), Ok(1));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let mut p = sample();
        p.sign(&SigningKey::from_bytes(&[9; 32]));
        let bytes = p.to_bytes();
        for cut in 0..bytes.len() {
            assert!(Package::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            Package::parse(&longer),
            Err(PackageError::TrailingBytes { extra: 1 })
        );
    }

    #[test]
    fn flipped_body_byte_breaks_the_digest() {
        let mut bytes = sample().to_bytes();
        let last_code_byte = bytes.len() - 33 - 1;
        bytes[last_code_byte - 8] ^= 1;
        assert!(matches!(
            Package::parse(&bytes),
            Err(PackageError::DigestMismatch { .. })
        ));
    }

    #[test]
    fn forged_signature_by_trusted_key_is_rejected() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut p = sample();
        p.sign(&key);
        p.signatures[0].signature[10] ^= 0x40;
        let parsed = Package::parse(&p.to_bytes()).unwrap();
        let mut store = TrustStore::new();
        store.add(key.verifying_key());
        assert!(matches!(
            store.check(&parsed, 0),
            Err(PackageError::Forged { index: 0, .. })
        ));
    }

    #[test]
    fn a_package_too_large_to_parse_cannot_be_built() {
        // Four pluglets of the largest length are 1 MiB of code: each is
        // valid, together they exceed what `parse` accepts.
        let longest = {
            let mut code = [0xb7, 0, 0, 0, 0, 0, 0, 0].repeat(MAX_INSTRUCTIONS - 1);
            code.extend_from_slice(&[0x95, 0, 0, 0, 0, 0, 0, 0]);
            code
        };
        let manifest = |count: usize| Manifest {
            pluglets: (0..count)
                .map(|i| PlugletEntry {
                    name: format!("post/on_source/{i}"),
                    operation: Operation::OnSource,
                    anchor: Anchor::Post,
                    code: longest.clone(),
                })
                .collect(),
            ..sample().manifest
        };
        assert!(matches!(
            Package::new(manifest(4)),
            Err(PackageError::TooLarge { .. })
        ));
        // Three fit, signed by every validator a package can carry.
        let mut p = Package::new(manifest(3)).unwrap();
        for i in 0..MAX_SIGNATURES as u8 {
            p.sign(&SigningKey::from_bytes(&[i; 32]));
        }
        assert_eq!(Package::parse(&p.to_bytes()).unwrap(), p);
    }

    #[test]
    fn signing_a_full_package_keeps_the_newest_signature() {
        let mut p = sample();
        let keys: Vec<SigningKey> = (1..=MAX_SIGNATURES as u8 + 1)
            .map(|i| SigningKey::from_bytes(&[i; 32]))
            .collect();
        for key in &keys {
            p.sign(key);
        }
        let signers: Vec<VerifyingKey> = p.signatures.iter().map(|s| s.key).collect();
        let expected: Vec<VerifyingKey> = keys[1..].iter().map(SigningKey::verifying_key).collect();
        assert_eq!(signers, expected);
        let parsed = Package::parse(&p.to_bytes()).unwrap();
        let mut store = TrustStore::new();
        store.add(keys[MAX_SIGNATURES].verifying_key());
        assert_eq!(store.check(&parsed, 1), Ok(1));
    }

    /// What `parse` accepts, `to_bytes` writes back unchanged: the format
    /// has one encoding per package, so a digest names exactly one byte
    /// string.
    fn accepted_bytes_are_canonical(bytes: &[u8]) -> bool {
        match Package::parse(bytes) {
            Ok(package) => package.to_bytes() == bytes,
            Err(_) => true,
        }
    }

    quickcheck::quickcheck! {
        fn arbitrary_bytes_are_rejected_or_canonical(bytes: Vec<u8>) -> bool {
            let mut with_magic = b"FECP\x01\0\0\0".to_vec();
            with_magic.extend_from_slice(&bytes);
            accepted_bytes_are_canonical(&bytes) && accepted_bytes_are_canonical(&with_magic)
        }

        fn mutated_packages_are_rejected_or_canonical(index: usize, value: u8) -> bool {
            // Random bytes almost never parse; single-byte changes to a
            // real package reach the checks past the header.
            let mut p = sample();
            p.sign(&SigningKey::from_bytes(&[3; 32]));
            let mut bytes = p.to_bytes();
            let at = index % bytes.len();
            bytes[at] = value;
            accepted_bytes_are_canonical(&bytes)
        }
    }
}
