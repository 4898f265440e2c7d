// One repeating pattern of three allocation sizes, all kept until exit: the profile's per-site
// estimates must follow the sites' bytes (48 x N, 400 x N, 1000 x N), not give each site the same
// number of samples (a sampler whose countdown restarts at every sample locks onto the pattern).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 40000
static void *kept[3 * N];

__attribute__((noinline)) void *site_small(void) { return malloc(48); }
__attribute__((noinline)) void *site_medium(void) { return malloc(400); }
__attribute__((noinline)) void *site_large(void) { return malloc(1000); }

int main(void) {
    for (int i = 0; i < N; i++) {
        kept[3 * i] = site_small();
        kept[3 * i + 1] = site_medium();
        kept[3 * i + 2] = site_large();
        memset(kept[3 * i], 1, 48);
    }
    __asm__ volatile("" ::: "memory");
    printf("pattern ok\n");
    return 0;
}
