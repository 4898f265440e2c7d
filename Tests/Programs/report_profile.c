// Allocation sites for the profile (BUDDY_PROFILE_SAMPLE, ReportTests): one function keeps
// 12.5 MiB of 64 KiB blocks alive, another allocates and frees small blocks from two threads;
// a third reallocates and callocs. Build with -g -fno-omit-frame-pointer -rdynamic.
//
//   report_profile
//
// Exits 0, or 3 when BuddyMalloc is not the process's malloc.
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *kept[200];

__attribute__((noinline)) void keep_large_blocks(void) {
    for (int i = 0; i < 200; i++) {
        kept[i] = malloc(65536);
        memset(kept[i], 1, 65536);
    }
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void churn_small_blocks(void) {
    for (int i = 0; i < 200000; i++) {
        char *p = malloc(48 + (size_t)(i % 64));
        p[0] = (char)i;
        free(p);
    }
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void grow_with_realloc(void) {
    for (int j = 0; j < 100; j++) {
        char *p = calloc(1, 16);
        for (size_t n = 32; n <= 8192; n *= 2) p = realloc(p, n);
        free(p);
    }
    __asm__ volatile("" ::: "memory");
}

static void *worker(void *unused) {
    (void)unused;
    churn_small_blocks();
    return NULL;
}

int main(void) {
    void *probe = malloc(100);
    size_t usable = malloc_usable_size(probe);
    free(probe);
    if (usable != 128) {
        printf("not running under BuddyMalloc (malloc_usable_size(malloc(100)) = %zu)\n", usable);
        return 3;
    }
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    keep_large_blocks();
    churn_small_blocks();
    grow_with_realloc();
    pthread_join(t, NULL);
    printf("profile ok\n");
    return 0;
}
