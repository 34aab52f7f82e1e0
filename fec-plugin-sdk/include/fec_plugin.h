/* fec_plugin.h -- the ABI between FEC plugins and their host.
 *
 * Mirrors fec_plugin_sdk::abi (Rust); a test in fec-plugin-sdk parses this file
 * and fails if a value, struct field, offset or helper id differs.
 *
 * Build a plugin with:  clang -O2 -target bpf -c plugin.c -o plugin.o
 *
 * A pluglet is a function placed in a section named "<anchor>/<operation>",
 * e.g. FEC_PLUGLET(replace, on_source). It is called with a pointer to the
 * instance's memory region: the operation's context at offset 0 (rewritten
 * before every call, input only), the plugin's persistent state from
 * FEC_STATE_OFFSET on. It returns an FEC_RC_* code. Decisions are taken by
 * calling helpers; observers ("post") may not call decision helpers.
 * Loops are not allowed (the verifier rejects backward jumps): unroll them.
 */
#ifndef FEC_PLUGIN_H
#define FEC_PLUGIN_H

typedef unsigned char fec_u8;
typedef unsigned int fec_u32;
typedef unsigned long long fec_u64;

/* Memory region layout and limits. */
#define FEC_CONTEXT_AREA_SIZE 128
#define FEC_STATE_OFFSET 128
#define FEC_MIN_MEMORY_SIZE 256
#define FEC_MAX_MEMORY_SIZE 65536
#define FEC_MAX_REPAIR_PER_CALL 64
#define FEC_MAX_WINDOW 256
#define FEC_MAX_LOG_LEN 200

/* Return codes (r0). */
#define FEC_RC_OK 0
#define FEC_RC_DEFAULT 1
#define FEC_RC_ERROR 2

/* Anchors. */
#define FEC_ANCHOR_REPLACE 1
#define FEC_ANCHOR_POST 2

/* Protocol operations. */
#define FEC_OP_CONFIGURE 1
#define FEC_OP_ON_SOURCE 2
#define FEC_OP_SCHEDULE_REPAIR 3
#define FEC_OP_ON_FEEDBACK 4
#define FEC_OP_ON_RECOVERED 5
#define FEC_OP_ON_LOSS 6

/* Schemes for fec_set_code. */
#define FEC_SCHEME_NONE 0
#define FEC_SCHEME_REED_SOLOMON 1
#define FEC_SCHEME_RLC 2
#define FEC_SCHEME_RAPTORQ 3

/* Keys for fec_stat. */
#define FEC_STAT_SOURCES_SENT 0
#define FEC_STAT_REPAIR_SENT 1
#define FEC_STAT_RECEIVED 2
#define FEC_STAT_RECOVERED 3
#define FEC_STAT_UNRECOVERABLE 4
#define FEC_STAT_REJECTED 5
#define FEC_STAT_WINDOW_LEN 6

/* Paths (multipath): ids 0 .. FEC_MAX_PATHS - 1, path 0 is the transport's
 * first. A path not in use reads FEC_PATH_UNUSED and zeros. */
#define FEC_MAX_PATHS 4
/* fec_repair_path(FEC_PATH_OTHER): repairs on the validated path losing
 * least other than the one the newest source took. */
#define FEC_PATH_OTHER 255

/* Path states: fec_path_stat(path, FEC_PATH_STAT_STATE). */
#define FEC_PATH_UNUSED 0
#define FEC_PATH_OPENING 1
#define FEC_PATH_VALIDATED 2
#define FEC_PATH_FAILED 3
#define FEC_PATH_ABANDONED 4

/* Keys for fec_path_stat: loss, RTT and sent for this end's datagrams,
 * received for the peer's. RTT is 0 while unknown. */
