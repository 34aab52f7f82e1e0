//! The tunnel's measurement tool (`pquic-host tunnel probe`): a paced
//! stream of timestamped UDP datagrams into a tunnel, an echo at the far
//! side, and what came through: residual loss and one-way latency in each
//! direction, and the bytes the tunnel put on its outer path per payload
//! byte, from the tunnel's own counters.
//!
//! Everything runs in one process, so both ends share one clock and the
//! one-way latencies need no clock synchronisation. The stream and the
//! echo run on their own threads with blocking sockets, paced by the
//! operating system's sleep (tokio's timer has millisecond granularity,
//! too coarse for 2000 datagrams per second).
//!
//! Probe datagram (all integers big endian), padded to the stream's size:
//!
//! ```text
//! "PQTP" | sequence u64 | sent at, ns u64 | echoed at, ns u64 | padding
//! ```

#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::builder::{ClientBuilder, FecMode, ServerBuilder};
use crate::congestion::Algorithm;
use crate::demo::FecSetup;
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::impair::Impairment;
use crate::layer::LayerStats;
use crate::socket::SocketStats;

use super::{udp, Counters, FlowConfig, TunnelStats, TUNNEL_ALPN};

const MAGIC: &[u8; 4] = b"PQTP";
/// Longest wait for path MTU discovery before the stream starts.
pub const MTU_SETTLE: Duration = Duration::from_secs(5);
/// Smallest probe datagram: magic, sequence and two timestamps.
pub const MIN_SIZE: usize = 28;

/// The stream to send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamConfig {
    /// Datagrams per second.
    pub rate: f64,
    /// UDP payload bytes per datagram (at least [`MIN_SIZE`]).
    pub size: usize,
    /// How long to send.
    pub duration: Duration,
    /// How long to wait for late datagrams after the last one is sent.
    pub drain: Duration,
}

/// Latency percentiles of one direction, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Latency {
    fn of(mut samples: Vec<u64>) -> Self {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let index = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[index] as f64 / 1e6
        };
        Latency {
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: samples[samples.len() - 1] as f64 / 1e6,
        }
    }
}

/// What one stream measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct StreamReport {
    /// Datagrams sent.
    pub sent: u64,
    /// Distinct datagrams that reached the echo.
    pub up_delivered: u64,
    /// Distinct echoes that came back.
    pub down_delivered: u64,
    /// Sender to echo.
    pub up: Latency,
    /// Echo to sender.
    pub down: Latency,
}

impl StreamReport {
    /// Fraction of datagrams lost on the way to the echo.
    pub fn up_loss(&self) -> f64 {
        lost(self.sent, self.up_delivered)
    }

    /// Fraction of echoes lost on the way back.
    pub fn down_loss(&self) -> f64 {
        lost(self.up_delivered, self.down_delivered)
    }
}

fn lost(sent: u64, delivered: u64) -> f64 {
    if sent == 0 {
        0.0
    } else {
        1.0 - delivered as f64 / sent as f64
    }
}

fn nanos(epoch: Instant) -> u64 {
    epoch.elapsed().as_nanos() as u64
}

fn field(datagram: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&datagram[at..at + 8]);
    u64::from_be_bytes(bytes)
}

fn probe_fields(datagram: &[u8]) -> Option<(u64, u64, u64)> {
    (datagram.len() >= MIN_SIZE && &datagram[..4] == MAGIC)
        .then(|| (field(datagram, 4), field(datagram, 12), field(datagram, 20)))
}

