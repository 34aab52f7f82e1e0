//! The demo's workloads and their checks, over any quinn connection.
//!
//! - Real-time messages: small messages at a fixed rate on one reliable
//!   stream; the server checks every byte and measures send-to-delivery
//!   latency (both ends read the same wall clock, so client and server must
//!   run on one machine, which loopback guarantees).
//! - Real-time datagrams: the same rate over QUIC datagrams, counted intact.
//! - Bulk: a byte stream (generated from a seed, or a file) for a while;
//!   the server returns its length and SHA-256, the client compares.
//!
//! Every stream starts with one kind byte so one connection carries them all.

#![forbid(unsafe_code)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::rng::SeededRng;

/// Stream kind: framed real-time messages.
pub const KIND_MESSAGES: u8 = b'M';
/// Stream kind: bulk bytes.
pub const KIND_BULK: u8 = b'B';
/// Stream kind: the client asks for the server's FEC state of this
/// connection; the server answers with one JSON object and finishes.
pub const KIND_STATUS: u8 = b'S';

/// What the server answers on a status stream.
pub type StatusProbe = std::sync::Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// Asks the server for its FEC state of `connection` (see [`KIND_STATUS`]).
pub async fn fec_status(connection: &quinn::Connection) -> Result<serde_json::Value> {
    let (mut send, mut recv) = connection.open_bi().await?;
    send.write_all(&[KIND_STATUS]).await?;
    send.finish()?;
    let reply = recv.read_to_end(64 * 1024).await?;
    serde_json::from_slice(&reply).map_err(|e| Error::Protocol(format!("bad status reply: {e}")))
}

/// Largest message the server accepts (bounds its allocation).
const MAX_MESSAGE: usize = 64 * 1024;
const MESSAGE_HEADER: usize = 4 + 8 + 8;
const DATAGRAM_HEADER: usize = 8 + 8;

/// What the client sends.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// Messages (and datagrams) per second.
    pub message_rate: u32,
    /// Payload bytes per message.
    pub message_size: usize,
    /// Payload bytes per datagram.
    pub datagram_size: usize,
    /// How long the real-time phase lasts.
    pub realtime: Duration,
    /// How long the client keeps writing bulk data.
    pub bulk: Duration,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        Self {
            message_rate: 100,
            message_size: 200,
            datagram_size: 200,
            realtime: Duration::from_secs(8),
            bulk: Duration::from_secs(4),
        }
    }
}

/// Results of one run, as the demo reports them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkloadReport {
    /// Messages sent.
    pub sent: u64,
    /// Messages delivered intact.
    pub delivered: u64,
    /// Median send-to-delivery latency.
    pub latency_p50_ms: f64,
    /// 99th percentile latency.
    pub latency_p99_ms: f64,
    /// Worst latency.
    pub latency_max_ms: f64,
    /// Datagrams sent.
    pub datagrams_sent: u64,
    /// Datagrams delivered intact.
    pub datagrams_delivered: u64,
    /// Bulk bytes delivered.
    pub bulk_bytes: u64,
    /// Bulk goodput at the receiver.
    pub goodput_mbps: f64,
    /// True when the bulk data's length and SHA-256 matched.
    pub bulk_intact: bool,
    /// Message latencies in ms, sorted: every one, or evenly spaced
    /// quantiles of them when there were more than [`LATENCY_SAMPLES`]
    /// (for a CDF).
    pub latency_cdf_ms: Vec<f64>,
    /// Each message's send time (wall clock, microseconds since the Unix
    /// epoch) and latency in ms, in sending order, for up to
    /// [`LATENCY_SERIES`] messages (none beyond): latency over time.
    pub latency_series: Vec<(u64, f64)>,
}

/// Most messages whose latencies are reported one by one.
pub const LATENCY_SERIES: usize = 10_000;

/// Most latency samples a message summary carries.
pub const LATENCY_SAMPLES: usize = 2000;

