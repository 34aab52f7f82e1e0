//! Config `P`: the FEC pipeline driven by an eBPF plugin versus driven natively.
//!
//! - `pipeline` (MB/s of ADU bytes): the sending side of the FEC layer
//!   (`fec_core::layer::Layer`, the one every transport runs) with RLC GF(2^8),
//!   window 32, DT=15, 1280-byte packets, one repair symbol per 4 sources. Per
//!   packet: the policy's `on_source` decision, `protect` into one datagram, the
//!   policy's `schedule_repair` decision, and the repair when it asks for one.
//!   Lib `fec-plugin` takes both decisions through the shipped `rlc-window`
//!   plugin (`fec_plugins::RLC_WINDOW`) in the sandboxed interpreter, run
//!   by the one plugin host (`fec_plugin_sdk::host::PluginPolicy`): `on_source` for every packet when the plugin has
//!   an `on_source` pluglet (`rlc-window` has none, so the host's default,
//!   protect everything, applies without a call), `schedule_repair` unless the
//!   plugin's `fec_repair_after` hint says it would decide nothing or its
//!   `fec_repair_repeat` hint says the call would repeat the last decision
//!   (`rlc-window` gives one per window: one VM call per 32 sources, the
//!   host sends the repairs of the 7 skipped calls itself); lib `native`
//!   takes the same decisions in Rust (`fec_core::layer::policy::FixedRate`). The check proves both emit byte-identical
//!   packets, so the only difference is who decides.
//! - `pipe/call` (MB/s): the same, but the host ignores `fec_repair_repeat`
//!   and asks the plugin for every repair decision (one VM call per 4
//!   sources), the cost a host pays that does not implement the hint.
//! - `invoke` (ns, median): one `schedule_repair` call into the plugin that emits
//!   a repair (context copy-in, interpretation, the `fec_emit_repair` and
//!   `fec_repair_repeat` helper calls, decisions out).
//! - `load` (ns, median): `fec_plugin_sdk::load_package` on the signed `.fecp`
//!   bytes: parse, SHA-256, one ed25519 signature checked against a trust store,
//!   static verification of every pluglet, interpreter set-up.

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use fec_core::layer::policy::Policy;
use fec_core::layer::Layer;
use fec_plugin_sdk::abi::ScheduleContext;
use fec_plugin_sdk::host::PluginPolicy;
use fec_plugin_sdk::package::{Package, TrustStore};
use fec_plugin_sdk::runtime::{
    CodeChoice, Decisions, Fault, HostOffer, HostView, Instance, Plugin,
};

use crate::report::PLUGIN;
use crate::timing::{Case, Label, Reuse};
use crate::workload::random_shards;

/// Packet (ADU) size of config `P`.
pub const PACKET_BYTES: usize = 1280;
/// RLC window of config `P`.
pub const WINDOW: usize = fec_plugins::drive::WINDOW;
/// Sources per repair symbol of config `P`.
pub const SOURCES_PER_REPAIR: u32 = fec_plugins::drive::SOURCES_PER_REPAIR as u32;
/// Distinct ADUs cycled through, so the data is not one buffer in L1.
const ADU_POOL: usize = 64;

/// A configured instance of `plugin` as a layer policy, following its
/// `fec_repair_repeat` hints or not, and the code it chose.
fn plugin_policy(plugin: &Plugin, follow_repeat: bool) -> PluginPolicy {
    let mut policy = PluginPolicy::new(plugin, Instant::now());
    policy.follow_repeat(follow_repeat);
    policy
}

/// One `schedule_repair` call with enough pending sources that the
/// `rlc-window` plugin emits a repair: the invocation the `invoke` line times.
fn schedule_one_repair(instance: &mut Instance) -> Result<Decisions, Fault> {
    let context = ScheduleContext {
        now_us: 0,
        sources_since_repair: SOURCES_PER_REPAIR,
        window_len: WINDOW as u32,
        window_target: WINDOW as u32,
        repair_budget: fec_plugin_sdk::abi::MAX_REPAIR_PER_CALL,
    };
    instance.schedule_repair(&context, &HostView::default())
}

/// A configured instance of `plugin` for the `invoke` line.
fn configured_instance(plugin: &Plugin) -> Instance {
    let mut instance = plugin.instantiate();
    instance
        .configure(&Default::default(), &HostView::default())
        .expect("configure runs");
    instance
}
/// The shipped `rlc-window` package, signed by a benchmark validator, and the
/// trust store that accepts it.
pub fn signed_rlc_window() -> (Vec<u8>, TrustStore) {
    let mut package =
        Package::parse(fec_plugins::RLC_WINDOW.package).expect("the shipped package parses");
    let validator = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    package.sign(&validator);
    let mut trust = TrustStore::new();
    trust.add(validator.verifying_key());
    (package.to_bytes(), trust)
}

fn load(bytes: &[u8], trust: &TrustStore) -> Result<Plugin, fec_plugin_sdk::Error> {
    fec_plugin_sdk::load_package(bytes, trust, 1, &HostOffer::all())
}

/// The sender: one FEC layer (the one every transport runs) and a pool of ADUs.
pub struct Sender {
    layer: Layer,
    adus: Vec<Bytes>,
    seq: usize,
    now: Instant,
    out: Vec<Bytes>,
}

impl Sender {
    /// A sender for config `P` decided by `policy`.
    pub fn new(policy: Box<dyn Policy>) -> Self {
        let now = Instant::now();
        let config = fec_plugins::drive::layer_config(PACKET_BYTES);
        let adus = random_shards(ADU_POOL, PACKET_BYTES, 8682)
            .into_iter()
            .map(Bytes::from)
            .collect();
        Self {
            layer: Layer::new(config, Some(policy), now),
            adus,
            seq: 0,
            now,
            out: Vec::with_capacity(4),
        }
    }

