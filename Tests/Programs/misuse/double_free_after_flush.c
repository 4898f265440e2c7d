// 200 blocks of 48 bytes freed (the thread cache passes most of them back to the shared pool),
// then the first one freed again.
#include "misuse.h"
int main(void) {
    void *p[200];
    for (int i = 0; i < 200; i++) p[i] = malloc(48);
    for (int i = 0; i < 200; i++) free(p[i]);
    free(launder(p[0]));
    return 0;
}
