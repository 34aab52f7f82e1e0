//! FEC plugins on the host side: the shipped `realtime` plugin, the on-disk
//! cache and trust store, and the in-band exchange over a control stream.
//! A loaded plugin drives the FEC layer through the one plugin host,
//! `fec_plugin_sdk::host::PluginPolicy` (see [`crate::fec::QuicLayer`]).
//!
//! Exchange (quinn has no custom transport parameters, so it is in band on
//! a bidirectional stream the server opens right after the handshake; ALPN
//! [`crate::endpoint::ALPN`] says both ends speak it):
//!
//! 1. server -> client: kind byte [`KIND_CONTROL`], then one JSON line
//!    `{"name","version","sha256"}` (the offer);
//! 2. client -> server: `{"want":"cached"}` or `{"want":"bytes"}` or
//!    `{"want":"none","reason":..}`;
//! 3. if bytes were asked: server -> client: u32 length (big-endian), the
//!    package;
//! 4. client -> server: `{"activate":true}` once it verified the hash, the
//!    signature against its trust store and the static verifier (loading),
//!    or `{"activate":false,"reason":..}`.
//!
//! Both ends then protect their outgoing packets under the plugin. Any
//! failure leaves both on plain QUIC with a log line saying why.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use fec_plugin_sdk::package::{Manifest, Package, PlugletEntry, TrustStore};
use fec_plugin_sdk::runtime::{HostOffer, Plugin};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Stream kind of the control stream.
pub const KIND_CONTROL: u8 = b'C';
/// Largest package a client fetches (bounds its allocation).
pub const MAX_PACKAGE: usize = 1 << 20;
/// Default bound of the on-disk cache.
pub const DEFAULT_CACHE_BYTES: u64 = 16 << 20;

/// Source of the `realtime` plugin (eBPF assembly, see the file's comments).
pub const REALTIME_SOURCE: &str = include_str!("../plugins/realtime.s");
/// Version of the `realtime` plugin (0.2: no "no loss" before 256 clean
/// sources in a row).
pub const REALTIME_VERSION: &str = "0.2.0";

/// Builds the `realtime` plugin package, signed by `validator`.
pub fn realtime_package(validator: &ed25519_dalek::SigningKey) -> Result<Vec<u8>> {
    package_from_assembly(
        "realtime",
        REALTIME_VERSION,
        REALTIME_SOURCE,
        Some(validator),
    )
}

/// Builds a package from eBPF assembly with `.section anchor/operation`
/// lines, signed by `validator` if given. Every helper is declared.
pub fn package_from_assembly(
    name: &str,
    version: &str,
    source: &str,
    validator: Option<&ed25519_dalek::SigningKey>,
) -> Result<Vec<u8>> {
    let sections = fec_plugin_sdk::asm::assemble_sections(source)
        .map_err(|e| Error::Plugin(format!("{name} does not assemble: {e}")))?;
    let mut pluglets = Vec::new();
    for (name, code) in sections {
        let (anchor, operation) = name
            .split_once('/')
            .ok_or_else(|| Error::Plugin(format!("section {name} is not anchor/operation")))?;
        pluglets.push(PlugletEntry {
            operation: fec_plugin_sdk::abi::Operation::from_name(operation)
                .ok_or_else(|| Error::Plugin(format!("unknown operation {operation}")))?,
            anchor: fec_plugin_sdk::abi::Anchor::from_name(anchor)
                .ok_or_else(|| Error::Plugin(format!("unknown anchor {anchor}")))?,
            name,
            code,
        });
    }
    let mut package = Package::new(Manifest {
        name: name.into(),
        version: version.into(),
        memory_size: 256,
        helpers: HostOffer::all().helpers,
        pluglets,
    })
    .map_err(|e| Error::Plugin(e.to_string()))?;
    if let Some(validator) = validator {
        package.sign(validator);
    }
    Ok(package.to_bytes())
}

/// `bytes` (a package) with `validator`'s signature added.
pub fn sign_package(bytes: &[u8], validator: &ed25519_dalek::SigningKey) -> Result<Vec<u8>> {
    let mut package =
        Package::parse(bytes).map_err(|e| Error::Plugin(format!("package does not parse: {e}")))?;
    package.sign(validator);
    Ok(package.to_bytes())
}

/// Names of the shipped plugins: this crate's and `fec-plugins`'.
pub const SHIPPED: [&str; 6] = [
    "realtime",
    "rs-block",
    "rlc-window",
    "adaptive",
    "tunnel",
    "multipath",
];

/// The plugin called `name`, signed by `validator`: this crate's `realtime`
/// or one shipped in `fec-plugins` (`adaptive`, `rlc-window`, `rs-block`,
/// `tunnel`, `multipath`);
/// `None` for any other name.
pub fn named_package(name: &str, validator: &ed25519_dalek::SigningKey) -> Result<Option<Vec<u8>>> {
    if name == "realtime" {
        return realtime_package(validator).map(Some);
    }
    match fec_plugins::ALL.iter().find(|p| p.name == name) {
        Some(shipped) => sign_package(shipped.package, validator).map(Some),
        None => Ok(None),
    }
}

