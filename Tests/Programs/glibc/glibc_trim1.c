// The shape of glibc's malloc/tst-trim1.c: 10000 blocks of random sizes below 16 KiB, each
// written; a 256-byte block; all but every 13th block freed; malloc_trim(0); then a 30000-byte
// block written and malloc_trim(0) again. The original checks only that this runs.
//
// Added, since trimming is the point: malloc_trim(0) returns memory to the system. With 12 of
// every 13 blocks free (about 75 MiB), the resident set (/proc/self/statm) must shrink by at
// least a quarter of the freed bytes, and the first malloc_trim must return 1 ("memory was
// released"). The blocks that stay keep their contents.
#include "glibc_test.h"
#include <fcntl.h>

enum { count = 10000 };
static unsigned char *blocks[count];
static size_t sizes[count];

static size_t resident_bytes(void) {
    char text[256];
    int fd = open("/proc/self/statm", O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) return 0;
    text[n] = 0;
    unsigned long total = 0, resident = 0;
    if (sscanf(text, "%lu %lu", &total, &resident) != 2) return 0;
    return (size_t)resident * (size_t)getpagesize();
}

int main(void) {
    test_start("glibc_trim1", 20);
    srandom(4711);
    for (int i = 0; i < count; i++) {
        sizes[i] = (size_t)(random() % 16384);
        blocks[i] = malloc(sizes[i]);
        REQUIRE(blocks[i] != NULL, "malloc(%zu) returned NULL", sizes[i]);
        memset(blocks[i], (int)(sizes[i] & 0xff), sizes[i]);
    }
    unsigned char *small = malloc(256);
    REQUIRE(small != NULL, "malloc(256) returned NULL");
    memset(small, 1, 256);

    size_t freed = 0;
    for (int i = 0; i < count; i++) {
        if (i % 13 == 0) continue;
        freed += sizes[i];
        free(blocks[i]);
        blocks[i] = NULL;
    }
    size_t before = resident_bytes();
    int released = malloc_trim(0);
    size_t after = resident_bytes();
    printf("info: freed %zu bytes; resident %zu -> %zu bytes (%zd); malloc_trim(0) = %d\n", freed, before, after,
           (ssize_t)before - (ssize_t)after, released);
    CHECK(released == 1, "malloc_trim(0) returned %d after %zu bytes were freed, want 1", released, freed);
    CHECK(before > after && before - after >= freed / 4,
          "malloc_trim(0) gave back %zd bytes of resident memory, less than a quarter of the %zu freed",
          (ssize_t)before - (ssize_t)after, freed);

    unsigned char *p = malloc(30000);
    REQUIRE(p != NULL, "malloc(30000) returned NULL");
    memset(p, 2, 30000);
    malloc_trim(0);

    for (int i = 0; i < count; i += 13) {
        size_t j = 0;
        while (j < sizes[i] && blocks[i][j] == (unsigned char)(sizes[i] & 0xff)) j++;
        CHECK(j == sizes[i], "block %d (%zu bytes) changed at byte %zu after malloc_trim", i, sizes[i], j);
        free(blocks[i]);
    }
    for (int j = 0; j < 256; j++) if (small[j] != 1) { CHECK(0, "the 256-byte block changed at byte %d", j); break; }
    for (int j = 0; j < 30000; j++) if (p[j] != 2) { CHECK(0, "the 30000-byte block changed at byte %d", j); break; }
    free(small);
    free(p);
    return test_finish();
}
