//! Paths: one layer over several network paths at once (multipath).
//!
//! A transport that reaches its peer over more than one path (two local
//! addresses, two links) tells the layer which path each datagram arrived
//! on ([`super::Layer::receive_on`]) and asks it which path each datagram
//! it made goes out on ([`super::Layer::routes`]). Path 0 is the one the
//! transport started on; extra paths are opened by one end
//! ([`super::Layer::open_path`]) and learnt by the other from the first
//! authentic probe that arrives on them.
//!
//! While more than one path is in use, each end probes every path
//! ([`PROBE_INTERVAL`]): a probe carries a random 64-bit challenge, the peer
//! answers on the same path with the challenge and what it has received on
//! that path so far (the layer's own authenticated datagrams and their
//! bytes, counted when the probe arrived; plain packets, which the layer
//! cannot authenticate, count on neither side). So each end knows,
//! per path and for its own sending direction:
//! - the round-trip time (probe to response, smoothed);
//! - the loss rate: between two responses, `1 - received / sent` over the
//!   datagrams sent between the two probes (sources, repairs, reports,
//!   probes, responses), taken over about the last [`LOSS_HORIZON`];
//! - liveness: a validated path whose probe goes unanswered for longer than
//!   its RTT plus a margin ([`SUSPECT_MARGIN`], or a quarter RTT) while
//!   nothing at all arrives on it is *suspect*: nothing new is scheduled on
//!   it until an answer comes, and the layer at once sends repair symbols
//!   on the other paths for the sources it sent there since its last answered
//!   probe (as many as those, within the window), so a cut link costs
//!   about one RTT and no retransmission; a path that answers nothing for
//!   `max(4 x RTT, FAIL_AFTER)`, nor any of its last [`FAIL_PROBES`]
//!   probes or more, fails (probes go on, and an answer
//!   validates it again), and one failed for [`ABANDON_AFTER`] is abandoned
//!   (no more probes).
//!
//! Which path a datagram takes:
//! - repair packets: the policy's choice ([`super::policy::Plan::repair_path`])
//!   when that path is usable, else the usable path losing least (ties: the
//!   shorter RTT): a loss on one path is repaired from the other without a
//!   round trip;
//! - probes and responses: their own path;
//! - everything else (sources, plain packets, reports): shared among the
//!   usable paths in proportion to `(1 - loss)^8 / RTT`, by bytes (a
//!   smooth weighted round robin), so two clean paths carry half each and
//!   a lossy one little.
//!
//! Wire forms (big-endian; both sealed like every datagram a keyed layer
//! makes, see [`super::auth`]; bits 0x80 and 0x40 of the first byte clear):
//! - probe: [`PROBE_TYPE`], the sender's 8-byte path token, path id (u8),
//!   challenge (8 random bytes);
//! - response: [`RESPONSE_TYPE`], the sender's token, path id, the probe's
//!   challenge, datagrams received on the path (u64), bytes received (u64).
//!
//! A path only carries traffic once this end had an answer to a challenge
//! it sent there, so an address is validated the way RFC 9000 section 8.2
//! validates one. Before that, on a path the peer opened, this end sends at
//! most three times the bytes that arrived there (probes and responses),
//! gives up after [`OPEN_TIMEOUT`] and abandons it at once: a peer that
//! claims a victim's address gets nothing sent there beyond that.
//! Path 0 is never abandoned (it is the transport's own); failed, it is
//! probed until it answers again.
//!
//! The token ([`token`]) names the connection to a receiver that gets a
//! probe from an address it does not know yet; it is no secret (it is sent
//! in clear), the tag is what proves the probe.