/// What a server offers and runs: `plugin` is a shipped name (see
/// [`named_package`]) or a `.fecp` file. `signer`'s signature is added when
/// given; a shipped plugin needs one (it carries none), a file without one
/// is offered with its own signatures, and a file that has none is refused
/// (no client would accept it). The server loads the plugin itself (static
/// verifier) without judging signatures: it chose the plugin.
pub fn prepare_offer(
    plugin: &str,
    signer: Option<&ed25519_dalek::SigningKey>,
) -> Result<(Offer, Plugin)> {
    let bytes = match (named_package_unsigned(plugin)?, signer) {
        (Some(_), Some(key)) => named_package(plugin, key)?.expect("a shipped name"),
        (Some(_), None) => {
            return Err(Error::Plugin(format!(
                "the shipped plugin {plugin} carries no signature: give a validator key to sign it"
            )))
        }
        (None, signer) => {
            let path = Path::new(plugin);
            let bytes = crate::files::read(path)?;
            match signer {
                Some(key) => sign_package(&bytes, key)
                    .map_err(|e| Error::Plugin(format!("{}: {e}", path.display())))?,
                None => bytes,
            }
        }
    };
    let package = Package::parse(&bytes)
        .map_err(|e| Error::Plugin(format!("{plugin}: package does not parse: {e}")))?;
    if package.signatures.is_empty() {
        return Err(Error::Plugin(format!(
            "{plugin} carries no signature, so no client would accept it: sign it with a \
             validator key (--sign-key FILE; make one with `pquic-host plugin keygen`)"
        )));
    }
    let loaded = Plugin::load(&package, &HostOffer::all())
        .map_err(|e| Error::Plugin(format!("{plugin}: the verifier rejected it: {e}")))?;
    Ok((Offer::new(bytes)?, loaded))
}

/// The shipped plugin called `name` without signatures, if there is one.
fn named_package_unsigned(name: &str) -> Result<Option<Vec<u8>>> {
    if name == "realtime" {
        return package_from_assembly("realtime", REALTIME_VERSION, REALTIME_SOURCE, None)
            .map(Some);
    }
    Ok(fec_plugins::ALL
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.package.to_vec()))
}

/// Reads a validator's secret key (64 hex digits, as `plugin keygen`
/// writes it).
pub fn read_signing_key(path: &Path) -> Result<ed25519_dalek::SigningKey> {
    let text = crate::files::read_to_string(path)?;
    let bytes = hex::decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| Error::Plugin(format!("{} is not a 32-byte hex key", path.display())))?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&bytes))
}

/// Writes a new validator key to `path` (mode 0600; an existing file only
/// with `force`) and returns it.
pub fn create_signing_key(path: &Path, force: bool) -> Result<ed25519_dalek::SigningKey> {
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::files::create_dir_all(dir)?;
    }
    crate::files::write_new(
        path,
        hex::encode(key.to_bytes()).as_bytes(),
        crate::files::SECRET,
        force,
    )?;
    Ok(key)
}

/// Hex SHA-256 identity of a package (the digest its format defines).
pub fn package_digest(bytes: &[u8]) -> Result<String> {
    Package::parse(bytes)
        .map(|p| p.digest_hex())
        .map_err(|e| Error::Plugin(format!("package does not parse: {e}")))
}

/// A content-addressed, size-bounded directory of packages
/// (`<sha256>.fecp`); the oldest files go first when it is over its bound.
#[derive(Debug, Clone)]
pub struct PluginCache {
    dir: PathBuf,
    max_bytes: u64,
}

impl PluginCache {
    /// A cache in `dir` (created if missing) holding at most `max_bytes`.
    pub fn open(dir: impl Into<PathBuf>, max_bytes: u64) -> Result<Self> {
        let dir = dir.into();
        crate::files::create_dir_all(&dir)?;
        Ok(Self { dir, max_bytes })
    }

    fn path(&self, digest_hex: &str) -> Option<PathBuf> {
        let valid = digest_hex.len() == 64 && digest_hex.bytes().all(|b| b.is_ascii_hexdigit());
        valid.then(|| {
            self.dir
                .join(format!("{}.fecp", digest_hex.to_ascii_lowercase()))
        })
    }

    /// The package with this digest, if cached and intact.
    pub fn get(&self, digest_hex: &str) -> Option<Vec<u8>> {
        let bytes = std::fs::read(self.path(digest_hex)?).ok()?;
        match package_digest(&bytes) {
            Ok(d) if d.eq_ignore_ascii_case(digest_hex) => Some(bytes),
            _ => {
                tracing::warn!("cached plugin {digest_hex} is damaged; ignoring it");
                None
            }
        }
    }

    /// Stores a package under its digest and trims the cache to its bound.
    pub fn put(&self, bytes: &[u8]) -> Result<String> {
        let digest = package_digest(bytes)?;
        let path = self.path(&digest).expect("a digest is 64 hex digits");
        let temporary = path.with_extension("part");
        crate::files::write(&temporary, bytes)?;
        std::fs::rename(&temporary, &path).map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
        self.trim(&path)?;
        Ok(digest)
    }

