//! FEC plugins as eBPF bytecode, ready to load with `fec_plugin_sdk`.
//!
//! | plugin | policy | redundancy |
//! | --- | --- | --- |
//! | [`RS_BLOCK`] | block Reed-Solomon, 2 parity per 8 sources | 25% |
//! | [`RLC_WINDOW`] | sliding-window RLC (window 32), 1 repair every 4 sources | 25% |
//! | [`ADAPTIVE`] | RLC whose rate follows `on_feedback` (loss rate, burst length) | 3%..50% |
//! | [`TUNNEL`] | RLC for tunnels: a repair right after each source when sparse, loss-driven groups when dense | 100% sparse, 3%..100% dense |
//! | [`MULTIPATH`] | [`TUNNEL`]'s RLC, repairs on the validated path losing least (`fec_repair_path`), the rate from the loss of the paths carrying sources | as [`TUNNEL`] |
//!
//! None of them has an `on_source` pluglet (the host's default protects every
//! packet) and each tells the host with `fec_repair_after` when its next
//! repair decision is due, so the VM runs once per repair decision rather
//! than twice per packet. [`RLC_WINDOW`], whose decision never changes, also
//! says with `fec_repair_repeat` that one decision stands for a window's
//! worth of repairs, so a host that follows the hint runs it once per 32
//! sources.
//!
//! The C sources are in `c/`; the packages in `bytecode/` are built from them
//! with [`fec_plugin_sdk::build::CLANG_FLAGS`] and committed, so using them
//! needs no clang. A test (ignored by a plain `cargo test`, run by CI:
//! `cargo test -p fec-plugins --test reproducible -- --ignored`) rebuilds
//! each one with clang and fails if a single byte differs, or if clang is
//! missing (`FEC_PLUGINS_BLESS=1` rewrites them).
//!
//! ```
//! use fec_plugin_sdk::package::TrustStore;
//! use fec_plugin_sdk::runtime::HostOffer;
//! let plugin = fec_plugin_sdk::load_package(
//!     fec_plugins::RLC_WINDOW.package, &TrustStore::new(), 0, &HostOffer::all(),
//! ).unwrap();
//! assert_eq!(plugin.name(), "rlc-window");
//! ```

#![forbid(unsafe_code)]

pub mod drive;

/// One shipped plugin: where it comes from and its built package.
#[derive(Clone, Copy, Debug)]
pub struct ShippedPlugin {
    /// Package name.
    pub name: &'static str,
    /// Package version.
    pub version: &'static str,
    /// Instance memory size.
    pub memory_size: u32,
    /// C source, relative to this crate.
    pub source: &'static str,
    /// Package file, relative to this crate.
    pub package_path: &'static str,
    /// The committed `.fecp` bytes.
    pub package: &'static [u8],
}

/// Block Reed-Solomon: 2 parity symbols per 8 sources.
pub const RS_BLOCK: ShippedPlugin = ShippedPlugin {
    name: "rs-block",
    version: "0.1.0",
    memory_size: 256,
    source: "c/rs_block.c",
    package_path: "bytecode/rs-block.fecp",
    package: include_bytes!("../bytecode/rs-block.fecp"),
};

/// Sliding-window RLC: one repair symbol every 4 sources, window 32.
pub const RLC_WINDOW: ShippedPlugin = ShippedPlugin {
    name: "rlc-window",
    version: "0.1.0",
    memory_size: 256,
    source: "c/rlc_window.c",
    package_path: "bytecode/rlc-window.fecp",
    package: include_bytes!("../bytecode/rlc-window.fecp"),
};

/// Adaptive RLC: rate and repair group size from receiver feedback.
pub const ADAPTIVE: ShippedPlugin = ShippedPlugin {
    name: "adaptive",
    version: "0.2.0",
    memory_size: 256,
    source: "c/adaptive.c",
    package_path: "bytecode/adaptive.fecp",
    package: include_bytes!("../bytecode/adaptive.fecp"),
};

/// RLC for tunnels: a repair right after each source of sparse traffic,
/// loss-driven groups for dense traffic (see `c/tunnel.c`).
pub const TUNNEL: ShippedPlugin = ShippedPlugin {
    name: "tunnel",
    version: "0.1.0",
    memory_size: 256,
    source: "c/tunnel.c",
    package_path: "bytecode/tunnel.fecp",
    package: include_bytes!("../bytecode/tunnel.fecp"),
};

/// The tunnel plugin's RLC over several paths: repairs on the validated path
/// losing least, redundancy from the loss of the paths carrying the sources
/// (see `c/multipath.c`).
pub const MULTIPATH: ShippedPlugin = ShippedPlugin {
    name: "multipath",
    version: "0.1.0",
    memory_size: 512,
    source: "c/multipath.c",
    package_path: "bytecode/multipath.fecp",
    package: include_bytes!("../bytecode/multipath.fecp"),
};

/// Every shipped plugin.
pub const ALL: [ShippedPlugin; 5] = [RS_BLOCK, RLC_WINDOW, ADAPTIVE, TUNNEL, MULTIPATH];