#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// A path's number on both ends: 0 is the transport's first path.
pub type PathId = u8;
/// Most paths of one layer (path 0 and three more).
pub const MAX_PATHS: usize = 4;
/// A repair path ([`super::policy::Plan::repair_path`]) meaning: the usable
/// path losing least other than the one the newest source took (that one
/// when it is the only usable path). Sources and their repairs then never
/// share a fate: a cut of one path leaves the repairs of what it carried.
pub const OTHER_PATH: PathId = 0xff;
/// First byte of a path probe.
pub const PROBE_TYPE: u8 = 0x11;
/// First byte of a probe's response.
pub const RESPONSE_TYPE: u8 = 0x12;
/// Bytes of a path token.
pub const TOKEN_LEN: usize = 8;
/// Length of a probe before its trailer.
pub const PROBE_LEN: usize = 1 + TOKEN_LEN + 1 + 8;
/// Length of a response before its trailer.
pub const RESPONSE_LEN: usize = PROBE_LEN + 8 + 8;
/// How often each path is probed while more than one is in use.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(25);
/// Least time past its RTT a probe may take before its path is suspect.
pub const SUSPECT_MARGIN: Duration = Duration::from_millis(5);
/// Least silence, and how many mean gaps between arrivals, after which a
/// busy path (those gaps under one RTT) is suspect without waiting for a
/// probe.
pub const SILENCE_MIN: Duration = Duration::from_millis(5);
/// See [`SILENCE_MIN`].
pub const SILENCE_GAPS: u32 = 4;
/// Arrivals are counted over windows this long for the mean gap.
const GAP_WINDOW: Duration = Duration::from_millis(50);
/// Shortest silence after which a validated path fails (4 RTTs when longer).
pub const FAIL_AFTER: Duration = Duration::from_millis(150);
/// Probes a validated path must also have left unanswered to fail: a
/// silence this end did not probe (its process stalled, the answers wait
/// unread in the socket) proves nothing.
pub const FAIL_PROBES: usize = 4;
/// How long a path may take to answer its first probe before it fails.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a failed path is probed before it is abandoned.
pub const ABANDON_AFTER: Duration = Duration::from_secs(10);
/// Loss rates are taken over about this much of the latest responses.
pub const LOSS_HORIZON: Duration = Duration::from_secs(1);
/// Most probes awaiting an answer remembered per path.
const PROBES_KEPT: usize = 64;
/// Most path events kept for the transport to read.
const EVENTS_KEPT: usize = 64;

/// The token a layer keyed with `send_key` puts in its probes: bytes 16..24
/// of the key (the MAC uses the first 16), so the peer, whose receive key
/// it is, knows it without another derivation.
pub fn token(send_key: &[u8; 32]) -> [u8; TOKEN_LEN] {
    let mut token = [0; TOKEN_LEN];
    token.copy_from_slice(&send_key[16..16 + TOKEN_LEN]);
    token
}

/// Of `candidates` (path id and view), the one losing least; ties go to the
/// shorter RTT (an unknown one counts as the longest), then to the lower id.
/// How the layer picks a path for repairs when the policy's is not usable;
/// harnesses apply it to the views they show.
pub fn least_lossy<'a>(candidates: impl Iterator<Item = (usize, &'a PathView)>) -> Option<usize> {
    candidates
        .min_by_key(|(i, v)| (v.loss_permille, v.rtt.unwrap_or(Duration::MAX), *i))
        .map(|(i, _)| i)
}

/// The token and path id of a probe or response, read without
/// authenticating it (what a transport needs to find the layer that will).
pub fn peek(datagram: &[u8]) -> Option<([u8; TOKEN_LEN], PathId)> {
    match datagram.first() {
        Some(&PROBE_TYPE) | Some(&RESPONSE_TYPE) if datagram.len() >= PROBE_LEN => {
            let mut token = [0; TOKEN_LEN];
            token.copy_from_slice(&datagram[1..1 + TOKEN_LEN]);
            let path = datagram[1 + TOKEN_LEN];
            (usize::from(path) < MAX_PATHS).then_some((token, path))
        }
        _ => None,
    }
}

/// Where a path stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum PathState {
    /// Not in use.
    #[default]
    Unused = 0,
    /// Opened (by this end, or by the peer's first probe), not answered yet.
    Opening = 1,
    /// Answered probes recently: carries traffic.
    Validated = 2,
    /// Went silent: carries nothing but probes.
    Failed = 3,
    /// Failed for too long: not probed any more.
    Abandoned = 4,
}

