// The shape of mimalloc's test/test-stress.c, written again for this project with the C
// library's allocation calls: in each round THREADS threads start, allocate objects of random
// sizes (powers of two of words, 1% large, a few of those huge or giant), fill every word with a
// value derived from the object's size and the word's index, free some at random, keep others
// until they end, and swap objects with a shared array of transfer slots (atomic exchange), so
// objects are freed by other threads and, across rounds, by threads that did not exist when they
// were allocated. Every word is checked before an object is freed. Between rounds the main
// thread frees about half of the slots; after the last round, all of them.
//
// Beyond the original (which allocates with calloc only): objects also come from malloc,
// aligned_alloc, posix_memalign and memalign, calloc'd objects are checked for zeroes before they
// are filled, some objects are grown or shrunk with realloc (their surviving words checked), and
// each thread's list of objects grows by realloc.
//
//   mi_stress [THREADS [ROUNDS [SCALE]]]     defaults: 4 threads, 10 rounds, scale 10
//
// SCALE sets the work per thread (the original's "load-per-thread": 100 x SCALE allocations,
// times 1 to 8 depending on the thread's index). Exit 0 when every check held.
#include "mi_test.h"
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define SLOTS 1000
static _Atomic(uintptr_t *) slots[SLOTS];

static int threads = 4, rounds = 10, scale = 10;

static const uintptr_t COOKIE = (uintptr_t)0x9d2c5680a3b1f7e5ULL;

// Counters over the whole run (relaxed: read after the threads are joined).
static atomic_ulong objects, bytes, corrupt, not_zero, misaligned, failed, exchanges, resized;

typedef struct { uint64_t s; } rng_t;

static uint64_t next(rng_t *r) {  // xorshift64*
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545f4914f6cdd1dULL;
}

static bool percent(rng_t *r, unsigned p) { return next(r) % 100 < p; }

/// The value word `i` of an object of `n` words holds.
static inline uintptr_t word_value(uintptr_t n, uintptr_t i) {
    uintptr_t v = (n << 20) ^ (i * (uintptr_t)0x9e3779b97f4a7c15ULL);
    return v ^ COOKIE;
}

static void fill(uintptr_t *p, uintptr_t n) {
    p[0] = n ^ COOKIE;
    for (uintptr_t i = 1; i < n; i++) p[i] = word_value(n, i);
}

/// Checks every word of `p`; false (and a message) when one differs.
static bool intact(const uintptr_t *p) {
    uintptr_t n = p[0] ^ COOKIE;
    if (n == 0 || n > ((uintptr_t)1 << 28)) {
        printf("FAIL corrupt object %p: its size word reads %#lx\n", (void *)p, (unsigned long)p[0]);
        return false;
    }
    for (uintptr_t i = 1; i < n; i++) {
        if (p[i] != word_value(n, i)) {
            printf("FAIL corrupt object %p of %lu words: word %lu is %#lx, want %#lx\n", (void *)p, (unsigned long)n,
                   (unsigned long)i, (unsigned long)p[i], (unsigned long)word_value(n, i));
            return false;
        }
    }
    return true;
}

static void release(uintptr_t *p) {
    if (p == NULL) return;
    if (!intact(p)) {
        atomic_fetch_add_explicit(&corrupt, 1, memory_order_relaxed);
        return;  // leave it: its neighbours may be what was overwritten
    }
    free(p);
}

