//! The echo server's client (see `echo_server.rs`): connects with FEC
//! required, sends each MESSAGE on its own stream and prints the echo.
//!
//! ```text
//! cargo run -p pquic-host --example echo_client -- [SERVER] [MESSAGE...]   # default localhost:4433
//! ```

use pquic_host::builder::{ClientBuilder, FecMode};
use pquic_host::identity::roots_from_file;
use pquic_host::plugin::{PluginCache, DEFAULT_CACHE_BYTES};

#[tokio::main]
async fn main() -> pquic_host::Result<()> {
    let mut args = std::env::args().skip(1);
    let server = args.next().unwrap_or_else(|| "localhost:4433".into());
    let mut messages: Vec<String> = args.collect();
    if messages.is_empty() {
        messages.push("hello over FEC".into());
    }
    let dir = std::env::temp_dir().join("pquic-echo");
    let roots = roots_from_file(&dir.join("self-signed-localhost.cert.pem"))?;
    let mut trust = fec_plugin_sdk::package::TrustStore::new();
    let validator = pquic_host::files::read_to_string(&dir.join("validator.pub"))?;
    trust
        .add_hex(&validator)
        .map_err(|e| pquic_host::Error::Plugin(format!("validator.pub: {e}")))?;
    let cache = PluginCache::open(dir.join("cache"), DEFAULT_CACHE_BYTES)?;
    let connection = ClientBuilder::new()
        .roots(roots)
        .server_name("localhost")
        .alpn(b"echo/1")
        .plugins(cache, trust)
        .fec(FecMode::Required)
        .connect(&server)
        .await?;
    println!("connected; FEC {:?}", connection.fec.state());
    for message in &messages {
        let (mut send, mut recv) = connection.connection.open_bi().await?;
        send.write_all(message.as_bytes()).await?;
        send.finish()?;
        let echo = recv.read_to_end(64 * 1024).await?;
        println!("{}", String::from_utf8_lossy(&echo));
    }
    println!("FEC counters {:?}", connection.fec.stats());
    connection.close().await;
    Ok(())
}
