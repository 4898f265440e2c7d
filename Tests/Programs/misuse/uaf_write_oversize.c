// A freed 16 MiB block written.
#include "misuse.h"
int main(void) {
    unsigned char *p = malloc(16 << 20);
    free(p);
    launder(p)[100] = 'A';
    return 0;
}
