//! RaptorQ repair symbols by a schedule of fec-core's own: the intermediate
//! symbols of RFC 6330 section 5.3.3 solved once per K into a list of symbol
//! sums, replayed on every block with fec-core's SIMD kernels.
//!
//! The `raptorq` crate solves `A * C = D` (A the L x L constraint matrix, D
//! the source symbols after S + H zeros) by its section 5.4 elimination and
//! records the symbol operations. Most of that record is the H dense HDPC
//! rows: every pivot is subtracted from each of them, H products per
//! intermediate symbol (2304 of its 6018 operations at K = 200). This
//! schedule keeps them out of the elimination:
//!
//! 1. **Peeling the binary rows.** The S LDPC and K' LT rows are sparse over
//!    GF(2). Repeatedly the row with the fewest unresolved columns resolves
//!    one of them; when it has several, all but one become *unknowns* (they
//!    are inactivated, in section 5.4's words). A resolved column is then
//!    `c_j = V_j + B_j * x`: `V_j` a sum of one source symbol and earlier
//!    `V`s (XORs only), `B_j` a GF(2) row over the `u` unknowns `x`,
//!    tracked as bits when the schedule is built, never on symbols.
//! 2. **The u x u system.** The `u - H` binary rows left over and the H
//!    HDPC rows are `u` equations in `x`. Their right-hand sides are sums
//!    of `V`s, and the HDPC ones are computed by Horner's rule: the HDPC
//!    rows are `MT * GAMMA` (section 5.3.3.3), GAMMA being powers of alpha
//!    below the diagonal, so `sum_j G[h][j] * V_j = sum_i MT[h][i] * A_i`
//!    with `A_i = alpha * A_{i-1} + V_i`. That costs one product by alpha
//!    per column plus MT's two entries per column, instead of H products.
//! 3. **Repairs.** Repair `e` is the sum of the intermediate symbols of its
//!    tuple: the `V`s of its resolved columns plus a GF(2) combination of
//!    `x`, and `x = M^-1 * rhs`, so the repair is those `V`s plus a dense
//!    row of `u` coefficients times the right-hand sides, applied by the
//!    fused matrix kernel.
//!
//! The constraint matrix comes from the crate itself (its `benchmarking`
//! feature exports it), so the schedule solves the very system the crate
//! solves, and since `A` is invertible the intermediate symbols, and hence
//! the repair bytes, are the crate's (tested below for every backend, and
//! through the pipeline in `pipeline/block.rs` and
//! `tests/pipeline_raptorq.rs`).

use ::raptorq::{
    extended_source_block_symbols, generate_constraint_matrix, BinaryMatrix, DenseBinaryMatrix,
};

use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use crate::gf256::{field, Backend, Engine, MatrixKernel};
use crate::recent::Recent;
use crate::rs::matrix::Matrix;
use crate::Error;

/// A symbol made as a sum: one source symbol (or zero) plus earlier values.
#[derive(Clone, Copy, Debug)]
struct Sum {
    source: Option<u32>,
    /// `terms[start..end]`: the values added.
    start: u32,
    end: u32,
}

/// One column of the Horner pass over the HDPC rows.
#[derive(Clone, Copy, Debug)]
struct HornerColumn {
    /// The value of a resolved column (an unknown contributes through the
    /// system's coefficients instead).
    value: Option<u32>,
    /// `mt[start..end]`: the column's nonzero MT entries, `(row, factor)`,
    /// the first `ones` of them of factor 1.
    start: u32,
    end: u32,
    ones: u32,
}

/// The schedule of one K: see the module documentation.
#[derive(Clone, Debug)]
pub(crate) struct Schedule {
    source_symbols: usize,
    /// Step 1, in order: value `i` is `values[i]`.
    values: Vec<Sum>,
    /// Step 2: the right-hand sides of the binary rows left over.
    leftovers: Vec<Sum>,
    /// Value indices the sums add.
    terms: Vec<u32>,
    /// Step 2, HDPC right-hand sides: the Horner pass over columns
    /// `0..K' + S`, then products of values of resolved columns past them.
    horner: Vec<HornerColumn>,
    mt: Vec<(u32, u8)>,
    direct: Vec<(u32, u32, u8)>,
    /// Number of unknowns `u` (= right-hand sides).
    unknowns: usize,
    /// Step 3: per repair, its values (`repair_terms[start..end]`).
    repairs: Vec<(u32, u32)>,
    repair_terms: Vec<u32>,
    /// Step 3: per repair, `u` coefficients over the right-hand sides.
    repair_rows: Vec<u8>,
    /// The code's generator rows of the prepared repairs: repair `e` is
    /// `sum over i of generator[e * K + i] * source_i` (the schedule run
    /// once on the K unit symbols), for a decoder's matrix at the lost
    /// positions.
    generator: Vec<u8>,
}

