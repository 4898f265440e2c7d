// The shape of glibc's malloc/tst-valloc.c: impossible sizes (SIZE_MAX, and -pagesize, where
// rounding to pages overflowed: glibc bug 15856) fail with ENOMEM; valloc(0) gives a block; the
// result is page-aligned.
#include "glibc_test.h"

int main(void) {
    test_start("glibc_valloc", 10);
    size_t page = (size_t)getpagesize();
    volatile size_t minus_page = (size_t)0 - page;
    const size_t sizes[] = {v_size_max, minus_page};
    const char *names[] = {"SIZE_MAX", "-pagesize"};
    for (int i = 0; i < 2; i++) {
        errno = 0;
        void *p = valloc(sizes[i]);
        int saved = errno;
        CHECK(p == NULL, "valloc(%s) returned %p", names[i], p);
        CHECK(p != NULL || saved == ENOMEM, "valloc(%s): errno %d, want ENOMEM", names[i], saved);
        free(p);
    }
    void *p = valloc(0);
    CHECK(p != NULL, "valloc(0) returned NULL");
    free(p);
    p = valloc(32);
    CHECK(p != NULL, "valloc(32) returned NULL");
    CHECK(((uintptr_t)p & (page - 1)) == 0, "valloc(32) gave %p, not page-aligned", p);
    free(p);
    return test_finish();
}
