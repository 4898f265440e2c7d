// Blocks of 33 KiB to 1 MiB (the cached orders above the medium table, LargeSizes) from two
// threads. Each thread first allocates and frees a block of each size 2,000 times (a buffer a
// thread reuses: its bin gives the block back, no pool lock), then keeps 6 blocks and replaces
// a random one with a block of a random size 2,000 times (a one-block bin serves part of
// those; the rest take the pool lock), writing first and last bytes and checking them before
// each free. Prints "large ok". Run by ConformanceTests (before those orders had bins, every
// malloc and every free of a block above 32 KiB took the pool lock).
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIVE 6
#define ROUNDS 2000
#define REUSES 2000

static const size_t sizes[] = {33 * 1024, 64 * 1024, 65 * 1024, 100 * 1024, 200 * 1024,
                               256 * 1024, 300 * 1024, 600 * 1024, 1024 * 1024};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static unsigned next_random(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static const char *check(unsigned char *p, size_t n, unsigned char mark) {
    return p[0] == mark && p[n - 1] == (unsigned char)~mark ? NULL : "a large block's bytes changed";
}

static void *worker(void *arg) {
    unsigned seed = (unsigned)(size_t)arg;
    for (size_t k = 0; k < NSIZES; k++)
        for (int r = 0; r < REUSES; r++) {
            unsigned char *p = malloc(sizes[k]);
            if (!p) return "malloc failed";
            p[0] = (unsigned char)r;
            p[sizes[k] - 1] = (unsigned char)~r;
            const char *bad = check(p, sizes[k], (unsigned char)r);
            if (bad) return (void *)bad;
            free(p);
        }
    unsigned char *b[LIVE];
    size_t n[LIVE];
    for (int i = 0; i < LIVE; i++) {
        n[i] = sizes[next_random(&seed) % NSIZES];
        if (!(b[i] = malloc(n[i]))) return "malloc failed";
        b[i][0] = (unsigned char)i;
        b[i][n[i] - 1] = (unsigned char)~i;
    }
    for (int r = 0; r < ROUNDS; r++) {
        int i = (int)(next_random(&seed) % LIVE);
        const char *bad = check(b[i], n[i], (unsigned char)i);
        if (bad) return (void *)bad;
        free(b[i]);
        n[i] = sizes[next_random(&seed) % NSIZES];
        if (!(b[i] = malloc(n[i]))) return "malloc failed";
        b[i][0] = (unsigned char)i;
        b[i][n[i] - 1] = (unsigned char)~i;
    }
    for (int i = 0; i < LIVE; i++) free(b[i]);
    return NULL;
}

int main(void) {
    pthread_t t[2];
    for (size_t k = 0; k < 2; k++)
        if (pthread_create(&t[k], NULL, worker, (void *)(k + 1))) return 2;
    int failed = 0;
    for (int k = 0; k < 2; k++) {
        void *why;
        pthread_join(t[k], &why);
        if (why) { fprintf(stderr, "large_churn: %s\n", (const char *)why); failed = 1; }
    }
    if (failed) return 1;
    puts("large ok");
    return 0;
}
