//! Config `P`: the FEC pipeline driven by an eBPF plugin versus driven natively.
//!
//! - `pipeline` (MB/s of ADU bytes): the sender side of `fec_core::pipeline` with
//!   RLC GF(2^8), window 32, DT=15, 1280-byte packets, one repair symbol per 4
//!   sources. Per packet: the policy's `on_source` decision, `protect`, the
//!   policy's `schedule_repair` decision, and `repair(n)` when it asks for one.
//!   Lib `fec-plugin` takes both decisions through the shipped `rlc-window`
//!   plugin (`fec_plugins::RLC_WINDOW`) in the sandboxed rbpf interpreter, called
//!   the way a host calls it: `on_source` for every packet when the plugin has
//!   an `on_source` pluglet (`rlc-window` has none, so the host's default,
//!   protect everything, applies without a call), `schedule_repair` unless the
//!   plugin's `fec_repair_after` hint says it would decide nothing or its
//!   `fec_repair_repeat` hint says the call would repeat the last decision
//!   (`rlc-window` gives one per window: one VM call per 32 sources, the
//!   host sends the repairs of the 7 skipped calls itself); lib `native`
//!   takes the same decisions in Rust. The check proves both emit byte-identical
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

use bytes::Bytes;
use fec_core::pipeline::wire::ADU_INFO_LEN;
use fec_core::pipeline::{Config, Encoder, Scheme};
use fec_plugin_sdk::abi::{ConfigureContext, Operation, ScheduleContext, SourceContext};
use fec_plugin_sdk::hints::{Due, RepairHints};
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
pub const WINDOW: usize = 32;
/// Sources per repair symbol of config `P`.
pub const SOURCES_PER_REPAIR: u32 = 4;
/// Distinct ADUs cycled through, so the data is not one buffer in L1.
const ADU_POOL: usize = 64;

/// Who takes the FEC decisions for each packet.
pub trait Policy {
    /// Whether to protect source packet `seq`.
    fn protect(&mut self, seq: u64) -> bool;
    /// How many repair symbols to send after `sources_since_repair` sources.
    fn repairs(&mut self, sources_since_repair: u32, window_len: u32) -> u32;
}

/// The `rlc-window` policy in Rust: protect everything, one repair per 4 sources.
#[derive(Debug, Default)]
pub struct NativePolicy;

impl Policy for NativePolicy {
    fn protect(&mut self, _seq: u64) -> bool {
        true
    }

    fn repairs(&mut self, sources_since_repair: u32, _window_len: u32) -> u32 {
        u32::from(sources_since_repair >= SOURCES_PER_REPAIR)
    }
}

/// A plugin instance as the policy, called as a host calls it.
pub struct PluginPolicy {
    instance: Instance,
    view: HostView,
    window_target: u32,
    /// Whether the plugin has an `on_source` pluglet; without one the host's
    /// default (protect) applies and no call is made.
    runs_on_source: bool,
    /// The plugin's scheduling hints (`fec_repair_repeat` followed or not).
    hints: RepairHints,
}

impl PluginPolicy {
    /// A configured instance of `plugin` and the code it chose.
    pub fn new(plugin: &Plugin) -> Result<(Self, Option<CodeChoice>), String> {
        Self::with_hints(plugin, true)
    }

    /// As [`PluginPolicy::new`]; `follow_repeat: false` makes a host that asks
    /// the plugin for every repair decision.
    pub fn with_hints(
        plugin: &Plugin,
        follow_repeat: bool,
    ) -> Result<(Self, Option<CodeChoice>), String> {
        let mut instance = plugin.instantiate();
        let view = HostView::default();
        let configured = instance
            .configure(
                &ConfigureContext {
                    now_us: 0,
                    schemes_offered: 0,
                    symbol_size: (PACKET_BYTES + ADU_INFO_LEN) as u32,
                    max_window: fec_plugin_sdk::abi::MAX_WINDOW,
                    max_repair_per_call: fec_plugin_sdk::abi::MAX_REPAIR_PER_CALL,
                },
                &view,
            )
            .map_err(|fault| fault.to_string())?;
        let mut hints = RepairHints::new(plugin);
        hints.follow_repeat(follow_repeat);
        hints.after(Operation::Configure, &configured);
        let policy = Self {
            instance,
            view,
            window_target: configured.window.unwrap_or(WINDOW as u32),
            runs_on_source: plugin.runs(Operation::OnSource),
            hints,
        };
        Ok((policy, configured.code))
    }

    /// One `schedule_repair` call with enough pending sources that the
    /// `rlc-window` plugin emits a repair: the invocation the `invoke` line times.
    pub fn schedule_one_repair(&mut self) -> Result<Decisions, Fault> {
        self.schedule(SOURCES_PER_REPAIR, WINDOW as u32)
    }

    /// One `schedule_repair` call, the way the sender makes it.
    fn schedule(&mut self, sources_since_repair: u32, window_len: u32) -> Result<Decisions, Fault> {
        let context = ScheduleContext {
            now_us: 0,
            sources_since_repair,
            window_len,
            window_target: self.window_target,
            repair_budget: fec_plugin_sdk::abi::MAX_REPAIR_PER_CALL,
        };
        self.instance.schedule_repair(&context, &self.view)
    }
}

