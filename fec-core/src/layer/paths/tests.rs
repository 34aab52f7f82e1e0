//! Two layers over two simulated paths (fake clock, 10 ms each way): what
//! the probes measure, where repairs go, and what a cut does.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::layer::auth::Keys;
use crate::layer::policy::{FixedRate, Plan, Policy, Schedule, Source, View};
use crate::layer::{Layer, LayerConfig};
use crate::pipeline::loss::{Bernoulli, LossModel};

const ONE_WAY: Duration = Duration::from_millis(10);

/// One direction of one path: a delay line and a loss process.
struct Link {
    queue: VecDeque<(Instant, Bytes)>,
    loss: Bernoulli,
    cut: bool,
}

impl Link {
    fn new(loss: f64, seed: u64) -> Self {
        Link {
            queue: VecDeque::new(),
            loss: Bernoulli::new(loss, seed),
            cut: false,
        }
    }

    fn push(&mut self, now: Instant, datagram: Bytes) {
        if !self.cut && !self.loss.lost() {
            self.queue.push_back((now + ONE_WAY, datagram));
        }
    }

    fn due(&mut self, now: Instant) -> Vec<Bytes> {
        let mut due = Vec::new();
        while self.queue.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, d)) = self.queue.pop_front() {
                due.push(d);
            }
        }
        due
    }
}

struct End {
    layer: Layer,
    events: Vec<PathEvent>,
    delivered: Vec<Bytes>,
}

impl End {
    fn new(policy: Option<Box<dyn Policy>>, keys: &Keys, now: Instant) -> Self {
        let mut layer = Layer::new(LayerConfig::default(), policy, now);
        layer.set_keys(keys);
        End {
            layer,
            events: Vec::new(),
            delivered: Vec::new(),
        }
    }

    /// Puts what the last call pushed on the links of its routes.
    fn ship(&mut self, now: Instant, out: &mut Vec<Bytes>, links: &mut [Link; 2]) {
        let routes = self.layer.routes().to_vec();
        assert_eq!(routes.len(), out.len(), "one route per datagram");
        for (datagram, path) in out.drain(..).zip(routes) {
            links[usize::from(path)].push(now, datagram);
        }
        while let Some(event) = self.layer.take_path_event() {
            self.events.push(event);
        }
    }
}

struct Net {
    now: Instant,
    client: End,
    server: End,
    /// Client to server, per path; and back.
    up: [Link; 2],
    down: [Link; 2],
    sent: u32,
    /// Milliseconds between the client's ADUs.
    gap: u32,
}

impl Net {
    fn new(policy: Box<dyn Policy>, loss: [f64; 2]) -> Self {
        let now = Instant::now();
        let (client_keys, server_keys) = Keys::pair([1; 32], [2; 32]);
        Net {
            now,
            client: End::new(Some(policy), &client_keys, now),
            server: End::new(None, &server_keys, now),
            up: [Link::new(loss[0], 1), Link::new(loss[1], 2)],
            down: [Link::new(loss[0], 3), Link::new(loss[1], 4)],
            sent: 0,
            gap: 1,
        }
    }

    /// `ms` milliseconds with one 1000-byte ADU from the client every
    /// `gap` of them.
    fn run(&mut self, ms: u32) {
        let mut out = Vec::new();
        for tick in 0..ms {
            if tick % self.gap == 0 {
                let mut adu = vec![0x40u8; 1000];
                adu[1..5].copy_from_slice(&self.sent.to_be_bytes());
                self.sent += 1;
                self.client.layer.send(self.now, Bytes::from(adu), &mut out);
                self.client.ship(self.now, &mut out, &mut self.up);
            }
            self.now += Duration::from_millis(1);
            Self::step(
                self.now,
                &mut self.server,
                &mut self.up,
                &mut self.down,
                &mut out,
            );
            Self::step(
                self.now,
                &mut self.client,
                &mut self.down,
                &mut self.up,
                &mut out,
            );
        }
    }

    /// What arrived at `end` by now on `links`, and its timers; what it
    /// sends goes on `back`.
    fn step(
        now: Instant,
        end: &mut End,
        links: &mut [Link; 2],
        back: &mut [Link; 2],
        out: &mut Vec<Bytes>,
    ) {
        for path in 0..2u8 {
            for datagram in links[usize::from(path)].due(now) {
                let mut delivered = Vec::new();
                end.layer
                    .receive_on(now, path, datagram, &mut delivered, out);
                end.delivered.extend(delivered);
                end.ship(now, out, back);
            }
        }
        if end.layer.poll_timeout().is_some_and(|t| t <= now) {
            end.layer.handle_timeout(now, out);
            end.ship(now, out, back);
        }
    }
}

