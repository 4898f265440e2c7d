// The only file that defines the libc allocator names: one line each, default visibility,
// forwarding to the Swift entry points. (Swift's own @_cdecl symbols are STV_PROTECTED, which
// makes ld.so warn for non-PIE hosts; these plain C definitions do not.) Only the shared
// library product links this target, so test binaries keep their own malloc.
//
// Each forward is one jump (forward.h); malloc and free jump past their @_cdecl thunks. C++'s
// operator new and delete are in cxx_operators.c.
#include "buddy_exports.h"
#include "forward.h"

FORWARD_SWIFT(void *malloc(size_t size), SWIFT_MALLOC)
FORWARD_SWIFT(void free(void *ptr), SWIFT_FREE)
FORWARD(void *calloc(size_t count, size_t size), buddy_calloc)
FORWARD(void *realloc(void *ptr, size_t size), buddy_realloc)
FORWARD(void *reallocarray(void *ptr, size_t count, size_t size), buddy_reallocarray)
FORWARD(int posix_memalign(void **result, size_t alignment, size_t size), buddy_posix_memalign)
FORWARD(void *aligned_alloc(size_t alignment, size_t size), buddy_aligned_alloc)
FORWARD(void *memalign(size_t alignment, size_t size), buddy_memalign)
FORWARD(void *valloc(size_t size), buddy_valloc)
FORWARD(void *pvalloc(size_t size), buddy_pvalloc)
FORWARD(size_t malloc_usable_size(void *ptr), buddy_malloc_usable_size)
FORWARD(void free_sized(void *ptr, size_t size), buddy_free_sized)
FORWARD(void free_aligned_sized(void *ptr, size_t alignment, size_t size), buddy_free_aligned_sized)
// glibc's introspection, answered from the pool's statistics (introspection.c).
FORWARD(struct mallinfo2 mallinfo2(void), buddy_mallinfo2)
FORWARD(struct mallinfo mallinfo(void), buddy_mallinfo)
FORWARD(void malloc_stats(void), buddy_malloc_stats)
FORWARD(int malloc_info(int options, FILE *fp), buddy_malloc_info)
FORWARD(int malloc_trim(size_t pad), buddy_malloc_trim)

// The exit report (BUDDY_REPORT), after the program's own destructors have run.
__attribute__((destructor)) static void buddy_at_exit(void) { buddy_exit_checks(); buddy_exit_report(); }
