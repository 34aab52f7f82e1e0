/* Sliding-window RLC (RFC 8681): every packet is protected; one repair
 * symbol over the last RLC_WINDOW sources after every RLC_EVERY sources.
 * Redundancy: 1 / RLC_EVERY = 25%. A repair symbol covers the whole window,
 * so losses are recovered as long as the window holds at least as many
 * repair symbols as lost sources. */
/* No on_source pluglet: the host's default protects every packet; the
 * fec_repair_after hint spares the calls to schedule_repair that would
 * decide nothing, and since every repair decision is the same, the
 * fec_repair_repeat hint lets one call stand for a window's worth of them
 * (RLC_WINDOW / RLC_EVERY repairs), so the plugin costs one VM call per
 * window of sources. */
#include "fec_plugin.h"

#define RLC_WINDOW 32
#define RLC_EVERY 4

FEC_PLUGLET(replace, configure)
int configure(void *mem)
{
    fec_set_code(FEC_SCHEME_RLC, RLC_WINDOW, 1);
    fec_window_set(RLC_WINDOW);
    fec_repair_after(RLC_EVERY);
    return FEC_RC_OK;
}

FEC_PLUGLET(replace, schedule_repair)
int schedule_repair(void *mem)
{
    struct fec_schedule_ctx *ctx = mem;
    if (ctx->sources_since_repair >= RLC_EVERY) {
        fec_emit_repair(1);
        fec_repair_repeat(RLC_WINDOW / RLC_EVERY - 1);
    }
    return FEC_RC_OK;
}
