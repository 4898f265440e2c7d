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

static void *make_block(rng_t *r, size_t *size)
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
    *size = n;
    return p;
}

int main(int argc, char **argv)
{
    return working_set_main(argc, argv, "zeroed", 4000, 2000000, make_block);
}
