// Shared by the programs in Tests/Programs/glibc/: each is this project's own rewrite of one of
// glibc's malloc tests (malloc/tst-*.c), checking what the original checks through the public
// API only, so that it runs unchanged on glibc (the reference) and under LD_PRELOAD of
// libBuddyMalloc.so.
//
// Conventions: one "FAIL <program>:<line>: <what>" line per broken check on stdout; at the end
// "<program>: ok N checks; malloc from LIB; malloc_usable_size(malloc(100)) = U" and exit 0, or
// "<program>: FAILED n of N checks" and exit 1. LIB (the object defining the malloc the program
// calls) and U (128 under BuddyMalloc, 104 under glibc) tell which allocator served the run. A watchdog (alarm) ends a hung run with exit 124.
#ifndef GLIBC_TEST_H
#define GLIBC_TEST_H
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
#include <unistd.h>

#if defined(__GNUC__) && __GNUC__ >= 12 && !defined(__clang__)
// Some checks read a block after a realloc that failed on purpose (the block is still valid).
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif

static const char *test_name = "?";
static int test_checks, test_failures;

#define CHECK(cond, ...)                                        \
    do {                                                        \
        test_checks++;                                          \
        if (!(cond)) {                                          \
            test_failures++;                                    \
            printf("FAIL %s:%d: ", test_name, __LINE__);        \
            printf(__VA_ARGS__);                                \
            printf("\n");                                       \
            fflush(stdout);                                     \
        }                                                       \
    } while (0)

// A check whose failure makes the rest meaningless (a NULL the program would dereference).
// The condition is evaluated once (it may allocate or create a thread).
#define REQUIRE(cond, ...)                                      \
    do {                                                        \
        int required_ = (cond) ? 1 : 0;                         \
        CHECK(required_, __VA_ARGS__);                          \
        if (!required_) {                                       \
            printf("%s: FAILED (stopped at line %d)\n", test_name, __LINE__); \
            exit(1);                                            \
        }                                                       \
    } while (0)

// Sizes the compiler cannot see: gcc warns about, and may reason over, constant huge sizes.
static volatile size_t v_size_max = SIZE_MAX;

static void test_watchdog(int sig) {
    (void)sig;
    static const char text[] = "watchdog: the program ran out of time (hang?)\n";
    ssize_t ignored = write(STDOUT_FILENO, text, sizeof text - 1);
    (void)ignored;
    _exit(124);
}

/// Names the program in messages and arms the watchdog (SIGALRM after `seconds`).
static void test_start(const char *name, unsigned seconds) {
    test_name = name;
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGALRM, test_watchdog);
    alarm(seconds);
}

/// The file name of the object whose malloc the program calls ("libc.so.6", "libBuddyMalloc.so").
static const char *allocator_library(void) {
    Dl_info info;
    void *(*f)(size_t) = malloc;
    if (dladdr((void *)f, &info) == 0 || info.dli_fname == NULL) return "?";
    const char *slash = strrchr(info.dli_fname, '/');
    return slash ? slash + 1 : info.dli_fname;
}

/// Whether glibc's own allocator serves the program and is older than major.minor.
__attribute__((unused)) static int glibc_allocator_older_than(int major, int minor) {
    if (strncmp(allocator_library(), "libc.so", 7) != 0) return 0;
    int a = 0, b = 0;
    if (sscanf(gnu_get_libc_version(), "%d.%d", &a, &b) != 2) return 0;
    return a < major || (a == major && b < minor);
}

/// Prints the verdict; the exit status for main.
static int test_finish(void) {
    void *probe = malloc(100);
    size_t usable = malloc_usable_size(probe);
    free(probe);
    if (test_failures) {
        printf("%s: FAILED %d of %d checks\n", test_name, test_failures, test_checks);
        return 1;
    }
    printf("%s: ok %d checks; malloc from %s; malloc_usable_size(malloc(100)) = %zu\n", test_name, test_checks,
           allocator_library(), usable);
    return 0;
}

#endif
