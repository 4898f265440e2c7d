// report_storm: report signals while threads allocate and the process forks (run by
// tools/adversarial.sh and AdversarialTests).
//
//   report_storm THREADS SIGNALS FORKS
//
// THREADS threads allocate, fill, check and free blocks (some freed by the next thread) until the
// main thread is done; meanwhile the main thread sends itself SIGNALS x SIGUSR1 (raise() and
// kill() of its pid, so the signal lands on any thread), and after every SIGNALS / FORKS signals
// forks a child that allocates from a new thread and from its only thread, checks, frees and
// exits (half through exit(), which writes the child's exit report, half through _exit()).
// Run it with BUDDY_REPORT set: the library's handler writes a report per signal (or shares one
// between signals that arrive while one is written). The caller checks the reports. With
// BUDDY_REPORT_SIGNAL=USR2 it sends SIGUSR2; with BUDDY_REPORT_SIGNAL=none it ignores SIGUSR1 first
// (the library installs no handler then, and the default action would end the process).
//
// Exit 0 and "report_storm: ok ..." when every block held its pattern and every child exited 0;
// a broken block prints "report_storm: FAIL" and aborts; a child that hangs is killed by alarm().
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { SLOTS = 128, MAX_THREADS = 32 };

static atomic_int stop;
static atomic_long operations;
static _Atomic(unsigned char *) handoff[MAX_THREADS];
static int nthreads;

static void fail(const char *what, const void *p, size_t n, size_t at) {
    char line[200];
    int len = snprintf(line, sizeof line, "report_storm: FAIL %s: block %p size %zu byte %zu\n", what, p, n, at);
    (void)!write(2, line, (size_t)len);
    abort();
}

// The block's size is stored in its first 8 bytes; the rest is a pattern of its address.
static void fill(unsigned char *p, size_t n) {
    memcpy(p, &n, sizeof n);
    for (size_t i = sizeof n; i < n; i++) p[i] = (unsigned char)(((uintptr_t)p >> 4) + i * 7);
}

static void check_and_free(unsigned char *p) {
    size_t n;
    memcpy(&n, p, sizeof n);
    if (n < sizeof n || n > malloc_usable_size(p)) fail("size header", p, n, 0);
    for (size_t i = sizeof n; i < n; i++)
        if (p[i] != (unsigned char)(((uintptr_t)p >> 4) + i * 7)) fail("pattern", p, n, i);
    free(p);
}

static size_t random_size(unsigned *seed) {
    unsigned r = (unsigned)rand_r(seed);
    switch (r % 8) {
    case 0: return 8 + r % 64 * 1024 + 4096;   // slabs and blocks up to 68 KiB
    case 1: return 8 + (r >> 3) % (600 * 1024); // up to 600 KiB
    default: return 8 + (r >> 3) % 512;
    }
}

static void *worker(void *arg) {
    int index = (int)(intptr_t)arg;
    unsigned seed = (unsigned)index * 7919u + 1;
    unsigned char *slots[SLOTS] = {0};
    long ops = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        unsigned r = (unsigned)rand_r(&seed);
        unsigned char **s = &slots[r % SLOTS];
        if (*s) {
            if (r % 5 == 0) {
                // Hand it to the next thread, which checks and frees it.
                unsigned char *old = atomic_exchange(&handoff[(index + 1) % nthreads], *s);
                if (old) check_and_free(old);
            } else {
                check_and_free(*s);
            }
            *s = NULL;
        } else {
            size_t n = random_size(&seed);
            unsigned char *p = (r % 7 == 0) ? calloc(1, n) : malloc(n);
            if (!p) { fprintf(stderr, "report_storm: FAIL malloc(%zu) = NULL, errno %d\n", n, errno); abort(); }
            fill(p, n);
            *s = p;
        }
        unsigned char *mine = atomic_exchange(&handoff[index], NULL);
        if (mine) check_and_free(mine);
        ops++;
    }
    for (int i = 0; i < SLOTS; i++)
        if (slots[i]) check_and_free(slots[i]);
    atomic_fetch_add(&operations, ops);
    return NULL;
}

static void *child_thread(void *arg) {
    (void)arg;
    unsigned seed = 99;
    for (int i = 0; i < 200; i++) {
        size_t n = random_size(&seed);
        unsigned char *p = malloc(n);
        if (!p) return (void *)1;
        fill(p, n);
        check_and_free(p);
    }
    return NULL;
}

static void child(int round) {
    alarm(20);
    unsigned seed = (unsigned)round;
    unsigned char *keep[32];
    for (int i = 0; i < 32; i++) {
        size_t n = random_size(&seed);
        keep[i] = malloc(n);
        if (!keep[i]) _exit(10);
        fill(keep[i], n);
    }
    pthread_t t;
    void *rc = (void *)1;
    if (pthread_create(&t, NULL, child_thread, NULL) != 0 || pthread_join(t, &rc) != 0 || rc) _exit(11);
    for (int i = 0; i < 32; i++) check_and_free(keep[i]);
    if (round % 2) exit(0); // writes the child's exit report
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: report_storm THREADS SIGNALS FORKS\n");
        return 2;
    }
    nthreads = atoi(argv[1]);
    int signals = atoi(argv[2]), forks = atoi(argv[3]);
    if (nthreads < 1 || nthreads > MAX_THREADS || signals < 0 || forks < 0) return 2;
    // Programs started by the test runner (Foundation's Process) inherit a mask that blocks most
    // signals; a shell starts them with none blocked, as the library expects.
    sigset_t unblock;
    sigemptyset(&unblock);
    int sig = SIGUSR1;
    const char *configured = getenv("BUDDY_REPORT_SIGNAL");
    if (configured && strcmp(configured, "USR2") == 0) sig = SIGUSR2;
    if (configured && strcmp(configured, "none") == 0) signal(SIGUSR1, SIG_IGN);
    sigaddset(&unblock, sig);
    sigprocmask(SIG_UNBLOCK, &unblock, NULL);
    pthread_t threads[MAX_THREADS];
    for (int i = 0; i < nthreads; i++) pthread_create(&threads[i], NULL, worker, (void *)(intptr_t)i);
    int every = forks ? (signals > forks ? signals / forks : 1) : 0, forked = 0, bad_children = 0;
    struct timespec pause = {0, 2 * 1000 * 1000}; // 2 ms: reports take time to write; let some land apart
    for (int i = 0; i < signals || forked < forks; i++) {
        if (i < signals) {
            if (i % 2) raise(sig);
            else kill(getpid(), sig);
        }
        if (forked < forks && (i >= signals || (every && i % every == 0))) {
            pid_t pid = fork();
            if (pid < 0) { perror("report_storm: fork"); bad_children++; }
            else if (pid == 0) child(forked);
            else {
                int status;
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                    fprintf(stderr, "report_storm: child %d ended with status 0x%x\n", forked, status);
                    bad_children++;
                }
            }
            forked++;
        }
        nanosleep(&pause, NULL);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < nthreads; i++) pthread_join(threads[i], NULL);
    for (int i = 0; i < nthreads; i++) {
        unsigned char *p = atomic_exchange(&handoff[i], NULL);
        if (p) check_and_free(p);
    }
    if (bad_children) {
        printf("report_storm: FAILED %d of %d children\n", bad_children, forks);
        return 1;
    }
    printf("report_storm: ok threads=%d signals=%d forks=%d operations=%ld\n", nthreads, signals, forks,
           atomic_load(&operations));
    return 0;
}
