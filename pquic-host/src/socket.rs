//! The one I/O adapter: a quinn [`AsyncUdpSocket`] that runs every datagram
//! through a per-peer [`FecLayer`] and, on the receive side, an optional
//! [`Impairment`], so tests and the demo need no netem.
//!
//! Sending happens in quinn's task (`try_send`); a small driver task owns the
//! receive path, the impairment's delay line and the layers' timers. Both
//! share one mutex-protected state; the layers themselves stay sans-IO.
//! The adapter advertises one segment per transmit and per receive, so no
//! GSO/GRO batch ever reaches a layer.

#![forbid(unsafe_code)]

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use tokio::sync::Notify;

use crate::impair::{DelayLine, ImpairStats, Impairment, Verdict, DELAY_LINE_LIMIT};
use crate::layer::{FecLayer, LayerStats, PassThrough};

/// Builds the layer for a peer seen for the first time.
pub type LayerFactory = Arc<dyn Fn(SocketAddr) -> Box<dyn FecLayer> + Send + Sync>;

/// A factory for [`PassThrough`] layers (plain QUIC).
pub fn pass_through_factory() -> LayerFactory {
    Arc::new(|_| Box::new(PassThrough::default()))
}

/// Most datagrams waiting for the socket to become writable; beyond this the
/// adapter reports `WouldBlock` to quinn, which then paces itself.
const OUTGOING_BACKLOG: usize = 1024;
/// Most packets waiting for quinn to read them; beyond this they are dropped
/// (as a full socket buffer would).
const INCOMING_BACKLOG: usize = 4096;
const RECEIVE_BUFFER: usize = 65536;

struct State {
    layers: HashMap<SocketAddr, Box<dyn FecLayer>>,
    factory: LayerFactory,
    impairment: Option<Impairment>,
    arriving: DelayLine<(SocketAddr, Bytes)>,
    to_quinn: VecDeque<(SocketAddr, Bytes)>,
    outgoing: VecDeque<(SocketAddr, Bytes)>,
    recv_waker: Option<Waker>,
    driver_deadline: Option<Instant>,
    incoming_drops: u64,
    /// Empty between calls; lent to the layers as their output vectors so
    /// the per-datagram path does not allocate.
    scratch_out: Vec<Bytes>,
    scratch_to_quinn: Vec<Bytes>,
}

impl State {
    fn layer(&mut self, peer: SocketAddr) -> &mut Box<dyn FecLayer> {
        let factory = &self.factory;
        self.layers.entry(peer).or_insert_with(|| factory(peer))
    }

    fn next_deadline(&self) -> Option<Instant> {
        let timers = self.layers.values().filter_map(|l| l.poll_timeout());
        timers.chain(self.arriving.next_arrival()).min()
    }

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

    fn queue_out(&mut self, peer: SocketAddr, datagrams: &mut Vec<Bytes>) {
        self.outgoing.extend(datagrams.drain(..).map(|d| (peer, d)));
    }

    /// Hands due arrivals to their layers and runs due timers.
    fn process(&mut self, now: Instant) {
        let mut to_quinn = std::mem::take(&mut self.scratch_to_quinn);
        let mut out = std::mem::take(&mut self.scratch_out);
        while let Some((peer, datagram)) = self.arriving.pop_due(now) {
            self.layer(peer)
                .on_incoming(now, datagram, &mut to_quinn, &mut out);
            for packet in to_quinn.drain(..) {
                if self.to_quinn.len() < INCOMING_BACKLOG {
                    self.to_quinn.push_back((peer, packet));
                } else {
                    self.incoming_drops += 1;
                }
            }
            self.queue_out(peer, &mut out);
        }
        let due: Vec<SocketAddr> = self
            .layers
            .iter()
            .filter(|(_, l)| l.poll_timeout().is_some_and(|t| t <= now))
            .map(|(p, _)| *p)
            .collect();
        for peer in due {
            self.layer(peer).handle_timeout(now, &mut out);
            self.queue_out(peer, &mut out);
        }
        (self.scratch_to_quinn, self.scratch_out) = (to_quinn, out);
        if !self.to_quinn.is_empty() {
            if let Some(waker) = self.recv_waker.take() {
                waker.wake();
            }
        }
    }
}

struct Shared {
    io: tokio::net::UdpSocket,
    state: Mutex<State>,
    wake_driver: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A UDP socket with an FEC layer per peer, for
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

impl FecSocketHandle {
    /// Replaces the layer serving `peer` (for example when FEC is switched on
    /// after a plugin was accepted, or off after it faulted).
    pub fn set_layer(&self, peer: SocketAddr, layer: Box<dyn FecLayer>) {
        self.shared.lock().layers.insert(peer, layer);
        self.shared.wake_driver.notify_one();
    }

    /// Switches the layer serving `peer` to `policy` (see
    /// [`FecLayer::set_policy`]); false if `peer` has no layer that protects.
    pub fn set_policy(
        &self,
        peer: SocketAddr,
        policy: Box<dyn fec_core::layer::policy::Policy>,
    ) -> bool {
        let switched = self
            .shared
            .lock()
            .layers
            .get_mut(&peer)
            .is_some_and(|layer| layer.set_policy(Some(policy), Instant::now()));
        self.shared.wake_driver.notify_one();
        switched
    }

