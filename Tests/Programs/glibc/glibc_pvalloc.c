// The shape of glibc's malloc/tst-pvalloc.c: impossible sizes (SIZE_MAX, and -pagesize, where
// rounding to pages overflowed: glibc bug 15855) fail with ENOMEM; pvalloc(0) gives a block; the
// result is page-aligned.
#include "glibc_test.h"

int main(void) {
    test_start("glibc_pvalloc", 10);
    size_t page = (size_t)getpagesize();
    volatile size_t minus_page = (size_t)0 - page;
    const size_t sizes[] = {v_size_max, minus_page};
    const char *names[] = {"SIZE_MAX", "-pagesize"};
    for (int i = 0; i < 2; i++) {
        errno = 0;
        void *p = pvalloc(sizes[i]);
        int saved = errno;
        CHECK(p == NULL, "pvalloc(%s) returned %p", names[i], p);
        CHECK(p != NULL || saved == ENOMEM, "pvalloc(%s): errno %d, want ENOMEM", names[i], saved);
        free(p);
    }
    void *p = pvalloc(0);
    CHECK(p != NULL, "pvalloc(0) returned NULL");
    free(p);
    p = pvalloc(32);
    CHECK(p != NULL, "pvalloc(32) returned NULL");
    CHECK(((uintptr_t)p & (page - 1)) == 0, "pvalloc(32) gave %p, not page-aligned", p);
    free(p);
    return test_finish();
}
