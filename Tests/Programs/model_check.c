// model_check: THREADS threads x OPS random operations over every malloc-family entry point,
// each block checked against a model (run by tools/adversarial.sh and AdversarialTests).
//
//   model_check THREADS OPS SEED
//
// Each thread keeps SLOTS blocks; the model of a block is its id, requested size, alignment and
// the entry point that made it. Every block is filled, up to malloc_usable_size, with a pattern
// derived from its id (not its address: a block moved by realloc keeps its id), and is checked
// before every free, realloc and hand-over. Blocks whose usable size passes 256 KiB are filled
// and checked on their first 4 KiB, a 64-byte stripe of every 4 KiB and their last 64 bytes
// (all of it would make a 2-million-operation run memory-bound). Threads swap blocks through
// shared slots, so blocks are resized and freed by threads that did not allocate them.
//
// The rules checked (glibc's, as the README's "C semantics" lists them):
//   - every pointer is aligned to 16 (2 * sizeof(void *)) and to the alignment asked for;
//     valloc and pvalloc to the page;
//   - malloc_usable_size >= the request (pvalloc: the request rounded up to pages), and every
//     byte up to it is writable and keeps what was written;
//   - calloc zeroes; realloc keeps min(old, new) bytes; realloc(p, 0) frees and returns NULL;
//     realloc(NULL, n) allocates;
//   - a failure returns NULL with errno ENOMEM (posix_memalign returns ENOMEM and leaves *memptr
//     alone); a failed realloc or reallocarray leaves the block intact; impossible sizes and
//     count x size overflows always fail so; free and free_sized keep errno;
//   - posix_memalign with an alignment that is not a power of two multiple of sizeof(void *)
//     returns EINVAL; aligned_alloc with one that is not a power of two fails with EINVAL under
//     BuddyMalloc (glibc 2.36 rounds it up instead: either is accepted without the library);
//     memalign rounds a non-power-of-two alignment up.
// Requests that can be served must be, unless BUDDY_MAX_POOL is set (then they may fail with
// ENOMEM). With BUDDY_MAX_POOL set, once every thread has freed everything, requests of a quarter
// of the limit and many small ones must succeed again (a pool that is almost empty has room).
//
// Exit 0 and "model_check: ok ..." when every check passed; the first broken rule prints
// "model_check: FAIL ..." on stderr and aborts. Build with -fno-builtin.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__GNUC__) && __GNUC__ >= 12 && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuse-after-free"
#pragma GCC diagnostic ignored "-Walloc-size-larger-than="
#endif

enum { SLOTS = 256, SHARED = 64, MAX_THREADS = 64 };
#define BIG ((size_t)256 * 1024)
#define STRIPE 64
#define PAGE_STEP 4096

typedef struct {
    unsigned char *p;
    size_t size;      // requested (pvalloc: rounded up to pages)
    size_t usable;    // malloc_usable_size at allocation or last resize
    size_t alignment; // asked for (0: default)
    uint64_t id;
    const char *entry;
} block_t;

typedef struct {
    pthread_mutex_t lock;
    block_t block;
} shared_slot_t;

static shared_slot_t g_shared[SHARED];
static uint64_t g_seed;
static long g_ops;
static int g_bounded;       // BUDDY_MAX_POOL set: servable requests may fail with ENOMEM
static size_t g_pool_limit; // its value in bytes
static int g_buddy;         // BuddyMalloc is the process's malloc
static size_t g_page;
static void (*g_free_sized)(void *, size_t);
static void (*g_free_aligned_sized)(void *, size_t, size_t);
static atomic_ulong g_checked, g_allocs, g_enomem, g_doomed, g_frees, g_reallocs, g_swaps;
static volatile size_t v_size_max = SIZE_MAX;

// ---------------------------------------------------------------- failures

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
#include <stdarg.h>
static void fail(const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof line) n = sizeof line - 1;
    // write(2): stdio may be what is broken.
    (void)!write(2, "model_check: FAIL ", 18);
    (void)!write(2, line, (size_t)n);
    char tail[64];
    int t = snprintf(tail, sizeof tail, " (seed %llu)\n", (unsigned long long)g_seed);
    (void)!write(2, tail, (size_t)t);
    abort();
}

// ---------------------------------------------------------------- patterns

static inline uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

// The pattern's 8 bytes at the 8-aligned offset o of block `id`.
static inline uint64_t pattern_word(uint64_t id, size_t o) { return mix(id * 0x9E3779B97F4A7C15ULL + (o >> 3)); }