/// How a column of the constraint matrix ends up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    Open,
    Value(u32),
    Unknown(u32),
}

/// A growable set of unknowns, as bits.
#[derive(Clone, Debug, Default)]
struct Bits(Vec<u64>);

impl Bits {
    fn flip(&mut self, bit: usize) {
        let word = bit / 64;
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        self.0[word] ^= 1 << (bit % 64);
    }

    fn xor(&mut self, other: &Bits) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (word, other) in self.0.iter_mut().zip(&other.0) {
            *word ^= other;
        }
    }

    fn ones(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(index, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                let bit = rest.trailing_zeros() as usize;
                (rest != 0).then(|| {
                    rest &= rest - 1;
                    index * 64 + bit
                })
            })
        })
    }
}

impl Schedule {
    /// Solves the constraint matrix of K = `source_symbols` and prepares the
    /// first `repairs` repair symbols (ESIs K, K+1, ..).
    pub(crate) fn new(source_symbols: u32, repairs: u32, engine: Engine) -> Result<Self, Error> {
        if source_symbols == 0 || source_symbols > super::MAX_GENERATOR_SOURCE_SYMBOLS {
            return Err(Error::RaptorqSourceSymbols {
                got: source_symbols as usize,
                max: super::MAX_GENERATOR_SOURCE_SYMBOLS,
            });
        }
        let k = source_symbols as usize;
        let extended = extended_source_block_symbols(source_symbols);
        let isis: Vec<u32> = (0..extended + repairs).collect();
        let (matrix, hdpc) = generate_constraint_matrix::<DenseBinaryMatrix>(extended, &isis);
        let extended = extended as usize;
        let width = matrix.width();
        let hdpc_rows = hdpc.height();
        let inconsistent = Error::PipelineInconsistent {
            reason: "RaptorQ constraint matrix of an unexpected shape",
        };
        let ldpc_rows = matrix
            .height()
            .checked_sub(hdpc_rows + isis.len())
            .ok_or(inconsistent.clone())?;
        // Columns 0..K'+S are the ones GAMMA spans; the last H are the HDPC
        // symbols.
        let gamma = extended + ldpc_rows;
        if gamma + hdpc_rows != width || hdpc_rows == 0 {
            return Err(inconsistent);
        }

        // The binary rows: S LDPC rows (zero symbols), then the K' LT rows
        // of the source ISIs (source symbol i, or zero for padding).
        let binary: Vec<(Vec<u32>, Option<u32>)> = (0..ldpc_rows)
            .map(|row| (row, None))
            .chain((0..extended).map(|isi| {
                let source = (isi < k).then_some(isi as u32);
                (ldpc_rows + hdpc_rows + isi, source)
            }))
            .map(|(row, source)| {
                let columns = matrix
                    .query_non_zero_columns(row, 0)
                    .into_iter()
                    .map(|c| c as u32)
                    .collect();
                (columns, source)
            })
            .collect();

        let mut schedule = Schedule {
            source_symbols: k,
            values: Vec::new(),
            leftovers: Vec::new(),
            terms: Vec::new(),
            horner: Vec::new(),
            mt: Vec::new(),
            direct: Vec::new(),
            unknowns: 0,
            repairs: Vec::new(),
            repair_terms: Vec::new(),
            repair_rows: Vec::new(),
            generator: Vec::new(),
        };

        // Step 1: peeling.
        let mut rows_of = vec![Vec::new(); width];
        for (row, (columns, _)) in binary.iter().enumerate() {
            for &c in columns {
                rows_of[c as usize].push(row as u32);
            }
        }
        let mut open: Vec<usize> = binary.iter().map(|(columns, _)| columns.len()).collect();
        let mut used = vec![false; binary.len()];
        let mut column = vec![Column::Open; width];
        let mut dependence: Vec<Bits> = Vec::new();
        let close = |c: usize, open: &mut Vec<usize>| {
            for &row in &rows_of[c] {
                open[row as usize] -= 1;
            }
        };
        loop {
            let pick = (0..binary.len())
                .filter(|&row| !used[row] && open[row] > 0)
                .min_by_key(|&row| open[row]);
            let Some(row) = pick else { break };
            let (columns, source) = &binary[row];
            let still: Vec<usize> = columns
                .iter()
                .map(|&c| c as usize)
                .filter(|&c| column[c] == Column::Open)
                .collect();
            if still.len() > 1 {
                // No row resolves a column alone: the open column of this
                // row met in the most open rows becomes an unknown, which
                // lowers the most rows' counts, and peeling goes on.
                let busiest = still
                    .iter()
                    .copied()
                    .max_by_key(|&c| rows_of[c].iter().filter(|&&r| !used[r as usize]).count())
                    .unwrap_or(still[0]);
                column[busiest] = Column::Unknown(schedule.unknowns as u32);
                schedule.unknowns += 1;
                close(busiest, &mut open);
                continue;
            }
            used[row] = true;
            let kept = still[0];
            close(kept, &mut open);
            // The row's other columns are resolved or unknown by now.
            let (bits, values) = combine(columns, &column, &dependence);
            let sum = schedule.push_sum(*source, values);
            column[kept] = Column::Value(schedule.values.len() as u32);
            schedule.values.push(sum);
            dependence.push(bits);
        }
        // A column no binary row resolved is an unknown too.
        for state in column.iter_mut().filter(|state| **state == Column::Open) {
            *state = Column::Unknown(schedule.unknowns as u32);
            schedule.unknowns += 1;
        }
        let unknowns = schedule.unknowns;

        // Step 2: the system, binary rows left over first, then HDPC. Each
        // pivot used one binary row and resolved one of the L columns, so
        // the S + K' = L - H binary rows leave `u - H` over: `u` equations.
        let mut system = vec![0u8; unknowns * unknowns];
        let left: Vec<usize> = (0..binary.len()).filter(|&row| !used[row]).collect();
        debug_assert_eq!(left.len() + hdpc_rows, unknowns);
        for (equation, &row) in left.iter().enumerate() {
            let (columns, source) = &binary[row];
            let (bits, values) = combine(columns, &column, &dependence);
            for x in bits.ones() {
                system[equation * unknowns + x] = 1;
            }
            let sum = schedule.push_sum(*source, values);
            schedule.leftovers.push(sum);
        }
        let g = |h: usize, j: usize| hdpc.get(h, j).byte();
        for h in 0..hdpc_rows {
            let equation = left.len() + h;
            for (j, &state) in column.iter().enumerate() {
                let factor = g(h, j);
                if factor == 0 {
                    continue;
                }
                let row = &mut system[equation * unknowns..][..unknowns];
                match state {
                    Column::Value(v) => {
                        for x in dependence[v as usize].ones() {
                            row[x] ^= factor;
                        }
                        if j >= gamma {
                            schedule.direct.push((h as u32, v, factor));
                        }
                    }
                    Column::Unknown(x) => row[x as usize] ^= factor,
                    Column::Open => {}
                }
            }
        }
        for (j, &state) in column.iter().enumerate().take(gamma) {
            let start = schedule.mt.len();
            for h in 0..hdpc_rows {
                let next = if j + 1 < gamma { g(h, j + 1) } else { 0 };
                let factor = g(h, j) ^ field::mul(2, next);
                if factor != 0 {
                    schedule.mt.push((h as u32, factor));
                }
            }
            // Factor-1 entries first: the Horner step adds into them in its
            // own pass.
            schedule.mt[start..].sort_by_key(|&(_, factor)| factor != 1);
            let ones = schedule.mt[start..].iter().filter(|e| e.1 == 1).count();
            let value = match state {
                Column::Value(v) => Some(v),
                _ => None,
            };
            schedule.horner.push(HornerColumn {
                value,
                start: start as u32,
                end: schedule.mt.len() as u32,
                ones: ones as u32,
            });
        }
        let system = Matrix::from_fn(unknowns, unknowns, |r, c| system[r * unknowns + c]);
        let inverse = system.inverse(engine).ok_or(Error::PipelineInconsistent {
            reason: "RaptorQ schedule found a singular system",
        })?;

        // Step 3: the repairs.
        for repair in 0..repairs as usize {
            let row = ldpc_rows + hdpc_rows + extended + repair;
            let columns: Vec<u32> = matrix
                .query_non_zero_columns(row, 0)
                .into_iter()
                .map(|c| c as u32)
                .collect();
            let (bits, values) = combine(&columns, &column, &dependence);
            let start = schedule.repair_terms.len() as u32;
            schedule.repair_terms.extend(values);
            schedule
                .repairs
                .push((start, schedule.repair_terms.len() as u32));
            let mut dense = vec![0u8; unknowns];
            for x in bits.ones() {
                for (entry, &factor) in dense
                    .iter_mut()
                    .zip(&inverse.entries()[x * unknowns..(x + 1) * unknowns])
                {
                    *entry ^= factor;
                }
            }
            schedule.repair_rows.extend(dense);
        }
        // The generator rows: byte i of unit symbol i is 1.
        let mut units = vec![0u8; k * k];
        for i in 0..k {
            units[i * k + i] = 1;
        }
        let sources: Vec<&[u8]> = units.chunks_exact(k).collect();
        let all: Vec<u32> = (0..repairs).collect();
        let kernel = schedule.kernel(&all, engine).ok_or(inconsistent.clone())?;
        let mut rows = vec![vec![0u8; k]; all.len()];
        schedule.encode(engine, &kernel, &all, &sources, &mut rows, &mut Vec::new())?;
        schedule.generator = rows.concat();
        Ok(schedule)
    }

