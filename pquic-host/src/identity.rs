//! TLS identities (a server's certificate chain and key) and trust (the
//! roots a client accepts a server's certificate from).
//!
//! A server has either the operator's PEM chain and key
//! ([`Identity::from_pem_files`]) or a self-signed certificate for the
//! names it serves ([`Identity::self_signed`]), which
//! [`StoredIdentity`] keeps on disk and reuses across restarts, so clients
//! can pin it once. A client trusts the operating system's roots
//! ([`system_roots`]), a file of its own ([`roots_from_file`]: PEM or DER),
//! or exactly one identity ([`Identity::roots`], for tests and the demo).

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::RootCertStore;

use crate::error::{Error, Result};
use crate::files;

/// A server's certificate chain (leaf first) and private key.
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// A fresh self-signed identity for `localhost`.
    pub fn generate() -> Result<Self> {
        Self::self_signed(&["localhost"])
    }

    /// A fresh self-signed identity for `names` (DNS names, or IP
    /// addresses, which become IP subject alternative names).
    pub fn self_signed<S: AsRef<str>>(names: &[S]) -> Result<Self> {
        Ok(SelfSigned::generate(names)?.identity)
    }

    /// The chain and key of PEM text: one or more `CERTIFICATE` blocks
    /// (leaf first) and one private key (PKCS#8, PKCS#1 or SEC1). `source`
    /// names where they came from, for errors.
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8], source: &Path) -> Result<Self> {
        Ok(Identity {
            chain: parse_chain(chain_pem, source)?,
            key: parse_key(key_pem, source)?,
        })
    }

    /// The operator's certificate chain (`cert`, PEM) and key (`key`, PEM).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self> {
        Ok(Identity {
            chain: parse_chain(&files::read(cert)?, cert)?,
            key: parse_key(&files::read(key)?, key)?,
        })
    }

    /// The leaf certificate (what a client pins).
    pub fn cert(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// The whole chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// A root store that trusts exactly this identity's leaf certificate
    /// (a self-signed one).
    pub fn roots(&self) -> Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert().clone())?;
        Ok(roots)
    }

    /// The private key (a copy), for handing this identity to a TLS stack.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }
}

fn parse_chain(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Pem {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(Error::Pem {
            path: path.to_path_buf(),
            reason: "no CERTIFICATE block".into(),
        });
    }
    Ok(chain)
}

fn parse_key(pem: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| Error::Pem {
        path: path.to_path_buf(),
        reason: format!("private key: {e}"),
    })
}

/// A freshly generated self-signed identity and its PEM text.
struct SelfSigned {
    identity: Identity,
    cert_pem: String,
    key_pem: String,
}

impl SelfSigned {
    fn generate<S: AsRef<str>>(names: &[S]) -> Result<Self> {
        let names: Vec<String> = names.iter().map(|n| n.as_ref().to_string()).collect();
        let certified = rcgen::generate_simple_self_signed(names)?;
        let key = certified.key_pair.serialize_der();
        Ok(SelfSigned {
            identity: Identity {
                chain: vec![certified.cert.der().clone()],
                key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
            },
            cert_pem: certified.cert.pem(),
            key_pem: certified.key_pair.serialize_pem(),
        })
    }
}

/// A self-signed identity kept on disk (`self-signed-NAMES.cert.pem` and
/// `.key.pem`, the key with mode 0600) and reused across restarts.
///
/// [`load_or_generate`](Self::load_or_generate) reads the stored pair or
/// makes a new one in memory; [`persist`](Self::persist) writes a new one.
/// A server persists only after it bound its socket, so a server that
/// fails to start leaves the disk as it was, and an existing pair is never
/// overwritten.
pub struct StoredIdentity {
    identity: Identity,
    cert_path: PathBuf,
    key_path: PathBuf,
    unsaved: Option<(String, String)>,
}

impl std::fmt::Debug for StoredIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredIdentity")
            .field("cert_path", &self.cert_path)
            .field("unsaved", &self.unsaved.is_some())
            .finish_non_exhaustive()
    }
}

/// The file-name part for a set of names: readable, one path component.
fn label<S: AsRef<str>>(names: &[S]) -> String {
    let joined: Vec<String> = names
        .iter()
        .map(|n| {
            n.as_ref()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        })
        .collect();
    joined.join("+")
}

impl StoredIdentity {
    /// The self-signed identity for `names` stored in `dir`, or a new one
    /// (not yet written: see [`persist`](Self::persist)).
    pub fn load_or_generate<S: AsRef<str>>(dir: &Path, names: &[S]) -> Result<Self> {
        let label = label(names);
        let cert_path = dir.join(format!("self-signed-{label}.cert.pem"));
        let key_path = dir.join(format!("self-signed-{label}.key.pem"));
        if cert_path.exists() || key_path.exists() {
            let identity = Identity::from_pem_files(&cert_path, &key_path)?;
            return Ok(StoredIdentity {
                identity,
                cert_path,
                key_path,
                unsaved: None,
            });
        }
        let fresh = SelfSigned::generate(names)?;
        Ok(StoredIdentity {
            identity: fresh.identity,
            cert_path,
            key_path,
            unsaved: Some((fresh.cert_pem, fresh.key_pem)),
        })
    }

