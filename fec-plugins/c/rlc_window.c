/* Sliding-window RLC (RFC 8681): every packet is protected; one repair
 * symbol over the last RLC_WINDOW sources after every RLC_EVERY sources.
 * Redundancy: 1 / RLC_EVERY = 25%. A repair symbol covers the whole window,
 * so losses are recovered as long as the window holds at least as many
 * repair symbols as lost sources. */
#include "fec_plugin.h"

#define RLC_WINDOW 32
#define RLC_EVERY 4

FEC_PLUGLET(replace, configure)
int configure(void *mem)
{
    fec_set_code(FEC_SCHEME_RLC, RLC_WINDOW, 1);
    fec_window_set(RLC_WINDOW);
    return FEC_RC_OK;
}

FEC_PLUGLET(replace, on_source)
int on_source(void *mem)
{
    struct fec_source_ctx *ctx = mem;
    fec_protect(ctx->flow);
    return FEC_RC_OK;
}

FEC_PLUGLET(replace, schedule_repair)
int schedule_repair(void *mem)
{
    struct fec_schedule_ctx *ctx = mem;
    if (ctx->sources_since_repair >= RLC_EVERY)
        fec_emit_repair(1);
    return FEC_RC_OK;
}
