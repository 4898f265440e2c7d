// The shape of glibc's malloc/tst-reallocarray.c: a product that overflows size_t fails with
// ENOMEM in either argument order (also when neither factor alone is large); otherwise
// reallocarray behaves as realloc: it allocates from NULL, grows and shrinks keeping the
// contents (malloc_usable_size covers the request), and an overflowing call leaves the block
// untouched.
#include "glibc_test.h"

static int all_bytes(const unsigned char *p, size_t n, unsigned char value) {
    for (size_t i = 0; i < n; i++) if (p[i] != value) return 0;
    return 1;
}

static void overflow(size_t a, size_t b) {
    errno = 0;
    void *p = reallocarray(NULL, a, b);
    int saved = errno;
    CHECK(p == NULL, "reallocarray(NULL, %zu, %zu) returned %p", a, b, p);
    CHECK(saved == ENOMEM, "reallocarray(NULL, %zu, %zu): errno %d, want ENOMEM", a, b, saved);
    free(p);
}

int main(void) {
    test_start("glibc_reallocarray", 10);
    size_t max = v_size_max;
    overflow(max, 2);
    overflow(2, max);
    overflow(65537, max / 65537 + 1);
    overflow(max / 65537 + 1, 65537);

    unsigned char *p = reallocarray(NULL, 10, 2);
    REQUIRE(p != NULL, "reallocarray(NULL, 10, 2) returned NULL");
    REQUIRE(malloc_usable_size(p) >= 20, "usable size %zu < 20", malloc_usable_size(p));
    memset(p, 0xaf, 20);

    unsigned char *q = reallocarray(p, 20, 2);
    CHECK(q != NULL, "reallocarray(p, 20, 2) returned NULL");
    if (q) p = q;
    CHECK(malloc_usable_size(p) >= 40, "usable size %zu < 40 after growing", malloc_usable_size(p));
    CHECK(all_bytes(p, 20, 0xaf), "growing changed the first 20 bytes");

    q = reallocarray(p, 5, 3);
    CHECK(q != NULL, "reallocarray(p, 5, 3) returned NULL");
    if (q) p = q;
    REQUIRE(malloc_usable_size(p) >= 15, "usable size %zu < 15 after shrinking", malloc_usable_size(p));
    CHECK(all_bytes(p, 15, 0xaf), "shrinking changed the first 15 bytes");

    errno = 0;
    q = reallocarray(p, 2, max);
    int saved = errno;
    CHECK(q == NULL, "reallocarray(p, 2, SIZE_MAX) returned %p", q);
    CHECK(saved == ENOMEM, "reallocarray(p, 2, SIZE_MAX): errno %d, want ENOMEM", saved);
    CHECK(all_bytes(p, 15, 0xaf), "an overflowing reallocarray changed the block");
    free(p);
    return test_finish();
}
