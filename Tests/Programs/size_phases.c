/* size_phases: a program that moves through sizes. Each phase allocates 24 MiB in blocks of one
 * size, writes them, and frees them all; the phases alternate between 512-byte and 64 KiB
 * blocks, which the process pool serves from segments of different size classes. The pool's
 * resident memory at exit (ReportTests) tells whether a later phase reused the segments an
 * earlier one emptied or mapped and touched new ones.
 *
 * usage: size_phases [phases=4]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PHASE_BYTES (24u << 20)

int main(int argc, char **argv)
{
    int phases = argc > 1 ? atoi(argv[1]) : 4;
    static void *blocks[PHASE_BYTES / 512];
    for (int phase = 0; phase < phases; phase++) {
        size_t size = phase % 2 ? 64u << 10 : 512u, n = PHASE_BYTES / size;
        for (size_t i = 0; i < n; i++) {
            blocks[i] = malloc(size);
            if (!blocks[i]) { perror("malloc"); return 1; }
            memset(blocks[i], phase + 1, size);
        }
        for (size_t i = 0; i < n; i++) free(blocks[i]);
    }
    puts("size_phases: ok");
    return 0;
}
