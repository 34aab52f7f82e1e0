//! The crate's error type.

use std::net::SocketAddr;

/// Everything that can go wrong in the host.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Socket I/O on a bound socket.
    #[error("socket {addr}: {source}")]
    Socket {
        /// The socket's address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Reading a file failed.
    #[error("read {}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Writing a file (or creating a directory) failed.
    #[error("write {}: {source}", path.display())]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file that is only ever created (a key) exists already.
    #[error("{} exists; not overwritten (--force replaces it)", path.display())]
    Exists {
        /// The file.
        path: std::path::PathBuf,
    },
    /// A PEM file holds no usable certificate or key.
    #[error("{}: {reason}", path.display())]
    Pem {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The operating system's trust store is empty or unreadable.
    #[error("no system root certificates ({0}); pass --ca FILE")]
    NoSystemRoots(String),
    /// TLS configuration.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// Certificate generation.
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// quinn refused a configuration.
    #[error("QUIC configuration: {0}")]
    QuicConfig(String),
    /// Connecting failed before the handshake.
    #[error("connect to {addr}: {source}")]
    Connect {
        /// Where we tried to connect.
        addr: SocketAddr,
        /// Why quinn refused.
        source: quinn::ConnectError,
    },
    /// The handshake with a server failed.
    #[error(
        "handshake with {addr} ({server_name}): {source}{}",
        certificate_hint(source)
    )]
    Handshake {
        /// The server's address.
        addr: SocketAddr,
        /// The name its certificate was checked against.
        server_name: String,
        /// What quinn reported.
        source: quinn::ConnectionError,
    },
    /// The connection failed or closed.
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// Writing to a stream failed.
    #[error("stream write: {0}")]
    StreamWrite(#[from] quinn::WriteError),
    /// Reading a stream failed.
    #[error("stream read: {0}")]
    StreamRead(String),
    /// The peer broke the workload protocol or delivered corrupt data.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A host name or address did not resolve.
    #[error("resolve {target}: {source}")]
    Resolve {
        /// What was looked up (`host:port`).
        target: String,
        /// Why the lookup failed.
        source: std::io::Error,
    },
    /// A host name resolved to no address at all.
    #[error("{target} resolves to no address")]
    NoAddress {
        /// What was looked up.
        target: String,
    },
    /// Binding a UDP socket failed.
    #[error("bind {addr}: {source}")]
    Bind {
        /// The local address.
        addr: SocketAddr,
        /// Why the system refused.
        source: std::io::Error,
    },
    /// A plugin was refused or could not be built.
    #[error("plugin: {0}")]
    Plugin(String),
    /// FEC was required but not active for the whole transfer.
    #[error("FEC required but not active for the whole transfer: {0}")]
    FecRequired(String),
    /// A TUN device could not be created or configured.
    #[error("TUN device {name}: {source}")]
    Tun {
        /// The device's name.
        name: String,
        /// Why.
        source: std::io::Error,
    },
    /// A step did not finish in time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
}

impl From<quinn::ReadExactError> for Error {
    fn from(e: quinn::ReadExactError) -> Self {
        Error::StreamRead(e.to_string())
    }
}

impl From<quinn::ReadToEndError> for Error {
    fn from(e: quinn::ReadToEndError) -> Self {
        Error::StreamRead(e.to_string())
    }
}

impl From<quinn::ReadError> for Error {
    fn from(e: quinn::ReadError) -> Self {
        Error::StreamRead(e.to_string())
    }
}

impl From<quinn::ClosedStream> for Error {
    fn from(e: quinn::ClosedStream) -> Self {
        Error::Protocol(e.to_string())
    }
}

/// What to do about a refused server certificate.
fn certificate_hint(error: &quinn::ConnectionError) -> &'static str {
    let text = error.to_string();
    if text.contains("UnknownIssuer") {
        "; the certificate is not issued by a trusted root: pass --ca with the server's certificate or its CA"
    } else if text.contains("NotValidForName") {
        "; the certificate does not name the server: check --server-name"
    } else {
        ""
    }
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
