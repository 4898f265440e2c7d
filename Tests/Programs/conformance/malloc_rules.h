// The rules of malloc, calloc, reallocarray and errno.
// Part of conformance.c (Tests/Programs/conformance.c includes it once; built as one file).
#pragma once
#include "check.h"

// MARK: - errno

static void check_enomem(void) {
    void *p;
#define ENOMEM_CASE(rule, expr)                                                                  \
    do {                                                                                         \
        errno = 0;                                                                               \
        p = (expr);                                                                              \
        CHECK(rule, p == NULL && errno == ENOMEM, "got %p, errno %d (%s), expected NULL and ENOMEM", \
              p, errno, strerror(errno));                                                        \
        free(p);                                                                                 \
    } while (0)
    ENOMEM_CASE("enomem/malloc(SIZE_MAX)", malloc(v_size_max));
    ENOMEM_CASE("enomem/malloc(PTRDIFF_MAX+1)", malloc(v_ptrdiff_over));
    ENOMEM_CASE("enomem/malloc(SIZE_MAX-4096)", malloc(v_size_max - 4096));
    ENOMEM_CASE("enomem/calloc(1,SIZE_MAX)", calloc(1, v_size_max));
    ENOMEM_CASE("enomem/realloc(NULL,SIZE_MAX)", realloc(NULL, v_size_max));
    ENOMEM_CASE("enomem/memalign(64,SIZE_MAX)", memalign(64, v_size_max));
    ENOMEM_CASE("enomem/aligned_alloc(64,SIZE_MAX)", aligned_alloc(64, v_size_max));
    ENOMEM_CASE("enomem/valloc(SIZE_MAX)", valloc(v_size_max));
    ENOMEM_CASE("enomem/pvalloc(SIZE_MAX)", pvalloc(v_size_max));
    ENOMEM_CASE("enomem/reallocarray(NULL,SIZE_MAX,2)", reallocarray(NULL, v_size_max, 2));
    ENOMEM_CASE("enomem/memalign(2MiB,PTRDIFF_MAX+1)", memalign(2 * MiB, v_ptrdiff_over));
#undef ENOMEM_CASE
}

static void check_free_preserves_errno(void) {
    void *p = malloc(64);
    errno = 1234;
    free(p);
    CHECK("free-errno/pool-block", errno == 1234, "errno %d after free(malloc(64)), expected 1234", errno);

    p = malloc(3 * MiB);
    errno = 1234;
    free(p);
    CHECK("free-errno/large-block", errno == 1234, "errno %d after free(malloc(3 MiB)), expected 1234", errno);

    errno = 1234;
    free(NULL);
    CHECK("free-errno/NULL", errno == 1234, "errno %d after free(NULL), expected 1234", errno);

    // Whole-MiB blocks: under BuddyMalloc the pool grows by segments and frees give them back
    // to the OS (munmap), which must not leak its errno either.
    void *blocks[12];
    for (int i = 0; i < 12; i++) blocks[i] = malloc(MiB);
    int bad = 0;
    for (int i = 0; i < 12; i++) {
        errno = 1234;
        free(blocks[i]);
        if (errno != 1234) bad = errno;
    }
    CHECK("free-errno/segment-release", bad == 0, "errno %d after freeing 1 MiB blocks, expected 1234", bad);

    p = memalign(4096, 100);
    errno = 1234;
    free(p);
    CHECK("free-errno/aligned-block", errno == 1234, "errno %d after free(memalign(4096,100))", errno);
}

// MARK: - calloc