static inline unsigned char pattern_byte(uint64_t id, size_t o) {
    return (unsigned char)(pattern_word(id, o) >> (8 * (o & 7)));
}

static void fill_range(unsigned char *p, size_t from, size_t to, uint64_t id) {
    size_t o = from;
    while (o < to && (o & 7)) { p[o] = pattern_byte(id, o); o++; }
    for (; o + 8 <= to; o += 8) {
        uint64_t w = pattern_word(id, o);
        memcpy(p + o, &w, 8);
    }
    for (; o < to; o++) p[o] = pattern_byte(id, o);
}

static void check_range(const block_t *b, size_t from, size_t to, const char *what) {
    const unsigned char *p = b->p;
    size_t o = from;
    for (; o < to && (o & 7); o++)
        if (p[o] != pattern_byte(b->id, o)) goto mismatch;
    for (; o + 8 <= to; o += 8) {
        uint64_t w, want = pattern_word(b->id, o);
        memcpy(&w, p + o, 8);
        if (w != want) break;
    }
    for (; o < to; o++)
        if (p[o] != pattern_byte(b->id, o)) goto mismatch;
    return;
mismatch:
    fail("%s: block %p (id %llx, %s, size %zu, usable %zu): byte %zu is 0x%02x, expected 0x%02x", what,
         (void *)b->p, (unsigned long long)b->id, b->entry, b->size, b->usable, o, p[o], pattern_byte(b->id, o));
}

// Calls f on the ranges of [0, limit) that the model keeps for a block of usable size `usable`:
// all of it up to BIG; above, the first 4 KiB, a stripe per 4 KiB, and (with tail) the last 64 bytes.
#define FOR_EACH_RANGE(usable, limit, tail, BODY)                                             \
    do {                                                                                      \
        size_t lim_ = (limit);                                                                \
        if ((usable) <= BIG) { size_t a_ = 0, z_ = lim_; BODY; }                              \
        else {                                                                                \
            { size_t a_ = 0, z_ = lim_ < PAGE_STEP ? lim_ : PAGE_STEP; BODY; }               \
            for (size_t s_ = PAGE_STEP; s_ < lim_; s_ += PAGE_STEP) {                         \
                size_t a_ = s_, z_ = s_ + STRIPE < lim_ ? s_ + STRIPE : lim_; BODY;           \
            }                                                                                 \
            if (tail && lim_ >= STRIPE) { size_t a_ = lim_ - STRIPE, z_ = lim_; BODY; }       \
        }                                                                                     \
    } while (0)

static void fill_block(block_t *b) {
    FOR_EACH_RANGE(b->usable, b->usable, 1, fill_range(b->p, a_, z_, b->id));
}

static void check_block(const block_t *b, const char *what) {
    FOR_EACH_RANGE(b->usable, b->usable, 1, check_range(b, a_, z_, what));
    atomic_fetch_add_explicit(&g_checked, 1, memory_order_relaxed);
}

// After a realloc: the first `kept` bytes of the old contents (the stripes among them for big blocks).
static void check_kept(const block_t *b, size_t old_usable, size_t kept, const char *what) {
    size_t u = old_usable > b->usable ? old_usable : b->usable;
    FOR_EACH_RANGE(u, kept, 0, check_range(b, a_, z_, what));
}

static void check_zero(const unsigned char *p, size_t n, size_t usable, const char *what) {
    FOR_EACH_RANGE(usable, n, 1, {
        for (size_t o = a_; o < z_; o++)
            if (p[o]) fail("%s: calloc block %p size %zu: byte %zu is 0x%02x, not 0", what, (void *)p, n, o, p[o]);
    });
}

// ---------------------------------------------------------------- random

static inline uint64_t next_random(uint64_t *s) {
    *s += 0x9E3779B97F4A7C15ULL;
    return mix(*s);
}

static size_t random_size(uint64_t *rng) {
    uint64_t r = next_random(rng);
    unsigned bucket = (unsigned)(r % 1000);
    r >>= 10;
    if (bucket < 30) return (size_t)(r % 17);              // 0 .. 16, around the smallest block
    if (bucket < 650) return 17 + (size_t)(r % 240);        // small
    if (bucket < 880) return 257 + (size_t)(r % 3840);      // up to 4 KiB (slab classes from 1 KiB)
    if (bucket < 975) return 4097 + (size_t)(r % 61440);    // up to 64 KiB
    if (bucket < 998) return 65537 + (size_t)(r % (1u << 20)); // up to about 1 MiB
    return ((size_t)1 << 20) + (size_t)(r % (15u << 20));   // up to 16 MiB (above the default max block)
}

