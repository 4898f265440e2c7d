// The 8th byte past an 8-byte request's usable size changed, then the block freed.
#include "misuse.h"
int main(void) {
    unsigned char *p = malloc(8);
    size_t n = malloc_usable_size(p);
    launder(p)[n + 7] ^= 1;
    free(p);
    return 0;
}
