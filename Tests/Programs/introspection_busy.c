// glibc's introspection calls while another thread keeps the pool busy: every call must see the
// pool (glibc's own mallinfo2 waits for its arena lock and always reports its figures).
//
//   introspection_busy CALLS
//
// The main thread holds a 1 MiB block (the pool's, below the largest block) and calls mallinfo2
// CALLS times while a second thread allocates and frees 100 KB blocks (each takes the pool lock).
// A call that did not see the pool reports less than the held megabyte in use. Prints
// "introspection_busy: ok" or the number of blind calls, and exits 1 then.
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile int stop;

static void *churn(void *arg) {
    (void)arg;
    while (!stop) {
        void *volatile p = malloc(100000);
        memset(p, 1, 64);
        free(p);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int calls = argc > 1 ? atoi(argv[1]) : 1000;
    char *held = malloc(1 << 20);
    memset(held, 1, 1 << 20);
    pthread_t thread;
    pthread_create(&thread, NULL, churn, NULL);
    int blind = 0;
    for (int i = 0; i < calls; i++) {
        struct mallinfo2 m = mallinfo2();
        if (m.uordblks < (1u << 20)) blind++;
    }
    stop = 1;
    pthread_join(thread, NULL);
    free(held);
    if (blind != 0) {
        printf("introspection_busy: %d of %d mallinfo2 calls did not see the pool\n", blind, calls);
        return 1;
    }
    printf("introspection_busy: ok\n");
    return 0;
}
