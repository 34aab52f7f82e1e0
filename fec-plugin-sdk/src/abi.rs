//! The stable ABI between FEC plugins (eBPF bytecode) and any host.
//!
//! Everything here has an explicit discriminant or a `#[repr(C)]` layout, and
//! `include/fec_plugin.h` mirrors it for C authors (a test parses the header and
//! compares it with these definitions).
//!
//! # Calling convention
//!
//! A pluglet is one eBPF function. The host calls it with `r1` pointing at the
//! start of the plugin instance's memory region. The region is laid out as:
//!
//! | bytes | content |
//! | --- | --- |
//! | `[0, CONTEXT_AREA_SIZE)` | the operation's context (`*Context` struct below), rewritten (zero-filled, then copied in) before every call |
//! | `[STATE_OFFSET, memory_size)` | the plugin's own state, zeroed once at instantiation and kept across calls |
//!
//! The region is the instance's alone: no other instance, connection or plugin
//! sees it. Nothing the plugin writes into the context area is read back by the
//! host, so a context is input only. Decisions are taken through helpers
//! ([`HelperId`]); `r0` at exit is a [`ReturnCode`].
//!
//! # Anchors
//!
//! For each [`Operation`] a package may attach one [`Anchor::Replace`] pluglet
//! (it takes the decision, replacing the host's default policy) and any number
//! of [`Anchor::Post`] pluglets (observers that run afterwards). Observers may
//! read the context, query helpers and update their own state, but any helper
//! that takes a decision traps when called from an observer: read-only context
//! is enforced, not merely documented. `on_recovered` and `on_loss` are
//! notifications and accept observers only.
//!
//! # Example: what a pluglet sees
//!
//! ```
//! use fec_plugin_sdk::abi::{Context, Operation, ReturnCode, SourceContext, CONTEXT_AREA_SIZE};
//!
//! // The host writes the context at the start of the region...
//! let ctx = SourceContext { now_us: 5, seq: 9, flow: 3, len: 1200 };
//! let mut region = [0u8; CONTEXT_AREA_SIZE];
//! ctx.write_to(&mut region);
//! // ...where the bytecode reads each field at its C offset.
//! let flow = SourceContext::FIELDS.iter().find(|f| f.name == "flow").unwrap();
//! assert_eq!(region[flow.offset..flow.offset + flow.size], 3u32.to_le_bytes());
//! // Section names and r0 map back to the ABI's enums.
//! assert_eq!(Operation::from_name("on_source"), Some(SourceContext::OPERATION));
//! assert_eq!(ReturnCode::from_raw(1), Some(ReturnCode::Default));
//! assert_eq!(ReturnCode::from_raw(7), None); // a fault at run time
//! ```

#![forbid(unsafe_code)]

/// Size of the context window at the start of every instance region.
pub const CONTEXT_AREA_SIZE: usize = 128;
/// Offset of the plugin's persistent state inside its region.
pub const STATE_OFFSET: usize = CONTEXT_AREA_SIZE;
/// Smallest memory region a manifest may ask for.
pub const MIN_MEMORY_SIZE: u32 = 256;
/// Largest memory region a manifest may ask for (64 KiB).
pub const MAX_MEMORY_SIZE: u32 = 65536;
/// Most instructions in one pluglet (the interpreter's jump arithmetic is 16-bit).
pub const MAX_INSTRUCTIONS: usize = 32767;
/// Most repair symbols one call may request through `fec_emit_repair`.
pub const MAX_REPAIR_PER_CALL: u32 = 64;
/// Largest window `fec_window_set` accepts, in source symbols.
pub const MAX_WINDOW: u32 = 256;
/// Largest message `fec_log` accepts, in bytes.
pub const MAX_LOG_LEN: u32 = 200;
/// Most helper calls one pluglet execution may make before it traps.
pub const MAX_HELPER_CALLS: u32 = 256;
/// Paths a host reports to `fec_path_stat` and accepts in `fec_repair_path`
/// (ids `0..MAX_PATHS`; path 0 is the transport's first). Mirrors
/// `fec_core::layer::paths::MAX_PATHS`.
pub const MAX_PATHS: u32 = 4;
/// `fec_repair_path(PATH_OTHER)`: repairs take the validated path losing
/// least other than the one the newest source took (mirrors
/// `fec_core::layer::paths::OTHER_PATH`).
pub const PATH_OTHER: u8 = 0xff;

