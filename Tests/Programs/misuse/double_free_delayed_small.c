// A 64-byte block freed, other blocks allocated and freed, then the first freed again.
#include "misuse.h"
int main(void) {
    void *p = malloc(64);
    free(p);
    for (int i = 0; i < 10; i++) free(malloc(32 + 16 * i));
    void *keepers[4];
    for (int i = 0; i < 4; i++) keepers[i] = malloc(200);
    free(launder(p));
    for (int i = 0; i < 4; i++) free(keepers[i]);
    return 0;
}
