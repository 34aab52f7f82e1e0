/* Multipath: the tunnel plugin's sliding-window RLC, with its repairs on
 * the best path when the transport runs several.
 *
 * Redundancy is the tunnel plugin's (c/tunnel.c): sparse traffic on a link
 * losing at least 2% gets a repair right after each source, over a short
 * window; dense traffic earns repair credit from the bytes it sends, at a
 * target of (1 + mean burst) x loss + 3%, with a hold time after which the
 * oldest uncovered source is repaired anyway.
 *
 * Paths: at every on_feedback and schedule_repair the plugin reads each
 * path's state, loss and RTT (fec_path_stat). When the validated paths lose
 * alike (the worst at most twice the best plus 15%), repairs take
 * FEC_PATH_OTHER: never the path of the source they follow, so a cut path's
 * sources are repaired on the other without waiting for the cut to be
 * noticed. Otherwise repairs go on the validated path losing least (ties:
 * the shorter RTT, an unknown one last, then the lower id). With no
 * validated path it chooses nothing (the host keeps the last choice).
 *
 * The loss the target follows: on one path, the receiver's reports, over
 * about the last HISTORY sources (as the tunnel plugin). With more than one
 * validated path the sources are shared among them, and what they lose is
 * what the repairs must make good: the target follows the loss rates of the
 * validated paths, weighted by the sources each carried since the last
 * report (equal weights when none moved). The reports' loss counts are
 * taken for the whole connection all the same, so a return to one path
 * starts from a history that is up to date.
 * No loops: the verifier rejects backward jumps. */
#include "fec_plugin.h"

#define SPARSE_WINDOW 8
#define DENSE_WINDOW 128
#define SPARSE_GAP_US 1000
#define MIN_HOLD_US 1000
#define MAX_HOLD_US 20000
#define HOLD_SCALE 100000
#define PROMPT_LOSS_PERMILLE 20
#define MAX_GAP_US 1000000
#define MAX_BURST 4
#define HISTORY 200
#define OTHER_SLACK_PERMILLE 150
#define UNKNOWN_RTT 0xffffffffffffffffULL

struct multipath_state {
    fec_u64 last_source_us;   /* when the last source was protected */
    fec_u64 gap_us;           /* running mean of the gap between sources */
    fec_u64 first_pending_us; /* when the oldest uncovered source was sent */
    fec_u64 pending;          /* sources since the last repair */
    fec_u64 target;           /* redundancy, per mille of source bytes */
    fec_u64 hold_us;          /* longest wait of an uncovered source */
    fec_u64 loss_permille;    /* the loss the target follows */
    fec_u64 seen_x16;         /* sources reported, decayed, times 16 */
    fec_u64 lost_x16;         /* of which lost, decayed, times 16 */
    fec_u64 credit;           /* dense: source bytes x target earned */
    fec_u64 longest;          /* longest source since the last repair */
    fec_u64 window;           /* the window set last */
    fec_u64 validated;        /* validated paths at the last look */
    fec_u64 sources_on[FEC_MAX_PATHS]; /* each path's sources at the last report */
};

/* The best validated path so far, while looking at each in turn. */
struct best_path {
    fec_u64 path;
    fec_u64 loss;
    fec_u64 rtt;
    fec_u64 validated;
    fec_u64 worst;  /* the highest loss of a validated path */
};

static inline __attribute__((always_inline)) void consider(struct best_path *b, fec_u64 path)
{
    fec_u64 loss, rtt;

    if (fec_path_stat(path, FEC_PATH_STAT_STATE) != FEC_PATH_VALIDATED)
        return;
    loss = fec_path_stat(path, FEC_PATH_STAT_LOSS_PERMILLE);
    rtt = fec_path_stat(path, FEC_PATH_STAT_RTT_US);
    if (rtt == 0)
        rtt = UNKNOWN_RTT;
    b->validated++;
    if (loss > b->worst)
        b->worst = loss;
    /* Paths come in id order: a tie keeps the lower id. */
    if (b->validated == 1 || loss < b->loss || (loss == b->loss && rtt < b->rtt)) {
        b->path = path;
        b->loss = loss;
        b->rtt = rtt;
    }
}

