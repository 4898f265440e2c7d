// The shape of glibc's malloc/tst-calloc.c: every byte of every calloc block is zero, also when
// the block reuses memory that earlier blocks dirtied (each block is filled with 0xff before it
// is freed), for fixed small sizes, random element counts and sizes, and degenerate arguments
// (a zero count or size with a huge other factor), which must not crash.
//
// Added to the original: sizes on the pool's other paths (slab classes between 1 KiB and 32 KiB,
// whole blocks above), dirtied and recycled the same way.
#include "glibc_test.h"

enum { samples = 50000 };
static char *blocks[samples];

static void fill_and_check(size_t count, size_t size, int index) {
    char *p = blocks[index];
    size_t total = count * size;
    for (size_t j = 0; j < total; j++) {
        if (p[j] != 0) {
            CHECK(0, "calloc(%zu, %zu) (block %d): byte %zu is 0x%02x, not 0", count, size, index, j, (unsigned char)p[j]);
            break;
        }
    }
    memset(p, 0xff, total);
}

static void fixed_size(size_t size, int count) {
    int n = 0;
    for (; n < count; n++) {
        blocks[n] = calloc(1, size);
        if (blocks[n] == NULL) break;
        fill_and_check(1, size, n);
    }
    CHECK(n == count, "calloc(1, %zu) returned NULL after %d blocks", size, n);
    while (n-- > 0) free(blocks[n]);
}

static void random_sizes(void) {
    int n = 0;
    for (; n < samples; n++) {
        size_t count = 1 + (size_t)(random() % 10), size = 1 + (size_t)(random() % 100);
        blocks[n] = calloc(count, size);
        if (blocks[n] == NULL) break;
        fill_and_check(count, size, n);
    }
    CHECK(n == samples, "calloc returned NULL after %d random blocks", n);
    while (n-- > 0) free(blocks[n]);
}

int main(void) {
    test_start("glibc_calloc", 20);
    srandom(12345);
    static const size_t sizes[] = {15, 5, 17, 6, 31, 96};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) fixed_size(sizes[i], samples);
    random_sizes();
    // The pool's slab classes and whole blocks, recycled twice each.
    static const size_t larger[] = {1000, 1500, 5000, 20000, 40000, 300000};
    for (size_t i = 0; i < sizeof larger / sizeof *larger; i++) {
        fixed_size(larger[i], 200);
        fixed_size(larger[i], 200);
    }

    // Degenerate arguments: the result is implementation-defined; they must not crash, and a
    // non-NULL result must be freeable.
    volatile unsigned uint_max = UINT32_MAX;
    void *r[5];
    r[0] = calloc(0, 0);
    r[1] = calloc(0, uint_max);
    r[2] = calloc(uint_max, 0);
    r[3] = calloc(0, v_size_max);
    r[4] = calloc(v_size_max, 0);
    for (int i = 0; i < 5; i++) free(r[i]);
    return test_finish();
}
