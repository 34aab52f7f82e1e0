//! The plugin targets: one invocation, loading and verifying a
//! package, and the pipeline driven by a plugin versus natively.

// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fec_plugin_sdk::abi::ScheduleContext;
use fec_plugin_sdk::package::TrustStore;
use fec_plugin_sdk::runtime::{HostOffer, HostView};
use fec_plugins::drive;

fn invocation(c: &mut Criterion) {
    let mut instance = drive::rlc_window_plugin().instantiate();
    let view = HostView::default();
    let ctx = ScheduleContext {
        now_us: 1,
        sources_since_repair: 4,
        window_len: 32,
        window_target: 32,
        repair_budget: 64,
    };
    // One VM execution: the RLC plugin's schedule_repair, which emits a repair.
    c.bench_function("plugin/invoke_schedule_repair", |b| {
        b.iter(|| {
            instance
                .schedule_repair(std::hint::black_box(&ctx), &view)
                .unwrap()
        })
    });
}

fn load(c: &mut Criterion) {
    c.bench_function("plugin/load_and_verify_adaptive", |b| {
        b.iter(|| {
            fec_plugin_sdk::load_package(
                std::hint::black_box(fec_plugins::ADAPTIVE.package),
                &TrustStore::new(),
                0,
                &HostOffer::all(),
            )
            .unwrap()
        })
    });
}

fn pipeline(c: &mut Criterion) {
    let packets = drive::packets(1024, 1280);
    let mut group = c.benchmark_group("pipeline_rlc32_1in4");
    group.throughput(Throughput::Bytes((packets.len() * 1280) as u64));
    group.bench_function("native", |b| b.iter(|| drive::native(&packets)));
    let plugin = drive::rlc_window_plugin();
    group.bench_function("plugin", |b| {
        b.iter(|| drive::with_plugin(&plugin, &packets))
    });
    group.finish();
}

criterion_group!(benches, invocation, load, pipeline);
criterion_main!(benches);
