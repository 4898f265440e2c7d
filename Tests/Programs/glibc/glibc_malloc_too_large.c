// The shape of glibc's malloc/tst-malloc-too-large.c (glibc bugs 22375, 22343: padding a huge
// size overflowed and returned a recycled block): after a small malloc/free, every entry point
// asked for an impossible size fails and sets ENOMEM (posix_memalign returns it and leaves the
// pointer alone). Sizes: the 2^14 values just below SIZE_MAX, the 2^14 - 1 values just above
// PTRDIFF_MAX (objects larger than PTRDIFF_MAX break pointer subtraction), and on 64-bit every
// multiple of 2^50 with the low 50 bits all clear and all set. For each size: malloc, realloc,
// calloc and reallocarray with the size split into 1, 2, 4 and 8 factors both ways round,
// memalign / posix_memalign / aligned_alloc with every power-of-two alignment, valloc, pvalloc.
// As the original, the address space is limited to 2^50 bytes first, so that no size here can
// be satisfied on a machine with a wider address bus.
#include "glibc_test.h"
#include <sys/resource.h>

// One line per kind of failure, not one per size (there are ~100000 calls).
static int reported;
#define EXPECT(cond, ...)                                       \
    do {                                                        \
        test_checks++;                                          \
        if (!(cond)) {                                          \
            test_failures++;                                    \
            if (reported++ < 20) {                              \
                printf("FAIL %s:%d: ", test_name, __LINE__);    \
                printf(__VA_ARGS__);                            \
                printf("\n");                                   \
            }                                                   \
        }                                                       \
    } while (0)

static void setup(void) {
    void *volatile p = malloc(16);
    if (p == NULL) { printf("%s: malloc(16) failed\n", test_name); exit(1); }
    free(p);
    errno = 0;
}

static void *small_block(void) {
    void *p = malloc(16);
    if (p == NULL) { printf("%s: malloc(16) failed\n", test_name); exit(1); }
    return p;
}

static void plain(size_t size) {
    setup();
    void *r = malloc(size);
    EXPECT(r == NULL && errno == ENOMEM, "malloc(%#zx): %p, errno %d", size, r, errno);

    void *old = small_block();
    setup();
    r = realloc(old, size);
    EXPECT(r == NULL && errno == ENOMEM, "realloc(p, %#zx): %p, errno %d", size, r, errno);
    free(r ? r : old);

    for (size_t n = 1; n <= 8 && size % n == 0; n *= 2) {
        setup();
        r = calloc(n, size / n);
        EXPECT(r == NULL && errno == ENOMEM, "calloc(%zu, %#zx): %p, errno %d", n, size / n, r, errno);
        setup();
        r = calloc(size / n, n);
        EXPECT(r == NULL && errno == ENOMEM, "calloc(%#zx, %zu): %p, errno %d", size / n, n, r, errno);

        old = small_block();
        setup();
        r = reallocarray(old, n, size / n);
        EXPECT(r == NULL && errno == ENOMEM, "reallocarray(p, %zu, %#zx): %p, errno %d", n, size / n, r, errno);
        free(r ? r : old);
        old = small_block();
        setup();
        r = reallocarray(old, size / n, n);
        EXPECT(r == NULL && errno == ENOMEM, "reallocarray(p, %#zx, %zu): %p, errno %d", size / n, n, r, errno);
        free(r ? r : old);
    }
}

static void aligned(size_t size) {
    for (size_t align = 1; align != 0; align <<= 1) {
        setup();
        void *r = memalign(align, size);
        EXPECT(r == NULL && errno == ENOMEM, "memalign(%#zx, %#zx): %p, errno %d", align, size, r, errno);
        if (align % sizeof(void *) == 0) {
            setup();
            void *p = NULL;
            int ret = posix_memalign(&p, align, size);
            EXPECT(ret == ENOMEM && p == NULL, "posix_memalign(&p, %#zx, %#zx): %d, pointer %p", align, size, ret, p);
        }
        if (size % align == 0) {
            setup();
            r = aligned_alloc(align, size);
            EXPECT(r == NULL && errno == ENOMEM, "aligned_alloc(%#zx, %#zx): %p, errno %d", align, size, r, errno);
        }
    }
    setup();
    void *r = valloc(size);
    EXPECT(r == NULL && errno == ENOMEM, "valloc(%#zx): %p, errno %d", size, r, errno);
    setup();
    r = pvalloc(size);
    EXPECT(r == NULL && errno == ENOMEM, "pvalloc(%#zx): %p, errno %d", size, r, errno);
}

static void both(size_t size) {
    plain(size);
    aligned(size);
}

int main(void) {
    test_start("glibc_malloc_too_large", 60);
    const size_t low14 = ((size_t)1 << 14) - 1;
#if SIZE_MAX > UINT32_MAX
    const size_t low50 = ((size_t)1 << 50) - 1;
    struct rlimit limit = {low50, low50};
    struct rlimit old;
    if (getrlimit(RLIMIT_AS, &old) == 0 && (old.rlim_max == RLIM_INFINITY || old.rlim_max > low50))
        setrlimit(RLIMIT_AS, &limit);
#endif
    for (size_t i = 0; i <= low14; i++) both(v_size_max - i);
    for (size_t i = 1; i <= low14; i++) both((size_t)PTRDIFF_MAX + i);
#if SIZE_MAX > UINT32_MAX
    for (size_t high = low14; high >= 1; high--) {
        both((high << 50) | low50);
        both(high << 50);
    }
#endif
    if (reported > 20) printf("(%d more failures not shown)\n", reported - 20);
    return test_finish();
}