    /// A sum of `source` and `values`, its terms appended to `terms`.
    fn push_sum(&mut self, source: Option<u32>, values: Vec<u32>) -> Sum {
        let start = self.terms.len() as u32;
        self.terms.extend(values);
        Sum {
            source,
            start,
            end: self.terms.len() as u32,
        }
    }

    /// Repairs a schedule of [`shared`](Self::shared) prepares (ESIs K to
    /// K + 255, those a sender numbers its repairs with).
    pub(crate) const SHARED_REPAIRS: u32 = 256;

    /// The schedule of K = `source_symbols` (at most
    /// [`MAX_GENERATOR_SOURCE_SYMBOLS`](super::MAX_GENERATOR_SOURCE_SYMBOLS)),
    /// from a process-wide cache of the last few K (built on first use,
    /// outside the lock), as the crate keeps its plans.
    pub(crate) fn shared(source_symbols: u32) -> Result<Arc<Schedule>, Error> {
        if let Some(schedule) = shared_schedules().get(&source_symbols) {
            return Ok(Arc::clone(schedule));
        }
        let built = Arc::new(Schedule::new(
            source_symbols,
            Self::SHARED_REPAIRS,
            crate::gf256::engine(),
        )?);
        let mut shared = shared_schedules();
        let kept = shared.get_or_try_insert(source_symbols, || Ok::<_, Error>(built))?;
        Ok(Arc::clone(kept))
    }

