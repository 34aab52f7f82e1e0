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
//! Sending happens in quinn's task (`try_send`); a small driver task owns
//! the receive path, the impairment's delay line, the layers' timers and
//! eviction. The adapter advertises one segment per transmit and per
//! receive, so no GSO/GRO batch ever reaches a layer.

#![forbid(unsafe_code)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use tokio::sync::Notify;

use crate::impair::{DelayLine, ImpairStats, Impairment, Verdict, DELAY_LINE_LIMIT};
use crate::layer::{is_quic, FecLayer, LayerStats};

/// Most datagrams waiting for the socket to become writable; beyond this the
/// adapter reports `WouldBlock` to quinn, which then paces itself.
const OUTGOING_BACKLOG: usize = 1024;
/// Most packets waiting for quinn to read them; beyond this they are dropped
/// (as a full socket buffer would).
const INCOMING_BACKLOG: usize = 4096;
const RECEIVE_BUFFER: usize = 65536;
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
}

struct PeerState {
    layer: Box<dyn FecLayer>,
    /// The deadline last put in the timer heap, if still ahead.
    armed: Option<Instant>,
    /// Lent to the layer as its output vectors.
    out: Vec<Bytes>,
    to_quinn: Vec<Bytes>,
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
    arriving: DelayLine<(SocketAddr, Bytes)>,
    to_quinn: VecDeque<(SocketAddr, Bytes)>,
    outgoing: VecDeque<(SocketAddr, Bytes)>,
    /// Layer deadlines: (when, peer, generation). Stale entries are checked
    /// and dropped when they come due.
    timers: BinaryHeap<Reverse<(Instant, SocketAddr, u64)>>,
    recv_waker: Option<Waker>,
    driver_deadline: Option<Instant>,
    unrouted: u64,
    incoming_drops: u64,
}

impl Queues {
    /// Sends queued datagrams until the socket would block.
    fn flush(&mut self, io: &tokio::net::UdpSocket) -> io::Result<()> {
        while let Some((peer, datagram)) = self.outgoing.front() {
            match io.try_send_to(datagram, *peer) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(e),
                // An ICMP error from an earlier send, or a peer that went
                // away: the datagram is lost, as on a real network.
                Err(e) => tracing::debug!("send to {peer} failed: {e}"),
            }
            self.outgoing.pop_front();
        }
        Ok(())
    }

    fn deliver(&mut self, peer: SocketAddr, packet: Bytes) {
        if self.to_quinn.len() < INCOMING_BACKLOG {
            self.to_quinn.push_back((peer, packet));
        } else {
            self.incoming_drops += 1;
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let timer = self.timers.peek().map(|Reverse((at, _, _))| *at);
        timer.into_iter().chain(self.arriving.next_arrival()).min()
    }
}

struct Shared {
    io: tokio::net::UdpSocket,
    epoch: Instant,
    limits: PeerLimits,
    table: Mutex<Table>,
    queues: Mutex<Queues>,
    wake_driver: Notify,
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

    /// Moves what a peer's layer produced to the shared queues and arms its
    /// timer; called with the peer locked (lock order: peer, then queues).
    fn drain_peer(&self, addr: SocketAddr, peer: &Peer, state: &mut PeerState, now: Instant) {
        let mut queues = self.queues();
        for packet in state.to_quinn.drain(..) {
            queues.deliver(addr, packet);
        }
        queues
            .outgoing
            .extend(state.out.drain(..).map(|d| (addr, d)));
        if let Some(at) = state.layer.poll_timeout() {
            let stale = state.armed.is_none_or(|armed| armed <= now || at < armed);
            if stale {
                state.armed = Some(at);
                queues.timers.push(Reverse((at, addr, peer.generation)));
                if queues.driver_deadline.is_none_or(|d| at < d) {
                    queues.driver_deadline = Some(at);
                    self.wake_driver.notify_one();
                }
            }
        }
        if !queues.to_quinn.is_empty() {
            if let Some(waker) = queues.recv_waker.take() {
                waker.wake();
            }
        }
    }