    /// Sends one packet; `sent` sees every datagram's bytes.
    pub fn send_one(&mut self, sent: &mut dyn FnMut(&[u8])) {
        let adu = self.adus[self.seq % ADU_POOL].clone();
        self.seq += 1;
        self.layer.send(self.now, adu, &mut self.out);
        for datagram in self.out.drain(..) {
            sent(&datagram);
        }
    }
}

/// One packet whose bytes go nowhere (a socket's cost is not the pipeline's).
fn send_discarding(sender: &mut Sender) {
    sender.send_one(&mut |bytes| {
        black_box(bytes);
    });
}

fn transcript(policy: Box<dyn Policy>, packets: usize) -> (Vec<Vec<u8>>, Sender) {
    let mut sender = Sender::new(policy);
    let mut out = Vec::new();
    for _ in 0..packets {
        sender.send_one(&mut |bytes| out.push(bytes.to_vec()));
    }
    (out, sender)
}

fn native_policy() -> Box<dyn Policy> {
    Box::new(fec_plugins::drive::native_policy())
}

/// The plugin-driven and the native pipeline under `op`; the plugin's host
/// follows `fec_repair_repeat` hints or not.
fn pipeline_cases(plugin: &Plugin, op: &'static str, follow_repeat: bool) -> [Case<'static>; 2] {
    let make = {
        let plugin = plugin.clone();
        move || plugin_policy(&plugin, follow_repeat)
    };
    let check_policy = make.clone();
    let by_plugin = Case::new(
        Label::new(PLUGIN, "P", op, PACKET_BYTES),
        Reuse::Many,
        move || Sender::new(Box::new(make())),
        send_discarding,
        move || {
            let policy = check_policy();
            let observed = policy.observer();
            let packets = 4 * WINDOW;
            let (by_plugin, sender) = transcript(Box::new(policy), packets);
            let (by_native, _) = transcript(native_policy(), packets);
            let expected = CodeChoice {
                scheme: fec_plugin_sdk::abi::Scheme::Rlc,
                source_symbols: WINDOW as u32,
                repair_symbols: 1,
            };
            let code = observed.lock().map_err(|e| e.to_string())?.configured_code;
            if code != Some(expected) {
                return Err(format!("plugin chose {code:?}, not RLC window {WINDOW}"));
            }
            let stats = sender.layer.stats();
            let repairs = stats.repair_packets as usize;
            if repairs != packets / SOURCES_PER_REPAIR as usize {
                return Err(format!("{repairs} repairs for {packets} packets"));
            }
            if by_plugin != by_native {
                return Err("plugin and native pipelines sent different packets".into());
            }
            // Who decided: one VM call per repair, or per window with the
            // hint (`configure` excluded).
            let calls = stats.plugin_calls - 1;
            let per_call = if follow_repeat {
                WINDOW
            } else {
                SOURCES_PER_REPAIR as usize
            };
            if calls != (packets / per_call) as u64 {
                return Err(format!("{calls} plugin calls for {packets} packets"));
            }
            Ok(())
        },
    );
    let native = Case::new(
        Label::new("native", "P", op, PACKET_BYTES),
        Reuse::Many,
        || Sender::new(native_policy()),
        send_discarding,
        || Ok(()),
    );
    [by_plugin, native]
}

/// The `pipeline`, `pipe/call`, `invoke` and `load` cases of config `P`.
pub fn plugin_cases() -> Vec<Case<'static>> {
    let (package, trust) = signed_rlc_window();
    let plugin = load(&package, &trust).expect("the shipped plugin loads");
    let [plugin_pipeline, native_pipeline] = pipeline_cases(&plugin, "pipeline", true);
    let [plugin_each_call, native_each_call] = pipeline_cases(&plugin, "pipe/call", false);
    let instance = {
        let plugin = plugin.clone();
        move || configured_instance(&plugin)
    };

    let invoke_check = instance.clone();
    let invoke = Case::new(
        Label::latency(PLUGIN, "P", "invoke"),
        Reuse::Many,
        instance,
        |instance| {
            black_box(schedule_one_repair(instance).expect("the plugin runs"));
        },
        move || match schedule_one_repair(&mut invoke_check()) {
            Ok(decisions) if decisions.repair == 1 => Ok(()),
            other => Err(format!("schedule_repair gave {other:?}")),
        },
    );

    let load_check = (package.clone(), trust.clone());
    let load_case = Case::new(
        Label::latency(PLUGIN, "P", "load"),
        Reuse::Many,
        || (),
        move |_| {
            black_box(load(&package, &trust).expect("the shipped plugin loads"));
        },
        move || {
            let (package, trust) = &load_check;
            let plugin = load(package, trust).map_err(|error| error.to_string())?;
            if plugin.name() != fec_plugins::RLC_WINDOW.name {
                return Err(format!("loaded {}", plugin.name()));
            }
            // A trust store without the validator must refuse the package.
            match fec_plugin_sdk::load_package(package, &TrustStore::new(), 1, &HostOffer::all()) {
                Ok(_) => Err("an untrusted package loaded".into()),
                Err(_) => Ok(()),
            }
        },
    );
    vec![
        plugin_pipeline,
        native_pipeline,
        plugin_each_call,
        native_each_call,
        invoke,
        load_case,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_cases_pass_their_checks() {
        for mut case in plugin_cases() {
            let label = case.label.clone();
            assert_eq!(case.check(), Ok(()), "{label:?}");
        }
    }
}
