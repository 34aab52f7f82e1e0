//! Paths for plugins: `fec_path_stat` reads the host's per-path values,
//! `fec_repair_path` becomes the layer's repair path, the hints keep that
//! choice, and the harness shows scheduled paths and records the choices.

use std::time::{Duration, Instant};

use fec_core::layer::feedback::Feedback;
use fec_core::layer::paths::{PathState as LayerPathState, PathView, MAX_PATHS};
use fec_core::layer::policy::{Limits, Policy, Schedule, Source, View};
use fec_plugin_sdk::abi::{
    Anchor, ConfigureContext, FeedbackContext, Operation, PathStatKey, PathState, ScheduleContext,
    SourceContext, STATE_OFFSET,
};
use fec_plugin_sdk::asm::assemble;
use fec_plugin_sdk::harness::{
    self, path_view, repair_route, HarnessConfig, LossTrace, PathChoice, PathSchedule,
};
use fec_plugin_sdk::host::PluginPolicy;
use fec_plugin_sdk::package::{Manifest, Package, PlugletEntry};
use fec_plugin_sdk::runtime::{HostOffer, HostView, PathStats, Plugin};

fn plugin(pluglets: &[(Operation, Anchor, &str)]) -> Plugin {
    let package = Package::new(Manifest {
        name: "paths".into(),
        version: "1".into(),
        memory_size: 512,
        helpers: HostOffer::all().helpers,
        pluglets: pluglets
            .iter()
            .enumerate()
            .map(|(i, (operation, anchor, src))| PlugletEntry {
                name: format!("p{i}"),
                operation: *operation,
                anchor: *anchor,
                code: assemble(src).unwrap_or_else(|e| panic!("{e}\n{src}")),
            })
            .collect(),
    })
    .unwrap();
    Plugin::load(&package, &HostOffer::all()).unwrap()
}

fn state_u64(memory: &[u8], slot: usize) -> u64 {
    let at = STATE_OFFSET + 8 * slot;
    u64::from_le_bytes(memory[at..at + 8].try_into().unwrap())
}

/// `on_source` stores `fec_path_stat(ctx.seq, ctx.len)` in state slot 0.
const READ_PATH_STAT: &str = "
    mov r8, r1
    ldxdw r1, [r8+8]
    ldxw r2, [r8+20]
    call 10
    stxdw [r8+128], r0
    mov r0, 1
    exit";

#[test]
fn path_stat_reads_every_key_of_every_path_from_the_host_view() {
    let p = plugin(&[(Operation::OnSource, Anchor::Replace, READ_PATH_STAT)]);
    let mut instance = p.instantiate();
    let mut view = HostView::default();
    for (i, path) in view.paths.iter_mut().enumerate() {
        let base = 1000 * (i as u64 + 1);
        *path = PathStats {
            state: PathState::ALL[i + 1],
            loss_permille: base + 1,
            rtt_us: base + 2,
            sent_datagrams: base + 3,
            sent_bytes: base + 4,
            source_packets: base + 5,
            repair_packets: base + 6,
            received_datagrams: base + 7,
            received_bytes: base + 8,
        };
    }
    for path in 0..MAX_PATHS as u64 {
        for key in PathStatKey::ALL {
            let ctx = SourceContext {
                seq: path,
                len: key as u32,
                ..Default::default()
            };
            instance.on_source(&ctx, &view).unwrap();
            let expected = match key {
                PathStatKey::State => path + 1,
                _ => 1000 * (path + 1) + key as u64,
            };
            assert_eq!(
                state_u64(instance.memory(), 0),
                expected,
                "path {path} {key:?}"
            );
            assert_eq!(view.paths[path as usize].value(key), expected, "{key:?}");
        }
    }
    // A host that knows no paths: every path reads Unused and zeros.
    let ctx = SourceContext {
        seq: 3,
        len: PathStatKey::ReceivedBytes as u32,
        ..Default::default()
    };
    instance.on_source(&ctx, &HostView::default()).unwrap();
    assert_eq!(state_u64(instance.memory(), 0), 0);
    // Not a decision: observers may read paths.
    let observer = plugin(&[(Operation::OnLoss, Anchor::Post, READ_PATH_STAT)]);
    let mut observing = observer.instantiate();
    observing.on_loss(&Default::default(), &view).unwrap();
    assert_eq!(
        state_u64(observing.memory(), 0),
        PathState::Opening as u64,
        "path 0's state (the loss context's seq is 0)"
    );
}

