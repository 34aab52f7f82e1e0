//! The benchmark's two workloads, one body for every QUIC stack whose API is
//! quinn's (quinn itself, and its fork noq, which spells one read
//! differently: [`NextChunk`]): [`quic_workload!`] expands to a module per
//! stack.
//!
//! - Bulk: the client writes a buffer on one stream and finishes it; the
//!   server hashes what arrives (SHA-256) and answers with its length, its
//!   hash and the microseconds from the first byte to the end.
//! - Messages: the client writes `count` messages at a fixed rate on one
//!   stream, each carrying its sequence number and the microseconds since a
//!   shared epoch when it was written; the server checks their order and
//!   records each one's latency (client and server share the process, so
//!   the clock is one `Instant`).

use std::future::Future;

use bytes::Bytes;

use super::BenchError;

/// Latencies of one message run, in milliseconds, sorted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latencies {
    /// Messages sent.
    pub sent: u64,
    /// Every delivered message's latency, sorted.
    pub ms: Vec<f64>,
}

impl Latencies {
    /// The value at quantile `q` (nearest rank); 0 without samples.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.ms.is_empty() {
            return 0.0;
        }
        let rank = (q * self.ms.len() as f64).ceil() as usize;
        self.ms[rank.clamp(1, self.ms.len()) - 1]
    }
}

/// What the server reported of one bulk transfer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BulkReceipt {
    /// Bytes received.
    pub bytes: u64,
    /// True when length and SHA-256 matched what was sent.
    pub intact: bool,
    /// From the first byte to the end of the stream, at the server.
    pub seconds: f64,
}

/// What the client side of a job returns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Done {
    /// The server's receipt of a bulk transfer.
    Bulk(BulkReceipt),
    /// A message run.
    Messages {
        /// Messages written.
        sent: u64,
        /// Messages the server counted.
        delivered: u64,
    },
}

/// Stream kind bytes.
pub const KIND_BULK: u8 = b'B';
/// See [`KIND_BULK`].
pub const KIND_MESSAGES: u8 = b'M';
/// Bytes of a message's header: length (u32), sequence (u64), sent (u64 µs).
pub const MESSAGE_HEADER: usize = 4 + 8 + 8;

/// The one read whose spelling differs between the stacks: quinn's
/// `read_chunk(max, ordered)` yields a `Chunk`, noq's `read_chunk(max)` is
/// always in order and yields the bytes (out-of-order reads moved to
/// `into_unordered`). Both impls are the same zero-copy ordered read.
pub trait NextChunk {
    /// The next in-order chunk of the stream, of any length; `None` once the
    /// stream has finished.
    fn next_chunk(&mut self) -> impl Future<Output = Result<Option<Bytes>, BenchError>> + Send;
}

impl NextChunk for quinn::RecvStream {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, BenchError> {
        let chunk = self
            .read_chunk(usize::MAX, true)
            .await
            .map_err(BenchError::quic)?;
        Ok(chunk.map(|chunk| chunk.bytes))
    }
}

impl NextChunk for noq::RecvStream {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, BenchError> {
        self.read_chunk(usize::MAX).await.map_err(BenchError::quic)
    }
}

