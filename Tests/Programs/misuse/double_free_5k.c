// free() twice of a 5000-byte block (a slab object in BuddyMalloc).
#include "misuse.h"
int main(void) {
    void *p = malloc(5000);
    free(p);
    free(launder(p));
    return 0;
}