/// What happened to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathEventKind {
    /// This end opened it, or the peer's first authentic probe arrived on it.
    Opened,
    /// It answered a probe (first time, or again after failing).
    Validated,
    /// It went silent.
    Failed,
    /// It stayed silent for [`ABANDON_AFTER`].
    Abandoned,
}

/// A path event, for the transport's log and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PathEvent {
    /// The path.
    pub path: PathId,
    /// What happened.
    pub kind: PathEventKind,
}

/// One path as a policy and the transport see it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathView {
    /// Where it stands.
    pub state: PathState,
    /// Loss rate of this end's datagrams on it, per mille (0 until measured).
    pub loss_permille: u32,
    /// Smoothed probe round-trip time, once measured.
    pub rtt: Option<Duration>,
    /// Datagrams this end sent on it.
    pub sent_datagrams: u64,
    /// Bytes of those.
    pub sent_bytes: u64,
    /// Source packets among them.
    pub source_packets: u64,
    /// Repair packets among them.
    pub repair_packets: u64,
    /// Datagrams from the peer that arrived on it.
    pub received_datagrams: u64,
    /// Bytes of those.
    pub received_bytes: u64,
}

impl PathView {
    /// True when traffic may be scheduled on it.
    pub fn is_usable(&self) -> bool {
        self.state == PathState::Validated
    }
}

/// A probe this end sent and has not had answered.
#[derive(Debug, Clone, Copy)]
struct Probe {
    challenge: u64,
    at: Instant,
    /// Datagrams sent on the path up to and including the probe; `None`
    /// until the probe was routed.
    sent: Option<u64>,
    /// Source packets sent on the path before it.
    sources: u64,
}

#[derive(Debug, Clone, Default)]
struct Path {
    view: PathView,
    since: Option<Instant>,
    last_answer: Option<Instant>,
    next_probe: Option<Instant>,
    probes: VecDeque<Probe>,
    /// (when, sent, received) from responses, oldest first.
    samples: VecDeque<(Instant, u64, u64)>,
    /// Smooth weighted round-robin credit, in bytes.
    credit: f64,
    /// A probe is overdue and nothing arrives: nothing new goes here.
    suspect: bool,
    last_arrival: Option<Instant>,
    /// Source packets sent before the latest answered probe.
    confirmed_sources: u64,
    /// The overdue probe last looked at (its deadline is not a timer any
    /// more; the probe ticks look again).
    checked: Option<u64>,
    /// Mean gap between the peer's datagrams on it: the time of a window
    /// of arrivals over their count (bursts do not make it look busier).
    gap: Option<Duration>,
    /// The window being counted: since when, how many.
    arrivals: Option<(Instant, u32)>,
    /// The arrival whose silence deadline was last looked at.
    checked_silence: Option<Instant>,
    /// The peer opened it (its first probe came from an address this end
    /// never chose).
    by_peer: bool,
    /// The layer's own datagrams sent on it (what the peer's responses
    /// count on its side).
    counted: u64,
}

impl Path {
    fn takes_traffic(&self) -> bool {
        self.view.is_usable() && !self.suspect
    }

    /// The oldest unanswered probe and when it makes this path suspect
    /// (validated paths with an RTT only).
    fn suspect_at(&self) -> Option<(u64, Instant)> {
        if self.suspect || !self.view.is_usable() {
            return None;
        }
        let rtt = self.view.rtt?;
        let probe = self.probes.iter().find(|p| p.sent.is_some())?;
        Some((
            probe.challenge,
            probe.at + rtt + (rtt / 4).max(SUSPECT_MARGIN),
        ))
    }

    /// That deadline as a timer, until it was looked at.
    fn suspect_timer(&self) -> Option<Instant> {
        let probe = self
            .suspect_at()
            .filter(|(seq, _)| self.checked != Some(*seq))
            .map(|(_, at)| at);
        let silence = self
            .silence_at()
            .filter(|_| self.checked_silence != self.last_arrival);
        probe.into_iter().chain(silence).min()
    }

