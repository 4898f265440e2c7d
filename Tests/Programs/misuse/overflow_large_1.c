// One byte written just past a 256 KiB block's usable size, then the block freed.
#include "misuse.h"
int main(void) {
    unsigned char *p = malloc(256 * 1024);
    launder(p)[malloc_usable_size(p)] ^= 1;
    free(p);
    return 0;
}
