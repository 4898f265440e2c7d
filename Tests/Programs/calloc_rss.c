// calloc_rss: calloc of memory the process never touched stays untouched, and calloc of reused
// memory is zero (run by tools/adversarial.sh).
//
//   calloc_rss
//
// glibc serves large callocs from fresh mmap pages, which the kernel zeroes on first touch: the
// resident size does not grow until the program writes. An allocator that memsets a block it
// just mapped makes every page resident at once. The check: four calloc(1, 6 MiB) in a fresh
// process grow the resident size by less than 4 MiB (of 24 MiB asked). Then the blocks are
// written, freed, and calloc'd again: every byte must read 0.
// Exit 0 and "calloc_rss: ok ..." on success, 1 with "calloc_rss: FAIL ..." otherwise.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long resident_kib(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &pages, &resident) != 2) { perror("statm"); exit(2); }
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

int main(void) {
    enum { N = 4 };
    const size_t size = 6u << 20;
    unsigned char *p[N];
    free(malloc(100)); // the allocator is initialised before the first measure
    long before = resident_kib();
    for (int i = 0; i < N; i++) {
        p[i] = calloc(1, size);
        if (!p[i]) { printf("calloc_rss: FAIL calloc(1, %zu) = NULL\n", size); return 1; }
    }
    long grown = resident_kib() - before;
    int failures = 0;
    if (grown >= 4096) {
        printf("calloc_rss: FAIL %d x calloc(1, 6 MiB) of fresh memory made %ld KiB resident (expected < 4096 KiB)\n", N, grown);
        failures++;
    }
    for (int i = 0; i < N; i++) {
        for (size_t o = 0; o < size; o += 4096)
            if (p[i][o] || p[i][size - 1 - o]) { printf("calloc_rss: FAIL fresh calloc block %d: byte not zero near %zu\n", i, o); return 1; }
        memset(p[i], 0xA5, size);
    }
    for (int i = 0; i < N; i++) free(p[i]);
    for (int i = 0; i < N; i++) {
        p[i] = calloc(size / 64, 64);
        if (!p[i]) { printf("calloc_rss: FAIL calloc(%zu, 64) = NULL\n", size / 64); return 1; }
        for (size_t o = 0; o < size; o++)
            if (p[i][o]) { printf("calloc_rss: FAIL reused calloc block %d: byte %zu is 0x%02x\n", i, o, p[i][o]); return 1; }
    }
    for (int i = 0; i < N; i++) free(p[i]);
    if (failures) return 1;
    printf("calloc_rss: ok resident growth %ld KiB for %d x 6 MiB\n", grown, N);
    return 0;
}
