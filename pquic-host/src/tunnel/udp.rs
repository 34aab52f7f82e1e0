//! The tunnel's I/O: UDP sockets and QUIC datagrams around the sans-IO
//! flow tables of [`super`].
//!
//! - [`serve`]: a tunnel server's accept loop; every connection gets
//!   [`serve_connection`], which opens one UDP socket per flow towards the
//!   forward address and sends replies back under the flow's id.
//! - [`run_client`]: a tunnel client's loop between its UDP socket and its
//!   connection.
//!
//! Both run until the connection closes (the server: until its endpoint
//! does) and count what they do in a shared [`Counters`].

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use quinn::{ConnectionError, SendDatagramError};
use tokio::net::UdpSocket;

use super::{
    encode_header, split, worth_logging, ClientFlows, Counters, FlowConfig, FlowId, FlowTable,
    Outgoing, MAX_HEADER_LEN,
};
use crate::builder::FecServer;
use crate::endpoint::unspecified_for;
use crate::error::{Error, Result};

/// Largest UDP payload (IPv4: 65535 - 8 - 20); a receive buffer of this
/// size never cuts a datagram.
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// How often idle flows are looked for.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(1);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why a connection ended: a close by either application is a normal end.
pub(super) fn ended(error: ConnectionError) -> Result<()> {
    match error {
        ConnectionError::ApplicationClosed(_) | ConnectionError::LocallyClosed => Ok(()),
        other => Err(Error::Connection(other)),
    }
}

/// Frames `payload` for flow `id` and sends it as one QUIC datagram; an
/// error only when the connection cannot carry datagrams at all.
pub(super) fn send_framed(
    connection: &quinn::Connection,
    counters: &Counters,
    id: FlowId,
    payload: &[u8],
    from: SocketAddr,
) -> Result<()> {
    let mut datagram = Vec::with_capacity(MAX_HEADER_LEN + payload.len());
    encode_header(id, &mut datagram);
    datagram.extend_from_slice(payload);
    let Some(max) = connection.max_datagram_size() else {
        return Err(Error::Protocol(format!(
            "{} does not accept QUIC datagrams (RFC 9221); no tunnel",
            connection.remote_address()
        )));
    };
    let header = datagram.len() - payload.len();
    let too_large = |counters: &Counters, max: usize| {
        let count = counters.too_large();
        if worth_logging(count) {
            tracing::warn!(
                "datagram of {} bytes from {from} dropped: the tunnel to {} carries at most {} \
                 payload bytes per datagram now ({count} dropped so far)",
                payload.len(),
                connection.remote_address(),
                max.saturating_sub(header),
            );
        }
    };
    if datagram.len() > max {
        too_large(counters, max);
        return Ok(());
    }
    match connection.send_datagram(Bytes::from(datagram)) {
        Ok(()) => {
            counters.tunnelled(payload.len());
            Ok(())
        }
        // The path shrank between the check and the send.
        Err(SendDatagramError::TooLarge) => {
            too_large(counters, connection.max_datagram_size().unwrap_or(0));
            Ok(())
        }
        Err(SendDatagramError::ConnectionLost(e)) => ended(e),
        Err(e) => Err(Error::Protocol(format!(
            "QUIC datagrams to {}: {e}",
            connection.remote_address()
        ))),
    }
}

/// A tunnel server's accept loop: each connection forwards its flows to
/// `forward` until it closes. Returns when the endpoint is closed.
pub async fn serve(
    server: Arc<FecServer>,
    forward: SocketAddr,
    config: FlowConfig,
    counters: Arc<Counters>,
) {
    while let Some(incoming) = server.accept().await {
        let counters = counters.clone();
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            let accepted = match incoming.await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("tunnel connection from {remote}: {e}");
                    return;
                }
            };
            tracing::info!(
                "tunnel for {remote} to {forward}: FEC {:?}",
                accepted.fec.state()
            );
            match serve_connection(accepted.connection, forward, config, counters).await {
                Ok(()) => tracing::info!("tunnel for {remote} closed"),
                Err(e) => tracing::warn!("tunnel for {remote}: {e}"),
            }
        });
    }
}

