// A double free and an interior pointer, each in a function of its own, for the bad-pointer
// backtraces (ReportTests). Build with -g -fno-omit-frame-pointer -rdynamic so the frames are named.
//
//   report_double_free [interior | clean]
//
// (clean: no bad pointer at all, for the plain report's tests.)
// Prints "pointer 0x..." before the bad free; under BUDDY_ON_ERROR=log prints "survived" and
// exits 0 (the library aborts otherwise); exits 3 when BuddyMalloc is not the process's malloc.
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void release_twice(char *p) {
    free(p);
    printf("pointer %p\n", (void *)p);
    fflush(stdout);
    free(p);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void release_inside(char *p) {
    printf("pointer %p\n", (void *)(p + 16));
    fflush(stdout);
    free(p + 16);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void caller_of_the_bad_free(int interior) {
    char *p = malloc(64);
    memset(p, 1, 64);
    if (interior) {
        release_inside(p);
        free(p);
    } else {
        release_twice(p);
    }
    __asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv) {
    void *probe = malloc(100);
    size_t usable = malloc_usable_size(probe);
    free(probe);
    if (usable != 128) {
        printf("not running under BuddyMalloc (malloc_usable_size(malloc(100)) = %zu)\n", usable);
        return 3;
    }
    if (argc > 1 && strcmp(argv[1], "clean") == 0) {
        void *blocks[100];
        for (int i = 0; i < 100; i++) blocks[i] = malloc((size_t)(i * 37 + 1));
        for (int i = 0; i < 100; i++) free(blocks[i]);
    } else {
        caller_of_the_bad_free(argc > 1 && strcmp(argv[1], "interior") == 0);
    }
    printf("survived\n");
    return 0;
}
