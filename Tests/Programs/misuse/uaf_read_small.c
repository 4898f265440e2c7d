// A freed 64-byte block read (no allocator can see a read of memory it keeps mapped).
#include "misuse.h"
int main(void) {
    unsigned char *p = malloc(64);
    memset(p, 7, 64);
    free(p);
    printf("read %d\n", launder(p)[32]);
    return 0;
}
