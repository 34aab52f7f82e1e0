//! Decode plans: for one erasure pattern, the single fused kernel that
//! rebuilds every missing shard from exactly `data` surviving ones, and a
//! bounded cache of them.
//!
//! With lost data rows `L`, surviving data rows `A` and `e = |L|` surviving
//! parity rows `P` chosen, the parity equations restricted to `P` read
//! `G[P][L] d_L + G[P][A] d_A = p_P` (`G` is the parity part of the encoding
//! matrix). So `d_L = G[P][L]^-1 (p_P + G[P][A] d_A)`: only an `e x e` matrix
//! is inverted, not the `data x data` one, and the inputs are `[d_A, p_P]`.
//! A missing parity row `q` is `G[q][A] d_A + G[q][L] d_L`; substituting
//! `d_L` makes it a linear combination of the same inputs, so lost data and
//! lost parity come out of one pass over the surviving shards.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::matrix::Matrix;
use crate::gf256::{Engine, MatrixKernel};

/// What a shard is to a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Read: one of the `data` surviving shards the kernel combines.
    Input,
    /// Written: a missing shard the kernel rebuilds.
    Output,
    /// Neither: a surplus parity shard, or missing parity in data-only mode.
    Unused,
}

/// Identifies an erasure pattern: which shards are present, and whether
/// missing parity is to be rebuilt too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PlanKey {
    present: [u64; 4],
    data_only: bool,
}

impl PlanKey {
    pub(crate) fn new(present: &[bool], data_only: bool) -> PlanKey {
        let mut bits = [0u64; 4];
        for (i, _) in present.iter().enumerate().filter(|(_, p)| **p) {
            bits[i / 64] |= 1 << (i % 64);
        }
        PlanKey {
            present: bits,
            data_only,
        }
    }
}

/// The prepared kernel of one erasure pattern. Inputs and outputs are the
/// shards with the matching [`Role`], in ascending shard index.
#[derive(Debug)]
pub(crate) struct DecodePlan {
    pub(crate) roles: Vec<Role>,
    pub(crate) kernel: MatrixKernel,
}

impl DecodePlan {
    /// Builds the plan. The caller guarantees that at least `data` shards are
    /// present and that something is missing; `parity` is the
    /// `parity x data` part of the encoding matrix.
    pub(crate) fn build(
        parity: &Matrix,
        present: &[bool],
        data_only: bool,
        engine: Engine,
    ) -> DecodePlan {
        let data_count = parity.cols();
        let (data_present, parity_present) = present.split_at(data_count);
        let lost: Vec<usize> = (0..data_count).filter(|&i| !data_present[i]).collect();
        let kept: Vec<usize> = (0..data_count).filter(|&i| data_present[i]).collect();
        let chosen: Vec<usize> = (0..parity.rows())
            .filter(|&j| parity_present[j])
            .take(lost.len())
            .collect();
        let rebuilt_parity: Vec<usize> = if data_only {
            Vec::new()
        } else {
            (0..parity.rows()).filter(|&j| !parity_present[j]).collect()
        };
        debug_assert_eq!(chosen.len(), lost.len(), "caller checked present >= data");

        // Rows of the final kernel: lost data first, then lost parity, each
        // over the inputs [kept data..., chosen parity...].
        let e = lost.len();
        let mut coefficients = Matrix::zero(e + rebuilt_parity.len(), data_count);
        let mut recover = Matrix::zero(e, data_count);
        if e > 0 {
            let square = Matrix::from_fn(e, e, |r, c| parity.get(chosen[r], lost[c]));
            // Any `data` rows of the systematic encoding matrix are independent
            // (reed-solomon-erasure's construction keeps the Vandermonde MDS
            // property), and `square` is such a choice with the identity rows
            // of `kept` removed; so it is invertible.
            let inverse = square
                .inverse(engine)
                .expect("MDS: every square parity submatrix is invertible");
            let from_kept = Matrix::from_fn(e, kept.len(), |r, c| parity.get(chosen[r], kept[c]));
            let kept_part = inverse.multiply(&from_kept, engine);
            for r in 0..e {
                let row = recover.row_mut(r);
                row[..kept.len()].copy_from_slice(kept_part.row(r));
                row[kept.len()..].copy_from_slice(inverse.row(r));
            }
            for r in 0..e {
                coefficients.row_mut(r).copy_from_slice(recover.row(r));
            }
        }
        for (out, &q) in rebuilt_parity.iter().enumerate() {
            let row = coefficients.row_mut(e + out);
            for (slot, &d) in kept.iter().enumerate() {
                row[slot] = parity.get(q, d);
            }
            for (j, &d) in lost.iter().enumerate() {
                let factor = parity.get(q, d);
                if factor != 0 {
                    engine.mul_add_slice(factor, recover.row(j), row);
                }
            }
        }

        let mut roles = vec![Role::Unused; present.len()];
        for &i in &kept {
            roles[i] = Role::Input;
        }
        for &i in &lost {
            roles[i] = Role::Output;
        }
        for &j in &chosen {
            roles[data_count + j] = Role::Input;
        }
        for &j in &rebuilt_parity {
            roles[data_count + j] = Role::Output;
        }
        let kernel = engine.prepare(coefficients.entries(), coefficients.rows(), data_count);
        DecodePlan { roles, kernel }
    }

    fn coefficient_count(&self) -> usize {
        self.kernel.rows() * self.kernel.cols()
    }
}

/// Most plans kept at once.
pub(crate) const MAX_PLANS: usize = 256;
/// Most coefficients kept over all plans. A backend may expand each
/// coefficient into tens of bytes of tables, so the plan count alone would let
/// a 128+128 code hold hundreds of megabytes; this bounds it to a few dozen.
pub(crate) const MAX_COEFFICIENTS: usize = 1 << 20;

/// Plans by erasure pattern, oldest evicted first.
#[derive(Debug, Default)]
pub(crate) struct PlanCache {
    plans: HashMap<PlanKey, Arc<DecodePlan>>,
    order: VecDeque<PlanKey>,
    coefficients: usize,
}

impl PlanCache {
    pub(crate) fn get(&self, key: &PlanKey) -> Option<Arc<DecodePlan>> {
        self.plans.get(key).cloned()
    }

    pub(crate) fn insert(&mut self, key: PlanKey, plan: Arc<DecodePlan>) {
        if self.plans.contains_key(&key) {
            return;
        }
        let size = plan.coefficient_count();
        while self.plans.len() >= MAX_PLANS || self.coefficients + size > MAX_COEFFICIENTS {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(evicted) = self.plans.remove(&oldest) {
                self.coefficients -= evicted.coefficient_count();
            }
        }
        self.coefficients += size;
        self.order.push_back(key);
        self.plans.insert(key, plan);
    }

    pub(crate) fn len(&self) -> usize {
        self.plans.len()
    }
}
