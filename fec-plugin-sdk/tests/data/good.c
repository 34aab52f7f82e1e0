#include "fec_plugin.h"
struct state { fec_u64 count; fec_u32 k; };
FEC_PLUGLET(replace, on_source)
int on_source(void *mem) {
    struct fec_source_ctx *ctx = mem;
    struct state *s = FEC_STATE(struct state, mem);
    s->count++;
    fec_protect(ctx->flow);
    return FEC_RC_OK;
}
FEC_PLUGLET(replace, schedule_repair)
int sched(void *mem) {
    struct fec_schedule_ctx *ctx = mem;
    if (ctx->sources_since_repair >= 4) fec_emit_repair(1);
    return FEC_RC_OK;
}
