// The shape of glibc's malloc/tst-free-errno.c: free never changes errno: free(NULL); blocks
// large enough that glibc maps them with mmap; and the rare path where releasing a block makes
// munmap fail: the process is at its limit of memory mappings (vm.max_map_count) and the block
// lies in the middle of a mapping, so unmapping it would split the mapping in two.
//
// To arrange the split, the original maps one page before and one after the block's own mapping
// with MAP_FIXED, so that the three merge into one. That is only safe when the block has a
// mapping of its own (glibc's mmapped chunks): here it is done only when /proc/self/maps shows
// exactly that, with the page after belonging to a throw-away mapping of the program's own and
// the page before unmapped; otherwise (an allocator that carves large blocks out of a bigger
// region) the program says so and still frees blocks of every size at the mapping limit.
// Added to the original: blocks of several sizes freed at the limit, and the fill mappings are
// unmapped before exit so that an exit report can still be written.
#include "glibc_test.h"
#include <fcntl.h>
#include <sys/mman.h>

// Not inlined and weak: gcc would otherwise assume errno unchanged across free.
__attribute__((weak, noinline)) int current_errno(void) { return errno; }

enum { fill_limit = 65536 };
static void *fills[fill_limit];
static int fill_count;

/// The mapping of /proc/self/maps that contains `address`: its bounds, or 0 when none.
static int mapping_of(uintptr_t address, uintptr_t *start, uintptr_t *end) {
    static char text[1 << 20];
    int fd = open("/proc/self/maps", O_RDONLY);
    if (fd < 0) return 0;
    size_t used = 0;
    ssize_t n;
    while (used < sizeof text - 1 && (n = read(fd, text + used, sizeof text - 1 - used)) > 0) used += (size_t)n;
    close(fd);
    text[used] = 0;
    for (char *line = text; *line; ) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx", &a, &b) == 2 && address >= a && address < b) {
            *start = a;
            *end = b;
            return 1;
        }
        char *next = strchr(line, '\n');
        if (!next) break;
        line = next + 1;
    }
    return 0;
}

static void free_keeps_errno(void *p, const char *what) {
    errno = 1789;
    free(p);
    int after = current_errno();
    CHECK(after == 1789, "free(%s) changed errno from 1789 to %d (%s)", what, after, strerror(after));
}

int main(void) {
    test_start("glibc_free_errno", 20);
    free_keeps_errno(NULL, "NULL");

    void *volatile large[2];
    for (int i = 0; i < 2; i++) REQUIRE((large[i] = malloc(5318153)) != NULL, "malloc(5318153) returned NULL");
    for (int i = 0; i < 2; i++) free_keeps_errno(large[i], "a 5318153-byte block");

    int limits = open("/proc/sys/vm/max_map_count", O_RDONLY);
    if (limits < 0) {
        printf("info: no /proc/sys/vm/max_map_count; the mapping-limit part is skipped\n");
        return test_finish();
    }
    close(limits);

    size_t page = (size_t)getpagesize();
    // Blocks of every kind, freed once the process cannot create another mapping.
    static const size_t sizes[] = {24, 700, 5000, 40000, 300000, 3 << 20, 5318153, 20 << 20};
    void *blocks[sizeof sizes / sizeof *sizes];
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        REQUIRE((blocks[i] = malloc(sizes[i])) != NULL, "malloc(%zu) returned NULL", sizes[i]);
        memset(blocks[i], 0x11, sizes[i]);
    }

    // A throw-away mapping first, then the big block (mappings are placed top-down, so the
    // block's own mapping, if it gets one, lands just below it).
    size_t big_size = 0x1000000;
    char *bumper = mmap(NULL, big_size, PROT_READ, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    REQUIRE(bumper != MAP_FAILED, "mmap of the bumper failed: %s", strerror(errno));
    char *big = malloc(big_size - 0x100);
    REQUIRE(big != NULL, "malloc(%zu) returned NULL", big_size - 0x100);
    memset(big, 0x22, big_size - 0x100);

    uintptr_t start = 0, end = 0, s2, e2;
    uintptr_t aligned = (uintptr_t)big & ~(uintptr_t)(page - 1);
    int own = mapping_of((uintptr_t)big, &start, &end) && start == aligned && end - start == big_size
              && end == (uintptr_t)bumper && !mapping_of(start - page, &s2, &e2);
    if (own) {
        // Extend the block's mapping by a page on each side, keeping its bytes (the allocator's
        // header among them): MAP_FIXED replaces the span with fresh zero pages.
        char *copy = mmap(NULL, big_size, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
        REQUIRE(copy != MAP_FAILED, "mmap of the copy failed");
        memcpy(copy, (void *)start, big_size);
        void *r = mmap((void *)(start - page), big_size + 2 * page, PROT_READ | PROT_WRITE,
                       MAP_ANONYMOUS | MAP_PRIVATE | MAP_FIXED, -1, 0);
        REQUIRE(r == (void *)(start - page), "mmap MAP_FIXED around the block failed: %s", strerror(errno));
        memcpy((void *)start, copy, big_size);
        munmap(copy, big_size);
        printf("info: the %zu-byte block has its own mapping: extended on both sides, munmap must split it\n", big_size - 0x100);
    } else {
        printf("info: the %zu-byte block is not alone in a mapping of its own; the split case is not arranged\n",
               big_size - 0x100);
    }

    char path[] = "/tmp/glibc_free_errno.XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0, "mkstemp failed: %s", strerror(errno));
    unlink(path);
    REQUIRE(write(fd, path, sizeof path) == (ssize_t)sizeof path, "write to the temporary file failed");
    // One private read-only page of the file per mapping: adjacent ones never merge.
    while (fill_count < fill_limit) {
        void *m = mmap(NULL, page, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) break;
        fills[fill_count++] = m;
    }
    int at_limit = fill_count < fill_limit;
    printf("info: %d mappings added (%s)\n", fill_count, at_limit ? "the limit is reached" : "the limit was not reached");

    free_keeps_errno(big, own ? "a block whose munmap must split a mapping, at the mapping limit"
                              : "a 16 MiB block at the mapping limit");
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        char what[64];
        snprintf(what, sizeof what, "a %zu-byte block at the mapping limit", sizes[i]);
        free_keeps_errno(blocks[i], what);
    }

    for (int i = 0; i < fill_count; i++) munmap(fills[i], page);
    close(fd);
    munmap(bumper, big_size);
    return test_finish();
}
