// A 1 MiB block freed, other large blocks allocated, then the first freed again.
#include "misuse.h"
int main(void) {
    void *p = malloc(1 << 20);
    free(p);
    void *a = malloc(300 * 1024), *b = malloc(2 << 20);
    keep(a); keep(b);
    free(launder(p));
    return 0;
}
