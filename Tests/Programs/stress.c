// stress: a multithreaded allocator stress driver (run by Tests/PreloadTests/StressTests.swift).
//
// usage: stress THREADS ITERATIONS SEED [FORKS]
//
// Every block is filled with a pattern derived from its address, size and the seed, and is
// verified before it is freed or resized; the slack up to malloc_usable_size is written and
// verified too. The run mixes, at the same time:
//   - worker threads: random sizes 1 B .. 2 MiB (mostly small) through malloc, calloc,
//     realloc(NULL), posix_memalign, aligned_alloc and memalign; frees; realloc chains;
//   - cross-thread frees: workers post blocks to other workers' mailboxes, whose owners verify
//     and free them (blocks the main thread allocated before any thread existed included);
//   - thread churn: short-lived threads (joined and detached) allocate, free some and leave the
//     rest to the workers (the orphan list);
//   - fork while the workers allocate: each child allocates, verifies and frees (from a new
//     thread too), frees blocks inherited from the parent, and exits 0 quickly; the parent checks
//     every child's status. A child that hangs is killed by alarm() and counted as a failure.
// Exit status 0 and a last line "stress: ok ..." when every check passed; any corruption is
// reported on stderr and aborts.
//
// Build with -fno-builtin (gcc removes malloc/free pairs otherwise).
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
#include <unistd.h>

#define SLOTS 192
#define SLACK_CHECKED 256
#define MAX_THREADS 64

static uint64_t g_seed;
static int g_threads;
static long g_iterations;
static int g_forks;
static atomic_ullong g_checks;      // blocks verified
static atomic_int g_workers_running;
static atomic_int g_churn_threads;  // churn threads started
static atomic_int g_churn_live;     // detached churn threads still running

// ---------------------------------------------------------------- patterns

static inline uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static inline uint64_t key_of(const void *p, size_t size) {
    return mix((uint64_t)(uintptr_t)p ^ (size * 0x9E3779B97F4A7C15ULL) ^ g_seed);
}

static inline uint64_t word_at(uint64_t key, size_t i) { return key + i * 0x9E3779B97F4A7C15ULL; }

// The pattern's byte at offset `o` of a block of `n` bytes: whole words, then a byte tail.
static inline unsigned char expected_byte(uint64_t key, size_t n, size_t o) {
    size_t whole = n / 8 * 8;
    if (o < whole) return (unsigned char)(word_at(key, o / 8) >> (8 * (o % 8)));
    return (unsigned char)((key >> (8 * ((o - whole) % 8))) ^ 0x5a);
}

static void fail(const char *what, const void *p, size_t size, size_t offset, unsigned got, unsigned want) {
    fprintf(stderr, "stress: %s: block %p size %zu: byte %zu is 0x%02x, expected 0x%02x (seed %llu)\n",
            what, p, size, offset, got, want, (unsigned long long)g_seed);
    abort();
}

static void fail_msg(const char *what, const void *p, size_t size, size_t extra) {
    fprintf(stderr, "stress: %s: block %p size %zu (%zu) (seed %llu)\n", what, p, size, extra,
            (unsigned long long)g_seed);
    abort();
}

static void fill(void *p, size_t n, uint64_t key) {
    uint64_t *w = p;
    size_t words = n / 8;
    for (size_t i = 0; i < words; i++) w[i] = word_at(key, i);
    unsigned char *b = p;
    for (size_t o = words * 8; o < n; o++) b[o] = expected_byte(key, n, o);
}

// Verifies the first `m` bytes of a block that was filled as `n` bytes with `key`.
static void verify_prefix(const void *p, size_t m, size_t n, uint64_t key, const char *what) {
    const uint64_t *w = p;
    size_t words = m / 8;
    if (words * 8 > n / 8 * 8) words = n / 8;
    for (size_t i = 0; i < words; i++) {
        if (w[i] != word_at(key, i)) {
            const unsigned char *b = p;
            for (size_t o = i * 8; o < i * 8 + 8; o++)
                if (b[o] != expected_byte(key, n, o)) fail(what, p, n, o, b[o], expected_byte(key, n, o));
        }
    }
    const unsigned char *b = p;
    for (size_t o = words * 8; o < m; o++)
        if (b[o] != expected_byte(key, n, o)) fail(what, p, n, o, b[o], expected_byte(key, n, o));
}

