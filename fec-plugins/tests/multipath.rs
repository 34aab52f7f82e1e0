//! The multipath plugin in the harness: where its repairs go on given
//! per-path views, how its redundancy follows the loss of the paths that
//! carry the sources, and that on one path it is the tunnel plugin.

use std::time::Duration;

use fec_core::layer::paths::{PathState, PathView, MAX_PATHS};
use fec_plugin_sdk::abi::Operation;
use fec_plugin_sdk::harness::{
    path_view, run_on_paths, HarnessConfig, LossTrace, PathSchedule, Report,
};
use fec_plugin_sdk::package::TrustStore;
use fec_plugin_sdk::runtime::{HostOffer, Plugin};
use fec_plugins::{ShippedPlugin, MULTIPATH, TUNNEL};

fn load(plugin: ShippedPlugin) -> Plugin {
    fec_plugin_sdk::load_package(plugin.package, &TrustStore::new(), 0, &HostOffer::all()).unwrap()
}

fn run(plugin: ShippedPlugin, packets: usize, loss: &str, paths: &PathSchedule) -> Report {
    let config = HarnessConfig {
        packets,
        packet_len: 200,
        loss: LossTrace::parse(loss).unwrap(),
        ..HarnessConfig::default()
    };
    let report = run_on_paths(&load(plugin), &config, paths).unwrap();
    assert_eq!(report.fault, None, "{loss}: {report}");
    assert_eq!(report.sources, packets as u64);
    assert_eq!(report.protected, packets as u64);
    assert_eq!(
        report.recovered + report.unrecovered,
        report.lost_sources,
        "{report}"
    );
    assert_eq!(
        report.repairs_by_path.iter().sum::<u64>(),
        report.repairs,
        "{report}"
    );
    report
}

const MS: Option<Duration> = Some(Duration::from_millis(10));

fn validated(loss_permille: u32) -> PathView {
    path_view(PathState::Validated, loss_permille, MS)
}

fn unused() -> PathView {
    PathView::default()
}

fn views(paths: [PathView; 2]) -> [PathView; MAX_PATHS] {
    [paths[0], paths[1], unused(), unused()]
}

/// The paths the plugin chose, with how many decisions chose each
/// (`FEC_PATH_OTHER` counted last).
fn chosen(report: &Report) -> [usize; MAX_PATHS + 1] {
    let mut count = [0; MAX_PATHS + 1];
    for choice in &report.path_choices {
        count[usize::from(choice.path).min(MAX_PATHS)] += 1;
    }
    count
}

const OTHER: usize = MAX_PATHS;

/// Every `on_feedback` and `schedule_repair` call chose `path` (there is one
/// per source and one per report), and every repair went there.
fn all_on(report: &Report, path: usize, packets: usize) {
    let mut expected = [0; MAX_PATHS + 1];
    expected[path] = report.path_choices.len();
    assert_eq!(chosen(report), expected, "{report}");
    assert!(report.path_choices.len() > packets, "{report}");
    assert!(report.path_choices.iter().all(|c| matches!(
        c.operation,
        Operation::OnFeedback | Operation::ScheduleRepair
    )));
    if path < MAX_PATHS {
        let mut repairs = [0; MAX_PATHS];
        repairs[path] = report.repairs;
        assert_eq!(report.repairs_by_path, repairs, "{report}");
    }
    assert!(report.repairs > 0, "{report}");
}

#[test]
fn repairs_go_to_the_clean_path_0_when_the_other_loses_far_more() {
    let paths = PathSchedule::fixed(views([validated(0), validated(200)]));
    let report = run(MULTIPATH, 1000, "bernoulli:0.05:3", &paths);
    all_on(&report, 0, 1000);
}

