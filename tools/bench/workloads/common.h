/* Shared helpers for the BuddyMalloc benchmark workloads.
 *
 * Everything here is header-only so each workload is a single translation
 * unit:  gcc -O2 -fno-builtin -pthread -o churn churn.c  (and C++: objects.cpp)
 *
 * -fno-builtin matters: without it GCC may treat malloc/free as builtins and
 * elide malloc+free pairs or merge allocations, which would defeat the point.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#ifndef _GNU_SOURCE /* (g++ defines it) */
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- PRNG -- */

typedef struct { uint64_t s; } rng_t;

static inline uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static inline void rng_seed(rng_t *r, uint64_t seed)
{
    r->s = splitmix64(seed);
    if (r->s == 0) r->s = 0x9E3779B97F4A7C15ull;
}

/* xorshift64* */
static inline uint64_t rng_next(rng_t *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [0, n). The modulo bias is irrelevant here. */
static inline uint64_t rng_below(rng_t *r, uint64_t n)
{
    return (rng_next(r) >> 11) % n;
}

/* Uniform in [lo, hi]. */
static inline uint64_t rng_range(rng_t *r, uint64_t lo, uint64_t hi)
{
    return lo + rng_below(r, hi - lo + 1);
}

static inline unsigned ilog2_floor(uint64_t v)
{
    return 63u - (unsigned)__builtin_clzll(v);
}

/* Approximately log-uniform in [lo, hi] (lo >= 1): pick a power-of-two
 * octave uniformly, then a uniform value inside it, clamped to [lo, hi]. */
static inline size_t rng_log_uniform(rng_t *r, size_t lo, size_t hi)
{
    unsigned elo = ilog2_floor(lo), ehi = ilog2_floor(hi);
    unsigned e = elo + (unsigned)rng_below(r, ehi - elo + 1);
    uint64_t base = 1ull << e;
    uint64_t v = base + rng_below(r, base);
    if (v < lo) v = lo;
    if (v > hi) v = hi;
    return (size_t)v;
}

/* ------------------------------------------------------ block patterns -- */
/*
 * Every block gets a pattern derived from a 64-bit tag. Blocks up to
 * PAT_FULL bytes are written completely; larger blocks get the first and last
 * PAT_EDGE bytes plus one word per 4 KiB page (so every page is touched, which
 * is what a real program does and makes RSS numbers meaningful).
 */
#define PAT_FULL 4096u
#define PAT_EDGE 256u
#define PAT_PAGE 4096u

static inline uint64_t pat_word(uint64_t tag, size_t i)
{
    return (tag ^ (uint64_t)i) * 0x9E3779B97F4A7C15ull + (uint64_t)i;
}

static inline unsigned char pat_byte(uint64_t tag, size_t i)
{
    return (unsigned char)(pat_word(tag, i) >> 56);
}

/* Visit every position of the pattern for a block of n bytes.
 * WORD(off) is called for 8-byte words, BYTE(off) for the trailing bytes.
 * Offsets may repeat for large blocks; that is harmless. */
#define PAT_VISIT(n, WORD, BYTE)                                              \
    do {                                                                      \
        size_t n_ = (n), nw_ = n_ / 8, w_;                                    \
        if (n_ <= PAT_FULL) {                                                 \
            for (w_ = 0; w_ < nw_; w_++) WORD(w_ * 8);                        \
        } else {                                                              \
            size_t edge_ = PAT_EDGE / 8;                                      \
            for (w_ = 0; w_ < edge_; w_++) WORD(w_ * 8);                      \
            for (w_ = PAT_PAGE / 8; w_ < nw_ - edge_; w_ += PAT_PAGE / 8)     \
                WORD(w_ * 8);                                                 \
            for (w_ = nw_ - edge_; w_ < nw_; w_++) WORD(w_ * 8);              \
        }                                                                     \
        for (size_t b_ = nw_ * 8; b_ < n_; b_++) BYTE(b_);                    \
    } while (0)

static inline void pat_fill(void *p, size_t n, uint64_t tag)
{
    unsigned char *b = (unsigned char *)p;
#define W_(off) (*(uint64_t *)(b + (off)) = pat_word(tag, (off)))
#define B_(off) (b[(off)] = pat_byte(tag, (off)))
    PAT_VISIT(n, W_, B_);
#undef W_
#undef B_
}

static const char *bench_name = "bench";

static inline void bench_fail_at(const void *p, size_t n, size_t off, uint64_t tag)
{
    fprintf(stderr, "%s: CORRUPTION: block %p size %zu tag %016llx: "
                    "mismatch at offset %zu\n",
            bench_name, p, n, (unsigned long long)tag, off);
    exit(3);
}

/* Check the pattern of a block that was filled with pat_fill(p, n, tag),
 * looking only at offsets < limit (used after realloc shrink). */
static inline void pat_check_prefix(const void *p, size_t n, uint64_t tag,
                                    size_t limit)
{
    const unsigned char *b = (const unsigned char *)p;
#define W_(off)                                                              \
    do {                                                                     \
        if ((off) + 8 <= limit &&                                            \
            *(const uint64_t *)(b + (off)) != pat_word(tag, (off)))          \
            bench_fail_at(p, n, (off), tag);                                 \
    } while (0)
#define B_(off)                                                              \
    do {                                                                     \
        if ((off) < limit && b[(off)] != pat_byte(tag, (off)))               \
            bench_fail_at(p, n, (off), tag);                                 \
    } while (0)
    PAT_VISIT(n, W_, B_);
#undef W_
#undef B_
}

static inline void pat_check(const void *p, size_t n, uint64_t tag)
{
    pat_check_prefix(p, n, tag, n);
}

/* ------------------------------------------------------ block stamps -- */
/*
 * A lighter, self-describing check for workloads that measure the allocator
 * rather than memory bandwidth, and whose blocks travel without their size
 * (cross-thread queues and slots). A block of n >= 16 bytes gets its tag in
 * word 0, n mixed with the tag in word 1, a tag-derived word in its last
 * aligned word before its last byte and in one word per 4 KiB page (so
 * every page is touched), and its last byte (past the header). stamp_check()
 * reads tag and size back from the block and checks all of it; it returns
 * the size.
 */
#define STAMP_MIN 16u

static inline uint64_t stamp_mix(uint64_t tag)
{
    return tag * 0xD6E8FEB86659FD93ull ^ 0xA5A5A5A5A5A5A5A5ull;
}

static inline void stamp_fill(void *p, size_t n, uint64_t tag)
{
    unsigned char *b = (unsigned char *)p;
    uint64_t *w = (uint64_t *)p;
    w[0] = tag;
    w[1] = (uint64_t)n ^ stamp_mix(tag);
    for (size_t off = PAT_PAGE; off + 8 < n; off += PAT_PAGE)
        *(uint64_t *)(b + off) = pat_word(tag, off);
    size_t last = (n - 9) & ~(size_t)7; /* ends before the last byte */
    if (last >= 16) *(uint64_t *)(b + last) = pat_word(tag, last);
    if (n > 16) b[n - 1] = pat_byte(tag, n - 1);
}

static inline void stamp_fail(const void *p, size_t n, const char *what)
{
    fprintf(stderr, "%s: CORRUPTION: block %p size %zu: %s\n", bench_name, p,
            n, what);
    exit(3);
}

/* Checks a stamped block; max_n bounds the size read back from it. */
static inline size_t stamp_check(const void *p, size_t max_n)
{
    const unsigned char *b = (const unsigned char *)p;
    const uint64_t *w = (const uint64_t *)p;
    uint64_t tag = w[0];
    size_t n = (size_t)(w[1] ^ stamp_mix(tag));
    if (n < STAMP_MIN || n > max_n) stamp_fail(p, n, "bad size word");
    for (size_t off = PAT_PAGE; off + 8 < n; off += PAT_PAGE)
        if (*(const uint64_t *)(b + off) != pat_word(tag, off))
            stamp_fail(p, n, "bad page word");
    size_t last = (n - 9) & ~(size_t)7;
    if (last >= 16 && *(const uint64_t *)(b + last) != pat_word(tag, last))
        stamp_fail(p, n, "bad last word");
    if (n > 16 && b[n - 1] != pat_byte(tag, n - 1)) stamp_fail(p, n, "bad last byte");
    return n;
}

/* ------------------------------------------------------------- helpers -- */

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "%s: malloc(%zu) returned NULL\n", bench_name, n);
        exit(2);
    }
    return p;
}