// ---------------------------------------------------------------- blocks

typedef struct {
    void *p;
    size_t size;     // bytes requested
    size_t usable;   // malloc_usable_size at allocation
    uint64_t key;
} block_t;

static inline uint64_t next_random(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

// Mostly small; 1% up to 2 MiB (half of those above the 1 MiB largest block).
static size_t random_size(uint64_t *rng) {
    uint64_t r = next_random(rng) % 1000;
    uint64_t v = next_random(rng);
    if (r < 600) return 1 + v % 128;
    if (r < 850) return 1 + v % 2048;
    if (r < 960) return 1 + v % 32768;
    if (r < 990) return 1 + v % (512 * 1024);
    return 1 + v % (2 * 1024 * 1024);
}

// The slack checked byte by byte: up to SLACK_CHECKED bytes past the request, short of the
// last usable byte (which holds its own marker).
static size_t slack_end(const block_t *b) {
    if (b->usable <= b->size) return b->size;
    size_t end = b->size + SLACK_CHECKED;
    return end < b->usable - 1 ? end : b->usable - 1;
}

// Fills a fresh block (pattern, slack, the last usable byte) after checking what the allocator
// promised: non-NULL, aligned, usable size >= request.
static void adopt(block_t *b, void *p, size_t size, size_t alignment, const char *entry) {
    if (p == NULL) fail_msg(entry, p, size, alignment);
    if ((uintptr_t)p % alignment != 0) fail_msg("misaligned block", p, size, alignment);
    size_t usable = malloc_usable_size(p);
    if (usable < size) fail_msg("usable size below the request", p, size, usable);
    b->p = p;
    b->size = size;
    b->usable = usable;
    b->key = key_of(p, size);
    fill(p, size, b->key);
    unsigned char *c = p;
    for (size_t o = size; o < slack_end(b); o++) c[o] = (unsigned char)(0xa5 ^ o);
    if (usable > size) c[usable - 1] = 0xc3;
}

static void check(const block_t *b, const char *what) {
    verify_prefix(b->p, b->size, b->size, b->key, what);
    const unsigned char *c = b->p;
    for (size_t o = b->size; o < slack_end(b); o++)
        if (c[o] != (unsigned char)(0xa5 ^ o)) fail("slack overwritten", b->p, b->size, o, c[o], (unsigned char)(0xa5 ^ o));
    if (b->usable > b->size && c[b->usable - 1] != 0xc3)
        fail("last usable byte overwritten", b->p, b->size, b->usable - 1, c[b->usable - 1], 0xc3);
    if (malloc_usable_size(b->p) != b->usable) fail_msg("usable size changed", b->p, b->size, malloc_usable_size(b->p));
    atomic_fetch_add_explicit(&g_checks, 1, memory_order_relaxed);
}

static void release(block_t *b, const char *what) {
    check(b, what);
    free(b->p);
    b->p = NULL;
}

static void allocate(block_t *b, uint64_t *rng) {
    size_t size = random_size(rng);
    uint64_t entry = next_random(rng) % 100;
    void *p = NULL;
    if (entry < 50) {
        adopt(b, malloc(size), size, 16, "malloc returned NULL");
    } else if (entry < 65) {
        p = calloc(1, size);
        if (p == NULL) fail_msg("calloc returned NULL", p, size, 0);
        const unsigned char *c = p;
        for (size_t o = 0; o < size; o++)
            if (c[o] != 0) fail("calloc memory not zero", p, size, o, c[o], 0);
        adopt(b, p, size, 16, "calloc");
    } else if (entry < 75) {
        adopt(b, realloc(NULL, size), size, 16, "realloc(NULL) returned NULL");
    } else if (entry < 90) {
        // 8 .. 64 KiB, and now and then 2 MiB (beyond the largest block).
        size_t alignment = next_random(rng) % 50 == 0 ? (size_t)2 << 20 : (size_t)8 << (next_random(rng) % 14);
        int rc = posix_memalign(&p, alignment, size);
        if (rc != 0) fail_msg("posix_memalign failed", p, size, (size_t)rc);
        adopt(b, p, size, alignment, "posix_memalign");
    } else if (entry < 95) {
        size_t alignment = (size_t)16 << (next_random(rng) % 10);
        adopt(b, aligned_alloc(alignment, size), size, alignment, "aligned_alloc returned NULL");
    } else {
        size_t alignment = (size_t)32 << (next_random(rng) % 10);
        adopt(b, memalign(alignment, size), size, alignment, "memalign returned NULL");
    }
}

// One link of a realloc chain: grow or shrink (often by a little), keep the common prefix.
static void resize(block_t *b, uint64_t *rng) {
    size_t size;
    uint64_t r = next_random(rng) % 4;
    if (r == 0) size = random_size(rng);
    else if (r == 1) size = b->size + 1 + next_random(rng) % 64;
    else if (r == 2) size = b->size > 2 ? b->size - 1 - next_random(rng) % (b->size / 2) : b->size;
    else size = b->size * 2;
    if (size == 0) size = 1;
    if (size > 3 * 1024 * 1024) size = 1 + next_random(rng) % 4096;
    check(b, "before realloc");
    void *p = realloc(b->p, size);
    if (p == NULL) fail_msg("realloc returned NULL", b->p, size, 0);
    size_t kept = size < b->size ? size : b->size;
    verify_prefix(p, kept, b->size, b->key, "realloc lost the contents");
    adopt(b, p, size, 16, "realloc");
}

// ---------------------------------------------------------------- mailboxes and orphans

typedef struct message {
    block_t block;
    struct message *next;
} message_t;

typedef struct {
    pthread_mutex_t lock;
    message_t *head;
} mailbox_t;

static mailbox_t g_mailboxes[MAX_THREADS];
static mailbox_t g_orphans = {PTHREAD_MUTEX_INITIALIZER, NULL};

static void post(mailbox_t *box, const block_t *b) {
    message_t *m = malloc(sizeof *m);
    if (m == NULL) fail_msg("malloc(message) returned NULL", NULL, sizeof *m, 0);
    m->block = *b;
    pthread_mutex_lock(&box->lock);
    m->next = box->head;
    box->head = m;
    pthread_mutex_unlock(&box->lock);
}

// Verifies and frees up to `limit` posted blocks (all with limit < 0); returns how many.
static int drain(mailbox_t *box, int limit, const char *what) {
    pthread_mutex_lock(&box->lock);
    message_t *list = box->head;
    message_t *rest = list;
    int n = 0;
    if (limit < 0) {
        box->head = NULL;
        rest = NULL;
    } else {
        message_t **tail = &list;
        while (*tail != NULL && n < limit) { tail = &(*tail)->next; n++; }
        rest = *tail;
        *tail = NULL;
        box->head = rest;
    }
    pthread_mutex_unlock(&box->lock);
    n = 0;
    while (list != NULL) {
        message_t *next = list->next;
        release(&list->block, what);
        free(list);
        list = next;
        n++;
    }
    return n;
}

// ---------------------------------------------------------------- workers

typedef struct {
    int index;
    uint64_t rng;
    block_t slots[SLOTS];
} worker_t;

static void *worker(void *arg) {
    worker_t *w = arg;
    for (long i = 0; i < g_iterations; i++) {
        block_t *b = &w->slots[next_random(&w->rng) % SLOTS];
        uint64_t op = next_random(&w->rng) % 100;
        if (op < 40) {
            if (b->p) release(b, "before free (replace)");
            allocate(b, &w->rng);
        } else if (op < 58) {
            if (b->p) release(b, "before free");
        } else if (op < 74) {
            if (b->p) resize(b, &w->rng);
            else adopt(b, realloc(NULL, 48), 48, 16, "realloc(NULL) returned NULL");
        } else if (op < 86) {
            if (b->p && g_threads > 1) {
                int to = (int)(next_random(&w->rng) % (uint64_t)(g_threads - 1));
                if (to >= w->index) to++;
                check(b, "before posting");
                post(&g_mailboxes[to], b);
                b->p = NULL;
            }
        } else if (op < 92) {
            drain(&g_orphans, 4, "orphan (left by an exited thread)");
        } else {
            drain(&g_mailboxes[w->index], -1, "posted by another thread");
        }
        if ((i & 63) == 0) drain(&g_mailboxes[w->index], -1, "posted by another thread");
    }
    for (int s = 0; s < SLOTS; s++)
        if (w->slots[s].p) release(&w->slots[s], "at worker exit");
    drain(&g_mailboxes[w->index], -1, "posted by another thread");
    atomic_fetch_sub(&g_workers_running, 1);
    return NULL;
}

// ---------------------------------------------------------------- thread churn

// arg: (sequence number << 1) | detached.
static void *churn_thread(void *arg) {
    uintptr_t a = (uintptr_t)arg;
    int detached = (int)(a & 1);
    uint64_t rng = (uint64_t)(a >> 1) * 0x9E3779B97F4A7C15ULL + g_seed + 1;
    if (rng == 0) rng = 1;
    if (detached) pthread_detach(pthread_self());
    block_t blocks[40];
    int n = 1 + (int)(next_random(&rng) % 40);
    for (int i = 0; i < n; i++) allocate(&blocks[i], &rng);
    for (int i = 0; i < n; i++) {
        uint64_t r = next_random(&rng) % 3;
        if (r == 0) release(&blocks[i], "churn thread");
        else if (r == 1) post(&g_orphans, &blocks[i]);
        else post(&g_mailboxes[next_random(&rng) % (uint64_t)g_threads], &blocks[i]);
    }
    if (detached) atomic_fetch_sub(&g_churn_live, 1);
    return NULL;
}

// Starts short-lived threads two at a time (one joined, one detaching itself) while the workers
// run, at least 4 * THREADS of them.
static void *churner(void *arg) {
    (void)arg;
    uintptr_t count = 0;
    while (atomic_load(&g_workers_running) > 0 || count < (uintptr_t)(4 * g_threads)) {
        pthread_t joined, detached;
        count++;
        int rc = pthread_create(&joined, NULL, churn_thread, (void *)(count << 1));
        if (rc != 0) { fprintf(stderr, "stress: pthread_create (churn): %s\n", strerror(rc)); abort(); }
        count++;
        atomic_fetch_add(&g_churn_live, 1);
        rc = pthread_create(&detached, NULL, churn_thread, (void *)(count << 1 | 1));
        if (rc != 0) { fprintf(stderr, "stress: pthread_create (churn): %s\n", strerror(rc)); abort(); }
        atomic_fetch_add(&g_churn_threads, 2);
        pthread_join(joined, NULL);
        usleep(200);
        if (count > 100000) break;
    }
    return NULL;
}

// ---------------------------------------------------------------- fork

static void *child_thread(void *arg) {
    uint64_t rng = (uint64_t)(uintptr_t)arg | 1;
    block_t b[16];
    for (int i = 0; i < 16; i++) allocate(&b[i], &rng);
    for (int i = 0; i < 16; i++) release(&b[i], "child's thread");
    return NULL;
}

static void child_work(int round, block_t *inherited, int ninherited) {
    alarm(20); // a child stuck on a lock dies of SIGALRM and the parent counts it
    uint64_t rng = g_seed ^ (uint64_t)(round + 1) * 0x9E3779B97F4A7C15ULL;
    if (rng == 0) rng = 1;
    for (int i = 0; i < ninherited; i++) release(&inherited[i], "inherited by the child");
    block_t b[64];
    for (int i = 0; i < 64; i++) allocate(&b[i], &rng);
    for (int i = 0; i < 64; i += 2) resize(&b[i], &rng);
    for (int i = 0; i < 64; i++) release(&b[i], "child");
    if (round % 5 == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, child_thread, (void *)(uintptr_t)(rng | 1)) != 0) _exit(3);
        pthread_join(t, NULL);
    }
    // Most children leave with _exit; every tenth runs the exit handlers (and the library's
    // destructor) too.
    if (round % 10 == 0) exit(0);
    _exit(0);
}

