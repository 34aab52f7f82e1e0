//! End-to-end over loopback: real quinn endpoints, the FEC socket adapter,
//! seeded impairment, the plugin exchange and the workload checks (message
//! bytes, datagram bytes, bulk SHA-256). Each run is short and bounded by
//! timeouts; nothing here asserts on timing.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use fec_plugin_sdk::package::TrustStore;
use pquic_host::congestion::ChargeRule;
use pquic_host::endpoint::Identity;
use pquic_host::impair::{ImpairConfig, Impairment, LossModel};
use pquic_host::plugin::{
    package_from_assembly, realtime_package, verify_package, Offer, PluginCache,
    DEFAULT_CACHE_BYTES,
};
use pquic_host::session::{run_client, ClientPlugins, ClientReport, Server, ServerPlugin};
use pquic_host::workload::{BulkSource, WorkloadConfig};
use tempfile::{tempdir, TempDir};

const BULK_LEN: usize = 300_000;

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn path(loss_percent: f64, seed: u64) -> Option<Impairment> {
    let config = ImpairConfig {
        loss: LossModel::from_percent(loss_percent, 1.0),
        delay: Duration::from_millis(5),
        ..ImpairConfig::default()
    };
    Some(Impairment::new(config, seed))
}

fn workload() -> WorkloadConfig {
    WorkloadConfig {
        message_rate: 50,
        realtime: Duration::from_millis(800),
        bulk: Duration::ZERO,
        ..WorkloadConfig::default()
    }
}