static size_t random_alignment(uint64_t *rng) {
    uint64_t r = next_random(rng);
    unsigned shift = (unsigned)(r % 13); // 1 .. 4096
    if ((r >> 8) % 64 == 0) shift = 13 + (unsigned)((r >> 16) % 9); // up to 2 MiB, rarely
    return (size_t)1 << shift;
}

// ---------------------------------------------------------------- the model's operations

static int aligned(const void *p, size_t a) { return a == 0 || ((uintptr_t)p & (a - 1)) == 0; }

static size_t next_pow2(size_t n) {
    size_t p = 1;
    while (p < n) p <<= 1;
    return p;
}

// A request came back NULL: fine only with errno ENOMEM, and only in a bounded pool.
static void expect_enomem(const char *entry, size_t size, int err) {
    if (err != ENOMEM) fail("%s(%zu) returned NULL with errno %d (%s), expected ENOMEM", entry, size, err, strerror(err));
    if (!g_bounded) fail("%s(%zu) returned NULL (ENOMEM) without BUDDY_MAX_POOL", entry, size);
    atomic_fetch_add_explicit(&g_enomem, 1, memory_order_relaxed);
}

// A new block: checks alignment and usable size, records it, fills it. Returns 0 when p is NULL.
static int adopt(block_t *b, void *p, size_t size, size_t alignment, uint64_t id, const char *entry) {
    if (!p) return 0;
    size_t need = alignment > 16 ? alignment : 16;
    if (!aligned(p, need)) fail("%s(%zu, alignment %zu) = %p: not aligned to %zu", entry, size, alignment, p, need);
    size_t usable = malloc_usable_size(p);
    if (usable < size) fail("%s(%zu) = %p: malloc_usable_size %zu is smaller", entry, size, p, usable);
    b->p = p;
    b->size = size;
    b->usable = usable;
    b->alignment = alignment;
    b->id = id;
    b->entry = entry;
    atomic_fetch_add_explicit(&g_allocs, 1, memory_order_relaxed);
    return 1;
}

static void allocate(block_t *b, uint64_t *rng, uint64_t id) {
    size_t n = random_size(rng);
    uint64_t r = next_random(rng);
    void *p = NULL;
    int err;
    errno = 0;
    switch (r % 10) {
    case 0: case 1: case 2:
        p = malloc(n);
        err = errno;
        if (!adopt(b, p, n, 0, id, "malloc")) { expect_enomem("malloc", n, err); return; }
        break;
    case 3: {
        size_t count = 1 + (size_t)((r >> 8) % 16), each = n / count + 1;
        p = calloc(count, each);
        err = errno;
        if (!adopt(b, p, count * each, 0, id, "calloc")) { expect_enomem("calloc", count * each, err); return; }
        check_zero(p, count * each, b->usable, "calloc");
        break;
    }
    case 4:
        p = realloc(NULL, n);
        err = errno;
        if (!adopt(b, p, n, 0, id, "realloc(NULL)")) { expect_enomem("realloc(NULL)", n, err); return; }
        break;
    case 5: {
        size_t count = 1 + (size_t)((r >> 8) % 8), each = n / count + 1;
        p = reallocarray(NULL, count, each);
        err = errno;
        if (!adopt(b, p, count * each, 0, id, "reallocarray(NULL)")) { expect_enomem("reallocarray(NULL)", count * each, err); return; }
        break;
    }
    case 6: {
        size_t a = random_alignment(rng);
        if (a < sizeof(void *)) a = sizeof(void *);
        void *out = (void *)0x1;
        int rc = posix_memalign(&out, a, n);
        if (rc == 0) { adopt(b, out, n, a, id, "posix_memalign"); break; }
        if (out != (void *)0x1) fail("posix_memalign(%zu, %zu) failed (%d) but wrote *memptr", a, n, rc);
        if (rc != ENOMEM) fail("posix_memalign(%zu, %zu) returned %d, expected 0 or ENOMEM", a, n, rc);
        expect_enomem("posix_memalign", n, errno);
        return;
    }
    case 7: {
        size_t a = random_alignment(rng);
        p = aligned_alloc(a, n);
        err = errno;
        if (!adopt(b, p, n, a, id, "aligned_alloc")) { expect_enomem("aligned_alloc", n, err); return; }
        break;
    }
    case 8: {
        // memalign: any alignment, a non-power of two rounds up.
        size_t a = random_alignment(rng);
        if ((r >> 12) % 4 == 0) a = a + (size_t)((r >> 20) % a) + 1;
        p = memalign(a, n);
        err = errno;
        if (!adopt(b, p, n, next_pow2(a), id, "memalign")) { expect_enomem("memalign", n, err); return; }
        break;
    }
    default:
        if ((r >> 8) % 2) {
            p = valloc(n);
            err = errno;
            if (!adopt(b, p, n, g_page, id, "valloc")) { expect_enomem("valloc", n, err); return; }
        } else {
            size_t rounded = (n + g_page - 1) / g_page * g_page;
            p = pvalloc(n);
            err = errno;
            if (!adopt(b, p, rounded, g_page, id, "pvalloc")) { expect_enomem("pvalloc", n, err); return; }
        }
        break;
    }
    fill_block(b);
}