/// A protocol operation: the point in the FEC pipeline where the host calls the plugin.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// Once, when the plugin is loaded for a connection: choose the scheme and parameters.
    Configure = 1,
    /// A packet is about to be sent: protect it (`fec_protect`) or not.
    OnSource = 2,
    /// After sources were queued: how many repair symbols to send now (`fec_emit_repair`).
    ScheduleRepair = 3,
    /// A receiver report arrived: losses, recoveries, burst lengths, RTT.
    OnFeedback = 4,
    /// Notification: the decoder recovered a packet (observers only).
    OnRecovered = 5,
    /// Notification: a packet was declared lost and not recovered (observers only).
    OnLoss = 6,
}

impl Operation {
    /// Every operation, in id order.
    pub const ALL: [Operation; 6] = [
        Operation::Configure,
        Operation::OnSource,
        Operation::ScheduleRepair,
        Operation::OnFeedback,
        Operation::OnRecovered,
        Operation::OnLoss,
    ];

    /// The operation with this id.
    pub fn from_id(id: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|op| *op as u32 == id)
    }

    /// The name used in manifests, ELF section names and the C header.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Configure => "configure",
            Operation::OnSource => "on_source",
            Operation::ScheduleRepair => "schedule_repair",
            Operation::OnFeedback => "on_feedback",
            Operation::OnRecovered => "on_recovered",
            Operation::OnLoss => "on_loss",
        }
    }

    /// The operation with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Whether a `replace` pluglet may be attached (notifications take observers only).
    pub fn accepts_replace(self) -> bool {
        !matches!(self, Operation::OnRecovered | Operation::OnLoss)
    }

    /// Size in bytes of this operation's context struct.
    pub fn context_size(self) -> usize {
        match self {
            Operation::Configure => core::mem::size_of::<ConfigureContext>(),
            Operation::OnSource => core::mem::size_of::<SourceContext>(),
            Operation::ScheduleRepair => core::mem::size_of::<ScheduleContext>(),
            Operation::OnFeedback => core::mem::size_of::<FeedbackContext>(),
            Operation::OnRecovered => core::mem::size_of::<RecoveredContext>(),
            Operation::OnLoss => core::mem::size_of::<LossContext>(),
        }
    }
}

/// Where a pluglet attaches to an operation.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Anchor {
    /// Takes the decision; at most one per operation.
    Replace = 1,
    /// Observes after the decision; read-only, any number.
    Post = 2,
}

impl Anchor {
    /// The anchor with this id.
    pub fn from_id(id: u32) -> Option<Self> {
        match id {
            1 => Some(Anchor::Replace),
            2 => Some(Anchor::Post),
            _ => None,
        }
    }

    /// The name used in manifests and ELF section names.
    pub fn name(self) -> &'static str {
        match self {
            Anchor::Replace => "replace",
            Anchor::Post => "post",
        }
    }

    /// The anchor with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "replace" => Some(Anchor::Replace),
            "post" => Some(Anchor::Post),
            _ => None,
        }
    }
}