/// At most `limit` evenly spaced values of `sorted` (its quantiles), first
/// and last included.
pub fn quantiles(sorted: &[f64], limit: usize) -> Vec<f64> {
    if sorted.len() <= limit || limit < 2 {
        return sorted.to_vec();
    }
    (0..limit)
        .map(|i| sorted[i * (sorted.len() - 1) / (limit - 1)])
        .collect()
}

fn wall_clock_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn fill_payload(seq: u64, buf: &mut [u8]) {
    let mut rng = SeededRng::new(seq ^ 0x6d65_7373_6167_6573);
    for chunk in buf.chunks_mut(8) {
        let word = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

fn payload_matches(seq: u64, payload: &[u8]) -> bool {
    let mut expected = vec![0u8; payload.len()];
    fill_payload(seq, &mut expected);
    expected == payload
}

/// Value at quantile `q` of sorted samples (nearest rank).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Bulk data source for the client.
#[derive(Debug)]
pub enum BulkSource {
    /// Seeded pseudo-random bytes for the configured time.
    Generated,
    /// A file's bytes, once.
    Bytes(Bytes),
}

/// Runs the whole workload on `connection` and returns what the server
/// confirmed. `progress` receives the fraction done, from 0 to 1.
pub async fn run_client(
    connection: &quinn::Connection,
    config: &WorkloadConfig,
    bulk: BulkSource,
    progress: &(dyn Fn(f64) + Sync),
) -> Result<WorkloadReport> {
    let total = (config.realtime + config.bulk).as_secs_f64().max(1e-3);
    let mut report = realtime(connection, config, &|f| {
        progress(f * config.realtime.as_secs_f64() / total)
    })
    .await?;
    let share = config.realtime.as_secs_f64() / total;
    let (bytes, mbps, intact) = bulk_transfer(connection, config.bulk, bulk, &|f| {
        progress(share + f * (1.0 - share))
    })
    .await?;
    report.bulk_bytes = bytes;
    report.goodput_mbps = mbps;
    report.bulk_intact = intact;
    progress(1.0);
    Ok(report)
}

async fn realtime(
    connection: &quinn::Connection,
    config: &WorkloadConfig,
    progress: &(dyn Fn(f64) + Sync),
) -> Result<WorkloadReport> {
    let (mut send, mut recv) = connection.open_bi().await?;
    send.write_all(&[KIND_MESSAGES]).await?;
    let period = Duration::from_secs_f64(1.0 / f64::from(config.message_rate.max(1)));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let start = Instant::now();
    let mut frame = vec![0u8; MESSAGE_HEADER + config.message_size];
    let mut datagram = vec![0u8; DATAGRAM_HEADER + config.datagram_size];
    let (mut sent, mut datagrams_sent) = (0u64, 0u64);
    let mut sent_at = Vec::new();
    let datagrams_possible = connection
        .max_datagram_size()
        .is_some_and(|max| max >= datagram.len());
    while start.elapsed() < config.realtime {
        ticker.tick().await;
        let now_us = wall_clock_us();
        let len = (8 + 8 + config.message_size) as u32;
        frame[..4].copy_from_slice(&len.to_le_bytes());
        frame[4..12].copy_from_slice(&sent.to_le_bytes());
        frame[12..20].copy_from_slice(&now_us.to_le_bytes());
        fill_payload(sent, &mut frame[MESSAGE_HEADER..]);
        send.write_all(&frame).await?;
        if sent_at.len() < LATENCY_SERIES {
            sent_at.push(now_us);
        }
        sent += 1;
        if datagrams_possible {
            datagram[..8].copy_from_slice(&datagrams_sent.to_le_bytes());
            datagram[8..16].copy_from_slice(&now_us.to_le_bytes());
            fill_payload(datagrams_sent, &mut datagram[DATAGRAM_HEADER..]);
            if connection
                .send_datagram(Bytes::copy_from_slice(&datagram))
                .is_ok()
            {
                datagrams_sent += 1;
            }
        }
        progress(start.elapsed().as_secs_f64() / config.realtime.as_secs_f64());
    }
    send.finish()?;
    let summary = recv.read_to_end(1 << 20).await?;
    let summary: serde_json::Value = serde_json::from_slice(&summary)
        .map_err(|e| Error::Protocol(format!("bad message summary: {e}")))?;
    let number = |key: &str| summary.get(key).and_then(|v| v.as_f64()).unwrap_or(0.0);
    Ok(WorkloadReport {
        sent,
        delivered: number("delivered") as u64,
        latency_p50_ms: number("latency_p50_ms"),
        latency_p99_ms: number("latency_p99_ms"),
        latency_max_ms: number("latency_max_ms"),
        datagrams_sent,
        datagrams_delivered: number("datagrams_delivered") as u64,
        latency_cdf_ms: summary
            .get("latency_cdf_ms")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_f64()).collect())
            .unwrap_or_default(),
        latency_series: summary
            .get("latency_by_seq_ms")
            .and_then(|v| v.as_array())
            .map(|a| {
                sent_at
                    .iter()
                    .zip(a.iter().filter_map(|v| v.as_f64()))
                    .map(|(&at, ms)| (at, ms))
                    .collect()
            })
            .unwrap_or_default(),
        ..WorkloadReport::default()
    })
}

