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