/// Helper functions a pluglet may call (`call N` with N the id).
///
/// Every helper checks each argument against the calling instance; a bad
/// argument traps the pluglet (the instance is disabled with the reason).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HelperId {
    /// `fec_protect(flow)`: protect the packet of this `on_source` call; `flow`
    /// must equal the context's flow. Decision helper (replace only). Returns 0.
    Protect = 1,
    /// `fec_emit_repair(count)`: send `count` (1..=64) repair symbols now.
    /// Decision helper. Returns `count`.
    EmitRepair = 2,
    /// `fec_window_set(n)`: set the coding window / block to `n` (1..=256)
    /// source symbols. Decision helper. Returns 0.
    WindowSet = 3,
    /// `fec_stat(key)`: a pipeline counter ([`StatKey`]); unknown keys trap.
    Stat = 4,
    /// `fec_now_us()`: the host's clock in microseconds (time is a parameter of
    /// every call, so runs are reproducible).
    NowUs = 5,
    /// `fec_log(offset, len)`: log `len` (<= 200) bytes of UTF-8 found at
    /// `offset` in the instance region. Returns 0.
    Log = 6,
    /// `fec_set_code(scheme, source_symbols, repair_symbols)`: choose the code
    /// ([`Scheme`]) and its rate; usually from `configure` or `on_feedback`.
    /// Decision helper. Returns 0.
    SetCode = 7,
    /// `fec_repair_after(n)`: a hint that `schedule_repair` has nothing to do
    /// until `sources_since_repair >= n` (1..=256), so the host may skip those
    /// calls; plugins must behave the same whether or not the host skips.
    /// Valid in `configure`, `on_feedback` and `schedule_repair`. Decision
    /// helper. Returns 0.
    RepairAfter = 8,
    /// `fec_repair_repeat(k)`: a hint that the next `k` (1..=256) calls to
    /// `schedule_repair` would take this call's repair decision again (the
    /// same `fec_emit_repair` total, with the same `fec_repair_after`
    /// spacing, and the same `fec_repair_path` choice if it made one), so the
    /// host may skip them and send that many repair symbols itself, on that
    /// path, each time a call is due. A host drops the hint when `on_feedback`
    /// or `configure` runs a pluglet. Plugins must behave the same whether or
    /// not the host skips. Valid in `schedule_repair`. Decision helper.
    /// Returns 0.
    RepairRepeat = 9,
    /// `fec_path_stat(path, key)`: a value of path `path` ([`PathStatKey`]);
    /// a path `>= MAX_PATHS` or an unknown key traps. Paths not in use read
    /// state [`PathState::Unused`] and zeros. Valid everywhere.
    PathStat = 10,
    /// `fec_repair_path(path)`: repair symbols take path `path`
    /// (`< MAX_PATHS`, or [`PATH_OTHER`]: not the newest source's path; else
    /// it traps) from now on; the host keeps the last
    /// choice, and sends a repair on the validated path losing least while
    /// the chosen one is not validated. Valid wherever decisions are.
    /// Decision helper. Returns 0.
    RepairPath = 11,
}

impl HelperId {
    /// Every helper, in id order.
    pub const ALL: [HelperId; 11] = [
        HelperId::Protect,
        HelperId::EmitRepair,
        HelperId::WindowSet,
        HelperId::Stat,
        HelperId::NowUs,
        HelperId::Log,
        HelperId::SetCode,
        HelperId::RepairAfter,
        HelperId::RepairRepeat,
        HelperId::PathStat,
        HelperId::RepairPath,
    ];

    /// The helper with this id.
    pub fn from_id(id: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|h| *h as u32 == id)
    }

    /// The C name of the helper.
    pub fn name(self) -> &'static str {
        match self {
            HelperId::Protect => "fec_protect",
            HelperId::EmitRepair => "fec_emit_repair",
            HelperId::WindowSet => "fec_window_set",
            HelperId::Stat => "fec_stat",
            HelperId::NowUs => "fec_now_us",
            HelperId::Log => "fec_log",
            HelperId::SetCode => "fec_set_code",
            HelperId::RepairAfter => "fec_repair_after",
            HelperId::RepairRepeat => "fec_repair_repeat",
            HelperId::PathStat => "fec_path_stat",
            HelperId::RepairPath => "fec_repair_path",
        }
    }

    /// The helper with this C name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.name() == name)
    }

    /// Whether the helper takes a decision, and so traps in a `post` observer.
    pub fn is_decision(self) -> bool {
        matches!(
            self,
            HelperId::Protect
                | HelperId::EmitRepair
                | HelperId::WindowSet
                | HelperId::SetCode
                | HelperId::RepairAfter
                | HelperId::RepairRepeat
                | HelperId::RepairPath
        )
    }
}

