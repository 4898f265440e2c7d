// The shape of glibc's malloc/tst-aligned-alloc.c (C17's rule for aligned_alloc): a power-of-two
// alignment (64, and the degenerate 1) succeeds with that alignment; an alignment that is not a
// power of two (65), zero, or too large to satisfy (SIZE_MAX / 2 + 1) fails.
//
// glibc enforces the non-power-of-two and zero cases since 2.38; before that its aligned_alloc
// is memalign, which rounds such an alignment up to the next power of two (65 -> 128, 0 -> the
// default). When glibc older than 2.38 serves the program, those two cases check that older
// documented rule instead; any other allocator (BuddyMalloc) must follow C17: NULL and EINVAL.
#include "glibc_test.h"

static void invalid(size_t alignment, size_t rounded) {
    volatile size_t a = alignment;
    errno = 0;
    void *p = aligned_alloc(a, 64);
    int saved = errno;
    if (glibc_allocator_older_than(2, 38)) {
        CHECK(p != NULL, "aligned_alloc(%zu, 64) returned NULL (glibc < 2.38 rounds the alignment up)", alignment);
        CHECK(((uintptr_t)p & (rounded - 1)) == 0, "aligned_alloc(%zu, 64) gave %p, not %zu-aligned", alignment, p, rounded);
    } else {
        CHECK(p == NULL, "aligned_alloc(%zu, 64) returned %p, want NULL", alignment, p);
        CHECK(p != NULL || saved == EINVAL, "aligned_alloc(%zu, 64): errno %d, want EINVAL", alignment, saved);
    }
    free(p);
}

int main(void) {
    test_start("glibc_aligned_alloc", 10);

    void *p1 = aligned_alloc(64, 64);
    CHECK(p1 != NULL, "aligned_alloc(64, 64) returned NULL");
    CHECK(((uintptr_t)p1 & 63) == 0, "aligned_alloc(64, 64) gave %p, not 64-byte aligned", p1);

    void *p2 = aligned_alloc(1, 64);
    CHECK(p2 != NULL, "aligned_alloc(1, 64) returned NULL");

    invalid(65, 128);
    invalid(0, 16);

    volatile size_t huge = SIZE_MAX / 2 + 1;
    errno = 0;
    void *p5 = aligned_alloc(huge, 64);
    CHECK(p5 == NULL, "aligned_alloc(SIZE_MAX / 2 + 1, 64) returned %p", p5);

    free(p1);
    free(p2);
    return test_finish();
}