impl Policy for PluginPolicy {
    fn protect(&mut self, seq: u64) -> bool {
        if !self.runs_on_source {
            // A disabled plugin means no FEC, as a host would run.
            return self.instance.disabled().is_none();
        }
        let context = SourceContext {
            now_us: seq * 100,
            seq,
            flow: 0,
            len: PACKET_BYTES as u32,
        };
        match self.instance.on_source(&context, &self.view) {
            Ok(decisions) => decisions.protect.is_some() || decisions.use_default(),
            // A disabled plugin means no FEC, as a host would run.
            Err(_) => false,
        }
    }

    fn repairs(&mut self, sources_since_repair: u32, window_len: u32) -> u32 {
        match self.hints.due(&self.instance, sources_since_repair) {
            Due::Skip => 0,
            Due::Repeat(count) => count,
            Due::Call => {
                let decisions = self
                    .schedule(sources_since_repair, window_len)
                    .unwrap_or_default();
                self.hints.after(Operation::ScheduleRepair, &decisions);
                decisions.repair
            }
        }
    }
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

/// The sender: one pipeline encoder and a pool of ADUs.
pub struct Sender<P> {
    policy: P,
    encoder: Encoder,
    adus: Vec<Bytes>,
    seq: u64,
}

impl<P: Policy> Sender<P> {
    /// A sender for config `P` decided by `policy`.
    pub fn new(policy: P) -> Self {
        let mut config = Config::new(Scheme::Rlc {
            field: fec_core::rlc::Field::Gf256,
            window: WINDOW,
            dt: 15,
        });
        config.set_symbol_size(PACKET_BYTES + ADU_INFO_LEN);
        let adus = random_shards(ADU_POOL, PACKET_BYTES, 8682)
            .into_iter()
            .map(Bytes::from)
            .collect();
        Self {
            policy,
            encoder: Encoder::new(&config).expect("valid pipeline configuration"),
            adus,
            seq: 0,
        }
    }

    /// Sends one packet; `sent` sees every source and repair packet's bytes.
    pub fn send_one(&mut self, sent: &mut dyn FnMut(&[u8])) {
        let adu = &self.adus[self.seq as usize % ADU_POOL];
        if self.policy.protect(self.seq) {
            let packet = self.encoder.protect(0, adu.clone()).expect("ADU fits");
            sent(packet.header());
            sent(packet.adu());
        } else {
            sent(adu);
        }
        self.seq += 1;
        let pending = self.encoder.pending() as u32;
        let repairs = self.policy.repairs(pending, pending);
        if repairs > 0 {
            for packet in self
                .encoder
                .repair(repairs as usize)
                .expect("window holds sources")
            {
                sent(&packet);
            }
        }
    }
}

/// One packet whose bytes go nowhere (a socket's cost is not the pipeline's).
fn send_discarding<P: Policy>(sender: &mut Sender<P>) {
    sender.send_one(&mut |bytes| {
        black_box(bytes);
    });
}

fn transcript<P: Policy>(policy: P, packets: usize) -> (Vec<Vec<u8>>, Sender<P>) {
    let mut sender = Sender::new(policy);
    let mut out = Vec::new();
    for _ in 0..packets {
        sender.send_one(&mut |bytes| out.push(bytes.to_vec()));
    }
    (out, sender)
}

/// The plugin-driven and the native pipeline under `op`; the plugin's host
/// follows `fec_repair_repeat` hints or not.
fn pipeline_cases(plugin: &Plugin, op: &'static str, follow_repeat: bool) -> [Case<'static>; 2] {
    let plugin_policy = {
        let plugin = plugin.clone();
        move || PluginPolicy::with_hints(&plugin, follow_repeat).expect("configure runs")
    };
    let check_policy = plugin_policy.clone();
    let by_plugin = Case::new(
        Label::new(PLUGIN, "P", op, PACKET_BYTES),
        Reuse::Many,
        move || Sender::new(plugin_policy().0),
        send_discarding,
        move || {
            let (policy, code) = check_policy();
            let expected = CodeChoice {
                scheme: fec_plugin_sdk::abi::Scheme::Rlc,
                source_symbols: WINDOW as u32,
                repair_symbols: 1,
            };
            if code != Some(expected) {
                return Err(format!("plugin chose {code:?}, not RLC window {WINDOW}"));
            }
            let packets = 4 * WINDOW;
            let calls_before = policy.instance.calls();
            let (by_plugin, sender) = transcript(policy, packets);
            let (by_native, _) = transcript(NativePolicy, packets);
            let repairs = sender.encoder.counters().repairs_sent as usize;
            if repairs != packets / SOURCES_PER_REPAIR as usize {
                return Err(format!("{repairs} repairs for {packets} packets"));
            }
            if by_plugin != by_native {
                return Err("plugin and native pipelines sent different packets".into());
            }
            // Who decided: one VM call per repair, or per window with the hint.
            let calls = sender.policy.instance.calls() - calls_before;
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
        || Sender::new(NativePolicy),
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
    let plugin_policy = {
        let plugin = plugin.clone();
        move || PluginPolicy::new(&plugin).expect("configure runs")
    };

    let invoke_check = plugin_policy.clone();
    let invoke = Case::new(
        Label::latency(PLUGIN, "P", "invoke"),
        Reuse::Many,
        move || plugin_policy().0,
        |policy| {
            black_box(policy.schedule_one_repair().expect("the plugin runs"));
        },
        move || match invoke_check().0.schedule_one_repair() {
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
