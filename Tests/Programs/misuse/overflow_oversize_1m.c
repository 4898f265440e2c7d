// A one-megabyte overflow past the end of a 12 MiB block.
#include "misuse.h"
int main(void) {
    unsigned char *p = malloc(12 << 20);
    memset(launder(p) + malloc_usable_size(p), 'A', 1 << 20);
    free(p);
    return 0;
}
