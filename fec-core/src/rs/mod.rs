//! Systematic Reed-Solomon erasure coding over GF(2^8), parity byte-identical
//! to reed-solomon-erasure 6 (`galois_8`).
//!
//! A code with `data` data shards and `parity` parity shards (`data + parity
//! <= 256`) rebuilds all shards from any `data` of them. Shards are passed
//! data first, then parity, all of one length. The encoding matrix is the one
//! reed-solomon-erasure builds (a `total x data` Vandermonde matrix with rows
//! `r^0, r^1, ..`, times the inverse of its top square), so shards produced
//! by either library can be verified and reconstructed by the other.
//!
//! Decoding runs on one fused [`MatrixKernel`] pass over the shards. The code
//! is polynomial evaluation at the shard indices, so a decode matrix is
//! written down in closed form (Lagrange interpolation) in time linear in its
//! size, with no matrix inversion; the prepared kernel of each erasure
//! pattern is cached.
//!
//! Encoding uses the same kernel, or, where it does less work (for example
//! 32 + 8 or 200 + 50 shards, on the SIMD backends), an additive FFT in the
//! Lin-Chung-Han polynomial basis: the data points `0..k` split into aligned
//! power-of-two blocks, each a GF(2)-subspace or a coset of one, so the
//! interpolating polynomial comes from transforms of `O(b log b)` products
//! per block instead of `k` per parity shard. The parity is the same bytes
//! either way.
//!
//! ```
//! use fec_core::rs::ReedSolomon;
//!
//! let rs = ReedSolomon::new(3, 2)?;
//! let mut shards = vec![
//!     b"hello ".to_vec(),
//!     b"reed- ".to_vec(),
//!     b"solomn".to_vec(),
//!     vec![0; 6],
//!     vec![0; 6],
//! ];
//! rs.encode(&mut shards)?;
//! assert!(rs.verify(&shards)?);
//!
//! // Lose any two shards...
//! let mut received: Vec<Option<Vec<u8>>> = shards.iter().cloned().map(Some).collect();
//! received[0] = None;
//! received[4] = None;
//! // ...and get them back.
//! rs.reconstruct(&mut received)?;
//! let rebuilt: Vec<Vec<u8>> = received.into_iter().flatten().collect();
//! assert_eq!(rebuilt, shards);
//! # Ok::<(), fec_core::Error>(())
//! ```
//!
//! [`MatrixKernel`]: crate::gf256::MatrixKernel

#![forbid(unsafe_code)]

mod interpolation;
pub(crate) mod matrix;
mod plan;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::gf256::{self, Engine, MatrixKernel, ParityKernel};
use crate::Error;
use interpolation::Interpolator;
use plan::{DecodePlan, PlanCache, PlanKey, Role};

/// The most shards (data + parity) a code over GF(2^8) can have.
pub const MAX_SHARDS: usize = 256;

/// A Reed-Solomon code with fixed data and parity shard counts.
///
/// Cheap to share: all methods take `&self`, and the type is `Send + Sync`;
/// the decode-plan cache sits behind a mutex held only for look-ups.
///
/// ```
/// use fec_core::rs::ReedSolomon;
///
/// let rs = ReedSolomon::new(4, 2)?;
/// let mut shards: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 1024]).collect();
/// rs.encode(&mut shards)?;
///
/// let mut received: Vec<Option<Vec<u8>>> = shards.iter().cloned().map(Some).collect();
/// received[1] = None;
/// received[2] = None;
/// rs.reconstruct_data(&mut received)?;
/// assert_eq!(received[1].as_deref(), Some(&shards[1][..]));
/// assert_eq!(received[2].as_deref(), Some(&shards[2][..]));
///
/// // Three losses with two parity shards cannot be repaired.
/// received[0] = None;
/// received[1] = None;
/// received[5] = None;
/// assert!(matches!(
///     rs.reconstruct(&mut received),
///     Err(fec_core::Error::TooFewShardsPresent { present: 3, needed: 4 })
/// ));
/// # Ok::<(), fec_core::Error>(())
/// ```
pub struct ReedSolomon {
    data_shards: usize,
    parity_shards: usize,
    engine: Engine,
    /// The `parity x data` rows of the encoding matrix below its identity top.
    parity_matrix: Vec<u8>,
    interpolator: Interpolator,
    parity_kernel: MatrixKernel,
    /// The additive-FFT route to the same parity, when the shape has one and
    /// it does less work than the matrix kernel.
    parity_transform: Option<ParityKernel>,
    plans: Mutex<PlanCache>,
}

