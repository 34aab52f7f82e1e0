//! The library API's FEC modes over loopback: what `Required` refuses, and
//! what `Off` and `On` report.

use pquic_host::builder::{ClientBuilder, FecMode, FecState, ServerBuilder};
use pquic_host::identity::Identity;
use pquic_host::plugin::{prepare_offer, PluginCache, DEFAULT_CACHE_BYTES};
use pquic_host::Error;

fn cache(tag: &str) -> PluginCache {
    let dir = std::env::temp_dir().join(format!("pqh-builder-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    PluginCache::open(dir, DEFAULT_CACHE_BYTES).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_fec_refuses_a_plain_peer_on_either_side() {
    let identity = Identity::generate().unwrap();
    let validator = ed25519_dalek::SigningKey::from_bytes(&[31; 32]);
    let mut trust = fec_plugin_sdk::package::TrustStore::new();
    trust.add(validator.verifying_key());

    // A client that requires FEC, a server that offers nothing.
    let plain = ServerBuilder::new("127.0.0.1:0")
        .identity(identity.clone())
        .alpn(b"app/1")
        .bind()
        .await
        .unwrap();
    let addr = plain.local_addr().to_string();
    tokio::spawn(async move {
        while let Some(incoming) = plain.accept().await {
            tokio::spawn(async move {
                if let Ok(c) = incoming.await {
                    let _ = c.connection.closed().await;
                }
            });
        }
    });
    let mut client = ClientBuilder::new();
    client
        .roots(identity.roots().unwrap())
        .alpn(b"app/1")
        .plugins(cache("required"), trust.clone());
    let refused = client.fec(FecMode::Required).connect(&addr).await;
    match refused {
        Err(Error::FecRequired(why)) => assert!(why.contains("offers no plugin"), "{why}"),
        other => panic!("expected FecRequired, got {other:?}"),
    }
    // The same client with FEC on connects on plain QUIC and says why.
    let connected = client.fec(FecMode::On).connect(&addr).await.unwrap();
    match connected.fec.state() {
        FecState::Off { reason } => assert!(reason.contains("offers no plugin"), "{reason}"),
        other => panic!("{other:?}"),
    }
    connected.close().await;

    // A server that requires FEC, a client with FEC off.
    let (offer, plugin) = prepare_offer("realtime", Some(&validator)).unwrap();
    let strict = ServerBuilder::new("127.0.0.1:0")
        .identity(identity.clone())
        .alpn(b"app/1")
        .offer(offer, plugin)
        .fec(FecMode::Required)
        .bind()
        .await
        .unwrap();
    let addr = strict.local_addr().to_string();
    let accepting = tokio::spawn(async move {
        let incoming = strict.accept().await.unwrap();
        incoming.await.map(|_| ())
    });
    let off = client.fec(FecMode::Off).connect(&addr).await.unwrap();
    assert!(matches!(off.fec.state(), FecState::Off { .. }));
    match accepting.await.unwrap() {
        Err(Error::FecRequired(why)) => assert!(why.contains("declined"), "{why}"),
        other => panic!("expected FecRequired, got {other:?}"),
    }
    // The server closed it.
    let closed = off.connection.closed().await;
    assert!(closed.to_string().contains("FEC required"), "{closed}");
}
