// free() of a pointer 8 bytes inside a 1 MiB block.
#include "misuse.h"
int main(void) {
    unsigned char *p = malloc(1 << 20);
    free(launder(p + 8));
    return 0;
}
