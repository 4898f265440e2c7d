// free() of a pointer a page inside a 16 MiB block.
#include "misuse.h"
int main(void) {
    unsigned char *p = malloc(16 << 20);
    free(launder(p + 4096));
    return 0;
}
