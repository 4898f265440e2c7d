// free() twice of a 64 KiB block (above the thread caches' sizes).
#include "misuse.h"
int main(void) {
    void *p = malloc(64 * 1024);
    free(p);
    free(launder(p));
    return 0;
}