static void release(block_t *b, uint64_t *rng) {
    check_block(b, "before free");
    uint64_t r = next_random(rng);
    errno = 4321;
    if (r % 4 == 0 && g_free_sized && b->alignment == 0) g_free_sized(b->p, b->size);
    else if (r % 4 == 1 && g_free_aligned_sized && b->alignment > 16 && b->entry[0] == 'a') // aligned_alloc's blocks
        g_free_aligned_sized(b->p, b->alignment, b->size);
    else free(b->p);
    if (errno != 4321) fail("free of %p (%s) changed errno to %d", (void *)b->p, b->entry, errno);
    b->p = NULL;
    atomic_fetch_add_explicit(&g_frees, 1, memory_order_relaxed);
}

static void resize(block_t *b, uint64_t *rng) {
    check_block(b, "before realloc");
    uint64_t r = next_random(rng);
    size_t n;
    if (r % 8 == 0) n = b->size / 2;                    // shrink
    else if (r % 8 == 1) n = b->size + 1 + (size_t)((r >> 8) % 64); // grow a little
    else n = random_size(rng);
    if (n == 0) n = 1;
    int array = (r >> 20) % 4 == 0;
    size_t count = 1, each = n;
    if (array) { count = 1 + (size_t)((r >> 24) % 8); each = n / count + 1; n = count * each; }
    errno = 0;
    unsigned char *q = array ? reallocarray(b->p, count, each) : realloc(b->p, n);
    int err = errno;
    const char *entry = array ? "reallocarray" : "realloc";
    if (!q) {
        expect_enomem(entry, n, err);
        check_block(b, "after a failed realloc (the block must be intact)");
        return;
    }
    size_t old_size = b->size, old_usable = b->usable;
    if (!aligned(q, 16)) fail("%s(%p, %zu) = %p: not aligned to 16", entry, (void *)b->p, n, (void *)q);
    size_t usable = malloc_usable_size(q);
    if (usable < n) fail("%s(%p, %zu) = %p: malloc_usable_size %zu is smaller", entry, (void *)b->p, n, (void *)q, usable);
    b->p = q;
    b->size = n;
    b->usable = usable;
    b->alignment = 0; // realloc keeps only the default alignment
    b->entry = entry;
    check_kept(b, old_usable, old_size < n ? old_size : n, "after realloc (kept bytes)");
    // Refill all of it: a big block's gaps between stripes were never written, and the new block
    // may be small enough to be checked whole (the same pattern over the kept bytes changes nothing).
    fill_block(b);
    atomic_fetch_add_explicit(&g_reallocs, 1, memory_order_relaxed);
}

