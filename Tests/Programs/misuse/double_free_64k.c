// free() twice of a 64 KiB block (the smallest order whose bin holds one block: the second free finds it cached).
#include "misuse.h"
int main(void) {
    void *p = malloc(64 * 1024);
    free(p);
    free(launder(p));
    return 0;
}
