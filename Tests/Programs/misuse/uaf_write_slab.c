// A freed 5000-byte block's first 16 bytes written, then that size allocated again.
#include "misuse.h"
int main(void) {
    unsigned char *p = malloc(5000);
    free(p);
    memset(launder(p), 'A', 16);
    keep(malloc(5000));
    keep(malloc(5000));
    return 0;
}
