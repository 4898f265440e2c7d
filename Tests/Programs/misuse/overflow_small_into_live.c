// 16 bytes written past a 64-byte block into its live neighbour; both freed, then allocated again.
#include "misuse.h"
int main(void) {
    unsigned char *low, *high;
    adjacent_pair(64, &low, &high);
    memset(launder(low) + malloc_usable_size(low), 'A', 16);
    free(high);
    free(low);
    keep(malloc(64));
    keep(malloc(64));
    return 0;
}
