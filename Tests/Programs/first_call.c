// first_call: every entry point of the malloc family, at every interesting size, as the very
// first operation of a new thread (one new thread per case, then all cases of an entry point at
// once from threads released together), and as the program's first allocation, from a
// constructor of priority 101 (FIRST_CALL_CTOR names the entry point the constructor calls
// first; default malloc). Run by Tests/PreloadTests/StressTests.swift.
//
// Every result is checked: non-NULL (NULL is accepted only for size 0), aligned to what the
// entry point promises, malloc_usable_size >= the request, every usable byte writable (calloc:
// the requested bytes are zero), then freed.
//
// Output: "constructor: <entry> ok, usable(100)=N", "threads: N cases ok", "concurrent: N cases
// ok", "usable(100)=N". Exit status 0 when every check passed; failures are listed on stderr.
// Build with -fno-builtin.
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum entry { E_MALLOC, E_CALLOC, E_REALLOC, E_POSIX_MEMALIGN, E_ALIGNED_ALLOC, E_MEMALIGN, E_VALLOC, E_PVALLOC, E_COUNT };
static const char *entry_names[E_COUNT] = {
    "malloc", "calloc", "realloc(NULL)", "posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc",
};

typedef struct {
    int entry;
    size_t size;
    size_t alignment; // for posix_memalign, aligned_alloc, memalign
    int failed;
    char message[200];
} case_t;

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

// Runs one case: the call comes first, before anything else the function does.
static void run_case(case_t *c) {
    void *p = NULL;
    int rc = 0;
    size_t want_align = 16, want_usable = c->size;
    switch (c->entry) {
    case E_MALLOC: p = malloc(c->size); break;
    case E_CALLOC: p = calloc(1, c->size); break;
    case E_REALLOC: p = realloc(NULL, c->size); break;
    case E_POSIX_MEMALIGN: rc = posix_memalign(&p, c->alignment, c->size); want_align = c->alignment; break;
    case E_ALIGNED_ALLOC: p = aligned_alloc(c->alignment, c->size); want_align = c->alignment; break;
    case E_MEMALIGN: p = memalign(c->alignment, c->size); want_align = c->alignment; break;
    case E_VALLOC: p = valloc(c->size); want_align = page_size(); break;
    case E_PVALLOC:
        p = pvalloc(c->size);
        want_align = page_size();
        want_usable = (c->size + page_size() - 1) / page_size() * page_size(); // glibc: 0 stays 0
        break;
    }
    if (want_align < 16) want_align = 16;
    c->failed = 0;
    if (rc != 0 || (p == NULL && c->size != 0)) {
        c->failed = 1;
        snprintf(c->message, sizeof c->message, "returned %s (rc %d)", p ? "a pointer" : "NULL", rc);
        return;
    }
    if (p == NULL) return; // size 0 may give NULL
    if ((uintptr_t)p % want_align != 0) {
        c->failed = 1;
        snprintf(c->message, sizeof c->message, "%p is not aligned to %zu", p, want_align);
    }
    size_t usable = malloc_usable_size(p);
    if (usable < want_usable) {
        c->failed = 1;
        snprintf(c->message, sizeof c->message, "%p: usable size %zu < %zu", p, usable, want_usable);
    }
    if (c->entry == E_CALLOC) {
        const unsigned char *b = p;
        for (size_t i = 0; i < c->size; i++)
            if (b[i] != 0) {
                c->failed = 1;
                snprintf(c->message, sizeof c->message, "%p: calloc byte %zu is 0x%02x", p, i, b[i]);
                break;
            }
    }
    if (usable >= want_usable && !c->failed) {
        memset(p, 0xab, usable);
        const volatile unsigned char *b = p;
        if (usable > 0 && (b[0] != 0xab || b[usable - 1] != 0xab || b[usable / 2] != 0xab)) {
            c->failed = 1;
            snprintf(c->message, sizeof c->message, "%p: usable bytes did not keep what was written", p);
        }
    }
    free(p);
}

static void *case_thread(void *arg) {
    run_case(arg);
    return NULL;
}

static pthread_barrier_t g_barrier;

static void *concurrent_thread(void *arg) {
    pthread_barrier_wait(&g_barrier); // does not allocate
    run_case(arg);
    return NULL;
}

// 0, 1, 8, then 2^k - 1, 2^k, 2^k + 1 for 16 .. 1 MiB (the largest block), 2 MiB, 8 MiB.
static size_t sizes[128];
static int nsizes;

