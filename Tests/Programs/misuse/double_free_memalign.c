// free() twice of a 64-byte-aligned block from memalign.
#include "misuse.h"
int main(void) {
    void *p = memalign(64, 200);
    free(p);
    free(launder(p));
    return 0;
}
