//! `pquic-host relay`: a UDP relay between real processes that impairs both
//! directions with the seeded models of [`crate::impair`]. Each client
//! address gets its own upstream socket, so the server sees one peer per
//! client, as through a NAT.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

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

/// Runs the relay until the task is dropped. `config` applies to each
/// direction; the directions use seeds `seed` and `seed + 1`.
pub async fn run(
    listen: SocketAddr,
    to: SocketAddr,
    config: ImpairConfig,
    seed: u64,
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
    let mut upstreams: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let (len, client) = match front.recv_from(&mut buf).await {
            Ok(received) => received,
            // An ICMP error of an earlier send: that datagram is lost, the
            // relay goes on.
            Err(e) => {
                tracing::debug!("relay receive on {local}: {e}");
                continue;
            }
        };
        let upstream = match upstreams.get(&client) {
            Some(u) => u.clone(),
            None => {
                // The unspecified address of the server's family: the
                // kernel picks the interface that routes there.
                let socket = Arc::new(bind(unspecified_for(to)).await?);
                upstreams.insert(client, socket.clone());
                tokio::spawn(pump_back(
                    socket.clone(),
                    front.clone(),
                    client,
                    downstream_path.clone(),
                    line.clone(),
                    wake.clone(),
                ));
                socket
            }
        };
        hold(&upstream_path, &line, &wake, upstream, to, &buf[..len]).await;
    }
}

async fn hold(
    path: &Mutex<Impairment>,
    line: &Mutex<DelayLine<Held>>,
    wake: &tokio::sync::Notify,
    socket: Arc<UdpSocket>,
    to: SocketAddr,
    datagram: &[u8],
) {
    let now = Instant::now();
    // A datagram of a flood the line cannot hold is dropped before the
    // impairment sees it, as in the socket: memory stays bounded even on a
    // path without a rate limit (whose queue limit would otherwise apply).
    if line.lock().await.len() >= DELAY_LINE_LIMIT {
        return;
    }
    if let Verdict::Deliver { at } = path.lock().await.offer(now, datagram.len()) {
        line.lock().await.push(
            at,
            Held {
                socket,
                to,
                datagram: datagram.to_vec(),
            },
        );
        wake.notify_one();
    }
}

async fn pump_back(
    upstream: Arc<UdpSocket>,
    front: Arc<UdpSocket>,
    client: SocketAddr,
    path: Arc<Mutex<Impairment>>,
    line: Arc<Mutex<DelayLine<Held>>>,
    wake: Arc<tokio::sync::Notify>,
) {
    let mut buf = vec![0u8; 65536];
    while let Ok(len) = upstream.recv(&mut buf).await {
        hold(&path, &line, &wake, front.clone(), client, &buf[..len]).await;
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
