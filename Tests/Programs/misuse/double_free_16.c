// free() twice of a 16-byte block (a thread-cache size).
#include "misuse.h"
int main(void) {
    void *p = malloc(16);
    free(p);
    free(launder(p));
    return 0;
}