/* Repairs on the validated path losing least; returns how many are validated. */
static inline __attribute__((always_inline)) fec_u64 choose_repair_path(void)
{
    struct best_path b = {0, 0, UNKNOWN_RTT, 0, 0};

    consider(&b, 0);
    consider(&b, 1);
    consider(&b, 2);
    consider(&b, 3);
    /* With two paths or more that lose alike (the worst at most twice the
     * best plus 15%), a repair never shares its source's path: a cut of one
     * leaves the repairs of what it carried, and what the lossier one loses
     * is repaired from the other. Far apart, repairs stay on the best. */
    if (b.validated > 1 && b.worst <= 2 * b.loss + OTHER_SLACK_PERMILLE)
        fec_repair_path(FEC_PATH_OTHER);
    else if (b.validated > 0)
        fec_repair_path(b.path);
    return b.validated;
}

/* Source-weighted loss of the validated paths. */
struct path_loss {
    fec_u64 weighted;  /* sum of sources x loss */
    fec_u64 sources;   /* sum of sources */
    fec_u64 loss_sum;  /* sum of loss, for equal weights */
    fec_u64 validated;
};

static inline __attribute__((always_inline)) void weigh(struct multipath_state *s,
                                                        struct path_loss *w, fec_u64 path)
{
    fec_u64 sent = fec_path_stat(path, FEC_PATH_STAT_SOURCE_PACKETS);
    fec_u64 since = sent >= s->sources_on[path] ? sent - s->sources_on[path] : 0;
    fec_u64 loss;

    s->sources_on[path] = sent;
    if (fec_path_stat(path, FEC_PATH_STAT_STATE) != FEC_PATH_VALIDATED)
        return;
    loss = fec_path_stat(path, FEC_PATH_STAT_LOSS_PERMILLE);
    if (loss > 1000)
        loss = 1000;
    /* A report interval carries far fewer than 2^40 sources. */
    if (since > (1ULL << 40))
        since = 1ULL << 40;
    w->weighted += since * loss;
    w->sources += since;
    w->loss_sum += loss;
    w->validated++;
}

FEC_PLUGLET(replace, configure)
int configure(void *mem)
{
    struct multipath_state *s = FEC_STATE(struct multipath_state, mem);
    s->last_source_us = 0;
    s->gap_us = MAX_GAP_US;
    s->first_pending_us = 0;
    s->pending = 0;
    s->target = 250;
    s->hold_us = MIN_HOLD_US;
    s->loss_permille = 100;
    s->seen_x16 = 0;
    s->lost_x16 = 0;
    s->credit = 0;
    s->longest = 0;
    s->window = SPARSE_WINDOW;
    s->validated = 0;
    s->sources_on[0] = 0;
    s->sources_on[1] = 0;
    s->sources_on[2] = 0;
    s->sources_on[3] = 0;
    fec_set_code(FEC_SCHEME_RLC, DENSE_WINDOW, 8);
    fec_window_set(SPARSE_WINDOW);
    return FEC_RC_OK;
}

FEC_PLUGLET(replace, on_source)
int on_source(void *mem)
{
    struct fec_source_ctx *ctx = mem;
    struct multipath_state *s = FEC_STATE(struct multipath_state, mem);
    fec_u64 gap = MAX_GAP_US;

    if (s->last_source_us != 0 && ctx->now_us >= s->last_source_us)
        gap = ctx->now_us - s->last_source_us;
    if (gap > MAX_GAP_US)
        gap = MAX_GAP_US;
    s->gap_us = (3 * s->gap_us + gap) / 4;
    s->last_source_us = ctx->now_us;
    if (s->pending == 0)
        s->first_pending_us = ctx->now_us;
    s->pending++;
    s->credit += (fec_u64)ctx->len * s->target;
    if (ctx->len > s->longest)
        s->longest = ctx->len;
    fec_protect(ctx->flow);
    return FEC_RC_OK;
}

