//! Every error the Reed-Solomon codec reports, with its context, and the
//! promise that arbitrary input yields `Ok` or an error, never a panic.

use fec_core::rs::ReedSolomon;
use fec_core::Error;
use quickcheck::{Arbitrary, Gen, QuickCheck};

#[test]
fn construction_errors() {
    assert_eq!(ReedSolomon::new(0, 3).unwrap_err(), Error::NoDataShards);
    assert_eq!(ReedSolomon::new(0, 0).unwrap_err(), Error::NoDataShards);
    assert_eq!(ReedSolomon::new(3, 0).unwrap_err(), Error::NoParityShards);
    assert_eq!(
        ReedSolomon::new(255, 2).unwrap_err(),
        Error::TooManyShards {
            data: 255,
            parity: 2
        }
    );
    assert_eq!(
        ReedSolomon::new(1, usize::MAX).unwrap_err(),
        Error::TooManyShards {
            data: 1,
            parity: usize::MAX
        }
    );
    assert_eq!(
        ReedSolomon::new(usize::MAX, 1).unwrap_err(),
        Error::TooManyShards {
            data: usize::MAX,
            parity: 1
        }
    );
    let largest = ReedSolomon::new(200, 56).unwrap();
    assert_eq!(largest.total_shard_count(), 256);
    assert_eq!(largest.data_shard_count(), 200);
    assert_eq!(largest.parity_shard_count(), 56);
}

#[test]
fn encode_and_verify_errors() {
    let rs = ReedSolomon::new(3, 2).unwrap();
    let mut four = vec![vec![1u8; 8]; 4];
    assert_eq!(
        rs.encode(&mut four),
        Err(Error::ShardCount {
            expected: 5,
            got: 4
        })
    );
    assert_eq!(
        rs.verify(&four),
        Err(Error::ShardCount {
            expected: 5,
            got: 4
        })
    );

    let mut ragged = vec![vec![1u8; 8]; 5];
    ragged[3] = vec![0; 9];
    assert_eq!(
        rs.encode(&mut ragged),
        Err(Error::ShardLength {
            index: 3,
            expected: 8,
            got: 9
        })
    );
    assert_eq!(
        rs.verify(&ragged),
        Err(Error::ShardLength {
            index: 3,
            expected: 8,
            got: 9
        })
    );

    let mut empty = vec![Vec::<u8>::new(); 5];
    assert_eq!(rs.encode(&mut empty), Err(Error::EmptyShard { index: 0 }));
    assert_eq!(rs.verify(&empty), Err(Error::EmptyShard { index: 0 }));
    let mut late_empty = vec![vec![1u8; 8]; 5];
    late_empty[4].clear();
    assert_eq!(
        rs.encode(&mut late_empty),
        Err(Error::EmptyShard { index: 4 })
    );
}

#[test]
fn encode_sep_errors() {
    let rs = ReedSolomon::new(3, 2).unwrap();
    let data = vec![vec![1u8; 8]; 3];
    let mut parity = vec![vec![0u8; 8]; 3];
    assert_eq!(
        rs.encode_sep(&data[..2], &mut parity[..2]),
        Err(Error::ShardCount {
            expected: 3,
            got: 2
        })
    );
    assert_eq!(
        rs.encode_sep(&data, &mut parity),
        Err(Error::ShardCount {
            expected: 2,
            got: 3
        })
    );
    parity[1] = vec![0; 7];
    assert_eq!(
        rs.encode_sep(&data, &mut parity[..2]),
        Err(Error::ShardLength {
            index: 4,
            expected: 8,
            got: 7
        })
    );
}