#[test]
fn paths_that_lose_alike_repair_each_other() {
    // The worst within twice the best plus 15%: repairs never take their
    // source's path.
    for pair in [[0, 100], [0, 150], [30, 30], [50, 250]] {
        let paths = PathSchedule::fixed(views(pair.map(validated)));
        let report = run(MULTIPATH, 500, "bernoulli:0.05:3", &paths);
        all_on(&report, OTHER, 500);
    }
    // Just beyond: the best path.
    let paths = PathSchedule::fixed(views([validated(50), validated(251)]));
    let report = run(MULTIPATH, 500, "bernoulli:0.05:3", &paths);
    all_on(&report, 0, 500);
}

#[test]
fn repairs_go_to_path_1_when_it_loses_less() {
    let paths = PathSchedule::fixed(views([validated(200), validated(5)]));
    let report = run(MULTIPATH, 1000, "bernoulli:0.05:3", &paths);
    all_on(&report, 1, 1000);
}

#[test]
fn a_failed_path_gets_no_repairs_however_little_it_lost() {
    let failed = path_view(PathState::Failed, 0, Some(Duration::from_millis(1)));
    let paths = PathSchedule::fixed(views([validated(50), failed]));
    let report = run(MULTIPATH, 1000, "bernoulli:0.05:3", &paths);
    all_on(&report, 0, 1000);
    // Opening and abandoned paths neither.
    let opening = path_view(PathState::Opening, 0, MS);
    let abandoned = path_view(PathState::Abandoned, 0, MS);
    let paths = PathSchedule::fixed([opening, abandoned, validated(300), unused()]);
    let report = run(MULTIPATH, 500, "none", &paths);
    all_on(&report, 2, 500);
}

#[test]
fn ties_go_to_the_shorter_rtt_then_the_lower_id() {
    let rtt = |ms| Some(Duration::from_millis(ms));
    // Beside a path losing far more, so the best one is chosen.
    let far = validated(700);
    let cases = [
        ([validated(30), validated(30), far, unused()], 0),
        (
            [
                path_view(PathState::Validated, 30, rtt(20)),
                path_view(PathState::Validated, 30, rtt(5)),
                far,
                unused(),
            ],
            1,
        ),
        // An unknown RTT counts as the longest.
        (
            [
                path_view(PathState::Validated, 30, None),
                path_view(PathState::Validated, 30, rtt(40)),
                far,
                unused(),
            ],
            1,
        ),
        (
            [
                validated(40),
                far,
                path_view(PathState::Validated, 30, rtt(2)),
                path_view(PathState::Validated, 30, rtt(2)),
            ],
            2,
        ),
        ([unused(), unused(), unused(), validated(900)], 3),
    ];
    for (paths, best) in cases {
        let report = run(MULTIPATH, 300, "none", &PathSchedule::fixed(paths));
        all_on(&report, best, 300);
    }
}

#[test]
fn the_choice_follows_the_paths_as_they_change() {
    let paths = PathSchedule::fixed(views([validated(0), validated(200)]))
        .from_source(500, views([validated(250), validated(10)]));
    let report = run(MULTIPATH, 1000, "bernoulli:0.05:3", &paths);
    assert!(report
        .path_choices
        .iter()
        .all(|c| c.path == u8::from(c.seq >= 500)));
    let [before, after, ..] = chosen(&report);
    assert!(before > 500 && after > 500, "{report}");
    let [on_0, on_1, ..] = report.repairs_by_path;
    assert!(on_0 > 10 && on_1 > 10, "{report}");
}

#[test]
fn without_a_validated_path_it_chooses_nothing() {
    let failed = path_view(PathState::Failed, 0, MS);
    let paths = PathSchedule::fixed([failed, failed, unused(), unused()]);
    let report = run(MULTIPATH, 500, "bernoulli:0.05:3", &paths);
    assert!(report.path_choices.is_empty(), "{report}");
    assert!(report.repairs > 0);
}