/// Keys for `fec_stat`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatKey {
    /// Source symbols sent.
    SourcesSent = 0,
    /// Repair symbols sent.
    RepairSent = 1,
    /// Symbols received (receiver side).
    Received = 2,
    /// Packets recovered by FEC.
    Recovered = 3,
    /// Packets lost and not recovered.
    Unrecoverable = 4,
    /// Symbols rejected as malformed.
    Rejected = 5,
    /// Source symbols currently in the coding window.
    WindowLen = 6,
}

impl StatKey {
    /// Every key, in id order.
    pub const ALL: [StatKey; 7] = [
        StatKey::SourcesSent,
        StatKey::RepairSent,
        StatKey::Received,
        StatKey::Recovered,
        StatKey::Unrecoverable,
        StatKey::Rejected,
        StatKey::WindowLen,
    ];

    /// The key with this id.
    pub fn from_id(id: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|k| *k as u64 == id)
    }
}

/// Where a path stands, as `fec_path_stat(path, FEC_PATH_STAT_STATE)` reads
/// it; ids mirror `fec_core::layer::paths::PathState`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathState {
    /// Not in use (and every value of the path reads 0).
    #[default]
    Unused = 0,
    /// Opened, not answered yet: carries nothing but probes.
    Opening = 1,
    /// Answers probes: carries traffic, and repairs when chosen.
    Validated = 2,
    /// Went silent: carries nothing but probes.
    Failed = 3,
    /// Silent for too long: not probed any more.
    Abandoned = 4,
}

impl PathState {
    /// Every state, in id order.
    pub const ALL: [PathState; 5] = [
        PathState::Unused,
        PathState::Opening,
        PathState::Validated,
        PathState::Failed,
        PathState::Abandoned,
    ];

    /// The state with this id.
    pub fn from_id(id: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| *s as u64 == id)
    }
}

/// Keys for `fec_path_stat`: what one path carried, for this end's sending
/// direction (loss, RTT, sent) and the peer's (received). A datagram is
/// counted on its path once the host routed it, after the call that made it:
/// during a source's own `on_source` and `schedule_repair` it is not yet.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathStatKey {
    /// The path's [`PathState`] id.
    State = 0,
    /// Loss rate of this end's datagrams on the path, per mille (0 until
    /// measured).
    LossPermille = 1,
    /// Smoothed probe round-trip time in microseconds; 0 while unknown (a
    /// measured one reads at least 1).
    RttUs = 2,
    /// Datagrams this end sent on the path.
    SentDatagrams = 3,
    /// Bytes of those.
    SentBytes = 4,
    /// Source packets among them.
    SourcePackets = 5,
    /// Repair packets among them.
    RepairPackets = 6,
    /// Datagrams from the peer that arrived on the path.
    ReceivedDatagrams = 7,
    /// Bytes of those.
    ReceivedBytes = 8,
}

impl PathStatKey {
    /// Every key, in id order.
    pub const ALL: [PathStatKey; 9] = [
        PathStatKey::State,
        PathStatKey::LossPermille,
        PathStatKey::RttUs,
        PathStatKey::SentDatagrams,
        PathStatKey::SentBytes,
        PathStatKey::SourcePackets,
        PathStatKey::RepairPackets,
        PathStatKey::ReceivedDatagrams,
        PathStatKey::ReceivedBytes,
    ];

