// 16 bytes written past a 64-byte block into its live neighbour; both freed, then allocated again.
#include "misuse.h"
int main(void) {
    unsigned char *p = malloc(64);
    unsigned char *q = malloc(64);
    unsigned char *low = p < q ? p : q, *high = p < q ? q : p;
    memset(launder(low) + malloc_usable_size(low), 'A', 16);
    free(high);
    free(low);
    keep(malloc(64));
    keep(malloc(64));
    return 0;
}
