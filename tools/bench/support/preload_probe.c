/* preload_probe: prints the file that the dynamic linker resolved `malloc`
 * (and friends) to, so bench.py can prove LD_PRELOAD is in effect.
 * Output lines:  <symbol> <path of the defining object>            */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    static const char *syms[] = {"malloc", "free", "calloc", "realloc",
                                 "posix_memalign", "aligned_alloc",
                                 "malloc_usable_size"};
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *f = dlsym(RTLD_DEFAULT, syms[i]);
        Dl_info di;
        if (f && dladdr(f, &di) && di.dli_fname)
            printf("%s %s\n", syms[i], di.dli_fname);
        else
            printf("%s -\n", syms[i]);
    }
    void *p = malloc(100);
    if (!p) return 2;
    free(p);
    return 0;
}