#[test]
fn repair_path_is_a_decision_of_every_replace_pluglet() {
    let choose = |path: u8| format!("mov r1, {path}\n call 11\n mov r0, 0\n exit");
    let p = plugin(&[
        (Operation::Configure, Anchor::Replace, &choose(3)),
        (Operation::OnSource, Anchor::Replace, &choose(0)),
        (Operation::ScheduleRepair, Anchor::Replace, &choose(1)),
        (Operation::OnFeedback, Anchor::Replace, &choose(2)),
    ]);
    let mut i = p.instantiate();
    let view = HostView::default();
    let configure = i.configure(&ConfigureContext::default(), &view).unwrap();
    let source = i.on_source(&SourceContext::default(), &view).unwrap();
    let schedule = i
        .schedule_repair(&ScheduleContext::default(), &view)
        .unwrap();
    let feedback = i.on_feedback(&FeedbackContext::default(), &view).unwrap();
    assert_eq!(
        [configure, source, schedule, feedback].map(|d| d.repair_path),
        [Some(3), Some(0), Some(1), Some(2)]
    );
    // Without a call there is no choice (the host keeps the last one).
    let silent = plugin(&[(
        Operation::ScheduleRepair,
        Anchor::Replace,
        "mov r0, 0\n exit",
    )]);
    let d = silent
        .instantiate()
        .schedule_repair(&ScheduleContext::default(), &view)
        .unwrap();
    assert_eq!(d.repair_path, None);
}

fn layer_view(paths: [PathView; MAX_PATHS]) -> View {
    View {
        paths,
        ..View::default()
    }
}

fn limits() -> Limits {
    Limits {
        symbol_size: 1203,
        max_window: 256,
        max_repairs_per_call: 64,
        sized_repairs: true,
    }
}

#[test]
fn the_host_shows_the_layers_paths_and_takes_the_repair_path() {
    // Stores path 1's state, loss, RTT and sent datagrams, then chooses path 1.
    let src = "
        mov r6, r1
        mov r1, 1
        mov r2, 0
        call 10
        stxdw [r6+128], r0
        mov r1, 1
        mov r2, 1
        call 10
        stxdw [r6+136], r0
        mov r1, 1
        mov r2, 2
        call 10
        stxdw [r6+144], r0
        mov r1, 1
        mov r2, 3
        call 10
        stxdw [r6+152], r0
        mov r1, 1
        call 11
        mov r0, 0
        exit";
    let p = plugin(&[(Operation::OnFeedback, Anchor::Replace, src)]);
    let now = Instant::now();
    let mut policy = PluginPolicy::new(&p, now);
    policy.record_calls();
    let observer = policy.observer();
    let mut paths = [PathView::default(); MAX_PATHS];
    paths[0] = path_view(LayerPathState::Validated, 0, None);
    paths[1] = PathView {
        state: LayerPathState::Failed,
        loss_permille: 250,
        // Shorter than a microsecond: still a measured RTT, so not 0.
        rtt: Some(Duration::from_nanos(300)),
        sent_datagrams: 77,
        ..PathView::default()
    };
    let plan = policy.on_feedback(now, &Feedback::default(), &layer_view(paths));
    assert_eq!(plan.repair_path, Some(1));
    let memory = policy.instance().memory();
    assert_eq!(
        [0, 1, 2, 3].map(|slot| state_u64(memory, slot)),
        [PathState::Failed as u64, 250, 1, 77]
    );
    paths[1].rtt = Some(Duration::from_micros(12_345));
    policy.on_feedback(now, &Feedback::default(), &layer_view(paths));
    assert_eq!(state_u64(policy.instance().memory(), 2), 12_345);
    paths[1].rtt = None;
    policy.on_feedback(now, &Feedback::default(), &layer_view(paths));
    assert_eq!(state_u64(policy.instance().memory(), 2), 0);
    // The recorded calls carry what the pluglet could read.
    let calls = observer.lock().unwrap().calls.clone().unwrap();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0].paths[0].state, PathState::Validated);
    assert_eq!(calls[0].paths[1].rtt_us, 1);
    assert_eq!(calls[1].paths[1].rtt_us, 12_345);
    assert_eq!(calls[2].paths[2], PathStats::default());
    assert_eq!(calls[0].decisions.as_ref().unwrap().repair_path, Some(1));
}

