// The rules of realloc.
// Part of conformance.c (Tests/Programs/conformance.c includes it once; built as one file).
#pragma once
#include "check.h"

// MARK: - realloc

static void check_realloc_basics(void) {
    void *p = realloc(NULL, 100);
    CHECK("realloc/NULL-is-malloc", p != NULL && malloc_usable_size(p) >= 100, "realloc(NULL, 100) = %p", p);
    if (buddy && p) CHECK("realloc/NULL-is-malloc-buddy", malloc_usable_size(p) == 128, "usable %zu", malloc_usable_size(p));
    free(p);

    p = malloc(64);
    errno = 0;
    void *q = realloc(p, 0);
    CHECK("realloc/zero-returns-NULL", q == NULL, "realloc(p, 0) returned %p", q);
    if (q == NULL && !log_mode) CHECK("realloc/zero-frees", child_double_free_aborts(p), "freeing the block again did not abort: realloc(p, 0) did not free it");
    else free(q);

    // Failure: NULL, ENOMEM, and the old block intact, for a small and a large block.
    size_t olds[] = {100, 4096, MiB, 3 * MiB};
    for (size_t i = 0; i < sizeof olds / sizeof olds[0]; i++) {
        size_t n = olds[i];
        unsigned char *b = malloc(n);
        fill(b, n, 3);
        size_t huge[] = {SIZE_MAX, (size_t)PTRDIFF_MAX + 1, SIZE_MAX - 4096};
        for (int k = 0; k < 3; k++) {
            errno = 0;
            void *r = realloc(b, huge[k]);
            CHECK("realloc/failure-enomem", r == NULL && errno == ENOMEM, "realloc(%zu-byte block, %zu) = %p errno %d", n, huge[k], r, errno);
            if (r) { b = r; continue; }
        }
        CHECK("realloc/failure-keeps-block", first_mismatch(b, n, 3) == (size_t)-1,
              "%zu-byte block changed at byte %zu after a failed realloc", n, first_mismatch(b, n, 3));
        CHECK("realloc/failure-keeps-size", malloc_usable_size(b) >= n, "usable size %zu < %zu", malloc_usable_size(b), n);
        free(b);
    }
}

static void check_realloc_in_place(void) {
    size_t sizes[] = {1, 24, 100, 1000, 5000, 70000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = malloc(sizes[i]);
        size_t u = malloc_usable_size(p);
        fill(p, u, 11);
        unsigned char *q = realloc(p, u);
        CHECK("realloc/fits-in-place-grow", q == p, "realloc(malloc(%zu), usable %zu) moved %p -> %p", sizes[i], u, (void *)p, (void *)q);
        p = q;
        q = realloc(p, sizes[i] / 2 + 1);
        // A block shrinks in place; a slab object stays only within its class (it has no
        // neighbour to give back: a smaller class frees memory).
        // (Under other options, --glibc-rules, the sizes may lie above the maximum block, whose
        // blocks move into the pool when they shrink below it: any answer that keeps the bytes.)
        int stays = (!buddy && !glibc_rules_only) ||
                    (!glibc_rules_only && (buddy_size(sizes[i] / 2 + 1) == u || (u & (u - 1)) == 0));
        CHECK("realloc/fits-in-place-shrink", stays ? q == p : q != NULL, "realloc(malloc(%zu), %zu) moved %p -> %p", sizes[i], sizes[i] / 2 + 1,
              (void *)p, (void *)q);
        CHECK("realloc/shrink-keeps-contents", first_mismatch(q, sizes[i] / 2 + 1, 11) == (size_t)-1, "size %zu", sizes[i]);
        free(q);
    }
    if (!buddy) return;
    // A 1 MiB block: shrink it in place, then grow it back through its free buddies. No
    // allocation may happen in between (nothing is printed unless a check fails). The sizes stay
    // in the large size class (32 KiB and up): a block that changes class moves (next check).
    unsigned char *p = malloc(MiB);
    fill(p, 64, 5);
    unsigned char *a = realloc(p, 40000);
    unsigned char *b = realloc(a, 50000);
    unsigned char *c = realloc(b, 300000);
    unsigned char *d = realloc(c, MiB);
    CHECK("realloc/shrink-in-place-buddy", a == p, "realloc(1 MiB block, 40000) moved %p -> %p", (void *)p, (void *)a);
    CHECK("realloc/grow-into-free-buddies-buddy", b == a && c == b && d == c,
          "growing 40000 -> 50000 -> 300000 -> 1 MiB moved the block: %p %p %p %p", (void *)a, (void *)b, (void *)c, (void *)d);
    CHECK("realloc/grow-in-place-usable-buddy", malloc_usable_size(d) == MiB, "usable %zu", malloc_usable_size(d));
    CHECK("realloc/grow-in-place-keeps-contents", first_mismatch(d, 64, 5) == (size_t)-1, "byte %zu", first_mismatch(d, 64, 5));
    unsigned char *e = realloc(d, 64);
    CHECK("realloc/shrink-across-size-class-moves-buddy", e != d && e != NULL && first_mismatch(e, 64, 5) == (size_t)-1,
          "realloc(1 MiB block, 64) = %p (from %p): a small block must leave the large blocks' segment", (void *)e, (void *)d);
    d = realloc(e, MiB);
    memset(d, 0x77, MiB);
    free(d);
}

static void check_realloc_moves(void) {
    size_t steps[] = {1, 2, 3, 15, 16, 17, 100, 128, 129, 1000, 4096, 4097, 65536, 100000, MiB - 1, MiB, MiB + 1,
                      2 * MiB, MiB, 1000, 17, 1, 5000, 2 * MiB, 1};
    size_t n = steps[0];
    unsigned char *p = malloc(n);
    fill(p, n, 1);
    for (size_t i = 1; i < sizeof steps / sizeof steps[0]; i++) {
        size_t m = steps[i];
        unsigned char *q = realloc(p, m);
        CHECK("realloc/non-null", q != NULL, "realloc %zu -> %zu returned NULL", n, m);
        if (!q) break;
        size_t keep = n < m ? n : m;
        size_t bad = first_mismatch(q, keep, (unsigned)i);
        CHECK("realloc/preserves-contents", bad == (size_t)-1, "realloc %zu -> %zu: byte %zu differs", n, m, bad);
        CHECK("realloc/usable", malloc_usable_size(q) >= m, "realloc %zu -> %zu: usable %zu", n, m, malloc_usable_size(q));
        CHECK("realloc/aligned-16", aligned(q, 16), "realloc %zu -> %zu returned %p", n, m, (void *)q);
        p = q;
        n = m;
        fill(p, n, (unsigned)i + 1);
    }
    free(p);
}
