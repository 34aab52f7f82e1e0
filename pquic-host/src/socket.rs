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
//! locks of their own, never held while a layer runs. Lock order: peer
//! before queues; the table is never held together with either.
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

#![forbid(unsafe_code)]
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use quinn::udp::{EcnCodepoint, RecvMeta, Transmit, UdpSocketState};
use quinn::{AsyncUdpSocket, UdpPoller};
use tokio::io::Interest;
use tokio::sync::Notify;

use crate::impair::{DelayLine, ImpairStats, Impairment, Verdict, DELAY_LINE_LIMIT};
use crate::layer::{is_quic, FecLayer, LayerStats};

/// Most datagrams waiting for the socket to become writable; beyond this the
/// adapter reports `WouldBlock` to quinn, which then waits for the socket.
const OUTGOING_BACKLOG: usize = 1024;
/// Most packets waiting for quinn to read them; beyond this they are dropped
/// (as a full socket buffer would).
const INCOMING_BACKLOG: usize = 4096;
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
#[derive(Debug, Clone, Copy, Default)]
struct Route {
    src_ip: Option<IpAddr>,
    ecn: Option<EcnCodepoint>,
}

struct PeerState {
    layer: Box<dyn FecLayer>,
    /// The deadline last put in the timer heap, if still ahead.
    armed: Option<Instant>,
    /// Lent to the layer as its output vectors.
    out: Vec<Bytes>,
    to_quinn: Vec<Bytes>,
    route: Route,
    /// Where GSO batches are assembled.
    batch: Vec<u8>,
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
    next_generation: u64,
    /// Counters of layers removed or evicted.
    retired: LayerStats,
    stats: SocketStats,
}

struct Queues {
    impairment: Option<Impairment>,
    arriving: DelayLine<(RecvMeta, Bytes)>,
    to_quinn: VecDeque<Arrival>,
    /// Datagrams the socket refused, oldest first, with their route.
    backlog: VecDeque<(SocketAddr, Route, Bytes)>,
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

struct Shared {
    io: tokio::net::UdpSocket,
    udp: UdpSocketState,
    /// True when received datagrams meet an impairment (fixed at bind).
    impaired: bool,
    epoch: Instant,
    limits: PeerLimits,
    table: Mutex<Table>,
    queues: Mutex<Queues>,
    wake_driver: Notify,
    /// What went on the wire: datagrams, bytes.
    sent: (AtomicU64, AtomicU64),
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

    fn peer(&self, addr: SocketAddr) -> Option<Arc<Peer>> {
        self.table().peers.get(&addr).cloned()
    }

    fn micros(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_micros() as u64
    }

    /// One `sendmsg` of `transmit`; `WouldBlock` clears tokio's readiness so
    /// that the writable poll waits for the socket.
    fn send_transmit(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        self.io.try_io(Interest::WRITABLE, || {
            self.udp.send((&self.io).into(), transmit)
        })?;
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
    fn send_batches(
        &self,
        to: SocketAddr,
        route: Route,
        datagrams: &[Bytes],
        batch: &mut Vec<u8>,
    ) -> usize {
        let max_segments = self.udp.max_gso_segments().max(1);
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
            match self.send_transmit(&transmit) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return sent,
                Err(e) => tracing::debug!("send to {to} failed: {e}"),
                Ok(()) => {}
            }
            sent += count;
        }
        sent
    }

    /// Sends what a layer produced for `to`, behind anything already waiting
    /// (order kept); what the socket refuses waits in the backlog.
    fn send_out(&self, to: SocketAddr, route: Route, out: &mut Vec<Bytes>, batch: &mut Vec<u8>) {
        if out.is_empty() {
            return;
        }
        let waiting = !self.queues().backlog.is_empty();
        let sent = if waiting {
            0
        } else {
            self.send_batches(to, route, out, batch)
        };
        if sent < out.len() {
            let mut queues = self.queues();
            queues
                .backlog
                .extend(out.drain(sent..).map(|d| (to, route, d)));
            drop(queues);
            self.wake_driver.notify_one();
        }
        out.clear();
    }

    /// Sends the backlog until the socket would block; true when it is empty.
    fn flush_backlog(&self, batch: &mut Vec<u8>) -> bool {
        let mut run = Vec::new();
        loop {
            let (to, route) = {
                let mut queues = self.queues();
                let Some(&(to, route, _)) = queues.backlog.front() else {
                    return true;
                };
                let max = self.udp.max_gso_segments().max(1);
                while run.len() < max {
                    match queues.backlog.front() {
                        Some((t, _, _)) if *t == to => {
                            if let Some((_, _, d)) = queues.backlog.pop_front() {
                                run.push(d);
                            }
                        }
                        _ => break,
                    }
                }
                (to, route)
            };
            let sent = self.send_batches(to, route, &run, batch);
            if sent < run.len() {
                let mut queues = self.queues();
                for datagram in run.drain(sent..).rev() {
                    queues.backlog.push_front((to, route, datagram));
                }
                return false;
            }
            run.clear();
        }
    }

