//! Runtime properties: persistence, isolation, read-only observers, decisions,
//! division semantics, and fault handling.

use fec_plugin_sdk::abi::{
    Anchor, ConfigureContext, LossContext, Operation, ReturnCode, ScheduleContext, Scheme,
    SourceContext, STATE_OFFSET,
};
use fec_plugin_sdk::asm::assemble;
use fec_plugin_sdk::harness::{self, HarnessConfig, LossTrace};
use fec_plugin_sdk::package::{Manifest, Package, PlugletEntry};
use fec_plugin_sdk::runtime::{
    CodeChoice, FaultKind, HostOffer, HostView, LoadError, Plugin, Stats,
};

fn plugin(pluglets: &[(Operation, Anchor, &str)]) -> Plugin {
    let package = Package::new(Manifest {
        name: "t".into(),
        version: "1".into(),
        memory_size: 512,
        helpers: vec![1, 2, 3, 4, 5, 6, 7, 8, 9],
        pluglets: pluglets
            .iter()
            .enumerate()
            .map(|(i, (operation, anchor, src))| PlugletEntry {
                name: format!("p{i}"),
                operation: *operation,
                anchor: *anchor,
                code: assemble(src).unwrap(),
            })
            .collect(),
    })
    .unwrap();
    Plugin::load(&package, &HostOffer::all()).unwrap()
}

/// Counts calls in state[0] and returns the count through `fec_emit_repair`.
const COUNTER: &str = "
    ldxdw r2, [r1+128]
    add r2, 1
    stxdw [r1+128], r2
    mov r1, r2
    call 2
    mov r0, 0
    exit";

#[test]
fn state_persists_across_calls_and_is_private_to_each_instance() {
    let p = plugin(&[(Operation::ScheduleRepair, Anchor::Replace, COUNTER)]);
    let mut a = p.instantiate();
    let mut b = p.instantiate();
    let ctx = ScheduleContext::default();
    let view = HostView::default();
    for expected in 1..=3 {
        assert_eq!(a.schedule_repair(&ctx, &view).unwrap().repair, expected);
    }
    // b has its own zeroed region: a's three calls are invisible to it.
    assert_eq!(b.schedule_repair(&ctx, &view).unwrap().repair, 1);
    assert_eq!(a.memory()[STATE_OFFSET], 3);
    assert_eq!(b.memory()[STATE_OFFSET], 1);
}

#[test]
fn observers_are_read_only_and_see_a_pristine_context() {
    // The replace pluglet overwrites ctx.flow with 99 then protects flow 3
    // (the real one). The observer stores ctx.flow into its state: it must see 3.
    let p = plugin(&[
        (
            Operation::OnSource,
            Anchor::Replace,
            "stw [r1+16], 99\n mov r1, 3\n call 1\n mov r0, 0\n exit",
        ),
        (
            Operation::OnSource,
            Anchor::Post,
            "ldxw r2, [r1+16]\n stxw [r1+136], r2\n mov r0, 0\n exit",
        ),
    ]);
    let mut i = p.instantiate();
    let ctx = SourceContext {
        flow: 3,
        ..Default::default()
    };
    let d = i.on_source(&ctx, &HostView::default()).unwrap();
    assert_eq!(d.protect, Some(3));
    assert_eq!(d.return_code, Some(ReturnCode::Ok));
    assert_eq!(i.memory()[136], 3);
}

#[test]
fn notifications_reach_observers_and_decisions_are_empty() {
    let p = plugin(&[(
        Operation::OnLoss,
        Anchor::Post,
        "ldxw r2, [r1+16]\n stxw [r1+128], r2\n mov r0, 0\n exit",
    )]);
    let mut i = p.instantiate();
    let d = i
        .on_loss(
            &LossContext {
                burst_len: 4,
                ..Default::default()
            },
            &HostView::default(),
        )
        .unwrap();
    assert_eq!(d.return_code, None);
    assert!(d.use_default());
    assert_eq!(i.memory()[128], 4);
}