#[test]
fn reconstruct_errors() {
    let rs = ReedSolomon::new(3, 2).unwrap();
    let mut shards = vec![vec![7u8; 8]; 5];
    rs.encode(&mut shards).unwrap();
    let full: Vec<Option<Vec<u8>>> = shards.into_iter().map(Some).collect();

    for data_only in [false, true] {
        let run = |shards: &mut [Option<Vec<u8>>]| {
            if data_only {
                rs.reconstruct_data(shards)
            } else {
                rs.reconstruct(shards)
            }
        };
        let mut six = full.clone();
        six.push(None);
        assert_eq!(
            run(&mut six),
            Err(Error::ShardCount {
                expected: 5,
                got: 6
            })
        );

        let mut ragged = full.clone();
        ragged[0] = None;
        ragged[2] = Some(vec![0; 3]);
        assert_eq!(
            run(&mut ragged),
            Err(Error::ShardLength {
                index: 2,
                expected: 8,
                got: 3
            })
        );

        let mut empty = full.clone();
        empty[1] = None;
        empty[3] = Some(Vec::new());
        assert_eq!(run(&mut empty), Err(Error::EmptyShard { index: 3 }));

        let mut none = vec![None; 5];
        assert_eq!(
            run(&mut none),
            Err(Error::TooFewShardsPresent {
                present: 0,
                needed: 3
            })
        );
    }
}

#[test]
fn errors_explain_themselves() {
    let text = Error::ShardLength {
        index: 4,
        expected: 1280,
        got: 12,
    }
    .to_string();
    assert!(text.contains("shard 4") && text.contains("1280") && text.contains("12"));
    let text = Error::TooFewShardsPresent {
        present: 2,
        needed: 3,
    }
    .to_string();
    assert!(text.contains('2') && text.contains('3'));
    assert!(Error::TooManyShards {
        data: 250,
        parity: 10
    }
    .to_string()
    .contains("256"));
}

/// Arbitrary, usually malformed, reconstruct input for a small code.
#[derive(Clone, Debug)]
struct Mess {
    data: usize,
    parity: usize,
    shards: Vec<Option<Vec<u8>>>,
}

impl Arbitrary for Mess {
    fn arbitrary(g: &mut Gen) -> Mess {
        let data = usize::arbitrary(g) % 6;
        let parity = usize::arbitrary(g) % 4;
        let count = usize::arbitrary(g) % 10;
        let len = usize::arbitrary(g) % 4;
        let shards = (0..count)
            .map(|_| match u8::arbitrary(g) % 8 {
                0..=2 => None,
                3 => Some(Vec::arbitrary(g)),
                _ => Some((0..len).map(|_| u8::arbitrary(g)).collect()),
            })
            .collect();
        Mess {
            data,
            parity,
            shards,
        }
    }
}

#[test]
fn arbitrary_input_gets_an_error_or_keeps_every_promise() {
    fn property(mess: Mess) -> bool {
        let Ok(rs) = ReedSolomon::new(mess.data, mess.parity) else {
            return mess.data == 0 || mess.parity == 0;
        };
        let mut data_only = mess.shards.clone();
        let data_promise =
            match rs.reconstruct_data(&mut data_only) {
                // Present shards are kept, data is filled in, missing parity
                // stays missing.
                Ok(()) => data_only.iter().zip(&mess.shards).enumerate().all(
                    |(index, (after, before))| match before {
                        Some(_) => after == before,
                        None => after.is_some() == (index < mess.data),
                    },
                ),
                Err(_) => data_only == mess.shards,
            };
        let mut shards = mess.shards.clone();
        let kept_promise = match rs.reconstruct(&mut shards) {
            // Whatever was present is kept, and everything is filled in.
            Ok(()) => shards
                .iter()
                .zip(&mess.shards)
                .all(|(after, before)| after.is_some() && (before.is_none() || after == before)),
            // On error nothing changes.
            Err(_) => shards == mess.shards,
        };
        let mut plain: Vec<Vec<u8>> = mess.shards.iter().flatten().cloned().collect();
        let verified = rs.verify(&plain);
        let before = plain.clone();
        let encoded = rs.encode(&mut plain);
        // Both check the same shape; encode leaves the data alone, touches
        // nothing on error, and its parity then verifies.
        let encode_promise = match &encoded {
            Ok(()) => plain[..mess.data] == before[..mess.data] && rs.verify(&plain) == Ok(true),
            Err(_) => plain == before,
        };
        data_promise
            && kept_promise
            && encode_promise
            && verified.is_ok() == encoded.is_ok()
            && verified.err() == encoded.err()
    }
    QuickCheck::new()
        .tests(2000)
        .quickcheck(property as fn(Mess) -> bool);
}
