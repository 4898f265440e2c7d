// The only file that defines the libc allocator names: one line each, default visibility,
// forwarding to the Swift entry points. (Swift's own @_cdecl symbols are STV_PROTECTED, which
// makes ld.so warn for non-PIE hosts; these plain C definitions do not.) Only the shared
// library product links this target, so test binaries keep their own malloc.
#include "buddy_exports.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT void *malloc(size_t size) { return buddy_malloc(size); }
EXPORT void free(void *ptr) { buddy_free(ptr); }
EXPORT void *calloc(size_t count, size_t size) { return buddy_calloc(count, size); }
EXPORT void *realloc(void *ptr, size_t size) { return buddy_realloc(ptr, size); }
EXPORT void *reallocarray(void *ptr, size_t count, size_t size) { return buddy_reallocarray(ptr, count, size); }
EXPORT int posix_memalign(void **result, size_t alignment, size_t size) { return buddy_posix_memalign(result, alignment, size); }
EXPORT void *aligned_alloc(size_t alignment, size_t size) { return buddy_aligned_alloc(alignment, size); }
EXPORT void *memalign(size_t alignment, size_t size) { return buddy_memalign(alignment, size); }
EXPORT void *valloc(size_t size) { return buddy_valloc(size); }
EXPORT void *pvalloc(size_t size) { return buddy_pvalloc(size); }
EXPORT size_t malloc_usable_size(void *ptr) { return buddy_malloc_usable_size(ptr); }
EXPORT void free_sized(void *ptr, size_t size) { buddy_free_sized(ptr, size); }
EXPORT void free_aligned_sized(void *ptr, size_t alignment, size_t size) { buddy_free_aligned_sized(ptr, alignment, size); }

// The exit report (BUDDY_REPORT), after the program's own destructors have run.
__attribute__((destructor)) static void buddy_at_exit(void) { buddy_exit_report(); }