    /// The key with this id.
    pub fn from_id(id: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|k| *k as u64 == id)
    }

    /// The key's name in the header (`FEC_PATH_STAT_<name>`).
    pub fn c_suffix(self) -> &'static str {
        match self {
            PathStatKey::State => "STATE",
            PathStatKey::LossPermille => "LOSS_PERMILLE",
            PathStatKey::RttUs => "RTT_US",
            PathStatKey::SentDatagrams => "SENT_DATAGRAMS",
            PathStatKey::SentBytes => "SENT_BYTES",
            PathStatKey::SourcePackets => "SOURCE_PACKETS",
            PathStatKey::RepairPackets => "REPAIR_PACKETS",
            PathStatKey::ReceivedDatagrams => "RECEIVED_DATAGRAMS",
            PathStatKey::ReceivedBytes => "RECEIVED_BYTES",
        }
    }
}

/// Codes a plugin chooses with `fec_set_code`; ids mirror `fec_core::pipeline::Scheme`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    /// No FEC.
    None = 0,
    /// Block Reed-Solomon.
    ReedSolomon = 1,
    /// RFC 8681 sliding-window random linear code.
    Rlc = 2,
    /// RFC 6330 RaptorQ.
    RaptorQ = 3,
}

impl Scheme {
    /// The scheme with this id.
    pub fn from_id(id: u64) -> Option<Self> {
        match id {
            0 => Some(Scheme::None),
            1 => Some(Scheme::ReedSolomon),
            2 => Some(Scheme::Rlc),
            3 => Some(Scheme::RaptorQ),
            _ => None,
        }
    }
}

/// What a pluglet returns in `r0`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReturnCode {
    /// Done; the decisions taken through helpers stand.
    Ok = 0,
    /// No opinion: the host applies its default policy for this call.
    Default = 1,
    /// The plugin reports a failure; the host disables it (fallback: no FEC).
    Error = 2,
}

impl ReturnCode {
    /// The code for a raw `r0` value; anything unknown is `None` (a fault).
    pub fn from_raw(raw: u64) -> Option<Self> {
        match raw {
            0 => Some(ReturnCode::Ok),
            1 => Some(ReturnCode::Default),
            2 => Some(ReturnCode::Error),
            _ => None,
        }
    }
}

/// Name, offset and size of one context field (used to check the C header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldLayout {
    /// Field name, identical in C.
    pub name: &'static str,
    /// Byte offset in the struct.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
}

/// A `#[repr(C)]` context struct that a host passes to one operation.
pub trait Context: Copy + core::fmt::Debug {
    /// The operation this context belongs to.
    const OPERATION: Operation;
    /// The struct's name in `fec_plugin.h`.
    const C_NAME: &'static str;
    /// Field layout, in declaration order.
    const FIELDS: &'static [FieldLayout];
    /// Serialise (little-endian, C layout) into `out`, which is at least
    /// `size_of::<Self>()` long.
    fn write_to(&self, out: &mut [u8]);
}

macro_rules! contexts {
    ($(
        $(#[$meta:meta])*
        $name:ident => $cname:literal, $op:expr, {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)?
        }
    )*) => {$(
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl Context for $name {
            const OPERATION: Operation = $op;
            const C_NAME: &'static str = $cname;
            const FIELDS: &'static [FieldLayout] = &[$(
                FieldLayout {
                    name: stringify!($field),
                    offset: core::mem::offset_of!($name, $field),
                    size: core::mem::size_of::<$ty>(),
                },
            )*];
            fn write_to(&self, out: &mut [u8]) {
                $(
                    let at = core::mem::offset_of!($name, $field);
                    let bytes = self.$field.to_le_bytes();
                    out[at..at + bytes.len()].copy_from_slice(&bytes);
                )*
            }
        }
    )*};
}