    /// The schedule of K = `source_symbols` if the cache of
    /// [`shared`](Self::shared) holds it; never builds one.
    pub(crate) fn cached(source_symbols: u32) -> Option<Arc<Schedule>> {
        shared_schedules().get(&source_symbols).map(Arc::clone)
    }

    /// Whether `count` repairs cost less by this schedule than by K-wide
    /// generator rows on `backend`. Rows cost `count * K` products of the
    /// fused kernel; the schedule costs its sums (one pass over a symbol
    /// per term, the Horner pass included) plus `count * u` products. A
    /// term costs about a product on the `pshufb` backends, about two on
    /// AVX-512BW, and on GFNI, whose products are one instruction, about
    /// four (measured at K = 200: the fused kernel makes a 1280-byte
    /// product in 5.5 ns there, a sum adds a term in 20 ns).
    pub(crate) fn beats_rows(&self, count: usize, backend: Backend) -> bool {
        self.schedule_cost(count, backend) < count * self.source_symbols
    }

    /// [`beats_rows`](Self::beats_rows) for rebuilding `lost` sources: both
    /// ways then apply an inverse of `lost x lost` to their partial sums,
    /// and the rows' products over the received sources plus that inverse
    /// are `lost * K` again.
    pub(crate) fn beats_rows_decoding(&self, lost: usize, backend: Backend) -> bool {
        self.schedule_cost(lost, backend) + lost * lost < lost * self.source_symbols
    }

