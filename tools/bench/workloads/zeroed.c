/* zeroed: churn through calloc and memalign, the calls rpmalloc's benchmark
 * (mimalloc-bench's rptest) makes: a working set of N blocks of 16 B..4 KiB
 * (log-uniform); each step frees a random one and allocates its
 * replacement with calloc (half of the steps), memalign with an alignment
 * of 8 or 16 (a quarter) or malloc (a quarter). A calloc'd block is checked
 * to read as zero where the pattern will go (the same positions as
 * pat_check), then every block gets the pattern, checked before its free.
 *
 * usage: zeroed [live=4000] [ops=2000000] [seed=1]
 */
#include "common.h"
#include <malloc.h>

typedef struct { void *p; size_t n; uint64_t tag; } slot_t;

static void expect_zero(const void *p, size_t n)
{
    const unsigned char *b = (const unsigned char *)p;
#define W_(off)                                                              \
    if (*(const uint64_t *)(b + (off)) != 0) bench_fail_at(p, n, (off), 0)
#define B_(off)                                                              \
    if (b[(off)] != 0) bench_fail_at(p, n, (off), 0)
    PAT_VISIT(n, W_, B_);
#undef W_
#undef B_
}

static void alloc_one(rng_t *r, slot_t *e, uint64_t tag)
{
    size_t n = rng_log_uniform(r, 16, 4096);
    uint64_t how = rng_below(r, 4);
    void *p;
    if (how < 2) {
        p = calloc(1, n);
        if (p) expect_zero(p, n);
    } else if (how == 2) {
        p = memalign(rng_below(r, 2) ? 16 : 8, n);
    } else {
        p = malloc(n);
    }
    if (!p) {
        fprintf(stderr, "zeroed: allocation of %zu bytes failed\n", n);
        exit(2);
    }
    if ((uintptr_t)p % 16 != 0) {
        fprintf(stderr, "zeroed: %p (%zu bytes) is not 16-byte aligned\n", p, n);
        exit(4);
    }
    e->p = p;
    e->n = n;
    e->tag = tag;
    pat_fill(p, n, tag);
}

int main(int argc, char **argv)
{
    bench_name = "zeroed";
    long live = arg_long(argc, argv, 1, 4000);
    long ops = arg_long(argc, argv, 2, 2000000);
    uint64_t seed = (uint64_t)arg_long(argc, argv, 3, 1);
    if (live < 1) live = 1;

    rng_t r;
    rng_seed(&r, seed);
    slot_t *s = xcalloc((size_t)live, sizeof *s);
    uint64_t tagc = seed << 32;
    for (long i = 0; i < live; i++) alloc_one(&r, &s[i], ++tagc);
    for (long k = 0; k < ops; k++) {
        slot_t *e = &s[rng_below(&r, (uint64_t)live)];
        pat_check(e->p, e->n, e->tag);
        free(e->p);
        alloc_one(&r, e, ++tagc);
    }
    for (long i = 0; i < live; i++) {
        pat_check(s[i].p, s[i].n, s[i].tag);
        free(s[i].p);
    }
    free(s);
    printf("zeroed ok live=%ld ops=%ld\n", live, ops);
    return 0;
}