fn kinds(events: &[PathEvent], path: PathId) -> Vec<PathEventKind> {
    events
        .iter()
        .filter(|e| e.path == path)
        .map(|e| e.kind)
        .collect()
}

#[test]
fn single_path_layers_send_no_probes_and_route_everything_on_path_0() {
    let mut net = Net::new(Box::new(FixedRate::default()), [0.0, 0.0]);
    net.run(500);
    let paths = net.client.layer.paths();
    assert_eq!(paths[1].state, PathState::Unused);
    assert_eq!(paths[1].sent_datagrams, 0);
    assert_eq!(net.server.layer.paths()[1].received_datagrams, 0);
    assert!(net.client.events.is_empty() && net.server.events.is_empty());
    assert_eq!(paths[0].rtt, None, "no probes on a single path");
}

#[test]
fn probes_measure_each_path_and_repairs_take_the_clean_one() {
    let mut net = Net::new(Box::new(FixedRate::default()), [0.0, 0.10]);
    assert!(net.client.layer.open_path(net.now, 1));
    assert!(!net.client.layer.open_path(net.now, 1), "already open");
    assert!(!net.client.layer.open_path(net.now, MAX_PATHS as PathId));
    net.run(4000);
    use PathEventKind::*;
    assert_eq!(kinds(&net.client.events, 1), [Opened, Validated]);
    assert_eq!(kinds(&net.server.events, 1), [Opened, Validated]);
    let client = net.client.layer.paths();
    for (i, path) in client.iter().take(2).enumerate() {
        let rtt = path.rtt.expect("measured").as_millis();
        assert!((20..=24).contains(&rtt), "path {i} rtt {rtt} ms");
        assert_eq!(path.state, PathState::Validated);
    }
    assert!(client[0].loss_permille < 15, "{:?}", client[0]);
    assert!(
        (50..=150).contains(&client[1].loss_permille),
        "{:?}",
        client[1]
    );
    // The server measures its own direction the same way.
    let server = net.server.layer.paths();
    assert!((50..=150).contains(&server[1].loss_permille), "{server:?}");
    // Repairs on the clean path; sources shared, the lossy path carrying less.
    assert!(client[0].repair_packets > 500, "{:?}", client[0]);
    assert_eq!(client[1].repair_packets, 0);
    assert!(client[1].source_packets > 300, "{:?}", client[1]);
    assert!(client[1].source_packets < client[0].source_packets);
    // What the server counted on each path is what the client sent there,
    // less the losses.
    let got = net.server.layer.paths()[1].received_datagrams as f64;
    let sent = client[1].sent_datagrams as f64;
    assert!((0.85..0.95).contains(&(got / sent)), "{got} of {sent}");
    // Nearly every ADU arrived (the rest is residual loss of the code).
    let delivered = net.server.delivered.len() as f64;
    assert!(
        delivered >= 0.995 * f64::from(net.sent) - 30.0,
        "{delivered}"
    );
}

#[test]
fn a_cut_path_fails_and_traffic_moves_to_the_other() {
    let mut net = Net::new(Box::new(FixedRate::default()), [0.0, 0.0]);
    net.client.layer.open_path(net.now, 1);
    net.run(1000);
    let before = net.client.layer.paths();
    assert!(before[0].source_packets > 300 && before[1].source_packets > 300);
    net.up[0].cut = true;
    net.down[0].cut = true;
    net.run(400);
    use PathEventKind::*;
    assert_eq!(kinds(&net.client.events, 0), [Failed]);
    assert_eq!(kinds(&net.server.events, 0), [Failed]);
    let cut = net.client.layer.paths();
    assert_eq!(cut[0].state, PathState::Failed);
    net.run(1000);
    let after = net.client.layer.paths();
    assert_eq!(
        after[0].source_packets, cut[0].source_packets,
        "nothing but probes on a failed path"
    );
    assert!(after[1].source_packets - cut[1].source_packets >= 999);
    // It comes back when the link does.
    net.up[0].cut = false;
    net.down[0].cut = false;
    net.run(200);
    assert_eq!(kinds(&net.client.events, 0), [Failed, Validated]);
    assert_eq!(net.client.layer.paths()[0].state, PathState::Validated);
}

