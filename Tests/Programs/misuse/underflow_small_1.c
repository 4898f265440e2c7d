// The byte just before a 64-byte block changed, then the block freed.
#include "misuse.h"
int main(void) {
    keep(malloc(64));
    unsigned char *p = malloc(64);
    launder(p)[-1] ^= 1;
    free(p);
    return 0;
}
