// Shared by the programs in Tests/Programs/mimalloc/: this project's own rewrites of the
// standard-API part of mimalloc's tests (test/test-api.c, test/test-stress.c). They call only
// the C library's allocation functions, so they run unchanged on glibc (the control) and under
// LD_PRELOAD of libBuddyMalloc.so.
//
// Conventions: "pass <check>" or "FAIL <check>: <why>" per check on stdout; at the end
// "<program>: ok N checks; malloc from LIB; malloc_usable_size(malloc(100)) = U" and exit 0, or
// "<program>: FAILED n of N checks" and exit 1. LIB (the object whose malloc the program calls)
// and U (128 under BuddyMalloc, 104 under glibc) show which allocator served the run. A
// watchdog (alarm) ends a hung run with exit 124.
#ifndef MI_TEST_H
#define MI_TEST_H
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *mt_program = "?";
static int mt_checks, mt_failures;

static void mt_watchdog(int sig) {
    (void)sig;
    static const char text[] = "watchdog: the program ran out of time (hang?)\n";
    ssize_t ignored = write(STDOUT_FILENO, text, sizeof text - 1);
    (void)ignored;
    _exit(124);
}

/// Names the program in messages and arms the watchdog (SIGALRM after `seconds`).
static void mt_start(const char *program, unsigned seconds) {
    mt_program = program;
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGALRM, mt_watchdog);
    alarm(seconds);
}

/// Records one check's verdict; `why` (printf format) explains a failure.
__attribute__((format(printf, 3, 4), unused))
static void mt_verdict(const char *check, bool ok, const char *why, ...) {
    mt_checks++;
    if (ok) {
        printf("pass %s\n", check);
        return;
    }
    mt_failures++;
    printf("FAIL %s: ", check);
    va_list args;
    va_start(args, why);
    vprintf(why, args);
    va_end(args);
    printf("\n");
}

/// The file name of the object whose malloc the program calls ("libc.so.6", "libBuddyMalloc.so").
static const char *mt_allocator_library(void) {
    Dl_info info;
    void *(*f)(size_t) = malloc;
    if (dladdr((void *)f, &info) == 0 || info.dli_fname == NULL) return "?";
    const char *slash = strrchr(info.dli_fname, '/');
    return slash ? slash + 1 : info.dli_fname;
}

/// Prints the summary; the exit status for main.
static int mt_finish(void) {
    void *probe = malloc(100);
    size_t usable = malloc_usable_size(probe);
    free(probe);
    if (mt_failures) {
        printf("%s: FAILED %d of %d checks\n", mt_program, mt_failures, mt_checks);
        return 1;
    }
    printf("%s: ok %d checks; malloc from %s; malloc_usable_size(malloc(100)) = %zu\n", mt_program, mt_checks,
           mt_allocator_library(), usable);
    return 0;
}

#endif
