//! Intel ISA-L's erasure code, loaded at run time.
//!
//! The library is opened with `libloading` (`libisal.so.2`, Debian's `libisal2`), so
//! this crate builds and runs on machines without it; the compare binary then prints
//! a "skipped" line. Only four C functions are used: `ec_init_tables`,
//! `ec_encode_data`, `gf_invert_matrix` and nothing else at run time.
//!
//! [`IsalCodec`] uses the same generator matrix as reed-solomon-erasure (and so as
//! `fec_core::rs`), read off that crate by encoding the identity, which makes all
//! three produce byte-identical parity from the same data: the benchmark feeds them
//! the very same shards, and the tests can check ISA-L against the other two.

use std::ffi::c_int;

use libloading::Library;

type InitTablesFn = unsafe extern "C" fn(c_int, c_int, *mut u8, *mut u8);
type EncodeDataFn = unsafe extern "C" fn(c_int, c_int, c_int, *mut u8, *mut *mut u8, *mut *mut u8);
type InvertMatrixFn = unsafe extern "C" fn(*mut u8, *mut u8, c_int) -> c_int;

/// File names tried, in order, when loading ISA-L.
pub const LIBRARY_NAMES: [&str; 2] = ["libisal.so.2", "libisal.so"];

/// The most shards ISA-L's GF(2^8) code (and ours) can take.
const MAX_SHARDS: usize = 256;

/// The loaded ISA-L functions.
pub struct Isal {
    init_tables: InitTablesFn,
    encode_data: EncodeDataFn,
    invert_matrix: InvertMatrixFn,
    encoder_name: &'static str,
    // Keeps the function pointers above valid: they point into this library.
    _library: Library,
}

impl std::fmt::Debug for Isal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Isal")
    }
}

impl Isal {
    /// Opens ISA-L, or says why it could not. Encoding goes through its own
    /// dispatcher (`ec_encode_data`: the best code for this CPU).
    pub fn load() -> Result<Self, String> {
        Self::load_encoder(b"ec_encode_data\0")
    }

    /// Opens ISA-L with the encoder of the instruction set matching
    /// fec-core's `backend`, so a forced backend is compared with ISA-L's
    /// code for the same instructions: `ec_encode_data_base` for scalar,
    /// `_sse` for SSSE3, `_avx2` for AVX2, and the dispatcher above that
    /// (AVX-512, with GFNI where the CPU has it). The name it ran on is
    /// [`encoder_name`](Self::encoder_name).
    pub fn load_matching(backend: fec_core::gf256::Backend) -> Result<Self, String> {
        use fec_core::gf256::Backend;
        let symbol: &[u8] = match backend {
            Backend::Scalar => b"ec_encode_data_base\0",
            Backend::Ssse3 => b"ec_encode_data_sse\0",
            Backend::Avx2 => b"ec_encode_data_avx2\0",
            _ => b"ec_encode_data\0",
        };
        Self::load_encoder(symbol)
    }

