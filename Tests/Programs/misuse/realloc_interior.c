// realloc() of a pointer 32 bytes inside a 256-byte block.
#include "misuse.h"
int main(void) {
    unsigned char *p = malloc(256);
    void *q = realloc(launder(p + 32), 512);
    keep(q);
    return 0;
}