    /// `(digest, size)` of every cached package.
    pub fn list(&self) -> Result<Vec<(String, u64)>> {
        let mut out: Vec<(String, u64)> = self
            .entries()?
            .into_iter()
            .filter_map(|(_, path, len)| {
                let name = path.file_name()?.to_string_lossy().into_owned();
                Some((name.strip_suffix(".fecp")?.to_string(), len))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// `(modified, path, size)` of every package file.
    fn entries(&self) -> Result<Vec<(Option<std::time::SystemTime>, PathBuf, u64)>> {
        let read_error = |source| Error::Read {
            path: self.dir.clone(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(read_error)? {
            let entry = entry.map_err(read_error)?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "fecp") {
                // A file removed meanwhile (another process trimming) is
                // simply not listed.
                if let Ok(meta) = entry.metadata() {
                    files.push((meta.modified().ok(), path, meta.len()));
                }
            }
        }
        Ok(files)
    }

    /// Removes a package; true if it was there.
    pub fn remove(&self, digest_hex: &str) -> Result<bool> {
        match self.path(digest_hex) {
            Some(path) if path.exists() => {
                std::fs::remove_file(&path).map_err(|source| Error::Write { path, source })?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn trim(&self, keep: &Path) -> Result<()> {
        let mut files = self.entries()?;
        let mut total: u64 = files.iter().map(|(_, _, len)| len).sum();
        files.sort();
        for (_, path, len) in files {
            if total <= self.max_bytes {
                break;
            }
            if path != keep {
                std::fs::remove_file(&path).map_err(|source| Error::Write {
                    path: path.clone(),
                    source,
                })?;
                total -= len;
            }
        }
        Ok(())
    }
}

/// Reads a trust store file: one hex ed25519 public key per line, `#`
/// comments. A missing file is an empty store (trusts nothing).
pub fn load_trust_store(path: &Path) -> Result<TrustStore> {
    let mut store = TrustStore::new();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(store),
        Err(source) => {
            return Err(Error::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    for line in text.lines() {
        let key = line.split('#').next().unwrap_or("").trim();
        if !key.is_empty() {
            store
                .add_hex(key)
                .map_err(|e| Error::Plugin(format!("trust store {}: {e}", path.display())))?;
        }
    }
    Ok(store)
}

/// Verifies a package for use: hash as offered, at least one trusted
/// signature, static verifier (by loading it).
pub fn verify_package(bytes: &[u8], expected_sha256: &str, trust: &TrustStore) -> Result<Plugin> {
    verify_package_detailed(bytes, expected_sha256, trust).map(|v| v.plugin)
}

/// A package that passed [`verify_package_detailed`].
#[derive(Debug, Clone)]
pub struct Verified {
    /// The loaded plugin (the static verifier accepted it).
    pub plugin: Plugin,
    /// Hex public keys of the trusted validators whose signatures verified.
    pub trusted_by: Vec<String>,
}

/// [`verify_package`], also saying which trusted validators signed.
pub fn verify_package_detailed(
    bytes: &[u8],
    expected_sha256: &str,
    trust: &TrustStore,
) -> Result<Verified> {
    let package =
        Package::parse(bytes).map_err(|e| Error::Plugin(format!("package rejected: {e}")))?;
    if !package.digest_hex().eq_ignore_ascii_case(expected_sha256) {
        return Err(Error::Plugin(format!(
            "hash mismatch: offered {expected_sha256}, got {}",
            package.digest_hex()
        )));
    }
    trust
        .check(&package, 1)
        .map_err(|e| Error::Plugin(format!("signature check failed: {e}")))?;
    // `check` verified every trusted key's signature, so these are they.
    let trusted_by = package
        .signatures
        .iter()
        .filter(|s| trust.keys().contains(&s.key))
        .map(|s| hex::encode(s.key.as_bytes()))
        .collect();
    let plugin = Plugin::load(&package, &HostOffer::all())
        .map_err(|e| Error::Plugin(format!("verifier rejected the plugin: {e}")))?;
    Ok(Verified { plugin, trusted_by })
}

/// What the server offers.
#[derive(Debug, Clone)]
pub struct Offer {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// Hex SHA-256 (package digest).
    pub sha256: String,
    /// Hex public keys of the validators whose signatures the package
    /// carries (not judged here: each client checks against its trust store).
    pub signers: Vec<String>,
    /// The package.
    pub bytes: std::sync::Arc<Vec<u8>>,
}

impl Offer {
    /// An offer of `bytes` (parsed for name, version and digest).
    pub fn new(bytes: Vec<u8>) -> Result<Self> {
        let package =
            Package::parse(&bytes).map_err(|e| Error::Plugin(format!("bad package: {e}")))?;
        Ok(Self {
            name: package.manifest.name.clone(),
            version: package.manifest.version.clone(),
            sha256: package.digest_hex(),
            signers: package
                .signatures
                .iter()
                .map(|s| hex::encode(s.key.as_bytes()))
                .collect(),
            bytes: std::sync::Arc::new(bytes),
        })
    }
}

/// How an exchange ended, on either side.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Both ends run the plugin.
    Active {
        /// The loaded plugin.
        plugin: Plugin,
        /// True when the client fetched the bytes (its cache missed, or its
        /// cached copy no longer verified).
        fetched: bool,
        /// Hex public keys of the client's trusted validators that signed
        /// it (empty on the server, which does not see the client's trust).
        trusted_by: Vec<String>,
    },
    /// Plain QUIC, and why.
    Declined(String),
}

/// Message 1, server -> client: what the server offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferMessage {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// Hex SHA-256 of the package.
    pub sha256: String,
    /// Hex public keys of the validators that signed the offered copy: a
    /// client whose cached copy no longer verifies fetches this one only if
    /// it trusts one of them (absent: unknown, fetch anyway).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signers: Vec<String>,
}

/// Message 1 when the server has nothing to offer, so the client knows at
/// once instead of waiting for an offer: `{"no_offer":REASON}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoOfferMessage {
    /// Why (for example "the server runs plain QUIC").
    pub no_offer: String,
}

/// Message 1 in either form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServerHello {
    /// A plugin offer.
    Offer(OfferMessage),
    /// Nothing offered.
    NoOffer(NoOfferMessage),
}

/// What the client asks for in message 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Want {
    /// It has the package cached.
    Cached,
    /// Send the bytes.
    Bytes,
    /// It will not run the plugin.
    None,
}

/// Message 2, client -> server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WantMessage {
    /// What the client asks for.
    pub want: Want,
    /// Why not, with [`Want::None`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Message 4, client -> server: the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictMessage {
    /// True when the client verified and loaded the plugin.
    pub activate: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl VerdictMessage {
    fn refused(reason: &str) -> Self {
        VerdictMessage {
            activate: false,
            reason: Some(reason.to_string()),
        }
    }
}

async fn write_json<T: Serialize>(send: &mut quinn::SendStream, message: &T) -> Result<()> {
    let mut line = serde_json::to_vec(message)
        .map_err(|e| Error::Protocol(format!("control message does not encode: {e}")))?;
    line.push(b'\n');
    send.write_all(&line).await?;
    Ok(())
}

/// Answers an offer with "none" and why, closing the client's side.
async fn refuse(send: &mut quinn::SendStream, reason: &str) -> Result<()> {
    let answer = WantMessage {
        want: Want::None,
        reason: Some(reason.to_string()),
    };
    write_json(send, &answer).await?;
    let _ = send.finish();
    Ok(())
}

async fn read_json<T: DeserializeOwned>(recv: &mut quinn::RecvStream) -> Result<T> {
    // Byte by byte up to a newline, bounded: control messages are tiny.
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < 4096 {
        recv.read_exact(&mut byte).await?;
        if byte[0] == b'\n' {
            return serde_json::from_slice(&line)
                .map_err(|e| Error::Protocol(format!("bad control message: {e}")));
        }
        line.push(byte[0]);
    }
    Err(Error::Protocol("control message too long".into()))
}

/// Server side without a plugin: tells the client on a new control stream
/// that nothing is offered, and why.
pub async fn offer_nothing(connection: &quinn::Connection, reason: &str) -> Result<()> {
    let (mut send, _recv) = connection.open_bi().await?;
    send.write_all(&[KIND_CONTROL]).await?;
    let message = NoOfferMessage {
        no_offer: reason.to_string(),
    };
    write_json(&mut send, &message).await?;
    send.finish()?;
    // Keep the stream until the client read it (or the connection ends).
    let _ = send.stopped().await;
    Ok(())
}

/// Server side: offers `offer` on a new control stream and waits for the
/// client's verdict. The plugin is `plugin` (already loaded by the server).
pub async fn offer_plugin(
    connection: &quinn::Connection,
    offer: &Offer,
    plugin: &Plugin,
) -> Result<Outcome> {
    let (mut send, mut recv) = connection.open_bi().await?;
    send.write_all(&[KIND_CONTROL]).await?;
    let message = OfferMessage {
        name: offer.name.clone(),
        version: offer.version.clone(),
        sha256: offer.sha256.clone(),
        signers: offer.signers.clone(),
    };
    write_json(&mut send, &message).await?;
    let answer: WantMessage = read_json(&mut recv).await?;
    let fetched = match answer.want {
        Want::Cached => false,
        Want::Bytes => {
            send.write_all(&(offer.bytes.len() as u32).to_be_bytes())
                .await?;
            send.write_all(&offer.bytes).await?;
            true
        }
        Want::None => {
            let reason = answer.reason.as_deref().unwrap_or("declined");
            return Ok(Outcome::Declined(format!(
                "client declined the offer: {reason}"
            )));
        }
    };
    let verdict: VerdictMessage = read_json(&mut recv).await?;
    let _ = send.finish();
    if verdict.activate {
        Ok(Outcome::Active {
            plugin: plugin.clone(),
            fetched,
            trusted_by: Vec::new(),
        })
    } else {
        let reason = verdict.reason.as_deref().unwrap_or("rejected");
        Ok(Outcome::Declined(format!(
            "client rejected the plugin: {reason}"
        )))
    }
}

/// Client side: accepts the server's control stream, answers from `cache`
/// or fetches, verifies against `trust`, and reports its verdict. With no
/// cache the client refuses every plugin (it runs no foreign code).
///
/// The cached copy of an offered digest is verified on every use, like a
/// fetched one: when its signatures do not satisfy `trust` (the trust store
/// changed, or the copy was signed by someone else) and the server's copy
/// may carry a trusted signature, the client fetches the server's copy and
/// caches it instead.
pub async fn accept_plugin(
    connection: &quinn::Connection,
    cache: Option<&PluginCache>,
    trust: &TrustStore,
) -> Result<Outcome> {
    let (mut send, mut recv) = connection.accept_bi().await?;
    let mut kind = [0u8; 1];
    recv.read_exact(&mut kind).await?;
    if kind[0] != KIND_CONTROL {
        return Err(Error::Protocol(format!(
            "expected a control stream, got kind {}",
            kind[0]
        )));
    }
    let offer = match read_json(&mut recv).await? {
        ServerHello::Offer(offer) => offer,
        ServerHello::NoOffer(NoOfferMessage { no_offer }) => {
            return Ok(Outcome::Declined(format!(
                "the server offers no plugin: {no_offer}"
            )));
        }
    };
    let OfferMessage {
        name,
        version,
        sha256,
        signers,
    } = offer;
    let decline = |reason: String| {
        tracing::warn!("plugin {name} {version} ({sha256}) not used: {reason}; plain QUIC");
        reason
    };
    let Some(cache) = cache else {
        refuse(&mut send, "client runs no plugins").await?;
        return Ok(Outcome::Declined(decline("client runs no plugins".into())));
    };
    // Unknown signers (an older server) might include a trusted one.
    let trusted_signer = signers.is_empty()
        || signers.iter().any(|hex_key| {
            trust
                .keys()
                .iter()
                .any(|k| hex::encode(k.as_bytes()).eq_ignore_ascii_case(hex_key))
        });
    let cached = cache
        .get(&sha256)
        .map(|bytes| (verify_package_detailed(&bytes, &sha256, trust), bytes));
    let (verdict, bytes, fetched) = match cached {
        Some((Ok(verified), bytes)) => {
            let answer = WantMessage {
                want: Want::Cached,
                reason: None,
            };
            write_json(&mut send, &answer).await?;
            (Ok(verified), bytes, false)
        }
        Some((Err(e), _)) if !trusted_signer => {
            let reason =
                format!("{e} (cached copy; the offered copy has no trusted signer either)");
            refuse(&mut send, &reason).await?;
            return Ok(Outcome::Declined(decline(reason)));
        }
        None if !trusted_signer => {
            let reason = format!(
                "signature check failed: none of the offer's {} signature(s) is by a trusted validator",
                signers.len()
            );
            refuse(&mut send, &reason).await?;
            return Ok(Outcome::Declined(decline(reason)));
        }
        stale => {
            if let Some((Err(e), _)) = &stale {
                tracing::info!(
                    "cached plugin {sha256} does not verify ({e}); fetching the server's copy"
                );
            }
            let answer = WantMessage {
                want: Want::Bytes,
                reason: None,
            };
            write_json(&mut send, &answer).await?;
            let mut len = [0u8; 4];
            recv.read_exact(&mut len).await?;
            let len = u32::from_be_bytes(len) as usize;
            if len > MAX_PACKAGE {
                let reason = format!("package of {len} bytes exceeds {MAX_PACKAGE}");
                write_json(&mut send, &VerdictMessage::refused(&reason)).await?;
                return Ok(Outcome::Declined(decline(reason)));
            }
            let mut bytes = vec![0u8; len];
            recv.read_exact(&mut bytes).await?;
            (verify_package_detailed(&bytes, &sha256, trust), bytes, true)
        }
    };
    match verdict {
        Ok(Verified { plugin, trusted_by }) => {
            if fetched {
                if let Err(e) = cache.put(&bytes) {
                    tracing::warn!("could not cache plugin {sha256}: {e}");
                }
            }
            let verdict = VerdictMessage {
                activate: true,
                reason: None,
            };
            write_json(&mut send, &verdict).await?;
            let _ = send.finish();
            tracing::info!(
                "plugin {} {} ({}) verified{}, signed by trusted validator {}; FEC on",
                plugin.name(),
                plugin.version(),
                sha256,
                if fetched {
                    " after fetching it"
                } else {
                    " from the cache"
                },
                trusted_by.join(", ")
            );
            Ok(Outcome::Active {
                plugin,
                fetched,
                trusted_by,
            })
        }
        Err(e) => {
            let reason = e.to_string();
            write_json(&mut send, &VerdictMessage::refused(&reason)).await?;
            let _ = send.finish();
            Ok(Outcome::Declined(decline(reason)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fec::{plugin_policy, QuicLayer, RepairedLosses};
    use crate::layer::{FecLayer, LayerStats};
    use crate::rng::SeededRng;
    use bytes::Bytes;
    use fec_core::layer::feedback::Feedback;
    use std::time::{Duration, Instant};

    #[test]
    fn shipped_names_are_the_shipped_plugins() {
        let names: Vec<&str> = std::iter::once("realtime")
            .chain(fec_plugins::ALL.iter().map(|p| p.name))
            .collect();
        assert_eq!(names, SHIPPED);
    }

    #[test]
    fn control_messages_have_the_documented_wire_form() {
        let want = WantMessage {
            want: Want::Cached,
            reason: None,
        };
        assert_eq!(
            serde_json::to_string(&want).unwrap(),
            r#"{"want":"cached"}"#
        );
        let none: WantMessage = serde_json::from_str(r#"{"want":"none","reason":"no"}"#).unwrap();
        assert_eq!(
            (none.want, none.reason.as_deref()),
            (Want::None, Some("no"))
        );
        let verdict = VerdictMessage::refused("bad");
        assert_eq!(
            serde_json::to_string(&verdict).unwrap(),
            r#"{"activate":false,"reason":"bad"}"#
        );
        // Unknown wants and missing fields are errors, not defaults.
        assert!(serde_json::from_str::<WantMessage>(r#"{"want":"all"}"#).is_err());
        assert!(serde_json::from_str::<OfferMessage>(r#"{"name":"x"}"#).is_err());
    }

    fn key(seed: u8) -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
    }

    fn trusting(k: &ed25519_dalek::SigningKey) -> TrustStore {
        let mut t = TrustStore::new();
        t.add(k.verifying_key());
        t
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pquic-host-unit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn layer(plugin: &Plugin) -> QuicLayer {
        layer_following(plugin, true)
    }

    fn layer_following(plugin: &Plugin, follow_hints: bool) -> QuicLayer {
        let now = Instant::now();
        let mut policy = plugin_policy(plugin, now);
        policy.follow_hints(follow_hints);
        QuicLayer::new(Some(Box::new(policy)), RepairedLosses::default(), now)
    }

    /// Sends `count` packets 5 ms apart through a seeded lossy link, fake clock.
    fn drive(
        sender: &mut QuicLayer,
        count: u32,
        loss: f64,
    ) -> (Vec<Vec<u8>>, Vec<Bytes>, QuicLayer) {
        let (sent, up, receiver, _) = drive_into(sender, QuicLayer::receive_only(), count, loss);
        (sent, up, receiver)
    }

    /// As [`drive`], into `receiver`; also returns every datagram the sender
    /// put on the wire, in order.
    fn drive_into(
        sender: &mut QuicLayer,
        mut receiver: QuicLayer,
        count: u32,
        loss: f64,
    ) -> (Vec<Vec<u8>>, Vec<Bytes>, QuicLayer, Vec<Bytes>) {
        let mut rng = SeededRng::new(5);
        let mut now = Instant::now();
        let (mut wire, mut up, mut back, mut sent, mut transmitted) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in 0..count {
            let mut packet = vec![(i % 251) as u8; 80 + (i % 5) as usize * 40];
            packet[0] = 0x40;
            sender.on_outgoing(now, &packet, &mut wire);
            sent.push(packet);
            for _ in 0..5 {
                now += Duration::from_millis(1);
                sender.handle_timeout(now, &mut wire);
                for d in wire.drain(..) {
                    transmitted.push(d.clone());
                    if !rng.chance(loss) {
                        receiver.on_incoming(now, d, &mut up, &mut back);
                    }
                }
                receiver.handle_timeout(now, &mut back);
                for d in back.drain(..) {
                    sender.on_incoming(now, d, &mut Vec::new(), &mut Vec::new());
                }
            }
        }
        (sent, up, receiver, transmitted)
    }

    #[test]
    fn realtime_plugin_repairs_sparse_traffic_at_the_idle_tick() {
        let k = key(1);
        let bytes = realtime_package(&k).unwrap();
        let plugin =
            verify_package(&bytes, &package_digest(&bytes).unwrap(), &trusting(&k)).unwrap();
        let mut sender = layer(&plugin);
        let (sent, up, receiver) = drive(&mut sender, 300, 0.05);
        let stats = receiver.stats();
        assert!(stats.losses_seen > 0);
        assert!(stats.recovered > 0, "{stats:?}");
        for p in &up {
            assert!(
                sent.iter().any(|s| s[..] == p[..]),
                "only sent packets come up"
            );
        }
        // Sparse traffic: the idle tick covers every source promptly.
        let s = sender.stats();
        assert!(s.repair_packets * 2 >= s.source_packets, "{s:?}");
        assert!(sender.is_protecting());
    }

    /// Gives `sender` the peer's `report` (if any), then sends 48 sources
    /// back to back (no idle tick): how many repairs went with them.
    fn repairs_after(sender: &mut QuicLayer, report: Option<Feedback>) -> u64 {
        let now = Instant::now();
        if let Some(report) = report {
            let datagram = Bytes::from(report.to_vec());
            sender.on_incoming(now, datagram, &mut Vec::new(), &mut Vec::new());
        }
        let before = sender.stats().repair_packets;
        let mut wire = Vec::new();
        for i in 0..48u8 {
            let mut packet = vec![i; 200];
            packet[0] = 0x40;
            sender.on_outgoing(now, &packet, &mut wire);
        }
        sender.stats().repair_packets - before
    }

    fn clean(sources: u32) -> Feedback {
        Feedback {
            sources,
            ..Feedback::default()
        }
    }

    /// A report of `lost` single losses among `sources`.
    fn lossy(sources: u32, lost: u16) -> Feedback {
        Feedback {
            sources,
            lost: u32::from(lost),
            max_burst: 1,
            bursts: lost,
            ..Feedback::default()
        }
    }

    #[test]
    fn realtime_plugin_trusts_no_loss_only_after_256_clean_sources() {
        let k = key(1);
        let bytes = realtime_package(&k).unwrap();
        let plugin =
            verify_package(&bytes, &package_digest(&bytes).unwrap(), &trusting(&k)).unwrap();
        let mut sender = layer(&plugin);
        assert_eq!(
            repairs_after(&mut sender, None),
            12,
            "every 4 before a report"
        );
        // A few packets without loss (the tail before an idle spell) say
        // nothing: still every 4, also after 250 clean sources in all.
        assert_eq!(repairs_after(&mut sender, Some(clean(3))), 12);
        assert_eq!(repairs_after(&mut sender, Some(clean(247))), 12);
        // 256 in a row: every 16.
        assert_eq!(repairs_after(&mut sender, Some(clean(6))), 3);
        // A loss (2%) brings every 4 back and starts the count over.
        assert_eq!(repairs_after(&mut sender, Some(lossy(100, 2))), 12);
        assert_eq!(repairs_after(&mut sender, Some(clean(200))), 12);
        assert_eq!(repairs_after(&mut sender, Some(clean(56))), 3);
        // Heavy loss in bursts of 4: every 2, in groups of 4. A clean report
        // after it means light loss at once, not the burst setting kept.
        let bursty = Feedback {
            max_burst: 4,
            ..lossy(100, 10)
        };
        assert_eq!(repairs_after(&mut sender, Some(bursty)), 96);
        assert_eq!(repairs_after(&mut sender, Some(clean(100))), 12);
    }

    #[test]
    fn adaptive_plugin_decides_on_reports_of_32_sources_or_more() {
        let package = Package::parse(fec_plugins::ADAPTIVE.package).unwrap();
        let plugin = Plugin::load(&package, &HostOffer::all()).unwrap();
        let mut sender = layer(&plugin);
        assert_eq!(
            repairs_after(&mut sender, None),
            3,
            "1 in 16 before a report"
        );
        // One loss in a report of three: no 33% loss rate from that alone.
        assert_eq!(repairs_after(&mut sender, Some(lossy(3, 1))), 3);
        // With 29 more: 1 of 32 lost, target 2 x 3.1% + 2%, 1 in 12.
        assert_eq!(repairs_after(&mut sender, Some(clean(29))), 4);
        // Then the next 32 or more alone: no loss, the 3% floor, 1 in 32
        // (one repair for 48 sources).
        assert_eq!(repairs_after(&mut sender, Some(clean(31))), 4);
        assert_eq!(repairs_after(&mut sender, Some(clean(1))), 1);
    }

    #[test]
    fn shipped_adaptive_plugin_runs_every_operation_without_fault() {
        let package = Package::parse(fec_plugins::ADAPTIVE.package).unwrap();
        let plugin = Plugin::load(&package, &HostOffer::all()).unwrap();
        let mut sender = layer(&plugin);
        // The receiver runs the plugin too, so its on_loss observer sees
        // this end's losses.
        let receiver = layer(&plugin);
        let (sent, up, receiver, _) = drive_into(&mut sender, receiver, 400, 0.05);
        assert!(sender.is_protecting() && receiver.is_protecting());
        assert_eq!(sender.stats().fallbacks + receiver.stats().fallbacks, 0);
        assert!(receiver.stats().losses_seen > 0);
        assert!(receiver.stats().recovered > 0);
        assert!(up.len() <= sent.len() + receiver.stats().recovered as usize);
    }

    /// Runs the shipped plugin's sender over a lossy link with feedback,
    /// once following its scheduling hints and once ignoring them; checks
    /// that both put the same datagrams on the wire and returns the counters
    /// of each (following, ignoring).
    fn hinted_and_plain(shipped: &fec_plugins::ShippedPlugin) -> (LayerStats, LayerStats) {
        let package = Package::parse(shipped.package).unwrap();
        let plugin = Plugin::load(&package, &HostOffer::all()).unwrap();
        let [(hinted, hinted_stats), (plain, plain_stats)] = [true, false].map(|follow_hints| {
            let mut sender = layer_following(&plugin, follow_hints);
            let (_, _, receiver, transmitted) =
                drive_into(&mut sender, QuicLayer::receive_only(), 320, 0.05);
            assert!(receiver.stats().recovered > 0 && sender.stats().fallbacks == 0);
            (transmitted, sender.stats())
        });
        assert_eq!(hinted, plain, "the same datagrams, byte for byte");
        assert!(hinted_stats.repair_packets > 0);
        (hinted_stats, plain_stats)
    }

    #[test]
    fn following_the_rlc_window_hints_sends_the_same_with_fewer_calls() {
        let (hinted, plain) = hinted_and_plain(&fec_plugins::RLC_WINDOW);
        // One repair per 4 sources either way.
        assert_eq!(hinted.repair_packets, 320 / 4);
        // Following: `configure`, then one `schedule_repair` per window of 32
        // sources (at sources 4, 36, ..., 292); the idle ticks and the calls
        // before 4 pending sources are skipped (`fec_repair_after`), and so
        // are the 7 repeated decisions of each window (`fec_repair_repeat`).
        assert_eq!(hinted.plugin_calls, 1 + 320 / 32);
        // Ignoring: a call for every source and every idle tick that follows
        // a source left uncovered (3 in 4).
        assert_eq!(plain.plugin_calls, 1 + 320 + 320 * 3 / 4);
    }

    #[test]
    fn following_the_adaptive_hints_sends_the_same_with_fewer_calls() {
        // Its `fec_repair_after` changes with every report (`on_feedback`).
        let (hinted, plain) = hinted_and_plain(&fec_plugins::ADAPTIVE);
        assert!(
            hinted.plugin_calls < plain.plugin_calls,
            "{hinted:?} {plain:?}"
        );
    }

    #[test]
    fn faulting_plugin_turns_protection_off() {
        let k = key(2);
        let source = "
.section replace/on_source
mov r0, 77
exit
";
        let bytes = package_from_assembly("bad", "0.1.0", source, Some(&k)).unwrap();
        let plugin =
            verify_package(&bytes, &package_digest(&bytes).unwrap(), &trusting(&k)).unwrap();
        let mut sender = layer(&plugin);
        let (sent, up, _) = drive(&mut sender, 10, 0.0);
        assert!(!sender.is_protecting());
        assert_eq!(sender.stats().fallbacks, 1);
        assert_eq!(up.len(), sent.len(), "plain QUIC packets still flow");
    }

    #[test]
    fn verification_rejects_wrong_hash_untrusted_and_garbage() {
        let k = key(3);
        let bytes = realtime_package(&k).unwrap();
        let digest = package_digest(&bytes).unwrap();
        assert!(verify_package(&bytes, &digest, &trusting(&k)).is_ok());
        let wrong = "00".repeat(32);
        assert!(verify_package(&bytes, &wrong, &trusting(&k)).is_err());
        assert!(verify_package(&bytes, &digest, &trusting(&key(4))).is_err());
        assert!(verify_package(&bytes, &digest, &TrustStore::new()).is_err());
        let mut damaged = bytes.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert!(verify_package(&damaged, &digest, &trusting(&k)).is_err());
        assert!(verify_package(&[], &digest, &trusting(&k)).is_err());
    }

    #[test]
    fn cache_is_content_addressed_bounded_and_ignores_damage() {
        let dir = temp_dir("cache");
        let packages: Vec<Vec<u8>> = (0..4)
            .map(|v| {
                let version = format!("0.1.{v}");
                package_from_assembly("realtime", &version, REALTIME_SOURCE, Some(&key(10)))
                    .unwrap()
            })
            .collect();
        let size = packages[0].len() as u64;
        // Room for two packages.
        let cache = PluginCache::open(&dir, size * 2 + size / 2).unwrap();
        let mut digests = Vec::new();
        for p in &packages {
            digests.push(cache.put(p).unwrap());
            std::thread::sleep(Duration::from_millis(20)); // distinct mtimes
        }
        assert_eq!(
            digests
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len(),
            4
        );
        assert!(cache.list().unwrap().len() <= 2);
        let newest = digests.last().unwrap();
        assert_eq!(cache.get(newest).as_deref(), Some(&packages[3][..]));
        assert!(cache.get(&digests[0]).is_none(), "oldest evicted");
        assert!(cache.get("not-a-digest").is_none());
        assert!(cache.get("../../etc/passwd").is_none());
        // A damaged file is ignored, not trusted.
        std::fs::write(dir.join(format!("{newest}.fecp")), b"garbage").unwrap();
        assert!(cache.get(newest).is_none());
        assert!(cache.remove(newest).unwrap());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn trust_store_file_reads_keys_and_comments() {
        let dir = temp_dir("trust");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("trusted_keys");
        assert!(
            load_trust_store(&path).unwrap().keys().is_empty(),
            "missing file trusts nothing"
        );
        let k = key(9);
        let text = format!(
            "# validators\n{}  # ours\n\n",
            hex::encode(k.verifying_key().as_bytes())
        );
        std::fs::write(&path, text).unwrap();
        assert_eq!(
            load_trust_store(&path).unwrap().keys(),
            &[k.verifying_key()]
        );
        std::fs::write(&path, "zz\n").unwrap();
        assert!(load_trust_store(&path).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
