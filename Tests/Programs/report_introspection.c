// glibc's introspection calls and the statistics API under BuddyMalloc (ReportTests). Prints
// "name value" lines the test compares; the JSON report of buddy_report_write goes between
// "json-begin" and "json-end" lines. Build with -I Sources/BuddyMallocAPI/include.
//
//   report_introspection
//
// Exits 0 after printing everything, 3 when BuddyMalloc is not the process's malloc.
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "buddy_stats.h"

// Resolved at run time from the preloaded library (the driver links without it).
#pragma weak buddy_stats_get
#pragma weak buddy_report_write

// Explicit alignments are counted per thread: three threads ask for 64 and exit (their counts
// fold into the pool), one asks for 16 and is still running at the snapshot.
static void *align64(void *unused) {
    (void)unused;
    for (int i = 0; i < 1000; i++) free(aligned_alloc(64, 100));
    return NULL;
}
static pthread_mutex_t hold = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t counted;
static void *align16(void *unused) {
    (void)unused;
    for (int i = 0; i < 500; i++) free(memalign(16, 40));
    pthread_barrier_wait(&counted);
    pthread_mutex_lock(&hold); // until main has taken its snapshot
    pthread_mutex_unlock(&hold);
    return NULL;
}

int main(void) {
    void *probe = malloc(100);
    size_t usable = malloc_usable_size(probe);
    free(probe);
    if (usable != 128 || buddy_stats_get == NULL) {
        printf("not running under BuddyMalloc (malloc_usable_size(malloc(100)) = %zu)\n", usable);
        return 3;
    }
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    static void *kept[300];
    for (int i = 0; i < 200; i++) kept[i] = malloc(100);
    for (int i = 200; i < 210; i++) kept[i] = malloc(50000);
    void *aligned = NULL;
    if (posix_memalign(&aligned, 4096, 100) != 0) return 1;
    pthread_t exited[3], running;
    for (int i = 0; i < 3; i++) pthread_create(&exited[i], NULL, align64, NULL);
    for (int i = 0; i < 3; i++) pthread_join(exited[i], NULL);
    pthread_barrier_init(&counted, NULL, 2);
    pthread_mutex_lock(&hold);
    pthread_create(&running, NULL, align16, NULL);
    pthread_barrier_wait(&counted);

    // One snapshot each, with no allocation between them.
    struct mallinfo2 m2 = mallinfo2();
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    struct mallinfo m1 = mallinfo();
    struct buddy_stats s = { .size = sizeof s };
    int got = buddy_stats_get(&s);
    printf("stats_get %d\n", got);
    printf("stats.version %u\nstats.size %u\n", s.version, s.size);
    printf("stats.used %llu\nstats.reserved %llu\nstats.free %llu\nstats.cached %llu\n",
           (unsigned long long)s.used, (unsigned long long)s.reserved, (unsigned long long)s.free, (unsigned long long)s.cached);
    printf("stats.live_allocations %llu\nstats.calls.posix_memalign %llu\nstats.alignment.4096 %llu\n",
           (unsigned long long)s.live_allocations, (unsigned long long)s.calls[BUDDY_CALL_POSIX_MEMALIGN],
           (unsigned long long)s.alignments[12]);
    printf("stats.alignment.64 %llu\nstats.alignment.16 %llu\n", (unsigned long long)s.alignments[6],
           (unsigned long long)s.alignments[4]);
    pthread_mutex_unlock(&hold);
    pthread_join(running, NULL);

    // realloc's move leaves the old block in the thread's cache: the next malloc of its size
    // gets it back (LIFO), and the entry counts stay one malloc, one realloc.
    void *old = malloc(100), *grown = realloc(old, 5000), *again = malloc(100);
    printf("realloc.reuse %d\n", again == old && grown != old);
    free(again);
    free(grown);
    unsigned long long live_bytes = 0;
    for (unsigned k = 0; k < s.order_count; k++) live_bytes += s.orders[k].live * s.orders[k].block_size;
    for (unsigned c = 0; c < s.slab_class_count; c++) live_bytes += s.slab_classes[c].live * s.slab_classes[c].object_size;
    for (unsigned c = 0; c < s.small_slab_class_count; c++)
        live_bytes += s.small_slab_classes[c].live * s.small_slab_classes[c].object_size;
    printf("stats.live_bytes %llu\n", live_bytes);
    printf("mallinfo2.arena %zu\nmallinfo2.uordblks %zu\nmallinfo2.fordblks %zu\nmallinfo2.fsmblks %zu\n",
           m2.arena, m2.uordblks, m2.fordblks, m2.fsmblks);
    printf("mallinfo.uordblks %d\nmallinfo.arena %d\n", m1.uordblks, m1.arena);

    // An older, smaller struct: the library writes no more than it says.
    struct { uint32_t version, size; double created; uint64_t canary; } small = { 0, 16, 0, 0x5A5A5A5A5A5A5A5Aull };
    printf("small_get %d\nsmall.size %u\nsmall.canary %llx\n", buddy_stats_get((struct buddy_stats *)&small), small.size,
           (unsigned long long)small.canary);
    printf("null_get %d\n", buddy_stats_get(NULL));

    fflush(stdout);
    malloc_stats();
    FILE *xml = tmpfile();
    printf("malloc_info %d\n", malloc_info(0, xml));
    errno = 0;
    int bad = malloc_info(1, xml);
    int bad_errno = errno;
    printf("malloc_info_bad_options %d %d\n", bad, bad_errno == EINVAL);
    rewind(xml);
    char line[512];
    while (fgets(line, sizeof line, xml)) printf("xml %s", line);
    fclose(xml);

    // malloc_trim gives free memory back: free many large blocks first.
    static void *large[64];
    for (int i = 0; i < 64; i++) { large[i] = malloc(900000); memset(large[i], 1, 900000); }
    for (int i = 0; i < 64; i++) free(large[i]);
    struct buddy_stats before = { .size = sizeof before }, after = { .size = sizeof after };
    buddy_stats_get(&before);
    int trimmed = malloc_trim(0);
    buddy_stats_get(&after);
    printf("malloc_trim %d\nreleased_before %llu\nreleased_after %llu\nresident_before %llu\nresident_after %llu\n", trimmed,
           (unsigned long long)before.released_bytes, (unsigned long long)after.released_bytes,
           (unsigned long long)before.resident, (unsigned long long)after.resident);

    printf("json-begin\n");
    fflush(stdout);
    printf("report_write %d\n", buddy_report_write(1, BUDDY_REPORT_JSON) == 0 ? 0 : -1);
    printf("json-end\n");
    printf("report_write_bad_format %d\n", buddy_report_write(1, 7));
    for (int i = 0; i < 210; i++) free(kept[i]);
    free(aligned);
    return 0;
}
