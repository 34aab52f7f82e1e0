/* Adaptive sliding-window RLC: the code rate follows the receiver's reports.
 *
 * on_feedback turns the reported loss rate and burst length (over reports
 * adding up to MIN_SAMPLE sources or more) into a target
 * redundancy of 2 x loss + 2% (clamped to 3%..50%), and sends repair symbols
 * in groups as large as the longest burst (1..8), so one group can fill a
 * whole burst: a group of `group` repairs after every `every` sources, with
 * every = group / target. Before any report it spends little (1 in 16).
 * on_loss observes unrecovered losses; schedule_repair applies the rate, and
 * fec_repair_after tells the host when the next group is due. Every packet
 * is protected by the host's default (no on_source pluglet).
 * No loops: the verifier rejects backward jumps. */
#include "fec_plugin.h"

#define WINDOW 64

struct adaptive_state {
    fec_u64 every;            /* sources between repair groups */
    fec_u64 group;            /* repair symbols per group */
    fec_u64 target_permille;  /* last computed redundancy target */
    fec_u64 unrecovered;      /* losses reported by on_loss */
    fec_u64 seen;             /* sources of reports not decided on yet */
    fec_u64 seen_lost;        /* of those, lost */
    fec_u64 seen_burst;       /* their longest burst */
};

/* Reports are decided on once they add up to this many sources: a report of
 * a few packets (the tail before an idle spell, or a sparse stream's 50 ms)
 * says next to nothing about the loss rate either way. */
#define MIN_SAMPLE 32

FEC_PLUGLET(replace, configure)
int configure(void *mem)
{
    struct adaptive_state *s = FEC_STATE(struct adaptive_state, mem);
    s->every = 16;
    s->group = 1;
    s->target_permille = 62;
    fec_set_code(FEC_SCHEME_RLC, WINDOW, 8);
    fec_window_set(WINDOW);
    fec_repair_after(16);
    return FEC_RC_OK;
}

FEC_PLUGLET(replace, on_feedback)
int on_feedback(void *mem)
{
    struct fec_feedback_ctx *ctx = mem;
    struct adaptive_state *s = FEC_STATE(struct adaptive_state, mem);
    fec_u64 total, lost, loss_permille;
    fec_u64 target, group, every;

    s->seen += (fec_u64)ctx->received + ctx->lost;
    s->seen_lost += ctx->lost;
    if (ctx->max_burst > s->seen_burst)
        s->seen_burst = ctx->max_burst;
    if (s->seen < MIN_SAMPLE)
        return FEC_RC_OK;
    total = s->seen;
    lost = s->seen_lost;
    group = s->seen_burst;
    s->seen = 0;
    s->seen_lost = 0;
    s->seen_burst = 0;
    loss_permille = lost * 1000 / total;
    target = 2 * loss_permille + 20;
    if (target < 30)
        target = 30;
    if (target > 500)
        target = 500;
    if (group < 1)
        group = 1;
    if (group > 8)
        group = 8;
    every = group * 1000 / target;
    if (every < 1)
        every = 1;
    if (every > 32)
        every = 32;
    s->every = every;
    s->group = group;
    s->target_permille = target;
    fec_repair_after(every);
    return FEC_RC_OK;
}

FEC_PLUGLET(replace, schedule_repair)
int schedule_repair(void *mem)
{
    struct fec_schedule_ctx *ctx = mem;
    struct adaptive_state *s = FEC_STATE(struct adaptive_state, mem);
    fec_u64 group = s->group;
    if (ctx->sources_since_repair < s->every)
        return FEC_RC_OK;
    if (group > ctx->repair_budget)
        group = ctx->repair_budget;
    if (group > 0)
        fec_emit_repair(group);
    return FEC_RC_OK;
}

FEC_PLUGLET(post, on_loss)
int on_loss(void *mem)
{
    struct adaptive_state *s = FEC_STATE(struct adaptive_state, mem);
    s->unrecovered++;
    return FEC_RC_OK;
}