/// A new object of `items` words (sometimes far more), from one of the entry points.
static uintptr_t *make(uintptr_t items, rng_t *r) {
    if (percent(r, 1)) {
        if (percent(r, 1)) items *= 10000;        // giant (0.01%)
        else if (percent(r, 10)) items *= 1000;   // huge (0.1%)
        else items *= 100;                        // large (1%)
    }
    if (items < 1) items = 1;
    size_t size = items * sizeof(uintptr_t);
    uintptr_t *p = NULL;
    size_t align = 0;
    unsigned kind = (unsigned)(next(r) % 100);
    if (kind < 50) {
        p = calloc(items, sizeof(uintptr_t));
        if (p) {
            for (uintptr_t i = 0; i < items; i++)
                if (p[i] != 0) {
                    printf("FAIL calloc(%lu, %zu) = %p: word %lu is %#lx, not zero\n", (unsigned long)items,
                           sizeof(uintptr_t), (void *)p, (unsigned long)i, (unsigned long)p[i]);
                    atomic_fetch_add_explicit(&not_zero, 1, memory_order_relaxed);
                    break;
                }
        }
    } else if (kind < 85) {
        p = malloc(size);
    } else if (kind < 92) {
        align = (size_t)16 << (next(r) % 9);  // 16 .. 4096
        p = aligned_alloc(align, size);
    } else if (kind < 97) {
        align = sizeof(void *) << (next(r) % 10);
        void *q = NULL;
        p = posix_memalign(&q, align, size) == 0 ? q : NULL;
    } else {
        align = (size_t)1 << (next(r) % 14);  // 1 .. 8192
        p = memalign(align, size);
    }
    if (p == NULL) {
        printf("FAIL no memory for %zu bytes (entry %u, alignment %zu)\n", size, kind, align);
        atomic_fetch_add_explicit(&failed, 1, memory_order_relaxed);
        return NULL;
    }
    if (align && ((uintptr_t)p % align) != 0) {
        printf("FAIL %p is not aligned to %zu\n", (void *)p, align);
        atomic_fetch_add_explicit(&misaligned, 1, memory_order_relaxed);
    }
    fill(p, items);
    atomic_fetch_add_explicit(&objects, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&bytes, size, memory_order_relaxed);
    return p;
}

/// Grows or shrinks `p` with realloc; the words that remain must be unchanged.
static uintptr_t *resize(uintptr_t *p, rng_t *r) {
    if (p == NULL || !intact(p)) {
        if (p) atomic_fetch_add_explicit(&corrupt, 1, memory_order_relaxed);
        return NULL;  // a corrupt object is left alone (and dropped from the list)
    }
    uintptr_t n = p[0] ^ COOKIE;
    uintptr_t m = 1 + next(r) % (2 * n + 8);
    uintptr_t *q = realloc(p, m * sizeof(uintptr_t));
    if (q == NULL) {
        printf("FAIL realloc to %lu words failed\n", (unsigned long)m);
        atomic_fetch_add_explicit(&failed, 1, memory_order_relaxed);
        return p;  // p is intact and still ours; the caller keeps it
    }
    uintptr_t keep = m < n ? m : n;
    bool same = (q[0] ^ COOKIE) == n;
    for (uintptr_t i = 1; i < keep && same; i++) same = q[i] == word_value(n, i);
    if (!same) {
        printf("FAIL realloc from %lu to %lu words changed the kept words\n", (unsigned long)n, (unsigned long)m);
        atomic_fetch_add_explicit(&corrupt, 1, memory_order_relaxed);
    }
    fill(q, m);
    atomic_fetch_add_explicit(&resized, 1, memory_order_relaxed);
    return q;
}

