// free() of a global array.
#include "misuse.h"
static char table[4096];
int main(void) {
    table[0] = 1;
    free(launder(table + 64));
    return 0;
}
