//! The UDP tunnel end to end over loopback, in one process: a tunnel
//! server forwarding to a UDP echo, a tunnel client, several senders at
//! the client's UDP port, and 10% loss on the outer path in both
//! directions. Bounded by timeouts; nothing here asserts on timing.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pquic_host::builder::{ClientBuilder, FecConnection, FecMode, FecServer, ServerBuilder};
use pquic_host::congestion::Algorithm;
use pquic_host::demo::FecSetup;
use pquic_host::endpoint::Identity;
use pquic_host::impair::{ImpairConfig, Impairment, LossModel};
use pquic_host::tunnel::probe::{self, StreamConfig, TunnelSetup};
use pquic_host::tunnel::{udp, Counters, FlowConfig, TUNNEL_ALPN};
use tokio::net::UdpSocket;

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn lossy(percent: f64, seed: u64) -> Impairment {
    let config = ImpairConfig {
        loss: LossModel::from_percent(percent, 1.0),
        ..ImpairConfig::default()
    };
    Impairment::new(config, seed)
}

/// A UDP echo: every datagram goes back to its sender unchanged.
async fn echo() -> SocketAddr {
    let socket = UdpSocket::bind(loopback()).await.expect("echo socket");
    let addr = socket.local_addr().expect("echo address");
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        while let Ok((len, from)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(&buf[..len], from).await;
        }
    });
    addr
}

struct Tunnel {
    server: Arc<FecServer>,
    client: FecConnection,
    udp_listen: SocketAddr,
    client_counters: Arc<Counters>,
    server_counters: Arc<Counters>,
    _cache: tempfile::TempDir,
}