    /// The encoder symbol in use, without its terminating NUL.
    pub fn encoder_name(&self) -> &'static str {
        self.encoder_name
    }

    fn load_encoder(symbol: &'static [u8]) -> Result<Self, String> {
        let mut reasons = Vec::new();
        for name in LIBRARY_NAMES {
            // SAFETY: loading ISA-L runs no initialisation code with preconditions
            // (it has no constructors that depend on the host program's state).
            match unsafe { Library::new(name) } {
                Ok(library) => return Self::from_library(library, symbol),
                Err(error) => reasons.push(format!("{name}: {error}")),
            }
        }
        Err(reasons.join("; "))
    }

    fn from_library(library: Library, encoder: &'static [u8]) -> Result<Self, String> {
        let encoder_name = std::str::from_utf8(encoder.strip_suffix(b"\0").unwrap_or(encoder))
            .map_err(|error| error.to_string())?;
        // SAFETY: the symbol types match the prototypes in ISA-L's
        // `erasure_code.h` (2.x): `void ec_init_tables(int, int, unsigned char *,
        // unsigned char *)`, `void ec_encode_data(int, int, int, unsigned char *,
        // unsigned char **, unsigned char **)` (and its `_base`, `_sse`, `_avx2`
        // variants, same prototype; a variant is only asked for with the fec-core
        // backend of the same instructions, which exists only on a CPU that has
        // them), `int gf_invert_matrix(unsigned char *, unsigned char *, const
        // int)`. The pointers are only used while `library`, stored beside them,
        // stays loaded.
        unsafe {
            let init_tables = *library
                .get::<InitTablesFn>(b"ec_init_tables\0")
                .map_err(|error| error.to_string())?;
            let encode_data = *library
                .get::<EncodeDataFn>(encoder)
                .map_err(|error| error.to_string())?;
            let invert_matrix = *library
                .get::<InvertMatrixFn>(b"gf_invert_matrix\0")
                .map_err(|error| error.to_string())?;
            Ok(Self {
                init_tables,
                encode_data,
                invert_matrix,
                encoder_name,
                _library: library,
            })
        }
    }

    /// Expands an `outputs x inputs` coefficient matrix (row-major) into ISA-L's
    /// multiplication tables.
    pub fn init_tables(&self, inputs: usize, outputs: usize, coefficients: &[u8]) -> Vec<u8> {
        assert!(
            inputs <= MAX_SHARDS && outputs <= MAX_SHARDS,
            "too many shards for GF(2^8)"
        );
        assert_eq!(
            coefficients.len(),
            inputs * outputs,
            "coefficient matrix size"
        );
        let mut tables = vec![0u8; 32 * inputs * outputs];
        // SAFETY: ISA-L reads `inputs * outputs` coefficients and writes
        // `32 * inputs * outputs` table bytes; both sizes were checked above. The
        // coefficients are only read, so casting away const is sound.
        unsafe {
            (self.init_tables)(
                inputs as c_int,
                outputs as c_int,
                coefficients.as_ptr().cast_mut(),
                tables.as_mut_ptr(),
            );
        }
        tables
    }

    /// `outputs[r] = sum_i c[r][i] * inputs[i]` with the tables from [`Self::init_tables`].
    pub fn encode_data<I: AsRef<[u8]>, O: AsMut<[u8]>>(
        &self,
        tables: &[u8],
        inputs: &[I],
        outputs: &mut [O],
    ) {
        let len = inputs.first().map_or(0, |shard| shard.as_ref().len());
        assert!(
            inputs.len() <= MAX_SHARDS && outputs.len() <= MAX_SHARDS,
            "too many shards"
        );
        assert_eq!(
            tables.len(),
            32 * inputs.len() * outputs.len(),
            "table size"
        );
        assert!(c_int::try_from(len).is_ok(), "shard too long for ISA-L");
        let mut input_pointers = [std::ptr::null_mut::<u8>(); MAX_SHARDS];
        for (pointer, shard) in input_pointers.iter_mut().zip(inputs) {
            let shard = shard.as_ref();
            assert_eq!(shard.len(), len, "input lengths differ");
            *pointer = shard.as_ptr().cast_mut();
        }
        let mut output_pointers = [std::ptr::null_mut::<u8>(); MAX_SHARDS];
        for (pointer, shard) in output_pointers.iter_mut().zip(outputs.iter_mut()) {
            let shard = shard.as_mut();
            assert_eq!(shard.len(), len, "output lengths differ");
            *pointer = shard.as_mut_ptr();
        }
        // SAFETY: every input and output pointer addresses `len` valid bytes (checked
        // above), the outputs are distinct `&mut` slices, and the tables hold
        // `32 * inputs * outputs` bytes. ISA-L only reads the inputs and tables.
        unsafe {
            (self.encode_data)(
                len as c_int,
                inputs.len() as c_int,
                outputs.len() as c_int,
                tables.as_ptr().cast_mut(),
                input_pointers.as_mut_ptr(),
                output_pointers.as_mut_ptr(),
            );
        }
    }

    /// Inverts an `n x n` matrix over GF(2^8); `None` when it is singular.
    pub fn invert(&self, matrix: &[u8], n: usize) -> Option<Vec<u8>> {
        assert_eq!(matrix.len(), n * n, "matrix size");
        assert!(n <= MAX_SHARDS, "matrix too large");
        // ISA-L destroys its input while eliminating.
        let mut scratch = matrix.to_vec();
        let mut inverse = vec![0u8; n * n];
        // SAFETY: both buffers hold exactly `n * n` bytes, as ISA-L requires.
        let status =
            unsafe { (self.invert_matrix)(scratch.as_mut_ptr(), inverse.as_mut_ptr(), n as c_int) };
        (status == 0).then_some(inverse)
    }
}

