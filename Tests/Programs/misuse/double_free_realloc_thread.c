// A thread reallocates a block (which moves it), then another thread frees the old pointer.
#include "misuse.h"
static void *old, *moved;
static void *grow(void *arg) { (void)arg; moved = realloc(old, 100000); return NULL; }
static void *stale_free(void *arg) { (void)arg; free(launder(old)); return NULL; }
int main(void) {
    old = malloc(40);
    memset(old, 1, 40);
    pthread_t t;
    pthread_create(&t, NULL, grow, NULL);
    pthread_join(t, NULL);
    if (moved == old) { free(moved); return 0; } // did not move: no mistake to make
    pthread_create(&t, NULL, stale_free, NULL);
    pthread_join(t, NULL);
    free(moved);
    return 0;
}
