// C++'s replaceable allocation functions (operator new and delete in all their forms), defined
// by the library as mimalloc, tcmalloc and jemalloc define them. Without them a C++ program's
// `new` goes to libstdc++'s operator new, which calls malloc through the PLT, and its `delete`
// through libstdc++'s operator delete to free's PLT entry: two to three extra jumps (one of them
// indirect) on every call, about 3.6% of the samples of peer-bench's alloc-test1.
//
// A program's own operator new or delete still wins: the executable comes before the preloaded
// library in the dynamic linker's search order, and a definition in the program is not
// interposed.
//
// The C++ rules, without C++ in the library (docs/swift-inside-malloc.md):
// - operator delete of any form is free: one jump (forward.h). Sizes and alignments are hints a
//   block's tag already answers.
// - operator new returns the pool's block. When the pool has none (out of memory, or a
//   std::align_val_t that is not a power of two), the call goes on to the next definition of the
//   same operator (libstdc++'s, found with dlsym(RTLD_NEXT)): it calls malloc (this library's)
//   again, runs the program's new_handler between tries, and throws std::bad_alloc, or returns
//   nullptr for the nothrow forms. That is the standard's loop exactly, from the library that
//   owns std::bad_alloc, and it is only reached when the first try failed.
// - Each operator new keeps a stack frame around its call (the null test after the call is not
//   a tail call), in the section buddy_cxx_new: the allocation-site profile's backtrace skips the
//   library's own frames but keeps this one (the section is registered at load:
//   buddy_backtrace_keep_frames), so a site still reads "via operator new", as it did when
//   libstdc++'s operator new was the caller.
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include "buddy_exports.h"
#include "buddy_report_support.h"
#include "forward.h"

extern void *buddy_swift_malloc(size_t size) __asm__(SWIFT_MALLOC);

/// The next definition of the operator `name` (libstdc++'s); the process ends with a message
/// when there is none (a program calling operator new links libstdc++, so there always is).
__attribute__((cold, noinline)) static void *next_operator(const char *name) {
    void *next = dlsym(RTLD_NEXT, name);
    if (next == NULL) {
        static const char message[] = "buddy: operator new: no memory for the request, and no later operator new "
                                      "(libstdc++'s) to run the new_handler and throw std::bad_alloc; aborting\n";
        (void)!write(2, message, sizeof message - 1);
        abort();
    }
    return next;
}

typedef void *(*new_fn)(size_t);
typedef void *(*new_nothrow_fn)(size_t, const void *);
typedef void *(*new_aligned_fn)(size_t, size_t);
typedef void *(*new_aligned_nothrow_fn)(size_t, size_t, const void *);

__attribute__((cold, noinline)) static void *retry_new(const char *name, size_t size) {
    return ((new_fn)next_operator(name))(size);
}

__attribute__((cold, noinline)) static void *retry_new_nothrow(const char *name, size_t size, const void *tag) {
    return ((new_nothrow_fn)next_operator(name))(size, tag);
}

__attribute__((cold, noinline)) static void *retry_new_aligned(const char *name, size_t size, size_t alignment) {
    return ((new_aligned_fn)next_operator(name))(size, alignment);
}

__attribute__((cold, noinline)) static void *retry_new_aligned_nothrow(const char *name, size_t size, size_t alignment,
                                                                       const void *tag) {
    return ((new_aligned_nothrow_fn)next_operator(name))(size, alignment, tag);
}

#define CXX_NEW __attribute__((visibility("default"), noinline, section("buddy_cxx_new")))

// The section's bounds, which the linker defines.
extern const char __start_buddy_cxx_new[], __stop_buddy_cxx_new[];

// Before any other constructor (a C++ program's static initializers allocate through these
// operators too).
__attribute__((constructor(101))) static void keep_operator_frames(void) {
    buddy_backtrace_keep_frames(__start_buddy_cxx_new, __stop_buddy_cxx_new);
}

