// One byte written just past a 5000-byte request's usable size, then the block freed.
#include "misuse.h"
int main(void) {
    unsigned char *p = malloc(5000);
    launder(p)[malloc_usable_size(p)] ^= 1;
    free(p);
    return 0;
}
