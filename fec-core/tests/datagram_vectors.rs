//! Test vectors of `fec-core/FEC_DATAGRAMS.md`: the datagrams a keyed layer
//! makes for a fixed input, byte for byte (`tests/vectors/fec_datagrams.txt`),
//! and the receiving layer's verdict on each. The tags of the vector file are
//! also checked against the aegis crate directly (not through the layer),
//! and that crate against the AEGISMAC-128X2 test vector of
//! draft-irtf-cfrg-aegis-aead.

use std::time::{Duration, Instant};

use aegis::aegis128x2::Aegis128X2Mac;
use bytes::Bytes;
use fec_core::layer::auth::Keys;
use fec_core::layer::policy::FixedRate;
use fec_core::layer::{Layer, LayerConfig};

const VECTORS: &str = include_str!("vectors/fec_datagrams.txt");

fn keys() -> (Keys, Keys) {
    Keys::pair(
        std::array::from_fn(|i| i as u8),
        std::array::from_fn(|i| 0x20 + i as u8),
    )
}

fn config() -> LayerConfig {
    let mut config = LayerConfig::default();
    config.set_symbol_size(19).set_idle_repair(None);
    config
}

/// The datagrams of the vector file, made afresh: (name, bytes).
fn make() -> Vec<(String, Vec<u8>)> {
    let now = Instant::now();
    let (tx, rx) = keys();
    let policy = FixedRate {
        window: 4,
        every: 2,
        repairs: 1,
    };
    let mut sender = Layer::new(config(), Some(Box::new(policy)), now);
    sender.set_keys(&tx);
    let mut receiver = Layer::receive_only(config());
    receiver.set_keys(&rx);
    let mut out = Vec::new();
    let mut named = Vec::new();
    sender.send(now, Bytes::from_static(b"\x40first adu"), &mut out);
    sender.send(now, Bytes::from_static(b"\x41second"), &mut out);
    for (name, d) in ["source-esi-0", "source-esi-1", "repair-esi-0-nss-2"]
        .iter()
        .zip(&out)
    {
        named.push((name.to_string(), d.to_vec()));
    }
    let (mut up, mut back) = (Vec::new(), Vec::new());
    // The first source is lost: the repair rebuilds it.
    for d in out.drain(1..) {
        receiver.receive(now, d, &mut up, &mut back);
    }
    assert_eq!(
        up,
        vec![
            Bytes::from_static(b"\x41second"),
            Bytes::from_static(b"\x40first adu")
        ]
    );
    receiver.handle_timeout(now + Duration::from_millis(50), &mut back);
    named.push(("feedback".into(), back[0].to_vec()));
    // FEC off: a plain ADU whose first byte lacks the plain bit.
    sender.set_policy(None, now);
    out.clear();
    sender.send(now, Bytes::from_static(b"\x01raw"), &mut out);
    named.push(("prefixed-plain".into(), out[0].to_vec()));
    named
}

#[test]
fn a_keyed_layer_makes_the_documented_datagrams() {
    let made: Vec<String> = make()
        .into_iter()
        .map(|(name, bytes)| format!("{name} {}", hex(&bytes)))
        .collect();
    let expected: Vec<&str> = VECTORS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(made, expected, "the vector file and the layer disagree");
}

#[test]
fn a_keyed_receiver_accepts_each_vector_once_and_nothing_altered() {
    let (tx, rx) = keys();
    for line in VECTORS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (name, hex_bytes) = line.split_once(' ').unwrap();
        let bytes = unhex(hex_bytes);
        let now = Instant::now();
        let mut receiver = Layer::receive_only(config());
        // The report goes the other way, under the other key.
        receiver.set_keys(if name == "feedback" { &tx } else { &rx });
        let (mut up, mut back) = (Vec::new(), Vec::new());
        receiver.receive(now, Bytes::from(bytes.clone()), &mut up, &mut back);
        assert_eq!(receiver.stats().unauthenticated, 0, "{name}");
        let mut altered = bytes.clone();
        let last = altered.len() - 1;
        altered[last] ^= 0x80;
        receiver.receive(now, Bytes::from(altered), &mut up, &mut back);
        assert_eq!(receiver.stats().unauthenticated, 1, "{name}: altered tag");
        receiver.receive(now, Bytes::from(bytes), &mut up, &mut back);
        let replay_dropped = name.starts_with("repair") || name == "feedback";
        assert_eq!(
            receiver.stats().replayed,
            u64::from(replay_dropped),
            "{name}"
        );
    }
}

#[test]
fn the_mac_is_aegismac_128x2_of_the_draft() {
    // draft-irtf-cfrg-aegis-aead, "AEGISMAC-128X2 Test Vector", 128-bit tag.
    let key: [u8; 16] = unhex("10010000000000000000000000000000")
        .try_into()
        .unwrap();
    let nonce: [u8; 16] = unhex("10000200000000000000000000000000")
        .try_into()
        .unwrap();
    let data: Vec<u8> = (0..0x23).collect();
    let mut mac = Aegis128X2Mac::<16>::new_with_nonce(&key, &nonce);
    mac.update(&data);
    assert_eq!(hex(&mac.finalize()), "6873ee34e6b5c59143b6d35c5e4f2c6e");
}

#[test]
fn each_vector_ends_with_its_number_and_tag() {
    // FEC_DATAGRAMS.md section 6.2, computed here without the layer: the
    // tag is AEGISMAC-128X2 of everything before it, keyed with the first 16
    // bytes of the sender's key, nonce all zeros.
    let (tx, rx) = keys();
    let expected_numbers = [0u32, 1, 2, 0, 3];
    let lines: Vec<&str> = VECTORS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), expected_numbers.len());
    for (line, expected_number) in lines.into_iter().zip(expected_numbers) {
        let (name, hex_bytes) = line.split_once(' ').unwrap();
        let bytes = unhex(hex_bytes);
        let (signed, tag) = bytes.split_at(bytes.len() - 16);
        let number = u32::from_be_bytes(signed[signed.len() - 4..].try_into().unwrap());
        assert_eq!(number, expected_number, "{name}");
        // The report goes the other way, under the other key.
        let send_key = if name == "feedback" { rx.send } else { tx.send };
        let mac_key: [u8; 16] = send_key[..16].try_into().unwrap();
        let mut mac = Aegis128X2Mac::<16>::new_with_nonce(&mac_key, &[0; 16]);
        mac.update(signed);
        assert_eq!(hex(&mac.finalize()), hex(tag), "{name}");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
