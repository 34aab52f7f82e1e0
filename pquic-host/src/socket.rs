//! The one I/O adapter: a quinn [`AsyncUdpSocket`] that runs every datagram
//! of a connection through that connection's [`FecLayer`] and, on the
//! receive side, an optional [`Impairment`], so tests and the demo need no
//! netem.
//!
//! Per-peer state is bounded:
//! - a peer has a layer only once it is a real QUIC connection: the
//!   session installs one after the handshake ([`FecSocketHandle::set_layer`]).
//!   Every other source is pass-through and costs no memory at all: its
//!   QUIC packets go to quinn, anything else is dropped and counted;
//! - at most [`PeerLimits::max_peers`] layers exist (a full table refuses
//!   new ones, after evicting idle peers), and a layer whose peer sent
//!   nothing for [`PeerLimits::idle_timeout`] is evicted; a closed
//!   connection's layer is removed ([`FecSocketHandle::remove_layer`]).
//!   The counters of removed layers are kept in the totals.
//!
//! Locking: each peer's layer has its own mutex, held while its policy
//! (plugin) and decoders run; the peer table and the shared queues (delay
//! line, packets for quinn, datagrams for the wire, timers) have short-held
//! locks of their own, never held while a layer runs; the receive buffers'
//! pool has the shortest lock of all. Lock order: peer before queues before
//! pool; the table is never held together with any of them.
//!
//! I/O is quinn-udp's, batched both ways, so the adapter keeps quinn's GSO
//! and GRO ([`quinn::udp::UdpSocketState`]; where the OS lacks them it reports
//! one segment and every batch is a single datagram):
//! - sending runs in quinn's task ([`AsyncUdpSocket::try_send`]): a peer
//!   without a layer gets quinn's transmit as it is (one `sendmsg`, GSO
//!   intact); a peer with one has each segment of the batch protected, and
//!   the layer's datagrams go out again as GSO batches (runs of equal
//!   sizes, the last one shorter). What the socket refuses waits in a
//!   bounded backlog that the driver task flushes when it is writable;
//! - receiving runs in quinn's task too ([`AsyncUdpSocket::poll_recv`]): one
//!   `recvmmsg` with GRO straight into quinn's buffers. QUIC packets from
//!   peers without a layer stay where the kernel put them; datagrams of
//!   peers with a layer go through it one segment at a time, and what it
//!   hands up (the packet, recoveries) reaches quinn on this or the next
//!   call;
//! - a small driver task runs the layers' timers, the impairment's delay
//!   line (with an impairment every datagram takes the layer path, so each
//!   one meets the loss model), the backlog and eviction.
//!
//! # Paths (multipath)
//!
//! The adapter may own more sockets than quinn's first one
//! ([`FecSocket::bind_paths`]: extra local addresses, each with its own
//! receive-side impairment). quinn still sees one peer address per
//! connection; under it, a peer's layer runs several paths
//! ([`fec_core::layer::paths`]), and the adapter maps each to a socket and
//! a remote address:
//! - path 0 is quinn's: its peer address, from the socket that peer's
//!   packets arrive on (the one whose local IP quinn answers from);
//! - a client opens more with [`FecSocketHandle::open_path`] (a socket of
//!   its own and the server's address for it);
//! - a server learns a client's extra path from the first probe that
//!   arrives from an unknown address: the probe's token names the
//!   connection, and only once its layer finds the probe's tag genuine is
//!   the address mapped to the path (so a spoofer maps nothing);
//! - every datagram a layer makes leaves on the path it chose
//!   ([`FecLayer::routes`]), and what arrives on any path reaches quinn as
//!   from the peer's first address.
//!
//! Path events (opened, validated, failed, abandoned) are logged with the
//! peer's address and counted in [`SocketStats`].

#![forbid(unsafe_code)]
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use quinn::udp::{EcnCodepoint, RecvMeta, Transmit, UdpSocketState};
use quinn::{AsyncUdpSocket, UdpPoller};
use tokio::io::Interest;
use tokio::sync::Notify;

use fec_core::layer::paths::{
    self, PathEvent, PathEventKind, PathId, PathView, MAX_PATHS, TOKEN_LEN,
};
use fec_core::layer::DatagramKind;
use fec_core::pipeline::BufferPool;

use crate::impair::{DelayLine, ImpairStats, Impairment, Verdict, DELAY_LINE_LIMIT};
use crate::layer::{is_quic, FecLayer, LayerStats};

/// Most datagrams waiting for the socket to become writable; beyond this the
/// adapter reports `WouldBlock` to quinn, which then waits for the socket.
const OUTGOING_BACKLOG: usize = 1024;
/// Most packets waiting for quinn to read them; beyond this they are dropped
/// (as a full socket buffer would).
const INCOMING_BACKLOG: usize = 4096;
/// Receive buffers kept for reuse at most (about 180 KiB of full-size
/// datagrams).
const SPARE_BUFFERS: usize = 128;
/// Most bytes of one GSO batch (the kernel's limit for a UDP datagram).
const MAX_GSO_BYTES: usize = 65_000;
/// How often the driver looks for idle peers.
const EVICTION_INTERVAL: Duration = Duration::from_secs(1);

/// Bounds of the peer table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerLimits {
    /// Most peers with a layer at once.
    pub max_peers: usize,
    /// A layer whose peer sent nothing for this long is evicted (quinn's
    /// keep-alive, every 2 s, keeps live connections well inside it).
    pub idle_timeout: Duration,
}

impl Default for PeerLimits {
    fn default() -> Self {
        PeerLimits {
            max_peers: 4096,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// One peer's FEC state, as [`FecSocketHandle::peer_fec`] reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerFec {
    /// True while this end protects what it sends to the peer.
    pub protecting: bool,
    /// Why protection stopped (a faulting plugin), if it did.
    pub failure: Option<String>,
    /// The layer's counters.
    pub stats: LayerStats,
}

/// Counters of the adapter itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketStats {
    /// Peers with a layer now.
    pub peers: usize,
    /// Layers installed so far.
    pub installed: u64,
    /// Layers removed because their connection closed.
    pub removed: u64,
    /// Layers evicted because their peer went idle.
    pub evicted: u64,
    /// Layers refused because the table was full.
    pub refused: u64,
    /// Datagrams that were not QUIC from peers without a layer (dropped:
    /// nothing here decodes them).
    pub unrouted: u64,
    /// Packets dropped because quinn did not read them fast enough, or the
    /// delay line was full.
    pub incoming_drops: u64,
    /// Datagrams the socket put on the wire (QUIC packets, FEC source,
    /// repair and feedback datagrams: everything, after the layer).
    pub sent_datagrams: u64,
    /// UDP payload bytes of those datagrams: the outer path's cost.
    pub sent_bytes: u64,
    /// Path events of all layers ([`fec_core::layer::paths`]): opened.
    pub paths_opened: u64,
    /// Paths validated (first answer, or again after failing).
    pub paths_validated: u64,
    /// Paths that went silent.
    pub paths_failed: u64,
    /// Paths silent for too long, no longer probed.
    pub paths_abandoned: u64,
}

/// A packet on its way to quinn, with what the socket said about it.
struct Arrival {
    from: SocketAddr,
    dst_ip: Option<IpAddr>,
    ecn: Option<EcnCodepoint>,
    packet: Bytes,
}

/// Where a peer's datagrams leave from, and how they are marked: what quinn
/// last asked for on this path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Route {
    src_ip: Option<IpAddr>,
    ecn: Option<EcnCodepoint>,
}

