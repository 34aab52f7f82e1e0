//! Plain references shared by the RLC tests: the RFC 8681 repair formula
//! byte by byte, and a naive Gauss-Jordan solver over a whole trace.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use fec_core::gf256;
use fec_core::pipeline::loss::{Bernoulli, GilbertElliott, LossModel};
use fec_core::rlc::{coding_coefficients, Field, RepairPayloadId};

/// RFC 8681: repair = sum over the window, in ESI order, of
/// coefficient[i] * source[i], computed one byte at a time.
pub fn reference_repair(field: Field, repair_key: u16, dt: u8, window: &[&[u8]]) -> Vec<u8> {
    let coefficients = coding_coefficients(field, repair_key, dt, window.len()).unwrap();
    let mut out = vec![0u8; window[0].len()];
    for (c, source) in coefficients.iter().zip(window) {
        for (o, s) in out.iter_mut().zip(source.iter()) {
            *o ^= gf256::mul(*c, *s);
        }
    }
    out
}

/// Every equation and every source a receiver got, by stream index (not
/// wrapped ESI), solved all at once.
#[derive(Default)]
pub struct ReferenceSystem {
    pub known: BTreeMap<u64, Vec<u8>>,
    /// (first index, coefficients, data)
    pub equations: Vec<(u64, Vec<u8>, Vec<u8>)>,
}

impl ReferenceSystem {
    pub fn add_source(&mut self, index: u64, data: &[u8]) {
        self.known.insert(index, data.to_vec());
    }

    pub fn add_repair(&mut self, field: Field, first: u64, id: &RepairPayloadId, data: &[u8]) {
        let coefficients = coding_coefficients(field, id.repair_key, id.dt, id.nss.into()).unwrap();
        self.equations.push((first, coefficients, data.to_vec()));
    }

    /// The unknown sources the equations determine exactly, with their data.
    pub fn solve(&self) -> BTreeMap<u64, Vec<u8>> {
        let mut unknowns = BTreeSet::new();
        for (first, coefficients, _) in &self.equations {
            for (i, c) in coefficients.iter().enumerate() {
                let index = first + i as u64;
                if *c != 0 && !self.known.contains_key(&index) {
                    unknowns.insert(index);
                }
            }
        }
        let columns: Vec<u64> = unknowns.into_iter().collect();
        let column_of: BTreeMap<u64, usize> =
            columns.iter().enumerate().map(|(i, &x)| (x, i)).collect();
        let n = columns.len();
        let mut rows: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for (first, coefficients, data) in &self.equations {
            let mut row = vec![0u8; n];
            let mut rhs = data.clone();
            for (i, &c) in coefficients.iter().enumerate() {
                if c == 0 {
                    continue;
                }
                let index = first + i as u64;
                match self.known.get(&index) {
                    Some(source) => {
                        for (r, s) in rhs.iter_mut().zip(source) {
                            *r ^= gf256::mul(c, *s);
                        }
                    }
                    None => row[column_of[&index]] = c,
                }
            }
            rows.push((row, rhs));
        }
        // Gauss-Jordan to reduced row echelon form.
        let mut rank = 0;
        for col in 0..n {
            let Some(p) = (rank..rows.len()).find(|&r| rows[r].0[col] != 0) else {
                continue;
            };
            rows.swap(rank, p);
            let inv = gf256::inv(rows[rank].0[col]).unwrap();
            let (coefs, rhs) = &mut rows[rank];
            for x in coefs.iter_mut() {
                *x = gf256::mul(inv, *x);
            }
            for x in rhs.iter_mut() {
                *x = gf256::mul(inv, *x);
            }
            let pivot = rows[rank].clone();
            for (r, row) in rows.iter_mut().enumerate() {
                let f = row.0[col];
                if r == rank || f == 0 {
                    continue;
                }
                for (x, p) in row.0.iter_mut().zip(&pivot.0) {
                    *x ^= gf256::mul(f, *p);
                }
                for (x, p) in row.1.iter_mut().zip(&pivot.1) {
                    *x ^= gf256::mul(f, *p);
                }
            }
            rank += 1;
        }
        let mut solved = BTreeMap::new();
        for (coefs, rhs) in rows.iter().take(rank) {
            let mut non_zero = coefs.iter().enumerate().filter(|(_, c)| **c != 0);
            if let (Some((col, _)), None) = (non_zero.next(), non_zero.next()) {
                solved.insert(columns[col], rhs.clone());
            }
        }
        solved
    }
}

/// Loss processes over a seeded RNG.
pub enum Loss {
    /// Each packet lost independently with this probability.
    Bernoulli(f64),
    /// Two-state burst model: p = P(good -> bad), r = P(bad -> good); loss
    /// probability 1 - k in good, 1 - h in bad.
    GilbertElliott { p: f64, r: f64, k: f64, h: f64 },
}

impl Loss {
    /// This process as the crate's seeded model (`fec_core::pipeline::loss`),
    /// the one the pipeline tests and the plugin harness draw from.
    pub fn model(&self, seed: u64) -> Box<dyn LossModel> {
        match *self {
            Loss::Bernoulli(p) => Box::new(Bernoulli::new(p, seed)),
            Loss::GilbertElliott { p, r, k, h } => {
                Box::new(GilbertElliott::new(p, r, 1.0 - k, 1.0 - h, seed))
            }
        }
    }
}
