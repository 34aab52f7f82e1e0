//! One-run figures for the plugin targets (run with `--release`): best of
//! interleaved repetitions, so a loaded machine hurts both sides alike.
//!
//! ```text
//! cargo run --release -p fec-plugins --example measure
//! ```

use std::time::Instant;

use fec_plugin_sdk::abi::ScheduleContext;
use fec_plugin_sdk::package::TrustStore;
use fec_plugin_sdk::runtime::{HostOffer, HostView};
use fec_plugins::drive;

fn best<F: FnMut()>(reps: usize, iters: usize, mut f: F) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() / iters as f64);
    }
    best
}

fn main() {
    let packets = drive::packets(1024, 1280);
    let shipped = drive::rlc_window_plugin();
    let mut instance = shipped.instantiate();
    let (mut native, mut plugin) = (f64::MAX, f64::MAX);
    for _ in 0..30 {
        native = native.min(best(1, 1, || {
            std::hint::black_box(drive::native(&packets));
        }));
        plugin = plugin.min(best(1, 1, || {
            std::hint::black_box(drive::with_plugin(&shipped, &packets));
        }));
    }
    let bytes = (packets.len() * 1280) as f64;
    println!(
        "pipeline RLC w=32 1 repair/4 sources, 1280 B: native {:.0} MB/s, plugin {:.0} MB/s, ratio {:.3}",
        bytes / native / 1e6,
        bytes / plugin / 1e6,
        native / plugin
    );

    let view = HostView::default();
    let ctx = ScheduleContext {
        sources_since_repair: 4,
        ..Default::default()
    };
    let invoke = best(20, 100_000, || {
        std::hint::black_box(instance.schedule_repair(&ctx, &view).unwrap());
    });
    println!(
        "one plugin invocation (schedule_repair): {:.0} ns",
        invoke * 1e9
    );

    let load = best(20, 200, || {
        std::hint::black_box(
            fec_plugin_sdk::load_package(
                fec_plugins::ADAPTIVE.package,
                &TrustStore::new(),
                0,
                &HostOffer::all(),
            )
            .unwrap(),
        );
    });
    println!("load + verify (adaptive, 5 pluglets): {:.1} us", load * 1e6);
}
