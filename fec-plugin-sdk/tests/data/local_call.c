#include "fec_plugin.h"
/* Hostile: a function that is not inlined becomes a bpf-to-bpf call with an R_BPF_64_32 relocation. */
__attribute__((noinline)) static int pick(struct fec_source_ctx *ctx) {
    return ctx->len > 1000 ? 1 : 0;
}
FEC_PLUGLET(replace, on_source)
int on_source(void *mem) {
    if (pick(mem)) fec_protect(((struct fec_source_ctx *)mem)->flow);
    return FEC_RC_OK;
}
