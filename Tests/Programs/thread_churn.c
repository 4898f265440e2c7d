// thread_churn: many short-lived threads (run by tools/adversarial.sh and AdversarialTests).
//
//   thread_churn THREADS [CONCURRENT]
//
// Starts THREADS threads in all, at most CONCURRENT (default 16) alive at once, half joined and
// half detached. Each allocates 1 to 64 blocks of assorted sizes (from its very first call: a new
// thread's cache starts empty), fills them, frees some, leaves some in a shared mailbox for a later
// thread to check and free, and takes from the mailbox blocks that earlier threads (possibly gone)
// left there. The thread caches of exited threads must give their blocks back: the run ends with
// the main thread checking and freeing what is left.
//
// Exit 0 and "thread_churn: ok ..." when every block held its pattern; a broken block prints
// "thread_churn: FAIL" and aborts.
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAILBOX = 1024 };

static _Atomic(unsigned char *) mailbox[MAILBOX];
static atomic_long blocks_made, blocks_adopted;
static sem_t slots; // threads allowed to be alive

static void fail(const char *what, const void *p, size_t n, size_t at) {
    char line[200];
    int len = snprintf(line, sizeof line, "thread_churn: FAIL %s: block %p size %zu byte %zu\n", what, p, n, at);
    (void)!write(2, line, (size_t)len);
    abort();
}

static void fill(unsigned char *p, size_t n) {
    memcpy(p, &n, sizeof n);
    for (size_t i = sizeof n; i < n; i++) p[i] = (unsigned char)(((uintptr_t)p >> 3) ^ i);
}

static void check_and_free(unsigned char *p) {
    size_t n;
    memcpy(&n, p, sizeof n);
    if (n < sizeof n || n > malloc_usable_size(p)) fail("size header", p, n, 0);
    for (size_t i = sizeof n; i < n; i++)
        if (p[i] != (unsigned char)(((uintptr_t)p >> 3) ^ i)) fail("pattern", p, n, i);
    free(p);
}

static void *churn(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u + 17;
    int count = 1 + rand_r(&seed) % 64;
    unsigned char *mine[64];
    for (int i = 0; i < count; i++) {
        unsigned r = (unsigned)rand_r(&seed);
        size_t n = (r % 16 == 0) ? 8 + r % (96 * 1024) : 8 + r % 700;
        mine[i] = (r % 5 == 0) ? calloc(1, n) : malloc(n);
        if (!mine[i]) { fprintf(stderr, "thread_churn: FAIL malloc(%zu) = NULL, errno %d\n", n, errno); abort(); }
        fill(mine[i], n);
    }
    atomic_fetch_add(&blocks_made, count);
    for (int i = 0; i < count; i++) {
        unsigned r = (unsigned)rand_r(&seed);
        if (r % 3 == 0) {
            // Leave it for a later thread; check and free whatever was there.
            unsigned char *old = atomic_exchange(&mailbox[r / 3 % MAILBOX], mine[i]);
            if (old) { check_and_free(old); atomic_fetch_add(&blocks_adopted, 1); }
        } else {
            check_and_free(mine[i]);
        }
    }
    sem_post(&slots);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: thread_churn THREADS [CONCURRENT]\n");
        return 2;
    }
    long total = atol(argv[1]);
    int concurrent = argc > 2 ? atoi(argv[2]) : 16;
    if (total < 1 || concurrent < 1) return 2;
    sem_init(&slots, 0, (unsigned)concurrent);
    pthread_attr_t detached;
    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&detached, 64 * 1024);
    pthread_t pending[64];
    int npending = 0;
    for (long i = 0; i < total; i++) {
        while (sem_wait(&slots) != 0 && errno == EINTR) {}
        pthread_t t;
        int joined = i % 2 == 0;
        int rc = pthread_create(&t, joined ? NULL : &detached, churn, (void *)(uintptr_t)i);
        if (rc) {
            fprintf(stderr, "thread_churn: pthread_create %ld: %s\n", i, strerror(rc));
            return 1;
        }
        if (joined) {
            pending[npending++] = t;
            if (npending == 64) {
                for (int k = 0; k < npending; k++) pthread_join(pending[k], NULL);
                npending = 0;
            }
        }
    }
    for (int k = 0; k < npending; k++) pthread_join(pending[k], NULL);
    // Every thread has posted its slot once it is past its last allocation call.
    for (int i = 0; i < concurrent; i++) while (sem_wait(&slots) != 0 && errno == EINTR) {}
    long left = 0;
    for (int i = 0; i < MAILBOX; i++) {
        unsigned char *p = atomic_exchange(&mailbox[i], NULL);
        if (p) { check_and_free(p); left++; }
    }
    printf("thread_churn: ok threads=%ld blocks=%ld adopted=%ld left=%ld\n", total, atomic_load(&blocks_made),
           atomic_load(&blocks_adopted), left);
    return 0;
}