#define FEC_PATH_STAT_STATE 0
#define FEC_PATH_STAT_LOSS_PERMILLE 1
#define FEC_PATH_STAT_RTT_US 2
#define FEC_PATH_STAT_SENT_DATAGRAMS 3
#define FEC_PATH_STAT_SENT_BYTES 4
#define FEC_PATH_STAT_SOURCE_PACKETS 5
#define FEC_PATH_STAT_REPAIR_PACKETS 6
#define FEC_PATH_STAT_RECEIVED_DATAGRAMS 7
#define FEC_PATH_STAT_RECEIVED_BYTES 8

/* Helper ids. */
#define FEC_HELPER_PROTECT 1
#define FEC_HELPER_EMIT_REPAIR 2
#define FEC_HELPER_WINDOW_SET 3
#define FEC_HELPER_STAT 4
#define FEC_HELPER_NOW_US 5
#define FEC_HELPER_LOG 6
#define FEC_HELPER_SET_CODE 7
#define FEC_HELPER_REPAIR_AFTER 8
#define FEC_HELPER_REPAIR_REPEAT 9
#define FEC_HELPER_PATH_STAT 10
#define FEC_HELPER_REPAIR_PATH 11

/* Contexts: all fields little-endian, natural alignment, no padding. */
struct fec_configure_ctx {
    fec_u64 now_us;
    fec_u32 schemes_offered;
    fec_u32 symbol_size;
    fec_u32 max_window;
    fec_u32 max_repair_per_call;
};

struct fec_source_ctx {
    fec_u64 now_us;
    fec_u64 seq;
    fec_u32 flow;
    fec_u32 len;
};

struct fec_schedule_ctx {
    fec_u64 now_us;
    fec_u32 sources_since_repair;
    fec_u32 window_len;
    fec_u32 window_target;
    fec_u32 repair_budget;
};

struct fec_feedback_ctx {
    fec_u64 now_us;
    fec_u64 rtt_us;
    fec_u32 received;
    fec_u32 lost;
    fec_u32 recovered;
    fec_u32 max_burst;
    fec_u32 mean_burst_x16;
    fec_u32 reserved;
};

struct fec_recovered_ctx {
    fec_u64 now_us;
    fec_u64 seq;
    fec_u32 flow;
    fec_u32 len;
};

struct fec_loss_ctx {
    fec_u64 now_us;
    fec_u64 seq;
    fec_u32 burst_len;
    fec_u32 reserved;
};

#ifdef __bpf__
/* Helpers: each compiles to `call N`. Offsets are into the instance region. */
static long (*fec_protect)(fec_u64 flow) = (void *)1;
static long (*fec_emit_repair)(fec_u64 count) = (void *)2;
static long (*fec_window_set)(fec_u64 n) = (void *)3;
static fec_u64 (*fec_stat)(fec_u64 key) = (void *)4;
static fec_u64 (*fec_now_us)(void) = (void *)5;
static long (*fec_log)(fec_u64 offset, fec_u64 len) = (void *)6;
static long (*fec_set_code)(fec_u64 scheme, fec_u64 source_symbols, fec_u64 repair_symbols) = (void *)7;
/* Hint: schedule_repair has nothing to do until sources_since_repair >= n. */
static long (*fec_repair_after)(fec_u64 n) = (void *)8;
/* Hint: the next k schedule_repair calls would decide what this one did. */
static long (*fec_repair_repeat)(fec_u64 k) = (void *)9;
/* A value of one path (path < FEC_MAX_PATHS, else the pluglet traps). */
static fec_u64 (*fec_path_stat)(fec_u64 path, fec_u64 key) = (void *)10;
/* Repairs take this path (or FEC_PATH_OTHER) from now on (a validated one
 * losing least while it is not validated). Decision helper. */
static long (*fec_repair_path)(fec_u64 path) = (void *)11;

#define FEC_PLUGLET(anchor, operation) \
    __attribute__((section(#anchor "/" #operation), used))

/* The plugin's persistent state, typed by the plugin author. */
#define FEC_STATE(type, mem) ((type *)((fec_u8 *)(mem) + FEC_STATE_OFFSET))
#endif

#endif /* FEC_PLUGIN_H */
