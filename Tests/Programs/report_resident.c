// Resident memory explained (README, "Resident memory"): a program whose resident bytes are
// known. It writes 16 MiB into 4 KiB blocks (the program's), frees half of them (written, now
// free or cached), allocates a 4 MiB block it never writes, and writes 8 MiB of a 48 MiB
// block above the maximum block (oversize). Its exit report must put each where it belongs.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    enum { N = 4096 };
    static char *volatile blocks[N];
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(4096);
        if (!blocks[i]) return 1;
        memset(blocks[i], 1, 4096);
    }
    for (int i = 0; i < N; i += 2) free(blocks[i]);
    char *volatile untouched = malloc(4 << 20);
    char *volatile big = malloc(48 << 20);
    if (!untouched || !big) return 1;
    memset(big, 2, 8 << 20);
    printf("report_resident: ok\n");
    return 0;
}