#[test]
fn configure_sets_code_and_window_and_logs() {
    // Writes "hi" at state offset 200 and logs it.
    let p = plugin(&[(
        Operation::Configure,
        Anchor::Replace,
        "mov r6, r1
         stb [r6+200], 104
         stb [r6+201], 105
         mov r1, 2
         mov r2, 32
         mov r3, 8
         call 7
         mov r1, 32
         call 3
         mov r1, 200
         mov r2, 2
         call 6
         mov r1, 3
         call 4
         mov r0, 0
         exit",
    )]);
    let mut i = p.instantiate();
    let view = HostView {
        stats: Stats {
            recovered: 42,
            ..Default::default()
        },
        ..Default::default()
    };
    let d = i.configure(&ConfigureContext::default(), &view).unwrap();
    assert_eq!(
        d.code,
        Some(CodeChoice {
            scheme: Scheme::Rlc,
            source_symbols: 32,
            repair_symbols: 8
        })
    );
    assert_eq!(d.window, Some(32));
    assert_eq!(d.logs, vec!["hi".to_string()]);
    assert!(!d.use_default());
}

#[test]
fn division_by_a_zero_register_is_defined_not_a_panic() {
    // x / 0 = 0 and x % 0 = x, as in the Linux kernel. Pin it, so a change
    // to the interpreter that altered it would be noticed.
    let p = plugin(&[(
        Operation::ScheduleRepair,
        Anchor::Replace,
        "mov r2, 0
         mov r3, 7
         div r3, r2
         stxdw [r1+128], r3
         mov r4, 7
         mod r4, r2
         stxdw [r1+136], r4
         mov r5, 9
         div32 r5, r2
         stxdw [r1+144], r5
         mov r0, 0
         exit",
    )]);
    let mut i = p.instantiate();
    i.schedule_repair(&ScheduleContext::default(), &HostView::default())
        .unwrap();
    assert_eq!(i.memory()[128], 0);
    assert_eq!(i.memory()[136], 7);
    assert_eq!(i.memory()[144], 0);
}

#[test]
fn edge_cases_have_the_kernels_results_not_a_panic() {
    // Each result is stored at state slot k (offset 128 + 8k).
    let p = plugin(&[(
        Operation::ScheduleRepair,
        Anchor::Replace,
        "lddw r2, 0x8000000000000000
         neg r2
         stxdw [r1+128], r2
         mov r2, 1
         mov r3, 65
         lsh r2, r3
         stxdw [r1+136], r2
         lddw r2, 0xffffffff00000007
         mov r3, 0
         mod32 r2, r3
         stxdw [r1+144], r2
         mov r2, -1
         mov r4, 0
         jeq r2, -1, +1
         ja +1
         mov r4, 1
         stxdw [r1+152], r4
         lddw r2, 0xffffffff80000000
         neg32 r2
         stxdw [r1+160], r2
         mov r0, 0
         exit",
    )]);
    let mut i = p.instantiate();
    i.schedule_repair(&ScheduleContext::default(), &HostView::default())
        .unwrap();
    let slot =
        |k: usize| u64::from_le_bytes(i.memory()[128 + 8 * k..136 + 8 * k].try_into().unwrap());
    // neg wraps: -i64::MIN is i64::MIN.
    assert_eq!(slot(0), 1 << 63);
    // A register shift amount is masked to the width: 65 & 63 = 1.
    assert_eq!(slot(1), 2);
    // 32-bit modulo by zero keeps the low half and clears the high one.
    assert_eq!(slot(2), 7);
    // A 64-bit jump's immediate is sign-extended: -1 matches u64::MAX.
    assert_eq!(slot(3), 1);
    // 32-bit neg of i32::MIN wraps and zero-extends.
    assert_eq!(slot(4), 0x8000_0000);
}

