// The shape of glibc's malloc/tst-mallinfo2.c: mallinfo2 exists, its fields are size_t (the
// difference from mallinfo), and after 19 allocations of 160 * i bytes (sizes glibc keeps in
// its heap, not in mmapped chunks) the bytes in use (uordblks) have grown by at least their sum.
//
// Added to the original, the figures' plausibility on any allocator: the bytes in use and the
// free bytes each fit in the system bytes (arena); freeing the blocks lowers the bytes in use;
// a 64 MiB block (mmapped by glibc) raises the bytes in use plus the mmapped bytes
// (uordblks + hblkhd) by at least 64 MiB, and freeing it lowers them again.
#include "glibc_test.h"

static void show(const char *when, const struct mallinfo2 *m) {
    printf("%s: arena %zu ordblks %zu smblks %zu hblks %zu hblkhd %zu usmblks %zu fsmblks %zu uordblks %zu "
           "fordblks %zu keepcost %zu\n", when, m->arena, m->ordblks, m->smblks, m->hblks, m->hblkhd, m->usmblks,
           m->fsmblks, m->uordblks, m->fordblks, m->keepcost);
}

static void plausible(const char *when, const struct mallinfo2 *m) {
    CHECK(m->uordblks <= m->arena, "%s: bytes in use %zu exceed the arena's %zu", when, m->uordblks, m->arena);
    CHECK(m->fordblks <= m->arena, "%s: free bytes %zu exceed the arena's %zu", when, m->fordblks, m->arena);
}

int main(void) {
    test_start("glibc_mallinfo2", 10);
    struct mallinfo2 before, after, freed, big, unbig;
    CHECK(sizeof before.arena == sizeof(size_t), "mallinfo2's fields are %zu bytes, not size_t's %zu",
          sizeof before.arena, sizeof(size_t));

    before = mallinfo2();
    show("before", &before);
    plausible("before", &before);

    void *volatile blocks[20];
    size_t total = 0;
    for (int i = 1; i < 20; i++) {
        blocks[i] = malloc(160 * (size_t)i);
        REQUIRE(blocks[i] != NULL, "malloc(%d) returned NULL", 160 * i);
        total += 160 * (size_t)i;
    }
    after = mallinfo2();
    show("after 19 allocations", &after);
    plausible("after 19 allocations", &after);
    CHECK(after.uordblks >= before.uordblks + total, "bytes in use grew from %zu to %zu, less than the %zu allocated",
          before.uordblks, after.uordblks, total);

    for (int i = 1; i < 20; i++) free(blocks[i]);
    freed = mallinfo2();
    show("after freeing them", &freed);
    plausible("after freeing them", &freed);
    CHECK(freed.uordblks < after.uordblks, "freeing %zu bytes left the bytes in use at %zu (were %zu)", total,
          freed.uordblks, after.uordblks);

    size_t huge = 64 << 20;
    char *volatile p = malloc(huge);
    REQUIRE(p != NULL, "malloc(64 MiB) returned NULL");
    big = mallinfo2();
    show("with a 64 MiB block", &big);
    plausible("with a 64 MiB block", &big);
    CHECK(big.uordblks + big.hblkhd >= freed.uordblks + freed.hblkhd + huge,
          "a 64 MiB block raised uordblks + hblkhd only from %zu to %zu", freed.uordblks + freed.hblkhd,
          big.uordblks + big.hblkhd);
    free(p);
    unbig = mallinfo2();
    show("after freeing it", &unbig);
    CHECK(unbig.uordblks + unbig.hblkhd + huge <= big.uordblks + big.hblkhd,
          "freeing the 64 MiB block lowered uordblks + hblkhd only from %zu to %zu", big.uordblks + big.hblkhd,
          unbig.uordblks + unbig.hblkhd);
    return test_finish();
}
