//! GF(2^8) arithmetic (polynomial 0x11D) and slice kernels with run-time
//! selected SIMD backends.
//!
//! Three layers, as in reed-solomon-simd:
//! - free functions ([`mul_slice`], [`mul_add_slice`], [`xor_slice`]) that use
//!   the process-wide [`Engine`] chosen once by [`Engine::detect`];
//! - an [`Engine`] value, for callers that want a particular [`Backend`]
//!   (tests pin every backend against the scalar one, benches compare them);
//! - [`MatrixKernel`], the fused multi-source/multi-output kernel with the
//!   per-coefficient tables expanded once, which Reed-Solomon encode and decode
//!   run on.
//!
//! Every SIMD backend is one small file mapping a few primitives (load,
//! store, XOR, multiply by a prepared constant) to its intrinsics; the loops
//! themselves are written once, generically, and compiled per instruction
//! set inside `#[target_feature]` functions. The fused kernel keeps a block of
//! outputs x 64-byte columns in registers (4 x 4 for GFNI), so each input
//! vector is loaded once per block and each broadcast constant serves all
//! columns of the block.
//!
//! Performance note: on AVX-512 machines, shards whose start is 64-byte
//! aligned are markedly faster when few outputs share each input load (up to
//! about 1.5x for 10 inputs into 4 outputs), because each unaligned 64-byte
//! load spans two cache lines. Ordinary heap allocations are only 16-byte
//! aligned.
//!
//! The backend can be forced with the environment variable
//! `FEC_CORE_BACKEND=scalar|ssse3|avx2|avx512|gfni`; a backend this CPU lacks
//! is ignored (the best supported one is used instead), so a forced backend can
//! never produce an illegal-instruction fault.
//!
//! ```
//! use fec_core::gf256::{self, Backend, Engine};
//!
//! let src = [1u8, 2, 3, 4];
//! let mut dst = [0u8; 4];
//! gf256::mul_slice(2, &src, &mut dst);
//! assert_eq!(dst, [2, 4, 6, 8]);
//!
//! // Every backend computes the same thing; scalar is always available.
//! let scalar = Engine::new(Backend::Scalar).unwrap();
//! let mut again = [0u8; 4];
//! scalar.mul_slice(2, &src, &mut again);
//! assert_eq!(dst, again);
//! ```

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
mod additive;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub(crate) mod field;
#[cfg(target_arch = "x86_64")]
mod gfni;
#[cfg(target_arch = "x86_64")]
mod lanes;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod ssse3;

pub use field::{div, exp, inv, mul, pow, POLYNOMIAL};

pub(crate) use additive::ParityKernel;

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// An implementation of the slice kernels for one instruction set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Backend {
    /// Portable table-driven code; available everywhere.
    Scalar,
    /// 16-byte nibble tables with `pshufb`.
    Ssse3,
    /// 32-byte nibble tables with `vpshufb`.
    Avx2,
    /// 64-byte nibble tables with AVX-512BW `vpshufb`.
    Avx512,
    /// `gf2p8affineqb` with one 8x8 bit matrix per constant (AVX-512 + GFNI).
    Gfni,
}

impl Backend {
    /// Every backend, slowest first.
    pub const ALL: [Backend; 5] = [
        Backend::Scalar,
        Backend::Ssse3,
        Backend::Avx2,
        Backend::Avx512,
        Backend::Gfni,
    ];

    /// The lower-case name used by `FEC_CORE_BACKEND` and in bench output.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Scalar => "scalar",
            Backend::Ssse3 => "ssse3",
            Backend::Avx2 => "avx2",
            Backend::Avx512 => "avx512",
            Backend::Gfni => "gfni",
        }
    }

    /// Whether this CPU can run the backend.
    pub fn is_supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Backend::Scalar => true,
                Backend::Ssse3 => std::arch::is_x86_feature_detected!("ssse3"),
                Backend::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
                Backend::Avx512 => {
                    std::arch::is_x86_feature_detected!("avx512f")
                        && std::arch::is_x86_feature_detected!("avx512bw")
                }
                Backend::Gfni => {
                    std::arch::is_x86_feature_detected!("avx512f")
                        && std::arch::is_x86_feature_detected!("avx512bw")
                        && std::arch::is_x86_feature_detected!("gfni")
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            matches!(self, Backend::Scalar)
        }
    }

    /// Every backend this CPU supports, slowest first.
    pub fn supported() -> Vec<Backend> {
        Backend::ALL
            .into_iter()
            .filter(|b| b.is_supported())
            .collect()
    }

    /// The fastest backend this CPU supports.
    pub fn best() -> Backend {
        Backend::ALL
            .into_iter()
            .rev()
            .find(|b| b.is_supported())
            .unwrap_or(Backend::Scalar)
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing an unknown backend name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown GF(2^8) backend {0:?}; expected one of scalar, ssse3, avx2, avx512, gfni")]
pub struct UnknownBackend(pub String);

impl FromStr for Backend {
    type Err = UnknownBackend;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Backend::ALL
            .into_iter()
            .find(|b| b.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownBackend(s.to_owned()))
    }
}

