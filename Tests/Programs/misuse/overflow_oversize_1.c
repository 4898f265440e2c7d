// One byte written just past a 16 MiB block's usable size.
#include "misuse.h"
int main(void) {
    unsigned char *p = malloc(16 << 20);
    launder(p)[malloc_usable_size(p)] ^= 1;
    free(p);
    return 0;
}
