//! The QUIC VPN (`pquic-host tunnel`): UDP port forwarding over QUIC
//! DATAGRAM frames (RFC 9221), with the FEC layer under quinn as on every
//! other connection.
//!
//! This module is the sans-IO part: the framing of a tunnelled datagram,
//! the bounded flow tables of both ends and their counters. It owns no
//! socket and no clock (`now` is a parameter). [`udp`] is the thin tokio
//! adapter around it, [`probe`] the measurement tool.
//!
//! # Wire format
//!
//! Each QUIC DATAGRAM frame carries exactly one UDP datagram:
//!
//! ```text
//! +----------------------+------------------------------+
//! | flow id (QUIC varint) | the UDP payload, unchanged   |
//! | 1, 2, 4 or 8 bytes    | (zero or more bytes)         |
//! +----------------------+------------------------------+
//! ```
//!
//! The flow id is a variable-length integer as in RFC 9000 section 16 (two
//! high bits give the length), so the first 64 flows of a connection cost
//! one byte and the first 16384 two. The client picks the ids: a new source
//! address at its `--udp-listen` gets the next id (ids are never reused on
//! a connection, so a late reply cannot reach a later sender); the server
//! opens one UDP socket per id towards `--forward`, and replies from it go
//! back under the same id to the source address it belongs to.
//!
//! # Bounds
//!
//! Both tables hold at most [`FlowConfig::max_flows`] flows and forget a
//! flow after [`FlowConfig::idle_timeout`] without traffic in either
//! direction. A full table first drops its idle flows; if none is idle the
//! new flow is refused (counted) and existing flows keep working: a
//! spoofer at the client's UDP port can cost new flows, never memory or
//! the flows already open. A datagram too large for one QUIC DATAGRAM
//! frame on the current path is dropped and counted, never cut.

#![forbid(unsafe_code)]

pub mod probe;
#[cfg(target_os = "linux")]
pub mod tun;
pub mod udp;

use std::collections::HashMap;
use std::hash::Hash;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// ALPN of the tunnel protocol, so that a tunnel client never talks to a
/// workload server (or the other way round).
pub const TUNNEL_ALPN: &[u8] = b"pquic-tunnel/1";

/// Largest flow id: a QUIC varint holds 62 bits.
pub const MAX_FLOW_ID: u64 = (1 << 62) - 1;

/// Longest flow id header.
pub const MAX_HEADER_LEN: usize = 8;

/// A flow's id on the tunnel (see the module docs).
pub type FlowId = u64;

/// Why a tunnel datagram could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The datagram is empty or shorter than its flow id's length says.
    #[error("tunnel datagram of {len} bytes is shorter than its flow id header ({needed} bytes)")]
    Truncated {
        /// The datagram's length.
        len: usize,
        /// The header length its first byte announces.
        needed: usize,
    },
}

/// Bytes the header of `flow` takes (1, 2, 4 or 8).
///
/// ```
/// use pquic_host::tunnel::header_len;
/// assert_eq!(header_len(63), 1);
/// assert_eq!(header_len(64), 2);
/// assert_eq!(header_len(16_384), 4);
/// assert_eq!(header_len(1 << 30), 8);
/// ```
pub fn header_len(flow: FlowId) -> usize {
    match flow {
        0..=0x3f => 1,
        0x40..=0x3fff => 2,
        0x4000..=0x3fff_ffff => 4,
        _ => 8,
    }
}

/// Appends the header of `flow` to `out` (RFC 9000 section 16 encoding).
///
/// # Panics
/// If `flow > MAX_FLOW_ID` (ids come from [`ClientFlows`], which never
/// hands out such an id).
pub fn encode_header(flow: FlowId, out: &mut Vec<u8>) {
    assert!(flow <= MAX_FLOW_ID, "flow id {flow} exceeds 62 bits");
    let len = header_len(flow);
    let tag = match len {
        1 => 0u64,
        2 => 1,
        4 => 2,
        _ => 3,
    };
    let value = flow | tag << (len * 8 - 2);
    out.extend_from_slice(&value.to_be_bytes()[8 - len..]);
}

