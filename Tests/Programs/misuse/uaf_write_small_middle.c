// One byte in the middle of a freed 128-byte block changed, then that size allocated again.
#include "misuse.h"
int main(void) {
    unsigned char *p = malloc(128);
    free(p);
    launder(p)[64] ^= 1;
    keep(malloc(128));
    keep(malloc(128));
    return 0;
}