impl ReedSolomon {
    /// A code with `data_shards` data and `parity_shards` parity shards, on
    /// the process-wide GF(2^8) engine.
    ///
    /// # Errors
    /// [`Error::NoDataShards`], [`Error::NoParityShards`], or
    /// [`Error::TooManyShards`] when the total exceeds [`MAX_SHARDS`].
    pub fn new(data_shards: usize, parity_shards: usize) -> Result<Self, Error> {
        Self::with_engine(data_shards, parity_shards, gf256::engine())
    }

    /// Like [`ReedSolomon::new`], on a chosen engine (to pin a backend).
    ///
    /// # Errors
    /// As [`ReedSolomon::new`].
    pub fn with_engine(
        data_shards: usize,
        parity_shards: usize,
        engine: Engine,
    ) -> Result<Self, Error> {
        if data_shards == 0 {
            return Err(Error::NoDataShards);
        }
        if parity_shards == 0 {
            return Err(Error::NoParityShards);
        }
        if data_shards > MAX_SHARDS || parity_shards > MAX_SHARDS - data_shards {
            return Err(Error::TooManyShards {
                data: data_shards,
                parity: parity_shards,
            });
        }
        let total = data_shards + parity_shards;
        let interpolator = Interpolator::new(total);
        let data: Vec<usize> = (0..data_shards).collect();
        let parity: Vec<usize> = (data_shards..total).collect();
        let parity_matrix = interpolator.coefficients(&data, &parity);
        let parity_kernel = engine.prepare(&parity_matrix, parity_shards, data_shards);
        let parity_transform = ParityKernel::new(engine, data_shards, parity_shards);
        Ok(ReedSolomon {
            data_shards,
            parity_shards,
            engine,
            parity_matrix,
            interpolator,
            parity_kernel,
            parity_transform,
            plans: Mutex::new(PlanCache::default()),
        })
    }

    /// Number of data shards.
    pub fn data_shard_count(&self) -> usize {
        self.data_shards
    }

    /// Number of parity shards.
    pub fn parity_shard_count(&self) -> usize {
        self.parity_shards
    }

    /// Number of data plus parity shards.
    pub fn total_shard_count(&self) -> usize {
        self.data_shards + self.parity_shards
    }

    /// The engine this code runs on.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The parity rows of the encoding matrix, row-major
    /// (`parity_shard_count x data_shard_count`): parity shard `j` is
    /// `sum over i of coefficients[j * data + i] * data_shard[i]`.
    pub fn parity_coefficients(&self) -> &[u8] {
        &self.parity_matrix
    }

    /// Computes the parity shards from the data shards, in place: `shards`
    /// holds the data shards, then the parity shards to overwrite.
    ///
    /// # Errors
    /// [`Error::ShardCount`] unless there are exactly
    /// [`total_shard_count`](Self::total_shard_count) shards,
    /// [`Error::EmptyShard`] or [`Error::ShardLength`] unless all have one
    /// nonzero length.
    pub fn encode<T: AsRef<[u8]> + AsMut<[u8]>>(&self, shards: &mut [T]) -> Result<(), Error> {
        check_count(self.total_shard_count(), shards.len())?;
        check_lengths(shards.iter().map(|s| s.as_ref().len()))?;
        let (data, parity) = shards.split_at_mut(self.data_shards);
        self.compute_parity(data, parity);
        Ok(())
    }

    /// Like [`encode`](Self::encode), with the data read-only and the parity
    /// in a separate slice.
    ///
    /// # Errors
    /// [`Error::ShardCount`] if `data` or `parity` does not have exactly the
    /// code's count (checked in that order); [`Error::EmptyShard`] or
    /// [`Error::ShardLength`] as in `encode`, indexing parity after data.
    pub fn encode_sep<T: AsRef<[u8]>, U: AsMut<[u8]>>(
        &self,
        data: &[T],
        parity: &mut [U],
    ) -> Result<(), Error> {
        check_count(self.data_shards, data.len())?;
        check_count(self.parity_shards, parity.len())?;
        let data_lengths = data.iter().map(|s| s.as_ref().len());
        let parity_lengths = parity.iter_mut().map(|s| s.as_mut().len());
        check_lengths(data_lengths.chain(parity_lengths))?;
        self.compute_parity(data, parity);
        Ok(())
    }

