// free() of a stack buffer.
#include "misuse.h"
int main(void) {
    char buffer[256];
    memset(buffer, 0, sizeof buffer);
    free(launder(buffer + 32));
    return 0;
}