// operator new(size_t), operator new[](size_t)
CXX_NEW void *_Znwm(size_t size) {
    void *p = buddy_swift_malloc(size);
    if (__builtin_expect(p != NULL, 1)) return p;
    return retry_new("_Znwm", size);
}
CXX_NEW void *_Znam(size_t size) {
    void *p = buddy_swift_malloc(size);
    if (__builtin_expect(p != NULL, 1)) return p;
    return retry_new("_Znam", size);
}

// operator new(size_t, const std::nothrow_t &), and new[]
CXX_NEW void *_ZnwmRKSt9nothrow_t(size_t size, const void *tag) {
    void *p = buddy_swift_malloc(size);
    if (__builtin_expect(p != NULL, 1)) return p;
    return retry_new_nothrow("_ZnwmRKSt9nothrow_t", size, tag);
}
CXX_NEW void *_ZnamRKSt9nothrow_t(size_t size, const void *tag) {
    void *p = buddy_swift_malloc(size);
    if (__builtin_expect(p != NULL, 1)) return p;
    return retry_new_nothrow("_ZnamRKSt9nothrow_t", size, tag);
}

// operator new(size_t, std::align_val_t) (C++17), and new[]: aligned_alloc, as libstdc++'s.
CXX_NEW void *_ZnwmSt11align_val_t(size_t size, size_t alignment) {
    void *p = buddy_aligned_alloc(alignment, size);
    if (__builtin_expect(p != NULL, 1)) return p;
    return retry_new_aligned("_ZnwmSt11align_val_t", size, alignment);
}
CXX_NEW void *_ZnamSt11align_val_t(size_t size, size_t alignment) {
    void *p = buddy_aligned_alloc(alignment, size);
    if (__builtin_expect(p != NULL, 1)) return p;
    return retry_new_aligned("_ZnamSt11align_val_t", size, alignment);
}
CXX_NEW void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t size, size_t alignment, const void *tag) {
    void *p = buddy_aligned_alloc(alignment, size);
    if (__builtin_expect(p != NULL, 1)) return p;
    return retry_new_aligned_nothrow("_ZnwmSt11align_val_tRKSt9nothrow_t", size, alignment, tag);
}
CXX_NEW void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t size, size_t alignment, const void *tag) {
    void *p = buddy_aligned_alloc(alignment, size);
    if (__builtin_expect(p != NULL, 1)) return p;
    return retry_new_aligned_nothrow("_ZnamSt11align_val_tRKSt9nothrow_t", size, alignment, tag);
}

// operator delete in every form: (void *), sized (C++14), aligned (C++17), nothrow, and delete[].
FORWARD_SWIFT(void _ZdlPv(void *p), SWIFT_FREE)
FORWARD_SWIFT(void _ZdaPv(void *p), SWIFT_FREE)
FORWARD_SWIFT(void _ZdlPvm(void *p, size_t size), SWIFT_FREE)
FORWARD_SWIFT(void _ZdaPvm(void *p, size_t size), SWIFT_FREE)
FORWARD_SWIFT(void _ZdlPvRKSt9nothrow_t(void *p, const void *tag), SWIFT_FREE)
FORWARD_SWIFT(void _ZdaPvRKSt9nothrow_t(void *p, const void *tag), SWIFT_FREE)
FORWARD_SWIFT(void _ZdlPvSt11align_val_t(void *p, size_t alignment), SWIFT_FREE)
FORWARD_SWIFT(void _ZdaPvSt11align_val_t(void *p, size_t alignment), SWIFT_FREE)
FORWARD_SWIFT(void _ZdlPvmSt11align_val_t(void *p, size_t size, size_t alignment), SWIFT_FREE)
FORWARD_SWIFT(void _ZdaPvmSt11align_val_t(void *p, size_t size, size_t alignment), SWIFT_FREE)
FORWARD_SWIFT(void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t alignment, const void *tag), SWIFT_FREE)
FORWARD_SWIFT(void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t alignment, const void *tag), SWIFT_FREE)