/// One server-side flow: its socket towards the forward address and the
/// task relaying replies (stopped when the flow is dropped).
#[derive(Debug)]
struct ServerFlow {
    socket: Arc<UdpSocket>,
    replies: tokio::task::JoinHandle<()>,
}

impl Drop for ServerFlow {
    fn drop(&mut self) {
        self.replies.abort();
    }
}

type ServerTable = Arc<Mutex<FlowTable<FlowId, ServerFlow>>>;

fn flow_socket(forward: SocketAddr) -> Result<UdpSocket> {
    let local = unspecified_for(forward);
    let socket = std::net::UdpSocket::bind(local).map_err(|source| Error::Bind {
        addr: local,
        source,
    })?;
    socket
        .connect(forward)
        .and_then(|()| socket.set_nonblocking(true))
        .map_err(|source| Error::Socket {
            addr: forward,
            source,
        })?;
    UdpSocket::from_std(socket).map_err(|source| Error::Socket {
        addr: forward,
        source,
    })
}

/// Serves one tunnel connection: every flow the client opens gets its own
/// UDP socket connected to `forward`. Returns when the connection closes.
pub async fn serve_connection(
    connection: quinn::Connection,
    forward: SocketAddr,
    config: FlowConfig,
    counters: Arc<Counters>,
) -> Result<()> {
    let table: ServerTable = Arc::new(Mutex::new(FlowTable::new(config)));
    let mut expiry = tokio::time::interval(EXPIRY_INTERVAL);
    let outcome = loop {
        let datagram = tokio::select! {
            received = connection.read_datagram() => match received {
                Ok(datagram) => datagram,
                Err(e) => break ended(e),
            },
            _ = expiry.tick() => {
                let expired = lock(&table).expire(Instant::now());
                counters.flows_expired(expired.len());
                continue;
            }
        };
        let Ok((id, payload)) = split(&datagram) else {
            counters.malformed();
            continue;
        };
        let now = Instant::now();
        let existing = lock(&table).touch(&id, now).map(|f| f.socket.clone());
        let socket = match existing {
            Some(socket) => socket,
            None => match open_flow(&connection, &table, &counters, forward, id, now) {
                Some(socket) => socket,
                None => continue,
            },
        };
        match socket.send(payload).await {
            Ok(_) => counters.delivered(payload.len()),
            Err(e) => {
                if worth_logging(counters.udp_error()) {
                    tracing::warn!("send to {forward} (flow {id}): {e}");
                }
            }
        }
    };
    // Closing the flows stops their reply tasks (which hold the table).
    let flows = lock(&table).expire(Instant::now() + config.idle_timeout);
    drop(flows);
    outcome
}

fn open_flow(
    connection: &quinn::Connection,
    table: &ServerTable,
    counters: &Arc<Counters>,
    forward: SocketAddr,
    id: FlowId,
    now: Instant,
) -> Option<Arc<UdpSocket>> {
    let socket = match flow_socket(forward) {
        Ok(socket) => Arc::new(socket),
        Err(e) => {
            if worth_logging(counters.udp_error()) {
                tracing::warn!("flow {id}: {e}");
            }
            return None;
        }
    };
    let replies = tokio::spawn(relay_replies(
        connection.clone(),
        socket.clone(),
        Arc::downgrade(table),
        counters.clone(),
        forward,
        id,
    ));
    let flow = ServerFlow {
        socket: socket.clone(),
        replies,
    };
    let mut flows = lock(table);
    let (inserted, expired) = flows.insert(id, flow, now);
    let inserted = inserted.is_ok();
    let open = flows.len();
    drop(flows);
    counters.flows_expired(expired.len());
    drop(expired);
    match inserted {
        true => {
            counters.flow_opened();
            tracing::debug!("flow {id} from {} opened", connection.remote_address());
            Some(socket)
        }
        false => {
            let count = counters.flow_refused();
            if worth_logging(count) {
                tracing::warn!(
                    "flow {id} from {} refused: {open} flows open, none idle ({count} refused so far)",
                    connection.remote_address(),
                );
            }
            None
        }
    }
}