    /// One datagram from `from`, due now: through its layer if it has one.
    fn receive(&self, now: Instant, from: SocketAddr, datagram: Bytes) {
        let Some(peer) = self.peer(from) else {
            let mut queues = self.queues();
            if is_quic(&datagram) {
                queues.deliver(from, datagram);
                if let Some(waker) = queues.recv_waker.take() {
                    waker.wake();
                }
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
        self.drain_peer(from, &peer, state, now);
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
            self.drain_peer(addr, &peer, state, now);
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
        self.shared.drain_peer(peer, &entry, &mut state, now);
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
        self.shared.drain_peer(peer, &entry, &mut state, now);
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
        std_socket.set_nonblocking(true)?;
        // Larger kernel buffers absorb bursts that the delay line releases
        // at once; failure only costs performance.
        if let Ok(udp_state) = quinn::udp::UdpSocketState::new((&std_socket).into()) {
            let _ = udp_state.set_send_buffer_size((&std_socket).into(), 4 << 20);
            let _ = udp_state.set_recv_buffer_size((&std_socket).into(), 4 << 20);
        }
        let io = tokio::net::UdpSocket::from_std(std_socket)?;
        let shared = Arc::new(Shared {
            io,
            epoch: Instant::now(),
            limits,
            table: Mutex::new(Table::default()),
            queues: Mutex::new(Queues {
                impairment: impairment.filter(|i| !i.config().is_transparent()),
                arriving: DelayLine::new(),
                to_quinn: VecDeque::new(),
                outgoing: VecDeque::new(),
                timers: BinaryHeap::new(),
                recv_waker: None,
                driver_deadline: None,
                unrouted: 0,
                incoming_drops: 0,
            }),
            wake_driver: Notify::new(),
        });
        let driver = tokio::spawn(drive(shared.clone()));
        let handle = FecSocketHandle {
            shared: shared.clone(),
        };
        Ok((Arc::new(Self { shared, driver }), handle))
    }
}

async fn drive(shared: Arc<Shared>) {
    let mut buf = vec![0u8; RECEIVE_BUFFER];
    let mut next_eviction = Instant::now() + EVICTION_INTERVAL;
    let mut due = Vec::new();
    loop {
        let (deadline, want_writable) = {
            let mut queues = shared.queues();
            let deadline = queues
                .next_deadline()
                .map_or(next_eviction, |d| d.min(next_eviction));
            queues.driver_deadline = Some(deadline);
            (deadline, !queues.outgoing.is_empty())
        };
        tokio::select! {
            received = shared.io.recv_from(&mut buf) => {
                match received {
                    Ok((len, from)) => {
                        let now = Instant::now();
                        let mut queues = shared.queues();
                        accept(&mut queues, now, from, &buf[..len]);
                        // Drain what else is already queued in the kernel.
                        while let Ok((len, from)) = shared.io.try_recv_from(&mut buf) {
                            accept(&mut queues, now, from, &buf[..len]);
                        }
                    }
                    Err(e) => tracing::debug!("receive failed: {e}"),
                }
            }
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
        for (from, datagram) in due.drain(..) {
            shared.receive(now, from, datagram);
        }
        shared.run_timers(now);
        if now >= next_eviction {
            shared.evict_idle(now);
            next_eviction = now + EVICTION_INTERVAL;
        }
        let _ = shared.queues().flush(&shared.io);
    }
}

fn accept(queues: &mut Queues, now: Instant, from: SocketAddr, datagram: &[u8]) {
    if queues.arriving.len() >= DELAY_LINE_LIMIT {
        queues.incoming_drops += 1;
        return;
    }
    let at = match queues.impairment.as_mut() {
        None => now,
        Some(path) => match path.offer(now, datagram.len()) {
            Verdict::Deliver { at } => at,
            Verdict::Drop(_) => return,
        },
    };
    queues
        .arriving
        .push(at, (from, Bytes::copy_from_slice(datagram)));
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
        let now = Instant::now();
        let shared = &self.shared;
        {
            let mut queues = shared.queues();
            if queues.flush(&shared.io).is_err() && queues.outgoing.len() >= OUTGOING_BACKLOG {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
        let peer = transmit.destination;
        let segment = transmit
            .segment_size
            .unwrap_or(transmit.contents.len())
            .max(1);
        match shared.peer(peer) {
            // No layer: plain QUIC, unchanged.
            None => {
                let mut queues = shared.queues();
                for packet in transmit.contents.chunks(segment) {
                    queues
                        .outgoing
                        .push_back((peer, Bytes::copy_from_slice(packet)));
                }
            }
            Some(entry) => {
                let mut state = entry.lock();
                let state = &mut *state;
                for packet in transmit.contents.chunks(segment) {
                    state.layer.on_outgoing(now, packet, &mut state.out);
                }
                shared.drain_peer(peer, &entry, state, now);
            }
        }
        let mut queues = shared.queues();
        let _ = queues.flush(&shared.io);
        if !queues.outgoing.is_empty() {
            shared.wake_driver.notify_one();
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut queues = self.shared.queues();
        let mut count = 0;
        while count < bufs.len().min(meta.len()) {
            let Some((peer, packet)) = queues.to_quinn.pop_front() else {
                break;
            };
            let len = packet.len().min(bufs[count].len());
            bufs[count][..len].copy_from_slice(&packet[..len]);
            meta[count] = RecvMeta {
                addr: peer,
                len,
                stride: len,
                ..RecvMeta::default()
            };
            count += 1;
        }
        if count > 0 {
            Poll::Ready(Ok(count))
        } else {
            queues.recv_waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.shared.io.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        // No GSO: every transmit is one QUIC packet for the layer.
        1
    }

    fn max_receive_segments(&self) -> usize {
        // No GRO: every received datagram reaches quinn on its own.
        1
    }

    fn may_fragment(&self) -> bool {
        // Path MTU discovery stays on, capped by the layer overhead (see
        // `endpoint`); loopback never fragments.
        false
    }
}