/// A peer's entry, its quinn address, and the path something arrived on.
type Sender = (Arc<Peer>, SocketAddr, PathId);

/// Where a datagram goes: from which of the adapter's sockets, to where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dest {
    socket: usize,
    to: SocketAddr,
    route: Route,
}

struct PeerState {
    layer: Box<dyn FecLayer>,
    /// The deadline last put in the timer heap, if still ahead.
    armed: Option<Instant>,
    /// Lent to the layer as its output vectors.
    out: Vec<Bytes>,
    /// The path of each datagram in `out` noted so far.
    out_paths: Vec<PathId>,
    to_quinn: Vec<Bytes>,
    /// Path 0: quinn's route to the peer, from socket `home`.
    route: Route,
    home: usize,
    /// Local address quinn's packets from the peer arrive at (path 0).
    local_ip: Option<IpAddr>,
    /// Where the other paths lead.
    dests: [Option<Dest>; MAX_PATHS],
    /// Where GSO batches are assembled.
    batch: Vec<u8>,
}

impl PeerState {
    fn new(layer: Box<dyn FecLayer>) -> Self {
        PeerState {
            layer,
            armed: None,
            out: Vec::new(),
            out_paths: Vec::new(),
            to_quinn: Vec::new(),
            route: Route::default(),
            home: 0,
            local_ip: None,
            dests: [None; MAX_PATHS],
            batch: Vec::new(),
        }
    }

    /// Notes the paths of what the layer's last call pushed into `out`.
    fn note_routes(&mut self) {
        let new = self.out.len().saturating_sub(self.out_paths.len());
        let routes = self.layer.routes();
        let known = &routes[routes.len().saturating_sub(new)..];
        self.out_paths.extend_from_slice(known);
        self.out_paths.resize(self.out.len(), 0);
    }

    fn dest(&self, peer: SocketAddr, path: PathId) -> Dest {
        let first = Dest {
            socket: self.home,
            to: peer,
            route: self.route,
        };
        match path {
            0 => first,
            p => self
                .dests
                .get(usize::from(p))
                .copied()
                .flatten()
                .unwrap_or(first),
        }
    }
}

struct Peer {
    generation: u64,
    /// Microseconds since the socket's epoch of the last datagram received.
    last_active: AtomicU64,
    state: Mutex<PeerState>,
}

impl Peer {
    fn lock(&self) -> MutexGuard<'_, PeerState> {
        // A panic in a layer leaves plain data behind; keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Default)]
struct Table {
    peers: HashMap<SocketAddr, Arc<Peer>>,
    /// Extra paths: (socket, remote address) to (peer, path).
    aliases: HashMap<(usize, SocketAddr), (SocketAddr, PathId)>,
    /// Path tokens of keyed layers' peers, to their peer address.
    tokens: HashMap<[u8; TOKEN_LEN], SocketAddr>,
    /// Each peer's entries in `aliases` (by path) and `tokens`, so that
    /// forgetting a peer touches only its own.
    paths_of: HashMap<SocketAddr, PeerPaths>,
    next_generation: u64,
    /// Counters of layers removed or evicted.
    retired: LayerStats,
    stats: SocketStats,
}

/// A peer's keys in [`Table::aliases`] and [`Table::tokens`].
#[derive(Default)]
struct PeerPaths {
    aliases: [Option<(usize, SocketAddr)>; MAX_PATHS],
    token: Option<[u8; TOKEN_LEN]>,
}

impl Table {
    /// Drops the paths and token of `peer` (its layer is gone).
    fn forget(&mut self, peer: SocketAddr) {
        let Some(known) = self.paths_of.remove(&peer) else {
            return;
        };
        for key in known.aliases.into_iter().flatten() {
            self.aliases.remove(&key);
        }
        if let Some(token) = known.token {
            self.tokens.remove(&token);
        }
    }

    /// Path `path` of `peer` is reached at `key` (socket, remote) from now
    /// on, instead of wherever it was.
    fn alias(&mut self, peer: SocketAddr, path: PathId, key: (usize, SocketAddr)) {
        let known = self.paths_of.entry(peer).or_default();
        let Some(slot) = known.aliases.get_mut(usize::from(path)) else {
            return;
        };
        if let Some(old) = slot.replace(key) {
            self.aliases.remove(&old);
        }
        // A key another peer's path had moves to this one.
        if let Some((other, other_path)) = self.aliases.insert(key, (peer, path)) {
            if (other, other_path) != (peer, path) {
                if let Some(slot) = self
                    .paths_of
                    .get_mut(&other)
                    .and_then(|k| k.aliases.get_mut(usize::from(other_path)))
                {
                    *slot = None;
                }
            }
        }
    }

    fn set_token(&mut self, peer: SocketAddr, token: [u8; TOKEN_LEN]) {
        if let Some(other) = self.tokens.insert(token, peer) {
            if let Some(known) = self.paths_of.get_mut(&other) {
                known.token = None;
            }
        }
        self.paths_of.entry(peer).or_default().token = Some(token);
    }
}

struct Queues {
    /// Receive-side impairment of each socket.
    impairments: Vec<Option<Impairment>>,
    arriving: DelayLine<(usize, RecvMeta, Bytes)>,
    to_quinn: VecDeque<Arrival>,
    /// Datagrams the socket refused, oldest first, with where they go.
    backlog: VecDeque<(Dest, Bytes)>,
    /// Layer deadlines: (when, peer, generation). Stale entries are checked
    /// and dropped when they come due.
    timers: BinaryHeap<Reverse<(Instant, SocketAddr, u64)>>,
    recv_waker: Option<Waker>,
    driver_deadline: Option<Instant>,
    unrouted: u64,
    incoming_drops: u64,
}

impl Queues {
    fn deliver(&mut self, arrival: Arrival) {
        if self.to_quinn.len() < INCOMING_BACKLOG {
            self.to_quinn.push_back(arrival);
        } else {
            self.incoming_drops += 1;
        }
    }

