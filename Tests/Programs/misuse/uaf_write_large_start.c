// A freed 64 KiB block (between live ones) written at its start, then that size allocated.
#include "misuse.h"
int main(void) {
    unsigned char *b[4];
    for (int i = 0; i < 4; i++) b[i] = malloc(64 * 1024);
    free(b[1]);
    memset(launder(b[1]), 'A', 16);
    keep(malloc(64 * 1024));
    return 0;
}