#[test]
fn a_fault_disables_only_the_faulting_instance() {
    // Faults on its second call (state counter reaches 2, then loads from the
    // kernel half of the address space, which no allocation can cover).
    let p = plugin(&[(
        Operation::ScheduleRepair,
        Anchor::Replace,
        "ldxdw r2, [r1+128]
         add r2, 1
         stxdw [r1+128], r2
         jne r2, 2, +4
         lddw r3, 0x8000000000000000
         xor r3, r1
         ldxdw r0, [r3]
         mov r0, 0
         exit",
    )]);
    let mut a = p.instantiate();
    let mut b = p.instantiate();
    let ctx = ScheduleContext::default();
    let view = HostView::default();
    a.schedule_repair(&ctx, &view).unwrap();
    let fault = a.schedule_repair(&ctx, &view).unwrap_err();
    assert!(matches!(
        fault.kind,
        FaultKind::MemoryAccess { instruction: 7, .. }
    ));
    assert_eq!(a.disabled(), Some(&fault));
    assert!(fault
        .to_string()
        .contains("out-of-bounds load of 8 bytes at instruction 7"));
    // Classified by the interpreter, not parsed from a message: no host
    // address appears anywhere.
    assert!(!fault.to_string().contains("0x"), "{fault}");
    // The other instance of the same plugin is unaffected.
    b.schedule_repair(&ctx, &view).unwrap();
    assert!(b.disabled().is_none());
}

#[test]
fn now_and_stats_come_from_the_host_view() {
    let p = plugin(&[(
        Operation::ScheduleRepair,
        Anchor::Replace,
        "mov r6, r1
         call 5
         stxdw [r6+128], r0
         mov r1, 1
         call 4
         stxdw [r6+136], r0
         mov r0, 1
         exit",
    )]);
    let mut i = p.instantiate();
    let view = HostView {
        now_us: 1234,
        stats: Stats {
            repair_sent: 77,
            ..Default::default()
        },
        ..Default::default()
    };
    let d = i
        .schedule_repair(&ScheduleContext::default(), &view)
        .unwrap();
    assert_eq!(d.return_code, Some(ReturnCode::Default));
    assert!(d.use_default());
    assert_eq!(
        u64::from_le_bytes(i.memory()[128..136].try_into().unwrap()),
        1234
    );
    assert_eq!(i.memory()[136], 77);
}

#[test]
fn repair_after_hint_is_recorded_and_checked() {
    let p = plugin(&[(
        Operation::Configure,
        Anchor::Replace,
        "mov r1, 4\n call 8\n mov r0, 0\n exit",
    )]);
    let d = p
        .instantiate()
        .configure(&ConfigureContext::default(), &HostView::default())
        .unwrap();
    assert_eq!(d.repair_after, Some(4));
    let bad = plugin(&[(
        Operation::OnSource,
        Anchor::Replace,
        "mov r1, 4\n call 8\n mov r0, 0\n exit",
    )]);
    let fault = bad
        .instantiate()
        .on_source(&SourceContext::default(), &HostView::default())
        .unwrap_err();
    assert!(
        fault.to_string().contains("only valid in configure"),
        "{fault}"
    );
}

#[test]
fn load_rechecks_a_manifest_changed_after_it_was_checked() {
    let mut package = Package::new(Manifest {
        name: "t".into(),
        version: "1".into(),
        memory_size: 256,
        helpers: vec![],
        pluglets: vec![PlugletEntry {
            name: "p".into(),
            operation: Operation::OnSource,
            anchor: Anchor::Replace,
            code: assemble("mov r0, 0\nexit").unwrap(),
        }],
    })
    .unwrap();
    // A region smaller than the context area used to load, then panic the
    // host (outside the VM's unwind guard) on the first call.
    package.manifest.memory_size = 16;
    match Plugin::load(&package, &HostOffer::all()) {
        Err(LoadError::Manifest(e)) => assert!(e.to_string().contains("memory_size"), "{e}"),
        other => panic!("expected a manifest error, got {other:?}"),
    }
}