/// Defines `pub mod $name` with `serve`, `run`, `bulk` and `messages` over
/// the crate `$stack` (quinn's API).
#[macro_export]
macro_rules! quic_workload {
    ($name:ident, $stack:ident) => {
        /// The workloads over this QUIC stack.
        pub mod $name {
            use std::sync::{Arc, Mutex};
            use std::time::{Duration, Instant};

            use bytes::Bytes;
            use sha2::{Digest, Sha256};

            use $crate::quic::stacks::Job;
            use $crate::quic::workload::{
                BulkReceipt, Done, NextChunk as _, KIND_BULK, KIND_MESSAGES, MESSAGE_HEADER,
            };
            use $crate::quic::BenchError;

            fn micros(epoch: Instant) -> u64 {
                epoch.elapsed().as_micros() as u64
            }

            /// Serves every stream of `connection` until it closes; message
            /// latencies (ms) go to `latencies`.
            pub async fn serve(
                connection: $stack::Connection,
                epoch: Instant,
                latencies: Arc<Mutex<Vec<f64>>>,
            ) {
                while let Ok((send, recv)) = connection.accept_bi().await {
                    let latencies = latencies.clone();
                    tokio::spawn(async move {
                        if let Err(e) = serve_stream(send, recv, epoch, latencies).await {
                            eprintln!("bench server stream: {e}");
                        }
                    });
                }
            }

            async fn serve_stream(
                mut send: $stack::SendStream,
                mut recv: $stack::RecvStream,
                epoch: Instant,
                latencies: Arc<Mutex<Vec<f64>>>,
            ) -> Result<(), BenchError> {
                let mut kind = [0u8; 1];
                recv.read_exact(&mut kind).await.map_err(BenchError::quic)?;
                match kind[0] {
                    KIND_BULK => {
                        let mut hasher = Sha256::new();
                        let mut total = 0u64;
                        let mut start = None;
                        while let Some(chunk) = recv.next_chunk().await? {
                            start.get_or_insert_with(Instant::now);
                            hasher.update(&chunk);
                            total += chunk.len() as u64;
                        }
                        let elapsed = start.map_or(0, |s| s.elapsed().as_micros() as u64);
                        let mut reply = Vec::with_capacity(48);
                        reply.extend_from_slice(&total.to_le_bytes());
                        reply.extend_from_slice(&hasher.finalize());
                        reply.extend_from_slice(&elapsed.to_le_bytes());
                        send.write_all(&reply).await.map_err(BenchError::quic)?;
                        send.finish().map_err(BenchError::quic)?;
                        let _ = send.stopped().await;
                    }
                    KIND_MESSAGES => {
                        let mut expected = 0u64;
                        let mut header = [0u8; MESSAGE_HEADER];
                        loop {
                            match recv.read_exact(&mut header).await {
                                Ok(()) => {}
                                Err($stack::ReadExactError::FinishedEarly(0)) => break,
                                Err(e) => return Err(BenchError::quic(e)),
                            }
                            let field = |at: usize| {
                                let mut word = [0u8; 8];
                                word.copy_from_slice(&header[at..at + 8]);
                                u64::from_le_bytes(word)
                            };
                            let (seq, sent) = (field(4), field(12));
                            let mut len = [0u8; 4];
                            len.copy_from_slice(&header[..4]);
                            let len = u32::from_le_bytes(len) as usize;
                            if seq != expected || len > 1 << 16 {
                                return Err(BenchError::Protocol(format!(
                                    "message {seq} (length {len}) where {expected} was due"
                                )));
                            }
                            let mut body = vec![0u8; len];
                            recv.read_exact(&mut body).await.map_err(BenchError::quic)?;
                            let now = micros(epoch);
                            expected += 1;
                            latencies
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(now.saturating_sub(sent) as f64 / 1000.0);
                        }
                        send.write_all(&expected.to_le_bytes())
                            .await
                            .map_err(BenchError::quic)?;
                        send.finish().map_err(BenchError::quic)?;
                        let _ = send.stopped().await;
                    }
                    other => {
                        return Err(BenchError::Protocol(format!("stream kind {other}")));
                    }
                }
                Ok(())
            }

            /// Runs the client side of `job` on `connection`.
            pub async fn run(
                connection: &$stack::Connection,
                job: &Job,
                epoch: Instant,
            ) -> Result<Done, BenchError> {
                match job {
                    Job::Bulk(data) => bulk(connection, data).await.map(Done::Bulk),
                    &Job::Messages { rate, size, count } => {
                        let delivered = messages(connection, epoch, rate, size, count).await?;
                        Ok(Done::Messages {
                            sent: count,
                            delivered,
                        })
                    }
                }
            }

            /// Sends `data` on one stream; the server's receipt.
            pub async fn bulk(
                connection: &$stack::Connection,
                data: &Bytes,
            ) -> Result<BulkReceipt, BenchError> {
                let (mut send, mut recv) = connection.open_bi().await.map_err(BenchError::quic)?;
                send.write_all(&[KIND_BULK])
                    .await
                    .map_err(BenchError::quic)?;
                send.write_chunk(data.clone())
                    .await
                    .map_err(BenchError::quic)?;
                send.finish().map_err(BenchError::quic)?;
                let reply = recv.read_to_end(64).await.map_err(BenchError::quic)?;
                if reply.len() != 48 {
                    return Err(BenchError::Protocol(format!(
                        "bulk receipt of {} bytes",
                        reply.len()
                    )));
                }
                let mut word = [0u8; 8];
                word.copy_from_slice(&reply[..8]);
                let bytes = u64::from_le_bytes(word);
                word.copy_from_slice(&reply[40..48]);
                let micros = u64::from_le_bytes(word);
                let digest = Sha256::digest(data);
                Ok(BulkReceipt {
                    bytes,
                    intact: bytes == data.len() as u64 && reply[8..40] == digest[..],
                    seconds: micros.max(1) as f64 / 1e6,
                })
            }

            /// Sends `count` messages of `size` payload bytes at `rate` per
            /// second on one stream and waits until the server has them all.
            pub async fn messages(
                connection: &$stack::Connection,
                epoch: Instant,
                rate: u32,
                size: usize,
                count: u64,
            ) -> Result<u64, BenchError> {
                let (mut send, mut recv) = connection.open_bi().await.map_err(BenchError::quic)?;
                send.write_all(&[KIND_MESSAGES])
                    .await
                    .map_err(BenchError::quic)?;
                let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
                let mut ticker = tokio::time::interval(period);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut frame = vec![0x5au8; MESSAGE_HEADER + size];
                frame[..4].copy_from_slice(&(size as u32).to_le_bytes());
                for seq in 0..count {
                    ticker.tick().await;
                    frame[4..12].copy_from_slice(&seq.to_le_bytes());
                    frame[12..20].copy_from_slice(&micros(epoch).to_le_bytes());
                    send.write_all(&frame).await.map_err(BenchError::quic)?;
                }
                send.finish().map_err(BenchError::quic)?;
                let reply = recv.read_to_end(8).await.map_err(BenchError::quic)?;
                let mut word = [0u8; 8];
                if reply.len() != 8 {
                    return Err(BenchError::Protocol("no message receipt".into()));
                }
                word.copy_from_slice(&reply);
                Ok(u64::from_le_bytes(word))
            }
        }
    };
}