    /// Overwrites `parity` with the parity of `data` (shapes already checked).
    fn compute_parity<S: AsRef<[u8]>, D: AsMut<[u8]>>(&self, data: &[S], parity: &mut [D]) {
        match &self.parity_transform {
            Some(transform) => transform.apply(data, parity),
            None => self.parity_kernel.apply(data, parity),
        }
    }

    /// Whether the parity shards match the data shards.
    ///
    /// # Errors
    /// As [`encode`](Self::encode).
    pub fn verify<T: AsRef<[u8]>>(&self, shards: &[T]) -> Result<bool, Error> {
        check_count(self.total_shard_count(), shards.len())?;
        let len = check_lengths(shards.iter().map(|s| s.as_ref().len()))?;
        let (data, parity) = shards.split_at(self.data_shards);
        // Recompute in bounded chunks: memory stays flat for huge shards, and
        // a mismatch ends the work early.
        const CHUNK: usize = 32 * 1024;
        let mut expected = vec![vec![0u8; CHUNK.min(len)]; self.parity_shards];
        let mut start = 0;
        while start < len {
            let end = (start + CHUNK).min(len);
            let inputs: Vec<&[u8]> = data.iter().map(|s| &s.as_ref()[start..end]).collect();
            let mut outputs: Vec<&mut [u8]> =
                expected.iter_mut().map(|b| &mut b[..end - start]).collect();
            self.compute_parity(&inputs, &mut outputs);
            let matches = outputs
                .iter()
                .zip(parity)
                .all(|(out, got)| **out == got.as_ref()[start..end]);
            if !matches {
                return Ok(false);
            }
            start = end;
        }
        Ok(true)
    }

    /// Rebuilds every missing (`None`) shard, data and parity, from the
    /// present ones. Shards that are present are neither checked against the
    /// parity nor changed. On error nothing is changed.
    ///
    /// # Errors
    /// [`Error::ShardCount`] unless there are exactly
    /// [`total_shard_count`](Self::total_shard_count) entries;
    /// [`Error::EmptyShard`] or [`Error::ShardLength`] unless the present
    /// shards share one nonzero length; [`Error::TooFewShardsPresent`] if
    /// fewer than [`data_shard_count`](Self::data_shard_count) are present
    /// while something is missing.
    pub fn reconstruct(&self, shards: &mut [Option<Vec<u8>>]) -> Result<(), Error> {
        self.reconstruct_internal(shards, false)
    }

    /// Rebuilds only the missing data shards; missing parity stays `None`.
    ///
    /// # Errors
    /// As [`reconstruct`](Self::reconstruct).
    pub fn reconstruct_data(&self, shards: &mut [Option<Vec<u8>>]) -> Result<(), Error> {
        self.reconstruct_internal(shards, true)
    }

    fn reconstruct_internal(
        &self,
        shards: &mut [Option<Vec<u8>>],
        data_only: bool,
    ) -> Result<(), Error> {
        check_count(self.total_shard_count(), shards.len())?;
        let mut len = None;
        let mut present = vec![false; shards.len()];
        let mut present_count = 0;
        for (index, shard) in shards.iter().enumerate() {
            let Some(shard) = shard else { continue };
            check_length(index, shard.len(), &mut len)?;
            present[index] = true;
            present_count += 1;
        }
        let data_complete = present[..self.data_shards].iter().all(|&p| p);
        if present_count == shards.len() || (data_only && data_complete) {
            return Ok(());
        }
        if present_count < self.data_shards {
            return Err(Error::TooFewShardsPresent {
                present: present_count,
                needed: self.data_shards,
            });
        }
        let Some(len) = len else {
            // Unreachable: data_shards >= 1 shards are present.
            return Err(Error::TooFewShardsPresent {
                present: 0,
                needed: self.data_shards,
            });
        };

        let plan = self.plan(&present, data_only);
        let inputs: Vec<&[u8]> = shards
            .iter()
            .zip(&plan.roles)
            .filter_map(|(shard, role)| match (role, shard) {
                (Role::Input, Some(shard)) => Some(shard.as_slice()),
                _ => None,
            })
            .collect();
        debug_assert!(inputs.iter().all(|s| s.len() == len));
        let mut rebuilt = plan.kernel.apply_new(&inputs).into_iter();
        for (shard, role) in shards.iter_mut().zip(&plan.roles) {
            if *role == Role::Output {
                *shard = rebuilt.next();
            }
        }
        Ok(())
    }