// Requests that cannot be served: NULL (or ENOMEM) and errno ENOMEM, whatever the pool.
static void doomed(block_t *held, uint64_t *rng) {
    uint64_t r = next_random(rng);
    size_t huge = v_size_max - (size_t)(r >> 40) % 8192;
    void *p = (void *)0x1;
    const char *what;
    errno = 0;
    switch ((r >> 4) % 10) {
    case 0: what = "malloc(huge)"; p = malloc(huge); break;
    case 1: what = "calloc(overflow)"; p = calloc(huge / 3, 7); break;
    case 2: what = "calloc(1, huge)"; p = calloc(1, huge); break;
    case 3: what = "reallocarray(NULL, overflow)"; p = reallocarray(NULL, huge / 2, 3); break;
    case 4: what = "aligned_alloc(64, huge)"; p = aligned_alloc(64, huge); break;
    case 5: what = "memalign(4096, huge)"; p = memalign(4096, huge); break;
    case 6: what = "valloc(huge)"; p = valloc(huge); break;
    case 7: what = "pvalloc(huge)"; p = pvalloc(huge); break;
    case 8: {
        what = "posix_memalign(32, huge)";
        void *out = (void *)0x1;
        int rc = posix_memalign(&out, 32, huge);
        if (rc != ENOMEM || out != (void *)0x1) fail("%s: returned %d, *memptr %p", what, rc, out);
        p = NULL;
        break;
    }
    default:
        if (!held->p) { what = "realloc(NULL, huge)"; p = realloc(NULL, huge); break; }
        if (r % 2) { what = "realloc(p, huge)"; p = realloc(held->p, huge); }
        else { what = "reallocarray(p, overflow)"; p = reallocarray(held->p, huge / 4, 5); }
        if (!p) check_block(held, "after an impossible realloc (the block must be intact)");
        break;
    }
    if (p != NULL || errno != ENOMEM) fail("%s = %p, errno %d (%s): expected NULL and ENOMEM", what, p, errno, strerror(errno));
    atomic_fetch_add_explicit(&g_doomed, 1, memory_order_relaxed);
}

// Invalid alignments: EINVAL as glibc gives it.
static void bad_alignment(uint64_t *rng) {
    static const size_t bad[] = {0, 1, 2, 3, 4, 12, 24, 48, 100, 4097, 3 * 4096};
    uint64_t r = next_random(rng);
    size_t a = bad[r % (sizeof bad / sizeof bad[0])];
    void *out = (void *)0x1;
    int rc = posix_memalign(&out, a, 64);
    int valid = a >= sizeof(void *) && (a & (a - 1)) == 0;
    if (!valid && (rc != EINVAL || out != (void *)0x1))
        fail("posix_memalign(%zu, 64) = %d, *memptr %p: expected EINVAL and *memptr unchanged", a, rc, out);
    if (rc == 0) free(out);
    if (a != 0 && (a & (a - 1)) != 0) {
        errno = 0;
        void *p = aligned_alloc(a, 64);
        if (g_buddy && (p != NULL || errno != EINVAL))
            fail("aligned_alloc(%zu, 64) = %p, errno %d: expected NULL and EINVAL", a, p, errno);
        if (p && !aligned(p, next_pow2(a))) fail("aligned_alloc(%zu, 64) = %p: not aligned to %zu", a, p, next_pow2(a));
        free(p);
        p = memalign(a, 64);
        if (!p && !g_bounded) fail("memalign(%zu, 64) = NULL, errno %d", a, errno);
        if (p && !aligned(p, next_pow2(a))) fail("memalign(%zu, 64) = %p: not aligned to %zu", a, p, next_pow2(a));
        free(p);
    }
}

// Swaps the block in `b` with one of the shared slots: the block now in `b` was made by any thread.
static void swap_shared(block_t *b, uint64_t *rng) {
    shared_slot_t *s = &g_shared[next_random(rng) % SHARED];
    pthread_mutex_lock(&s->lock);
    block_t mine = *b;
    *b = s->block;
    s->block = mine;
    pthread_mutex_unlock(&s->lock);
    if (b->p) check_block(b, "after a hand-over between threads");
    atomic_fetch_add_explicit(&g_swaps, 1, memory_order_relaxed);
}

typedef struct {
    int index;
    pthread_t thread;
} worker_t;

static void *worker(void *arg) {
    worker_t *w = arg;
    uint64_t rng = g_seed ^ ((uint64_t)w->index * 0xD1B54A32D192ED03ULL);
    uint64_t counter = 0;
    block_t *slots = calloc(SLOTS, sizeof(block_t));
    if (!slots) fail("calloc of the thread's slots failed");
    for (long i = 0; i < g_ops; i++) {
        uint64_t r = next_random(&rng);
        block_t *b = &slots[r % SLOTS];
        unsigned what = (unsigned)((r >> 16) % 1000);
        if (what < 5) { doomed(b, &rng); continue; }
        if (what < 8) { bad_alignment(&rng); continue; }
        if (what < 60) { swap_shared(b, &rng); continue; }
        if (!b->p) {
            allocate(b, &rng, ((uint64_t)(w->index + 1) << 48) | ++counter);
        } else if (what < 400) {
            resize(b, &rng);
            if (what < 80 && b->p) {
                // realloc(p, 0) frees (glibc) and returns NULL.
                check_block(b, "before realloc(p, 0)");
                void *q = realloc(b->p, 0);
                if (q != NULL) fail("realloc(%p, 0) = %p: expected NULL (the block freed)", (void *)b->p, q);
                b->p = NULL;
            }
        } else if (what < 450) {
            check_block(b, "check");
        } else {
            release(b, &rng);
        }
    }
    for (int i = 0; i < SLOTS; i++)
        if (slots[i].p) release(&slots[i], &rng);
    free(slots);
    return NULL;
}

