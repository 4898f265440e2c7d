// A freed 16 MiB block read.
#include "misuse.h"
int main(void) {
    unsigned char *p = malloc(16 << 20);
    memset(p, 7, 4096);
    free(p);
    printf("read %d\n", launder(p)[100]);
    return 0;
}