static void check_calloc(void) {
    struct { size_t n, size; } overflow[] = {
        {SIZE_MAX, 2}, {2, SIZE_MAX}, {SIZE_MAX / 2 + 1, 2}, {(size_t)1 << 33, (size_t)1 << 31},
        {(size_t)1 << 32, (size_t)1 << 32}, {SIZE_MAX, SIZE_MAX},
    };
    for (size_t i = 0; i < sizeof overflow / sizeof overflow[0]; i++) {
        errno = 0;
        void *p = calloc(overflow[i].n, overflow[i].size);
        CHECK("calloc/overflow-enomem", p == NULL && errno == ENOMEM,
              "calloc(%zu, %zu) gave %p errno %d, expected NULL and ENOMEM", overflow[i].n, overflow[i].size,
              p, errno);
        free(p);
    }
    size_t sizes[] = {1, 8, 16, 17, 100, 128, 1000, 4096, 5000, 65536, 100000, MiB - 1, MiB, MiB + 1, 3 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        // Dirty blocks of this size class, free them, then calloc: recycled memory must be cleared.
        void *dirty[4];
        for (int k = 0; k < 4; k++) {
            dirty[k] = malloc(n);
            memset(dirty[k], 0xA5, malloc_usable_size(dirty[k]));
        }
        for (int k = 3; k >= 0; k--) free(dirty[k]);
        for (int form = 0; form < 2; form++) {
            unsigned char *q = form == 0 ? calloc(1, n) : calloc(n, 1);
            CHECK("calloc/non-null", q != NULL, "calloc of %zu bytes returned NULL", n);
            if (!q) continue;
            size_t bad = (size_t)-1;
            for (size_t b = 0; b < n; b++)
                if (q[b] != 0) { bad = b; break; }
            CHECK("calloc/zeroed", bad == (size_t)-1, "calloc(%s) of %zu bytes: byte %zu is 0x%02x, not 0",
                  form == 0 ? "1, n" : "n, 1", n, bad, bad == (size_t)-1 ? 0 : q[bad]);
            CHECK("calloc/aligned", aligned(q, 16), "calloc of %zu bytes returned %p, not 16-aligned", n, q);
            memset(q, 0x5A, n);
            free(q);
        }
    }
    void *z = calloc(0, 0), *z2 = calloc(0, 7);
    CHECK("calloc/zero-size-non-null", z != NULL && z2 != NULL && z != z2, "calloc(0,0)=%p calloc(0,7)=%p", z, z2);
    free(z);
    free(z2);
}

// MARK: - reallocarray

static void check_reallocarray(void) {
    unsigned char *p = malloc(100);
    fill(p, 100, 7);
    errno = 0;
    void *q = reallocarray(p, SIZE_MAX / 2 + 1, 2);
    CHECK("reallocarray/overflow-enomem", q == NULL && errno == ENOMEM, "got %p errno %d, expected NULL ENOMEM", q, errno);
    CHECK("reallocarray/overflow-keeps-block", first_mismatch(p, 100, 7) == (size_t)-1,
          "old block changed at byte %zu", first_mismatch(p, 100, 7));
    errno = 0;
    q = reallocarray(p, (size_t)1 << 33, (size_t)1 << 31);
    CHECK("reallocarray/overflow-enomem", q == NULL && errno == ENOMEM, "2^33 x 2^31: got %p errno %d", q, errno);
    unsigned char *r = reallocarray(p, 20, 10);
    CHECK("reallocarray/grows", r != NULL && malloc_usable_size(r) >= 200, "reallocarray(p, 20, 10) = %p", (void *)r);
    if (r) {
        CHECK("reallocarray/keeps-contents", first_mismatch(r, 100, 7) == (size_t)-1,
              "contents differ at byte %zu", first_mismatch(r, 100, 7));
        free(r);
    }
}

// MARK: - malloc

