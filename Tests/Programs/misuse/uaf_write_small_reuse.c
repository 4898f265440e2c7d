// A freed 64-byte block's first 16 bytes written, then that size allocated again.
#include "misuse.h"
int main(void) {
    unsigned char *p = malloc(64);
    free(p);
    memset(launder(p), 'A', 16);
    keep(malloc(64));
    keep(malloc(64));
    return 0;
}
