// Signal handlers around BUDDY_REPORT_SIGNAL (ReportTests).
//
//   report_handlers later     installs its own SIGUSR1 handler in main, then signals itself: the
//                             program's handler runs (it takes precedence over the library's)
//   report_handlers earlier   signals itself; the handler a library installed before
//                             libBuddyMalloc.so (this file built with -DHANDLER_LIBRARY and
//                             preloaded after it) still runs, after the library's report
//
// Prints which handlers ran; exits 0, or 3 when BuddyMalloc is not the process's malloc.
#define _GNU_SOURCE
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef HANDLER_LIBRARY
static void early_handler(int sig) {
    (void)sig;
    static const char text[] = "early handler ran\n";
    write(1, text, sizeof text - 1);
}
__attribute__((constructor)) static void install_early(void) {
    struct sigaction a;
    memset(&a, 0, sizeof a);
    a.sa_handler = early_handler;
    sigaction(SIGUSR1, &a, NULL);
}
#else
static volatile sig_atomic_t handled;
static void program_handler(int sig) { (void)sig; handled++; }

int main(int argc, char **argv) {
    void *probe = malloc(100);
    size_t usable = malloc_usable_size(probe);
    free(probe);
    if (usable != 128) {
        printf("not running under BuddyMalloc (malloc_usable_size(malloc(100)) = %zu)\n", usable);
        return 3;
    }
    // Programs started by the test runner (Foundation's Process) inherit a mask that blocks most
    // signals; a shell would start them with none blocked, as the library expects.
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, SIGUSR1);
    sigprocmask(SIG_UNBLOCK, &unblock, NULL);
    if (argc > 1 && strcmp(argv[1], "later") == 0) {
        struct sigaction a;
        memset(&a, 0, sizeof a);
        a.sa_handler = program_handler;
        sigaction(SIGUSR1, &a, NULL);
    }
    fflush(stdout);
    kill(getpid(), SIGUSR1);
    struct timespec pause = { 0, 100000000 };
    nanosleep(&pause, NULL);
    printf("program handler ran %d\n", (int)handled);
    return 0;
}
#endif