/// The parity rows (`parity x data`, row-major) of reed-solomon-erasure's code.
///
/// Encoding the identity (data shard `i` is the unit vector `e_i`) makes parity
/// shard `r` equal to row `r` of the parity part of the generator matrix.
pub fn reed_solomon_erasure_parity_rows(data: usize, parity: usize) -> Vec<u8> {
    let codec = reed_solomon_erasure::galois_8::ReedSolomon::new(data, parity)
        .expect("valid reed-solomon-erasure parameters");
    let mut shards: Vec<Vec<u8>> = (0..data + parity)
        .map(|index| {
            let mut shard = vec![0u8; data];
            if index < data {
                shard[index] = 1;
            }
            shard
        })
        .collect();
    codec.encode(&mut shards).expect("identity encodes");
    shards[data..].concat()
}

/// A systematic Reed-Solomon codec on ISA-L, compatible with reed-solomon-erasure.
#[derive(Debug)]
pub struct IsalCodec<'a> {
    isal: &'a Isal,
    data: usize,
    parity: usize,
    /// `(data + parity) x data` generator matrix: identity on top, then parity rows.
    generator: Vec<u8>,
    encode_tables: Vec<u8>,
}

impl<'a> IsalCodec<'a> {
    /// A codec for `data + parity` shards with reed-solomon-erasure's generator.
    pub fn new(isal: &'a Isal, data: usize, parity: usize) -> Self {
        let parity_rows = reed_solomon_erasure_parity_rows(data, parity);
        let mut generator = vec![0u8; data * data];
        for index in 0..data {
            generator[index * data + index] = 1;
        }
        generator.extend_from_slice(&parity_rows);
        let encode_tables = isal.init_tables(data, parity, &parity_rows);
        Self {
            isal,
            data,
            parity,
            generator,
            encode_tables,
        }
    }

    /// Computes the parity shards from the data shards.
    pub fn encode<I: AsRef<[u8]>, O: AsMut<[u8]>>(&self, data: &[I], parity: &mut [O]) {
        assert_eq!(
            (data.len(), parity.len()),
            (self.data, self.parity),
            "shard counts"
        );
        self.isal.encode_data(&self.encode_tables, data, parity);
    }

