//! The crate's error type.

use std::net::SocketAddr;

/// Everything that can go wrong in the host.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Socket or file I/O.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
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
    /// The connection failed or closed.
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// Writing to a stream failed.
    #[error("stream write: {0}")]
    Write(#[from] quinn::WriteError),
    /// Reading a stream failed.
    #[error("stream read: {0}")]
    Read(String),
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
    /// A step did not finish in time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
}

impl From<quinn::ReadExactError> for Error {
    fn from(e: quinn::ReadExactError) -> Self {
        Error::Read(e.to_string())
    }
}

impl From<quinn::ReadToEndError> for Error {
    fn from(e: quinn::ReadToEndError) -> Self {
        Error::Read(e.to_string())
    }
}

impl From<quinn::ReadError> for Error {
    fn from(e: quinn::ReadError) -> Self {
        Error::Read(e.to_string())
    }
}

impl From<quinn::ClosedStream> for Error {
    fn from(e: quinn::ClosedStream) -> Self {
        Error::Protocol(e.to_string())
    }
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
