// A freed 64-byte block that went back to the shared pool (its thread exited) written, then
// that size allocated again.
#include "misuse.h"
static void *block;
static void *worker(void *arg) { (void)arg; block = malloc(64); free(block); return NULL; }
int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    pthread_join(t, NULL);
    memset(launder(block), 'A', 16);
    for (int i = 0; i < 4; i++) keep(malloc(64));
    return 0;
}
