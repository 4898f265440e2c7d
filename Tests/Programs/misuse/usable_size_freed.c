// malloc_usable_size() of a freed 64-byte block.
#include "misuse.h"
int main(void) {
    void *p = malloc(64);
    free(p);
    printf("usable %zu\n", malloc_usable_size(launder(p)));
    return 0;
}
