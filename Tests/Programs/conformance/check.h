// conformance.c's harness: the counters and CHECK, the mode flags main sets, and the helpers
// the rules share. Part of conformance.c (Tests/Programs/conformance.c includes it once).
#pragma once
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <gnu/libc-version.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__GNUC__) && __GNUC__ >= 12 && !defined(__clang__)
// The checks read a block after a realloc that failed on purpose (the block is still valid).
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif

static int checks, failures, buddy;
// --glibc-rules under BuddyMalloc: buddy is 0, but what glibc merely happens to do (a shrinking
// realloc stays in place) is not asked of it.
static int glibc_rules_only;
// BUDDY_ON_ERROR=log: a double free is reported and survived, so "it aborts" proves nothing.
static int log_mode;
static const size_t KiB = 1024, MiB = 1024 * 1024;

#define CHECK(rule, cond, ...)                                  \
    do {                                                        \
        checks++;                                               \
        if (!(cond)) {                                          \
            failures++;                                         \
            printf("FAIL %s: ", rule);                          \
            printf(__VA_ARGS__);                                \
            printf("\n");                                       \
            fflush(stdout);                                     \
        }                                                       \
    } while (0)

// Sizes the compiler cannot fold (gcc would warn about, or reason over, constant huge sizes).
static volatile size_t v_size_max = SIZE_MAX;
static volatile size_t v_ptrdiff_over = (size_t)PTRDIFF_MAX + 1;

static size_t next_pow2(size_t n) {
    size_t p = 16;
    while (p < n) p <<= 1;
    return p;
}

/* The pool's largest block: BUDDY_MAX_BLOCK (a number with an optional K/M/G), else the
 * library's default, 8 MiB. */
static size_t max_block(void) {
    const char *v = getenv("BUDDY_MAX_BLOCK");
    if (!v || !*v) return 8 * MiB;
    char *end;
    size_t n = strtoull(v, &end, 10);
    if (*end == 'K' || *end == 'k') n *= KiB;
    else if (*end == 'M' || *end == 'm') n *= MiB;
    else if (*end == 'G' || *end == 'g') n *= 1024 * MiB;
    return n;
}

/* The usable size BuddyMalloc gives malloc(n) (README, "Slabs"): for 1 KiB < n <= 32 KiB a slab
 * object of 9/8 ... 15/8 of the power of two below n, when slabs are on (BUDDY_SLABS) and the
 * class's slab (16 times that power of two) fits in the largest block; else the next power of two. */
static size_t buddy_size(size_t n) {
    size_t block = next_pow2(n), base = block / 2, step = base / 8;
    const char *v = getenv("BUDDY_SLABS");
    int slabs = !(v && (strcmp(v, "off") == 0 || strcmp(v, "0") == 0));
    if (slabs && n <= KiB) {
        /* The classes under 1 KiB (README, "Slabs"): with 16-byte slots, and codes left by at
           most 20 orders (a largest block of 8 MiB); their largest slab is 16 KiB. */
        static const size_t small[] = {48, 96, 192, 320, 384, 640, 768, 896};
        const char *m = getenv("BUDDY_MIN_BLOCK");
        if ((m && *m && strtoull(m, NULL, 10) != 16) || max_block() > 8 * MiB || max_block() < 16 * KiB) return block;
        for (size_t i = 0; i < sizeof small / sizeof small[0]; i++)
            if (n <= small[i] && small[i] < block) return small[i];
        return block;
    }
    if (!slabs || n <= KiB || n > 32 * KiB || 16 * base > max_block()) return block;
    size_t k = (n - base + step - 1) / step;
    return k < 8 ? base + k * step : block;
}

static int aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(i * 31 + seed);
}

static size_t first_mismatch(const unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(i * 31 + seed)) return i;
    return (size_t)-1;
}

static int glibc_at_least(int major, int minor) {
    int ma = 0, mi = 0;
    sscanf(gnu_get_libc_version(), "%d.%d", &ma, &mi);
    return ma > major || (ma == major && mi >= minor);
}

// Frees `p` again in a forked child: a block that was really freed makes the allocator abort
// (BuddyMalloc: double free; glibc: its tcache double-free check for small blocks).
static int child_double_free_aborts(void *p) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *devnull = freopen("/dev/null", "w", stderr);
        (void)devnull;
        free(p);
        _exit(0);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) return 0;
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}