    /// Moves what a peer's layer produced on: packets to quinn, datagrams to
    /// the wire; arms its timer. Called with the peer locked (lock order:
    /// peer, then queues).
    fn drain_peer(&self, addr: SocketAddr, peer: &Peer, state: &mut PeerState) {
        let PeerState {
            out, batch, route, ..
        } = state;
        self.send_out(addr, *route, out, batch);
        let mut queues = self.queues();
        if let Some(at) = state.layer.poll_timeout() {
            // An armed entry stays in the heap until it fires (even when
            // already due), so only an earlier deadline needs a new one.
            if state.armed.is_none_or(|armed| at < armed) {
                state.armed = Some(at);
                queues.timers.push(Reverse((at, addr, peer.generation)));
                if queues.driver_deadline.is_none_or(|d| at < d) {
                    queues.driver_deadline = Some(at);
                    self.wake_driver.notify_one();
                }
            }
        }
    }

    /// One datagram from `meta.addr`, due now: through its layer (`peer`, if
    /// it has one); what goes up is queued for quinn (in quinn's own receive
    /// call nobody needs waking; the driver wakes the receiver after its
    /// delay-line releases).
    fn receive(&self, now: Instant, meta: &RecvMeta, peer: Option<&Arc<Peer>>, datagram: Bytes) {
        let arrival = |packet| Arrival {
            from: meta.addr,
            dst_ip: meta.dst_ip,
            ecn: meta.ecn,
            packet,
        };
        let Some(peer) = peer else {
            let mut queues = self.queues();
            if is_quic(&datagram) {
                queues.deliver(arrival(datagram));
            } else {
                queues.unrouted += 1;
            }
            return;
        };
        peer.last_active.store(self.micros(now), Ordering::Relaxed);
        let mut state = peer.lock();
        let state = &mut *state;
        state
            .layer
            .on_incoming(now, datagram, &mut state.to_quinn, &mut state.out);
        if !state.to_quinn.is_empty() {
            let mut queues = self.queues();
            for packet in state.to_quinn.drain(..) {
                queues.deliver(arrival(packet));
            }
        }
        self.drain_peer(meta.addr, peer, state);
    }

    /// The datagrams of one received buffer (GRO: `stride`-sized segments),
    /// each through the impairment when there is one, then [`receive`](Self::receive).
    fn receive_segments(
        &self,
        now: Instant,
        meta: &RecvMeta,
        peer: Option<&Arc<Peer>>,
        data: &[u8],
    ) {
        for segment in data.chunks(meta.stride.max(1)) {
            let datagram = Bytes::copy_from_slice(segment);
            if !self.impaired {
                self.receive(now, meta, peer, datagram);
                continue;
            }
            let mut queues = self.queues();
            if queues.arriving.len() >= DELAY_LINE_LIMIT {
                queues.incoming_drops += 1;
                continue;
            }
            let verdict = match queues.impairment.as_mut() {
                Some(path) => path.offer(now, segment.len()),
                None => Verdict::Deliver { at: now },
            };
            match verdict {
                Verdict::Drop(_) => {}
                Verdict::Deliver { at } if at <= now => {
                    drop(queues);
                    self.receive(now, meta, peer, datagram);
                }
                Verdict::Deliver { at } => {
                    let single = RecvMeta {
                        len: datagram.len(),
                        stride: datagram.len(),
                        ..*meta
                    };
                    queues.arriving.push(at, (single, datagram));
                    if queues.driver_deadline.is_none_or(|d| at < d) {
                        queues.driver_deadline = Some(at);
                        self.wake_driver.notify_one();
                    }
                }
            }
        }
    }

    /// True when quinn may take this buffer from `peer` as the kernel
    /// delivered it: no impairment, no layer, and every segment QUIC.
    fn passes_through(&self, meta: &RecvMeta, peer: Option<&Arc<Peer>>, data: &[u8]) -> bool {
        !self.impaired && peer.is_none() && data.chunks(meta.stride.max(1)).all(is_quic)
    }

