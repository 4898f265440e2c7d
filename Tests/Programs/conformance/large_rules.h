// Blocks above the largest block, and the C23 sized frees.
// Part of conformance.c (Tests/Programs/conformance.c includes it once; built as one file).
#pragma once
#include "check.h"

// MARK: - large blocks

static void check_large(void) {
    size_t top = max_block();
    size_t sizes[] = {top + 1, 2 * top, 3 * top + 5};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned char *p = malloc(n);
        CHECK("large/non-null", p != NULL, "malloc(%zu) = NULL", n);
        if (!p) continue;
        size_t u = malloc_usable_size(p);
        CHECK("large/usable", u >= n, "malloc(%zu): usable %zu", n, u);
        // Above the maximum block: a mapping of its own, the request in whole pages.
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        if (buddy)
            CHECK("large/mapped-buddy", u == ((n + page - 1) & ~(page - 1)),
                  "malloc(%zu): usable %zu, expected the request in whole pages", n, u);
        memset(p, 0x42, u);
        fill(p, n, 9);
        unsigned char *q = realloc(p, n * 2);
        CHECK("large/realloc-grow", q != NULL && first_mismatch(q, n, 9) == (size_t)-1, "realloc(%zu -> %zu)", n, n * 2);
        if (!q) { free(p); continue; }
        unsigned char *r = realloc(q, 100);
        // (The first n bytes carry the pattern: all 100 when n > 100, as with the default
        // maximum block; under a maximum block of 16 to 64 bytes, n is smaller.)
        CHECK("large/realloc-to-small", r != NULL && first_mismatch(r, n < 100 ? n : 100, 9) == (size_t)-1, "realloc(%zu -> 100)", n * 2);
        if (r) CHECK("large/realloc-to-small-usable", malloc_usable_size(r) >= 100, "usable %zu", malloc_usable_size(r));
        free(r ? r : q);
    }
    void *big = calloc(3, MiB);
    CHECK("large/calloc", big != NULL && ((unsigned char *)big)[3 * MiB - 1] == 0, "calloc(3, 1 MiB) = %p", big);
    free(big);
}

// MARK: - C23 sized frees

static void check_sized_free(void) {
    void (*free_sized_fn)(void *, size_t) = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
    void (*free_aligned_sized_fn)(void *, size_t, size_t) =
        (void (*)(void *, size_t, size_t))dlsym(RTLD_DEFAULT, "free_aligned_sized");
    if (buddy) {
        CHECK("free_sized/exported", free_sized_fn != NULL, "dlsym(free_sized) = NULL");
        CHECK("free_aligned_sized/exported", free_aligned_sized_fn != NULL, "dlsym(free_aligned_sized) = NULL");
        const char *own[] = {"buddy_malloc", "buddy_free", "buddy_realloc", "buddy_malloc_usable_size", "buddy_exit_report"};
        for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
            CHECK("exports/buddy-names", dlsym(RTLD_DEFAULT, own[i]) != NULL, "dlsym(%s) = NULL", own[i]);
    }
    if (free_sized_fn) {
        void *p = malloc(100);
        errno = 1234;
        free_sized_fn(p, 100);
        CHECK("free_sized/errno", errno == 1234, "errno %d", errno);
        if (buddy) CHECK("free_sized/frees", child_double_free_aborts(p), "free after free_sized did not abort: not freed");
        p = malloc(3 * MiB);
        free_sized_fn(p, 3 * MiB);
        free_sized_fn(NULL, 0);
        // The block is reusable: many rounds would run out of memory if it leaked.
        for (int i = 0; i < 2000; i++) free_sized_fn(malloc(4096), 4096);
        CHECK("free_sized/works", 1, "unreachable");
    }
    if (free_aligned_sized_fn) {
        void *p = aligned_alloc(4096, 5000);
        errno = 1234;
        free_aligned_sized_fn(p, 4096, 5000);
        CHECK("free_aligned_sized/errno", errno == 1234, "errno %d", errno);
        if (buddy) CHECK("free_aligned_sized/frees", child_double_free_aborts(p), "free after free_aligned_sized did not abort");
        p = aligned_alloc(2 * MiB, 3 * MiB);
        free_aligned_sized_fn(p, 2 * MiB, 3 * MiB);
        free_aligned_sized_fn(NULL, 64, 0);
        CHECK("free_aligned_sized/works", 1, "unreachable");
    }
}
