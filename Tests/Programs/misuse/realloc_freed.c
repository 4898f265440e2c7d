// realloc() of a freed 64-byte block.
#include "misuse.h"
int main(void) {
    void *p = malloc(64);
    free(p);
    void *q = realloc(launder(p), 128);
    keep(q);
    return 0;
}
