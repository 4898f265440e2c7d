// glibc's documented malloc-family semantics, one check per rule.
//
//   conformance                 the rules glibc itself obeys (run it without the preload: exit 0)
//   conformance --expect-buddy  the same, plus the rules only BuddyMalloc gives (exact power-of-two
//                               usable sizes, in-place growth into free buddies, ...); exits 3 at
//                               once when malloc_usable_size(malloc(100)) != 128, i.e. when the
//                               library is not the process's malloc.
//   conformance --glibc-rules   glibc's rules only, whatever the allocator (BuddyMalloc's own rules
//                               assume its default geometry: tools/adversarial.sh runs this one
//                               under other options).
//
// Output: one "FAIL <rule>: <detail>" line per broken rule, then "ok N checks" (exit 0) or
// "FAILED n of N checks" (exit 1). Built with -fno-builtin so that gcc keeps every call.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <gnu/libc-version.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__GNUC__) && __GNUC__ >= 12 && !defined(__clang__)
// The checks read a block after a realloc that failed on purpose (the block is still valid).
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif

static int checks, failures, buddy;
// --glibc-rules under BuddyMalloc: buddy is 0, but what glibc merely happens to do (a shrinking
// realloc stays in place) is not asked of it.
static int glibc_rules_only;
// BUDDY_ON_ERROR=log: a double free is reported and survived, so "it aborts" proves nothing.
static int log_mode;
static const size_t KiB = 1024, MiB = 1024 * 1024;

#define CHECK(rule, cond, ...)                                  \
    do {                                                        \
        checks++;                                               \
        if (!(cond)) {                                          \
            failures++;                                         \
            printf("FAIL %s: ", rule);                          \
            printf(__VA_ARGS__);                                \
            printf("\n");                                       \
            fflush(stdout);                                     \
        }                                                       \
    } while (0)

// Sizes the compiler cannot fold (gcc would warn about, or reason over, constant huge sizes).
static volatile size_t v_size_max = SIZE_MAX;
static volatile size_t v_ptrdiff_over = (size_t)PTRDIFF_MAX + 1;

static size_t next_pow2(size_t n) {
    size_t p = 16;
    while (p < n) p <<= 1;
    return p;
}

static size_t max_block(void);

/* The usable size BuddyMalloc gives malloc(n) (README, "Slabs"): for 1 KiB < n <= 32 KiB a slab
 * object of 9/8 ... 15/8 of the power of two below n, when slabs are on (BUDDY_SLABS) and the
 * class's slab (16 times that power of two) fits in the largest block; else the next power of two. */
static size_t buddy_size(size_t n) {
    size_t block = next_pow2(n), base = block / 2, step = base / 8;
    const char *v = getenv("BUDDY_SLABS");
    int slabs = !(v && (strcmp(v, "off") == 0 || strcmp(v, "0") == 0));
    if (!slabs || n <= KiB || n > 32 * KiB || 16 * base > max_block()) return block;
    size_t k = (n - base + step - 1) / step;
    return k < 8 ? base + k * step : block;
}

static int aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(i * 31 + seed);
}

static size_t first_mismatch(const unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(i * 31 + seed)) return i;
    return (size_t)-1;
}

static int glibc_at_least(int major, int minor) {
    int ma = 0, mi = 0;
    sscanf(gnu_get_libc_version(), "%d.%d", &ma, &mi);
    return ma > major || (ma == major && mi >= minor);
}

// Frees `p` again in a forked child: a block that was really freed makes the allocator abort
// (BuddyMalloc: double free; glibc: its tcache double-free check for small blocks).
static int child_double_free_aborts(void *p) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *devnull = freopen("/dev/null", "w", stderr);
        (void)devnull;
        free(p);
        _exit(0);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) return 0;
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

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

// MARK: - large blocks

/* The pool's largest block: BUDDY_MAX_BLOCK (a number with an optional K/M/G), else the
 * library's default, 8 MiB. */
static size_t max_block(void) {
    const char *v = getenv("BUDDY_MAX_BLOCK");
    if (!v || !*v) return 8 * MiB;
    char *end;
    size_t n = strtoull(v, &end, 10);
    if (*end == 'K' || *end == 'k') n *= KiB;
    else if (*end == 'M' || *end == 'm') n *= MiB;
    else if (*end == 'G' || *end == 'g') n *= 1024 * MiB;
    return n;
}

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

int main(int argc, char **argv) {
    int expect_buddy = argc > 1 && strcmp(argv[1], "--expect-buddy") == 0;
    void *probe = malloc(100);
    size_t usable = malloc_usable_size(probe);
    free(probe);
    glibc_rules_only = argc > 1 && strcmp(argv[1], "--glibc-rules") == 0 && dlsym(RTLD_DEFAULT, "buddy_malloc") != NULL;
    buddy = usable == 128 && !glibc_rules_only;
    log_mode = getenv("BUDDY_ON_ERROR") && strcmp(getenv("BUDDY_ON_ERROR"), "log") == 0;
    printf("malloc_usable_size(malloc(100)) = %zu (%s)\n", usable, buddy ? "BuddyMalloc" : "not BuddyMalloc");
    fflush(stdout);
    if (expect_buddy && !buddy) {
        printf("not running under BuddyMalloc: the preload is not active\n");
        return 3;
    }
    check_enomem();
    check_free_preserves_errno();
    check_calloc();
    check_reallocarray();
    check_posix_memalign();
    check_alignments();
    check_aligned_alloc_invalid();
    check_memalign_rounding();
    check_malloc_alignment_and_overlap();
    check_malloc_zero();
    check_usable_size();
    check_realloc_basics();
    check_realloc_in_place();
    check_realloc_moves();
    check_page_allocs();
    check_large();
    check_sized_free();
    if (failures) {
        printf("FAILED %d of %d checks\n", failures, checks);
        return 1;
    }
    printf("ok %d checks\n", checks);
    return 0;
}