#[test]
fn what_a_cut_path_carried_is_repaired_on_the_other_within_a_round_trip() {
    // One repair per 32 sources: alone, far too few for a cut.
    let mut net = Net::new(Box::new(OnePer(32)), [0.0, 0.0]);
    net.gap = 4;
    net.client.layer.open_path(net.now, 1);
    net.run(1000);
    let before = net.client.layer.paths();
    net.up[0].cut = true;
    net.down[0].cut = true;
    let at_cut = net.sent;
    net.run(100);
    let seqs: std::collections::HashSet<u32> = net
        .server
        .delivered
        .iter()
        .map(|adu| u32::from_be_bytes([adu[1], adu[2], adu[3], adu[4]]))
        .collect();
    let missing: Vec<u32> = (0..at_cut).filter(|s| !seqs.contains(s)).collect();
    // No retransmission here: only the repairs sent on path 1 when path 0
    // fell silent can have brought these back.
    assert!(missing.is_empty(), "lost for good: {missing:?}");
    let after = net.client.layer.paths();
    let extra = after[1].repair_packets - before[1].repair_packets;
    assert!(extra >= 5, "{extra} repairs on path 1 after the cut");
    assert!(net.client.layer.stats().repair_packets > 0);
}

#[test]
fn a_failed_path_is_abandoned_after_a_while() {
    let mut net = Net::new(Box::new(FixedRate::default()), [0.0, 0.0]);
    net.client.layer.open_path(net.now, 1);
    net.run(200);
    net.up[1].cut = true;
    net.down[1].cut = true;
    net.run(ABANDON_AFTER.as_millis() as u32 + 500);
    use PathEventKind::*;
    assert_eq!(
        kinds(&net.client.events, 1),
        [Opened, Validated, Failed, Abandoned]
    );
    let probes = net.client.layer.paths()[1].sent_datagrams;
    net.run(200);
    assert_eq!(
        net.client.layer.paths()[1].sent_datagrams,
        probes,
        "no probes"
    );
}

/// RLC over 64 sources, one repair per `self.0`.
#[derive(Debug)]
struct OnePer(usize);

impl Policy for OnePer {
    fn configure(&mut self, _: Instant, _: &crate::layer::policy::Limits, _: &View) -> Plan {
        Plan {
            code: Some(crate::layer::policy::CodeChoice::Rlc { window: 64 }),
            ..Plan::default()
        }
    }
    fn on_source(&mut self, _: Instant, _: &Source, _: &View) -> Plan {
        Plan::protect()
    }
    fn schedule_repair(&mut self, _: Instant, s: &Schedule, _: &View) -> Plan {
        Plan::repairs(usize::from(s.pending >= self.0))
    }
}

/// Repairs where the policy says, when that path is usable.
#[derive(Debug)]
struct RepairOn(PathId);

impl Policy for RepairOn {
    fn configure(&mut self, _: Instant, _: &crate::layer::policy::Limits, _: &View) -> Plan {
        Plan {
            repair_path: Some(self.0),
            ..Plan::default()
        }
    }
    fn on_source(&mut self, _: Instant, _: &Source, _: &View) -> Plan {
        Plan::protect()
    }
    fn schedule_repair(&mut self, _: Instant, s: &Schedule, _: &View) -> Plan {
        Plan::repairs(usize::from(s.pending >= 4))
    }
}

#[test]
fn the_policy_chooses_the_repair_path() {
    let mut net = Net::new(Box::new(RepairOn(1)), [0.0, 0.0]);
    net.client.layer.open_path(net.now, 1);
    net.run(1000);
    let paths = net.client.layer.paths();
    // Before path 1 was validated (one RTT) repairs took path 0.
    assert!(paths[0].repair_packets <= 10, "{:?}", paths[0]);
    assert!(paths[1].repair_packets >= 200, "{:?}", paths[1]);
}

#[test]
fn forged_probes_are_dropped_and_open_nothing() {
    let now = Instant::now();
    let (_, server_keys) = Keys::pair([1; 32], [2; 32]);
    let mut server = Layer::new(LayerConfig::default(), None, now);
    server.set_keys(&server_keys);
    let token = server.peer_token().expect("keyed");
    let mut probe = vec![PROBE_TYPE];
    probe.extend_from_slice(&token);
    probe.extend_from_slice(&[1, 0, 0, 0, 7]);
    probe.extend_from_slice(&[0; crate::layer::auth::TRAILER_LEN]);
    assert_eq!(peek(&probe), Some((token, 1)));
    let (mut delivered, mut out) = (Vec::new(), Vec::new());
    assert!(!server.receive_on(now, 1, Bytes::from(probe), &mut delivered, &mut out));
    assert!(out.is_empty());
    assert_eq!(server.paths()[1].state, PathState::Unused);
    assert_eq!(server.take_path_event(), None);
    assert_eq!(server.stats().unauthenticated, 1);
    // Out-of-range path ids are not peeked.
    let mut bad = vec![PROBE_TYPE];
    bad.extend_from_slice(&token);
    bad.extend_from_slice(&[MAX_PATHS as u8, 0, 0, 0, 0]);
    assert_eq!(peek(&bad), None);
    assert_eq!(peek(&[RESPONSE_TYPE, 1, 2]), None);
}