    /// The cached plan for this erasure pattern, built outside the lock on a
    /// miss so that concurrent decoders of other patterns do not wait.
    fn plan(&self, present: &[bool], data_only: bool) -> Arc<DecodePlan> {
        let key = PlanKey::new(present, data_only);
        if let Some(plan) = self.lock_plans().get(&key) {
            return plan;
        }
        let plan = Arc::new(DecodePlan::build(
            &self.interpolator,
            self.data_shards,
            present,
            data_only,
            self.engine,
        ));
        self.lock_plans().insert(key, Arc::clone(&plan));
        plan
    }

    fn lock_plans(&self) -> MutexGuard<'_, PlanCache> {
        // The cache is consistent after every statement that mutates it, so a
        // panic elsewhere while it was locked leaves nothing to repair.
        self.plans
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Number of erasure patterns whose decode kernel is cached.
    pub fn cached_patterns(&self) -> usize {
        self.lock_plans().len()
    }
}

impl Clone for ReedSolomon {
    /// Shares nothing: the clone starts with an empty decode cache.
    fn clone(&self) -> Self {
        ReedSolomon {
            data_shards: self.data_shards,
            parity_shards: self.parity_shards,
            engine: self.engine,
            parity_matrix: self.parity_matrix.clone(),
            interpolator: self.interpolator.clone(),
            parity_kernel: self.parity_kernel.clone(),
            parity_transform: self.parity_transform.clone(),
            plans: Mutex::new(PlanCache::default()),
        }
    }
}

impl fmt::Debug for ReedSolomon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReedSolomon")
            .field("data_shards", &self.data_shards)
            .field("parity_shards", &self.parity_shards)
            .field("backend", &self.engine.backend())
            .finish_non_exhaustive()
    }
}

fn check_count(expected: usize, got: usize) -> Result<(), Error> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::ShardCount { expected, got })
    }
}

/// Checks that every length equals the first and is nonzero; returns it.
fn check_lengths(lengths: impl IntoIterator<Item = usize>) -> Result<usize, Error> {
    let mut len = None;
    for (index, got) in lengths.into_iter().enumerate() {
        check_length(index, got, &mut len)?;
    }
    Ok(len.unwrap_or(0))
}

fn check_length(index: usize, got: usize, expected: &mut Option<usize>) -> Result<(), Error> {
    if got == 0 {
        return Err(Error::EmptyShard { index });
    }
    match *expected {
        None => *expected = Some(got),
        Some(expected) if expected != got => {
            return Err(Error::ShardLength {
                index,
                expected,
                got,
            })
        }
        Some(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ReedSolomon>();
    }

    #[test]
    fn cache_stays_bounded() {
        let rs = ReedSolomon::new(4, 4).unwrap();
        let shards: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 4]).collect();
        // Every pattern of up to four losses among eight shards: 162 of them,
        // twice over (data-only and full).
        for mask in 0u32..256 {
            if mask.count_ones() > 4 || mask == 0 {
                continue;
            }
            for data_only in [false, true] {
                let mut received: Vec<Option<Vec<u8>>> = shards
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (mask & (1 << i) == 0).then(|| s.clone()))
                    .collect();
                if data_only {
                    rs.reconstruct_data(&mut received).unwrap();
                } else {
                    rs.reconstruct(&mut received).unwrap();
                }
            }
        }
        // 309 patterns went through a cache of 256.
        assert_eq!(rs.cached_patterns(), plan::MAX_PLANS);
    }
}