static inline void *xrealloc(void *old, size_t n)
{
    void *p = realloc(old, n);
    if (!p) {
        fprintf(stderr, "%s: realloc(%p, %zu) returned NULL\n", bench_name,
                old, n);
        exit(2);
    }
    return p;
}

static inline void *xcalloc(size_t n, size_t m)
{
    void *p = calloc(n, m);
    if (!p) {
        fprintf(stderr, "%s: calloc(%zu, %zu) returned NULL\n", bench_name,
                n, m);
        exit(2);
    }
    return p;
}

static inline long arg_long(int argc, char **argv, int i, long dflt)
{
    if (i >= argc) return dflt;
    char *end;
    errno = 0;
    long v = strtol(argv[i], &end, 0);
    if (errno || *end || v < 0) {
        fprintf(stderr, "%s: bad numeric argument '%s'\n", bench_name,
                argv[i]);
        exit(64);
    }
    return v;
}

/* The programs whose steps differ only in how a block is allocated (aligned, zeroed):
 * `make` returns a block of a size it picks (in *n), already checked (alignment, zeroes).
 * A working set of `live` blocks, each filled with the pattern; then `ops` steps, each
 * checking and freeing a random block and making its replacement; then every block checked
 * and freed. usage: NAME [live] [ops] [seed=1] */