// With BUDDY_MAX_POOL: nothing is live any more (the threads are gone), so the pool has room.
static void bounded_pool_has_room(void) {
    size_t quarter = g_pool_limit / 4;
    for (int round = 0; round < 3; round++) {
        errno = 0;
        void *p = malloc(quarter);
        if (!p) fail("BUDDY_MAX_POOL=%zu, every block freed: malloc(%zu) (a quarter of the limit) failed, errno %d",
                     g_pool_limit, quarter, errno);
        memset(p, 0x5a, quarter);
        free(p);
    }
    size_t n = quarter / 64;
    void **small = malloc(n * sizeof(void *));
    if (!small) fail("BUDDY_MAX_POOL=%zu, every block freed: malloc(%zu) failed", g_pool_limit, n * sizeof(void *));
    for (size_t i = 0; i < n; i++) {
        small[i] = malloc(48);
        if (!small[i]) fail("BUDDY_MAX_POOL=%zu, every block freed: small block %zu of %zu (48 bytes) failed, errno %d",
                            g_pool_limit, i, n, errno);
        memset(small[i], (int)i, 48);
    }
    for (size_t i = 0; i < n; i++) free(small[i]);
    free(small);
}

static size_t parse_size(const char *v) {
    char *end;
    size_t n = strtoull(v, &end, 10);
    if (*end == 'K' || *end == 'k') n <<= 10;
    else if (*end == 'M' || *end == 'm') n <<= 20;
    else if (*end == 'G' || *end == 'g') n <<= 30;
    return n;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: model_check THREADS OPS SEED\n");
        return 2;
    }
    int threads = atoi(argv[1]);
    g_ops = atol(argv[2]);
    g_seed = strtoull(argv[3], NULL, 10);
    if (threads < 1 || threads > MAX_THREADS || g_ops < 1) return 2;
    g_page = (size_t)sysconf(_SC_PAGESIZE);
    const char *limit = getenv("BUDDY_MAX_POOL");
    g_pool_limit = limit ? parse_size(limit) : 0;
    g_bounded = g_pool_limit != 0;
    g_buddy = dlsym(RTLD_DEFAULT, "buddy_malloc") != NULL;
    g_free_sized = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
    g_free_aligned_sized = (void (*)(void *, size_t, size_t))dlsym(RTLD_DEFAULT, "free_aligned_sized");
    for (int i = 0; i < SHARED; i++) pthread_mutex_init(&g_shared[i].lock, NULL);

    worker_t w[MAX_THREADS];
    for (int i = 0; i < threads; i++) {
        w[i].index = i;
        int rc = pthread_create(&w[i].thread, NULL, worker, &w[i]);
        if (rc) fail("pthread_create: %s", strerror(rc));
    }
    for (int i = 0; i < threads; i++) pthread_join(w[i].thread, NULL);
    uint64_t rng = g_seed;
    for (int i = 0; i < SHARED; i++)
        if (g_shared[i].block.p) release(&g_shared[i].block, &rng);
    if (g_bounded) bounded_pool_has_room();
    printf("model_check: ok threads=%d ops=%ld seed=%llu allocs=%lu frees=%lu reallocs=%lu swaps=%lu checks=%lu "
           "impossible=%lu enomem=%lu %s%s%s\n",
           threads, g_ops, (unsigned long long)g_seed, atomic_load(&g_allocs), atomic_load(&g_frees),
           atomic_load(&g_reallocs), atomic_load(&g_swaps), atomic_load(&g_checked), atomic_load(&g_doomed),
           atomic_load(&g_enomem), g_buddy ? "buddy" : "not-buddy", g_free_sized ? " free_sized" : "",
           g_bounded ? " bounded" : "");
    return 0;
}
