// Shared by the misuse programs (Tests/PreloadTests/MisuseTests.swift runs each under glibc,
// BuddyMalloc and BuddyMalloc with BUDDY_HARDEN): each program makes one mistake and then
// exits 0. "Caught" means the allocator stopped it (a signal) or reported it on stderr.
// Built with -O1 -fno-builtin, so the compiler neither removes the calls nor the bad accesses.
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Keeps pointers and values alive across the compiler's view of the program.
static void *volatile misuse_sink;
static inline void keep(void *p) { misuse_sink = p; }
static inline unsigned char *launder(void *p) { misuse_sink = p; return (unsigned char *)misuse_sink; }

// Two blocks of `size` bytes, `*low` right below `*high` (high == low + malloc_usable_size(low)),
// found among up to 256 allocations (the others stay allocated): which two mallocs in a row hand
// out neighbours depends on what the process allocated before (its libraries), so a program
// about an overflow into the next block looks for the pair instead of assuming it. When no pair
// is found (glibc: a chunk header lies between), the first two, lower first.
static inline void adjacent_pair(size_t size, unsigned char **low, unsigned char **high) {
    static unsigned char *blocks[256];
    for (int n = 0; n < 256; n++) {
        blocks[n] = malloc(size);
        for (int i = 0; i < n; i++) {
            unsigned char *a = blocks[i], *b = blocks[n];
            if (b == a + malloc_usable_size(a)) { *low = a; *high = b; return; }
            if (a == b + malloc_usable_size(b)) { *low = b; *high = a; return; }
        }
    }
    *low = blocks[0] < blocks[1] ? blocks[0] : blocks[1];
    *high = blocks[0] < blocks[1] ? blocks[1] : blocks[0];
}