static atomic_int g_fork_failures;

static void *forker(void *arg) {
    (void)arg;
    uint64_t rng = g_seed * 7 + 3;
    for (int round = 0; round < g_forks; round++) {
        block_t inherited[8];
        for (int i = 0; i < 8; i++) allocate(&inherited[i], &rng);
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) { perror("stress: fork"); abort(); }
        if (pid == 0) child_work(round, inherited, 8);
        for (int i = 0; i < 8; i++) release(&inherited[i], "forker after fork");
        int status = 0;
        while (waitpid(pid, &status, 0) < 0) {
            if (errno != EINTR) { perror("stress: waitpid"); abort(); }
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            if (WIFSIGNALED(status))
                fprintf(stderr, "stress: fork round %d: child %d killed by signal %d\n", round, (int)pid, WTERMSIG(status));
            else
                fprintf(stderr, "stress: fork round %d: child %d exited with %d\n", round, (int)pid, WEXITSTATUS(status));
            atomic_fetch_add(&g_fork_failures, 1);
        }
        usleep(1000 + (useconds_t)(next_random(&rng) % 4000));
    }
    return NULL;
}

// ---------------------------------------------------------------- main

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: stress THREADS ITERATIONS SEED [FORKS]\n");
        return 2;
    }
    g_threads = atoi(argv[1]);
    g_iterations = atol(argv[2]);
    g_seed = strtoull(argv[3], NULL, 10);
    g_forks = argc > 4 ? atoi(argv[4]) : 50;
    if (g_threads < 1 || g_threads > MAX_THREADS || g_iterations < 0) {
        fprintf(stderr, "stress: THREADS must be 1..%d\n", MAX_THREADS);
        return 2;
    }
    for (int i = 0; i < MAX_THREADS; i++) {
        pthread_mutex_init(&g_mailboxes[i].lock, NULL);
        g_mailboxes[i].head = NULL;
    }

    // While the process has one thread: blocks the workers will verify and free later.
    uint64_t rng = g_seed | 1;
    for (int i = 0; i < 64 * g_threads; i++) {
        block_t b;
        allocate(&b, &rng);
        post(&g_mailboxes[i % g_threads], &b);
    }

    static worker_t workers[MAX_THREADS];
    pthread_t threads[MAX_THREADS], churn, fork_thread;
    atomic_store(&g_workers_running, g_threads);
    for (int i = 0; i < g_threads; i++) {
        workers[i].index = i;
        workers[i].rng = mix(g_seed + (uint64_t)i + 1) | 1;
        int rc = pthread_create(&threads[i], NULL, worker, &workers[i]);
        if (rc != 0) { fprintf(stderr, "stress: pthread_create: %s\n", strerror(rc)); return 1; }
    }
    if (pthread_create(&churn, NULL, churner, NULL) != 0) return 1;
    if (pthread_create(&fork_thread, NULL, forker, NULL) != 0) return 1;

    for (int i = 0; i < g_threads; i++) pthread_join(threads[i], NULL);
    pthread_join(churn, NULL);
    pthread_join(fork_thread, NULL);
    // Detached churn threads may still be finishing.
    for (int spins = 0; atomic_load(&g_churn_live) > 0; spins++) {
        if (spins > 20000) { fprintf(stderr, "stress: churn threads did not finish\n"); return 1; }
        usleep(500);
    }

    // Everything left over, from the main thread.
    int leftovers = drain(&g_orphans, -1, "orphan at exit");
    for (int i = 0; i < g_threads; i++) leftovers += drain(&g_mailboxes[i], -1, "mailbox at exit");

    int forkFailures = atomic_load(&g_fork_failures);
    printf("stress: %s threads=%d iterations=%ld seed=%llu forks=%d fork-failures=%d churn-threads=%d "
           "checks=%llu leftovers=%d\n",
           forkFailures == 0 ? "ok" : "FAILED", g_threads, g_iterations, (unsigned long long)g_seed, g_forks,
           forkFailures, atomic_load(&g_churn_threads), (unsigned long long)atomic_load(&g_checks), leftovers);
    return forkFailures == 0 ? 0 : 1;
}
