//! Plugin packages (`.fecp`), ELF objects, and the sandboxed runtime.

use arbitrary::{Arbitrary, Unstructured};
use fec_plugin_sdk::abi::{
    Anchor, ConfigureContext, FeedbackContext, HelperId, LossContext, Operation, PathState,
    RecoveredContext, ScheduleContext, SourceContext, MAX_LOG_LEN, MAX_MEMORY_SIZE, MAX_PATHS,
    MAX_REPAIR_PER_CALL, MAX_WINDOW, MIN_MEMORY_SIZE,
};
use fec_plugin_sdk::elf;
use fec_plugin_sdk::package::{Manifest, Package, PlugletEntry, TrustStore};
use fec_plugin_sdk::runtime::{
    Decisions, Fault, FaultKind, HostOffer, HostView, Instance, PathStats, Plugin, Stats,
    MAX_LOGS_PER_CALL,
};
use sha2::{Digest, Sha256};

use crate::verifier::shape;

/// Package parsing on raw bytes, and on bytes completed with their correct
/// digest (so the fuzzer gets past the SHA-256 check; the first byte says how
/// many trailing bytes form the signature trailer). Properties: no panic;
/// a parsed package serialises to exactly the bytes it came from, rebuilds
/// to the same digest, and loads (or is refused) without panicking.
pub fn package(data: &[u8]) {
    check_package(data);
    if let [trailer_len, rest @ ..] = data {
        let split = rest.len().saturating_sub(usize::from(*trailer_len));
        let (body, trailer) = rest.split_at(split);
        let mut bytes = body.to_vec();
        bytes.extend_from_slice(&Sha256::digest(body));
        bytes.extend_from_slice(trailer);
        check_package(&bytes);
    }
}

fn check_package(bytes: &[u8]) {
    let Ok(package) = Package::parse(bytes) else {
        return;
    };
    assert_eq!(package.to_bytes(), bytes, "package does not round-trip");
    let m = &package.manifest;
    assert!((MIN_MEMORY_SIZE..=MAX_MEMORY_SIZE).contains(&m.memory_size));
    let rebuilt = Package::new(m.clone()).expect("a parsed manifest is valid");
    assert_eq!(rebuilt.digest(), package.digest());
    let trust = TrustStore::new();
    assert!(trust.check(&package, 0).is_ok(), "0 signatures required");
    assert!(trust.check(&package, 1).is_err(), "nobody is trusted");
    if let Ok(plugin) = Plugin::load(&package, &HostOffer::all()) {
        run_every_operation(&plugin, 3);
    }
}

/// The ELF loader on arbitrary bytes. Properties: no panic; every pluglet it
/// returns is named `<anchor>/<operation>` as it says and holds whole
/// instructions; packaged, it loads (or is refused) and runs without panic.
pub fn elf_object(data: &[u8]) {
    let Ok(pluglets) = elf::load(data) else {
        return;
    };
    assert!(!pluglets.is_empty(), "Ok with no pluglets");
    for p in &pluglets {
        assert_eq!(
            elf::parse_section_name(&p.name),
            Some((p.anchor, p.operation)),
            "pluglet {:?} misnamed",
            p.name
        );
        assert!(
            !p.code.is_empty() && p.code.len() % 8 == 0,
            "pluglet {:?} holds a partial instruction",
            p.name
        );
    }
    let manifest = Manifest {
        name: "fuzz".into(),
        version: "0".into(),
        memory_size: MIN_MEMORY_SIZE,
        helpers: HostOffer::all().helpers,
        pluglets: pluglets.into_iter().map(PlugletEntry::from).collect(),
    };
    let loaded = Package::new(manifest)
        .ok()
        .and_then(|package| Plugin::load(&package, &HostOffer::all()).ok());
    if let Some(plugin) = loaded {
        run_every_operation(&plugin, 1);
    }
}

#[derive(Arbitrary, Debug)]
struct RuntimeInput {
    memory_size: u16,
    helpers: u8,
    offered: u8,
    pluglets: Vec<PlugletInput>,
    calls: Vec<Call>,
}

