//! Each plugin in the harness, with the real pipeline on both ends: what it
//! recovers on given loss traces and what redundancy it spends.

use fec_plugin_sdk::harness::{run, HarnessConfig, LossTrace, Report};
use fec_plugin_sdk::package::TrustStore;
use fec_plugin_sdk::runtime::HostOffer;
use fec_plugins::{ShippedPlugin, ADAPTIVE, RLC_WINDOW, RS_BLOCK};

fn run_plugin(plugin: ShippedPlugin, packets: usize, loss: &str) -> Report {
    let plugin =
        fec_plugin_sdk::load_package(plugin.package, &TrustStore::new(), 0, &HostOffer::all())
            .unwrap();
    let report = run(
        &plugin,
        &HarnessConfig {
            packets,
            packet_len: 200,
            loss: LossTrace::parse(loss).unwrap(),
            ..HarnessConfig::default()
        },
    )
    .unwrap();
    assert_eq!(report.fault, None, "{loss}: {report}");
    assert_eq!(report.sources, packets as u64);
    assert_eq!(report.protected, packets as u64);
    assert_eq!(
        report.recovered + report.unrecovered,
        report.lost_sources,
        "{report}"
    );
    report
}

#[test]
fn rs_block_repairs_up_to_two_losses_per_block_at_25_percent() {
    // Transmissions 0..10 are block 0: 8 sources then 2 parity.
    let two = run_plugin(RS_BLOCK, 80, "at:1,6");
    assert_eq!((two.lost_sources, two.recovered), (2, 2));
    assert_eq!(two.repairs, 20);
    assert!((two.redundancy() - 0.25).abs() < 1e-9);
    // Losing a parity symbol too still leaves one per lost source.
    let with_parity = run_plugin(RS_BLOCK, 80, "at:3,8");
    assert_eq!((with_parity.lost_sources, with_parity.recovered), (1, 1));
    // Three losses in one block exceed its two parity symbols.
    let three = run_plugin(RS_BLOCK, 80, "at:0,1,2");
    assert_eq!((three.lost_sources, three.recovered), (3, 0));
    // Isolated losses (every 7th packet) never hit a block twice: all recovered.
    let periodic = run_plugin(RS_BLOCK, 2000, "every:7");
    assert!(periodic.lost_sources > 250);
    assert_eq!(periodic.unrecovered, 0);
}

#[test]
fn rlc_window_sends_one_repair_every_four_sources_and_spans_bursts() {
    let none = run_plugin(RLC_WINDOW, 400, "none");
    assert_eq!(none.repairs, 100);
    // A burst of three sources: the next three repairs cover the whole window.
    let burst = run_plugin(RLC_WINDOW, 100, "at:10,11,12");
    assert_eq!((burst.lost_sources, burst.recovered), (3, 3));
    // 5% random loss, 25% redundancy: everything comes back.
    let random = run_plugin(RLC_WINDOW, 2000, "bernoulli:0.05:3");
    assert!(random.lost_sources > 60, "{random}");
    assert_eq!(random.unrecovered, 0, "{random}");
    assert!((random.redundancy() - 0.25).abs() < 1e-9);
}

#[test]
fn adaptive_spends_little_without_loss_and_follows_loss_and_bursts() {
    let none = run_plugin(ADAPTIVE, 2000, "none");
    let light = run_plugin(ADAPTIVE, 2000, "bernoulli:0.01:5");
    let random = run_plugin(ADAPTIVE, 2000, "bernoulli:0.05:3");
    let bursty = run_plugin(ADAPTIVE, 2000, "ge:0.1:4:9");
    // Rate follows the reported loss.
    assert!(none.redundancy() < 0.04, "{none}");
    assert!(none.redundancy() < light.redundancy(), "{light}");
    assert!(light.redundancy() < random.redundancy(), "{random}");
    assert!(random.redundancy() < bursty.redundancy(), "{bursty}");
    // 5% random loss: at most 1% of the losses left, for well under the
    // fixed plugins' 25%.
    assert!(random.unrecovered * 100 <= random.lost_sources, "{random}");
    assert!(random.redundancy() < 0.15, "{random}");
    // Bursts: repair groups as long as the bursts recover far more than the
    // fixed-rate RLC plugin, while spending less.
    let fixed = run_plugin(RLC_WINDOW, 2000, "ge:0.1:4:9");
    assert!(
        bursty.redundancy() < fixed.redundancy(),
        "{bursty}\n{fixed}"
    );
    assert!(
        bursty.unrecovered * 2 < fixed.unrecovered,
        "{bursty}\n{fixed}"
    );
}