#[test]
fn harness_refuses_a_loss_trace_that_would_divide_by_zero() {
    let p = plugin(&[(
        Operation::ScheduleRepair,
        Anchor::Replace,
        "mov r0, 0\nexit",
    )]);
    let config = HarnessConfig {
        packets: 10,
        loss: LossTrace::Every(0),
        ..HarnessConfig::default()
    };
    let err = harness::run(&p, &config).unwrap_err();
    assert!(err.to_string().contains("Every(0)"), "{err}");
}

#[test]
fn an_operation_without_pluglets_runs_no_vm_and_defers_to_the_host() {
    let p = plugin(&[(Operation::ScheduleRepair, Anchor::Replace, COUNTER)]);
    assert!(p.runs(Operation::ScheduleRepair));
    assert!(!p.runs(Operation::OnSource));
    assert!(!p.runs(Operation::OnLoss));
    let mut i = p.instantiate();
    let d = i
        .on_source(&SourceContext::default(), &HostView::default())
        .unwrap();
    assert_eq!(d, Default::default());
    assert!(d.use_default());
    assert_eq!(i.calls(), 0);
    assert_eq!(i.memory()[STATE_OFFSET], 0);
    // The operation that has a pluglet still runs it.
    let d = i
        .schedule_repair(&ScheduleContext::default(), &HostView::default())
        .unwrap();
    assert_eq!((d.repair, i.calls()), (1, 1));
}

#[test]
fn logs_of_replace_then_observers_are_kept_in_order_up_to_the_cap() {
    use fec_plugin_sdk::runtime::MAX_LOGS_PER_CALL;
    // Each pluglet writes its letter at state offset 200 and logs it 5 times.
    let logger = |letter: u8| {
        let mut src = format!("mov r6, r1\n stb [r6+200], {letter}\n");
        for _ in 0..5 {
            src.push_str("mov r1, 200\n mov r2, 1\n call 6\n");
        }
        src.push_str("mov r0, 0\n exit");
        src
    };
    let (a, b) = (logger(b'a'), logger(b'b'));
    let p = plugin(&[
        (Operation::OnFeedback, Anchor::Post, &b),
        (Operation::OnFeedback, Anchor::Replace, &a),
    ]);
    let mut i = p.instantiate();
    let d = i
        .on_feedback(&Default::default(), &HostView::default())
        .unwrap();
    let mut expected = vec!["a"; 5];
    expected.extend(["b"; 5]);
    expected.truncate(MAX_LOGS_PER_CALL);
    assert_eq!(d.logs, expected);
    assert_eq!(d.return_code, Some(ReturnCode::Ok));
}

#[test]
fn each_call_sees_its_own_host_view_whatever_ran_before() {
    // Stores fec_now_us() in its state.
    let clock = plugin(&[(
        Operation::ScheduleRepair,
        Anchor::Replace,
        "mov r6, r1\n call 5\n stxdw [r6+128], r0\n mov r0, 0\n exit",
    )]);
    // Reads no view at all.
    let other = plugin(&[(Operation::ScheduleRepair, Anchor::Replace, COUNTER)]);
    let (mut c, mut o) = (clock.instantiate(), other.instantiate());
    let at = |now_us| HostView {
        now_us,
        ..Default::default()
    };
    let now = |i: &fec_plugin_sdk::runtime::Instance| {
        u64::from_le_bytes(i.memory()[128..136].try_into().unwrap())
    };
    let ctx = ScheduleContext::default();
    c.schedule_repair(&ctx, &at(1234)).unwrap();
    assert_eq!(now(&c), 1234);
    o.schedule_repair(&ctx, &at(99)).unwrap();
    c.schedule_repair(&ctx, &at(7)).unwrap();
    assert_eq!(now(&c), 7);
    c.schedule_repair(&ctx, &at(0)).unwrap();
    assert_eq!(now(&c), 0);
}

