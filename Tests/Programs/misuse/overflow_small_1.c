// One byte written just past a 24-byte request's usable size, then the block freed and its
// size allocated again.
#include "misuse.h"
int main(void) {
    unsigned char *p = malloc(24);
    size_t n = malloc_usable_size(p);
    launder(p)[n] ^= 1;
    free(p);
    keep(malloc(24));
    keep(malloc(24));
    return 0;
}