#[derive(Arbitrary, Debug)]
struct PlugletInput {
    operation: u8,
    post: bool,
    /// Shape the code so it likely passes the verifier.
    shaped: bool,
    code: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct Call {
    operation: u8,
    now_us: u64,
    a: u64,
    b: u32,
    c: u32,
    d: u32,
    stats: [u64; 7],
    schemes_offered: u32,
}

/// Verified bytecode in the real runtime, with arbitrary contexts and host
/// views. Properties: loading never panics; an accepted program never
/// panics the VM (a caught panic is a bug: the verifier let it through),
/// every decision is inside the ABI's ranges, the region keeps its size,
/// and a faulted instance stays disabled with the same fault.
pub fn runtime(data: &[u8]) {
    let Ok(input) = RuntimeInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    // Ids above 8 share a bit with id - 8, so the mask stays one byte however
    // many helpers the ABI grows.
    let mask = |m: u8| {
        HelperId::ALL
            .iter()
            .map(|h| *h as u32)
            .filter(|id| m & (1 << ((id - 1) % 8)) != 0)
            .collect::<Vec<_>>()
    };
    let memory_size =
        MIN_MEMORY_SIZE + u32::from(input.memory_size) % (MAX_MEMORY_SIZE - MIN_MEMORY_SIZE + 1);
    let pluglets: Vec<PlugletEntry> = input
        .pluglets
        .iter()
        .take(4)
        .map(|p| {
            let operation = Operation::ALL[usize::from(p.operation) % Operation::ALL.len()];
            let anchor = if p.post || !operation.accepts_replace() {
                Anchor::Post
            } else {
                Anchor::Replace
            };
            let code = if p.shaped {
                shape(&p.code)
            } else {
                p.code.clone()
            };
            PlugletEntry {
                name: format!("{}/{}", anchor.name(), operation.name()),
                operation,
                anchor,
                code,
            }
        })
        .collect();
    let Ok(package) = Package::new(Manifest {
        name: "fuzz".into(),
        version: "0".into(),
        memory_size,
        helpers: mask(input.helpers),
        pluglets,
    }) else {
        return;
    };
    let offer = HostOffer {
        helpers: mask(input.offered),
    };
    let Ok(plugin) = Plugin::load(&package, &offer) else {
        return;
    };
    let mut instance = plugin.instantiate();
    let mut fault: Option<Fault> = None;
    for call in input.calls.iter().take(32) {
        let result = invoke(&mut instance, call);
        assert_eq!(
            instance.memory().len(),
            memory_size as usize,
            "region resized"
        );
        match (&fault, result) {
            (Some(first), result) => {
                assert_eq!(
                    result.as_ref().err(),
                    Some(first),
                    "a disabled instance ran"
                );
            }
            (None, Ok(decisions)) => check_decisions(&decisions),
            (None, Err(f)) => {
                check_fault(&f);
                assert_eq!(instance.disabled(), Some(&f));
                fault = Some(f);
            }
        }
    }
}

fn invoke(instance: &mut Instance, call: &Call) -> Result<Decisions, Fault> {
    let [s0, s1, s2, s3, s4, s5, s6] = call.stats;
    let view = HostView {
        now_us: call.now_us,
        stats: Stats {
            sources_sent: s0,
            repair_sent: s1,
            received: s2,
            recovered: s3,
            unrecoverable: s4,
            rejected: s5,
            window_len: s6,
        },
        schemes_offered: call.schemes_offered,
        paths: paths(call),
    };
    let now_us = call.now_us;
    match call.operation % 6 {
        0 => instance.configure(
            &ConfigureContext {
                now_us,
                schemes_offered: call.schemes_offered,
                symbol_size: call.b,
                max_window: call.c,
                max_repair_per_call: call.d,
            },
            &view,
        ),
        1 => instance.on_source(
            &SourceContext {
                now_us,
                seq: call.a,
                flow: call.b,
                len: call.c,
            },
            &view,
        ),
        2 => instance.schedule_repair(
            &ScheduleContext {
                now_us,
                sources_since_repair: call.b,
                window_len: call.c,
                window_target: call.d,
                repair_budget: call.b ^ call.d,
            },
            &view,
        ),
        3 => instance.on_feedback(
            &FeedbackContext {
                now_us,
                rtt_us: call.a,
                received: call.b,
                lost: call.c,
                recovered: call.d,
                max_burst: call.b >> 8,
                mean_burst_x16: call.c >> 8,
                reserved: 0,
            },
            &view,
        ),
        4 => instance.on_recovered(
            &RecoveredContext {
                now_us,
                seq: call.a,
                flow: call.b,
                len: call.c,
            },
            &view,
        ),
        _ => instance.on_loss(
            &LossContext {
                now_us,
                seq: call.a,
                burst_len: call.b,
                reserved: 0,
            },
            &view,
        ),
    }
}

/// Per-path values from the call's counters (the input format stays as it
/// was, so the corpus keeps its meaning): path `i` rotates them by `i`.
fn paths(call: &Call) -> [PathStats; MAX_PATHS as usize] {
    std::array::from_fn(|i| {
        let s = |k: usize| call.stats[(i + k) % call.stats.len()];
        PathStats {
            state: PathState::ALL[(s(0) % PathState::ALL.len() as u64) as usize],
            loss_permille: s(1),
            rtt_us: s(2),
            sent_datagrams: s(3),
            sent_bytes: s(4),
            source_packets: s(5),
            repair_packets: s(6),
            received_datagrams: s(0) >> 8,
            received_bytes: s(1) >> 8,
        }
    })
}

fn check_decisions(decisions: &Decisions) {
    if let Some(path) = decisions.repair_path {
        assert!(u32::from(path) < MAX_PATHS, "{decisions:?}");
    }
    assert!(decisions.repair <= MAX_REPAIR_PER_CALL, "{decisions:?}");
    if let Some(window) = decisions.window {
        assert!((1..=MAX_WINDOW).contains(&window), "{decisions:?}");
    }
    if let Some(code) = decisions.code {
        assert!(code.source_symbols <= MAX_WINDOW && code.repair_symbols <= MAX_REPAIR_PER_CALL);
    }
    assert!(decisions.logs.len() <= MAX_LOGS_PER_CALL);
    for log in &decisions.logs {
        // Lossy UTF-8 may grow a byte into three; the source was <= 200.
        assert!(log.len() <= 3 * MAX_LOG_LEN as usize);
    }
}

fn check_fault(fault: &Fault) {
    assert!(
        !matches!(fault.kind, FaultKind::Panic(_)),
        "a verified program panicked the VM: {fault}"
    );
}

/// One call of every operation on a fresh instance, `rounds` times.
fn run_every_operation(plugin: &Plugin, rounds: u8) {
    let mut instance = plugin.instantiate();
    for round in 0..rounds {
        for operation in 0..6 {
            let call = Call {
                operation,
                now_us: u64::from(round) * 1000,
                a: u64::from(round),
                b: 7,
                c: 1200,
                d: 16,
                stats: [u64::from(round); 7],
                schemes_offered: 0,
            };
            match invoke(&mut instance, &call) {
                Ok(decisions) => check_decisions(&decisions),
                Err(fault) => {
                    check_fault(&fault);
                    return;
                }
            }
        }
    }
}
