// free() twice of a 16 MiB block (a mapping of its own in both).
#include "misuse.h"
int main(void) {
    void *p = malloc(16 << 20);
    free(p);
    free(launder(p));
    return 0;
}
