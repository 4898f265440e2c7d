// The profile (BUDDY_PROFILE_SAMPLE) on a thread's first call: a new thread's very first
// allocation is one block of 300,000 bytes, kept until exit (ReportTests). The thread has no
// cache yet, so the call takes malloc's slow path, which makes the cache. Build with
// -g -fno-omit-frame-pointer -rdynamic.
//
//   profile_first_call
//
// Prints "first call ok".
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *kept;

__attribute__((noinline)) void first_in_thread(void) {
    kept = malloc(300000);
    memset(kept, 1, 300000);
    __asm__ volatile("" ::: "memory");
}

static void *thread_main(void *arg) {
    (void)arg;
    first_in_thread();
    return NULL;
}

int main(void) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, thread_main, NULL) != 0) return 1;
    pthread_join(thread, NULL);
    printf("first call ok\n");
    return kept != NULL ? 0 : 1;
}
