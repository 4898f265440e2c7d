// The shape of glibc's malloc/tst-memalign.c: impossible sizes fail with ENOMEM (also the size
// -pagesize with page alignment, where rounding overflowed: glibc bug 15857), an impossible
// alignment (SIZE_MAX) fails with EINVAL (glibc bug 16038), a zero size gives a block, and the
// result has the asked alignment.
#include "glibc_test.h"

static void fails(size_t alignment, size_t size, int want, const char *what) {
    errno = 0;
    void *p = memalign(alignment, size);
    int saved = errno;
    CHECK(p == NULL, "memalign(%s) returned %p", what, p);
    CHECK(p != NULL || saved == want, "memalign(%s): errno %d (%s), want %s", what, saved, strerror(saved),
          want == ENOMEM ? "ENOMEM" : "EINVAL");
    free(p);
}

int main(void) {
    test_start("glibc_memalign", 10);
    size_t page = (size_t)getpagesize();
    volatile size_t minus_page = (size_t)0 - page;
    fails(sizeof(void *), v_size_max, ENOMEM, "sizeof(void *), SIZE_MAX");
    fails(page, minus_page, ENOMEM, "pagesize, -pagesize");
    fails(v_size_max, page, EINVAL, "SIZE_MAX, pagesize");

    void *p = memalign(sizeof(void *), 0);
    CHECK(p != NULL, "memalign(sizeof(void *), 0) returned NULL");
    free(p);

    p = memalign(0x100, 10);
    CHECK(p != NULL, "memalign(0x100, 10) returned NULL");
    CHECK(((uintptr_t)p & 0xff) == 0, "memalign(0x100, 10) returned %p, not 256-byte aligned", p);
    free(p);
    return test_finish();
}