    /// The schedule's cost of `count` repairs, in products of the fused
    /// kernel (see [`beats_rows`](Self::beats_rows)).
    fn schedule_cost(&self, count: usize, backend: Backend) -> usize {
        let term_cost = match backend {
            Backend::Gfni => 4,
            Backend::Avx512 => 2,
            _ => 1,
        };
        let count = count.min(self.repairs.len());
        let repair_terms = self.repairs[..count]
            .iter()
            .map(|&(start, end)| (end - start) as usize)
            .sum::<usize>();
        let terms = self.terms.len() + 2 * self.horner.len() + self.mt.len() + self.direct.len();
        term_cost * (terms + repair_terms) + count * self.unknowns
    }

    /// The generator row of repair number `repair` (ESI - K): K
    /// coefficients, one per source symbol.
    pub(crate) fn generator_row(&self, repair: u32) -> Option<&[u8]> {
        // Checked first: a 24-bit repair number times K overflows a 32-bit
        // `usize`.
        let repair = self.prepared(repair)?;
        let k = self.source_symbols;
        self.generator.get(repair * k..(repair + 1) * k)
    }

    /// `repair` as an index, if it is one of the prepared repairs.
    fn prepared(&self, repair: u32) -> Option<usize> {
        let repair = usize::try_from(repair).ok()?;
        (repair < self.repairs.len()).then_some(repair)
    }

    /// The generator rows of the first `count` repairs, row-major (`count x
    /// K`), if that many are prepared.
    pub(crate) fn generator_rows(&self, count: usize) -> Option<&[u8]> {
        if count > self.repairs.len() {
            return None;
        }
        self.generator.get(..count * self.source_symbols)
    }

    /// The kernel of the dense rows of `repairs` (repair numbers, ESI - K),
    /// for [`encode`](Self::encode); `None` if one is past those prepared.
    pub(crate) fn kernel(&self, repairs: &[u32], engine: Engine) -> Option<MatrixKernel> {
        let u = self.unknowns;
        let mut rows = Vec::with_capacity(repairs.len() * u);
        for &repair in repairs {
            let repair = self.prepared(repair)?;
            rows.extend_from_slice(self.repair_rows.get(repair * u..(repair + 1) * u)?);
        }
        Some(engine.prepare(&rows, repairs.len(), u))
    }

    /// Writes the repair symbols `repairs` (repair numbers, ESI - K) of the
    /// block `sources` (K symbols of one size) into `outputs`, with `kernel`
    /// from [`kernel`](Self::kernel) for the same repairs. `work` is
    /// scratch, reused between calls.
    pub(crate) fn encode<D: AsMut<[u8]>>(
        &self,
        engine: Engine,
        kernel: &MatrixKernel,
        repairs: &[u32],
        sources: &[&[u8]],
        outputs: &mut [D],
        work: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let size = sources.first().map_or(0, |s| s.len());
        if sources.len() != self.source_symbols
            || sources.iter().any(|s| s.len() != size)
            || outputs.len() != repairs.len()
            || repairs.iter().any(|&r| r as usize >= self.repairs.len())
            || kernel.rows() != outputs.len()
            || kernel.cols() != self.unknowns
            || outputs.iter_mut().any(|o| o.as_mut().len() != size)
        {
            return Err(Error::PipelineInconsistent {
                reason: "RaptorQ schedule called with a block of another shape",
            });
        }
        // Strips of every symbol at a time, so that a strip's values and
        // sources stay in cache while the schedule runs over them.
        let strips = size.div_ceil(Self::MAX_STRIP).max(1);
        // Strips of whole 64-byte lines, in scratch that starts on one, so
        // no vector of the values straddles two cache lines.
        let strip = size.div_ceil(strips).next_multiple_of(64);
        let symbols = self.values.len() + self.unknowns + 2;
        // Every part of `work` read is written first.
        work.resize(symbols * strip + 63, 0);
        let aligned = work.as_ptr().align_offset(64).min(63);
        let work = &mut work[aligned..];
        let mut strip_sources = Vec::with_capacity(sources.len());
        for offset in (0..size).step_by(strip) {
            let len = strip.min(size - offset);
            strip_sources.clear();
            strip_sources.extend(sources.iter().map(|s| &s[offset..offset + len]));
            let mut strip_outputs: Vec<&mut [u8]> = outputs
                .iter_mut()
                .map(|o| &mut o.as_mut()[offset..offset + len])
                .collect();
            self.run(
                engine,
                kernel,
                repairs,
                &strip_sources,
                &mut strip_outputs,
                &mut work[..symbols * len],
            );
        }
        Ok(())
    }