contexts! {
    /// Context of [`Operation::Configure`].
    ConfigureContext => "fec_configure_ctx", Operation::Configure, {
        /// Host clock, microseconds.
        now_us: u64,
        /// Bit `1 << scheme` is set for every [`Scheme`] the host supports.
        schemes_offered: u32,
        /// Symbol size in bytes the host uses.
        symbol_size: u32,
        /// Largest window the host accepts.
        max_window: u32,
        /// Largest `fec_emit_repair` count per call.
        max_repair_per_call: u32,
    }

    /// Context of [`Operation::OnSource`].
    SourceContext => "fec_source_ctx", Operation::OnSource, {
        /// Host clock, microseconds.
        now_us: u64,
        /// Sequence number of this source packet.
        seq: u64,
        /// Flow the packet belongs to (a handle: pass it to `fec_protect`).
        flow: u32,
        /// Packet length in bytes.
        len: u32,
    }

    /// Context of [`Operation::ScheduleRepair`].
    ScheduleContext => "fec_schedule_ctx", Operation::ScheduleRepair, {
        /// Host clock, microseconds.
        now_us: u64,
        /// Protected sources sent since the last repair symbol.
        sources_since_repair: u32,
        /// Source symbols currently in the coding window.
        window_len: u32,
        /// Current window / block size setting.
        window_target: u32,
        /// Most repair symbols the host accepts now (congestion budget).
        repair_budget: u32,
    }

    /// Context of [`Operation::OnFeedback`]: one receiver report.
    FeedbackContext => "fec_feedback_ctx", Operation::OnFeedback, {
        /// Host clock, microseconds.
        now_us: u64,
        /// Smoothed round-trip time, microseconds.
        rtt_us: u64,
        /// Packets the receiver got in the reported interval.
        received: u32,
        /// Packets lost in the interval (before FEC).
        lost: u32,
        /// Lost packets that FEC recovered.
        recovered: u32,
        /// Longest burst of consecutive losses.
        max_burst: u32,
        /// Mean burst length times 16 (fixed point).
        mean_burst_x16: u32,
        /// Zero; keeps the layout 8-byte aligned.
        reserved: u32,
    }

    /// Context of [`Operation::OnRecovered`].
    RecoveredContext => "fec_recovered_ctx", Operation::OnRecovered, {
        /// Host clock, microseconds.
        now_us: u64,
        /// Sequence number of the recovered packet.
        seq: u64,
        /// Its flow.
        flow: u32,
        /// Its length in bytes.
        len: u32,
    }

    /// Context of [`Operation::OnLoss`].
    LossContext => "fec_loss_ctx", Operation::OnLoss, {
        /// Host clock, microseconds.
        now_us: u64,
        /// Sequence number of the lost packet.
        seq: u64,
        /// Length of the loss burst it ends or belongs to.
        burst_len: u32,
        /// Zero; keeps the layout 8-byte aligned.
        reserved: u32,
    }
}

/// Every context's C name, operation and layout (used by the header test and docs).
pub fn context_layouts() -> [(&'static str, Operation, usize, &'static [FieldLayout]); 6] {
    fn entry<C: Context>() -> (&'static str, Operation, usize, &'static [FieldLayout]) {
        (
            C::C_NAME,
            C::OPERATION,
            core::mem::size_of::<C>(),
            C::FIELDS,
        )
    }
    [
        entry::<ConfigureContext>(),
        entry::<SourceContext>(),
        entry::<ScheduleContext>(),
        entry::<FeedbackContext>(),
        entry::<RecoveredContext>(),
        entry::<LossContext>(),
    ]
}