typedef void *(*make_block_fn)(rng_t *r, size_t *n);

static inline int working_set_main(int argc, char **argv, const char *name, long live_default,
                                   long ops_default, make_block_fn make)
{
    typedef struct { void *p; size_t n; uint64_t tag; } slot_t;
    bench_name = name;
    long live = arg_long(argc, argv, 1, live_default);
    long ops = arg_long(argc, argv, 2, ops_default);
    uint64_t seed = (uint64_t)arg_long(argc, argv, 3, 1);
    if (live < 1) live = 1;
    rng_t r;
    rng_seed(&r, seed);
    slot_t *s = (slot_t *)xcalloc((size_t)live, sizeof *s);
    uint64_t tagc = seed << 32;
    for (long k = -live; k < ops; k++) {
        /* The first `live` steps fill the slots in order; the rest replace random ones. */
        slot_t *e = k < 0 ? &s[k + live] : &s[rng_below(&r, (uint64_t)live)];
        if (k >= 0) {
            pat_check(e->p, e->n, e->tag);
            free(e->p);
        }
        e->p = make(&r, &e->n);
        e->tag = ++tagc;
        pat_fill(e->p, e->n, e->tag);
    }
    for (long i = 0; i < live; i++) {
        pat_check(s[i].p, s[i].n, s[i].tag);
        free(s[i].p);
    }
    free(s);
    printf("%s ok live=%ld ops=%ld\n", name, live, ops);
    return 0;
}

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Resident set size in KiB from /proc/self/statm (second field). */
static inline long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = -1;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2) res = -1;
        fclose(f);
    }
    if (res < 0) return -1;
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Peak RSS (VmHWM) in KiB from /proc/self/status. */
static inline long hwm_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld", &v) == 1) break;
    fclose(f);
    return v;
}

#endif /* BENCH_COMMON_H */
