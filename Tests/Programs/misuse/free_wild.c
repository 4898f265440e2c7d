// free() of a pointer-sized value that was never a pointer (uninitialised memory).
#include "misuse.h"
int main(void) {
    free(launder((void *)(uintptr_t)0x4141414141410000ull));
    return 0;
}
