// Exception objects for the C++ code linked into the library (the static Swift runtime's, and
// libstdc++'s own, which throw only on fatal errors: a std::string past its limit, a failed
// lock). libstdc++'s eh_alloc.o defines these four functions, and its static constructor mallocs
// a 73 KB emergency pool for exceptions thrown when malloc fails: in every process the library
// is loaded into, at start-up, a block of the large class, which maps a second segment with its
// order map (README, "Limits": two mmaps and 14 to 17 page faults of every process's start-up).
// Defined here, the linker leaves eh_alloc.o out, as runtime_stubs.c does for CommandLine.cpp.
// Neither is exported (exports.map names the libc names only): a C++ program keeps its own
// libstdc++'s, pool included.
//
// What the C++ runtime expects (libsupc++'s eh_alloc.cc, unwind-cxx.h): an exception object is
// preceded by its __cxa_refcounted_exception header, zeroed, which __cxa_throw and the
// personality routine find at `object - sizeof(header)`; a dependent exception (a rethrown
// exception_ptr) is a zeroed __cxa_dependent_exception. The header's size on LP64 targets must be
// exact: Tests/Programs/cxx_exceptions.cpp compiles this file into a C++ program and checks it
// against the system's libstdc++ (__cxa_init_primary_exception returns the header it computes).
// A dependent exception needs at least its size (112 bytes by unwind-cxx.h's layout; the test's
// 20,000 rethrows ran clean under valgrind with exactly 112): it gets the same 128.
// Without the emergency pool, an exception thrown while malloc fails terminates the process,
// which is what such a throw inside the allocator would come to anyway.
#include <stdlib.h>
#include <string.h>

#if __SIZEOF_POINTER__ != 8
#error "the header sizes below are those of LP64 targets"
#endif

#define BUDDY_CXA_REFCOUNTED_HEADER 128
#define BUDDY_CXA_DEPENDENT_EXCEPTION 128

// (The test compiles this file as C++, where the ABI declares these functions noexcept.)
#ifdef __cplusplus
#define BUDDY_CXA_NOTHROW noexcept
#else
#define BUDDY_CXA_NOTHROW
#endif

void *__cxa_allocate_exception(size_t thrown_size) BUDDY_CXA_NOTHROW;
void __cxa_free_exception(void *object) BUDDY_CXA_NOTHROW;
void *__cxa_allocate_dependent_exception(void) BUDDY_CXA_NOTHROW;
void __cxa_free_dependent_exception(void *exception) BUDDY_CXA_NOTHROW;

void *__cxa_allocate_exception(size_t thrown_size) BUDDY_CXA_NOTHROW {
    char *header = (char *)malloc(thrown_size + BUDDY_CXA_REFCOUNTED_HEADER);
    if (header == NULL) abort();
    memset(header, 0, BUDDY_CXA_REFCOUNTED_HEADER);
    return header + BUDDY_CXA_REFCOUNTED_HEADER;
}

void __cxa_free_exception(void *object) BUDDY_CXA_NOTHROW {
    free((char *)object - BUDDY_CXA_REFCOUNTED_HEADER);
}

void *__cxa_allocate_dependent_exception(void) BUDDY_CXA_NOTHROW {
    void *exception = calloc(1, BUDDY_CXA_DEPENDENT_EXCEPTION);
    if (exception == NULL) abort();
    return exception;
}

void __cxa_free_dependent_exception(void *exception) BUDDY_CXA_NOTHROW {
    free(exception);
}