fn bulk_bytes(seed: u8) -> Bytes {
    (0..BULK_LEN)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(u32::from(seed)) as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

fn validator(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn trusting(key: &SigningKey) -> TrustStore {
    let mut trust = TrustStore::new();
    trust.add(key.verifying_key());
    trust
}

fn server_plugin(bytes: Vec<u8>, key: &SigningKey) -> ServerPlugin {
    let offer = Offer::new(bytes).unwrap();
    let plugin = verify_package(&offer.bytes, &offer.sha256, &trusting(key)).unwrap();
    ServerPlugin { offer, plugin }
}

/// An empty plugin cache in `dir`, a directory the test owns and that is
/// removed when the test ends.
fn temp_cache(dir: &TempDir) -> PluginCache {
    PluginCache::open(dir.path(), DEFAULT_CACHE_BYTES).unwrap()
}

fn assert_intact(report: &ClientReport) {
    let w = &report.workload;
    assert!(w.sent > 0);
    assert_eq!(w.delivered, w.sent, "every message delivered intact: {w:?}");
    assert!(w.datagrams_delivered <= w.datagrams_sent);
    assert!(w.bulk_intact, "bulk length and SHA-256 match: {w:?}");
    assert_eq!(w.bulk_bytes, BULK_LEN as u64);
}

async fn session(
    server_loss: f64,
    client_loss: f64,
    seed: u64,
    server_side: Option<ServerPlugin>,
    client_side: Option<ClientPlugins>,
) -> (ClientReport, pquic_host::layer::LayerStats) {
    let identity = Identity::generate().unwrap();
    let server = Server::start(
        loopback(),
        path(server_loss, seed),
        &identity,
        server_side,
        ChargeRule::Always,
        &[],
        false,
    )
    .unwrap();
    let workload = workload();
    let servers = [server.addr];
    let roots = identity.roots().unwrap();
    let report = run_client(
        Some(loopback()),
        path(client_loss, seed + 1),
        &roots,
        &servers,
        "localhost",
        client_side,
        ChargeRule::Always,
        &workload,
        BulkSource::Bytes(bulk_bytes(seed as u8)),
        &|_| {},
        &[],
    );
    let report = tokio::time::timeout(Duration::from_secs(60), report)
        .await
        .expect("session finishes")
        .expect("session succeeds");
    let server_stats = server.socket.total_stats();
    server.shutdown().await;
    (report, server_stats)
}

fn realtime_setup(cache_dir: &TempDir, seed: u8) -> (ServerPlugin, ClientPlugins) {
    let key = validator(seed);
    let server = server_plugin(realtime_package(&key).unwrap(), &key);
    let client = ClientPlugins {
        cache: Some(temp_cache(cache_dir)),
        trust: trusting(&key),
    };
    (server, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrity_under_loss_without_fec() {
    for (i, loss) in [0.0, 5.0, 20.0].into_iter().enumerate() {
        let (report, _) = session(loss, loss, 10 + i as u64, None, None).await;
        assert_intact(&report);
        assert_eq!(report.fec.source_packets, 0, "plain QUIC protects nothing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrity_under_loss_with_fec() {
    for (i, loss) in [0.0, 5.0, 20.0].into_iter().enumerate() {
        let cache_dir = tempdir().unwrap();
        let (server, client) = realtime_setup(&cache_dir, 1);
        let (report, server_stats) =
            session(loss, loss, 20 + i as u64, Some(server), Some(client)).await;
        assert_intact(&report);
        assert!(report.plugin_sha256.is_some(), "plugin active at {loss}%");
        assert!(report.plugin_fetched, "empty cache: fetched");
        assert!(report.fec_throughout, "{:?}", report.fec_stopped);
        assert_eq!(report.declined, None);
        assert_eq!(
            report.trusted_by.len(),
            1,
            "signed by the trusted validator"
        );
        assert!(report.fec.source_packets > 0 && server_stats.source_packets > 0);
        // Both ends derived the same per-direction keys from the handshake:
        // every FEC datagram authenticated, none taken for a replay.
        let both = report.fec.sum(server_stats);
        assert_eq!((both.unauthenticated, both.replayed), (0, 0), "{both:?}");
        if loss >= 5.0 {
            assert!(
                report.fec.recovered + server_stats.recovered > 0,
                "FEC repaired losses"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_connection_uses_the_cache() {
    let cache_dir = tempdir().unwrap();
    let (server, client) = realtime_setup(&cache_dir, 2);
    let (first, _) = session(0.0, 0.0, 30, Some(server.clone()), Some(client.clone())).await;
    let (second, _) = session(0.0, 0.0, 31, Some(server), Some(client)).await;
    assert!(first.plugin_fetched);
    assert!(!second.plugin_fetched, "cache hit");
    assert_eq!(first.plugin_sha256, second.plugin_sha256);
    assert_intact(&second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_without_plugins_keeps_plain_quic() {
    let cache_dir = tempdir().unwrap();
    let (server, mut client) = realtime_setup(&cache_dir, 3);
    client.cache = None;
    let (report, server_stats) = session(5.0, 5.0, 40, Some(server), Some(client)).await;
    assert_intact(&report);
    assert!(report.plugin_sha256.is_none());
    assert!(report.declined.is_some());
    assert_eq!(report.fec.source_packets + server_stats.source_packets, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distrusted_or_unsigned_plugin_is_refused() {
    let signer = validator(4);
    let packages = [
        realtime_package(&signer).unwrap(),
        package_from_assembly(
            "realtime",
            pquic_host::plugin::REALTIME_VERSION,
            pquic_host::plugin::REALTIME_SOURCE,
            None,
        )
        .unwrap(),
    ];
    for (i, bytes) in packages.into_iter().enumerate() {
        let offer = Offer::new(bytes).unwrap();
        // The server itself runs it without a signature check here.
        let package = fec_plugin_sdk::package::Package::parse(&offer.bytes).unwrap();
        let plugin = fec_plugin_sdk::runtime::Plugin::load(
            &package,
            &fec_plugin_sdk::runtime::HostOffer::all(),
        )
        .unwrap();
        let cache_dir = tempdir().unwrap();
        let client = ClientPlugins {
            cache: Some(temp_cache(&cache_dir)),
            trust: trusting(&validator(5)), // someone else
        };
        let (report, server_stats) = session(
            3.0,
            3.0,
            50 + i as u64,
            Some(ServerPlugin { offer, plugin }),
            Some(client),
        )
        .await;
        assert_intact(&report);
        let reason = report.declined.expect("declined");
        assert!(reason.contains("signature"), "{reason}");
        assert_eq!(report.fec.source_packets + server_stats.source_packets, 0);
    }
}

/// Protects 20 packets, then returns an invalid code: the runtime disables
/// the instance and the layer must fall back to plain QUIC.
const FAULTING: &str = "
.section replace/on_source
mov r6, r1
ldxdw r2, [r6+128]
add r2, 1
stxdw [r6+128], r2
jgt r2, 20, +4
ldxw r1, [r6+16]
call 1
mov r0, 0
exit
mov r0, 77
exit
.section replace/schedule_repair
ldxw r2, [r1+8]
jlt r2, 4, +2
mov r1, 1
call 2
mov r0, 0
exit
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_faulting_mid_connection_falls_back_to_plain_quic() {
    let key = validator(6);
    let bytes = package_from_assembly("faulty", "0.1.0", FAULTING, Some(&key)).unwrap();
    let cache_dir = tempdir().unwrap();
    let client = ClientPlugins {
        cache: Some(temp_cache(&cache_dir)),
        trust: trusting(&key),
    };
    let (report, server_stats) =
        session(3.0, 3.0, 60, Some(server_plugin(bytes, &key)), Some(client)).await;
    assert_intact(&report);
    assert!(report.plugin_sha256.is_some(), "accepted, then faulted");
    assert!(report.fec.source_packets > 0, "protected before the fault");
    assert_eq!(report.fec.fallbacks, 1, "client fell back once");
    assert_eq!(server_stats.fallbacks, 1, "server fell back once");
    // The report says FEC stopped, and why.
    assert!(!report.fec_throughout);
    let stopped = report.fec_stopped.as_deref().expect("says FEC stopped");
    assert!(
        stopped.starts_with("FEC stopped on the client"),
        "{stopped}"
    );
    assert_eq!(report.declined.as_deref(), Some(stopped));
    let server = report.server_fec.expect("the server reported its state");
    assert!(!server.protecting && server.stopped_because.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_without_a_plugin_says_so_at_once() {
    let cache_dir = tempdir().unwrap();
    let (_, client) = realtime_setup(&cache_dir, 8);
    let started = std::time::Instant::now();
    let (report, _) = session(0.0, 0.0, 80, None, Some(client)).await;
    assert_intact(&report);
    let reason = report.declined.expect("plain QUIC");
    // The explicit message, not the client's wait for an offer running out.
    assert!(reason.contains("offers no plugin"), "{reason}");
    assert!(started.elapsed() < pquic_host::session::OFFER_TIMEOUT * 2);
    assert!(!report.fec_throughout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_copy_that_no_longer_verifies_is_fetched_again() {
    // The client cached the package signed by a validator it no longer
    // trusts; the server's copy of the same digest carries a trusted one.
    let (old, new) = (validator(9), validator(10));
    let (cache_dir, untrusted_dir) = (tempdir().unwrap(), tempdir().unwrap());
    let cache = temp_cache(&cache_dir);
    let stale = realtime_package(&old).unwrap();
    let digest = cache.put(&stale).unwrap();
    let fresh = realtime_package(&new).unwrap();
    let client = ClientPlugins {
        cache: Some(cache.clone()),
        trust: trusting(&new),
    };
    let (report, _) = session(
        0.0,
        0.0,
        90,
        Some(server_plugin(fresh.clone(), &new)),
        Some(client),
    )
    .await;
    assert_intact(&report);
    assert_eq!(report.plugin_sha256.as_deref(), Some(digest.as_str()));
    assert!(report.plugin_fetched, "fetched again");
    assert_eq!(
        cache.get(&digest),
        Some(fresh),
        "the trusted copy replaced it"
    );
    // An offer whose signers the client does not trust is not fetched.
    let client = ClientPlugins {
        cache: Some(temp_cache(&untrusted_dir)),
        trust: trusting(&validator(11)),
    };
    let (report, _) = session(0.0, 0.0, 91, Some(server_plugin(stale, &old)), Some(client)).await;
    let reason = report.declined.expect("declined");
    assert!(reason.contains("signature"), "{reason}");
    assert!(!report.plugin_fetched);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_at_once() {
    let (cache_dir, other_cache_dir) = (tempdir().unwrap(), tempdir().unwrap());
    let (server_side, client_side) = realtime_setup(&cache_dir, 7);
    let identity = Identity::generate().unwrap();
    let server = Server::start(
        loopback(),
        path(5.0, 70),
        &identity,
        Some(server_side),
        ChargeRule::Always,
        &[],
        false,
    )
    .unwrap();
    let workload = workload();
    let run = |seed: u64, plugins: ClientPlugins| {
        let (roots, addr, workload) = (identity.roots().unwrap(), server.addr, workload.clone());
        async move {
            run_client(
                Some(loopback()),
                path(5.0, seed),
                &roots,
                &[addr],
                "localhost",
                Some(plugins),
                ChargeRule::Always,
                &workload,
                BulkSource::Bytes(bulk_bytes(seed as u8)),
                &|_| {},
                &[],
            )
            .await
        }
    };
    let other = ClientPlugins {
        cache: Some(temp_cache(&other_cache_dir)),
        ..client_side.clone()
    };
    let both = tokio::time::timeout(
        Duration::from_secs(60),
        futures_join(run(71, client_side), run(72, other)),
    )
    .await
    .expect("both finish");
    for report in [both.0.unwrap(), both.1.unwrap()] {
        assert_intact(&report);
        assert!(report.plugin_sha256.is_some());
    }
    assert!(server.socket.total_stats().source_packets > 0);
    server.shutdown().await;
}

async fn futures_join<A, B>(a: A, b: B) -> (A::Output, B::Output)
where
    A: std::future::Future,
    B: std::future::Future,
{
    tokio::join!(a, b)
}