    /// When the peer's datagrams, arriving every `gap` on average, have been
    /// missing for long enough to make this path suspect: a cut shows here
    /// within a few gaps on a busy path, before any probe is overdue.
    /// Only on paths busy enough for that to come before an overdue probe
    /// (`SILENCE_GAPS` gaps under one RTT).
    fn silence_at(&self) -> Option<Instant> {
        if self.suspect || !self.view.is_usable() {
            return None;
        }
        let gaps = self.gap? * SILENCE_GAPS;
        if gaps >= self.view.rtt? {
            return None;
        }
        Some(self.last_arrival? + gaps.max(SILENCE_MIN))
    }
}

/// The paths of one layer (see the module docs).
#[derive(Debug, Clone, Default)]
pub(super) struct Paths {
    paths: [Path; MAX_PATHS],
    /// More than path 0 in use: probes run, and routing chooses.
    multipath: bool,
    events: VecDeque<PathEvent>,
    /// Routes of the datagrams the layer's last call pushed.
    routes: Vec<PathId>,
    /// The path the newest source took.
    last_source: PathId,
}

/// What a datagram is, for routing and the per-path counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Carried {
    Source,
    Repair,
    /// Probe or response: on its own path.
    Own(PathId),
    Other,
}

impl Paths {
    pub(super) fn new(now: Instant) -> Self {
        let mut paths = Paths::default();
        paths.paths[0].view.state = PathState::Validated;
        paths.paths[0].since = Some(now);
        paths
    }

    pub(super) fn view(&self) -> [PathView; MAX_PATHS] {
        std::array::from_fn(|i| self.paths[i].view)
    }

    pub(super) fn routes(&self) -> &[PathId] {
        &self.routes
    }

    pub(super) fn take_event(&mut self) -> Option<PathEvent> {
        self.events.pop_front()
    }

    fn event(&mut self, path: PathId, kind: PathEventKind) {
        if self.events.len() >= EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back(PathEvent { path, kind });
    }

    fn set_state(&mut self, now: Instant, path: PathId, state: PathState, kind: PathEventKind) {
        let p = &mut self.paths[usize::from(path)];
        p.view.state = state;
        p.since = Some(now);
        self.event(path, kind);
    }

    /// Opens `path` (1..MAX_PATHS) from this end; false when it is out of
    /// range or already in use.
    pub(super) fn open(&mut self, now: Instant, path: PathId) -> bool {
        let index = usize::from(path);
        if index == 0 || index >= MAX_PATHS {
            return false;
        }
        if !matches!(
            self.paths[index].view.state,
            PathState::Unused | PathState::Abandoned
        ) {
            return false;
        }
        self.start(now, path, false);
        true
    }

    fn start(&mut self, now: Instant, path: PathId, by_peer: bool) {
        let p = &mut self.paths[usize::from(path)];
        p.probes.clear();
        p.samples.clear();
        p.last_answer = None;
        p.next_probe = Some(now);
        p.by_peer = by_peer;
        self.set_state(now, path, PathState::Opening, PathEventKind::Opened);
        if !self.multipath {
            // Path 0's liveness is measured from now on, not from when the
            // layer was made.
            self.multipath = true;
            let first = &mut self.paths[0];
            first.next_probe = Some(now);
            first.since = Some(now);
            first.last_answer = None;
        }
    }

    /// Counts an authenticated datagram of the layer from the peer on
    /// `path` (out of range: path 0).
    pub(super) fn on_arrival(&mut self, now: Instant, path: PathId, len: usize) {
        let p = &mut self.paths[usize::from(path).min(MAX_PATHS - 1)];
        p.view.received_datagrams += 1;
        p.view.received_bytes += len as u64;
        let (start, count) = p.arrivals.unwrap_or((now, 0));
        let span = now.saturating_duration_since(start);
        if span >= GAP_WINDOW && count > 0 {
            let sample = span / count;
            p.gap = Some(p.gap.map_or(sample, |gap| (gap * 3 + sample) / 4));
            p.arrivals = Some((now, 1));
        } else {
            p.arrivals = Some((start, count + 1));
        }
        p.last_arrival = Some(now);
    }