/// A UDP echo on its own thread: stamps each probe datagram with its
/// arrival time and sends it back to where it came from.
#[derive(Debug)]
pub struct Echo {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// (sequence, one-way ns) of each arrival.
    arrivals: Arc<Mutex<Vec<(u64, u64)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Echo {
    /// Binds `addr` and starts echoing; times are nanoseconds since
    /// `epoch`.
    pub fn start(addr: SocketAddr, epoch: Instant) -> Result<Self> {
        let socket = UdpSocket::bind(addr).map_err(|source| Error::Bind { addr, source })?;
        let local = socket
            .local_addr()
            .and_then(|local| {
                socket.set_read_timeout(Some(Duration::from_millis(20)))?;
                Ok(local)
            })
            .map_err(|source| Error::Socket { addr, source })?;
        let stop = Arc::new(AtomicBool::new(false));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, arrivals) = (stop.clone(), arrivals.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; udp::MAX_UDP_PAYLOAD];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((len, from)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    let now = nanos(epoch);
                    let Some((seq, sent, _)) = probe_fields(&buf[..len]) else {
                        continue;
                    };
                    arrivals
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((seq, now.saturating_sub(sent)));
                    buf[20..28].copy_from_slice(&now.to_be_bytes());
                    let _ = socket.send_to(&buf[..len], from);
                }
            })
        };
        Ok(Echo {
            addr: local,
            stop,
            arrivals,
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn take_arrivals(&self) -> Vec<(u64, u64)> {
        std::mem::take(&mut *self.arrivals.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sends the stream to `target` (a tunnel's `--udp-listen`, or the echo
/// itself for the no-tunnel baseline) and measures what `echo` saw and
/// what came back. Blocks for the stream's duration plus its drain.
pub fn run_stream(
    target: SocketAddr,
    echo: &Echo,
    config: StreamConfig,
    epoch: Instant,
) -> Result<StreamReport> {
    let local = crate::endpoint::unspecified_for(target);
    let socket = UdpSocket::bind(local).map_err(|source| Error::Bind {
        addr: local,
        source,
    })?;
    let receiver = socket
        .try_clone()
        .and_then(|r| {
            r.set_read_timeout(Some(Duration::from_millis(20)))?;
            Ok(r)
        })
        .map_err(|source| Error::Socket {
            addr: local,
            source,
        })?;
    echo.take_arrivals();
    let stop = Arc::new(AtomicBool::new(false));
    let returns = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; udp::MAX_UDP_PAYLOAD];
            let mut returns = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let Ok(len) = receiver.recv(&mut buf) else {
                    continue;
                };
                let now = nanos(epoch);
                if let Some((seq, _, echoed)) = probe_fields(&buf[..len]) {
                    returns.push((seq, now.saturating_sub(echoed)));
                }
            }
            returns
        })
    };
    let size = config.size.max(MIN_SIZE);
    let count = (config.rate * config.duration.as_secs_f64()).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / config.rate.max(1e-3));
    let mut datagram = vec![0u8; size];
    datagram[..4].copy_from_slice(MAGIC);
    let start = Instant::now();
    let mut send_error = None;
    for seq in 0..count {
        let due = start + interval.mul_f64(seq as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        datagram[4..12].copy_from_slice(&seq.to_be_bytes());
        datagram[12..20].copy_from_slice(&nanos(epoch).to_be_bytes());
        if let Err(source) = socket.send_to(&datagram, target) {
            send_error = Some(Error::Socket {
                addr: target,
                source,
            });
        }
    }
    std::thread::sleep(config.drain);
    stop.store(true, Ordering::Relaxed);
    let returns = returns.join().unwrap_or_default();
    if let Some(error) = send_error {
        return Err(error);
    }
    let distinct = |samples: Vec<(u64, u64)>| {
        let mut seen = HashSet::new();
        let kept: Vec<u64> = samples
            .into_iter()
            .filter(|(seq, _)| seen.insert(*seq))
            .map(|(_, ns)| ns)
            .collect();
        kept
    };
    let up = distinct(echo.take_arrivals());
    let down = distinct(returns);
    Ok(StreamReport {
        sent: count,
        up_delivered: up.len() as u64,
        down_delivered: down.len() as u64,
        up: Latency::of(up),
        down: Latency::of(down),
    })
}

/// How the in-process tunnel is set up.
#[derive(Debug, Clone, Default)]
pub struct TunnelSetup {
    /// The plugin the server offers (`None`: plain QUIC, FEC off).
    pub plugin: Option<String>,
    /// Impairment of what the server receives.
    pub server_impairment: Option<Impairment>,
    /// Impairment of what the client receives.
    pub client_impairment: Option<Impairment>,
    /// Flow table bounds of both ends.
    pub flows: FlowConfig,
    /// The QUIC packet size the outer path is known to carry (see
    /// [`ServerBuilder::min_mtu`]).
    pub min_mtu: Option<u16>,
    /// Both ends' congestion controller.
    pub congestion: Algorithm,
}

/// One end's outer-path and tunnel counters over the stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct EndReport {
    /// Datagrams and bytes its socket put on the outer path.
    pub outer_datagrams: u64,
    /// UDP payload bytes of those.
    pub outer_bytes: u64,
    /// The tunnel's counters (payload bytes in and out).
    pub tunnel: TunnelStats,
    /// FEC: lost packets of the peer rebuilt here.
    pub recovered: u64,
    /// FEC: repair bytes sent.
    pub repair_bytes: u64,
    /// FEC: QUIC packets sent as source symbols.
    pub source_packets: u64,
    /// FEC: bytes of those QUIC packets.
    pub source_bytes: u64,
    /// FEC: QUIC packets sent unprotected.
    pub plain_packets: u64,
    /// FEC: repair packets sent.
    pub repair_packets: u64,
    /// FEC: receiver reports sent.
    pub feedback_sent: u64,
}

