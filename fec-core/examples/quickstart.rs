//! A library round trip: protect packets with the RFC 8681 sliding-window
//! code through the pipeline, lose some, and get them back from repairs.
//!
//! `cargo run --release -p fec-core --example quickstart`

use bytes::Bytes;
use fec_core::pipeline::{Config, Decoder, Encoder, Scheme};
use fec_core::rlc::Field;

fn main() -> Result<(), fec_core::Error> {
    let config = Config::new(Scheme::Rlc {
        field: Field::Gf256,
        window: 16,
        dt: 15,
    });
    let mut encoder = Encoder::new(&config)?;
    let mut decoder = Decoder::new(&config)?;

    let sent: Vec<Bytes> = (0..12u8)
        .map(|i| Bytes::from(vec![i; 100 + usize::from(i) * 10]))
        .collect();
    let mut delivered = 0;
    for (i, adu) in sent.iter().enumerate() {
        let packet = encoder.protect(0, adu.clone())?.to_bytes();
        // Lose packets 3 and 7 on the way.
        if i != 3 && i != 7 && decoder.receive(packet)?.is_some() {
            delivered += 1;
        }
    }
    // Two repair symbols over the window recover both losses.
    for repair in encoder.repair(2)? {
        decoder.receive(repair)?;
    }
    let mut recovered = 0;
    while let Some(adu) = decoder.poll_recovered() {
        assert!(sent.contains(&adu.data), "recovered bytes were sent");
        recovered += 1;
    }
    println!(
        "GF(2^8) backend {}: {} packets sent, {delivered} delivered, {recovered} recovered from 2 repairs",
        fec_core::gf256::engine().backend(),
        sent.len()
    );
    assert_eq!(delivered + recovered, sent.len());
    Ok(())
}