    /// The identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Where the certificate is (or will be) stored: what clients pass as
    /// `--ca`.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// True when the identity was generated now and not yet written.
    pub fn is_new(&self) -> bool {
        self.unsaved.is_some()
    }

    /// Writes a new identity (nothing for a loaded one): the key first, with
    /// mode 0600, then the certificate; neither file may exist already.
    pub fn persist(&mut self) -> Result<()> {
        let Some((cert_pem, key_pem)) = self.unsaved.take() else {
            return Ok(());
        };
        if let Some(dir) = self.cert_path.parent() {
            files::create_dir_all(dir)?;
        }
        files::write_new(&self.key_path, key_pem.as_bytes(), files::SECRET, false)?;
        files::write_new(&self.cert_path, cert_pem.as_bytes(), files::PUBLIC, false)?;
        Ok(())
    }
}

/// The operating system's trust store (through `rustls-native-certs`).
/// Certificates it cannot parse are skipped; an empty result is an error.
pub fn system_roots() -> Result<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map_or_else(|| "none installed".to_string(), |e| e.to_string());
        return Err(Error::NoSystemRoots(why));
    }
    Ok(roots)
}

/// The certificates of `path` as roots: PEM (any number of `CERTIFICATE`
/// blocks) or one DER certificate.
pub fn roots_from_file(path: &Path) -> Result<RootCertStore> {
    let bytes = files::read(path)?;
    let certs = if looks_like_pem(&bytes) {
        parse_chain(&bytes, path)?
    } else {
        vec![CertificateDer::from(bytes)]
    };
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| Error::Pem {
            path: path.to_path_buf(),
            reason: format!("not a usable certificate: {e}"),
        })?;
    }
    Ok(roots)
}

fn looks_like_pem(bytes: &[u8]) -> bool {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    start.is_some_and(|i| bytes[i..].starts_with(b"-----BEGIN"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pquic-host-id-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn stored_identity_is_written_once_and_reused() {
        let dir = temp_dir("stored");
        let names = ["localhost", "10.77.0.1"];
        let mut first = StoredIdentity::load_or_generate(&dir, &names).unwrap();
        assert!(first.is_new());
        assert!(
            !first.cert_path().exists(),
            "nothing written before persist"
        );
        first.persist().unwrap();
        let again = StoredIdentity::load_or_generate(&dir, &names).unwrap();
        assert!(!again.is_new());
        assert_eq!(again.identity().cert(), first.identity().cert());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let key = dir.join("self-signed-localhost+10.77.0.1.key.pem");
            let mode = std::fs::metadata(key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A second new identity for the same names never overwrites.
        let mut racing = StoredIdentity {
            unsaved: Some(("x".into(), "y".into())),
            ..StoredIdentity::load_or_generate(&dir, &names).unwrap()
        };
        assert!(racing.persist().is_err());
        let kept = StoredIdentity::load_or_generate(&dir, &names).unwrap();
        assert_eq!(kept.identity().cert(), first.identity().cert());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn roots_come_from_pem_or_der_and_errors_name_the_file() {
        let dir = temp_dir("roots");
        std::fs::create_dir_all(&dir).unwrap();
        let fresh = SelfSigned::generate(&["localhost"]).unwrap();
        let pem = dir.join("ca.pem");
        let der = dir.join("ca.der");
        std::fs::write(&pem, &fresh.cert_pem).unwrap();
        std::fs::write(&der, fresh.identity.cert().as_ref()).unwrap();
        assert_eq!(roots_from_file(&pem).unwrap().len(), 1);
        assert_eq!(roots_from_file(&der).unwrap().len(), 1);
        let missing = dir.join("missing.pem");
        let error = roots_from_file(&missing).unwrap_err().to_string();
        assert!(error.contains("missing.pem"), "{error}");
        std::fs::write(&pem, "-----BEGIN PRIVATE KEY-----\n").unwrap();
        let error = roots_from_file(&pem).unwrap_err().to_string();
        assert!(error.contains("ca.pem"), "{error}");
        // The operator's own PEM pair.
        let (cert, key) = (dir.join("c.pem"), dir.join("k.pem"));
        std::fs::write(&cert, &fresh.cert_pem).unwrap();
        std::fs::write(&key, &fresh.key_pem).unwrap();
        let identity = Identity::from_pem_files(&cert, &key).unwrap();
        assert_eq!(identity.cert(), fresh.identity.cert());
        let error = Identity::from_pem_files(&key, &key)
            .unwrap_err()
            .to_string();
        assert!(error.contains("k.pem"), "{error}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