/// What a stream through an in-process tunnel measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct TunnelReport {
    /// Loss and latency.
    pub stream: StreamReport,
    /// The client end (sends the stream, receives the echoes).
    pub client: EndReport,
    /// The server end (forwards to the echo, sends the echoes back).
    pub server: EndReport,
    /// What quinn saw at the client end over the stream.
    pub client_quic: QuicReport,
}

/// quinn's view of one end's connection over the stream: its own loss
/// detection (what FEC did not hide in time) and its congestion state.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct QuicReport {
    /// QUIC packets sent.
    pub sent_packets: u64,
    /// Packets quinn declared lost.
    pub lost_packets: u64,
    /// Congestion events (window reductions).
    pub congestion_events: u64,
    /// Congestion window at the end, bytes.
    pub cwnd: u64,
    /// Smoothed RTT at the end, microseconds.
    pub rtt_us: u64,
}

impl QuicReport {
    fn between(before: &quinn::ConnectionStats, after: &quinn::ConnectionStats) -> Self {
        QuicReport {
            sent_packets: after.path.sent_packets - before.path.sent_packets,
            lost_packets: after.path.lost_packets - before.path.lost_packets,
            congestion_events: after.path.congestion_events - before.path.congestion_events,
            cwnd: after.path.cwnd,
            rtt_us: u64::try_from(after.path.rtt.as_micros()).unwrap_or(u64::MAX),
        }
    }
}

impl TunnelReport {
    /// Outer bytes of both ends per payload byte that entered the tunnel
    /// at either end.
    pub fn outer_per_payload(&self) -> f64 {
        let outer = self.client.outer_bytes + self.server.outer_bytes;
        let payload = self.client.tunnel.tunnelled_bytes + self.server.tunnel.tunnelled_bytes;
        if payload == 0 {
            0.0
        } else {
            outer as f64 / payload as f64
        }
    }
}

fn end_report(
    socket: (SocketStats, SocketStats),
    tunnel: (TunnelStats, TunnelStats),
    fec: (LayerStats, LayerStats),
) -> EndReport {
    let (before, after) = tunnel;
    EndReport {
        outer_datagrams: socket.1.sent_datagrams - socket.0.sent_datagrams,
        outer_bytes: socket.1.sent_bytes - socket.0.sent_bytes,
        tunnel: TunnelStats {
            tunnelled: after.tunnelled - before.tunnelled,
            tunnelled_bytes: after.tunnelled_bytes - before.tunnelled_bytes,
            delivered: after.delivered - before.delivered,
            delivered_bytes: after.delivered_bytes - before.delivered_bytes,
            ..after
        },
        recovered: fec.1.recovered - fec.0.recovered,
        repair_bytes: fec.1.repair_bytes - fec.0.repair_bytes,
        source_packets: fec.1.source_packets - fec.0.source_packets,
        source_bytes: fec.1.source_bytes - fec.0.source_bytes,
        plain_packets: fec.1.plain_packets - fec.0.plain_packets,
        repair_packets: fec.1.repair_packets - fec.0.repair_packets,
        feedback_sent: fec.1.feedback_sent - fec.0.feedback_sent,
    }
}