#[test]
fn on_one_path_it_is_the_tunnel_plugin_with_repairs_on_path_0() {
    let layer = PathSchedule::layer();
    for loss in ["bernoulli:0.05:3", "ge:0.1:4:9", "none"] {
        let tunnel = run(TUNNEL, 2000, loss, &layer);
        let multipath = run(MULTIPATH, 2000, loss, &layer);
        // The same datagrams, losses and recoveries.
        let as_tunnel = Report {
            path_choices: Vec::new(),
            ..multipath.clone()
        };
        assert_eq!(as_tunnel, tunnel, "{loss}\n{multipath}\n{tunnel}");
        all_on(&multipath, 0, 2000);
        if loss != "none" {
            assert!(multipath.lost_sources > 60, "{loss}: {multipath}");
            assert!(
                multipath.recovered * 10 > multipath.lost_sources * 9,
                "{loss}: {multipath}"
            );
        }
    }
    // 5% random loss: nearly everything comes back, for well under the
    // fixed plugins' 25%.
    let random = run(MULTIPATH, 2000, "bernoulli:0.05:3", &layer);
    assert!(random.unrecovered * 50 <= random.lost_sources, "{random}");
    assert!(random.redundancy() < 0.2, "{random}");
}

#[test]
fn with_several_paths_the_rate_follows_their_loss_not_the_reports() {
    let packets = 2000;
    let one_clean = run(MULTIPATH, packets, "none", &PathSchedule::layer());
    // The reports say nothing is lost, the two paths say 10% each.
    let lossy_paths = PathSchedule::fixed(views([validated(100), validated(100)]));
    let lossy = run(MULTIPATH, packets, "none", &lossy_paths);
    // The reports say 10% is lost, the two paths say nothing.
    let clean_paths = PathSchedule::fixed(views([validated(0), validated(0)]));
    let clean = run(MULTIPATH, packets, "bernoulli:0.1:7", &clean_paths);
    let one_lossy = run(
        MULTIPATH,
        packets,
        "bernoulli:0.1:7",
        &PathSchedule::layer(),
    );
    // 3% with no loss; (1 + 1) x 10% + 3% = 23% at 10%.
    assert!(one_clean.redundancy() < 0.06, "{one_clean}");
    assert!(lossy.redundancy() > 0.2, "{lossy}");
    assert!(clean.redundancy() < 0.06, "{clean}");
    assert!(one_lossy.redundancy() > 0.2, "{one_lossy}");
}

#[test]
fn the_paths_are_weighted_by_the_sources_they_carried() {
    // Path 0 (no loss) carries 9 sources in 10, path 1 (20% loss) one: the
    // sources lose 2%, not the 10% of the plain mean.
    let packets = 2000;
    let step = 50;
    let weighted = |share: [u64; 2]| {
        let mut schedule = PathSchedule::layer();
        for k in 0..=packets / step {
            let mut paths = views([validated(0), validated(200)]);
            paths[0].source_packets = share[0] * k as u64;
            paths[1].source_packets = share[1] * k as u64;
            schedule = schedule.from_source(k * step, paths);
        }
        run(MULTIPATH, packets, "none", &schedule)
    };
    let mostly_clean = weighted([45, 5]);
    let even = weighted([25, 25]);
    let mostly_lossy = weighted([5, 45]);
    // Targets: 2 x 2% + 3% = 7%, 2 x 10% + 3% = 23%, 2 x 18% + 3% = 39%.
    assert!(
        (0.05..0.1).contains(&mostly_clean.redundancy()),
        "{mostly_clean}"
    );
    assert!((0.2..0.27).contains(&even.redundancy()), "{even}");
    assert!(
        (0.35..0.43).contains(&mostly_lossy.redundancy()),
        "{mostly_lossy}"
    );
    // Counters that do not move: every validated path weighs the same.
    let still = run(
        MULTIPATH,
        packets,
        "none",
        &PathSchedule::fixed(views([validated(0), validated(200)])),
    );
    assert!((0.2..0.27).contains(&still.redundancy()), "{still}");
}