/// Splits a tunnel datagram into its flow id and the UDP payload.
///
/// ```
/// use pquic_host::tunnel::{encode_header, split};
/// let mut datagram = Vec::new();
/// encode_header(300, &mut datagram);
/// datagram.extend_from_slice(b"hello");
/// assert_eq!(split(&datagram), Ok((300, &b"hello"[..])));
/// ```
pub fn split(datagram: &[u8]) -> Result<(FlowId, &[u8]), FrameError> {
    let Some(&first) = datagram.first() else {
        return Err(FrameError::Truncated { len: 0, needed: 1 });
    };
    let needed = 1usize << (first >> 6);
    if datagram.len() < needed {
        return Err(FrameError::Truncated {
            len: datagram.len(),
            needed,
        });
    }
    let mut value = u64::from(first & 0x3f);
    for &byte in &datagram[1..needed] {
        value = value << 8 | u64::from(byte);
    }
    Ok((value, &datagram[needed..]))
}

/// Bounds of a flow table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowConfig {
    /// Most flows at once.
    pub max_flows: usize,
    /// A flow without traffic in either direction for this long is
    /// forgotten (its server-side socket closed).
    pub idle_timeout: Duration,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            max_flows: 1024,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

#[derive(Debug)]
struct Entry<V> {
    value: V,
    last_seen: Instant,
}

/// A bounded map of flows that forgets idle ones (see the module docs).
#[derive(Debug)]
pub struct FlowTable<K, V> {
    entries: HashMap<K, Entry<V>>,
    config: FlowConfig,
}

/// A table was full of active flows: the new one was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableFull;

impl<K: Hash + Eq + Copy, V> FlowTable<K, V> {
    /// An empty table with these bounds.
    pub fn new(config: FlowConfig) -> Self {
        FlowTable {
            entries: HashMap::new(),
            config,
        }
    }

    /// The bounds.
    pub fn config(&self) -> FlowConfig {
        self.config
    }

    /// The flow of `key`, marked active at `now`.
    pub fn touch(&mut self, key: &K, now: Instant) -> Option<&mut V> {
        let entry = self.entries.get_mut(key)?;
        entry.last_seen = entry.last_seen.max(now);
        Some(&mut entry.value)
    }

    /// The flow of `key` without marking it active.
    pub fn peek(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|e| &e.value)
    }

    /// Opens a flow (replacing one of the same key, whose value is
    /// dropped). A full table first forgets its idle flows, returned in
    /// the second slot so the caller can count and close them; when none
    /// is idle the flow is refused.
    pub fn insert(
        &mut self,
        key: K,
        value: V,
        now: Instant,
    ) -> (Result<&mut V, TableFull>, Vec<(K, V)>) {
        let mut expired = Vec::new();
        if !self.entries.contains_key(&key) && self.entries.len() >= self.config.max_flows {
            expired = self.expire(now);
            if self.entries.len() >= self.config.max_flows {
                return (Err(TableFull), expired);
            }
        }
        let entry = match self.entries.entry(key) {
            std::collections::hash_map::Entry::Occupied(mut slot) => {
                slot.insert(Entry {
                    value,
                    last_seen: now,
                });
                slot.into_mut()
            }
            std::collections::hash_map::Entry::Vacant(slot) => slot.insert(Entry {
                value,
                last_seen: now,
            }),
        };
        (Ok(&mut entry.value), expired)
    }

    /// Removes the flow of `key`.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.entries.remove(key).map(|e| e.value)
    }

    /// Forgets every flow idle for the timeout or longer at `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<(K, V)> {
        let timeout = self.config.idle_timeout;
        let idle: Vec<K> = self
            .entries
            .iter()
            .filter(|(_, e)| now.saturating_duration_since(e.last_seen) >= timeout)
            .map(|(k, _)| *k)
            .collect();
        idle.into_iter()
            .filter_map(|k| self.entries.remove(&k).map(|e| (k, e.value)))
            .collect()
    }

    /// Flows open now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no flow is open.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The client's flows: source address to flow id and back.
#[derive(Debug)]
pub struct ClientFlows {
    by_source: FlowTable<SocketAddr, FlowId>,
    by_id: HashMap<FlowId, SocketAddr>,
    next_id: FlowId,
}

/// What [`ClientFlows::outgoing`] decided about a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outgoing {
    /// Send it under this flow id; `opened` when the flow is new.
    Flow {
        /// The flow's id.
        id: FlowId,
        /// True for the first datagram of the flow.
        opened: bool,
        /// Idle flows forgotten to make room.
        expired: usize,
    },
    /// The table is full of active flows: drop the datagram.
    Refused,
}

