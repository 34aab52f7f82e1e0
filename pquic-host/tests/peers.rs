//! The server's per-peer state stays bounded: datagrams from many distinct
//! sources (127.x.y.z, all loopback) that never complete a handshake leave
//! no entry in its peer table, a real connection gets one and loses it
//! when it closes, and the table's cap and idle eviction hold.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use pquic_host::builder::{ClientBuilder, FecMode, ServerBuilder};
use pquic_host::identity::Identity;
use pquic_host::layer::PassThrough;
use pquic_host::plugin::{prepare_offer, PluginCache, DEFAULT_CACHE_BYTES};
use pquic_host::socket::{FecSocket, PeerLimits};

fn garbage(seed: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seed.wrapping_mul(2_654_435_761) ^ (i as u32).wrapping_mul(40_503)) as u8)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_sources_leave_no_peer_state() {
    let validator = ed25519_dalek::SigningKey::from_bytes(&[21; 32]);
    let (offer, plugin) = prepare_offer("realtime", Some(&validator)).unwrap();
    let identity = Identity::generate().unwrap();
    let server = ServerBuilder::new("127.0.0.1:0")
        .identity(identity.clone())
        .offer(offer, plugin)
        .bind()
        .await
        .unwrap();
    let addr = server.local_addr();
    let socket = server.socket().clone();
    let accepting = tokio::spawn(async move {
        while let Some(incoming) = server.accept().await {
            tokio::spawn(async move {
                if let Ok(accepted) = incoming.await {
                    let _ = accepted.connection.closed().await;
                }
            });
        }
    });
    // 600 sources, each one QUIC-looking datagram (a long header that
    // quinn drops) and one FEC-looking datagram (fixed bit clear, an RLC
    // source header) with garbage behind it.
    let sources = 600u32;
    for i in 0..sources {
        let source = SocketAddr::from(([127, 1 + (i / 250) as u8, (i % 250) as u8, 7], 0));
        let sender = UdpSocket::bind(source).expect("any 127/8 address binds");
        let mut quic = garbage(i, 1200);
        quic[0] = 0xc3;
        let mut fec = garbage(i + 1, 900);
        fec[0] = 0x01;
        sender.send_to(&quic, addr).unwrap();
        sender.send_to(&fec, addr).unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while socket.socket_stats().unrouted < u64::from(sources) / 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            socket.socket_stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = socket.socket_stats();
    assert_eq!(
        stats.peers, 0,
        "no state for sources without a handshake: {stats:?}"
    );
    assert_eq!(stats.installed, 0);
    // A real connection gets a layer, and loses it when it closes.
    let mut trust = fec_plugin_sdk::package::TrustStore::new();
    trust.add(validator.verifying_key());
    let cache_dir = std::env::temp_dir().join(format!("pqh-peers-{}", std::process::id()));
    let client = ClientBuilder::new()
        .roots(identity.roots().unwrap())
        .plugins(
            PluginCache::open(&cache_dir, DEFAULT_CACHE_BYTES).unwrap(),
            trust,
        )
        .fec(FecMode::Required)
        .connect(&addr.to_string())
        .await
        .unwrap();
    assert_eq!(socket.peer_count(), 1);
    client.close().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while socket.peer_count() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "layer removed on close"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(socket.socket_stats().removed, 1);
    accepting.abort();
    let _ = std::fs::remove_dir_all(cache_dir);
}

#[tokio::test]
async fn the_peer_table_is_capped_and_idle_peers_make_room() {
    let limits = PeerLimits {
        max_peers: 2,
        idle_timeout: Duration::from_millis(200),
    };
    let (_socket, handle) =
        FecSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0)), limits, None).unwrap();
    let peer = |n: u8| SocketAddr::from(([127, 0, 0, n], 9));
    assert!(handle
        .set_layer(peer(1), Box::new(PassThrough::default()))
        .is_some());
    assert!(handle
        .set_layer(peer(2), Box::new(PassThrough::default()))
        .is_some());
    // Replacing a peer's layer is not a new peer.
    assert!(handle
        .set_layer(peer(2), Box::new(PassThrough::default()))
        .is_some());
    assert!(
        handle
            .set_layer(peer(3), Box::new(PassThrough::default()))
            .is_none(),
        "full"
    );
    assert_eq!(handle.socket_stats().refused, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Both went idle: the driver (or the next install) evicts them.
    let id = handle.set_layer(peer(3), Box::new(PassThrough::default()));
    assert!(id.is_some(), "room after eviction");
    let stats = handle.socket_stats();
    assert_eq!((stats.peers, stats.evicted), (1, 2), "{stats:?}");
    assert!(handle.remove_layer(id.unwrap()));
    assert_eq!(handle.peer_count(), 0);
}