static void make_sizes(void) {
    sizes[nsizes++] = 0;
    sizes[nsizes++] = 1;
    sizes[nsizes++] = 8;
    for (size_t p = 16; p <= ((size_t)1 << 20); p <<= 1) {
        sizes[nsizes++] = p - 1;
        sizes[nsizes++] = p;
        sizes[nsizes++] = p + 1;
    }
    sizes[nsizes++] = (size_t)2 << 20;
    sizes[nsizes++] = (size_t)8 << 20;
}

static const size_t alignments[] = {8, 64, 4096, (size_t)1 << 20, (size_t)2 << 20};
#define NALIGN (sizeof alignments / sizeof alignments[0])

static int is_aligned_entry(int e) { return e == E_POSIX_MEMALIGN || e == E_ALIGNED_ALLOC || e == E_MEMALIGN; }

static int report(const char *phase, const case_t *c) {
    if (!c->failed) return 0;
    fprintf(stderr, "first_call: %s: %s(size %zu", phase, entry_names[c->entry], c->size);
    if (is_aligned_entry(c->entry)) fprintf(stderr, ", alignment %zu", c->alignment);
    fprintf(stderr, "): %s\n", c->message);
    return 1;
}

// ---------------------------------------------------------------- the constructor

static int g_ctor_failures;
static const char *g_ctor_entry = "malloc";
static size_t g_ctor_usable100;

__attribute__((constructor(101))) static void first_allocation(void) {
    const char *name = getenv("FIRST_CALL_CTOR");
    int entry = E_MALLOC;
    if (name != NULL)
        for (int e = 0; e < E_COUNT; e++)
            if (strcmp(name, entry_names[e]) == 0 || (e == E_REALLOC && strcmp(name, "realloc") == 0)) entry = e;
    g_ctor_entry = entry_names[entry];
    static const size_t ctor_sizes[] = {100, 0, 1, ((size_t)1 << 20) - 1, ((size_t)1 << 20) + 1, (size_t)8 << 20};
    for (size_t i = 0; i < sizeof ctor_sizes / sizeof ctor_sizes[0]; i++) {
        case_t c = {entry, ctor_sizes[i], 64, 0, ""};
        run_case(&c);
        g_ctor_failures += report("constructor", &c);
    }
    void *p = malloc(100);
    g_ctor_usable100 = malloc_usable_size(p);
    free(p);
}

int main(void) {
    make_sizes();
    int failures = g_ctor_failures;
    printf("constructor: %s %s, usable(100)=%zu\n", g_ctor_entry, g_ctor_failures ? "FAILED" : "ok", g_ctor_usable100);

    // One new thread per case, one at a time.
    int cases = 0;
    for (int e = 0; e < E_COUNT; e++) {
        for (int s = 0; s < nsizes; s++) {
            for (size_t a = 0; a < (is_aligned_entry(e) ? NALIGN : 1); a++) {
                case_t c = {e, sizes[s], alignments[a], 0, ""};
                // aligned_alloc's and memalign's alignment starts at 16 (8 is posix_memalign's).
                if (e != E_POSIX_MEMALIGN && c.alignment < 16) c.alignment = 16;
                pthread_t t;
                int rc = pthread_create(&t, NULL, case_thread, &c);
                if (rc != 0) { fprintf(stderr, "first_call: pthread_create: %s\n", strerror(rc)); return 1; }
                pthread_join(t, NULL);
                failures += report("new thread", &c);
                cases++;
            }
        }
    }
    printf("threads: %d cases %s\n", cases, failures ? "FAILED" : "ok");

    // Every size of an entry point at once, from threads released together.
    int concurrent = 0, before = failures;
    static case_t batch[128];
    static pthread_t threads[128];
    for (int e = 0; e < E_COUNT; e++) {
        pthread_barrier_init(&g_barrier, NULL, (unsigned)nsizes);
        for (int s = 0; s < nsizes; s++) {
            batch[s] = (case_t){e, sizes[s], alignments[s % NALIGN] < 16 ? 16 : alignments[s % NALIGN], 0, ""};
            int rc = pthread_create(&threads[s], NULL, concurrent_thread, &batch[s]);
            if (rc != 0) { fprintf(stderr, "first_call: pthread_create: %s\n", strerror(rc)); return 1; }
        }
        for (int s = 0; s < nsizes; s++) {
            pthread_join(threads[s], NULL);
            failures += report("concurrent", &batch[s]);
            concurrent++;
        }
        pthread_barrier_destroy(&g_barrier);
    }
    printf("concurrent: %d cases %s\n", concurrent, failures > before ? "FAILED" : "ok");

    void *p = malloc(100);
    printf("usable(100)=%zu\n", malloc_usable_size(p));
    free(p);
    return failures == 0 ? 0 : 1;
}
