//! The same sending layer driven natively and by a plugin, for the
//! plugin-versus-native throughput figure (benches and the example call
//! these, so both measure identical work).
//!
//! Workload of the issue's target: 1280-byte packets, RLC window 32, one
//! repair symbol per 4 sources. Both run a [`fec_core::layer::Layer`]: the
//! native driver with [`FixedRate`] (that policy in Rust), the plugin driver
//! with [`crate::RLC_WINDOW`] (the same policy in eBPF) through the one
//! plugin host, [`fec_plugin_sdk::host::PluginPolicy`], which follows the
//! plugin's `fec_repair_after` and `fec_repair_repeat` hints.
//!
//! ```
//! let packets = fec_plugins::drive::packets(64, 1280);
//! let native = fec_plugins::drive::native(&packets);
//! let plugin = fec_plugins::drive::rlc_window_plugin();
//! let by_plugin = fec_plugins::drive::with_plugin(&plugin, &packets);
//! assert_eq!(native, by_plugin);
//! assert_eq!(native, (64, 16));
//! ```

use std::time::Instant;

use bytes::Bytes;
use fec_core::layer::policy::{FixedRate, Policy};
use fec_core::layer::{Layer, LayerConfig};
use fec_core::pipeline::wire::ADU_INFO_LEN;
use fec_plugin_sdk::host::PluginPolicy;
use fec_plugin_sdk::package::TrustStore;
use fec_plugin_sdk::runtime::{HostOffer, Plugin};

/// Window of the target workload.
pub const WINDOW: usize = 32;
/// Sources per repair symbol in the target workload.
pub const SOURCES_PER_REPAIR: usize = 4;

/// `count` distinct packets of `len` bytes.
pub fn packets(count: usize, len: usize) -> Vec<Bytes> {
    (0..count)
        .map(|i| Bytes::from(vec![(i % 251) as u8; len]))
        .collect()
}

/// The layer configuration of the workload: symbols for `packet_len`-byte
/// packets, no idle tick (the packets come back to back).
pub fn layer_config(packet_len: usize) -> LayerConfig {
    let mut config = LayerConfig::default();
    config
        .set_symbol_size(packet_len + ADU_INFO_LEN)
        .set_idle_repair(None);
    config
}

/// The native policy of the workload.
pub fn native_policy() -> FixedRate {
    FixedRate {
        window: WINDOW,
        every: SOURCES_PER_REPAIR,
        repairs: 1,
    }
}

/// Sends `packets` through a layer under `policy`: returns (sources,
/// repairs) sent.
pub fn send_all(policy: Box<dyn Policy>, packets: &[Bytes]) -> (u64, u64) {
    let now = Instant::now();
    let len = packets.first().map_or(1, Bytes::len);
    let mut layer = Layer::new(layer_config(len), Some(policy), now);
    let mut out = Vec::with_capacity(4);
    for p in packets {
        layer.send(now, p.clone(), &mut out);
        std::hint::black_box(&out);
        out.clear();
    }
    let stats = layer.stats();
    (stats.source_packets, stats.repair_packets)
}

/// Protect every packet, one repair after every 4, decided in Rust.
pub fn native(packets: &[Bytes]) -> (u64, u64) {
    send_all(Box::new(native_policy()), packets)
}

/// The shipped RLC plugin (window 32, one repair per 4 sources), loaded.
pub fn rlc_window_plugin() -> Plugin {
    fec_plugin_sdk::load_package(
        crate::RLC_WINDOW.package,
        &TrustStore::new(),
        0,
        &HostOffer::all(),
    )
    .expect("the shipped RLC plugin loads")
}

/// The same work, every decision taken by a fresh instance of `plugin`.
pub fn with_plugin(plugin: &Plugin, packets: &[Bytes]) -> (u64, u64) {
    send_all(Box::new(PluginPolicy::new(plugin, Instant::now())), packets)
}