#[test]
fn a_repeat_hint_keeps_the_repair_path_it_stands_for() {
    // schedule_repair: path 1, one repair, "the next 3 calls do the same";
    // on_source chooses path 0 in between (and lets the host protect).
    let p = plugin(&[
        (
            Operation::ScheduleRepair,
            Anchor::Replace,
            "mov r1, 1\n call 11\n mov r1, 1\n call 2\n mov r1, 3\n call 9\n mov r0, 0\n exit",
        ),
        (
            Operation::OnSource,
            Anchor::Replace,
            "mov r1, 0\n call 11\n mov r0, 1\n exit",
        ),
    ]);
    let now = Instant::now();
    let view = View::default();
    let plans = |follow: bool| {
        let mut policy = PluginPolicy::new(&p, now);
        policy.follow_hints(follow);
        policy.configure(now, &limits(), &view);
        let mut plans = Vec::new();
        for seq in 0..12 {
            let source = Source {
                seq,
                flow: 0,
                len: 100,
            };
            plans.push(policy.on_source(now, &source, &view));
            let schedule = Schedule {
                pending: 1,
                idle: false,
            };
            plans.push(policy.schedule_repair(now, &schedule, &view));
        }
        (plans, policy.calls())
    };
    let (followed, fewer_calls) = plans(true);
    let (every_call, calls) = plans(false);
    assert_eq!(followed, every_call);
    assert_eq!((fewer_calls, calls), (12 + 3, 24));
    for pair in followed.chunks(2) {
        assert_eq!(
            (pair[0].repair_path, pair[1].repair_path),
            (Some(0), Some(1))
        );
        assert_eq!(pair[1].repairs, 1);
    }
}

fn two_paths(loss: [u32; 2]) -> [PathView; MAX_PATHS] {
    let rtt = Some(Duration::from_millis(10));
    [
        path_view(LayerPathState::Validated, loss[0], rtt),
        path_view(LayerPathState::Validated, loss[1], rtt),
        PathView::default(),
        PathView::default(),
    ]
}

/// schedule_repair, every 4 sources: one repair on the validated path with
/// the lowest id among 1, 2, 3 (path 0 when none is).
const LOWEST_EXTRA_VALIDATED: &str = "
    mov r6, r1
    ldxw r2, [r6+8]
    mov r0, 0
    jlt r2, 4, +20
    mov r7, 0
    mov r1, 3
    mov r2, 0
    call 10
    jne r0, 2, +1
    mov r7, 3
    mov r1, 2
    mov r2, 0
    call 10
    jne r0, 2, +1
    mov r7, 2
    mov r1, 1
    mov r2, 0
    call 10
    jne r0, 2, +1
    mov r7, 1
    mov r1, r7
    call 11
    mov r1, 1
    call 2
    mov r0, 0
    exit";

#[test]
fn the_harness_shows_scheduled_paths_and_records_every_choice() {
    let p = plugin(&[(
        Operation::ScheduleRepair,
        Anchor::Replace,
        LOWEST_EXTRA_VALIDATED,
    )]);
    let config = HarnessConfig {
        packets: 200,
        loss: LossTrace::Every(9),
        ..HarnessConfig::default()
    };
    // The layer's own paths: only path 0 is in use.
    let own = harness::run(&p, &config).unwrap();
    assert_eq!(own.fault, None);
    assert_eq!(own.repairs, 50);
    assert_eq!(own.repairs_by_path, [50, 0, 0, 0]);
    assert_eq!(own.path_choices.len(), 50);
    assert!(own.path_choices.iter().all(|c| c.path == 0));
    assert_eq!(
        own.path_choices[0],
        PathChoice {
            seq: 3,
            operation: Operation::ScheduleRepair,
            path: 0
        }
    );
    // Two paths, then path 1 fails at source 100, then path 2 opens and is
    // validated at source 150.
    let failed = {
        let mut paths = two_paths([0, 0]);
        paths[1].state = LayerPathState::Failed;
        paths
    };
    let third = {
        let mut paths = failed;
        paths[2] = path_view(LayerPathState::Validated, 5, None);
        paths
    };
    let schedule = PathSchedule::fixed(two_paths([0, 0]))
        .from_source(100, failed)
        .from_source(150, third);
    let report = harness::run_on_paths(&p, &config, &schedule).unwrap();
    assert_eq!(report.repairs, 50);
    assert_eq!(report.repairs_by_path, [12, 25, 13, 0]);
    assert_eq!(report.repairs_by_path.iter().sum::<u64>(), report.repairs);
    let chosen: Vec<(usize, u8)> = report
        .path_choices
        .iter()
        .map(|c| (c.seq, c.path))
        .collect();
    assert_eq!(chosen[..2], [(3, 1), (7, 1)]);
    assert_eq!(chosen[24..27], [(99, 1), (103, 0), (107, 0)]);
    assert_eq!((chosen.len(), chosen[37]), (50, (151, 2)));
    assert!(chosen[37..].iter().all(|&(_, path)| path == 2));
    // The same views, but the plugin's choice of a failed path is overruled
    // the way the layer does it: the usable path losing least.
    let stubborn = plugin(&[(
        Operation::ScheduleRepair,
        Anchor::Replace,
        "ldxw r2, [r1+8]\n mov r0, 0\n jlt r2, 4, +4\n mov r1, 1\n call 11\n mov r1, 1\n call 2\n mov r0, 0\n exit",
    )]);
    let report = harness::run_on_paths(&stubborn, &config, &schedule).unwrap();
    assert_eq!(report.repairs_by_path, [25, 25, 0, 0]);
    assert!(report.path_choices.iter().all(|c| c.path == 1));
    // Recovery is the same whatever the views: the link is one channel.
    assert!(report.recovered > 0);
    assert_eq!(report.recovered, own.recovered);
}