/// Server (offering `plugin`, FEC required on the client) forwarding to
/// `forward`, and a client whose UDP port is returned; `loss` percent on
/// what each end receives.
async fn tunnel(forward: SocketAddr, plugin: &str, loss: f64) -> Tunnel {
    let cache = tempfile::tempdir().expect("cache dir");
    let setup = FecSetup::named(plugin, cache.path()).expect("plugin");
    let identity = Identity::self_signed(&["localhost"]).expect("identity");
    let mut builder = ServerBuilder::new(loopback().to_string());
    builder
        .identity(identity.clone())
        .alpn(TUNNEL_ALPN)
        .offer(setup.server.offer, setup.server.plugin)
        .impairment(lossy(loss, 11));
    let server = Arc::new(builder.bind_addr(loopback()).expect("tunnel server"));
    let server_counters = Arc::new(Counters::default());
    tokio::spawn(udp::serve(
        server.clone(),
        forward,
        FlowConfig::default(),
        server_counters.clone(),
    ));
    let mut client = ClientBuilder::new();
    client
        .roots(identity.roots().expect("roots"))
        .alpn(TUNNEL_ALPN)
        .plugins(setup.client.cache.expect("cache"), setup.client.trust)
        .fec(FecMode::Required)
        .impairment(lossy(loss, 12));
    let client = tokio::time::timeout(
        Duration::from_secs(20),
        client.connect(&server.local_addr().to_string()),
    )
    .await
    .expect("connect in time")
    .expect("connect with FEC");
    let socket = udp::bind_udp(loopback()).expect("udp listen");
    let udp_listen = socket.local_addr().expect("udp address");
    let client_counters = Arc::new(Counters::default());
    tokio::spawn(udp::run_client(
        client.connection.clone(),
        socket,
        FlowConfig::default(),
        client_counters.clone(),
    ));
    Tunnel {
        server,
        client,
        udp_listen,
        client_counters,
        server_counters,
        _cache: cache,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagrams_of_several_flows_cross_a_lossy_tunnel_and_come_back_to_their_senders() {
    let forward = echo().await;
    let tunnel = tunnel(forward, "realtime", 10.0).await;
    const SENDERS: usize = 3;
    const PER_SENDER: u32 = 300;
    let mut senders = Vec::new();
    for _ in 0..SENDERS {
        senders.push(Arc::new(UdpSocket::bind(loopback()).await.expect("sender")));
    }
    let mut receivers = Vec::new();
    for (index, sender) in senders.iter().enumerate() {
        let sender = sender.clone();
        receivers.push(tokio::spawn(async move {
            let mut seen = HashSet::new();
            let mut buf = [0u8; 2048];
            while let Ok(Ok(len)) =
                tokio::time::timeout(Duration::from_secs(2), sender.recv(&mut buf)).await
            {
                // Each reply is the sender's own datagram, intact.
                assert_eq!(len, 100 + index, "length of a reply to sender {index}");
                assert_eq!(buf[0] as usize, index, "a reply reached the wrong sender");
                let seq = u32::from_be_bytes(buf[1..5].try_into().unwrap());
                assert!(buf[5..len].iter().all(|&b| b == seq as u8), "payload");
                seen.insert(seq);
            }
            seen.len()
        }));
    }
    for seq in 0..PER_SENDER {
        for (index, sender) in senders.iter().enumerate() {
            let mut datagram = vec![seq as u8; 100 + index];
            datagram[0] = index as u8;
            datagram[1..5].copy_from_slice(&seq.to_be_bytes());
            sender
                .send_to(&datagram, tunnel.udp_listen)
                .await
                .expect("send into the tunnel");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut returned = Vec::new();
    for receiver in receivers {
        returned.push(receiver.await.expect("receiver"));
    }
    let client = tunnel.client_counters.snapshot();
    let server = tunnel.server_counters.snapshot();
    let recovered =
        tunnel.client.fec.stats().recovered + tunnel.server.socket().total_stats().recovered;
    // 10% loss each way would lose about 19% of round trips without FEC;
    // with it, nearly every datagram comes back.
    for (index, &count) in returned.iter().enumerate() {
        assert!(
            count as f64 >= f64::from(PER_SENDER) * 0.95,
            "sender {index}: {count}/{PER_SENDER} back; client {client:?} server {server:?}"
        );
    }
    assert!(recovered > 0, "FEC rebuilt nothing under 10% loss");
    assert_eq!(client.flows_opened, SENDERS as u64);
    assert_eq!(server.flows_opened, SENDERS as u64);
    assert_eq!(client.tunnelled, u64::from(PER_SENDER) * SENDERS as u64);
    assert_eq!(client.too_large + server.too_large, 0);
    tunnel.client.close().await;
    tunnel.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_datagram_too_large_for_the_path_is_counted_not_cut() {
    let forward = echo().await;
    let tunnel = tunnel(forward, "realtime", 0.0).await;
    // Path MTU discovery settles within a few round trips on loopback.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let max = tunnel
        .client
        .connection
        .max_datagram_size()
        .expect("datagrams");
    let sender = UdpSocket::bind(loopback()).await.expect("sender");
    // One flow id byte: `max - 1` payload bytes fit, `max` do not.
    for len in [max, max - 1] {
        sender
            .send_to(&vec![7u8; len], tunnel.udp_listen)
            .await
            .expect("send");
    }
    let mut buf = vec![0u8; 65_535];
    let len = tokio::time::timeout(Duration::from_secs(5), sender.recv(&mut buf))
        .await
        .expect("the datagram that fits comes back")
        .expect("recv");
    assert_eq!(len, max - 1);
    let nothing = tokio::time::timeout(Duration::from_millis(500), sender.recv(&mut buf)).await;
    assert!(
        nothing.is_err(),
        "the oversized datagram must not arrive cut"
    );
    let counters = tunnel.client_counters.snapshot();
    assert_eq!(counters.too_large, 1, "{counters:?}");
    assert_eq!(counters.tunnelled, 1, "{counters:?}");
    tunnel.client.close().await;
    tunnel.server.shutdown().await;
}

/// Two seconds of `rate` datagrams of `size` bytes through an in-process
/// tunnel running the tunnel plugin on BBR, 10% loss each way (seeds
/// `seeds`: server, client).
async fn probe_tunnel_plugin(
    seeds: (u64, u64),
    min_mtu: Option<u16>,
    rate: f64,
    size: usize,
) -> probe::TunnelReport {
    let setup = TunnelSetup {
        plugin: Some("tunnel".into()),
        server_impairment: Some(lossy(10.0, seeds.0)),
        client_impairment: Some(lossy(10.0, seeds.1)),
        flows: FlowConfig::default(),
        min_mtu,
        congestion: Algorithm::Bbr,
    };
    let stream = StreamConfig {
        rate,
        size,
        duration: Duration::from_secs(2),
        drain: Duration::from_millis(500),
    };
    tokio::time::timeout(Duration::from_secs(30), probe::run_tunnel(&setup, stream))
        .await
        .expect("probe in time")
        .expect("probe")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_measures_a_lossy_tunnel_from_its_own_counters() {
    let report = probe_tunnel_plugin((21, 22), None, 200.0, 200).await;
    assert_eq!(report.stream.sent, 400);
    assert!(report.stream.up_loss() < 0.05, "{report:?}");
    assert!(report.stream.down_loss() < 0.05, "{report:?}");
    assert!(
        report.server.recovered > 0 && report.client.recovered > 0,
        "{report:?}"
    );
    assert_eq!(report.client.tunnel.tunnelled_bytes, 400 * 200);
    // FEC costs outer bytes: more than the payload, and repairs were sent.
    assert!(report.outer_per_payload() > 1.0, "{report:?}");
    assert!(report.client.repair_bytes > 0, "{report:?}");
    // The tunnel plugin repairs each source of a sparse stream on a lossy
    // link at once (one repair per source, give or take the start and the
    // QUIC packets that carry no datagram).
    for end in [&report.client, &report.server] {
        assert!(
            end.repair_packets * 10 >= end.source_packets * 8,
            "a repair per sparse source: {end:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tunnel_plugin_spends_fewer_repairs_on_a_dense_stream() {
    let report = probe_tunnel_plugin((23, 24), Some(1419), 2000.0, 1200).await;
    assert_eq!(report.stream.sent, 4000);
    assert!(report.stream.up_loss() < 0.01, "{report:?}");
    assert!(report.stream.down_loss() < 0.01, "{report:?}");
    // Repairs paid by the bytes they protect: well under one per source,
    // and well over the loss rate.
    for end in [&report.client, &report.server] {
        assert!(
            end.repair_packets * 2 < end.source_packets,
            "fewer repairs than half the sources: {end:?}"
        );
        assert!(
            end.repair_packets * 8 > end.source_packets,
            "more repairs than an eighth of the sources: {end:?}"
        );
    }
    assert!(report.outer_per_payload() < 1.6, "{report:?}");
}
