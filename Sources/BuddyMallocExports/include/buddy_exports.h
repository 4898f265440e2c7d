// The project's own entry points, defined in Swift (BuddyMallocCore, @_cdecl). The libc names in
// override.c forward to them.
#ifndef BUDDY_EXPORTS_H
#define BUDDY_EXPORTS_H
#include <stddef.h>
void *buddy_malloc(size_t size);
void buddy_free(void *ptr);
void buddy_free_sized(void *ptr, size_t size);
void buddy_free_aligned_sized(void *ptr, size_t alignment, size_t size);
void *buddy_calloc(size_t count, size_t size);
void *buddy_realloc(void *ptr, size_t size);
void *buddy_reallocarray(void *ptr, size_t count, size_t size);
int buddy_posix_memalign(void **result, size_t alignment, size_t size);
void *buddy_aligned_alloc(size_t alignment, size_t size);
void *buddy_memalign(size_t alignment, size_t size);
void *buddy_valloc(size_t size);
void *buddy_pvalloc(size_t size);
size_t buddy_malloc_usable_size(void *ptr);
void buddy_exit_report(void);
void buddy_exit_checks(void);

// glibc's introspection (introspection.c; malloc_trim in CSemantics.swift).
#include <stdio.h>
#include <malloc.h>
struct mallinfo2 buddy_mallinfo2(void);
struct mallinfo buddy_mallinfo(void);
void buddy_malloc_stats(void);
int buddy_malloc_info(int options, FILE *fp);
int buddy_malloc_trim(size_t pad);

// Statistics and reports (buddy_stats.h is the public API; these are the hooks' entry points in
// ReportTriggers.swift).
#include "buddy_stats.h"
void buddy_report_prepare(void);
void buddy_report_on_signal(void);
void buddy_report_on_interval(_Bool interval);
#endif
