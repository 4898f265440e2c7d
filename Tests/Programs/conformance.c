// glibc's documented malloc-family semantics, one check per rule.
//
//   conformance                 the rules glibc itself obeys (run it without the preload: exit 0)
//   conformance --expect-buddy  the same, plus the rules only BuddyMalloc gives (exact power-of-two
//                               usable sizes, in-place growth into free buddies, ...); exits 3 at
//                               once when malloc_usable_size(malloc(100)) != 128, i.e. when the
//                               library is not the process's malloc.
//   conformance --glibc-rules   glibc's rules only, whatever the allocator (BuddyMalloc's own rules
//                               assume its default geometry: tools/adversarial.sh runs this one
//                               under other options).
//
// Output: one "FAIL <rule>: <detail>" line per broken rule, then "ok N checks" (exit 0) or
// "FAILED n of N checks" (exit 1). Built with -fno-builtin so that gcc keeps every call.
// The rules are in conformance/, one family per file (check.h: CHECK and the shared helpers),
// included here: the tests build this one file.
#include "conformance/check.h"
#include "conformance/malloc_rules.h"
#include "conformance/aligned_rules.h"
#include "conformance/realloc_rules.h"
#include "conformance/large_rules.h"

int main(int argc, char **argv) {
    int expect_buddy = argc > 1 && strcmp(argv[1], "--expect-buddy") == 0;
    void *probe = malloc(100);
    size_t usable = malloc_usable_size(probe);
    free(probe);
    glibc_rules_only = argc > 1 && strcmp(argv[1], "--glibc-rules") == 0 && dlsym(RTLD_DEFAULT, "buddy_malloc") != NULL;
    buddy = usable == 128 && !glibc_rules_only;
    log_mode = getenv("BUDDY_ON_ERROR") && strcmp(getenv("BUDDY_ON_ERROR"), "log") == 0;
    printf("malloc_usable_size(malloc(100)) = %zu (%s)\n", usable, buddy ? "BuddyMalloc" : "not BuddyMalloc");
    fflush(stdout);
    if (expect_buddy && !buddy) {
        printf("not running under BuddyMalloc: the preload is not active\n");
        return 3;
    }
    check_enomem();
    check_free_preserves_errno();
    check_calloc();
    check_reallocarray();
    check_posix_memalign();
    check_alignments();
    check_aligned_alloc_invalid();
    check_memalign_rounding();
    check_malloc_alignment_and_overlap();
    check_malloc_zero();
    check_usable_size();
    check_realloc_basics();
    check_realloc_in_place();
    check_realloc_moves();
    check_page_allocs();
    check_large();
    check_sized_free();
    if (failures) {
        printf("FAILED %d of %d checks\n", failures, checks);
        return 1;
    }
    printf("ok %d checks\n", checks);
    return 0;
}