/// A handle to one supported backend. It can only be obtained after the CPU
/// check ([`Engine::new`] returns `None` otherwise), so every kernel call on
/// it is sound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Engine {
    backend: Backend,
}

static DETECTED: OnceLock<Engine> = OnceLock::new();

/// The process-wide engine: `FEC_CORE_BACKEND` if set and supported, else the
/// best backend. Detected once.
pub fn engine() -> Engine {
    Engine::detect()
}

impl Engine {
    /// The engine for `backend`, or `None` if this CPU cannot run it.
    pub fn new(backend: Backend) -> Option<Engine> {
        backend.is_supported().then_some(Engine { backend })
    }

    /// The process-wide engine (see [`engine`]).
    pub fn detect() -> Engine {
        *DETECTED.get_or_init(|| {
            let forced = std::env::var("FEC_CORE_BACKEND")
                .ok()
                .and_then(|name| name.parse::<Backend>().ok())
                .and_then(Engine::new);
            forced.unwrap_or(Engine {
                backend: Backend::best(),
            })
        })
    }

    /// Which backend this engine runs.
    pub fn backend(self) -> Backend {
        self.backend
    }

    /// `dst[i] = c * src[i]`.
    ///
    /// # Panics
    /// If `src` and `dst` differ in length.
    pub fn mul_slice(self, c: u8, src: &[u8], dst: &mut [u8]) {
        assert_eq!(src.len(), dst.len(), "mul_slice: length mismatch");
        // 0 and 1 are common (identity rows, GF(2) codes) and cost a copy at most.
        match c {
            0 => return dst.fill(0),
            1 => return dst.copy_from_slice(src),
            _ => {}
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: an `Engine` exists only for a backend the CPU supports
        // (`Engine::new` / `Engine::detect` check), which is the shells'
        // only requirement besides the equal lengths asserted above.
        unsafe {
            match self.backend {
                Backend::Scalar => scalar::mul_slice(c, src, dst),
                Backend::Ssse3 => ssse3::mul_slice(c, src, dst),
                Backend::Avx2 => avx2::mul_slice(c, src, dst),
                Backend::Avx512 => avx512::mul_slice(c, src, dst),
                Backend::Gfni => gfni::mul_slice(c, src, dst),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        scalar::mul_slice(c, src, dst);
    }

    /// `dst[i] ^= c * src[i]`.
    ///
    /// # Panics
    /// If `src` and `dst` differ in length.
    pub fn mul_add_slice(self, c: u8, src: &[u8], dst: &mut [u8]) {
        assert_eq!(src.len(), dst.len(), "mul_add_slice: length mismatch");
        match c {
            0 => return,
            1 => return self.xor_slice(src, dst),
            _ => {}
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: an `Engine` exists only for a backend the CPU supports
        // (`Engine::new` / `Engine::detect` check), which is the shells'
        // only requirement besides the equal lengths asserted above.
        unsafe {
            match self.backend {
                Backend::Scalar => scalar::mul_add_slice(c, src, dst),
                Backend::Ssse3 => ssse3::mul_add_slice(c, src, dst),
                Backend::Avx2 => avx2::mul_add_slice(c, src, dst),
                Backend::Avx512 => avx512::mul_add_slice(c, src, dst),
                Backend::Gfni => gfni::mul_add_slice(c, src, dst),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        scalar::mul_add_slice(c, src, dst);
    }

    /// `dst[i] ^= src[i]`.
    ///
    /// # Panics
    /// If `src` and `dst` differ in length.
    pub fn xor_slice(self, src: &[u8], dst: &mut [u8]) {
        assert_eq!(src.len(), dst.len(), "xor_slice: length mismatch");
        #[cfg(target_arch = "x86_64")]
        // SAFETY: an `Engine` exists only for a backend the CPU supports
        // (`Engine::new` / `Engine::detect` check), which is the shells'
        // only requirement besides the equal lengths asserted above.
        unsafe {
            match self.backend {
                Backend::Scalar => scalar::xor_slice(src, dst),
                Backend::Ssse3 => ssse3::xor_slice(src, dst),
                Backend::Avx2 => avx2::xor_slice(src, dst),
                Backend::Avx512 => avx512::xor_slice(src, dst),
                Backend::Gfni => gfni::xor_slice(src, dst),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        scalar::xor_slice(src, dst);
    }

    /// `dst = sources[0] ^ sources[1] ^ ..`, all zero for no source: one
    /// pass over `dst` however many sources it sums, where summing them
    /// one [`xor_slice`](Self::xor_slice) at a time loads and stores `dst`
    /// once per source.
    ///
    /// # Panics
    /// If a source's length differs from `dst`'s.
    pub fn sum_slices(self, sources: &[&[u8]], dst: &mut [u8]) {
        self.sum::<false>(sources, dst)
    }

    /// `dst ^= sources[0] ^ sources[1] ^ ..`, in one pass over `dst` (see
    /// [`sum_slices`](Self::sum_slices)).
    ///
    /// # Panics
    /// If a source's length differs from `dst`'s.
    pub fn add_slices(self, sources: &[&[u8]], dst: &mut [u8]) {
        self.sum::<true>(sources, dst)
    }

    fn sum<const ADD: bool>(self, sources: &[&[u8]], dst: &mut [u8]) {
        assert!(
            sources.iter().all(|s| s.len() == dst.len()),
            "sum_slices: length mismatch"
        );
        #[cfg(target_arch = "x86_64")]
        // SAFETY: an `Engine` exists only for a backend the CPU supports
        // (`Engine::new` / `Engine::detect` check), which is the shells'
        // only requirement besides the equal lengths asserted above.
        unsafe {
            match self.backend {
                Backend::Scalar => scalar::sum_slices::<ADD>(sources, dst),
                Backend::Ssse3 => ssse3::sum_slices::<ADD>(sources, dst),
                Backend::Avx2 => avx2::sum_slices::<ADD>(sources, dst),
                Backend::Avx512 => avx512::sum_slices::<ADD>(sources, dst),
                Backend::Gfni => gfni::sum_slices::<ADD>(sources, dst),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        scalar::sum_slices::<ADD>(sources, dst);
    }

    /// One step of Horner's rule over symbols, in one pass: `next = c * acc
    /// ^ add` (`c * acc` without `add`), then `t ^= next` for each `t` in
    /// `spread`.
    ///
    /// # Panics
    /// If `acc`, `add` or a `spread` target differs from `next` in length.
    pub fn mul_xor_spread(
        self,
        c: u8,
        acc: &[u8],
        add: Option<&[u8]>,
        next: &mut [u8],
        spread: &mut [&mut [u8]],
    ) {
        let len = next.len();
        assert!(
            acc.len() == len
                && add.is_none_or(|a| a.len() == len)
                && spread.iter().all(|t| t.len() == len),
            "mul_xor_spread: length mismatch"
        );
        #[cfg(target_arch = "x86_64")]
        // SAFETY: an `Engine` exists only for a backend the CPU supports
        // (`Engine::new` / `Engine::detect` check), which is the shells'
        // only requirement besides the equal lengths asserted above.
        unsafe {
            match self.backend {
                Backend::Scalar => scalar::mul_xor_spread(c, acc, add, next, spread),
                Backend::Ssse3 => ssse3::mul_xor_spread(c, acc, add, next, spread),
                Backend::Avx2 => avx2::mul_xor_spread(c, acc, add, next, spread),
                Backend::Avx512 => avx512::mul_xor_spread(c, acc, add, next, spread),
                Backend::Gfni => gfni::mul_xor_spread(c, acc, add, next, spread),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        scalar::mul_xor_spread(c, acc, add, next, spread);
    }

    /// Expands a `rows x cols` coefficient matrix (row-major) into the tables
    /// this backend's fused kernel needs. Build once, apply many times.
    ///
    /// # Panics
    /// If `coefficients.len() != rows * cols`.
    pub fn prepare(self, coefficients: &[u8], rows: usize, cols: usize) -> MatrixKernel {
        assert_eq!(
            coefficients.len(),
            rows * cols,
            "prepare: coefficient count"
        );
        let mut kernel = MatrixKernel {
            engine: self,
            rows: 0,
            cols: 0,
            coefficients: Vec::new(),
            expanded: Expanded::Plain,
        };
        self.prepare_into(&mut kernel, coefficients, rows, cols);
        kernel
    }

    /// [`prepare`](Self::prepare) into an existing kernel, reusing its
    /// memory: a caller preparing a new matrix for every call (RLC repair
    /// symbols have coefficients of their own) allocates nothing once the
    /// kernel has held one as large.
    ///
    /// # Panics
    /// If `coefficients.len() != rows * cols`.
    pub fn prepare_into(
        self,
        kernel: &mut MatrixKernel,
        coefficients: &[u8],
        rows: usize,
        cols: usize,
    ) {
        assert_eq!(
            coefficients.len(),
            rows * cols,
            "prepare: coefficient count"
        );
        kernel.engine = self;
        kernel.rows = rows;
        kernel.cols = cols;
        kernel.coefficients.clear();
        kernel.coefficients.extend_from_slice(coefficients);
        kernel
            .expanded
            .refill(self.backend, coefficients, rows, cols);
    }
}

/// `dst[i] = c * src[i]` on the process-wide engine.
///
/// # Panics
/// If `src` and `dst` differ in length.
pub fn mul_slice(c: u8, src: &[u8], dst: &mut [u8]) {
    engine().mul_slice(c, src, dst)
}

/// `dst[i] ^= c * src[i]` on the process-wide engine.
///
/// # Panics
/// If `src` and `dst` differ in length.
pub fn mul_add_slice(c: u8, src: &[u8], dst: &mut [u8]) {
    engine().mul_add_slice(c, src, dst)
}

/// `dst[i] ^= src[i]` on the process-wide engine.
///
/// # Panics
/// If `src` and `dst` differ in length.
pub fn xor_slice(src: &[u8], dst: &mut [u8]) {
    engine().xor_slice(src, dst)
}

/// A coefficient matrix prepared for one backend: the fused kernel that
/// computes `outputs[r] = sum over c of matrix[r][c] * inputs[c]` in one pass
/// over cache-sized chunks of the inputs.
///
/// ```
/// use fec_core::gf256::{self, engine};
///
/// // Two outputs from three inputs.
/// let matrix = [1, 1, 1, 1, 2, 3];
/// let kernel = engine().prepare(&matrix, 2, 3);
/// let inputs = [[5u8; 8], [6; 8], [7; 8]];
/// let mut outputs = [[0u8; 8]; 2];
/// kernel.apply(&inputs, &mut outputs);
/// assert_eq!(outputs[0][0], 5 ^ 6 ^ 7);
/// assert_eq!(outputs[1][0], 5 ^ gf256::mul(2, 6) ^ gf256::mul(3, 7));
/// ```
#[derive(Clone, Debug)]
pub struct MatrixKernel {
    // Only the SIMD dispatch reads it; off x86_64 there is none.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    engine: Engine,
    rows: usize,
    cols: usize,
    coefficients: Vec<u8>,
    expanded: Expanded,
}

/// Split-nibble product tables for one constant `c`: bytes `0..16` hold
/// `c * i`, bytes `16..32` hold `c * (i << 4)`, so `c * x` is the XOR of two
/// 16-entry lookups (`pshufb`).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(32))]
#[cfg(target_arch = "x86_64")]
struct NibbleTable([u8; 32]);

#[cfg(target_arch = "x86_64")]
impl NibbleTable {
    fn new(c: u8) -> Self {
        NIBBLE_TABLES[usize::from(c)]
    }
}

/// The split-nibble tables of every constant (8 KiB), built at compile
/// time: expanding a kernel's coefficients is a copy per coefficient, not 32
/// products (a quarter of the AVX2 RLC decoder's kernel time before).
#[cfg(target_arch = "x86_64")]
static NIBBLE_TABLES: [NibbleTable; 256] = build_nibble_tables();

#[cfg(target_arch = "x86_64")]
const fn build_nibble_tables() -> [NibbleTable; 256] {
    let mut tables = [NibbleTable([0; 32]); 256];
    let mut c = 0;
    while c < 256 {
        let mut i = 0;
        while i < 16 {
            tables[c].0[i] = field::const_mul(c as u8, i as u8);
            tables[c].0[16 + i] = field::const_mul(c as u8, (i as u8) << 4);
            i += 1;
        }
        c += 1;
    }
    tables
}

/// A coefficient matrix in the form a backend's fused kernel reads,
/// input-major (`[j * rows + r]` multiplies input `j` into output `r`) so that
/// a group of outputs finds its coefficients for one input side by side.
#[derive(Clone, Debug)]
enum Expanded {
    /// The scalar kernel reads `coefficients` directly.
    Plain,
    /// For the `pshufb` backends.
    #[cfg(target_arch = "x86_64")]
    Nibbles(Vec<NibbleTable>),
    /// For GFNI: one `gf2p8affineqb` bit matrix per coefficient.
    #[cfg(target_arch = "x86_64")]
    Affine(Vec<u64>),
}

impl Expanded {
    /// The tables of `coefficients` (row-major `rows x cols`) for
    /// `backend`, in the vector this one already has when it is of the
    /// same kind.
    #[cfg(target_arch = "x86_64")]
    fn refill(&mut self, backend: Backend, coefficients: &[u8], rows: usize, cols: usize) {
        let input_major = move |j: usize, r: usize| coefficients[r * cols + j];
        let transposed = (0..cols).flat_map(move |j| (0..rows).map(move |r| input_major(j, r)));
        match backend {
            Backend::Scalar => *self = Expanded::Plain,
            Backend::Ssse3 | Backend::Avx2 | Backend::Avx512 => {
                if !matches!(self, Expanded::Nibbles(_)) {
                    *self = Expanded::Nibbles(Vec::new());
                }
                if let Expanded::Nibbles(tables) = self {
                    tables.clear();
                    tables.extend(transposed.map(NibbleTable::new));
                }
            }
            Backend::Gfni => {
                if !matches!(self, Expanded::Affine(_)) {
                    *self = Expanded::Affine(Vec::new());
                }
                if let Expanded::Affine(matrices) = self {
                    matrices.clear();
                    matrices.extend(transposed.map(gfni::affine_matrix));
                }
            }
        }
    }

    /// Off x86_64 only the scalar backend exists.
    #[cfg(not(target_arch = "x86_64"))]
    fn refill(&mut self, _: Backend, _: &[u8], _: usize, _: usize) {
        *self = Expanded::Plain;
    }
}

impl MatrixKernel {
    /// Number of outputs.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of inputs.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The coefficient matrix, row-major.
    pub fn coefficients(&self) -> &[u8] {
        &self.coefficients
    }

    /// Overwrites each output with its linear combination of the inputs.
    ///
    /// # Panics
    /// If there are not exactly `cols` inputs and `rows` outputs, or if the
    /// slices differ in length.
    pub fn apply<S: AsRef<[u8]>, D: AsMut<[u8]>>(&self, inputs: &[S], outputs: &mut [D]) {
        let len = self.check_shapes(inputs, outputs);
        self.run(inputs, outputs, len, false);
    }

    /// XORs each output's linear combination of the inputs into it
    /// (`outputs[r] ^= sum over c of matrix[r][c] * inputs[c]`), e.g. to add
    /// a further batch of inputs to partial results.
    ///
    /// # Panics
    /// As [`MatrixKernel::apply`].
    pub fn apply_add<S: AsRef<[u8]>, D: AsMut<[u8]>>(&self, inputs: &[S], outputs: &mut [D]) {
        let len = self.check_shapes(inputs, outputs);
        self.run(inputs, outputs, len, true);
    }

    /// Asserts the shapes `apply` documents; returns the common length.
    fn check_shapes<S: AsRef<[u8]>, D: AsMut<[u8]>>(
        &self,
        inputs: &[S],
        outputs: &mut [D],
    ) -> usize {
        assert_eq!(inputs.len(), self.cols, "apply: input count");
        assert_eq!(outputs.len(), self.rows, "apply: output count");
        let len = inputs.first().map_or(0, |s| s.as_ref().len());
        for input in inputs {
            assert_eq!(input.as_ref().len(), len, "apply: input length");
        }
        for output in outputs.iter_mut() {
            assert_eq!(output.as_mut().len(), len, "apply: output length");
        }
        len
    }

    fn run<S: AsRef<[u8]>, D: AsMut<[u8]>>(
        &self,
        inputs: &[S],
        outputs: &mut [D],
        len: usize,
        add: bool,
    ) {
        if len == 0 {
            return;
        }
        match &self.expanded {
            Expanded::Plain => {
                scalar::matrix_apply(&self.coefficients, self.cols, inputs, outputs, add)
            }
            #[cfg(target_arch = "x86_64")]
            Expanded::Nibbles(_) | Expanded::Affine(_) => self.run_simd(inputs, outputs, len, add),
        }
    }

    /// Like [`apply`](Self::apply), into `rows` new vectors of the inputs'
    /// length. On the SIMD backends the vectors are not zero-filled first:
    /// the kernel writes every byte of them (for a decode of 64 KiB shards the
    /// zero-fill took about a quarter of the time).
    ///
    /// # Panics
    /// If there are not exactly `cols` inputs, or they differ in length.
    pub fn apply_new<S: AsRef<[u8]>>(&self, inputs: &[S]) -> Vec<Vec<u8>> {
        assert_eq!(inputs.len(), self.cols, "apply: input count");
        let len = inputs.first().map_or(0, |s| s.as_ref().len());
        for input in inputs {
            assert_eq!(input.as_ref().len(), len, "apply: input length");
        }
        #[cfg(target_arch = "x86_64")]
        if len > 0 && !matches!(self.expanded, Expanded::Plain) {
            let mut outputs: Vec<Vec<u8>> =
                (0..self.rows).map(|_| Vec::with_capacity(len)).collect();
            let output_ptrs: Vec<*mut u8> = outputs
                .iter_mut()
                .map(|v| v.spare_capacity_mut().as_mut_ptr().cast::<u8>())
                .collect();
            let input_ptrs: Vec<*const u8> = inputs.iter().map(|s| s.as_ref().as_ptr()).collect();
            // The outputs are fresh allocations of `len` bytes each, distinct
            // from each other and from the inputs, as `run_simd_pointers`
            // requires.
            self.run_simd_pointers(&input_ptrs, &output_ptrs, len, false);
            for output in &mut outputs {
                // SAFETY: `len` is within the capacity reserved above, and the
                // fused kernel without `add` stores every byte of `0..len` of
                // every output (whole vectors, then the exact tail), so all of
                // them are initialised.
                unsafe { output.set_len(len) };
            }
            return outputs;
        }
        let mut outputs = vec![vec![0u8; len]; self.rows];
        self.apply(inputs, &mut outputs);
        outputs
    }

    /// Runs the backend's fused kernel on the buffers.
    #[cfg(target_arch = "x86_64")]
    fn run_simd<S: AsRef<[u8]>, D: AsMut<[u8]>>(
        &self,
        inputs: &[S],
        outputs: &mut [D],
        len: usize,
        add: bool,
    ) {
        // The pointers come from slices of exactly `len` bytes (checked by
        // `with_pointers` on the very slices they point into); the outputs
        // are distinct `&mut` borrows and so overlap neither each other nor
        // the shared inputs, and all borrows outlive the call.
        with_pointers(inputs, outputs, len, |input_ptrs, output_ptrs| {
            self.run_simd_pointers(input_ptrs, output_ptrs, len, add)
        })
    }

    /// Runs the backend's fused kernel on raw pointers. Callers guarantee
    /// `cols` input pointers valid for `len` reads and `rows` output pointers
    /// valid for `len` writes (initialised or not unless `add`), the outputs
    /// overlapping neither each other nor any input.
    #[cfg(target_arch = "x86_64")]
    fn run_simd_pointers(
        &self,
        input_ptrs: &[*const u8],
        output_ptrs: &[*mut u8],
        len: usize,
        add: bool,
    ) {
        assert_eq!(input_ptrs.len(), self.cols, "apply: input count");
        assert_eq!(output_ptrs.len(), self.rows, "apply: output count");
        {
            // Soundness of every kernel call below: the engine's backend is
            // supported by this CPU (an `Engine` only exists after that
            // check) and `expanded` was built for that backend in `prepare`
            // with rows * cols entries; the pointers are as this function's
            // callers guarantee.
            match &self.expanded {
                Expanded::Affine(table) => {
                    let call = self.call(table, input_ptrs, output_ptrs, len, add);
                    // SAFETY: see above; `Affine` is built only for `Gfni`.
                    unsafe { gfni::matrix_apply(&call) }
                }
                Expanded::Nibbles(table) => {
                    let call = self.call(table, input_ptrs, output_ptrs, len, add);
                    match self.engine.backend {
                        // SAFETY: see above.
                        Backend::Ssse3 => unsafe { ssse3::matrix_apply(&call) },
                        // SAFETY: see above.
                        Backend::Avx2 => unsafe { avx2::matrix_apply(&call) },
                        // SAFETY: see above; `Nibbles` is built only for the
                        // three `pshufb` backends.
                        _ => unsafe { avx512::matrix_apply(&call) },
                    }
                }
                Expanded::Plain => unreachable!("run_simd on a scalar kernel"),
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn call<'a, T>(
        &self,
        table: &'a [T],
        inputs: &'a [*const u8],
        outputs: &'a [*mut u8],
        len: usize,
        add: bool,
    ) -> lanes::MatrixCall<'a, T> {
        lanes::MatrixCall {
            table,
            rows: self.rows,
            cols: self.cols,
            inputs,
            outputs,
            len,
            add,
        }
    }
}

/// Calls `f` with raw pointers to the starts of `inputs` and `outputs`,
/// collected on the stack for the common small counts. Each pointer comes
/// from a slice checked here to hold `len` bytes: the callers checked the
/// lengths too, but a caller's `AsRef`/`AsMut` may return another slice on
/// its next call, so the check that the kernels rely on is this one.
///
/// # Panics
/// If a slice does not hold `len` bytes.
#[cfg(target_arch = "x86_64")]
fn with_pointers<S: AsRef<[u8]>, D: AsMut<[u8]>>(
    inputs: &[S],
    outputs: &mut [D],
    len: usize,
    f: impl FnOnce(&[*const u8], &[*mut u8]),
) {
    let input_ptr = |input: &S| {
        let slice = input.as_ref();
        assert_eq!(slice.len(), len, "kernel input length");
        slice.as_ptr()
    };
    let output_ptr = |output: &mut D| {
        let slice = output.as_mut();
        assert_eq!(slice.len(), len, "kernel output length");
        slice.as_mut_ptr()
    };
    const ON_STACK: usize = 64;
    let mut input_buf = [std::ptr::null::<u8>(); ON_STACK];
    let mut output_buf = [std::ptr::null_mut::<u8>(); ON_STACK];
    let input_vec: Vec<*const u8>;
    let output_vec: Vec<*mut u8>;
    let input_ptrs: &[*const u8] = if inputs.len() <= ON_STACK {
        for (slot, input) in input_buf.iter_mut().zip(inputs) {
            *slot = input_ptr(input);
        }
        &input_buf[..inputs.len()]
    } else {
        input_vec = inputs.iter().map(input_ptr).collect();
        &input_vec
    };
    let output_ptrs: &[*mut u8] = if outputs.len() <= ON_STACK {
        for (slot, output) in output_buf.iter_mut().zip(outputs.iter_mut()) {
            *slot = output_ptr(output);
        }
        &output_buf[..outputs.len()]
    } else {
        output_vec = outputs.iter_mut().map(output_ptr).collect();
        &output_vec
    };
    f(input_ptrs, output_ptrs)
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn nibble_tables_hold_the_split_products() {
        for c in 0..=255u8 {
            let NibbleTable(table) = NibbleTable::new(c);
            for x in 0..=255u8 {
                let split = table[usize::from(x & 15)] ^ table[16 + usize::from(x >> 4)];
                assert_eq!(split, mul(c, x), "{c} * {x}");
            }
        }
    }
}