static int compare_ptr(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

static void check_malloc_alignment_and_overlap(void) {
    enum { N = 5001 };
    static uintptr_t ptrs[N];
    static uintptr_t spans[N][2];
    int misaligned = 0, nulls = 0;
    for (size_t n = 0; n < N; n++) {
        void *p = malloc(n);
        if (!p) { nulls++; ptrs[n] = 0; continue; }
        if (!aligned(p, 16)) {
            if (misaligned++ < 3) CHECK("malloc/aligned-16", 0, "malloc(%zu) returned %p", n, p);
        }
        memset(p, (int)(n & 0xFF), n);
        ptrs[n] = (uintptr_t)p;
    }
    CHECK("malloc/aligned-16", misaligned == 0, "%d of %d pointers not 16-aligned", misaligned, N);
    CHECK("malloc/non-null", nulls == 0, "%d of %d mallocs of 0..5000 bytes returned NULL", nulls, N);
    // Every byte still holds what was written (no block overlaps another).
    size_t corrupt = 0;
    for (size_t n = 0; n < N; n++) {
        const unsigned char *p = (const unsigned char *)ptrs[n];
        for (size_t b = 0; p && b < n; b++)
            if (p[b] != (unsigned char)(n & 0xFF)) { corrupt++; break; }
    }
    CHECK("malloc/no-overlap-contents", corrupt == 0, "%zu blocks were overwritten by others", corrupt);
    for (size_t n = 0; n < N; n++) {
        spans[n][0] = ptrs[n];
        spans[n][1] = ptrs[n] ? ptrs[n] + malloc_usable_size((void *)ptrs[n]) : 0;
    }
    qsort(spans, N, sizeof spans[0], compare_ptr);
    int overlaps = 0;
    for (size_t i = 1; i < N; i++)
        if (spans[i - 1][0] && spans[i][0] < spans[i - 1][1]) overlaps++;
    CHECK("malloc/no-overlap-usable", overlaps == 0, "%d blocks' usable ranges overlap the next block", overlaps);
    for (size_t n = 0; n < N; n++) free((void *)ptrs[n]);
}

static void check_malloc_zero(void) {
    enum { N = 100 };
    void *p[N];
    int nulls = 0, dups = 0;
    for (int i = 0; i < N; i++) {
        p[i] = malloc(0);
        if (!p[i]) nulls++;
        for (int k = 0; k < i; k++)
            if (p[k] && p[k] == p[i]) dups++;
    }
    CHECK("malloc0/non-null", nulls == 0, "%d of %d malloc(0) returned NULL", nulls, N);
    CHECK("malloc0/unique", dups == 0, "%d duplicate pointers among %d live malloc(0) blocks", dups, N);
    if (buddy && p[0]) CHECK("malloc0/usable-buddy", malloc_usable_size(p[0]) == 16, "usable %zu, expected 16", malloc_usable_size(p[0]));
    for (int i = 0; i < N; i++) free(p[i]);
}

static void check_usable_size(void) {
    CHECK("usable/NULL", malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) = %zu", malloc_usable_size(NULL));
    size_t tested = 0, inexact = 0, small = 0, first_bad = 0, first_got = 0;
    for (size_t n = 1; n <= MiB; n = n < 5000 ? n + 1 : n * 2 - 1 + (n & 1)) {
        size_t sizes[3] = {n, next_pow2(n), next_pow2(n) + 1};
        for (int k = 0; k < 3; k++) {
            size_t s = sizes[k];
            if (s > MiB) continue;
            unsigned char *p = malloc(s);
            if (!p) { small++; continue; }
            size_t u = malloc_usable_size(p);
            if (u < s) small++;
            if (buddy && u != buddy_size(s) && !inexact++) { first_bad = s; first_got = u; }
            memset(p, 0xEE, u); // every usable byte is the caller's
            p[u - 1] = 1;
            free(p);
            tested++;
        }
    }
    CHECK("usable/at-least-request", small == 0, "%zu of %zu sizes had a usable size below the request", small, tested);
    if (buddy)
        CHECK("usable/exact-block-or-slab-object-buddy", inexact == 0,
              "%zu sizes not exactly the power of two or slab class; first: malloc(%zu) usable %zu, expected %zu", inexact,
              first_bad, first_got, buddy_size(first_bad));
    if (buddy && buddy_size(4200) == 4608) {
        // Slab objects: packed (two in a row are one object apart), and a freed one is caught
        // when freed again, as a block is.
        unsigned char *a = malloc(4200), *b = malloc(4200);
        CHECK("usable/slab-object-buddy", malloc_usable_size(a) == 4608 && malloc_usable_size(b) == 4608,
              "malloc(4200): usable %zu and %zu, expected 4608", malloc_usable_size(a), malloc_usable_size(b));
        free(b);
        CHECK("usable/slab-double-free-aborts-buddy", child_double_free_aborts(b), "freeing a slab object twice did not abort");
        free(a);
    }
    if (buddy)
        for (size_t b = 16; b <= MiB; b <<= 1) {
            void *p = malloc(b);
            CHECK("usable/power-of-two-equal-buddy", malloc_usable_size(p) == b, "malloc(%zu): usable %zu", b, malloc_usable_size(p));
            free(p);
        }
}
