/* Block Reed-Solomon: every packet is protected; each block of
 * RS_SOURCES sources is closed with RS_REPAIR parity symbols, so any
 * RS_REPAIR losses among the RS_SOURCES + RS_REPAIR packets are recovered.
 * Redundancy: RS_REPAIR / RS_SOURCES = 25%. */
/* No on_source pluglet: the host's default protects every packet, and the
 * fec_repair_after hint spares the calls to schedule_repair that would
 * decide nothing, so the plugin costs one VM call per repair decision. */
#include "fec_plugin.h"

#define RS_SOURCES 8
#define RS_REPAIR 2

FEC_PLUGLET(replace, configure)
int configure(void *mem)
{
    fec_set_code(FEC_SCHEME_REED_SOLOMON, RS_SOURCES, RS_REPAIR);
    fec_window_set(RS_SOURCES);
    fec_repair_after(RS_SOURCES);
    return FEC_RC_OK;
}

FEC_PLUGLET(replace, schedule_repair)
int schedule_repair(void *mem)
{
    struct fec_schedule_ctx *ctx = mem;
    if (ctx->sources_since_repair >= RS_SOURCES)
        fec_emit_repair(RS_REPAIR);
    return FEC_RC_OK;
}
