//! Decode plans: for one erasure pattern, the single fused kernel that
//! rebuilds every missing shard, data and parity alike, from exactly `data`
//! surviving ones, and a bounded cache of them.
//!
//! The surviving shards read are all present data shards plus the first
//! present parity shards, one per lost data shard; the coefficients come in
//! closed form from [`Interpolator`], so building a plan costs about as much
//! as writing its coefficients down.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::interpolation::Interpolator;
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
    /// Builds the plan. The caller guarantees that at least `data_count`
    /// shards are present and that something is to be rebuilt.
    pub(crate) fn build(
        interpolator: &Interpolator,
        data_count: usize,
        present: &[bool],
        data_only: bool,
        engine: Engine,
    ) -> DecodePlan {
        let lost_data = present[..data_count].iter().filter(|&&p| !p).count();
        let mut roles = vec![Role::Unused; present.len()];
        let mut inputs = Vec::with_capacity(data_count);
        let mut outputs = Vec::new();
        let mut parity_taken = 0;
        for (index, &here) in present.iter().enumerate() {
            let is_data = index < data_count;
            let role = match (here, is_data) {
                (true, true) => Role::Input,
                (true, false) if parity_taken < lost_data => {
                    parity_taken += 1;
                    Role::Input
                }
                (true, false) => Role::Unused,
                (false, true) => Role::Output,
                (false, false) if data_only => Role::Unused,
                (false, false) => Role::Output,
            };
            match role {
                Role::Input => inputs.push(index),
                Role::Output => outputs.push(index),
                Role::Unused => {}
            }
            roles[index] = role;
        }
        debug_assert_eq!(inputs.len(), data_count, "caller checked present >= data");
        let coefficients = interpolator.coefficients(&inputs, &outputs);
        let kernel = engine.prepare(&coefficients, outputs.len(), inputs.len());
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
