//! The same sending pipeline driven natively and by a plugin, for the
//! plugin-versus-native throughput figure (benches and the compare binary
//! call these, so both measure identical work).
//!
//! Workload of the issue's target: 1280-byte packets, RLC window 32, one
//! repair symbol per 4 sources. The native driver hard-codes that policy; the
//! plugin driver asks [`crate::RLC_WINDOW`] (same policy, in eBPF) through
//! `on_source` for every packet and `schedule_repair` whenever a decision is
//! due, following the plugin's `fec_repair_after` and `fec_repair_repeat`
//! hints as a host does.
//!
//! ```
//! let packets = fec_plugins::drive::packets(64, 1280);
//! let native = fec_plugins::drive::native(&packets).unwrap();
//! let mut instance = fec_plugins::drive::rlc_window_instance();
//! let plugin = fec_plugins::drive::with_plugin(&mut instance, &packets).unwrap();
//! assert_eq!(native, plugin);
//! assert_eq!(native, (64, 16));
//! ```

use bytes::Bytes;
use fec_core::pipeline::{Config, Encoder, Scheme};
use fec_core::rlc::Field;
use fec_plugin_sdk::abi::{Operation, ScheduleContext, SourceContext, MAX_REPAIR_PER_CALL};
use fec_plugin_sdk::hints::{Due, RepairHints};
use fec_plugin_sdk::package::TrustStore;
use fec_plugin_sdk::runtime::{HostOffer, HostView, Instance};

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

fn encoder(packet_len: usize) -> Result<Encoder, fec_core::Error> {
    let mut config = Config::new(Scheme::Rlc {
        field: Field::Gf256,
        window: WINDOW,
        dt: 15,
    });
    config.set_symbol_size(packet_len + 3);
    Encoder::new(&config)
}

/// Protect every packet, one repair after every 4: returns (sources, repairs) sent.
pub fn native(packets: &[Bytes]) -> Result<(u64, u64), fec_core::Error> {
    let mut enc = encoder(packets.first().map_or(1, Bytes::len))?;
    let mut repairs = 0u64;
    for p in packets {
        std::hint::black_box(enc.protect(0, p.clone())?);
        if enc.pending() >= SOURCES_PER_REPAIR {
            repairs += enc.repair(1)?.len() as u64;
        }
    }
    Ok((packets.len() as u64, repairs))
}

/// A configured instance of the shipped RLC plugin (window 32, one repair
/// per 4 sources).
pub fn rlc_window_instance() -> Instance {
    fec_plugin_sdk::load_package(
        crate::RLC_WINDOW.package,
        &TrustStore::new(),
        0,
        &HostOffer::all(),
    )
    .expect("the shipped RLC plugin loads")
    .instantiate()
}

/// Drive `instance`'s `configure` and return the hints it gave.
pub fn configure(instance: &mut Instance) -> Result<RepairHints, String> {
    let d = instance
        .configure(&Default::default(), &HostView::default())
        .map_err(|f| f.to_string())?;
    let mut hints = RepairHints::new(instance.plugin());
    hints.after(Operation::Configure, &d);
    Ok(hints)
}

/// The same work, every decision taken by the plugin (as a host does it:
/// `on_source` for every packet, `schedule_repair` unless the plugin's
/// `fec_repair_after` hint says there is nothing to do yet or its
/// `fec_repair_repeat` hint says the call would repeat the last decision):
/// returns (sources, repairs) sent.
pub fn with_plugin(instance: &mut Instance, packets: &[Bytes]) -> Result<(u64, u64), String> {
    let mut enc = encoder(packets.first().map_or(1, Bytes::len)).map_err(|e| e.to_string())?;
    let view = HostView::default();
    let (mut sources, mut repairs) = (0u64, 0u64);
    let mut hints = configure(instance)?;
    for (seq, p) in packets.iter().enumerate() {
        let d = instance
            .on_source(
                &SourceContext {
                    now_us: seq as u64,
                    seq: seq as u64,
                    flow: 0,
                    len: p.len() as u32,
                },
                &view,
            )
            .map_err(|f| f.to_string())?;
        if d.protect.is_some() || d.use_default() {
            std::hint::black_box(enc.protect(0, p.clone()).map_err(|e| e.to_string())?);
            sources += 1;
        }
        let pending = enc.pending() as u32;
        let count = match hints.due(instance, pending) {
            Due::Skip => 0,
            Due::Repeat(count) => count,
            Due::Call => {
                let s = instance
                    .schedule_repair(
                        &ScheduleContext {
                            now_us: seq as u64,
                            sources_since_repair: pending,
                            window_len: pending,
                            window_target: WINDOW as u32,
                            repair_budget: MAX_REPAIR_PER_CALL,
                        },
                        &view,
                    )
                    .map_err(|f| f.to_string())?;
                hints.after(Operation::ScheduleRepair, &s);
                s.repair
            }
        };
        if count > 0 {
            repairs += enc.repair(count as usize).map_err(|e| e.to_string())?.len() as u64;
        }
    }
    Ok((sources, repairs))
}