    /// Most bytes of each symbol one pass of the schedule covers: the
    /// scratch is `(values + u + 2)` strips (1.2 MB at K = 1024), and a
    /// symbol splits into passes of equal size (two of 640 bytes for 1280).
    const MAX_STRIP: usize = 1024;

    /// [`encode`](Self::encode) over symbols of `sources[0].len()` bytes,
    /// checked by the caller.
    fn run(
        &self,
        engine: Engine,
        kernel: &MatrixKernel,
        repairs: &[u32],
        sources: &[&[u8]],
        outputs: &mut [&mut [u8]],
        work: &mut [u8],
    ) {
        let size = sources[0].len();
        let values = self.values.len();
        let unknowns = self.unknowns;
        let (value_area, rest) = work.split_at_mut(values * size);
        let (rhs, spare) = rest.split_at_mut(unknowns * size);
        // Step 1: each value from earlier ones.
        for (index, sum) in self.values.iter().enumerate() {
            let (earlier, later) = value_area.split_at_mut(index * size);
            let source = sum.source.map(|s| sources[s as usize]);
            let terms = &self.terms[sum.start as usize..sum.end as usize];
            sum_into(engine, source, terms, earlier, size, &mut later[..size]);
        }
        let value_area = &*value_area;
        let value = |v: u32| &value_area[v as usize * size..][..size];
        // Step 2: right-hand sides.
        let (binary_rhs, hdpc_rhs) = rhs.split_at_mut(self.leftovers.len() * size);
        for (sum, target) in self.leftovers.iter().zip(binary_rhs.chunks_exact_mut(size)) {
            let source = sum.source.map(|s| sources[s as usize]);
            let terms = &self.terms[sum.start as usize..sum.end as usize];
            sum_into(engine, source, terms, value_area, size, target);
        }
        hdpc_rhs.fill(0);
        // A_j = alpha * A_{j-1} + V_j, from A_{-1} = 0, added into the
        // right-hand sides of MT's entries in column j.
        let (mut acc, mut next) = spare.split_at_mut(size);
        acc.fill(0);
        let mut targets: Vec<&mut [u8]> = hdpc_rhs.chunks_exact_mut(size).collect();
        for column in &self.horner {
            let add = column.value.map(value);
            let entries = &self.mt[column.start as usize..column.end as usize];
            let (ones, others) = entries.split_at(column.ones as usize);
            let pair = match ones {
                [(a, _), (b, _)] => targets.get_disjoint_mut([*a as usize, *b as usize]).ok(),
                _ => None,
            };
            if let Some([a, b]) = pair {
                engine.mul_xor_spread(2, acc, add, next, &mut [&mut **a, &mut **b]);
            } else {
                engine.mul_xor_spread(2, acc, add, next, &mut []);
                for &(h, _) in ones {
                    engine.xor_slice(next, targets[h as usize]);
                }
            }
            for &(h, factor) in others {
                engine.mul_add_slice(factor, next, targets[h as usize]);
            }
            std::mem::swap(&mut acc, &mut next);
        }
        drop(targets);
        for &(h, v, factor) in &self.direct {
            let target = &mut hdpc_rhs[h as usize * size..][..size];
            engine.mul_add_slice(factor, value(v), target);
        }
        // Step 3: repairs.
        for (&repair, output) in repairs.iter().zip(outputs.iter_mut()) {
            let (start, end) = self.repairs[repair as usize];
            let terms = &self.repair_terms[start as usize..end as usize];
            sum_into(engine, None, terms, value_area, size, output);
        }
        let inputs: Vec<&[u8]> = rhs.chunks_exact(size).collect();
        kernel.apply_add(&inputs, outputs);
    }
}

