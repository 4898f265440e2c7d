// free() twice of a 1000-byte block.
#include "misuse.h"
int main(void) {
    void *p = malloc(1000);
    free(p);
    free(launder(p));
    return 0;
}
