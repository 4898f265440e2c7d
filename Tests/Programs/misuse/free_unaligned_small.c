// free() of a pointer one byte inside a 64-byte block.
#include "misuse.h"
int main(void) {
    unsigned char *p = malloc(64);
    free(launder(p + 1));
    return 0;
}