/// The sum of `columns` as the peeling left them: the values of the
/// resolved ones, and the GF(2) row over the unknowns they and the unknown
/// columns bring.
fn combine(columns: &[u32], column: &[Column], dependence: &[Bits]) -> (Bits, Vec<u32>) {
    let mut bits = Bits::default();
    let mut values = Vec::new();
    for &c in columns {
        match column[c as usize] {
            Column::Value(v) => {
                values.push(v);
                bits.xor(&dependence[v as usize]);
            }
            Column::Unknown(x) => bits.flip(x as usize),
            Column::Open => {}
        }
    }
    (bits, values)
}

/// The process-wide schedules of [`Schedule::shared`], locked.
fn shared_schedules() -> MutexGuard<'static, Recent<u32, Arc<Schedule>>> {
    static SHARED: OnceLock<Mutex<Recent<u32, Arc<Schedule>>>> = OnceLock::new();
    SHARED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// `target = first + the values at `terms` of `area`` (symbols of `size`
/// bytes), a few sources per pass of the fused sum.
fn sum_into(
    engine: Engine,
    first: Option<&[u8]>,
    terms: &[u32],
    area: &[u8],
    size: usize,
    target: &mut [u8],
) {
    const BATCH: usize = 16;
    let mut batch: [&[u8]; BATCH] = [&[]; BATCH];
    let mut held = 0;
    let mut added = false;
    let mut flush = |batch: &[&[u8]], target: &mut [u8]| {
        if added {
            engine.add_slices(batch, target);
        } else {
            engine.sum_slices(batch, target);
            added = true;
        }
    };
    if let Some(first) = first {
        batch[0] = first;
        held = 1;
    }
    for &v in terms {
        if held == BATCH {
            flush(&batch, target);
            held = 0;
        }
        batch[held] = &area[v as usize * size..][..size];
        held += 1;
    }
    flush(&batch[..held], target);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gf256::Backend;
    use crate::raptorq::BlockEncoder;

    fn block(k: usize, size: usize, seed: usize) -> Vec<u8> {
        (0..k * size)
            .map(|i| ((i * 131 + seed * 7) % 251) as u8 ^ (i >> 8) as u8)
            .collect()
    }

    /// The schedule's repairs are the crate's, for several K (padded and
    /// not) on every backend.
    #[test]
    fn repairs_match_the_crate() {
        for k in [1usize, 2, 10, 13, 32, 101, 200, 1024] {
            let size = 48;
            let data = block(k, size, k);
            let expected = BlockEncoder::with_symbol_size(0, size as u16, &data)
                .unwrap()
                .repair_packets(0, 12)
                .unwrap();
            for backend in Backend::supported() {
                let engine = Engine::new(backend).unwrap();
                let schedule = Schedule::new(k as u32, 12, engine).unwrap();
                let sources: Vec<&[u8]> = data.chunks(size).collect();
                let mut work = Vec::new();
                // All twelve in order, then a few out of order.
                for repairs in [(0..12).collect::<Vec<u32>>(), vec![9, 2, 11]] {
                    let kernel = schedule.kernel(&repairs, engine).unwrap();
                    let mut outputs = vec![vec![0u8; size]; repairs.len()];
                    schedule
                        .encode(engine, &kernel, &repairs, &sources, &mut outputs, &mut work)
                        .unwrap();
                    for (&e, ours) in repairs.iter().zip(&outputs) {
                        let theirs = expected[e as usize].data();
                        assert_eq!(&ours[..], theirs, "K={k} repair {e} on {backend}");
                    }
                }
            }
        }
    }

    /// Symbol sizes that split into several strips, or end in a partial
    /// vector, give the crate's bytes too.
    #[test]
    fn repairs_match_the_crate_at_every_strip_shape() {
        let k = 13;
        for size in [1usize, 63, 64, 640, 1025, 1400, 2049, 5000] {
            let data = block(k, size, size);
            let expected = BlockEncoder::with_symbol_size(0, size as u16, &data)
                .unwrap()
                .repair_packets(0, 3)
                .unwrap();
            let sources: Vec<&[u8]> = data.chunks(size).collect();
            for backend in Backend::supported() {
                let engine = Engine::new(backend).unwrap();
                let schedule = Schedule::new(k as u32, 3, engine).unwrap();
                let kernel = schedule.kernel(&[0, 1, 2], engine).unwrap();
                let mut outputs = vec![vec![0u8; size]; 3];
                schedule
                    .encode(
                        engine,
                        &kernel,
                        &[0, 1, 2],
                        &sources,
                        &mut outputs,
                        &mut Vec::new(),
                    )
                    .unwrap();
                for (ours, theirs) in outputs.iter().zip(&expected) {
                    assert_eq!(&ours[..], theirs.data(), "size {size} on {backend}");
                }
            }
        }
    }

    /// The cost model: at K = 200 and 50 repairs (config E200) the
    /// schedule wins where products cost several XORs, the rows win on GFNI
    /// and for a couple of repairs; the peeling leaves few unknowns.
    #[test]
    fn cost_model_picks_by_backend() {
        let schedule = Schedule::new(200, 64, crate::gf256::engine()).unwrap();
        assert!(schedule.unknowns <= 40, "u = {}", schedule.unknowns);
        assert!(schedule.beats_rows(50, Backend::Avx2));
        assert!(schedule.beats_rows(50, Backend::Ssse3));
        assert!(!schedule.beats_rows(50, Backend::Gfni));
        assert!(!schedule.beats_rows(2, Backend::Avx2));
    }

    /// A repair past those prepared, sources of another count or size, and
    /// a kernel of another shape are errors, not panics.
    #[test]
    fn bad_calls_are_errors() {
        let engine = crate::gf256::engine();
        let schedule = Schedule::new(10, 4, engine).unwrap();
        assert!(schedule.kernel(&[4], engine).is_none());
        let kernel = schedule.kernel(&[0, 1], engine).unwrap();
        let data = block(10, 16, 0);
        let sources: Vec<&[u8]> = data.chunks(16).collect();
        let mut work = Vec::new();
        let mut outputs = vec![vec![0u8; 16]; 2];
        let mut call = |repairs: &[u32], sources: &[&[u8]], outputs: &mut Vec<Vec<u8>>| {
            schedule.encode(engine, &kernel, repairs, sources, outputs, &mut work)
        };
        assert!(call(&[0, 1], &sources, &mut outputs).is_ok());
        assert!(call(&[0, 9], &sources, &mut outputs).is_err());
        assert!(call(&[0, 1], &sources[..9], &mut outputs).is_err());
        assert!(call(&[0], &sources, &mut vec![vec![0u8; 16]]).is_err());
        assert!(call(&[0, 1], &sources, &mut vec![vec![0u8; 15]; 2]).is_err());
        let short: Vec<&[u8]> = data.chunks(16).map(|s| &s[..8]).collect();
        assert!(call(&[0, 1], &short, &mut outputs).is_err());
        // Repair numbers from the wire's 24 bits are checked before they
        // index anything.
        assert!(schedule.generator_row(4).is_none());
        assert!(schedule.generator_row((1 << 24) - 1).is_none());
        assert!(schedule.kernel(&[(1 << 22) + 1], engine).is_none());
        assert!(schedule.generator_rows(5).is_none());
        assert!(Schedule::new(0, 4, engine).is_err());
        let past = crate::raptorq::MAX_GENERATOR_SOURCE_SYMBOLS + 1;
        assert!(Schedule::new(past, 4, engine).is_err());
    }

    /// The schedule's generator rows are the rows read off the crate.
    #[test]
    fn generator_rows_are_the_crates() {
        for k in [1u32, 13, 200] {
            let schedule = Schedule::new(k, 20, crate::gf256::engine()).unwrap();
            let crate_rows = crate::raptorq::Generator::new(k, 20).unwrap();
            for e in 0..20 {
                assert_eq!(
                    schedule.generator_row(e).unwrap(),
                    &crate_rows.repair_rows(e, 1).unwrap()[..],
                    "K={k} repair {e}"
                );
            }
            assert!(schedule.generator_row(20).is_none());
        }
    }
}