impl ClientFlows {
    /// An empty table with these bounds.
    pub fn new(config: FlowConfig) -> Self {
        ClientFlows {
            by_source: FlowTable::new(config),
            by_id: HashMap::new(),
            next_id: 0,
        }
    }

    /// A datagram from `source` arrived at `now`: its flow id, opening a
    /// flow for a new source.
    pub fn outgoing(&mut self, source: SocketAddr, now: Instant) -> Outgoing {
        if let Some(&mut id) = self.by_source.touch(&source, now) {
            return Outgoing::Flow {
                id,
                opened: false,
                expired: 0,
            };
        }
        if self.next_id > MAX_FLOW_ID {
            return Outgoing::Refused;
        }
        let id = self.next_id;
        let (inserted, expired) = self.by_source.insert(source, id, now);
        for (_, old) in &expired {
            self.by_id.remove(old);
        }
        match inserted {
            Ok(_) => {
                self.next_id += 1;
                self.by_id.insert(id, source);
                Outgoing::Flow {
                    id,
                    opened: true,
                    expired: expired.len(),
                }
            }
            Err(TableFull) => Outgoing::Refused,
        }
    }

    /// A reply on flow `id` came back at `now`: the source address it goes
    /// to, if the flow is still open.
    pub fn incoming(&mut self, id: FlowId, now: Instant) -> Option<SocketAddr> {
        let source = *self.by_id.get(&id)?;
        self.by_source.touch(&source, now);
        Some(source)
    }

    /// Forgets flows idle at `now`; how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let expired = self.by_source.expire(now);
        for (_, id) in &expired {
            self.by_id.remove(id);
        }
        expired.len()
    }

    /// Flows open now.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when no flow is open.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// One direction's datagram and byte counters.
#[derive(Debug, Default)]
struct Pair(AtomicU64, AtomicU64);

