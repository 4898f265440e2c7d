// The rules of the aligned allocators: posix_memalign, aligned_alloc, memalign, valloc, pvalloc.
// Part of conformance.c (Tests/Programs/conformance.c includes it once; built as one file).
#pragma once
#include "check.h"

// MARK: - aligned allocation

static void check_posix_memalign(void) {
    size_t invalid[] = {0, 1, 2, 3, 4, 12, 24, 48, 96, 4097, SIZE_MAX};
    void *sentinel = (void *)0x5a5a5a5a;
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        void *m = sentinel;
        errno = 0;
        int rc = posix_memalign(&m, invalid[i], 64);
        CHECK("posix_memalign/einval", rc == EINVAL, "alignment %zu: returned %d, expected EINVAL (%d)", invalid[i], rc, EINVAL);
        CHECK("posix_memalign/einval-untouched", m == sentinel, "alignment %zu: *memptr changed to %p", invalid[i], m);
        // glibc returns EINVAL without touching errno.
        CHECK("posix_memalign/einval-errno", errno == 0, "alignment %zu: errno %d, expected it unchanged (0)", invalid[i], errno);
        if (m != sentinel) free(m);
    }
    size_t huge[] = {SIZE_MAX, SIZE_MAX - 4096, (size_t)PTRDIFF_MAX + 1};
    size_t alignments[] = {8, 64, 4096, MiB, 2 * MiB};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++)
        for (size_t k = 0; k < sizeof alignments / sizeof alignments[0]; k++) {
            void *m = sentinel;
            errno = 0;
            int rc = posix_memalign(&m, alignments[k], huge[i]);
            CHECK("posix_memalign/enomem", rc == ENOMEM, "size %zu alignment %zu: returned %d, expected ENOMEM (%d)",
                  huge[i], alignments[k], rc, ENOMEM);
            // glibc also sets errno (its tst-malloc-thread-fail reads it): programs do.
            CHECK("posix_memalign/enomem-errno", errno == ENOMEM, "size %zu alignment %zu: errno %d, expected ENOMEM",
                  huge[i], alignments[k], errno);
            CHECK("posix_memalign/enomem-untouched", m == sentinel, "size %zu: *memptr changed to %p", huge[i], m);
            if (m != sentinel) free(m);
        }
    void *m = sentinel;
    int rc = posix_memalign(&m, SIZE_MAX / 2 + 1, 1);
    CHECK("posix_memalign/huge-alignment", rc == ENOMEM || rc == EINVAL, "alignment 2^63: returned %d", rc);
    CHECK("posix_memalign/huge-alignment-untouched", m == sentinel, "alignment 2^63: *memptr changed to %p", m);
}

static void check_alignments(void) {
    for (size_t a = 8; a <= 4 * MiB; a <<= 1) {
        size_t sizes[] = {1, 24, a / 2 + 1, a, a + 1};
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            size_t n = sizes[s];
            for (int fn = 0; fn < 3; fn++) {
                const char *name = fn == 0 ? "posix_memalign" : fn == 1 ? "aligned_alloc" : "memalign";
                void *p = NULL;
                if (fn == 0) {
                    int rc = posix_memalign(&p, a, n);
                    CHECK("align/posix_memalign-ok", rc == 0, "posix_memalign(%zu, %zu) returned %d", a, n, rc);
                    if (rc != 0) p = NULL;
                } else if (fn == 1) {
                    p = aligned_alloc(a, n);
                } else {
                    p = memalign(a, n);
                }
                CHECK("align/non-null", p != NULL, "%s(%zu, %zu) returned NULL", name, a, n);
                if (!p) continue;
                size_t need = a < 16 ? 16 : a;
                CHECK("align/aligned", aligned(p, need), "%s(%zu, %zu) returned %p, not %zu-aligned", name, a, n, p, need);
                size_t usable = malloc_usable_size(p);
                CHECK("align/usable", usable >= n, "%s(%zu, %zu): usable size %zu < %zu", name, a, n, usable, n);
                if (buddy && a <= MiB && n <= MiB) {
                    // Over-aligned requests get blocks; the others may get slab objects.
                    size_t want = a <= 16 ? buddy_size(n) : next_pow2(n > a ? n : a);
                    CHECK("align/usable-exact-buddy", usable == want,
                          "%s(%zu, %zu): usable size %zu, expected the block size %zu", name, a, n, usable, want);
                }
                memset(p, 0xC3, usable);
                free(p);
            }
        }
    }
}