/// Runs a tunnel server and client over loopback in this process, with an
/// echo behind the server, and measures `stream` through it.
pub async fn run_tunnel(setup: &TunnelSetup, stream: StreamConfig) -> Result<TunnelReport> {
    let epoch = Instant::now();
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let echo = Echo::start(loopback, epoch)?;
    let identity = Identity::self_signed(&["localhost"])?;
    let cache_dir = std::env::temp_dir().join(format!(
        "pquic-tunnel-probe-{}-{}",
        std::process::id(),
        epoch.elapsed().as_nanos()
    ));
    let fec = setup
        .plugin
        .as_deref()
        .map(|name| FecSetup::named(name, &cache_dir))
        .transpose()?;
    let mut builder = ServerBuilder::new(loopback.to_string());
    builder.identity(identity.clone()).alpn(TUNNEL_ALPN);
    let mut client = ClientBuilder::new();
    client.roots(identity.roots()?).alpn(TUNNEL_ALPN);
    match fec {
        Some(fec) => {
            builder.offer(fec.server.offer, fec.server.plugin);
            if let Some(cache) = fec.client.cache {
                client.plugins(cache, fec.client.trust);
            }
            client.fec(FecMode::Required);
        }
        None => {
            builder.fec(FecMode::Off);
            client.fec(FecMode::Off);
        }
    }
    if let Some(bytes) = setup.min_mtu {
        builder.min_mtu(bytes);
        client.min_mtu(bytes);
    }
    builder.congestion(setup.congestion);
    client.congestion(setup.congestion);
    if let Some(impairment) = &setup.server_impairment {
        builder.impairment(impairment.clone());
    }
    if let Some(impairment) = &setup.client_impairment {
        client.impairment(impairment.clone());
    }
    let server = Arc::new(builder.bind_addr(loopback)?);
    let server_counters = Arc::new(Counters::default());
    let serving = tokio::spawn(udp::serve(
        server.clone(),
        echo.addr(),
        setup.flows,
        server_counters.clone(),
    ));
    let outcome = async {
        let connection = client.connect(&server.local_addr().to_string()).await?;
        let udp_socket = udp::bind_udp(loopback)?;
        let udp_addr = udp_socket.local_addr().map_err(|source| Error::Socket {
            addr: loopback,
            source,
        })?;
        let client_counters = Arc::new(Counters::default());
        let running = tokio::spawn(udp::run_client(
            connection.connection.clone(),
            udp_socket,
            setup.flows,
            client_counters.clone(),
        ));
        let snapshot = || {
            (
                connection.fec.socket().socket_stats(),
                server.socket().socket_stats(),
                client_counters.snapshot(),
                server_counters.snapshot(),
                connection.fec.stats(),
                server.socket().total_stats(),
                connection.connection.stats(),
            )
        };
        // Path MTU discovery raises quinn's datagram limit from its
        // 1200-byte start within a few round trips; the stream measures
        // the steady state (what does not fit is counted as too large).
        let needed = stream.size.max(MIN_SIZE) + super::MAX_HEADER_LEN;
        let settle = Instant::now() + MTU_SETTLE;
        while connection.connection.max_datagram_size().unwrap_or(0) < needed
            && Instant::now() < settle
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let before = snapshot();
        let report = tokio::task::spawn_blocking({
            let echo_ref = echo;
            move || run_stream(udp_addr, &echo_ref, stream, epoch)
        })
        .await
        .map_err(|e| Error::Protocol(format!("the probe stream panicked: {e}")))??;
        let after = snapshot();
        running.abort();
        connection.close().await;
        Ok(TunnelReport {
            stream: report,
            client: end_report(
                (before.0, after.0),
                (before.2, after.2),
                (before.4, after.4),
            ),
            server: end_report(
                (before.1, after.1),
                (before.3, after.3),
                (before.5, after.5),
            ),
            client_quic: QuicReport::between(&before.6, &after.6),
        })
    }
    .await;
    server.shutdown().await;
    serving.abort();
    let _ = std::fs::remove_dir_all(&cache_dir);
    outcome
}

/// The same stream straight to an echo, no tunnel: the latency baseline.
pub async fn run_baseline(stream: StreamConfig) -> Result<StreamReport> {
    tokio::task::spawn_blocking(move || {
        let epoch = Instant::now();
        let echo = Echo::start(SocketAddr::from(([127, 0, 0, 1], 0)), epoch)?;
        run_stream(echo.addr(), &echo, stream, epoch)
    })
    .await
    .map_err(|e| Error::Protocol(format!("the probe stream panicked: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_ranks() {
        let latency = Latency::of((1..=100).map(|ms| ms * 1_000_000).collect());
        assert_eq!(latency.p50_ms, 50.0);
        assert_eq!(latency.p99_ms, 99.0);
        assert_eq!(latency.max_ms, 100.0);
        assert_eq!(Latency::of(Vec::new()), Latency::default());
    }

    #[test]
    fn the_baseline_stream_reaches_the_echo_and_comes_back() {
        let epoch = Instant::now();
        let echo = Echo::start(SocketAddr::from(([127, 0, 0, 1], 0)), epoch).expect("echo");
        let config = StreamConfig {
            rate: 500.0,
            size: 100,
            duration: Duration::from_millis(200),
            drain: Duration::from_millis(100),
        };
        let report = run_stream(echo.addr(), &echo, config, epoch).expect("stream");
        assert_eq!(report.sent, 100);
        assert_eq!(report.up_delivered, 100);
        assert_eq!(report.down_delivered, 100);
        assert!(report.up.max_ms < 100.0, "{report:?}");
    }
}
