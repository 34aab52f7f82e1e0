//! File access with the path in every error, and files that are created
//! once (keys: mode 0600, never overwritten unless asked).

#![forbid(unsafe_code)]

use std::io::Write as _;
use std::path::Path;

use crate::error::{Error, Result};

/// Mode of a secret (a private key): owner read and write only.
pub const SECRET: u32 = 0o600;
/// Mode of a public file (a certificate).
pub const PUBLIC: u32 = 0o644;

/// Reads `path`.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads `path` as UTF-8 text.
pub fn read_to_string(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to `path`, replacing it.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Creates `dir` and its parents.
pub fn create_dir_all(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to a new file `path` with `mode` (on Unix). An existing
/// file is an error ([`Error::Exists`]) unless `force`, which replaces it
/// (a new file, so the mode applies even if the old one was laxer).
pub fn write_new(path: &Path, bytes: &[u8], mode: u32, force: bool) -> Result<()> {
    let write_error = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    if force {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(write_error(e)),
        }
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::Exists {
                path: path.to_path_buf(),
            }
        } else {
            write_error(e)
        }
    })?;
    file.write_all(bytes).map_err(write_error)?;
    file.sync_all().map_err(write_error)
}
