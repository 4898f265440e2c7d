// The shape of glibc's malloc/tst-malloc-usable.c: malloc_usable_size of a block covers the
// request and all of it can be written; malloc_usable_size(NULL) is 0.
//
// Left out: the original runs with MALLOC_CHECK_=3, under which glibc's debugging malloc
// (libc_malloc_debug.so) reports exactly the requested size (7). That is a property of glibc's
// checking mode, which an interposed allocator does not have; here the usable size must be at
// least the request, and writing all of it must not disturb a neighbouring block.
#include "glibc_test.h"

int main(void) {
    test_start("glibc_malloc_usable", 10);
    static const size_t sizes[] = {0, 1, 7, 16, 24, 100, 1000, 1025, 4096, 5000, 40000, 100000, 1 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = sizes[i];
        unsigned char *a = malloc(n), *b = malloc(n);
        REQUIRE(a != NULL && b != NULL, "malloc(%zu) returned NULL", n);
        size_t ua = malloc_usable_size(a), ub = malloc_usable_size(b);
        CHECK(ua >= n && ub >= n, "malloc_usable_size(malloc(%zu)) = %zu / %zu, below the request", n, ua, ub);
        memset(b, 0xbb, ub);
        memset(a, 0xaa, ua);
        size_t j = 0;
        while (j < ub && b[j] == 0xbb) j++;
        CHECK(j == ub, "writing the %zu usable bytes of malloc(%zu) changed byte %zu of the other block", ua, n, j);
        free(a);
        free(b);
    }
    // The aligned entry points too.
    void *p = memalign(256, 7);
    REQUIRE(p != NULL, "memalign(256, 7) returned NULL");
    CHECK(malloc_usable_size(p) >= 7, "malloc_usable_size(memalign(256, 7)) = %zu", malloc_usable_size(p));
    memset(p, 1, malloc_usable_size(p));
    free(p);

    CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) = %zu, want 0", malloc_usable_size(NULL));
    return test_finish();
}