    /// An authentic probe (body without trailer) arrived on `path`: the
    /// response to send on the same path, if it is well-formed. A probe on
    /// a path this end did not use opens it.
    pub(super) fn on_probe(
        &mut self,
        now: Instant,
        path: PathId,
        body: &[u8],
        token: [u8; TOKEN_LEN],
    ) -> Option<Bytes> {
        if body.len() != PROBE_LEN || usize::from(path) >= MAX_PATHS {
            return None;
        }
        if body[1 + TOKEN_LEN] != path {
            return None;
        }
        let challenge = &body[2 + TOKEN_LEN..PROBE_LEN];
        if matches!(
            self.paths[usize::from(path)].view.state,
            PathState::Unused | PathState::Abandoned
        ) {
            self.start(now, path, path != 0);
        }
        let view = self.paths[usize::from(path)].view;
        let mut out = Vec::with_capacity(RESPONSE_LEN + super::auth::TRAILER_LEN);
        out.push(RESPONSE_TYPE);
        out.extend_from_slice(&token);
        out.push(path);
        out.extend_from_slice(challenge);
        out.extend_from_slice(&view.received_datagrams.to_be_bytes());
        out.extend_from_slice(&view.received_bytes.to_be_bytes());
        Some(Bytes::from(out))
    }

    /// An authentic response (body without trailer) arrived on `path`;
    /// false when it is malformed or answers no probe of ours.
    pub(super) fn on_response(&mut self, now: Instant, path: PathId, body: &[u8]) -> bool {
        if body.len() != RESPONSE_LEN || usize::from(path) >= MAX_PATHS {
            return false;
        }
        if body[1 + TOKEN_LEN] != path {
            return false;
        }
        let field = |at: usize, n: usize| {
            body[at..at + n]
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
        };
        let challenge = field(2 + TOKEN_LEN, 8);
        let received = field(PROBE_LEN, 8);
        let p = &mut self.paths[usize::from(path)];
        let Some(i) = p
            .probes
            .iter()
            .position(|probe| probe.challenge == challenge)
        else {
            return false;
        };
        let probe = p.probes[i];
        // Older probes than an answered one are not waited for any more.
        p.probes.drain(..=i);
        let sample = now.saturating_duration_since(probe.at);
        p.view.rtt = Some(match p.view.rtt {
            Some(srtt) => (srtt * 7 + sample) / 8,
            None => sample,
        });
        p.last_answer = Some(now);
        p.suspect = false;
        p.confirmed_sources = p.confirmed_sources.max(probe.sources);
        if let Some(sent) = probe.sent {
            p.samples.push_back((now, sent, received));
            while p.samples.len() > 2
                && p.samples
                    .get(1)
                    .is_some_and(|s| now.saturating_duration_since(s.0) > LOSS_HORIZON)
            {
                p.samples.pop_front();
            }
            if let (Some(&(_, s0, r0)), Some(&(_, s1, r1))) = (p.samples.front(), p.samples.back())
            {
                let sent = s1.saturating_sub(s0);
                let got = r1.saturating_sub(r0).min(sent);
                if sent >= 20 {
                    p.view.loss_permille = ((sent - got) * 1000 / sent) as u32;
                }
            }
        }
        if matches!(p.view.state, PathState::Opening | PathState::Failed) {
            self.set_state(now, path, PathState::Validated, PathEventKind::Validated);
        }
        true
    }

