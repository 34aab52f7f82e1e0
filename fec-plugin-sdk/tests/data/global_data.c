#include "fec_plugin.h"
/* Hostile: global state outside the instance region needs an R_BPF_64_64 relocation. */
fec_u64 counter;
FEC_PLUGLET(replace, on_source)
int on_source(void *mem) {
    counter++;
    return FEC_RC_OK;
}
