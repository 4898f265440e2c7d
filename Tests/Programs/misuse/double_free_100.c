// free() twice of a 100-byte block, with a live neighbour allocated in between.
#include "misuse.h"
int main(void) {
    void *p = malloc(100);
    keep(malloc(100));
    free(p);
    free(launder(p));
    return 0;
}