async fn bulk_transfer(
    connection: &quinn::Connection,
    duration: Duration,
    source: BulkSource,
    progress: &(dyn Fn(f64) + Sync),
) -> Result<(u64, f64, bool)> {
    let (mut send, mut recv) = connection.open_bi().await?;
    send.write_all(&[KIND_BULK]).await?;
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    match source {
        BulkSource::Bytes(bytes) => {
            for chunk in bytes.chunks(64 * 1024) {
                send.write_all(chunk).await?;
                hasher.update(chunk);
                total += chunk.len() as u64;
                progress(total as f64 / bytes.len().max(1) as f64);
            }
        }
        BulkSource::Generated => {
            let start = Instant::now();
            let mut chunk = vec![0u8; 64 * 1024];
            let mut index = 0u64;
            while start.elapsed() < duration {
                fill_payload(index, &mut chunk);
                send.write_all(&chunk).await?;
                hasher.update(&chunk);
                total += chunk.len() as u64;
                index += 1;
                progress(start.elapsed().as_secs_f64() / duration.as_secs_f64());
            }
        }
    }
    send.finish()?;
    let reply = recv.read_to_end(64).await?;
    if reply.len() != 8 + 32 + 8 {
        return Err(Error::Protocol(format!(
            "bulk reply of {} bytes",
            reply.len()
        )));
    }
    let bytes = u64::from_le_bytes(reply[..8].try_into().expect("8 bytes"));
    let elapsed_us = u64::from_le_bytes(reply[40..48].try_into().expect("8 bytes"));
    let intact = bytes == total && reply[8..40] == hasher.finalize()[..];
    let mbps = bytes as f64 * 8.0 / (elapsed_us.max(1) as f64);
    Ok((bytes, mbps, intact))
}

