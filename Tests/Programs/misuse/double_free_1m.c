// free() twice of a 1 MiB block (a pool block in BuddyMalloc, a mapping in glibc).
#include "misuse.h"
int main(void) {
    void *p = malloc(1 << 20);
    free(p);
    free(launder(p));
    return 0;
}