#[test]
fn the_layers_own_path_0_carries_what_the_layer_sent() {
    let p = plugin(&[(
        Operation::ScheduleRepair,
        Anchor::Replace,
        LOWEST_EXTRA_VALIDATED,
    )]);
    let config = HarnessConfig {
        packets: 120,
        record_calls: true,
        ..HarnessConfig::default()
    };
    let report = harness::run(&p, &config).unwrap();
    let (calls, _) = report.calls.unwrap();
    assert!(calls.len() > 100);
    for call in &calls {
        let path = &call.paths[0];
        assert_eq!(path.state, PathState::Validated, "{call:?}");
        // Counted once routed, at the end of the layer's call: the source
        // being sent is not on the path yet during its own decisions.
        let routing = u64::from(call.operation == Operation::ScheduleRepair);
        assert_eq!(
            path.source_packets + routing,
            call.stats.sources_sent,
            "{call:?}"
        );
        assert_eq!(path.repair_packets, call.stats.repair_sent, "{call:?}");
        assert!(path.sent_datagrams >= path.source_packets + path.repair_packets);
        assert!(call.paths[1..].iter().all(|p| *p == PathStats::default()));
    }
}

#[test]
fn a_path_schedule_holds_each_step_until_the_next() {
    let a = two_paths([1, 2]);
    let b = two_paths([3, 4]);
    let c = two_paths([5, 6]);
    assert_eq!(PathSchedule::layer().at(0), None);
    let s = PathSchedule::layer().from_source(10, b).from_source(5, a);
    assert_eq!(s.at(4), None);
    assert_eq!(s.at(5), Some(&a));
    assert_eq!(s.at(9), Some(&a));
    assert_eq!(s.at(10), Some(&b));
    assert_eq!(s.at(usize::MAX), Some(&b));
    let s = s.from_source(5, c);
    assert_eq!(s.at(7), Some(&c));
    assert_eq!(PathSchedule::fixed(a).at(0), Some(&a));
}

#[test]
fn repairs_route_like_the_layer_on_the_views_shown() {
    let ms = |n| Some(Duration::from_millis(n));
    let v = |state, loss, rtt| path_view(state, loss, rtt);
    use LayerPathState::{Failed, Opening, Unused, Validated};
    let paths = [
        v(Validated, 30, ms(10)),
        v(Validated, 10, None),
        v(Validated, 10, ms(40)),
        v(Opening, 0, ms(1)),
    ];
    assert_eq!(repair_route(Some(0), &paths), 0);
    // Not usable, or out of range: the least loss, then the known RTT.
    assert_eq!(repair_route(Some(3), &paths), 2);
    assert_eq!(repair_route(Some(200), &paths), 2);
    assert_eq!(repair_route(None, &paths), 2);
    let none = [
        v(Failed, 0, ms(1)),
        v(Unused, 0, None),
        v(Opening, 0, None),
        v(Failed, 0, None),
    ];
    assert_eq!(repair_route(Some(1), &none), 0);
}
