//! `pquic-host relay`: a UDP relay between real processes that impairs both
//! directions with the seeded models of [`crate::impair`]. Each client
//! address gets its own upstream socket, so the server sees one peer per
//! client, as through a NAT; clients idle for [`CLIENT_IDLE`] lose it, and at
//! most [`MAX_CLIENTS`] have one. Counters ([`RelayStats`]) are logged every
//! [`STATS_INTERVAL`] when they changed.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::Mutex;

use crate::endpoint::unspecified_for;
use crate::error::{Error, Result};
use crate::impair::{DelayLine, ImpairConfig, Impairment, Verdict, DELAY_LINE_LIMIT};

struct Held {
    socket: Arc<UdpSocket>,
    to: SocketAddr,
    datagram: Vec<u8>,
}

/// How often the relay logs its counters (when they changed).
pub const STATS_INTERVAL: Duration = Duration::from_secs(10);
/// A client whose upstream socket saw nothing for this long loses it.
pub const CLIENT_IDLE: Duration = Duration::from_secs(120);
/// Most clients with an upstream socket at once; datagrams from further
/// clients are dropped (and counted) until one goes idle.
pub const MAX_CLIENTS: usize = 1024;

/// Counters of a running relay, shared with whoever started it.
#[derive(Debug, Clone, Default)]
pub struct RelayStats(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    clients: AtomicU64,
    up_received: AtomicU64,
    up_forwarded: AtomicU64,
    down_received: AtomicU64,
    down_forwarded: AtomicU64,
    refused: AtomicU64,
}

/// A snapshot of [`RelayStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelaySnapshot {
    /// Clients with an upstream socket now.
    pub clients: u64,
    /// Datagrams from clients.
    pub up_received: u64,
    /// ... of which forwarded to the server (the rest the impairment or the
    /// delay line's bound dropped).
    pub up_forwarded: u64,
    /// Datagrams from the server.
    pub down_received: u64,
    /// ... of which forwarded to their client.
    pub down_forwarded: u64,
    /// Datagrams dropped because the client table was full.
    pub refused: u64,
}

impl std::fmt::Display for RelaySnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dropped = |received: u64, forwarded: u64| received.saturating_sub(forwarded);
        write!(
            f,
            "{} client(s); to server {} forwarded, {} dropped; to clients {} forwarded, {} dropped; {} refused (client table full)",
            self.clients,
            self.up_forwarded,
            dropped(self.up_received, self.up_forwarded),
            self.down_forwarded,
            dropped(self.down_received, self.down_forwarded),
            self.refused,
        )
    }
}

impl RelayStats {
    /// The counters now.
    pub fn snapshot(&self) -> RelaySnapshot {
        let c = &self.0;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RelaySnapshot {
            clients: load(&c.clients),
            up_received: load(&c.up_received),
            up_forwarded: load(&c.up_forwarded),
            down_received: load(&c.down_received),
            down_forwarded: load(&c.down_forwarded),
            refused: load(&c.refused),
        }
    }
}

/// Runs the relay until the task is dropped. `config` applies to each
/// direction; the directions use seeds `seed` and `seed + 1`.
pub async fn run(
    listen: SocketAddr,
    to: SocketAddr,
    config: ImpairConfig,
    seed: u64,
) -> Result<()> {
    run_with_stats(listen, to, config, seed, RelayStats::default()).await
}

