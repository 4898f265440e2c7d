// The shape of glibc's malloc/tst-realloc.c: realloc(NULL, n) is malloc(n) (and fails with
// ENOMEM for an impossible n); growing keeps the old contents (a calloc'd block stays zero);
// shrinking keeps the contents; a failed realloc leaves the block untouched; realloc(p, 0)
// frees and returns NULL, and realloc(NULL, 0) returns a block (both glibc's choices).
#include "glibc_test.h"

static int all_bytes(const unsigned char *p, size_t n, unsigned char value) {
    for (size_t i = 0; i < n; i++) if (p[i] != value) return 0;
    return 1;
}

int main(void) {
    test_start("glibc_realloc", 10);

    errno = 0;
    void *p = realloc(NULL, v_size_max);
    int saved = errno;
    CHECK(p == NULL, "realloc(NULL, SIZE_MAX) returned %p", p);
    CHECK(p != NULL || saved == ENOMEM, "realloc(NULL, SIZE_MAX): errno %d, want ENOMEM", saved);

    p = realloc(NULL, 10);
    CHECK(p != NULL, "realloc(NULL, 10) returned NULL");
    free(p);

    p = calloc(20, 1);
    REQUIRE(p != NULL, "calloc(20, 1) returned NULL");
    p = realloc(p, 200);
    REQUIRE(p != NULL, "realloc(p, 200) returned NULL");
    CHECK(all_bytes(p, 20, 0), "growing a calloc'd block lost its 20 zero bytes");
    free(p);

    p = realloc(NULL, 100);
    REQUIRE(p != NULL, "realloc(NULL, 100) returned NULL");
    memset(p, 0xff, 100);
    p = realloc(p, 16);
    REQUIRE(p != NULL, "realloc(p, 16) returned NULL");
    CHECK(all_bytes(p, 16, 0xff), "shrinking to 16 bytes changed the contents");

    errno = 0;
    void *c = realloc(p, v_size_max);
    saved = errno;
    CHECK(c == NULL, "realloc(p, SIZE_MAX) returned %p", c);
    CHECK(c != NULL || saved == ENOMEM, "realloc(p, SIZE_MAX): errno %d, want ENOMEM", saved);
    CHECK(all_bytes(p, 16, 0xff), "a failed realloc changed the block's contents");

    p = realloc(p, 0);
    CHECK(p == NULL, "realloc(p, 0) returned %p, want NULL", p);

    p = realloc(NULL, 0);
    CHECK(p != NULL, "realloc(NULL, 0) returned NULL, want a block");
    free(p);
    return test_finish();
}
