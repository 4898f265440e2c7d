// strcpy of a 40-character string into a 32-byte block, then the block freed.
#include "misuse.h"
int main(void) {
    char *p = malloc(32);
    char *q = malloc(32);
    keep(q);
    strcpy((char *)launder(p), "0123456789012345678901234567890123456789");
    free(p);
    free(q);
    keep(malloc(32));
    keep(malloc(32));
    return 0;
}