    /// The next probe or state change due.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        if !self.multipath {
            return None;
        }
        self.paths
            .iter()
            .flat_map(|p| match p.view.state {
                PathState::Unused | PathState::Abandoned => [None, None],
                _ => [p.next_probe, p.suspect_timer()],
            })
            .flatten()
            .min()
    }

    fn fail_after(p: &Path) -> Duration {
        p.view
            .rtt
            .map_or(FAIL_AFTER, |rtt| (rtt * 4).max(FAIL_AFTER))
    }

    /// Time passed: state changes, and probes due (pushed, unsealed, to
    /// `out`). Returns how many sources went on paths that just became
    /// suspect since their last answered probe: the repairs to send on the
    /// others.
    pub(super) fn handle_timeout(
        &mut self,
        now: Instant,
        token: [u8; TOKEN_LEN],
        out: &mut Vec<Bytes>,
    ) -> u64 {
        if !self.multipath {
            return 0;
        }
        let mut uncovered = 0;
        for index in 0..MAX_PATHS {
            let path = index as PathId;
            let others = (0..MAX_PATHS).any(|i| i != index && self.paths[i].takes_traffic());
            let p = &mut self.paths[index];
            let quiet = p.view.rtt.is_some_and(|rtt| {
                p.last_arrival
                    .is_none_or(|at| now.saturating_duration_since(at) > rtt / 2 + SUSPECT_MARGIN)
            });
            let mut overdue = false;
            if let Some((challenge, _)) = p.suspect_at().filter(|(_, at)| *at <= now) {
                p.checked = Some(challenge);
                overdue = quiet;
            }
            if p.silence_at().is_some_and(|at| at <= now) {
                p.checked_silence = p.last_arrival;
                overdue = true;
            }
            if others && overdue {
                p.suspect = true;
                uncovered += p.view.source_packets.saturating_sub(p.confirmed_sources);
            }
            let p = &self.paths[index];
            let since = p.since.unwrap_or(now);
            let silent_since = p.last_answer.unwrap_or(since).max(since);
            let silence = now.saturating_duration_since(silent_since);
            match p.view.state {
                PathState::Unused | PathState::Abandoned => continue,
                PathState::Opening if silence > OPEN_TIMEOUT && p.by_peer => {
                    // Never answered: an address the peer claimed but this
                    // end cannot reach, or a victim's. Nothing more goes there.
                    self.set_state(now, path, PathState::Abandoned, PathEventKind::Abandoned);
                    continue;
                }
                PathState::Opening if silence > OPEN_TIMEOUT => {
                    self.set_state(now, path, PathState::Failed, PathEventKind::Failed);
                }
                PathState::Validated
                    if silence > Self::fail_after(p) && p.probes.len() >= FAIL_PROBES =>
                {
                    self.set_state(now, path, PathState::Failed, PathEventKind::Failed);
                }
                PathState::Failed
                    if index != 0 && now.saturating_duration_since(since) > ABANDON_AFTER =>
                {
                    self.set_state(now, path, PathState::Abandoned, PathEventKind::Abandoned);
                    continue;
                }
                _ => {}
            }
            let p = &mut self.paths[index];
            if p.next_probe.is_some_and(|at| at <= now) {
                p.next_probe = Some(now + PROBE_INTERVAL);
                // Anti-amplification before the peer's path answered: at
                // most three times what arrived on it.
                let wire = (PROBE_LEN + super::auth::TRAILER_LEN) as u64;
                let limited = p.by_peer
                    && p.view.state == PathState::Opening
                    && p.view.sent_bytes + wire > 3 * p.view.received_bytes;
                // The challenge must be unpredictable to the peer (it holds
                // both keys of the connection); without randomness, no probe.
                let mut random = [0u8; 8];
                if limited || getrandom::getrandom(&mut random).is_err() {
                    continue;
                }
                let challenge = u64::from_be_bytes(random);
                if p.probes.len() >= PROBES_KEPT {
                    p.probes.pop_front();
                }
                p.probes.push_back(Probe {
                    challenge,
                    at: now,
                    sent: None,
                    sources: 0,
                });
                let mut probe = Vec::with_capacity(PROBE_LEN + super::auth::TRAILER_LEN);
                probe.push(PROBE_TYPE);
                probe.extend_from_slice(&token);
                probe.push(path);
                probe.extend_from_slice(&random);
                out.push(Bytes::from(probe));
            }
        }
        uncovered
    }

    /// The usable path losing least (ties: the shorter RTT, then the lower
    /// id); path 0 when none is usable.
    pub(super) fn best(&self) -> PathId {
        self.best_except(None)
    }

    /// [`best`](Self::best) among the usable paths but `except` (when there
    /// is another).
    fn best_except(&self, except: Option<PathId>) -> PathId {
        let others = self.usable().any(|i| Some(i as PathId) != except);
        let candidates = self
            .usable()
            .filter(|&i| !others || Some(i as PathId) != except)
            .map(|i| (i, &self.paths[i].view));
        least_lossy(candidates).map_or(0, |i| i as PathId)
    }

    fn usable(&self) -> impl Iterator<Item = usize> + '_ {
        (0..MAX_PATHS).filter(|&i| self.paths[i].takes_traffic())
    }

    /// A path for `len` bytes of shared traffic (smooth weighted round
    /// robin by bytes, weights `(1 - loss)^8 / RTT`).
    fn share(&mut self, len: usize) -> PathId {
        let weight = |v: &PathView| {
            let keep = 1.0 - f64::from(v.loss_permille.min(1000)) / 1000.0;
            let rtt = v.rtt.unwrap_or(Duration::from_millis(1)).as_secs_f64();
            keep.powi(8) / rtt.max(1e-4)
        };
        let total: f64 = self.usable().map(|i| weight(&self.paths[i].view)).sum();
        if total <= 0.0 {
            return self.best();
        }
        let mut chosen = None;
        for i in 0..MAX_PATHS {
            if !self.paths[i].takes_traffic() {
                self.paths[i].credit = 0.0;
                continue;
            }
            let share = weight(&self.paths[i].view) / total;
            // Credit stays within a few packets of even, whatever happened
            // before (a path just validated does not get a burst).
            let credit = (self.paths[i].credit + len as f64 * share).min(4.0 * 1500.0);
            self.paths[i].credit = credit;
            if chosen.is_none_or(|c: usize| credit > self.paths[c].credit) {
                chosen = Some(i);
            }
        }
        let Some(chosen) = chosen else {
            return self.best();
        };
        self.paths[chosen].credit -= len as f64;
        chosen as PathId
    }

    /// Chooses the path of each datagram in `out[start..]` and counts it
    /// there; `repair_path` is the policy's choice for repairs.
    pub(super) fn route(
        &mut self,
        out: &[Bytes],
        start: usize,
        repair_path: Option<PathId>,
        classify: impl Fn(&Bytes) -> Carried,
    ) {
        self.routes.clear();
        for datagram in &out[start.min(out.len())..] {
            let carried = classify(datagram);
            let path = if !self.multipath {
                0
            } else {
                match carried {
                    Carried::Own(path) => path,
                    Carried::Repair if repair_path == Some(OTHER_PATH) => {
                        self.best_except(Some(self.last_source))
                    }
                    Carried::Repair => repair_path
                        .filter(|&p| {
                            usize::from(p) < MAX_PATHS && self.paths[usize::from(p)].takes_traffic()
                        })
                        .unwrap_or_else(|| self.best()),
                    Carried::Source | Carried::Other => self.share(datagram.len()),
                }
            };
            let p = &mut self.paths[usize::from(path)];
            p.view.sent_datagrams += 1;
            p.view.sent_bytes += datagram.len() as u64;
            if datagram.first().is_some_and(|b| b & super::PLAIN_BIT == 0) {
                p.counted += 1;
            }
            match carried {
                Carried::Source => {
                    p.view.source_packets += 1;
                    self.last_source = path;
                }
                Carried::Repair => p.view.repair_packets += 1,
                Carried::Own(_) if datagram.first() == Some(&PROBE_TYPE) => {
                    let (sent, sources) = (p.counted, p.view.source_packets);
                    if let Some(probe) =
                        p.probes.iter_mut().rev().find(|probe| probe.sent.is_none())
                    {
                        probe.sent = Some(sent);
                        probe.sources = sources;
                    }
                }
                _ => {}
            }
            self.routes.push(path);
        }
    }
}

#[cfg(test)]
mod tests;