#[test]
fn repair_repeat_hint_is_recorded_and_checked() {
    let p = plugin(&[(
        Operation::ScheduleRepair,
        Anchor::Replace,
        "mov r1, 2\n call 2\n mov r1, 7\n call 9\n mov r0, 0\n exit",
    )]);
    let mut i = p.instantiate();
    let d = i
        .schedule_repair(&ScheduleContext::default(), &HostView::default())
        .unwrap();
    assert_eq!((d.repair, d.repair_repeat), (2, Some(7)));
    // Not carried over: a call that gives no hint has none.
    let p = plugin(&[(Operation::ScheduleRepair, Anchor::Replace, COUNTER)]);
    let d = p
        .instantiate()
        .schedule_repair(&ScheduleContext::default(), &HostView::default())
        .unwrap();
    assert_eq!(d.repair_repeat, None);
}

#[test]
fn the_repeat_hint_changes_how_often_the_vm_runs_never_what_is_sent() {
    const CONFIGURE: &str = "mov r1, 2\n mov r2, 32\n mov r3, 1\n call 7
        mov r1, 32\n call 3\n mov r1, 4\n call 8\n mov r0, 0\n exit";
    // One repair every 4 sources; `hint` adds `fec_repair_repeat(7)`.
    let schedule = |hint: bool| {
        let repeat = if hint { "mov r1, 7\n call 9\n" } else { "" };
        let skip = if hint { 4 } else { 2 };
        format!(
            "ldxw r2, [r1+8]\n jlt r2, 4, +{skip}\n mov r1, 1\n call 2\n {repeat} mov r0, 0\n exit"
        )
    };
    let (plain, hinted) = (schedule(false), schedule(true));
    let feedback = "mov r0, 0\n exit";
    let config = HarnessConfig {
        packets: 640,
        loss: LossTrace::GilbertElliott {
            rate: 0.05,
            mean_burst: 2.0,
            seed: 11,
        },
        ..HarnessConfig::default()
    };
    let run =
        |pluglets: &[(Operation, Anchor, &str)]| harness::run(&plugin(pluglets), &config).unwrap();
    let every_call = run(&[
        (Operation::Configure, Anchor::Replace, CONFIGURE),
        (Operation::ScheduleRepair, Anchor::Replace, &plain),
    ]);
    let per_window = run(&[
        (Operation::Configure, Anchor::Replace, CONFIGURE),
        (Operation::ScheduleRepair, Anchor::Replace, &hinted),
    ]);
    // Feedback that runs a pluglet cancels the hint: more calls, same packets.
    let with_feedback = run(&[
        (Operation::Configure, Anchor::Replace, CONFIGURE),
        (Operation::ScheduleRepair, Anchor::Replace, &hinted),
        (Operation::OnFeedback, Anchor::Replace, feedback),
    ]);
    assert_eq!(every_call.repairs, 640 / 4);
    assert!(every_call.lost_sources > 0 && every_call.recovered > 0);
    assert_eq!(every_call.plugin_calls, 1 + 640 / 4);
    assert_eq!(per_window.plugin_calls, 1 + 640 / 32);
    // 13 reports (every 50 sources, and at the end); each cancels the hint,
    // so the next due repair is asked for again: calls at sources 4, 36, then
    // 52, 84, then 104, 136, ... -- 26 schedule_repair calls instead of 20.
    let feedbacks = 640u64.div_ceil(config.feedback_every as u64);
    assert_eq!(feedbacks, 13);
    assert_eq!(with_feedback.plugin_calls, 1 + feedbacks + 26);
    for report in [&per_window, &with_feedback] {
        let same = harness::Report {
            plugin_calls: every_call.plugin_calls,
            ..report.clone()
        };
        assert_eq!(same, every_call);
    }
}