static void check_aligned_alloc_invalid(void) {
    // glibc 2.38 made aligned_alloc reject alignments that are not powers of two (earlier
    // versions treated it as memalign); BuddyMalloc follows the newer rule.
    if (!buddy && !glibc_at_least(2, 38)) return;
    size_t invalid[] = {0, 3, 24, 48, 100, 4097};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        errno = 0;
        void *p = aligned_alloc(invalid[i], 64);
        CHECK("aligned_alloc/einval", p == NULL && errno == EINVAL,
              "aligned_alloc(%zu, 64) returned %p errno %d, expected NULL and EINVAL", invalid[i], p, errno);
        free(p);
    }
}

static void check_memalign_rounding(void) {
    struct { size_t alignment, expected; } cases[] = {
        {3, 16}, {5, 16}, {24, 32}, {48, 64}, {100, 128}, {3000, 4096}, {4097, 8192}, {MiB - 1, MiB},
        {MiB + 1, 2 * MiB},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        void *p = memalign(cases[i].alignment, 10);
        CHECK("memalign/rounds-up", p != NULL && aligned(p, cases[i].expected),
              "memalign(%zu, 10) returned %p, expected alignment %zu", cases[i].alignment, p, cases[i].expected);
        if (p) memset(p, 1, 10);
        free(p);
    }
    errno = 0;
    void *p = memalign(SIZE_MAX / 2 + 2, 1);
    CHECK("memalign/huge-alignment-einval", p == NULL && errno == EINVAL, "memalign(2^63+1, 1) = %p errno %d", p, errno);
}

// MARK: - valloc, pvalloc

static void check_page_allocs(void) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t sizes[] = {1, 100, 4096, 5000, 65536, MiB, 3 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = valloc(sizes[i]);
        CHECK("valloc/page-aligned", p != NULL && aligned(p, page), "valloc(%zu) = %p", sizes[i], p);
        if (p) {
            CHECK("valloc/usable", malloc_usable_size(p) >= sizes[i], "valloc(%zu): usable %zu", sizes[i], malloc_usable_size(p));
            memset(p, 3, sizes[i]);
        }
        free(p);
        p = pvalloc(sizes[i]);
        size_t rounded = (sizes[i] + page - 1) / page * page;
        CHECK("pvalloc/page-aligned", p != NULL && aligned(p, page), "pvalloc(%zu) = %p", sizes[i], p);
        if (p) {
            CHECK("pvalloc/usable-whole-pages", malloc_usable_size(p) >= rounded, "pvalloc(%zu): usable %zu < %zu",
                  sizes[i], malloc_usable_size(p), rounded);
            memset(p, 4, rounded);
        }
        free(p);
    }
    void *p = pvalloc(1);
    CHECK("pvalloc/one-page", p != NULL && malloc_usable_size(p) >= page, "pvalloc(1) = %p usable %zu", p, p ? malloc_usable_size(p) : 0);
    if (buddy && p) CHECK("pvalloc/one-page-buddy", malloc_usable_size(p) == page, "usable %zu", malloc_usable_size(p));
    free(p);
    p = pvalloc(0);
    CHECK("pvalloc/zero-non-null", p != NULL && aligned(p, page), "pvalloc(0) = %p", p);
    free(p);
    p = valloc(0);
    CHECK("valloc/zero-non-null", p != NULL && aligned(p, page), "valloc(0) = %p", p);
    free(p);
}