    /// Tells the layer serving `peer` the connection's smoothed round-trip
    /// time (its policy sees it).
    pub fn set_rtt(&self, peer: SocketAddr, rtt: std::time::Duration) {
        if let Some(layer) = self.shared.lock().layers.get_mut(&peer) {
            layer.set_rtt(rtt);
        }
    }

    /// Changes the layer built for peers seen from now on.
    pub fn set_factory(&self, factory: LayerFactory) {
        self.shared.lock().factory = factory;
    }

    /// Counters of the layer serving `peer`, if any.
    pub fn layer_stats(&self, peer: SocketAddr) -> Option<LayerStats> {
        self.shared.lock().layers.get(&peer).map(|l| l.stats())
    }

    /// The FEC state of the layer serving `peer`, if it has one.
    pub fn peer_fec(&self, peer: SocketAddr) -> Option<PeerFec> {
        self.shared.lock().layers.get(&peer).map(|l| PeerFec {
            protecting: l.is_protecting(),
            failure: l.failure().map(str::to_string),
            stats: l.stats(),
        })
    }

    /// Counters summed over all peers.
    pub fn total_stats(&self) -> LayerStats {
        let state = self.shared.lock();
        state
            .layers
            .values()
            .fold(LayerStats::default(), |acc, l| acc.sum(l.stats()))
    }

    /// Counters of the receive-side impairment, if one is configured.
    pub fn impair_stats(&self) -> Option<ImpairStats> {
        self.shared.lock().impairment.as_ref().map(|i| i.stats())
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.shared.io.local_addr()
    }
}

impl FecSocket {
    /// Binds a loopback-or-given address and starts the driver task (needs a
    /// Tokio runtime). `impairment` applies to every datagram received.
    pub fn bind(
        addr: SocketAddr,
        factory: LayerFactory,
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
            state: Mutex::new(State {
                layers: HashMap::new(),
                factory,
                impairment: impairment.filter(|i| !i.config().is_transparent()),
                arriving: DelayLine::new(),
                to_quinn: VecDeque::new(),
                outgoing: VecDeque::new(),
                recv_waker: None,
                driver_deadline: None,
                incoming_drops: 0,
                scratch_out: Vec::new(),
                scratch_to_quinn: Vec::new(),
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
    loop {
        let (deadline, want_writable) = {
            let mut state = shared.lock();
            let deadline = state.next_deadline();
            state.driver_deadline = deadline;
            (deadline, !state.outgoing.is_empty())
        };
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = shared.io.recv_from(&mut buf) => {
                match received {
                    Ok((len, from)) => {
                        let now = Instant::now();
                        let mut state = shared.lock();
                        accept(&mut state, now, from, &buf[..len]);
                        // Drain what else is already queued in the kernel.
                        while let Ok((len, from)) = shared.io.try_recv_from(&mut buf) {
                            accept(&mut state, now, from, &buf[..len]);
                        }
                    }
                    Err(e) => tracing::debug!("receive failed: {e}"),
                }
            }
            () = sleep => {}
            () = shared.wake_driver.notified() => {}
            _ = shared.io.writable(), if want_writable => {}
        }
        let mut state = shared.lock();
        state.process(Instant::now());
        let _ = state.flush(&shared.io);
    }
}

fn accept(state: &mut State, now: Instant, from: SocketAddr, datagram: &[u8]) {
    if state.arriving.len() >= DELAY_LINE_LIMIT {
        state.incoming_drops += 1;
        return;
    }
    let at = match state.impairment.as_mut() {
        None => now,
        Some(path) => match path.offer(now, datagram.len()) {
            Verdict::Deliver { at } => at,
            Verdict::Drop(_) => return,
        },
    };
    state
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
        let mut state = self.shared.lock();
        if state.flush(&self.shared.io).is_err() && state.outgoing.len() >= OUTGOING_BACKLOG {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let peer = transmit.destination;
        let segment = transmit
            .segment_size
            .unwrap_or(transmit.contents.len())
            .max(1);
        let mut out = std::mem::take(&mut state.scratch_out);
        for packet in transmit.contents.chunks(segment) {
            state.layer(peer).on_outgoing(now, packet, &mut out);
            state.queue_out(peer, &mut out);
        }
        state.scratch_out = out;
        let _ = state.flush(&self.shared.io);
        let timer = state.layer(peer).poll_timeout();
        if let Some(t) = timer {
            if state.driver_deadline.is_none_or(|d| t < d) {
                state.driver_deadline = Some(t);
                self.shared.wake_driver.notify_one();
            }
        }
        if !state.outgoing.is_empty() {
            self.shared.wake_driver.notify_one();
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut state = self.shared.lock();
        let mut count = 0;
        while count < bufs.len().min(meta.len()) {
            let Some((peer, packet)) = state.to_quinn.pop_front() else {
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
            state.recv_waker = Some(cx.waker().clone());
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
