// realloc without the pool lock, from two threads. Each thread grows and shrinks its own blocks
// between sizes of one code (97..128 B: the 128-byte order; 1,153..1,280 B: one slab class),
// checking that every byte it wrote is still there and that the block did not move; then moves
// objects between slab classes (40, 90, 300, 600, 1,200 and 2,500 bytes: classes of 48, 96, 320,
// 640, 1,280 and 2,560), checking their bytes; then moves each block out of the bins once (a
// 2 MiB realloc, above the largest cached block). Prints "inplace ok". Run by ConformanceTests
// (the pool lock stays untaken by the in-place calls and the moves between classes).
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCKS 16
#define ROUNDS 50000

static void *worker(void *arg) {
    unsigned seed = (unsigned)(size_t)arg;
    unsigned char fill = (unsigned char)(size_t)arg; // block i holds fill + i
    size_t low[2] = {97, 1153}, span[2] = {32, 128};
    for (int kind = 0; kind < 2; kind++) {
        unsigned char *b[BLOCKS];
        size_t n[BLOCKS];
        for (int i = 0; i < BLOCKS; i++) {
            n[i] = low[kind];
            b[i] = malloc(n[i]);
            if (!b[i]) return "malloc failed";
            memset(b[i], (int)(fill + i), n[i]);
        }
        for (int r = 0; r < ROUNDS; r++) {
            int i = r % BLOCKS;
            size_t next = low[kind] + (size_t)rand_r(&seed) % span[kind];
            unsigned char *q = realloc(b[i], next);
            if (q != b[i]) return "a realloc within the block's code moved it";
            size_t kept = next < n[i] ? next : n[i];
            for (size_t k = 0; k < kept; k++)
                if (q[k] != (unsigned char)(fill + i)) return "a byte changed across an in-place realloc";
            memset(q, (int)(fill + i), next);
            n[i] = next;
        }
        for (int i = 0; i < BLOCKS; i++) {
            unsigned char *q = realloc(b[i], 2 << 20);
            if (!q) return "the moving realloc failed";
            for (size_t k = 0; k < n[i]; k++)
                if (q[k] != (unsigned char)(fill + i)) return "a byte changed across a moving realloc";
            free(q);
        }
    }
    static const size_t classes[] = {40, 90, 300, 600, 1200, 2500};
    unsigned char *b[BLOCKS];
    size_t n[BLOCKS];
    for (int i = 0; i < BLOCKS; i++) {
        n[i] = classes[i % 6];
        b[i] = malloc(n[i]);
        if (!b[i]) return "malloc failed";
        memset(b[i], (int)(fill + i), n[i]);
    }
    for (int r = 0; r < ROUNDS; r++) {
        int i = r % BLOCKS;
        size_t next = classes[(size_t)rand_r(&seed) % 6];
        unsigned char *q = realloc(b[i], next);
        if (!q) return "a realloc between classes failed";
        size_t kept = next < n[i] ? next : n[i];
        for (size_t k = 0; k < kept; k++)
            if (q[k] != (unsigned char)(fill + i)) return "a byte changed across a realloc between classes";
        memset(q, (int)(fill + i), next);
        b[i] = q;
        n[i] = next;
    }
    for (int i = 0; i < BLOCKS; i++) free(b[i]);
    return NULL;
}

int main(void) {
    pthread_t t[2];
    for (size_t i = 0; i < 2; i++) pthread_create(&t[i], NULL, worker, (void *)(i * 64 + 1));
    for (int i = 0; i < 2; i++) {
        void *failure;
        pthread_join(t[i], &failure);
        if (failure) {
            printf("FAIL: %s\n", (const char *)failure);
            return 1;
        }
    }
    printf("inplace ok\n");
    return 0;
}
