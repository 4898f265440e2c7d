// free() of a pointer 16 bytes inside a 64-byte block.
#include "misuse.h"
int main(void) {
    unsigned char *p = malloc(64);
    free(launder(p + 16));
    return 0;
}
