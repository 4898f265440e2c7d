// The shape of glibc's malloc/tst-posix_memalign.c: impossible sizes return ENOMEM and leave the
// result pointer alone (also -pagesize with page alignment: glibc bug 15857); an alignment that
// is not a power of two times sizeof(void *) (SIZE_MAX, 0x300, 0) returns EINVAL (glibc bug
// 16038); a zero size succeeds with a block; the result has the asked alignment.
//
// Added to the original: errno after an ENOMEM return is ENOMEM too (glibc's posix_memalign goes
// through its malloc, which sets errno; programs such as tst-malloc-thread-fail rely on it).
#include "glibc_test.h"

int main(void) {
    test_start("glibc_posix_memalign", 10);
    size_t page = (size_t)getpagesize();
    volatile size_t minus_page = (size_t)0 - page;

    void *p = NULL;
    errno = 0;
    int ret = posix_memalign(&p, sizeof(void *), v_size_max);
    int saved = errno;
    CHECK(ret == ENOMEM, "posix_memalign(&p, sizeof(void *), SIZE_MAX) returned %d, want ENOMEM", ret);
    CHECK(p == NULL, "posix_memalign failed but set the pointer to %p", p);
    CHECK(ret != ENOMEM || saved == ENOMEM, "posix_memalign returned ENOMEM but errno is %d", saved);

    p = NULL;
    ret = posix_memalign(&p, page, minus_page);
    CHECK(ret == ENOMEM, "posix_memalign(&p, pagesize, -pagesize) returned %d, want ENOMEM", ret);
    CHECK(p == NULL, "posix_memalign(&p, pagesize, -pagesize) failed but set the pointer to %p", p);

    static const struct { size_t alignment; const char *name; } invalid[] = {
        {SIZE_MAX, "SIZE_MAX"}, {0x300, "0x300"}, {0, "0"},
    };
    for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++) {
        p = NULL;
        volatile size_t alignment = invalid[i].alignment;
        ret = posix_memalign(&p, alignment, invalid[i].alignment == SIZE_MAX ? page : 10);
        CHECK(ret == EINVAL, "posix_memalign(&p, %s, ...) returned %d, want EINVAL", invalid[i].name, ret);
        CHECK(p == NULL, "posix_memalign(&p, %s, ...) failed but set the pointer to %p", invalid[i].name, p);
    }

    p = NULL;
    ret = posix_memalign(&p, sizeof(void *), 0);
    CHECK(ret == 0 && p != NULL, "posix_memalign(&p, sizeof(void *), 0) returned %d, pointer %p", ret, p);
    free(p);

    p = NULL;
    ret = posix_memalign(&p, 0x100, 10);
    CHECK(ret == 0 && p != NULL, "posix_memalign(&p, 0x100, 10) returned %d, pointer %p", ret, p);
    CHECK(((uintptr_t)p & 0xff) == 0, "posix_memalign(&p, 0x100, 10) gave %p, not 256-byte aligned", p);
    free(p);
    return test_finish();
}