#[test]
fn a_path_opened_late_does_not_fail_path_0() {
    let mut net = Net::new(Box::new(FixedRate::default()), [0.0, 0.0]);
    net.run(1000);
    net.client.layer.open_path(net.now, 1);
    net.run(500);
    use PathEventKind::*;
    assert_eq!(kinds(&net.client.events, 0), []);
    assert_eq!(kinds(&net.server.events, 0), []);
    assert_eq!(kinds(&net.client.events, 1), [Opened, Validated]);
}

#[test]
fn path_0_is_never_abandoned() {
    let mut net = Net::new(Box::new(FixedRate::default()), [0.0, 0.0]);
    net.client.layer.open_path(net.now, 1);
    net.run(200);
    net.up[0].cut = true;
    net.down[0].cut = true;
    net.run(ABANDON_AFTER.as_millis() as u32 + 1000);
    use PathEventKind::*;
    assert_eq!(kinds(&net.client.events, 0), [Failed]);
    net.up[0].cut = false;
    net.down[0].cut = false;
    net.run(300);
    assert_eq!(kinds(&net.client.events, 0), [Failed, Validated]);
}

#[test]
fn a_path_the_peer_claims_gets_little_until_it_answers_then_is_abandoned() {
    let mut net = Net::new(Box::new(FixedRate::default()), [0.0, 0.0]);
    net.client.layer.open_path(net.now, 1);
    // One probe gets through; the address it came from never answers (a
    // victim's, say): nothing from the server arrives there.
    net.run(1);
    net.up[1].cut = true;
    net.down[1].cut = true;
    net.run(OPEN_TIMEOUT.as_millis() as u32 + 500);
    let server = net.server.layer.paths()[1];
    assert!(server.received_bytes > 0, "{server:?}");
    assert!(
        server.sent_bytes <= 3 * server.received_bytes,
        "amplification: {server:?}"
    );
    use PathEventKind::*;
    assert_eq!(kinds(&net.server.events, 1), [Opened, Abandoned]);
    let probes = server.sent_datagrams;
    net.run(500);
    assert_eq!(net.server.layer.paths()[1].sent_datagrams, probes);
}

#[test]
fn other_path_repairs_never_follow_their_source_on_its_path() {
    let mut net = Net::new(Box::new(RepairOn(OTHER_PATH)), [0.0, 0.0]);
    net.client.layer.open_path(net.now, 1);
    net.run(500);
    assert_eq!(net.client.layer.paths()[1].state, PathState::Validated);
    let mut out = Vec::new();
    let mut routes = Vec::new();
    for i in 0..8u8 {
        net.client
            .layer
            .send(net.now, Bytes::from(vec![0x40, i, 1, 2, 3]), &mut out);
        routes.extend_from_slice(net.client.layer.routes());
    }
    let kinds: Vec<bool> = out
        .iter()
        .map(|d| crate::pipeline::wire::is_repair_packet(d))
        .collect();
    for (i, repair) in kinds.iter().enumerate() {
        if *repair {
            let source = (0..i).rev().find(|&j| !kinds[j]).expect("a source before");
            assert_ne!(routes[i], routes[source], "repair {i} on its source's path");
        }
    }
    assert!(kinds.iter().any(|r| *r));
}

#[test]
fn an_end_that_stalled_fails_no_path_it_did_not_probe() {
    let mut net = Net::new(Box::new(FixedRate::default()), [0.0, 0.0]);
    net.client.layer.open_path(net.now, 1);
    net.run(300);
    // The client's process stalls for 300 ms: the server runs on, and what
    // it sends (answers too) waits unread.
    let mut out = Vec::new();
    for _ in 0..300 {
        net.now += Duration::from_millis(1);
        Net::step(
            net.now,
            &mut net.server,
            &mut net.up,
            &mut net.down,
            &mut out,
        );
    }
    // It wakes, and its timers run before it reads what waited.
    net.client.layer.handle_timeout(net.now, &mut out);
    net.client.ship(net.now, &mut out, &mut net.up);
    net.run(300);
    use PathEventKind::*;
    assert_eq!(kinds(&net.client.events, 1), [Opened, Validated]);
    assert!(
        !kinds(&net.client.events, 0).contains(&Failed),
        "{:?}",
        net.client.events
    );
}