/// Serves every stream and datagram of one connection until it closes;
/// status streams are answered with `probe` (none: an empty object).
pub async fn serve_connection(
    connection: quinn::Connection,
    probe: Option<StatusProbe>,
) -> Result<()> {
    let datagrams = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = datagrams.clone();
    let reader = connection.clone();
    tokio::spawn(async move {
        while let Ok(d) = reader.read_datagram().await {
            if d.len() >= DATAGRAM_HEADER {
                let seq = u64::from_le_bytes(d[..8].try_into().expect("8 bytes"));
                if payload_matches(seq, &d[DATAGRAM_HEADER..]) {
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    });
    loop {
        let (send, mut recv) = match connection.accept_bi().await {
            Ok(streams) => streams,
            Err(quinn::ConnectionError::ApplicationClosed(_))
            | Err(quinn::ConnectionError::LocallyClosed) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut kind = [0u8; 1];
        recv.read_exact(&mut kind).await?;
        let datagrams = datagrams.clone();
        let probe = probe.clone();
        tokio::spawn(async move {
            let outcome = match kind[0] {
                KIND_MESSAGES => serve_messages(send, recv, &datagrams).await,
                KIND_BULK => serve_bulk(send, recv).await,
                KIND_STATUS => serve_status(send, probe).await,
                other => Err(Error::Protocol(format!("unknown stream kind {other}"))),
            };
            if let Err(e) = outcome {
                tracing::warn!("stream failed: {e}");
            }
        });
    }
}

async fn serve_messages(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    datagrams: &std::sync::atomic::AtomicU64,
) -> Result<()> {
    let mut latencies = Vec::new();
    let mut header = [0u8; 4];
    let mut expected_seq = 0u64;
    loop {
        match recv.read_exact(&mut header).await {
            Ok(()) => {}
            Err(quinn::ReadExactError::FinishedEarly(0)) => break,
            Err(e) => return Err(e.into()),
        }
        let len = u32::from_le_bytes(header) as usize;
        if !(16..=MAX_MESSAGE).contains(&len) {
            return Err(Error::Protocol(format!("message length {len}")));
        }
        let mut body = vec![0u8; len];
        recv.read_exact(&mut body).await?;
        let now_us = wall_clock_us();
        let seq = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
        let sent_us = u64::from_le_bytes(body[8..16].try_into().expect("8 bytes"));
        if seq != expected_seq || !payload_matches(seq, &body[16..]) {
            return Err(Error::Protocol(format!(
                "message {seq} corrupt or out of order"
            )));
        }
        expected_seq += 1;
        latencies.push(now_us.saturating_sub(sent_us) as f64 / 1000.0);
    }
    let by_seq: Vec<f64> = latencies.iter().copied().take(LATENCY_SERIES).collect();
    latencies.sort_by(f64::total_cmp);
    let summary = serde_json::json!({
        "delivered": latencies.len(),
        "latency_p50_ms": percentile(&latencies, 0.50),
        "latency_p99_ms": percentile(&latencies, 0.99),
        "latency_max_ms": latencies.last().copied().unwrap_or(0.0),
        "datagrams_delivered": datagrams.load(std::sync::atomic::Ordering::Relaxed),
        "latency_cdf_ms": quantiles(&latencies, LATENCY_SAMPLES),
        "latency_by_seq_ms": by_seq,
    });
    send.write_all(summary.to_string().as_bytes()).await?;
    send.finish()?;
    // Keep the stream open until the client read the summary.
    let _ = send.stopped().await;
    Ok(())
}

async fn serve_status(mut send: quinn::SendStream, probe: Option<StatusProbe>) -> Result<()> {
    let status = probe.map_or_else(|| serde_json::json!({}), |p| p());
    send.write_all(status.to_string().as_bytes()).await?;
    send.finish()?;
    let _ = send.stopped().await;
    Ok(())
}

async fn serve_bulk(mut send: quinn::SendStream, mut recv: quinn::RecvStream) -> Result<()> {
    let start = Instant::now();
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    while let Some(chunk) = recv.read_chunk(usize::MAX, true).await? {
        hasher.update(&chunk.bytes);
        total += chunk.bytes.len() as u64;
    }
    let elapsed_us = start.elapsed().as_micros() as u64;
    let mut reply = Vec::with_capacity(48);
    reply.extend_from_slice(&total.to_le_bytes());
    reply.extend_from_slice(&hasher.finalize());
    reply.extend_from_slice(&elapsed_us.to_le_bytes());
    send.write_all(&reply).await?;
    send.finish()?;
    let _ = send.stopped().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn quantiles_keep_the_ends_and_the_bound() {
        let v: Vec<f64> = (0..10_000).map(f64::from).collect();
        let q = quantiles(&v, 101);
        assert_eq!(q.len(), 101);
        assert_eq!((q[0], q[50], q[100]), (0.0, 4999.0, 9999.0));
        assert_eq!(quantiles(&v[..5], 101), &v[..5]);
    }

    #[test]
    fn payload_check_detects_a_flipped_bit() {
        let mut p = vec![0u8; 37];
        fill_payload(5, &mut p);
        assert!(payload_matches(5, &p));
        assert!(!payload_matches(6, &p));
        p[36] ^= 1;
        assert!(!payload_matches(5, &p));
    }
}
