// fork() from a signal handler, while the interrupted thread is inside malloc or inside fork
// itself (the shape of glibc's tst-mallocfork and tst-mallocfork2, written for this project).
//
//   fork_signal SECONDS
//
// A timer sends SIGALRM about every millisecond; its handler forks, and the child _exits. The main
// thread meanwhile allocates and frees blocks of every size class and forks children of its
// own, so the signal lands inside malloc's slow paths and inside fork's atfork handlers.
// Single-threaded, as glibc promises it: in a process with threads glibc's own fork takes its
// atfork-list and arena locks, and a fork from a handler that interrupted them waits forever.
// With BUDDY_THREAD_SAFETY=always the pool takes its lock on every call, so the handler also
// interrupts a thread that holds it. A deadlock shows as a hang: the caller's time-out.
// Exit 0 and "fork_signal: ok N M" (handler forks, main forks) on success.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t handler_forks;

static void on_alarm(int sig) {
    (void)sig;
    int saved = errno;
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    if (pid > 0) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        handler_forks++;
    }
    errno = saved;
}

static unsigned next(unsigned *state) { *state = *state * 1103515245u + 12345u; return *state >> 8; }

static void churn(unsigned *state, void **slots, int count) {
    for (int i = 0; i < 64; i++) {
        int k = (int)(next(state) % (unsigned)count);
        free(slots[k]);
        // Sizes from 1 B to 16 MiB: cached blocks, slab objects, large blocks, the system's.
        unsigned shift = next(state) % 25;
        size_t size = 1 + next(state) % ((size_t)1 << shift);
        slots[k] = malloc(size);
        if (slots[k] == NULL) { fprintf(stderr, "malloc(%zu) failed\n", size); _exit(2); }
        ((char *)slots[k])[0] = 1;
    }
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_alarm;
    action.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &action, NULL);

    struct itimerval timer = { { 0, 1000 }, { 0, 1000 } };
    setitimer(ITIMER_REAL, &timer, NULL);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    unsigned state = 1;
    void *slots[256] = {0};
    long main_forks = 0;
    for (;;) {
        churn(&state, slots, 256);
        pid_t pid = fork();
        if (pid == 0) _exit(0);
        if (pid < 0) { perror("fork"); return 2; }
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        main_forks++;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) * 1e-9 > seconds) break;
    }
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, NULL);
    for (int i = 0; i < 256; i++) free(slots[i]);
    printf("fork_signal: ok %d %ld\n", (int)handler_forks, main_forks);
    return 0;
}