    fn wake_receiver(&mut self) {
        if !self.to_quinn.is_empty() {
            if let Some(waker) = self.recv_waker.take() {
                waker.wake();
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let timer = self.timers.peek().map(|Reverse((at, _, _))| *at);
        timer.into_iter().chain(self.arriving.next_arrival()).min()
    }
}

/// One of the adapter's sockets.
struct Io {
    io: tokio::net::UdpSocket,
    udp: UdpSocketState,
    /// Its local address, as bound.
    local: SocketAddr,
    /// True when its received datagrams meet an impairment (fixed at bind).
    impaired: bool,
    /// Emulated link cut ([`FecSocketHandle::set_down`]): nothing leaves,
    /// what arrives is dropped.
    down: std::sync::atomic::AtomicBool,
}

struct Shared {
    /// quinn's socket first, then the extra paths' ones.
    sockets: Vec<Io>,
    epoch: Instant,
    limits: PeerLimits,
    table: Mutex<Table>,
    queues: Mutex<Queues>,
    /// Buffers of datagrams quinn has taken, for the next arrivals:
    /// receiving allocates nothing per datagram in steady state. Only
    /// quinn's receive call and the driver use it.
    spare: Mutex<BufferPool>,
    /// The backlog's length, readable without the queues' lock (written
    /// under it).
    backlogged: AtomicUsize,
    wake_driver: Notify,
    /// What went on the wire: datagrams, bytes.
    sent: (AtomicU64, AtomicU64),
    /// Path events: opened, validated, failed, abandoned.
    path_events: [AtomicU64; 4],
    /// Where the next receive call starts looking.
    next_socket: AtomicUsize,
}

/// How many datagrams of `datagrams` (from the first) make one GSO batch of
/// at most `max_segments`: equal lengths, the last one possibly shorter.
fn batch_len(datagrams: &[Bytes], max_segments: usize) -> usize {
    let Some(first) = datagrams.first() else {
        return 0;
    };
    let size = first.len();
    let mut total = size;
    let mut count = 1;
    while count < datagrams.len().min(max_segments) && size > 0 {
        let next = datagrams[count].len();
        if next > size || next == 0 || total + next > MAX_GSO_BYTES {
            break;
        }
        total += next;
        count += 1;
        if next < size {
            break;
        }
    }
    count
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn queues(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn spare(&self) -> MutexGuard<'_, BufferPool> {
        self.spare.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn note_backlog(&self, queues: &Queues) {
        self.backlogged
            .store(queues.backlog.len(), Ordering::Relaxed);
    }

    fn peer(&self, addr: SocketAddr) -> Option<Arc<Peer>> {
        self.table().peers.get(&addr).cloned()
    }

    fn micros(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_micros() as u64
    }

    /// The socket quinn's packets from local address `ip` arrived on (the
    /// first when none is bound to it).
    fn socket_for(&self, ip: Option<IpAddr>) -> usize {
        let Some(ip) = ip.filter(|_| self.sockets.len() > 1) else {
            return 0;
        };
        self.sockets
            .iter()
            .position(|s| s.local.ip() == ip)
            .unwrap_or(0)
    }

    /// One `sendmsg` of `transmit` on socket `socket`; `WouldBlock` clears
    /// tokio's readiness so that the writable poll waits for the socket.
    fn send_transmit(&self, socket: usize, transmit: &Transmit<'_>) -> io::Result<()> {
        let Io { io, udp, down, .. } = &self.sockets[socket.min(self.sockets.len() - 1)];
        if down.load(Ordering::Relaxed) {
            // The link is cut: the datagram is lost, as on a dead link.
            return Ok(());
        }
        io.try_io(Interest::WRITABLE, || udp.send(io.into(), transmit))?;
        let len = transmit.contents.len();
        let segment = transmit.segment_size.unwrap_or(len).max(1);
        self.sent
            .0
            .fetch_add(len.div_ceil(segment) as u64, Ordering::Relaxed);
        self.sent.1.fetch_add(len as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Sends `datagrams` to `to` as GSO batches; how many went out (fewer
    /// than all only when the socket would block). Errors other than
    /// `WouldBlock` lose the batch, as a network would (quinn-udp logs them).
    fn send_batches(&self, dest: Dest, datagrams: &[Bytes], batch: &mut Vec<u8>) -> usize {
        let Dest { socket, to, route } = dest;
        let max_segments = self.max_segments(socket);
        let mut sent = 0;
        while sent < datagrams.len() {
            let count = batch_len(&datagrams[sent..], max_segments);
            let run = &datagrams[sent..sent + count];
            let contents: &[u8] = if count == 1 {
                &run[0]
            } else {
                batch.clear();
                for datagram in run {
                    batch.extend_from_slice(datagram);
                }
                batch
            };
            let transmit = Transmit {
                destination: to,
                ecn: route.ecn,
                contents,
                segment_size: (count > 1).then_some(run[0].len()),
                src_ip: route.src_ip,
            };
            match self.send_transmit(socket, &transmit) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return sent,
                Err(e) => tracing::debug!("send to {to} failed: {e}"),
                Ok(()) => {}
            }
            sent += count;
        }
        sent
    }

    fn max_segments(&self, socket: usize) -> usize {
        self.sockets
            .get(socket)
            .map_or(1, |s| s.udp.max_gso_segments().max(1))
    }

    /// Sends datagrams for `dest`, behind anything already waiting (order
    /// kept); what the socket refuses waits in the backlog. What went out
    /// stays in `out`, for the layer to reuse.
    fn send_out(&self, dest: Dest, out: &mut Vec<Bytes>, batch: &mut Vec<u8>) {
        if out.is_empty() {
            return;
        }
        // The equal-sized packets of a quinn transmit stay one GSO batch:
        // the layer's own datagrams among them (repairs, reports) go
        // after them (a stable sort, so each group keeps its order). A
        // repair is then at most one transmit late: quinn sends at most
        // 10 segments per transmit, fewer than the blocks a block code's
        // receiver keeps open (16), and a probe waits behind them alike.
        out.sort_by_key(|datagram| !DatagramKind::carries_adu(datagram));
        let waiting = self.backlogged.load(Ordering::Relaxed) > 0;
        let sent = if waiting {
            0
        } else {
            self.send_batches(dest, out, batch)
        };
        if sent < out.len() {
            let mut queues = self.queues();
            queues.backlog.extend(out.drain(sent..).map(|d| (dest, d)));
            self.note_backlog(&queues);
            drop(queues);
            self.wake_driver.notify_one();
        }
    }

    /// Sends what a peer's layer produced, each datagram on its path.
    fn send_routed(&self, peer: SocketAddr, state: &mut PeerState) {
        state.note_routes();
        if state.out_paths.iter().all(|&p| p == 0) {
            let dest = state.dest(peer, 0);
            self.send_out(dest, &mut state.out, &mut state.batch);
            state.out_paths.clear();
            for datagram in state.out.drain(..) {
                state.layer.recycle(datagram);
            }
            return;
        }
        // Per path, in order; paths are independent of each other.
        let mut runs: Vec<(Dest, Vec<Bytes>)> = Vec::new();
        let dests: Vec<Dest> = state
            .out_paths
            .iter()
            .map(|&path| state.dest(peer, path))
            .collect();
        state.out_paths.clear();
        for (datagram, dest) in state.out.drain(..).zip(dests) {
            match runs.iter_mut().find(|(d, _)| *d == dest) {
                Some((_, run)) => run.push(datagram),
                None => runs.push((dest, vec![datagram])),
            }
        }
        for (dest, mut run) in runs {
            self.send_out(dest, &mut run, &mut state.batch);
            for datagram in run {
                state.layer.recycle(datagram);
            }
        }
    }

    /// Sends the backlog until the socket would block; true when it is empty.
    fn flush_backlog(&self, batch: &mut Vec<u8>) -> bool {
        let mut run = Vec::new();
        loop {
            let dest = {
                let mut queues = self.queues();
                let Some(&(dest, _)) = queues.backlog.front() else {
                    return true;
                };
                let max = self.max_segments(dest.socket);
                while run.len() < max {
                    match queues.backlog.front() {
                        Some((d, _)) if d.to == dest.to && d.socket == dest.socket => {
                            if let Some((_, d)) = queues.backlog.pop_front() {
                                run.push(d);
                            }
                        }
                        _ => break,
                    }
                }
                self.note_backlog(&queues);
                dest
            };
            let sent = self.send_batches(dest, &run, batch);
            if sent < run.len() {
                let mut queues = self.queues();
                for datagram in run.drain(sent..).rev() {
                    queues.backlog.push_front((dest, datagram));
                }
                self.note_backlog(&queues);
                return false;
            }
            run.clear();
        }
    }

    /// Logs and counts the path events of `peer`'s layer.
    fn path_events(&self, peer: SocketAddr, state: &mut PeerState) {
        while let Some(PathEvent { path, kind }) = state.layer.take_path_event() {
            let (index, what) = match kind {
                PathEventKind::Opened => (0, "opened"),
                PathEventKind::Validated => (1, "validated"),
                PathEventKind::Failed => (2, "failed"),
                PathEventKind::Abandoned => (3, "abandoned"),
            };
            self.path_events[index].fetch_add(1, Ordering::Relaxed);
            let dest = state.dest(peer, path);
            tracing::info!(
                "path {path} of {peer} ({} -> {}) {what}",
                self.sockets
                    .get(dest.socket)
                    .map_or_else(|| "?".to_string(), |s| s.local.to_string()),
                dest.to
            );
        }
    }

    /// Moves what a peer's layer produced on: packets to quinn, datagrams to
    /// the wire; arms its timer. Called with the peer locked (lock order:
    /// peer, then queues).
    fn drain_peer(&self, addr: SocketAddr, peer: &Peer, state: &mut PeerState) {
        self.send_routed(addr, state);
        self.path_events(addr, state);
        if let Some(at) = state.layer.poll_timeout() {
            // An armed entry stays in the heap until it fires (even when
            // already due), so only an earlier deadline needs a new one.
            if state.armed.is_none_or(|armed| at < armed) {
                state.armed = Some(at);
                let mut queues = self.queues();
                queues.timers.push(Reverse((at, addr, peer.generation)));
                if queues.driver_deadline.is_none_or(|d| at < d) {
                    queues.driver_deadline = Some(at);
                    self.wake_driver.notify_one();
                }
            }
        }
    }

    /// The peer (its layer, its quinn address) and path of what arrives on
    /// `socket` from `addr`: an extra path's alias first, else the peer of
    /// that address on path 0.
    fn lookup(&self, socket: usize, addr: SocketAddr) -> Option<Sender> {
        let table = self.table();
        if let Some(&(peer, path)) = table.aliases.get(&(socket, addr)) {
            return table.peers.get(&peer).map(|p| (p.clone(), peer, path));
        }
        table.peers.get(&addr).map(|p| (p.clone(), addr, 0))
    }

    /// The peer and path a probe from an unknown address claims, by its
    /// token (authenticated by that peer's layer afterwards). Path 0 is
    /// quinn's own: its address is never learnt this way.
    fn lookup_probe(&self, datagram: &[u8]) -> Option<Sender> {
        let (token, path) = paths::peek(datagram).filter(|(_, path)| *path != 0)?;
        let table = self.table();
        let peer = *table.tokens.get(&token)?;
        table.peers.get(&peer).map(|p| (p.clone(), peer, path))
    }

    /// One datagram from `meta.addr` on `socket`, due now: through its
    /// layer (`sender`, if it has one); what goes up is queued for quinn (in
    /// quinn's own receive call nobody needs waking; the driver wakes the
    /// receiver after its delay-line releases).
    fn receive(
        &self,
        now: Instant,
        socket: usize,
        meta: &RecvMeta,
        sender: Option<&Sender>,
        datagram: Bytes,
    ) {
        let probe = match sender {
            Some(_) => None,
            None if !is_quic(&datagram) => self.lookup_probe(&datagram),
            None => None,
        };
        let Some((peer, addr, path)) = sender.or(probe.as_ref()) else {
            let mut queues = self.queues();
            if is_quic(&datagram) {
                queues.deliver(Arrival {
                    from: meta.addr,
                    dst_ip: meta.dst_ip,
                    ecn: meta.ecn,
                    packet: datagram,
                });
            } else {
                queues.unrouted += 1;
            }
            return;
        };
        let (addr, path) = (*addr, *path);
        peer.last_active.store(self.micros(now), Ordering::Relaxed);
        let mut guard = peer.lock();
        let state = &mut *guard;
        if path == 0 && state.local_ip.is_none() {
            // Until quinn sent (and named its local address): where it
            // arrived.
            state.local_ip = meta.dst_ip;
        }
        let authentic =
            state
                .layer
                .on_incoming_on(now, path, datagram, &mut state.to_quinn, &mut state.out);
        state.note_routes();
        // A genuine probe from an address not known yet: the peer's new
        // path (keyed layers only; without a tag anyone could claim one).
        let learnt = probe.is_some() && authentic && state.layer.peer_token().is_some();
        if learnt {
            state.dests[usize::from(path)] = Some(Dest {
                socket,
                to: meta.addr,
                route: Route {
                    src_ip: meta.dst_ip,
                    ecn: None,
                },
            });
        }
        if !state.to_quinn.is_empty() {
            // quinn sees one peer address: the path-0 one.
            let dst_ip = if path == 0 {
                meta.dst_ip
            } else {
                state.local_ip
            };
            let mut queues = self.queues();
            for packet in state.to_quinn.drain(..) {
                queues.deliver(Arrival {
                    from: addr,
                    dst_ip,
                    ecn: meta.ecn,
                    packet,
                });
            }
        }
        self.drain_peer(addr, peer, state);
        drop(guard);
        if learnt {
            // Lock order: the table is never held with a peer.
            let mut table = self.table();
            if table
                .peers
                .get(&addr)
                .is_some_and(|p| p.generation == peer.generation)
            {
                table.alias(addr, path, (socket, meta.addr));
            }
        }
    }

    /// The datagrams of one received buffer (GRO: `stride`-sized segments),
    /// each through the impairment of `socket` when it has one, then
    /// [`receive`](Self::receive).
    fn receive_segments(
        &self,
        now: Instant,
        socket: usize,
        meta: &RecvMeta,
        sender: Option<&Sender>,
        data: &[u8],
    ) {
        let impaired = self.sockets.get(socket).is_some_and(|s| s.impaired);
        for segment in data.chunks(meta.stride.max(1)) {
            let mut buffer = self.spare().take(segment.len());
            buffer.extend_from_slice(segment);
            let datagram = buffer.freeze();
            if !impaired {
                self.receive(now, socket, meta, sender, datagram);
                continue;
            }
            let mut queues = self.queues();
            if queues.arriving.len() >= DELAY_LINE_LIMIT {
                queues.incoming_drops += 1;
                continue;
            }
            let verdict = match queues.impairments.get_mut(socket).and_then(Option::as_mut) {
                Some(path) => path.offer(now, segment.len()),
                None => Verdict::Deliver { at: now },
            };
            match verdict {
                Verdict::Drop(_) => {}
                Verdict::Deliver { at } if at <= now => {
                    drop(queues);
                    self.receive(now, socket, meta, sender, datagram);
                }
                Verdict::Deliver { at } => {
                    let single = RecvMeta {
                        len: datagram.len(),
                        stride: datagram.len(),
                        ..*meta
                    };
                    queues.arriving.push(at, (socket, single, datagram));
                    if queues.driver_deadline.is_none_or(|d| at < d) {
                        queues.driver_deadline = Some(at);
                        self.wake_driver.notify_one();
                    }
                }
            }
        }
    }

    /// True when quinn may take this buffer as the kernel delivered it: it
    /// meets no impairment and no layer, and every segment is QUIC.
    fn passes_through(
        &self,
        socket: usize,
        meta: &RecvMeta,
        sender: Option<&Sender>,
        data: &[u8],
    ) -> bool {
        !self.sockets[socket].impaired
            && sender.is_none()
            && data.chunks(meta.stride.max(1)).all(is_quic)
    }

    /// Hands queued packets to quinn; how many buffers it filled. Like GRO,
    /// a buffer takes a run of packets of one length (the last one possibly
    /// shorter) from one sender, so quinn handles the run as one receive.
    fn fill(&self, bufs: &mut [IoSliceMut<'_>], meta: &mut [RecvMeta]) -> usize {
        let mut queues = self.queues();
        if queues.to_quinn.is_empty() {
            return 0;
        }
        let mut spare = self.spare();
        let mut count = 0;
        while count < bufs.len().min(meta.len()) {
            let Some(first) = queues.to_quinn.pop_front() else {
                break;
            };
            let buf = &mut bufs[count];
            let stride = first.packet.len().min(buf.len());
            buf[..stride].copy_from_slice(&first.packet[..stride]);
            let mut len = stride;
            while let Some(next) = queues.to_quinn.front() {
                let size = next.packet.len();
                let joins = next.from == first.from
                    && next.dst_ip == first.dst_ip
                    && next.ecn == first.ecn
                    && (1..=stride).contains(&size)
                    && len + size <= buf.len();
                if !joins {
                    break;
                }
                let Some(next) = queues.to_quinn.pop_front() else {
                    break;
                };
                buf[len..len + size].copy_from_slice(&next.packet);
                len += size;
                spare.give(next.packet);
                if size < stride {
                    break;
                }
            }
            meta[count] = RecvMeta {
                addr: first.from,
                len,
                stride: stride.max(1),
                ecn: first.ecn,
                dst_ip: first.dst_ip,
            };
            spare.give(first.packet);
            count += 1;
        }
        count
    }

    /// Runs the layer timers that are due.
    fn run_timers(&self, now: Instant) {
        loop {
            let due = {
                let mut queues = self.queues();
                match queues.timers.peek() {
                    Some(Reverse((at, _, _))) if *at <= now => queues.timers.pop(),
                    _ => None,
                }
            };
            let Some(Reverse((_, addr, generation))) = due else {
                return;
            };
            let Some(peer) = self.peer(addr).filter(|p| p.generation == generation) else {
                continue;
            };
            let mut state = peer.lock();
            let state = &mut *state;
            state.armed = None;
            if state.layer.poll_timeout().is_some_and(|t| t <= now) {
                state.layer.handle_timeout(now, &mut state.out);
                state.note_routes();
            }
            self.drain_peer(addr, &peer, state);
        }
    }

    /// Removes peers idle for longer than the limit.
    fn evict_idle(&self, now: Instant) {
        let horizon = self
            .micros(now)
            .saturating_sub(self.limits.idle_timeout.as_micros() as u64);
        let evicted: Vec<(SocketAddr, Arc<Peer>)> = {
            let mut table = self.table();
            let idle: Vec<SocketAddr> = table
                .peers
                .iter()
                .filter(|(_, p)| p.last_active.load(Ordering::Relaxed) < horizon)
                .map(|(a, _)| *a)
                .collect();
            idle.into_iter()
                .filter_map(|a| {
                    table.forget(a);
                    table.peers.remove(&a).map(|p| (a, p))
                })
                .collect()
        };
        if evicted.is_empty() {
            return;
        }
        let mut retired = LayerStats::default();
        for (addr, peer) in &evicted {
            tracing::info!("FEC layer of idle peer {addr} evicted");
            retired = retired.sum(peer.lock().layer.stats());
        }
        let mut table = self.table();
        table.retired = table.retired.sum(retired);
        table.stats.evicted += evicted.len() as u64;
    }
}

/// A UDP socket with an FEC layer per connection, for
/// `quinn::Endpoint::new_with_abstract_socket`.
pub struct FecSocket {
    shared: Arc<Shared>,
    driver: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for FecSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FecSocket")
            .field("local", &self.shared.sockets[0].io.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl Drop for FecSocket {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Control and counters of a [`FecSocket`], usable after quinn took the
/// socket.
#[derive(Clone)]
pub struct FecSocketHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for FecSocketHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FecSocketHandle").finish_non_exhaustive()
    }
}

/// Identifies one installed layer, so that removing it cannot remove a
/// later layer of the same address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerId {
    peer: SocketAddr,
    generation: u64,
}

impl FecSocketHandle {
    /// Installs `layer` for `peer` (replacing any it had); `None` when the
    /// table is full even after evicting idle peers.
    pub fn set_layer(&self, peer: SocketAddr, layer: Box<dyn FecLayer>) -> Option<LayerId> {
        let now = Instant::now();
        let mut table = self.shared.table();
        if !table.peers.contains_key(&peer) && table.peers.len() >= self.shared.limits.max_peers {
            drop(table);
            self.shared.evict_idle(now);
            table = self.shared.table();
            if table.peers.len() >= self.shared.limits.max_peers {
                table.stats.refused += 1;
                tracing::warn!(
                    "peer table full ({} layers); {peer} stays on plain QUIC",
                    table.peers.len()
                );
                return None;
            }
        }
        table.next_generation += 1;
        let generation = table.next_generation;
        table.forget(peer);
        if let Some(token) = layer.peer_token() {
            table.set_token(peer, token);
        }
        let entry = Arc::new(Peer {
            generation,
            last_active: AtomicU64::new(self.shared.micros(now)),
            state: Mutex::new(PeerState::new(layer)),
        });
        table.stats.installed += 1;
        let replaced = table.peers.insert(peer, entry.clone());
        drop(table);
        if let Some(old) = replaced {
            let stats = old.lock().layer.stats();
            let mut table = self.shared.table();
            table.retired = table.retired.sum(stats);
        }
        let mut state = entry.lock();
        self.shared.drain_peer(peer, &entry, &mut state);
        drop(state);
        self.shared.wake_driver.notify_one();
        Some(LayerId { peer, generation })
    }

    /// Removes the layer `id` installed (if it is still the peer's): its
    /// connection closed. Its counters stay in [`total_stats`](Self::total_stats).
    pub fn remove_layer(&self, id: LayerId) -> bool {
        let removed = {
            let mut table = self.shared.table();
            let current = table.peers.get(&id.peer).map(|p| p.generation);
            if current != Some(id.generation) {
                return false;
            }
            table.stats.removed += 1;
            table.forget(id.peer);
            table.peers.remove(&id.peer)
        };
        if let Some(peer) = removed {
            let stats = peer.lock().layer.stats();
            let mut table = self.shared.table();
            table.retired = table.retired.sum(stats);
        }
        true
    }

    /// Switches the layer serving `peer` to `policy` (see
    /// [`FecLayer::set_policy`]); false if `peer` has no layer that protects.
    pub fn set_policy(
        &self,
        peer: SocketAddr,
        policy: Box<dyn fec_core::layer::policy::Policy>,
    ) -> bool {
        let Some(entry) = self.shared.peer(peer) else {
            return false;
        };
        let now = Instant::now();
        let mut state = entry.lock();
        let switched = state.layer.set_policy(Some(policy), now);
        self.shared.drain_peer(peer, &entry, &mut state);
        drop(state);
        self.shared.wake_driver.notify_one();
        switched
    }

    /// Tells the layer serving `peer` the connection's smoothed round-trip
    /// time (its policy sees it).
    pub fn set_rtt(&self, peer: SocketAddr, rtt: Duration) {
        if let Some(entry) = self.shared.peer(peer) {
            entry.lock().layer.set_rtt(rtt);
        }
    }

    /// Counters of the layer serving `peer`, if any.
    pub fn layer_stats(&self, peer: SocketAddr) -> Option<LayerStats> {
        Some(self.shared.peer(peer)?.lock().layer.stats())
    }

    /// The FEC state of the layer serving `peer`, if it has one.
    pub fn peer_fec(&self, peer: SocketAddr) -> Option<PeerFec> {
        let entry = self.shared.peer(peer)?;
        let state = entry.lock();
        Some(PeerFec {
            protecting: state.layer.is_protecting(),
            failure: state.layer.failure().map(str::to_string),
            stats: state.layer.stats(),
        })
    }

    /// Counters summed over all layers, removed ones included.
    pub fn total_stats(&self) -> LayerStats {
        let (live, retired): (Vec<Arc<Peer>>, LayerStats) = {
            let table = self.shared.table();
            (table.peers.values().cloned().collect(), table.retired)
        };
        live.iter()
            .fold(retired, |acc, p| acc.sum(p.lock().layer.stats()))
    }

    /// The adapter's own counters (peer table, drops).
    pub fn socket_stats(&self) -> SocketStats {
        let mut stats = {
            let table = self.shared.table();
            SocketStats {
                peers: table.peers.len(),
                ..table.stats
            }
        };
        let queues = self.shared.queues();
        stats.unrouted = queues.unrouted;
        stats.incoming_drops = queues.incoming_drops;
        stats.sent_datagrams = self.shared.sent.0.load(Ordering::Relaxed);
        stats.sent_bytes = self.shared.sent.1.load(Ordering::Relaxed);
        let events = &self.shared.path_events;
        stats.paths_opened = events[0].load(Ordering::Relaxed);
        stats.paths_validated = events[1].load(Ordering::Relaxed);
        stats.paths_failed = events[2].load(Ordering::Relaxed);
        stats.paths_abandoned = events[3].load(Ordering::Relaxed);
        stats
    }

    /// Peers with a layer now.
    pub fn peer_count(&self) -> usize {
        self.shared.table().peers.len()
    }

    /// Counters of the receive-side impairment of quinn's socket, if one
    /// is configured.
    pub fn impair_stats(&self) -> Option<ImpairStats> {
        self.impair_stats_of(0)
    }

    /// Counters of the receive-side impairment of socket `socket` (0:
    /// quinn's, then the extra paths' in the order they were bound).
    pub fn impair_stats_of(&self, socket: usize) -> Option<ImpairStats> {
        let queues = self.shared.queues();
        queues.impairments.get(socket)?.as_ref().map(|i| i.stats())
    }

    /// The local address (quinn's socket).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.shared.sockets[0].io.local_addr()
    }

    /// The local addresses of every socket: quinn's, then the extra paths'.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.shared
            .sockets
            .iter()
            .filter_map(|s| s.io.local_addr().ok())
            .collect()
    }

    /// Opens a path to the peer at `peer` (quinn's address of it) from
    /// extra socket `socket` (1.., see [`FecSocket::bind_paths`]) to
    /// `remote`, the peer's address for it. It carries traffic once the peer
    /// answers its probes. `None` when the peer has no layer with paths,
    /// `socket` does not exist, or every path is in use.
    pub fn open_path(&self, peer: SocketAddr, socket: usize, remote: SocketAddr) -> Option<PathId> {
        if socket == 0 || socket >= self.shared.sockets.len() {
            return None;
        }
        let entry = self.shared.peer(peer)?;
        let now = Instant::now();
        let path = {
            let mut state = entry.lock();
            let path = state.layer.open_path(now)?;
            state.dests[usize::from(path)] = Some(Dest {
                socket,
                to: remote,
                route: Route::default(),
            });
            state.note_routes();
            self.shared.drain_peer(peer, &entry, &mut state);
            path
        };
        let mut table = self.shared.table();
        if table
            .peers
            .get(&peer)
            .is_some_and(|p| p.generation == entry.generation)
        {
            table.alias(peer, path, (socket, remote));
        }
        drop(table);
        self.shared.wake_driver.notify_one();
        Some(path)
    }

    /// Cuts socket `socket` off (`down`) or back on, as if its link failed:
    /// nothing it sends leaves, what it receives is dropped. For tests and
    /// measurements of path failure; false when there is no such socket.
    pub fn set_down(&self, socket: usize, down: bool) -> bool {
        match self.shared.sockets.get(socket) {
            Some(s) => {
                s.down.store(down, Ordering::Relaxed);
                tracing::info!(
                    "socket {socket} ({}) {}",
                    s.io.local_addr()
                        .map_or_else(|_| "?".into(), |a| a.to_string()),
                    if down { "cut off" } else { "back on" }
                );
                true
            }
            None => false,
        }
    }

    /// The paths of the layer serving `peer` (empty without a layer or
    /// paths).
    pub fn paths(&self, peer: SocketAddr) -> Vec<PathView> {
        self.shared
            .peer(peer)
            .map_or_else(Vec::new, |entry| entry.lock().layer.paths())
    }
}

/// An extra local address for [`FecSocket::bind_paths`], with the
/// impairment its received datagrams meet.
#[derive(Debug, Clone)]
pub struct ExtraSocket {
    /// Where to bind.
    pub addr: SocketAddr,
    /// Receive-side impairment of this socket alone.
    pub impairment: Option<Impairment>,
}

impl FecSocket {
    /// Binds `addr` (any address) and starts the driver task (needs a Tokio
    /// runtime). `impairment` applies to every datagram received.
    pub fn bind(
        addr: SocketAddr,
        limits: PeerLimits,
        impairment: Option<Impairment>,
    ) -> io::Result<(Arc<Self>, FecSocketHandle)> {
        Self::bind_paths(addr, limits, impairment, Vec::new())
    }

    /// [`bind`](Self::bind) with extra sockets for more paths
    /// ([`FecSocketHandle::open_path`]; a server learns its clients' extra
    /// paths on any of its sockets). Errors name the address that failed.
    pub fn bind_paths(
        addr: SocketAddr,
        limits: PeerLimits,
        impairment: Option<Impairment>,
        extra: Vec<ExtraSocket>,
    ) -> io::Result<(Arc<Self>, FecSocketHandle)> {
        let mut sockets = Vec::new();
        let mut impairments = Vec::new();
        let all = std::iter::once(ExtraSocket { addr, impairment }).chain(extra);
        for ExtraSocket { addr, impairment } in all {
            let named = |e: io::Error| io::Error::new(e.kind(), format!("{addr}: {e}"));
            let std_socket = std::net::UdpSocket::bind(addr).map_err(named)?;
            // quinn-udp's socket options: GRO on, ECN and destination-address
            // reporting, don't-fragment; non-blocking.
            let udp = UdpSocketState::new((&std_socket).into()).map_err(named)?;
            // Larger kernel buffers absorb bursts that the delay line
            // releases at once; failure only costs performance.
            let _ = udp.set_send_buffer_size((&std_socket).into(), 4 << 20);
            let _ = udp.set_recv_buffer_size((&std_socket).into(), 4 << 20);
            let io = tokio::net::UdpSocket::from_std(std_socket).map_err(named)?;
            let local = io.local_addr().map_err(named)?;
            let impairment = impairment.filter(|i| !i.config().is_transparent());
            sockets.push(Io {
                io,
                udp,
                local,
                impaired: impairment.is_some(),
                down: Default::default(),
            });
            impairments.push(impairment);
        }
        let shared = Arc::new(Shared {
            sockets,
            epoch: Instant::now(),
            limits,
            table: Mutex::new(Table::default()),
            queues: Mutex::new(Queues {
                impairments,
                arriving: DelayLine::new(),
                to_quinn: VecDeque::new(),
                backlog: VecDeque::new(),
                timers: BinaryHeap::new(),
                recv_waker: None,
                driver_deadline: None,
                unrouted: 0,
                incoming_drops: 0,
            }),
            spare: Mutex::new(BufferPool::new(SPARE_BUFFERS)),
            backlogged: AtomicUsize::new(0),
            wake_driver: Notify::new(),
            sent: (AtomicU64::new(0), AtomicU64::new(0)),
            path_events: Default::default(),
            next_socket: Default::default(),
        });
        let driver = tokio::spawn(drive(shared.clone()));
        let handle = FecSocketHandle {
            shared: shared.clone(),
        };
        Ok((Arc::new(Self { shared, driver }), handle))
    }
}

/// The driver task: timers, the delay line, the backlog, eviction.
async fn drive(shared: Arc<Shared>) {
    let mut next_eviction = Instant::now() + EVICTION_INTERVAL;
    let mut due = Vec::new();
    let mut batch = Vec::new();
    loop {
        let (deadline, want_writable) = {
            let mut queues = shared.queues();
            let deadline = queues
                .next_deadline()
                .map_or(next_eviction, |d| d.min(next_eviction));
            queues.driver_deadline = Some(deadline);
            (deadline, queues.backlog.front().map(|(d, _)| d.socket))
        };
        let writable = &shared.sockets[want_writable.unwrap_or(0).min(shared.sockets.len() - 1)];
        tokio::select! {
            () = tokio::time::sleep_until(deadline.into()) => {}
            () = shared.wake_driver.notified() => {}
            _ = writable.io.writable(), if want_writable.is_some() => {}
        }
        let now = Instant::now();
        {
            let mut queues = shared.queues();
            while let Some(arrival) = queues.arriving.pop_due(now) {
                due.push(arrival);
            }
        }
        if !due.is_empty() {
            for (socket, meta, datagram) in due.drain(..) {
                let sender = shared.lookup(socket, meta.addr);
                shared.receive(now, socket, &meta, sender.as_ref(), datagram);
            }
            shared.queues().wake_receiver();
        }
        shared.run_timers(now);
        if now >= next_eviction {
            shared.evict_idle(now);
            next_eviction = now + EVICTION_INTERVAL;
        }
        shared.flush_backlog(&mut batch);
    }
}

#[derive(Debug)]
struct Writable {
    shared: Arc<Shared>,
}

impl UdpPoller for Writable {
    fn poll_writable(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // What blocks quinn's sends is the backlog, whichever socket its
        // head waits for (an extra path's socket, say): wait for that one.
        let socket = self
            .shared
            .queues()
            .backlog
            .front()
            .map_or(0, |(dest, _)| dest.socket);
        self.shared.sockets[socket.min(self.shared.sockets.len() - 1)]
            .io
            .poll_send_ready(cx)
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl AsyncUdpSocket for FecSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(Writable {
            shared: self.shared.clone(),
        })
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        let shared = &self.shared;
        let peer = transmit.destination;
        let entry = shared.peer(peer);
        let waiting = shared.backlogged.load(Ordering::Relaxed);
        if waiting > 0 {
            let mut batch = Vec::new();
            if !shared.flush_backlog(&mut batch) && (entry.is_none() || waiting >= OUTGOING_BACKLOG)
            {
                // quinn waits for the socket and tries again.
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
        let Some(entry) = entry else {
            // No layer: plain QUIC, quinn's transmit as it is, from the
            // socket the peer's packets arrive on.
            return match shared.send_transmit(shared.socket_for(transmit.src_ip), transmit) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(e),
                Err(e) => {
                    tracing::debug!("send to {peer} failed: {e}");
                    Ok(())
                }
                Ok(()) => Ok(()),
            };
        };
        let now = Instant::now();
        let segment = transmit
            .segment_size
            .unwrap_or(transmit.contents.len())
            .max(1);
        let mut state = entry.lock();
        let state = &mut *state;
        state.route = Route {
            src_ip: transmit.src_ip,
            ecn: transmit.ecn,
        };
        // Path 0 leaves from the socket of the local address quinn answers
        // from (quinn's choice follows authenticated packets; an arrival's
        // socket could be spoofed).
        state.home = shared.socket_for(transmit.src_ip);
        if transmit.src_ip.is_some() {
            state.local_ip = transmit.src_ip;
        }
        for packet in transmit.contents.chunks(segment) {
            state.layer.on_outgoing(now, packet, &mut state.out);
            state.note_routes();
        }
        shared.drain_peer(peer, &entry, state);
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let shared = &self.shared;
        loop {
            let queued = shared.fill(bufs, meta);
            if queued > 0 {
                return Poll::Ready(Ok(queued));
            }
            let mut ready = None;
            // Each call starts at the next socket, so a busy one does not
            // starve the others (their probes would look late).
            let count = shared.sockets.len();
            let first = match count {
                1 => 0,
                _ => shared.next_socket.fetch_add(1, Ordering::Relaxed) % count,
            };
            for index in (0..count).map(|k| (first + k) % count) {
                let socket = &shared.sockets[index];
                match socket.io.poll_recv_ready(cx) {
                    Poll::Ready(Ok(())) => {
                        ready = Some(index);
                        break;
                    }
                    Poll::Ready(Err(e)) if index == 0 => return Poll::Ready(Err(e)),
                    Poll::Ready(Err(e)) => {
                        tracing::debug!("receive on path socket {index} failed: {e}");
                    }
                    Poll::Pending => {}
                }
            }
            let Some(socket) = ready else {
                // Registered under the lock that guards the queue, so a
                // packet queued meanwhile is not missed.
                let mut queues = shared.queues();
                if queues.to_quinn.is_empty() {
                    queues.recv_waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                continue;
            };
            let Io { io, udp, down, .. } = &shared.sockets[socket];
            let received = io.try_io(Interest::READABLE, || udp.recv(io.into(), bufs, meta));
            let count = match received {
                Ok(_) if down.load(Ordering::Relaxed) => continue,
                Ok(count) => count,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if socket == 0 => return Poll::Ready(Err(e)),
                Err(e) => {
                    tracing::debug!("receive on path socket {socket} failed: {e}");
                    continue;
                }
            };
            let now = Instant::now();
            // Buffers quinn may take as they are move to the front; the
            // rest go through their layers (or the impairment) and what
            // they hand up reaches quinn on this call or the next.
            let mut kept = 0;
            let mut last: Option<(SocketAddr, Option<Sender>)> = None;
            for i in 0..count {
                let m = meta[i];
                let len = m.len.min(bufs[i].len());
                // Consecutive buffers mostly come from one peer.
                let sender = match &last {
                    Some((addr, sender)) if *addr == m.addr => sender.clone(),
                    _ => {
                        let sender = shared.lookup(socket, m.addr);
                        last = Some((m.addr, sender.clone()));
                        sender
                    }
                };
                if shared.passes_through(socket, &m, sender.as_ref(), &bufs[i][..len]) {
                    if kept != i {
                        let (front, back) = bufs.split_at_mut(i);
                        front[kept][..len].copy_from_slice(&back[0][..len]);
                        meta[kept] = m;
                    }
                    kept += 1;
                } else {
                    shared.receive_segments(now, socket, &m, sender.as_ref(), &bufs[i][..len]);
                }
            }
            if kept > 0 {
                return Poll::Ready(Ok(kept));
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.shared.sockets[0].io.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.shared.sockets[0].udp.max_gso_segments()
    }

    fn max_receive_segments(&self) -> usize {
        // Every socket reads into quinn's buffers.
        self.shared
            .sockets
            .iter()
            .map(|s| s.udp.gro_segments())
            .min()
            .unwrap_or(1)
    }

    fn may_fragment(&self) -> bool {
        // Path MTU discovery stays on, capped by the layer overhead (see
        // `endpoint`).
        self.shared.sockets.iter().all(|s| s.udp.may_fragment())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagrams(lens: &[usize]) -> Vec<Bytes> {
        lens.iter().map(|&n| Bytes::from(vec![0x40; n])).collect()
    }

    #[test]
    fn a_batch_is_a_run_of_equal_sizes_ending_at_most_one_shorter() {
        assert_eq!(batch_len(&datagrams(&[]), 10), 0);
        assert_eq!(batch_len(&datagrams(&[1200, 1200, 1200]), 10), 3);
        assert_eq!(batch_len(&datagrams(&[1200, 1200, 800, 1200]), 10), 3);
        assert_eq!(batch_len(&datagrams(&[1200, 1300, 1200]), 10), 1);
        assert_eq!(batch_len(&datagrams(&[1200; 8]), 5), 5);
        assert_eq!(batch_len(&datagrams(&[1200; 8]), 1), 1);
        // The kernel's 64 KiB limit.
        assert_eq!(batch_len(&datagrams(&[1400; 60]), 64), 46);
        // Empty datagrams never batch.
        assert_eq!(batch_len(&datagrams(&[0, 0]), 10), 1);
    }
}
