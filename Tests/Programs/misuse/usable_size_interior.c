// malloc_usable_size() of a pointer inside a 256-byte block.
#include "misuse.h"
int main(void) {
    unsigned char *p = malloc(256);
    printf("usable %zu\n", malloc_usable_size(launder(p + 48)));
    free(p);
    return 0;
}
