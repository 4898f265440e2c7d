// Many processes of one tree writing reports to one shared stderr at once (ReportTests).
//
//   report_fork_stderr CHILDREN SIGNALS
//
// The parent forks CHILDREN children that wait on a pipe; closing it releases them all at once.
// Each child then signals itself (a signal report) and exits (an exit report), while the parent
// signals itself SIGNALS times (signal reports written by its handler), then waits for the
// children and exits (its exit report). With BUDDY_REPORT=stderr and BUDDY_REPORT_FORMAT=json,
// every document must reach the shared stderr whole. Prints "forked N" on stdout; exits 0, or 3
// when BuddyMalloc is not the process's malloc.
#define _GNU_SOURCE
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void churn(int rounds) {
    void *blocks[64];
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < 64; i++) blocks[i] = malloc((size_t)(16 + (i * 37 + r) % 3000));
        for (int i = 0; i < 64; i++) free(blocks[i]);
    }
}

int main(int argc, char **argv) {
    int children = argc > 1 ? atoi(argv[1]) : 8;
    int signals = argc > 2 ? atoi(argv[2]) : 4;
    void *probe = malloc(100);
    size_t usable = malloc_usable_size(probe);
    free(probe);
    if (usable != 128) {
        printf("not running under BuddyMalloc (malloc_usable_size(malloc(100)) = %zu)\n", usable);
        return 3;
    }
    // Foundation's Process starts programs with most signals blocked.
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, SIGUSR1);
    sigprocmask(SIG_UNBLOCK, &unblock, NULL);
    churn(50);
    int gate[2];
    if (pipe(gate) != 0) return 1;
    for (int c = 0; c < children; c++) {
        pid_t pid = fork();
        if (pid < 0) return 1;
        if (pid == 0) {
            close(gate[1]);
            churn(20 + c);
            char byte;
            while (read(gate[0], &byte, 1) > 0) {}
            kill(getpid(), SIGUSR1);
            churn(5);
            exit(0);
        }
    }
    close(gate[0]);
    printf("forked %d\n", children);
    fflush(stdout);
    close(gate[1]); // every child wakes now
    for (int s = 0; s < signals; s++) {
        kill(getpid(), SIGUSR1);
        churn(2);
    }
    int failed = 0;
    for (int c = 0; c < children; c++) {
        int status = 0;
        if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) failed++;
    }
    if (failed) printf("%d children failed\n", failed);
    return failed ? 1 : 0;
}