    /// Rebuilds the lost data shards the way ISA-L's own example does: take the
    /// first `data` surviving shards, invert their rows of the generator, keep the
    /// inverse's rows of the lost shards, expand them into tables and run one
    /// `ec_encode_data` over the survivors.
    ///
    /// `shards` holds every shard (`None` when lost); `outputs[j]` receives the data
    /// shard `lost[j]`, where `lost` lists the missing data indices in ascending order.
    pub fn reconstruct_data<O: AsMut<[u8]>>(
        &self,
        shards: &[Option<&[u8]>],
        outputs: &mut [O],
    ) -> Result<(), String> {
        if shards.len() != self.data + self.parity {
            return Err(format!(
                "expected {} shards, got {}",
                self.data + self.parity,
                shards.len()
            ));
        }
        let survivors: Vec<usize> = (0..shards.len())
            .filter(|&index| shards[index].is_some())
            .take(self.data)
            .collect();
        if survivors.len() < self.data {
            return Err(format!(
                "only {} shards survive, {} needed",
                survivors.len(),
                self.data
            ));
        }
        let lost: Vec<usize> = (0..self.data)
            .filter(|&index| shards[index].is_none())
            .collect();
        if lost.len() != outputs.len() {
            return Err(format!(
                "{} data shards lost but {} outputs given",
                lost.len(),
                outputs.len()
            ));
        }
        if lost.is_empty() {
            return Ok(());
        }
        let mut survivor_rows = Vec::with_capacity(self.data * self.data);
        for &row in &survivors {
            survivor_rows
                .extend_from_slice(&self.generator[row * self.data..(row + 1) * self.data]);
        }
        let inverse = self
            .isal
            .invert(&survivor_rows, self.data)
            .ok_or("survivor matrix is singular")?;
        let mut decode_rows = Vec::with_capacity(lost.len() * self.data);
        for &row in &lost {
            decode_rows.extend_from_slice(&inverse[row * self.data..(row + 1) * self.data]);
        }
        let tables = self.isal.init_tables(self.data, lost.len(), &decode_rows);
        let inputs: Vec<&[u8]> = survivors
            .iter()
            .map(|&index| shards[index].expect("survivor is present"))
            .collect();
        self.isal.encode_data(&tables, &inputs, outputs);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::random_shards;

    #[test]
    fn parity_rows_reproduce_reed_solomon_erasure() {
        // Checks the identity trick with a plain GF(2^8) dot product (0x11D,
        // fec-core's scalar field), independent of ISA-L.
        use fec_core::gf256::mul;
        let (data, parity, len) = (5, 3, 17);
        let rows = reed_solomon_erasure_parity_rows(data, parity);
        let mut shards = random_shards(data + parity, len, 3);
        reed_solomon_erasure::galois_8::ReedSolomon::new(data, parity)
            .unwrap()
            .encode(&mut shards)
            .unwrap();
        for (r, parity_shard) in shards[data..].iter().enumerate() {
            for (byte, &got) in parity_shard.iter().enumerate() {
                let expected =
                    (0..data).fold(0u8, |acc, i| acc ^ mul(rows[r * data + i], shards[i][byte]));
                assert_eq!(got, expected, "parity {r} byte {byte}");
            }
        }
    }

    /// Needs ISA-L, which the README's test command does not install:
    /// ignored there (cargo reports it as ignored, with the reason), run by
    /// `.ci/run` after installing libisal-dev, and failing, saying so,
    /// wherever ISA-L is absent.
    #[test]
    #[ignore = "needs ISA-L: cargo test -p fec-benches --lib isal -- --ignored (.ci/run does)"]
    fn isal_matches_reed_solomon_erasure_and_recovers_data() {
        let loaded = Isal::load().and_then(|default| {
            // Every encoder the compare binary can pick on this CPU.
            let mut all = vec![default];
            for backend in fec_core::gf256::Backend::supported() {
                all.push(Isal::load_matching(backend)?);
            }
            Ok(all)
        });
        let all = match loaded {
            Ok(all) => all,
            Err(why) => panic!(
                "ISA-L not found: benches/install-peers.sh (apt-get install libisal-dev) \
                 installs it; {why}"
            ),
        };
        for (isal, (data, parity, len)) in all.iter().flat_map(|isal| {
            [(10, 4, 1000), (32, 8, 1280), (64, 16, 64)]
                .into_iter()
                .map(move |shape| (isal, shape))
        }) {
            let codec = IsalCodec::new(isal, data, parity);
            let mut expected = random_shards(data + parity, len, 11);
            reed_solomon_erasure::galois_8::ReedSolomon::new(data, parity)
                .unwrap()
                .encode(&mut expected)
                .unwrap();
            let mut parity_out = vec![vec![0u8; len]; parity];
            codec.encode(&expected[..data], &mut parity_out);
            assert_eq!(
                parity_out,
                expected[data..],
                "{}: parity for k={data} m={parity}",
                isal.encoder_name()
            );

            let lost: Vec<usize> = (0..data).step_by(data / parity).take(parity).collect();
            let shards: Vec<Option<&[u8]>> = expected
                .iter()
                .enumerate()
                .map(|(index, shard)| (!lost.contains(&index)).then_some(shard.as_slice()))
                .collect();
            let mut rebuilt = vec![vec![0u8; len]; lost.len()];
            codec.reconstruct_data(&shards, &mut rebuilt).unwrap();
            for (shard, &index) in rebuilt.iter().zip(&lost) {
                assert_eq!(
                    shard, &expected[index],
                    "shard {index} for k={data} m={parity}"
                );
            }
        }
    }
}
