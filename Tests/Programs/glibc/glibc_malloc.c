// The shape of glibc's malloc/tst-malloc.c: malloc of an impossible size fails with ENOMEM,
// realloc(p, 0) frees and returns NULL (glibc's choice), malloc(0) gives a block, a request
// above the usual mmap threshold (513 KiB) succeeds, and a "negative" size fails.
#include "glibc_test.h"

int main(void) {
    test_start("glibc_malloc", 10);

    errno = 0;
    void *p = malloc(v_size_max);
    int saved = errno;
    CHECK(p == NULL, "malloc(SIZE_MAX) returned %p", p);
    CHECK(p != NULL || saved == ENOMEM, "malloc(SIZE_MAX): errno %d (%s), want ENOMEM", saved, strerror(saved));

    p = malloc(10);
    CHECK(p != NULL, "malloc(10) returned NULL");
    p = realloc(p, 0);
    CHECK(p == NULL, "realloc(p, 0) returned %p, want NULL (the block freed)", p);

    p = malloc(0);
    CHECK(p != NULL, "malloc(0) returned NULL");
    p = realloc(p, 0);
    CHECK(p == NULL, "realloc(malloc(0), 0) returned %p, want NULL", p);

    p = malloc(513 * 1024);
    CHECK(p != NULL, "malloc(513 KiB) returned NULL");
    if (p) memset(p, 0x5a, 513 * 1024);

    // -512 KiB as a size_t: just below SIZE_MAX. The original checks only the NULL; glibc also
    // sets ENOMEM, so this checks it too.
    volatile size_t minus512k = (size_t)-(512 * 1024);
    errno = 0;
    void *q = malloc(minus512k);
    saved = errno;
    CHECK(q == NULL, "malloc(-512 KiB) returned %p", q);
    CHECK(q != NULL || saved == ENOMEM, "malloc(-512 KiB): errno %d, want ENOMEM", saved);
    free(p);
    return test_finish();
}
