//! An echo server over QUIC with FEC, through the library API.
//!
//! ```text
//! cargo run -p pquic-host --example echo_server -- [LISTEN]   # default [::]:4433
//! cargo run -p pquic-host --example echo_client -- [SERVER] [MESSAGE...]
//! ```
//!
//! The server offers the shipped `realtime` plugin, signed by a validator
//! key it keeps next to its certificate in `$TMPDIR/pquic-echo/`; the
//! client reads both from there (a real deployment distributes the CA and
//! the validator's public key its own way).

use std::path::PathBuf;

use pquic_host::builder::{FecState, ServerBuilder};
use pquic_host::identity::StoredIdentity;
use pquic_host::plugin::{create_signing_key, prepare_offer, read_signing_key};

/// Where the example keeps its identity and validator key.
fn dir() -> PathBuf {
    std::env::temp_dir().join("pquic-echo")
}

#[tokio::main]
async fn main() -> pquic_host::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "[::]:4433".into());
    let key_path = dir().join("validator.key");
    let validator = match key_path.exists() {
        true => read_signing_key(&key_path)?,
        false => create_signing_key(&key_path, false)?,
    };
    pquic_host::files::write(
        &dir().join("validator.pub"),
        hex::encode(validator.verifying_key().as_bytes()).as_bytes(),
    )?;
    let (offer, plugin) = prepare_offer("realtime", Some(&validator))?;
    let mut identity = StoredIdentity::load_or_generate(&dir(), &["localhost"])?;
    let server = ServerBuilder::new(listen)
        .identity(identity.identity().clone())
        .alpn(b"echo/1")
        .offer(offer, plugin)
        .bind()
        .await?;
    identity.persist()?;
    println!(
        "echo server on {}; certificate {}",
        server.local_addr(),
        identity.cert_path().display()
    );
    while let Some(incoming) = server.accept().await {
        tokio::spawn(async move {
            let accepted = match incoming.await {
                Ok(accepted) => accepted,
                Err(e) => return eprintln!("connection failed: {e}"),
            };
            let peer = accepted.connection.remote_address();
            match accepted.fec.state() {
                FecState::Active { name, .. } => println!("{peer}: FEC on with {name}"),
                other => println!("{peer}: {other:?}"),
            }
            // Every stream the client opens is echoed back.
            while let Ok((mut send, mut recv)) = accepted.connection.accept_bi().await {
                tokio::spawn(async move {
                    if let Ok(message) = recv.read_to_end(64 * 1024).await {
                        let _ = send.write_all(&message).await;
                        let _ = send.finish();
                    }
                });
            }
            println!("{peer}: closed; FEC counters {:?}", accepted.fec.stats());
        });
    }
    Ok(())
}
