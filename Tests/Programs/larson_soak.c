// larson_soak: a larson-style load for a time, for tools/soak.sh (the long soak of issue 13).
//
// usage: larson_soak THREADS SECONDS SEED [FORK_EVERY_SECONDS]
//
// THREADS workers share one table of slots. Each step a worker allocates a block (sizes mostly
// 17 B to 1 KiB, some up to 16 KiB, a few up to 256 KiB), stamps it (its size and a key derived
// from its address, size and the seed at its start, the key's low byte in its last byte), swaps
// it into a random slot and frees what the slot held, after checking its stamp: that block was
// allocated by any thread, usually another one. Every 64th step also allocates and frees a few
// blocks of its own (same-thread reuse). The main thread prints one line a second,
// "t=SECONDS ops=TOTAL", and forks every FORK_EVERY_SECONDS (default 5; 0: never): the child
// allocates, checks and frees a little (also from a new thread), checks and frees 16 blocks it
// inherited from the slots (the parent's threads allocated them), and exits with exit(0) (so the library's exit path runs in it); alarm(20) kills
// a child that hangs, which counts as a failure. The last line is "larson_soak: ok ..." when
// every check passed; a broken stamp is reported on stderr and aborts.
//
// Build with -fno-builtin (gcc removes malloc/free pairs otherwise).
#define _GNU_SOURCE
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

#define SLOTS 4096
#define MAX_THREADS 64

static uint64_t g_seed;
static _Atomic(uintptr_t) g_slots[SLOTS];
static atomic_int g_stop;
static atomic_ullong g_ops;

static inline uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static inline uint64_t next(uint64_t *state) {
    *state += 0x9E3779B97F4A7C15ULL;
    return mix(*state);
}

static size_t random_size(uint64_t *rng) {
    uint64_t r = next(rng);
    unsigned pick = r % 100;
    r >>= 8;
    if (pick < 80) return 17 + r % 1008;            // 17 B .. 1 KiB
    if (pick < 98) return 1024 + r % (15 * 1024);   // 1 .. 16 KiB
    return 16 * 1024 + r % (240 * 1024);            // 16 .. 256 KiB
}

static void *stamped(size_t size) {
    unsigned char *p = malloc(size);
    if (!p) {
        fprintf(stderr, "larson_soak: malloc(%zu) failed\n", size);
        abort();
    }
    uint64_t key = mix((uint64_t)(uintptr_t)p ^ size ^ g_seed);
    memcpy(p, &size, sizeof size);
    memcpy(p + 8, &key, sizeof key);
    p[size - 1] = (unsigned char)key;
    return p;
}

static void check_and_free(unsigned char *p) {
    size_t size;
    uint64_t key;
    memcpy(&size, p, sizeof size);
    memcpy(&key, p + 8, sizeof key);
    if (size < 17 || size > 256 * 1024 || key != mix((uint64_t)(uintptr_t)p ^ size ^ g_seed)
        || p[size - 1] != (unsigned char)key) {
        fprintf(stderr, "larson_soak: block %p has a broken stamp (size %zu)\n", (void *)p, size);
        abort();
    }
    free(p);
}

static void *worker(void *arg) {
    uint64_t rng = g_seed ^ (uint64_t)(uintptr_t)arg * 0x2545F4914F6CDD1DULL;
    unsigned long long ops = 0;
    void *own[8];
    while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        void *p = stamped(random_size(&rng));
        uintptr_t old = atomic_exchange(&g_slots[next(&rng) % SLOTS], (uintptr_t)p);
        if (old) check_and_free((unsigned char *)old);
        if (++ops % 64 == 0) {
            for (int i = 0; i < 8; i++) own[i] = stamped(random_size(&rng));
            for (int i = 7; i >= 0; i--) check_and_free(own[i]);
            atomic_fetch_add_explicit(&g_ops, 64, memory_order_relaxed);
        }
    }
    return NULL;
}

static void *child_thread(void *arg) {
    (void)arg;
    for (int i = 0; i < 100; i++) check_and_free(stamped(17 + i * 37));
    return NULL;
}

static void child(void) {
    alarm(20);
    uint64_t rng = g_seed ^ (uint64_t)getpid();
    void *blocks[64];
    for (int i = 0; i < 64; i++) blocks[i] = stamped(random_size(&rng));
    for (int i = 0; i < 64; i++) check_and_free(blocks[i]);
    for (int i = 0; i < 16; i++) {
        uintptr_t p = atomic_exchange(&g_slots[(i * 257) % SLOTS], 0);
        if (p) check_and_free((unsigned char *)p);
    }
    pthread_t t;
    if (pthread_create(&t, NULL, child_thread, NULL) != 0 || pthread_join(t, NULL) != 0) _exit(3);
    exit(0);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: larson_soak THREADS SECONDS SEED [FORK_EVERY_SECONDS]\n");
        return 2;
    }
    int threads = atoi(argv[1]);
    int seconds = atoi(argv[2]);
    g_seed = strtoull(argv[3], NULL, 10);
    int fork_every = argc > 4 ? atoi(argv[4]) : 5;
    if (threads < 1 || threads > MAX_THREADS || seconds < 1) return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t tids[MAX_THREADS];
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&tids[i], NULL, worker, (void *)(uintptr_t)(i + 1)) != 0) {
            fprintf(stderr, "larson_soak: pthread_create failed\n");
            return 1;
        }
    }
    int forks = 0, failed_children = 0;
    for (int t = 1; t <= seconds; t++) {
        struct timespec second = {1, 0};
        while (nanosleep(&second, &second) != 0) {}
        printf("t=%d ops=%llu\n", t, (unsigned long long)atomic_load(&g_ops));
        if (fork_every > 0 && t % fork_every == 0) {
            pid_t pid = fork();
            if (pid < 0) {
                fprintf(stderr, "larson_soak: fork failed\n");
                failed_children++;
            } else if (pid == 0) {
                child();
            } else {
                int status;
                forks++;
                while (waitpid(pid, &status, 0) < 0) {}
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                    fprintf(stderr, "larson_soak: child %d at t=%d ended with status 0x%x\n", pid, t, status);
                    failed_children++;
                }
            }
        }
    }
    atomic_store(&g_stop, 1);
    for (int i = 0; i < threads; i++) pthread_join(tids[i], NULL);
    for (int i = 0; i < SLOTS; i++) {
        uintptr_t p = atomic_exchange(&g_slots[i], 0);
        if (p) check_and_free((unsigned char *)p);
    }
    if (failed_children) {
        fprintf(stderr, "larson_soak: %d of %d children failed\n", failed_children, forks);
        return 1;
    }
    printf("larson_soak: ok threads=%d seconds=%d ops=%llu forks=%d\n", threads, seconds,
           (unsigned long long)atomic_load(&g_ops), forks);
    return 0;
}