/// Every named constant of the ABI as `(C name, value)`, as `fec_plugin.h` defines them.
pub fn constants() -> Vec<(String, u64)> {
    let mut out = vec![
        (
            "FEC_CONTEXT_AREA_SIZE".to_string(),
            CONTEXT_AREA_SIZE as u64,
        ),
        ("FEC_STATE_OFFSET".to_string(), STATE_OFFSET as u64),
        ("FEC_MIN_MEMORY_SIZE".to_string(), MIN_MEMORY_SIZE as u64),
        ("FEC_MAX_MEMORY_SIZE".to_string(), MAX_MEMORY_SIZE as u64),
        (
            "FEC_MAX_REPAIR_PER_CALL".to_string(),
            MAX_REPAIR_PER_CALL as u64,
        ),
        ("FEC_MAX_WINDOW".to_string(), MAX_WINDOW as u64),
        ("FEC_MAX_LOG_LEN".to_string(), MAX_LOG_LEN as u64),
        ("FEC_MAX_PATHS".to_string(), u64::from(MAX_PATHS)),
        ("FEC_PATH_OTHER".to_string(), u64::from(PATH_OTHER)),
        ("FEC_RC_OK".to_string(), ReturnCode::Ok as u64),
        ("FEC_RC_DEFAULT".to_string(), ReturnCode::Default as u64),
        ("FEC_RC_ERROR".to_string(), ReturnCode::Error as u64),
        ("FEC_ANCHOR_REPLACE".to_string(), Anchor::Replace as u64),
        ("FEC_ANCHOR_POST".to_string(), Anchor::Post as u64),
        ("FEC_SCHEME_NONE".to_string(), Scheme::None as u64),
        (
            "FEC_SCHEME_REED_SOLOMON".to_string(),
            Scheme::ReedSolomon as u64,
        ),
        ("FEC_SCHEME_RLC".to_string(), Scheme::Rlc as u64),
        ("FEC_SCHEME_RAPTORQ".to_string(), Scheme::RaptorQ as u64),
    ];
    for op in Operation::ALL {
        out.push((format!("FEC_OP_{}", op.name().to_uppercase()), op as u64));
    }
    for helper in HelperId::ALL {
        out.push((
            format!(
                "FEC_HELPER_{}",
                helper.name()["fec_".len()..].to_uppercase()
            ),
            helper as u64,
        ));
    }
    let stat_names = [
        "SOURCES_SENT",
        "REPAIR_SENT",
        "RECEIVED",
        "RECOVERED",
        "UNRECOVERABLE",
        "REJECTED",
        "WINDOW_LEN",
    ];
    for (key, name) in StatKey::ALL.into_iter().zip(stat_names) {
        out.push((format!("FEC_STAT_{name}"), key as u64));
    }
    for state in PathState::ALL {
        out.push((
            format!("FEC_PATH_{}", format!("{state:?}").to_uppercase()),
            state as u64,
        ));
    }
    for key in PathStatKey::ALL {
        out.push((format!("FEC_PATH_STAT_{}", key.c_suffix()), key as u64));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for op in Operation::ALL {
            assert_eq!(Operation::from_id(op as u32), Some(op));
            assert_eq!(Operation::from_name(op.name()), Some(op));
            assert!(op.context_size() <= CONTEXT_AREA_SIZE);
        }
        for h in HelperId::ALL {
            assert_eq!(HelperId::from_id(h as u32), Some(h));
            assert_eq!(HelperId::from_name(h.name()), Some(h));
        }
        assert_eq!(HelperId::from_id(0), None);
        assert_eq!(Operation::from_id(7), None);
        for (i, key) in PathStatKey::ALL.into_iter().enumerate() {
            assert_eq!(key as usize, i);
            assert_eq!(PathStatKey::from_id(i as u64), Some(key));
        }
        assert_eq!(PathStatKey::from_id(PathStatKey::ALL.len() as u64), None);
        for (i, state) in PathState::ALL.into_iter().enumerate() {
            assert_eq!(PathState::from_id(i as u64), Some(state));
        }
        assert_eq!(PathState::from_id(5), None);
        assert!(HelperId::RepairPath.is_decision());
        assert!(!HelperId::PathStat.is_decision());
    }

    #[test]
    fn context_serialises_little_endian_at_c_offsets() {
        let ctx = SourceContext {
            now_us: 0x0102_0304_0506_0708,
            seq: 9,
            flow: 0xAABB_CCDD,
            len: 1280,
        };
        let mut out = [0u8; 24];
        ctx.write_to(&mut out);
        assert_eq!(&out[0..8], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(&out[8..16], &9u64.to_le_bytes());
        assert_eq!(&out[16..20], &0xAABB_CCDDu32.to_le_bytes());
        assert_eq!(&out[20..24], &1280u32.to_le_bytes());
    }
}