/// [`run`], counting into `stats` and logging them every
/// [`STATS_INTERVAL`].
pub async fn run_with_stats(
    listen: SocketAddr,
    to: SocketAddr,
    config: ImpairConfig,
    seed: u64,
    stats: RelayStats,
) -> Result<()> {
    let bind = |addr: SocketAddr| async move {
        UdpSocket::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })
    };
    let front = Arc::new(bind(listen).await?);
    let local = front.local_addr().unwrap_or(listen);
    tracing::info!("relay {local} -> {to}");
    let upstream_path = Arc::new(Mutex::new(Impairment::new(config.clone(), seed)));
    let downstream_path = Arc::new(Mutex::new(Impairment::new(config, seed.wrapping_add(1))));
    let line: Arc<Mutex<DelayLine<Held>>> = Arc::new(Mutex::new(DelayLine::new()));
    let wake = Arc::new(tokio::sync::Notify::new());
    tokio::spawn(release(line.clone(), wake.clone()));
    let mut upstreams: HashMap<SocketAddr, Upstream> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    let mut next_report = Instant::now() + STATS_INTERVAL;
    let mut reported = RelaySnapshot::default();
    loop {
        let now = Instant::now();
        if now >= next_report {
            next_report = now + STATS_INTERVAL;
            // Clients gone quiet lose their upstream socket (and its task).
            upstreams.retain(|client, upstream| {
                let idle = now.duration_since(last_seen(&upstream.last)) > CLIENT_IDLE;
                if idle {
                    upstream.task.abort();
                    tracing::info!("relay: client {client} idle, upstream closed");
                }
                !idle
            });
            stats
                .0
                .clients
                .store(upstreams.len() as u64, Ordering::Relaxed);
            let snapshot = stats.snapshot();
            if snapshot != reported {
                tracing::info!("relay: {snapshot}");
                reported = snapshot;
            }
        }
        let (len, client) = match front.recv_from(&mut buf).await {
            Ok(received) => received,
            // An ICMP error of an earlier send: that datagram is lost, the
            // relay goes on.
            Err(e) => {
                tracing::debug!("relay receive on {local}: {e}");
                continue;
            }
        };
        stats.0.up_received.fetch_add(1, Ordering::Relaxed);
        let upstream = match upstreams.get(&client) {
            Some(u) => {
                *u.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
                u.socket.clone()
            }
            None if upstreams.len() >= MAX_CLIENTS => {
                stats.0.refused.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            None => {
                // The unspecified address of the server's family: the
                // kernel picks the interface that routes there.
                let socket = Arc::new(bind(unspecified_for(to)).await?);
                tracing::info!("relay: new client {client}");
                let last = Arc::new(std::sync::Mutex::new(Instant::now()));
                let task = tokio::spawn(pump_back(
                    socket.clone(),
                    front.clone(),
                    client,
                    Downstream {
                        path: downstream_path.clone(),
                        line: line.clone(),
                        wake: wake.clone(),
                        stats: stats.clone(),
                        last: last.clone(),
                    },
                ));
                upstreams.insert(
                    client,
                    Upstream {
                        socket: socket.clone(),
                        last,
                        task,
                    },
                );
                stats
                    .0
                    .clients
                    .store(upstreams.len() as u64, Ordering::Relaxed);
                socket
            }
        };
        if hold(&upstream_path, &line, &wake, upstream, to, &buf[..len]).await {
            stats.0.up_forwarded.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn hold(
    path: &Mutex<Impairment>,
    line: &Mutex<DelayLine<Held>>,
    wake: &tokio::sync::Notify,
    socket: Arc<UdpSocket>,
    to: SocketAddr,
    datagram: &[u8],
) -> bool {
    let now = Instant::now();
    // A datagram of a flood the line cannot hold is dropped before the
    // impairment sees it, as in the socket: memory stays bounded even on a
    // path without a rate limit (whose queue limit would otherwise apply).
    if line.lock().await.len() >= DELAY_LINE_LIMIT {
        return false;
    }
    let Verdict::Deliver { at } = path.lock().await.offer(now, datagram.len()) else {
        return false;
    };
    line.lock().await.push(
        at,
        Held {
            socket,
            to,
            datagram: datagram.to_vec(),
        },
    );
    wake.notify_one();
    true
}

/// A client's upstream socket, when it last sent or received, and the task
/// pumping the server's answers back.
struct Upstream {
    socket: Arc<UdpSocket>,
    last: Arc<std::sync::Mutex<Instant>>,
    task: tokio::task::JoinHandle<()>,
}

fn last_seen(last: &std::sync::Mutex<Instant>) -> Instant {
    *last.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the server-to-client direction shares.
struct Downstream {
    path: Arc<Mutex<Impairment>>,
    line: Arc<Mutex<DelayLine<Held>>>,
    wake: Arc<tokio::sync::Notify>,
    stats: RelayStats,
    last: Arc<std::sync::Mutex<Instant>>,
}

async fn pump_back(
    upstream: Arc<UdpSocket>,
    front: Arc<UdpSocket>,
    client: SocketAddr,
    down: Downstream,
) {
    let mut buf = vec![0u8; 65536];
    while let Ok(len) = upstream.recv(&mut buf).await {
        down.stats.0.down_received.fetch_add(1, Ordering::Relaxed);
        *down.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        let datagram = &buf[..len];
        if hold(
            &down.path,
            &down.line,
            &down.wake,
            front.clone(),
            client,
            datagram,
        )
        .await
        {
            down.stats.0.down_forwarded.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn release(line: Arc<Mutex<DelayLine<Held>>>, wake: Arc<tokio::sync::Notify>) {
    loop {
        let next = {
            let mut line = line.lock().await;
            let now = Instant::now();
            while let Some(held) = line.pop_due(now) {
                let _ = held.socket.try_send_to(&held.datagram, held.to);
            }
            line.next_arrival()
        };
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at.into()) => {}
                    () = wake.notified() => {}
                }
            }
            None => wake.notified().await,
        }
    }
}
