// The 8 bytes before a 100-byte block overwritten, then the block freed and allocated again.
#include "misuse.h"
int main(void) {
    keep(malloc(100));
    unsigned char *p = malloc(100);
    memset(launder(p) - 8, 'A', 8);
    free(p);
    keep(malloc(100));
    return 0;
}
