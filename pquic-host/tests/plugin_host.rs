//! The same plugin through the SDK harness and through the QUIC host's
//! layers, on the same seeded loss trace and clock: it sees the same
//! contexts and `fec_stat` values and takes the same decisions, call for
//! call, because both run the one layer and the one plugin host.

use std::time::Instant;

use bytes::Bytes;
use fec_plugin_sdk::abi::Operation;
use fec_plugin_sdk::harness::{self, HarnessConfig, LossTrace, PACKET_INTERVAL, RTT};
use fec_plugin_sdk::host::Call;
use fec_plugin_sdk::package::TrustStore;
use fec_plugin_sdk::runtime::{HostOffer, Plugin};
use pquic_host::fec::{plugin_policy, QuicLayer, RepairedLosses, FEEDBACK_INTERVAL, SYMBOL_SIZE};
use pquic_host::layer::FecLayer;

/// QUIC's symbol size and report interval, in the harness's terms.
fn quic_harness_config(packets: usize, loss: LossTrace) -> HarnessConfig {
    HarnessConfig {
        packets,
        packet_len: SYMBOL_SIZE - fec_core::pipeline::wire::ADU_INFO_LEN,
        loss,
        feedback_every: (FEEDBACK_INTERVAL.as_micros() / PACKET_INTERVAL.as_micros()) as usize,
        record_calls: true,
    }
}

/// The harness's schedule, through two QUIC host layers (the socket
/// adapter's interface); returns the calls of each end's plugin instance.
fn through_quic_layers(plugin: &Plugin, config: &HarnessConfig) -> (Vec<Call>, Vec<Call>) {
    let start = Instant::now();
    let layer = |start| {
        let mut policy = plugin_policy(plugin, start);
        policy.record_calls();
        let observer = policy.observer();
        let mut layer = QuicLayer::new(Some(Box::new(policy)), RepairedLosses::default(), start);
        layer.set_rtt(RTT);
        (layer, observer)
    };
    let (mut sender, sender_calls) = layer(start);
    let (mut receiver, receiver_calls) = layer(start);
    let mut lost = config.loss.clone().into_oracle();
    let (mut wire, mut up, mut back) = (Vec::new(), Vec::new(), Vec::new());
    let mut transmitted = 0;
    let report_back =
        |now, receiver: &mut QuicLayer, sender: &mut QuicLayer, back: &mut Vec<Bytes>| {
            receiver.handle_timeout(now, back);
            for d in back.drain(..) {
                sender.on_incoming(now, d, &mut Vec::new(), &mut Vec::new());
            }
        };
    let mut now = start;
    for seq in 0..config.packets {
        now = start + PACKET_INTERVAL * seq as u32;
        report_back(now, &mut receiver, &mut sender, &mut back);
        sender.handle_timeout(now, &mut wire);
        sender.on_outgoing(now, &harness::adu(seq, config.packet_len), &mut wire);
        for d in wire.drain(..) {
            let dropped = lost(transmitted);
            transmitted += 1;
            if !dropped {
                receiver.on_incoming(now, d, &mut up, &mut back);
            }
        }
        for d in back.drain(..) {
            sender.on_incoming(now, d, &mut Vec::new(), &mut Vec::new());
        }
    }
    if let Some(due) = receiver.poll_timeout() {
        report_back(due.max(now), &mut receiver, &mut sender, &mut back);
    }
    let calls = |observer: std::sync::Arc<std::sync::Mutex<fec_plugin_sdk::host::Observed>>| {
        observer.lock().unwrap().calls.clone().unwrap()
    };
    (calls(sender_calls), calls(receiver_calls))
}

fn check(plugin: &Plugin, loss: LossTrace, must_see: &[Operation]) {
    let config = quic_harness_config(3000, loss.clone());
    let report = harness::run(plugin, &config).unwrap();
    assert_eq!(report.fault, None);
    assert!(report.recovered > 0, "{report}");
    let (harness_sender, harness_receiver) = report.calls.clone().unwrap();
    let (quic_sender, quic_receiver) = through_quic_layers(plugin, &config);
    for operation in must_see {
        let seen = harness_sender
            .iter()
            .chain(&harness_receiver)
            .any(|c| c.operation == *operation);
        assert!(seen, "{}: no {operation:?} call", plugin.name());
    }
    assert!(
        harness_sender.iter().any(|c| c.stats.repair_sent > 0),
        "the stats view is filled"
    );
    assert_eq!(harness_sender.len(), quic_sender.len(), "{}", plugin.name());
    for (i, (h, q)) in harness_sender.iter().zip(&quic_sender).enumerate() {
        assert_eq!(h, q, "{}: sender call {i} ({loss:?})", plugin.name());
    }
    assert_eq!(
        harness_receiver,
        quic_receiver,
        "{}: receiver",
        plugin.name()
    );
}

fn shipped(package: &[u8]) -> Plugin {
    fec_plugin_sdk::load_package(package, &TrustStore::new(), 0, &HostOffer::all()).unwrap()
}

#[test]
fn adaptive_plugin_decides_the_same_in_the_harness_and_over_quic() {
    check(
        &shipped(fec_plugins::ADAPTIVE.package),
        LossTrace::GilbertElliott {
            rate: 0.05,
            mean_burst: 3.0,
            seed: 7,
        },
        &[
            Operation::Configure,
            Operation::ScheduleRepair,
            Operation::OnFeedback,
            Operation::OnLoss,
        ],
    );
}

#[test]
fn realtime_plugin_decides_the_same_in_the_harness_and_over_quic() {
    let validator = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let bytes = pquic_host::plugin::realtime_package(&validator).unwrap();
    check(
        &shipped(&bytes),
        LossTrace::Bernoulli {
            rate: 0.05,
            seed: 3,
        },
        &[
            Operation::Configure,
            Operation::OnSource,
            Operation::ScheduleRepair,
            Operation::OnFeedback,
        ],
    );
}
