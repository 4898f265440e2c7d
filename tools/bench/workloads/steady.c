/* steady: long-running process with phases of growth and shrink.
 *
 * Models a long-lived service whose heap breathes: in each phase the live
 * heap grows to a target (objects: 70% 16..256 B, 25% 257 B..8 KiB,
 * 5% 8..256 KiB) with some churn along the way, then shrinks by freeing
 * random objects down to 10% of the target, so the survivors are scattered
 * over the whole heap (fragmentation). The target alternates between 100%
 * and 60% of `peak_mb`.
 *
 * After the last shrink it prints, on stdout:
 *   final_rss_kb N     RSS with ~10% of the peak still live (/proc/self/statm)
 *   live_kb N          bytes the program still holds at that point
 *   peak_rss_kb N      VmHWM
 *   empty_rss_kb N     RSS after everything has been freed
 * The interesting number is final_rss_kb: how much memory the allocator
 * keeps after the heap has shrunk.
 *
 * usage: steady [phases=16] [peak_mb=128] [seed=1]
 */
#include "common.h"

typedef struct { void *p; size_t n; uint64_t tag; } obj_t;

static obj_t *objs;
static size_t nobjs, capobjs;
static size_t live_bytes;
static uint64_t tagc;

static size_t pick_size(rng_t *r)
{
    unsigned k = (unsigned)rng_below(r, 100);
    if (k < 70) return rng_log_uniform(r, 16, 256);
    if (k < 95) return rng_log_uniform(r, 257, 8192);
    return rng_log_uniform(r, 8193, 256u << 10);
}

static void add_obj(rng_t *r)
{
    if (nobjs == capobjs) {
        capobjs = capobjs ? capobjs * 2 : 4096;
        objs = xrealloc(objs, capobjs * sizeof *objs);
    }
    obj_t *o = &objs[nobjs++];
    o->n = pick_size(r);
    o->p = xmalloc(o->n);
    o->tag = ++tagc;
    pat_fill(o->p, o->n, o->tag);
    live_bytes += o->n;
}

static void del_obj(size_t i)
{
    obj_t *o = &objs[i];
    pat_check(o->p, o->n, o->tag);
    free(o->p);
    live_bytes -= o->n;
    objs[i] = objs[--nobjs];
}

int main(int argc, char **argv)
{
    bench_name = "steady";
    long phases = arg_long(argc, argv, 1, 16);
    long peak_mb = arg_long(argc, argv, 2, 128);
    uint64_t seed = (uint64_t)arg_long(argc, argv, 3, 1);
    rng_t r;
    rng_seed(&r, seed);
    tagc = seed << 32;

    for (long ph = 0; ph < phases; ph++) {
        size_t target = (size_t)peak_mb << 20;
        if (ph % 2) target = target * 6 / 10;
        /* grow, with 1 free per 4 allocations of churn */
        long step = 0;
        while (live_bytes < target) {
            add_obj(&r);
            if (++step % 4 == 0 && nobjs > 1)
                del_obj(rng_below(&r, nobjs));
        }
        /* steady churn at the top */
        for (long k = 0; k < (long)(nobjs / 2); k++) {
            del_obj(rng_below(&r, nobjs));
            add_obj(&r);
        }
        /* shrink to 10% of the target, freeing at random */
        while (live_bytes > target / 10 && nobjs)
            del_obj(rng_below(&r, nobjs));
    }
    long final_rss = rss_kb();
    long live_kb = (long)(live_bytes >> 10);
    long peak = hwm_kb();
    while (nobjs) del_obj(nobjs - 1);
    free(objs);
    long empty_rss = rss_kb();
    printf("steady ok phases=%ld peak_mb=%ld\n", phases, peak_mb);
    printf("final_rss_kb %ld\n", final_rss);
    printf("live_kb %ld\n", live_kb);
    printf("peak_rss_kb %ld\n", peak);
    printf("empty_rss_kb %ld\n", empty_rss);
    return 0;
}