impl Pair {
    fn add(&self, bytes: usize) {
        self.0.fetch_add(1, Ordering::Relaxed);
        self.1.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn load(&self) -> (u64, u64) {
        (
            self.0.load(Ordering::Relaxed),
            self.1.load(Ordering::Relaxed),
        )
    }
}

/// Counters of one tunnel end, shared between its tasks (lock-free).
#[derive(Debug, Default)]
pub struct Counters {
    to_tunnel: Pair,
    from_tunnel: Pair,
    too_large: AtomicU64,
    malformed: AtomicU64,
    unknown_flow: AtomicU64,
    flows_opened: AtomicU64,
    flows_expired: AtomicU64,
    flows_refused: AtomicU64,
    udp_errors: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TunnelStats {
    /// UDP datagrams sent into the tunnel (as QUIC datagrams).
    pub tunnelled: u64,
    /// Their UDP payload bytes.
    pub tunnelled_bytes: u64,
    /// UDP datagrams that came out of the tunnel and were delivered.
    pub delivered: u64,
    /// Their UDP payload bytes.
    pub delivered_bytes: u64,
    /// Datagrams dropped because they exceed the path's largest QUIC
    /// datagram (never cut).
    pub too_large: u64,
    /// Tunnel datagrams that could not be parsed.
    pub malformed: u64,
    /// Tunnel datagrams for a flow this end does not know (expired).
    pub unknown_flow: u64,
    /// Flows opened.
    pub flows_opened: u64,
    /// Flows forgotten after being idle.
    pub flows_expired: u64,
    /// Flows refused because the table was full.
    pub flows_refused: u64,
    /// UDP sends or binds that failed.
    pub udp_errors: u64,
}

impl Counters {
    /// Counts a datagram of `bytes` payload sent into the tunnel.
    pub fn tunnelled(&self, bytes: usize) {
        self.to_tunnel.add(bytes);
    }
    /// Counts a datagram of `bytes` payload delivered out of the tunnel.
    pub fn delivered(&self, bytes: usize) {
        self.from_tunnel.add(bytes);
    }
    /// Counts a datagram too large for the path; the count so far.
    pub fn too_large(&self) -> u64 {
        self.too_large.fetch_add(1, Ordering::Relaxed) + 1
    }
    /// Counts an unparsable tunnel datagram.
    pub fn malformed(&self) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
    }
    /// Counts a datagram for an unknown flow.
    pub fn unknown_flow(&self) {
        self.unknown_flow.fetch_add(1, Ordering::Relaxed);
    }
    /// Counts an opened flow.
    pub fn flow_opened(&self) {
        self.flows_opened.fetch_add(1, Ordering::Relaxed);
    }
    /// Counts `n` expired flows.
    pub fn flows_expired(&self, n: usize) {
        self.flows_expired.fetch_add(n as u64, Ordering::Relaxed);
    }
    /// Counts a refused flow; the count so far.
    pub fn flow_refused(&self) -> u64 {
        self.flows_refused.fetch_add(1, Ordering::Relaxed) + 1
    }
    /// Counts a failed UDP operation; the count so far.
    pub fn udp_error(&self) -> u64 {
        self.udp_errors.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The counters now.
    pub fn snapshot(&self) -> TunnelStats {
        let (tunnelled, tunnelled_bytes) = self.to_tunnel.load();
        let (delivered, delivered_bytes) = self.from_tunnel.load();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TunnelStats {
            tunnelled,
            tunnelled_bytes,
            delivered,
            delivered_bytes,
            too_large: load(&self.too_large),
            malformed: load(&self.malformed),
            unknown_flow: load(&self.unknown_flow),
            flows_opened: load(&self.flows_opened),
            flows_expired: load(&self.flows_expired),
            flows_refused: load(&self.flows_refused),
            udp_errors: load(&self.udp_errors),
        }
    }
}

/// True for counts worth a log line: the first, then every power of two,
/// so a flood of oversized or refused datagrams is reported without
/// flooding the log.
pub fn worth_logging(count: u64) -> bool {
    count.is_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn headers_round_trip_at_every_length_boundary() {
        for flow in [
            0,
            1,
            63,
            64,
            16_383,
            16_384,
            (1 << 30) - 1,
            1 << 30,
            MAX_FLOW_ID,
        ] {
            let mut datagram = Vec::new();
            encode_header(flow, &mut datagram);
            assert_eq!(datagram.len(), header_len(flow), "flow {flow}");
            // quinn's own varint encoding agrees (RFC 9000 section 16).
            let mut quinn = Vec::new();
            quinn_proto::coding::Codec::encode(
                &quinn_proto::VarInt::from_u64(flow).expect("62 bits"),
                &mut quinn,
            );
            assert_eq!(datagram, quinn, "flow {flow}");
            datagram.extend_from_slice(&[0xAA, 0xBB]);
            assert_eq!(split(&datagram), Ok((flow, &[0xAA, 0xBB][..])));
        }
    }

    #[test]
    fn rfc9000_sample_varints_decode() {
        // RFC 9000 appendix A.1 examples.
        let cases: [(&[u8], u64); 4] = [
            (
                &[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c],
                151_288_809_941_952_652,
            ),
            (&[0x9d, 0x7f, 0x3e, 0x7d], 494_878_333),
            (&[0x7b, 0xbd], 15_293),
            (&[0x25], 37),
        ];
        for (bytes, value) in cases {
            assert_eq!(split(bytes), Ok((value, &[][..])));
            let mut encoded = Vec::new();
            encode_header(value, &mut encoded);
            assert_eq!(encoded, bytes);
        }
    }

    #[test]
    fn an_empty_payload_is_a_datagram_and_short_headers_are_errors() {
        assert_eq!(split(&[0x05]), Ok((5, &[][..])));
        assert_eq!(split(&[]), Err(FrameError::Truncated { len: 0, needed: 1 }));
        assert_eq!(
            split(&[0x80, 1, 2]),
            Err(FrameError::Truncated { len: 3, needed: 4 })
        );
        assert_eq!(
            split(&[0xc0]),
            Err(FrameError::Truncated { len: 1, needed: 8 })
        );
    }

    #[test]
    fn every_byte_string_splits_or_errors_without_panicking() {
        let mut rng = crate::rng::SeededRng::new(7);
        for _ in 0..10_000 {
            let len = (rng.next_u64() % 12) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            if let Ok((flow, payload)) = split(&bytes) {
                let mut again = Vec::new();
                encode_header(flow, &mut again);
                // Non-minimal encodings decode too; the payload is the rest.
                assert_eq!(payload, &bytes[bytes.len() - payload.len()..]);
                assert!(flow <= MAX_FLOW_ID);
            }
        }
    }

    #[test]
    fn client_flows_map_sources_to_fresh_ids_and_back() {
        let now = Instant::now();
        let mut flows = ClientFlows::new(FlowConfig::default());
        let a = flows.outgoing(addr(1000), now);
        let b = flows.outgoing(addr(1001), now);
        let a_again = flows.outgoing(addr(1000), now);
        assert_eq!(
            a,
            Outgoing::Flow {
                id: 0,
                opened: true,
                expired: 0
            }
        );
        assert_eq!(
            b,
            Outgoing::Flow {
                id: 1,
                opened: true,
                expired: 0
            }
        );
        assert_eq!(
            a_again,
            Outgoing::Flow {
                id: 0,
                opened: false,
                expired: 0
            }
        );
        assert_eq!(flows.incoming(1, now), Some(addr(1001)));
        assert_eq!(flows.incoming(7, now), None);
        assert_eq!(flows.len(), 2);
    }

    #[test]
    fn idle_flows_expire_and_ids_are_not_reused() {
        let start = Instant::now();
        let config = FlowConfig {
            max_flows: 8,
            idle_timeout: Duration::from_secs(10),
        };
        let mut flows = ClientFlows::new(config);
        flows.outgoing(addr(1), start);
        flows.outgoing(addr(2), start);
        // A reply keeps flow 1 (addr 2) alive.
        assert_eq!(
            flows.incoming(1, start + Duration::from_secs(6)),
            Some(addr(2))
        );
        assert_eq!(flows.expire(start + Duration::from_secs(10)), 1);
        assert_eq!(flows.incoming(0, start + Duration::from_secs(10)), None);
        assert_eq!(
            flows.incoming(1, start + Duration::from_secs(10)),
            Some(addr(2))
        );
        // The expired source comes back under a new id.
        assert!(matches!(
            flows.outgoing(addr(1), start + Duration::from_secs(11)),
            Outgoing::Flow {
                id: 2,
                opened: true,
                ..
            }
        ));
    }

    #[test]
    fn a_full_table_refuses_new_sources_but_keeps_serving_open_flows() {
        let start = Instant::now();
        let config = FlowConfig {
            max_flows: 4,
            idle_timeout: Duration::from_secs(10),
        };
        let mut flows = ClientFlows::new(config);
        for port in 0..4 {
            flows.outgoing(addr(port), start);
        }
        // A spoofer's flood of new sources: refused, no memory taken.
        for port in 100..10_100 {
            assert_eq!(flows.outgoing(addr(port), start), Outgoing::Refused);
        }
        assert_eq!(flows.len(), 4);
        assert!(matches!(
            flows.outgoing(addr(2), start),
            Outgoing::Flow {
                id: 2,
                opened: false,
                ..
            }
        ));
        // Once the flows are idle, a new source takes room from them.
        let later = start + Duration::from_secs(10);
        assert_eq!(
            flows.outgoing(addr(500), later),
            Outgoing::Flow {
                id: 4,
                opened: true,
                expired: 4
            }
        );
        assert_eq!(flows.len(), 1);
        assert_eq!(flows.incoming(0, later), None);
    }

    #[test]
    fn a_table_keyed_by_flow_id_is_bounded_too() {
        let now = Instant::now();
        let mut table: FlowTable<FlowId, String> = FlowTable::new(FlowConfig {
            max_flows: 2,
            idle_timeout: Duration::from_secs(1),
        });
        assert!(table.insert(1, "a".into(), now).0.is_ok());
        assert!(table.insert(2, "b".into(), now).0.is_ok());
        assert_eq!(table.insert(3, "c".into(), now).0, Err(TableFull));
        // Replacing a key is not growth.
        assert!(table.insert(2, "b2".into(), now).0.is_ok());
        assert_eq!(table.peek(&2).map(String::as_str), Some("b2"));
        let later = now + Duration::from_secs(1);
        assert!(table.touch(&1, later).is_some());
        let (inserted, expired) = table.insert(3, "c".into(), later);
        assert!(inserted.is_ok());
        assert_eq!(expired, vec![(2, "b2".to_string())]);
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn counters_snapshot_what_was_counted() {
        let counters = Counters::default();
        counters.tunnelled(100);
        counters.tunnelled(20);
        counters.delivered(7);
        assert_eq!(counters.too_large(), 1);
        assert_eq!(counters.too_large(), 2);
        counters.flows_expired(3);
        let stats = counters.snapshot();
        assert_eq!((stats.tunnelled, stats.tunnelled_bytes), (2, 120));
        assert_eq!((stats.delivered, stats.delivered_bytes), (1, 7));
        assert_eq!(stats.too_large, 2);
        assert_eq!(stats.flows_expired, 3);
        assert!(worth_logging(1) && worth_logging(2) && !worth_logging(3));
    }
}