static void *worker(void *arg) {
    uintptr_t index = (uintptr_t)arg;
    rng_t r = {0x243f6a8885a308d3ULL ^ ((uint64_t)index * 0x100000001b3ULL) ^ ((uint64_t)index << 40)};
    for (int i = 0; i < 8; i++) next(&r);
    size_t allocations = 100 * (size_t)scale * (index % 8 + 1);
    size_t keep = allocations / 2;
    uintptr_t **kept = calloc(keep ? keep : 1, sizeof *kept);
    size_t keptCount = 0;
    uintptr_t **list = NULL;
    size_t listCap = 0, listCount = 0;
    if (kept == NULL) {
        atomic_fetch_add_explicit(&failed, 1, memory_order_relaxed);
        return NULL;
    }
    while (allocations > 0 || keep > 0) {
        if (keep == 0 || (allocations > 0 && percent(&r, 50))) {
            allocations--;
            if (listCount == listCap) {
                listCap += 4096;
                uintptr_t **grown = realloc(list, listCap * sizeof *list);
                if (grown == NULL) {
                    atomic_fetch_add_explicit(&failed, 1, memory_order_relaxed);
                    break;
                }
                list = grown;
            }
            list[listCount++] = make((uintptr_t)1 << (next(&r) % 5), &r);
        } else {
            kept[keptCount++] = make((uintptr_t)1 << (next(&r) % 7), &r);
            keep--;
        }
        if (listCount > 0 && percent(&r, 66)) {  // free one of the list's objects
            size_t at = next(&r) % listCount;
            release(list[at]);
            list[at] = NULL;
        }
        if (listCount > 0 && percent(&r, 5)) {  // resize one
            size_t at = next(&r) % listCount;
            list[at] = resize(list[at], &r);
        }
        if (listCount > 0 && percent(&r, 25)) {  // swap one with a transfer slot
            size_t at = next(&r) % listCount;
            list[at] = atomic_exchange(&slots[next(&r) % SLOTS], list[at]);
            atomic_fetch_add_explicit(&exchanges, 1, memory_order_relaxed);
        }
    }
    for (size_t i = 0; i < keptCount; i++) release(kept[i]);
    for (size_t i = 0; i < listCount; i++) release(list[i]);
    free(kept);
    free(list);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1 && atoi(argv[1]) > 0) threads = atoi(argv[1]);
    if (argc > 2 && atoi(argv[2]) > 0) rounds = atoi(argv[2]);
    if (argc > 3 && atoi(argv[3]) > 0) scale = atoi(argv[3]);
    mt_start("mi_stress", 90);
    printf("mi_stress: %d threads, %d rounds, scale %d\n", threads, rounds, scale);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);

    rng_t r = {0x7feb352d12345678ULL};
    int startFailures = 0;
    pthread_t *ids = calloc((size_t)threads, sizeof *ids);
    if (ids == NULL) return 1;
    for (int round = 0; round < rounds; round++) {
        int started = 0;
        for (int t = 0; t < threads; t++) {
            if (pthread_create(&ids[t], NULL, worker, (void *)(uintptr_t)t) != 0) {
                startFailures++;
                break;
            }
            started++;
        }
        for (int t = 0; t < started; t++) pthread_join(ids[t], NULL);
        // About half of the slots survive into the next round; the last round empties them all.
        for (int i = 0; i < SLOTS; i++)
            if (round + 1 == rounds || percent(&r, 50)) release(atomic_exchange(&slots[i], NULL));
    }
    free(ids);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

    int leftInSlots = 0;
    for (int i = 0; i < SLOTS; i++) leftInSlots += atomic_load(&slots[i]) != NULL;
    printf("  %lu objects (%lu MiB), %lu resized, %lu slot exchanges, %.2f s\n", (unsigned long)objects,
           (unsigned long)(bytes >> 20), (unsigned long)resized, (unsigned long)exchanges, seconds);

    mt_verdict("threads-started", startFailures == 0, "%d pthread_create calls failed", startFailures);
    mt_verdict("allocations-served", failed == 0, "%lu allocations or reallocations failed", (unsigned long)failed);
    mt_verdict("cookies-intact", corrupt == 0, "%lu objects were found corrupt", (unsigned long)corrupt);
    mt_verdict("calloc-zeroed", not_zero == 0, "%lu calloc'd objects were not zero", (unsigned long)not_zero);
    mt_verdict("aligned", misaligned == 0, "%lu aligned objects were misaligned", (unsigned long)misaligned);
    mt_verdict("slots-emptied", leftInSlots == 0, "%d transfer slots still hold an object", leftInSlots);
    return mt_finish();
}
