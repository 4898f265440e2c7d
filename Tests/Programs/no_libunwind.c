// A preload that hides libunwind: dlopen of any "libunwind" file fails, everything else goes to
// the loader's dlopen. Preloaded before the library (ReportTests), it makes the library take
// glibc's backtrace(), as on a machine without libunwind. Build with -shared -fPIC.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <string.h>

void *dlopen(const char *file, int mode) {
    static void *(*loader_dlopen)(const char *, int);
    if (file != NULL && strstr(file, "libunwind") != NULL) return NULL;
    if (loader_dlopen == NULL) loader_dlopen = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
    return loader_dlopen(file, mode);
}
