// The library loaded late with dlopen, used from threads, then dlclosed while a thread that
// used it is still alive (and, with BUDDY_REPORT_INTERVAL, while its interval thread runs).
//
//   late_dlopen LIBRARY
//
// The thread's cache has a destructor in the library, and the interval thread runs the
// library's code: if dlclose unmapped the library, both would jump into unmapped memory when
// the thread exits or the interval thread ticks. The library is linked -z nodelete, so dlclose
// keeps it. Exit 0 and "late_dlopen: ok" on success.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);
static malloc_fn pool_malloc;
static free_fn pool_free;
static sem_t used, closed;

static void *user(void *arg) {
    (void)arg;
    void *blocks[100];
    for (int i = 0; i < 100; i++) { blocks[i] = pool_malloc(16 + (size_t)i * 40); memset(blocks[i], 1, 16); }
    for (int i = 0; i < 50; i++) pool_free(blocks[i]); // the rest stay live in the pool
    sem_post(&used);
    sem_wait(&closed);
    return NULL; // the thread's cache destructor runs now, after dlclose
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: late_dlopen LIBRARY\n"); return 2; }
    void *handle = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 2; }
    pool_malloc = (malloc_fn)dlsym(handle, "malloc");
    pool_free = (free_fn)dlsym(handle, "free");
    if (pool_malloc == NULL || pool_free == NULL) { fprintf(stderr, "dlsym failed\n"); return 2; }
    sem_init(&used, 0, 0);
    sem_init(&closed, 0, 0);
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) pthread_create(&threads[i], NULL, user, NULL);
    for (int i = 0; i < 4; i++) sem_wait(&used);
    if (dlclose(handle) != 0) { fprintf(stderr, "dlclose: %s\n", dlerror()); return 2; }
    for (int i = 0; i < 4; i++) sem_post(&closed);
    for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
    usleep(300 * 1000); // three interval ticks of BUDDY_REPORT_INTERVAL=0.1
    printf("late_dlopen: ok\n");
    return 0;
}