FEC_PLUGLET(replace, schedule_repair)
int schedule_repair(void *mem)
{
    struct fec_schedule_ctx *ctx = mem;
    struct multipath_state *s = FEC_STATE(struct multipath_state, mem);
    fec_u64 window = DENSE_WINDOW;
    fec_u64 price = s->longest * 1000;
    int sparse = s->gap_us >= SPARSE_GAP_US && s->loss_permille >= PROMPT_LOSS_PERMILLE;

    s->validated = choose_repair_path();
    if (ctx->sources_since_repair == 0 || ctx->repair_budget == 0)
        return FEC_RC_OK;
    if (!sparse && s->credit < price && ctx->now_us - s->first_pending_us < s->hold_us)
        return FEC_RC_OK;
    if (s->gap_us >= SPARSE_GAP_US)
        window = SPARSE_WINDOW;
    if (window != s->window) {
        fec_window_set(window);
        s->window = window;
    }
    fec_emit_repair(1);
    s->pending = 0;
    s->longest = 0;
    s->credit = s->credit > price ? s->credit - price : 0;
    if (s->credit > price)
        s->credit = price;
    return FEC_RC_OK;
}

FEC_PLUGLET(replace, on_feedback)
int on_feedback(void *mem)
{
    struct fec_feedback_ctx *ctx = mem;
    struct multipath_state *s = FEC_STATE(struct multipath_state, mem);
    struct path_loss w = {0, 0, 0, 0};
    fec_u64 total = (fec_u64)ctx->received + ctx->lost;
    fec_u64 loss_permille = 0;
    fec_u64 target, burst_x16;

    s->validated = choose_repair_path();
    /* Sources per path since the last report, taken at every report so the
     * next one weighs only its own interval. */
    weigh(s, &w, 0);
    weigh(s, &w, 1);
    weigh(s, &w, 2);
    weigh(s, &w, 3);
    if (total == 0)
        return FEC_RC_OK;
    /* The connection's loss over about the last HISTORY sources. */
    if (total >= HISTORY) {
        s->seen_x16 = 0;
        s->lost_x16 = 0;
    } else {
        s->seen_x16 -= s->seen_x16 * total / HISTORY;
        s->lost_x16 -= s->lost_x16 * total / HISTORY;
    }
    s->seen_x16 += total * 16;
    s->lost_x16 += (fec_u64)ctx->lost * 16;
    if (s->lost_x16 > s->seen_x16)
        s->lost_x16 = s->seen_x16;
    loss_permille = s->lost_x16 * 1000 / s->seen_x16;
    /* Several paths: the loss of the ones carrying the sources. */
    if (w.validated > 1) {
        if (w.sources > 0)
            loss_permille = w.weighted / w.sources;
        else
            loss_permille = w.loss_sum / w.validated;
    }
    s->loss_permille = loss_permille;
    s->hold_us = MAX_HOLD_US;
    if (loss_permille > 0 && HOLD_SCALE / loss_permille < MAX_HOLD_US)
        s->hold_us = HOLD_SCALE / loss_permille;
    if (s->hold_us < MIN_HOLD_US)
        s->hold_us = MIN_HOLD_US;
    burst_x16 = ctx->mean_burst_x16;
    if (burst_x16 < 16)
        burst_x16 = 16;
    if (burst_x16 > 16 * MAX_BURST)
        burst_x16 = 16 * MAX_BURST;
    target = (16 + burst_x16) * loss_permille / 16 + 30;
    if (target > 500)
        target = 500;
    s->target = target;
    return FEC_RC_OK;
}
