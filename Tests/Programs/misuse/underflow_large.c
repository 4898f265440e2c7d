// The word before a 1 MiB block overwritten, then the block freed.
#include "misuse.h"
int main(void) {
    unsigned char *p = malloc(1 << 20);
    memset(launder(p) - 8, 'A', 8);
    free(p);
    return 0;
}