/// Replies from `forward` on one flow's socket go back into the tunnel.
async fn relay_replies(
    connection: quinn::Connection,
    socket: Arc<UdpSocket>,
    table: std::sync::Weak<Mutex<FlowTable<FlowId, ServerFlow>>>,
    counters: Arc<Counters>,
    forward: SocketAddr,
    id: FlowId,
) {
    let mut buf = vec![0u8; MAX_UDP_PAYLOAD];
    loop {
        let len = match socket.recv(&mut buf).await {
            Ok(len) => len,
            // An ICMP error for an earlier datagram (nothing listens at
            // `forward` yet): the flow stays.
            Err(e) => {
                if worth_logging(counters.udp_error()) {
                    tracing::warn!("receive from {forward} (flow {id}): {e}");
                }
                if e.kind() != std::io::ErrorKind::ConnectionRefused {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                continue;
            }
        };
        let Some(table) = table.upgrade() else {
            return;
        };
        lock(&table).touch(&id, Instant::now());
        if send_framed(&connection, &counters, id, &buf[..len], forward).is_err() {
            return;
        }
    }
}

/// A tunnel client: datagrams arriving at `socket` go into `connection`
/// under their source's flow id, replies go back to that source. Returns
/// when the connection closes.
pub async fn run_client(
    connection: quinn::Connection,
    socket: Arc<UdpSocket>,
    config: FlowConfig,
    counters: Arc<Counters>,
) -> Result<()> {
    let local = socket.local_addr().map_err(|source| Error::Socket {
        addr: unspecified_for(connection.remote_address()),
        source,
    })?;
    let flows = Mutex::new(ClientFlows::new(config));
    let outbound = async {
        let mut buf = vec![0u8; MAX_UDP_PAYLOAD];
        let mut expiry = tokio::time::interval(EXPIRY_INTERVAL);
        loop {
            let (len, source) = tokio::select! {
                received = socket.recv_from(&mut buf) => match received {
                    Ok(received) => received,
                    Err(e) => {
                        if worth_logging(counters.udp_error()) {
                            tracing::warn!("receive on {local}: {e}");
                        }
                        continue;
                    }
                },
                _ = expiry.tick() => {
                    counters.flows_expired(lock(&flows).expire(Instant::now()));
                    continue;
                }
                closed = connection.closed() => return ended(closed),
            };
            let decision = lock(&flows).outgoing(source, Instant::now());
            match decision {
                Outgoing::Flow {
                    id,
                    opened,
                    expired,
                } => {
                    counters.flows_expired(expired);
                    if opened {
                        counters.flow_opened();
                        tracing::debug!("flow {id} for {source} opened");
                    }
                    send_framed(&connection, &counters, id, &buf[..len], source)?;
                }
                Outgoing::Refused => {
                    let count = counters.flow_refused();
                    if worth_logging(count) {
                        tracing::warn!(
                            "datagram from {source} on {local} dropped: {} flows open, none idle \
                             ({count} refused so far)",
                            config.max_flows
                        );
                    }
                }
            }
        }
    };
    let inbound = async {
        loop {
            let datagram = match connection.read_datagram().await {
                Ok(datagram) => datagram,
                Err(e) => return ended(e),
            };
            let Ok((id, payload)) = split(&datagram) else {
                counters.malformed();
                continue;
            };
            let Some(source) = lock(&flows).incoming(id, Instant::now()) else {
                counters.unknown_flow();
                continue;
            };
            match socket.send_to(payload, source).await {
                Ok(_) => counters.delivered(payload.len()),
                Err(e) => {
                    if worth_logging(counters.udp_error()) {
                        tracing::warn!("send to {source} from {local}: {e}");
                    }
                }
            }
        }
    };
    tokio::select! {
        outcome = outbound => outcome,
        outcome = inbound => outcome,
    }
}

/// Binds the client's UDP socket (`--udp-listen`).
pub fn bind_udp(addr: SocketAddr) -> Result<Arc<UdpSocket>> {
    let socket = std::net::UdpSocket::bind(addr).map_err(|source| Error::Bind { addr, source })?;
    socket
        .set_nonblocking(true)
        .map_err(|source| Error::Socket { addr, source })?;
    let socket = UdpSocket::from_std(socket).map_err(|source| Error::Socket { addr, source })?;
    Ok(Arc::new(socket))
}
