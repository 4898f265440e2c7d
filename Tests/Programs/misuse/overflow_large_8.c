// Eight bytes written just past a 256 KiB block's usable size, then the block freed and
// allocated again.
#include "misuse.h"
int main(void) {
    unsigned char *p = malloc(256 * 1024);
    memset(launder(p) + malloc_usable_size(p), 'A', 8);
    free(p);
    keep(malloc(256 * 1024));
    return 0;
}
