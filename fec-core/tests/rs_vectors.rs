//! Known answers from reed-solomon-erasure 6.0.0: for every data count `k`
//! in 1..=255, a digest of the parity it computes for the `k + (256 - k)`
//! code when data shard `i` is the unit vector `e_i` (so parity shard `r`
//! is row `r` of its encoding matrix). A code with fewer parity shards uses a
//! prefix of these rows, so this pins the parity of every `data + parity <=
//! 256` shape. Regenerate with
//! `cargo test -p fec-core --test rs_vectors -- --ignored regenerate`.

use fec_core::rs::ReedSolomon;

const VECTORS: &str = include_str!("vectors/rs/unit_parity_fnv1a64.txt");

/// 64-bit FNV-1a over the parity shards in order.
fn digest(parity: &[Vec<u8>]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parity.iter().flatten() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Data shard `i` of length `k` is `e_i`; the parity shards follow, zeroed.
fn unit_shards(k: usize) -> Vec<Vec<u8>> {
    let mut shards: Vec<Vec<u8>> = (0..k)
        .map(|i| {
            let mut shard = vec![0u8; k];
            shard[i] = 1;
            shard
        })
        .collect();
    shards.extend((0..256 - k).map(|_| vec![0u8; k]));
    shards
}

fn expected() -> Vec<(usize, u64)> {
    VECTORS
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (k, hash) = line.split_once(' ').expect("`k hash` per line");
            (
                k.parse().expect("decimal k"),
                u64::from_str_radix(hash.trim(), 16).expect("hex digest"),
            )
        })
        .collect()
}

#[test]
fn parity_of_every_data_count_matches_the_recorded_reference() {
    let expected = expected();
    assert_eq!(expected.len(), 255, "one line per data count 1..=255");
    for (k, hash) in expected {
        let rs = ReedSolomon::new(k, 256 - k).unwrap();
        let mut shards = unit_shards(k);
        rs.encode(&mut shards).unwrap();
        assert_eq!(digest(&shards[k..]), hash, "parity matrix for k = {k}");
        // The accessor exposes the same rows.
        let rows: Vec<Vec<u8>> = rs
            .parity_coefficients()
            .chunks(k)
            .map(<[u8]>::to_vec)
            .collect();
        assert_eq!(rows, shards[k..], "parity_coefficients for k = {k}");
    }
}

#[test]
#[ignore = "rewrites the vector file from reed-solomon-erasure; slow unoptimised"]
fn regenerate() {
    use reed_solomon_erasure::galois_8::ReedSolomon as Reference;
    let mut out = String::from(
        "# k fnv1a64(parity of reed-solomon-erasure 6.0.0 for k + (256 - k), data shard i = e_i)\n",
    );
    for k in 1..=255 {
        let mut shards = unit_shards(k);
        Reference::new(k, 256 - k)
            .unwrap()
            .encode(&mut shards)
            .unwrap();
        out.push_str(&format!("{k} {:016x}\n", digest(&shards[k..])));
    }
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/rs/unit_parity_fnv1a64.txt"
    );
    std::fs::write(path, out).unwrap();
}
