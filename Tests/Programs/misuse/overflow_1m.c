// A one-megabyte overflow: 1 MiB written past the end of a 1 MiB block, then it is freed and
// the size allocated again.
#include "misuse.h"
int main(void) {
    unsigned char *p = malloc(1 << 20);
    memset(launder(p) + malloc_usable_size(p), 'A', 1 << 20);
    free(p);
    keep(malloc(1 << 20));
    return 0;
}