    /// Hands queued packets to quinn, one per buffer; how many.
    fn fill(&self, bufs: &mut [IoSliceMut<'_>], meta: &mut [RecvMeta]) -> usize {
        let mut queues = self.queues();
        let mut count = 0;
        while count < bufs.len().min(meta.len()) {
            let Some(arrival) = queues.to_quinn.pop_front() else {
                break;
            };
            let len = arrival.packet.len().min(bufs[count].len());
            bufs[count][..len].copy_from_slice(&arrival.packet[..len]);
            meta[count] = RecvMeta {
                addr: arrival.from,
                len,
                stride: len,
                ecn: arrival.ecn,
                dst_ip: arrival.dst_ip,
            };
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
                .filter_map(|a| table.peers.remove(&a).map(|p| (a, p)))
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
            .field("local", &self.shared.io.local_addr().ok())
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
        let entry = Arc::new(Peer {
            generation,
            last_active: AtomicU64::new(self.shared.micros(now)),
            state: Mutex::new(PeerState {
                layer,
                armed: None,
                out: Vec::new(),
                to_quinn: Vec::new(),
                route: Route::default(),
                batch: Vec::new(),
            }),
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
        stats
    }

    /// Peers with a layer now.
    pub fn peer_count(&self) -> usize {
        self.shared.table().peers.len()
    }

    /// Counters of the receive-side impairment, if one is configured.
    pub fn impair_stats(&self) -> Option<ImpairStats> {
        self.shared.queues().impairment.as_ref().map(|i| i.stats())
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.shared.io.local_addr()
    }
}

impl FecSocket {
    /// Binds `addr` (any address) and starts the driver task (needs a Tokio
    /// runtime). `impairment` applies to every datagram received.
    pub fn bind(
        addr: SocketAddr,
        limits: PeerLimits,
        impairment: Option<Impairment>,
    ) -> io::Result<(Arc<Self>, FecSocketHandle)> {
        let std_socket = std::net::UdpSocket::bind(addr)?;
        // quinn-udp's socket options: GRO on, ECN and destination-address
        // reporting, don't-fragment; non-blocking.
        let udp = UdpSocketState::new((&std_socket).into())?;
        // Larger kernel buffers absorb bursts that the delay line releases
        // at once; failure only costs performance.
        let _ = udp.set_send_buffer_size((&std_socket).into(), 4 << 20);
        let _ = udp.set_recv_buffer_size((&std_socket).into(), 4 << 20);
        let io = tokio::net::UdpSocket::from_std(std_socket)?;
        let impairment = impairment.filter(|i| !i.config().is_transparent());
        let shared = Arc::new(Shared {
            io,
            udp,
            impaired: impairment.is_some(),
            epoch: Instant::now(),
            limits,
            table: Mutex::new(Table::default()),
            queues: Mutex::new(Queues {
                impairment,
                arriving: DelayLine::new(),
                to_quinn: VecDeque::new(),
                backlog: VecDeque::new(),
                timers: BinaryHeap::new(),
                recv_waker: None,
                driver_deadline: None,
                unrouted: 0,
                incoming_drops: 0,
            }),
            wake_driver: Notify::new(),
            sent: (AtomicU64::new(0), AtomicU64::new(0)),
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
            (deadline, !queues.backlog.is_empty())
        };
        tokio::select! {
            () = tokio::time::sleep_until(deadline.into()) => {}
            () = shared.wake_driver.notified() => {}
            _ = shared.io.writable(), if want_writable => {}
        }
        let now = Instant::now();
        {
            let mut queues = shared.queues();
            while let Some(arrival) = queues.arriving.pop_due(now) {
                due.push(arrival);
            }
        }
        if !due.is_empty() {
            for (meta, datagram) in due.drain(..) {
                let peer = shared.peer(meta.addr);
                shared.receive(now, &meta, peer.as_ref(), datagram);
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
        self.shared.io.poll_send_ready(cx)
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
        let waiting = shared.queues().backlog.len();
        if waiting > 0 {
            let mut batch = Vec::new();
            if !shared.flush_backlog(&mut batch) && (entry.is_none() || waiting >= OUTGOING_BACKLOG)
            {
                // quinn waits for the socket and tries again.
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
        let Some(entry) = entry else {
            // No layer: plain QUIC, quinn's transmit as it is.
            return match shared.send_transmit(transmit) {
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
        for packet in transmit.contents.chunks(segment) {
            state.layer.on_outgoing(now, packet, &mut state.out);
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
            match shared.io.poll_recv_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    // Registered under the lock that guards the queue, so a
                    // packet queued meanwhile is not missed.
                    let mut queues = shared.queues();
                    if queues.to_quinn.is_empty() {
                        queues.recv_waker = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                    continue;
                }
            }
            let received = shared.io.try_io(Interest::READABLE, || {
                shared.udp.recv((&shared.io).into(), bufs, meta)
            });
            let count = match received {
                Ok(count) => count,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            };
            let now = Instant::now();
            // Buffers quinn may take as they are move to the front; the
            // rest go through their layers (or the impairment) and what
            // they hand up reaches quinn on this call or the next.
            let mut kept = 0;
            let mut last: Option<(SocketAddr, Option<Arc<Peer>>)> = None;
            for i in 0..count {
                let m = meta[i];
                let len = m.len.min(bufs[i].len());
                // Consecutive buffers mostly come from one peer.
                let peer = match &last {
                    Some((addr, peer)) if *addr == m.addr => peer.clone(),
                    _ => {
                        let peer = shared.peer(m.addr);
                        last = Some((m.addr, peer.clone()));
                        peer
                    }
                };
                if shared.passes_through(&m, peer.as_ref(), &bufs[i][..len]) {
                    if kept != i {
                        let (front, back) = bufs.split_at_mut(i);
                        front[kept][..len].copy_from_slice(&back[0][..len]);
                        meta[kept] = m;
                    }
                    kept += 1;
                } else {
                    shared.receive_segments(now, &m, peer.as_ref(), &bufs[i][..len]);
                }
            }
            if kept > 0 {
                return Poll::Ready(Ok(kept));
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.shared.io.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.shared.udp.max_gso_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.shared.udp.gro_segments()
    }

    fn may_fragment(&self) -> bool {
        // Path MTU discovery stays on, capped by the layer overhead (see
        // `endpoint`).
        self.shared.udp.may_fragment()
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
