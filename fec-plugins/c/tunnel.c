/* Tunnel: sliding-window RLC for what a VPN or a port forward carries,
 * sparse real-time streams and dense ones alike, on each direction's own
 * receiver reports (each end runs its own instance on what its peer reports).
 *
 * Sparse traffic (sources more than SPARSE_GAP_US apart on average) on a
 * link losing at least 2%: every
 * source is followed at once by a repair covering the window, so a lost
 * datagram is rebuilt as soon as that repair lands, instead of after the
 * next source or an idle timer. A repair lost with its source is made good
 * by the next source's repair, which covers both.
 *
 * Dense traffic: repairs are paid for by the bytes they protect. Each
 * source earns its length times the target redundancy, which follows the
 * reported loss rate over about the last HISTORY sources and the mean
 * burst length b: (1 + b) x loss + 3%, so one full-size repair per about 4
 * full-size sources at 10% random loss, per 20 at 1%. A repair goes
 * out when the credit pays for it at the size of the longest source it
 * covers, or when the oldest uncovered source has waited the hold time
 * (1 ms at 10% loss and above, 10 ms at 1%, 20 ms without loss). Sparse
 * traffic on a link that loses less is paid for the same way. Small
 * packets (QUIC acknowledgements) so earn little. Repairs go one at a time,
 * never in groups: back-to-back repairs are lost in the same burst.
 *
 * Windows: repairs are as long as the longest source they cover, so sparse
 * traffic, with a repair per source, codes over a short window
 * (SPARSE_WINDOW): one large packet (a path MTU probe, say) inflates few
 * repairs, and each repair still covers the sources of the repairs before
 * it. Dense traffic codes over DENSE_WINDOW, so each source is covered by
 * many repairs, long enough to outlast a burst.
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

struct tunnel_state {
    fec_u64 last_source_us;   /* when the last source was protected */
    fec_u64 gap_us;           /* running mean of the gap between sources */
    fec_u64 first_pending_us; /* when the oldest uncovered source was sent */
    fec_u64 pending;          /* sources since the last repair */
    fec_u64 target;           /* redundancy, per mille of source bytes */
    fec_u64 hold_us;          /* longest wait of an uncovered source */
    fec_u64 loss_permille;    /* loss rate over about the last HISTORY sources */
    fec_u64 seen_x16;         /* sources reported, decayed, times 16 */
    fec_u64 lost_x16;         /* of which lost, decayed, times 16 */
    fec_u64 credit;           /* dense: source bytes x target earned */
    fec_u64 longest;          /* longest source since the last repair */
    fec_u64 window;           /* the window set last */
};

FEC_PLUGLET(replace, configure)
int configure(void *mem)
{
    struct tunnel_state *s = FEC_STATE(struct tunnel_state, mem);
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
    fec_set_code(FEC_SCHEME_RLC, DENSE_WINDOW, 8);
    fec_window_set(SPARSE_WINDOW);
    return FEC_RC_OK;
}

FEC_PLUGLET(replace, on_source)
int on_source(void *mem)
{
    struct fec_source_ctx *ctx = mem;
    struct tunnel_state *s = FEC_STATE(struct tunnel_state, mem);
    fec_u64 gap = MAX_GAP_US;

    if (s->last_source_us != 0 && ctx->now_us >= s->last_source_us)
        gap = ctx->now_us - s->last_source_us;
    if (gap > MAX_GAP_US)
        gap = MAX_GAP_US;
    /* Mean over about the last 4 gaps: a burst of packets makes the stream
     * dense within a few sources, a pause makes it sparse again. */
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
    struct tunnel_state *s = FEC_STATE(struct tunnel_state, mem);
    fec_u64 window = DENSE_WINDOW;
    fec_u64 price = s->longest * 1000;
    int sparse = s->gap_us >= SPARSE_GAP_US && s->loss_permille >= PROMPT_LOSS_PERMILLE;

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
    /* What is left over carries to the next repair, up to one repair's
     * price (a pause must not bank a burst of repairs). */
    s->credit = s->credit > price ? s->credit - price : 0;
    if (s->credit > price)
        s->credit = price;
    return FEC_RC_OK;
}

FEC_PLUGLET(replace, on_feedback)
int on_feedback(void *mem)
{
    struct fec_feedback_ctx *ctx = mem;
    struct tunnel_state *s = FEC_STATE(struct tunnel_state, mem);
    fec_u64 total = (fec_u64)ctx->received + ctx->lost;
    fec_u64 loss_permille = 0;
    fec_u64 target, burst_x16;

    if (total == 0)
        return FEC_RC_OK;
    /* A report of a sparse stream counts a few sources: the rate is taken
     * over about the last HISTORY of them, older reports decaying as new
     * ones come, so one lucky interval does not turn the repairs off. */
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
    s->loss_permille = loss_permille;
    /* Rare losses weigh little in the latency tail: wait longer for the
     * credit, down to MIN_HOLD_US at 10% loss. */
    s->hold_us = MAX_HOLD_US;
    if (loss_permille > 0 && HOLD_SCALE / loss_permille < MAX_HOLD_US)
        s->hold_us = HOLD_SCALE / loss_permille;
    if (s->hold_us < MIN_HOLD_US)
        s->hold_us = MIN_HOLD_US;
    /* Bursts need more: a burst of b losses takes b repairs, and repairs
     * sent back to back are lost in the same burst, so they are spread
     * (one at a time) and there are more of them. */
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
