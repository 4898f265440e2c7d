// 16 bytes written past a 64-byte block into its freed neighbour, then that size allocated.
#include "misuse.h"
int main(void) {
    unsigned char *low, *high;
    adjacent_pair(64, &low, &high);
    free(high);
    memset(launder(low) + malloc_usable_size(low), 'A', 16);
    keep(malloc(64));
    keep(malloc(64));
    return 0;
}
