//! Criterion benches of the codecs: Reed-Solomon encode and decode on configs A, B
//! and C (fec-core, with reed-solomon-erasure as the reference), and RFC 8681 RLC
//! repair generation and decode on config D (fec-core).
//!
//! Inputs and the meaning of each operation are those of the compare binary (see
//! `fec_benches::rs_cases` and `fec_benches::window_cases`): a decode starts from a
//! codec with nothing cached and an erasure pattern it has not seen.
//!
//! ```text
//! cargo bench -p fec-benches --bench codecs
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion, Throughput};
use fec_benches::rs_cases::{RsInputs, ShardCodec};
use fec_benches::window_cases::{
    filled_our_encoder, new_our_decoder, our_decode, our_repair_id, RlcInputs,
};
use fec_benches::workload::RS_CONFIGS;

fn short() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20)
}

fn shard_codec<C: ShardCodec>(group: &mut BenchmarkGroup<'_, WallTime>, inputs: &RsInputs) {
    let config = inputs.config;
    let codec = C::create(config.data, config.parity);
    let mut shards = inputs.full_block();
    group.bench_function(format!("{}/encode", C::LIB), |bencher| {
        bencher.iter(|| codec.encode_shards(black_box(&mut shards)))
    });
    let mut patterns = inputs.patterns.clone();
    let batch = if config.data_bytes() > 256 * 1024 {
        BatchSize::LargeInput
    } else {
        BatchSize::SmallInput
    };
    group.bench_function(format!("{}/decode", C::LIB), |bencher| {
        bencher.iter_batched(
            || (codec.fresh(), inputs.erased_block(patterns.next_pattern())),
            |(codec, mut shards)| {
                codec.reconstruct_data_shards(&mut shards);
                // Returned so that freeing the shards is not timed.
                (codec, shards)
            },
            batch,
        )
    });
}

fn reed_solomon(criterion: &mut Criterion) {
    for config in RS_CONFIGS {
        let inputs = RsInputs::new(config);
        let mut group = criterion.benchmark_group(format!("rs/{}", config.name));
        group.throughput(Throughput::Bytes(config.data_bytes() as u64));
        shard_codec::<fec_core::rs::ReedSolomon>(&mut group, &inputs);
        shard_codec::<reed_solomon_erasure::galois_8::ReedSolomon>(&mut group, &inputs);
        group.finish();
    }
}

fn rlc(criterion: &mut Criterion) {
    let inputs = RlcInputs::new();
    let mut group = criterion.benchmark_group("rlc/D");
    group.throughput(Throughput::Bytes(inputs.window_bytes() as u64));
    let mut encoder = filled_our_encoder(&inputs.sources);
    let mut symbol = vec![0u8; inputs.sources[0].len()];
    let mut repair_key = 0u16;
    group.bench_function("fec-core/encode", |bencher| {
        bencher.iter(|| {
            repair_key = repair_key.wrapping_add(1);
            encoder
                .repair_into(repair_key, 15, &mut symbol)
                .expect("repair over a full window")
        })
    });
    let repair_ids: Vec<_> = inputs
        .repairs
        .iter()
        .map(|(id, _)| our_repair_id(id))
        .collect();
    let mut patterns = inputs.patterns.clone();
    group.bench_function("fec-core/decode", |bencher| {
        bencher.iter_batched(
            || (new_our_decoder(), patterns.next_pattern().to_vec()),
            |(mut decoder, lost)| {
                our_decode(
                    &mut decoder,
                    &inputs,
                    &repair_ids,
                    &lost,
                    &mut |esi, data| {
                        black_box((esi, data));
                    },
                )
                .expect("consistent symbols");
                decoder
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

// Spelled out instead of `criterion_group!`, whose generated function carries no
// doc comment and so trips the workspace's `missing_docs`.
fn main() {
    let mut criterion = short().configure_from_args();
    reed_solomon(&mut criterion);
    rlc(&mut criterion);
    criterion.final_summary();
}
