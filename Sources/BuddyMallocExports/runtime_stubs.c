// The static Swift runtime's CommandLine.cpp fills `CommandLine.arguments` for programs written
// in Swift: its constructor reads /proc/self/maps in every process the library is loaded into,
// to find the stack's argv. The library never reads CommandLine, so it defines the object's two
// entry points itself, and the linker leaves the object (and its constructor) out: one open and
// four reads of /proc/self/maps fewer per process, which the kernel builds anew each time.
// (Neither is exported: exports.map names the libc names only.)

char **_swift_stdlib_getUnsafeArgvArgc(int *outArgLen);
void _swift_stdlib_overrideUnsafeArgvArgc(char **argv, int argc);

char **_swift_stdlib_getUnsafeArgvArgc(int *outArgLen) {
    static char *empty[1] = {0};
    *outArgLen = 0;
    return empty;
}

void _swift_stdlib_overrideUnsafeArgvArgc(char **argv, int argc) {
    (void)argv;
    (void)argc;
}

// libstdc++'s eh_alloc.o (linked in statically with the runtime's C++, see Package.swift) has a
// constructor that mallocs its 73 KB emergency exception pool in every process the library is
// loaded into: a block above 32 KiB, whose size class opens a second segment at start-up (its
// mapping, its order map and a page for each split down to the block). Nothing in the library
// throws a C++ exception that anything catches (the runtime is built without exceptions, so a
// throw through it ends the process), so the library defines eh_alloc.o's entry points itself
// and the linker leaves the object out. A throw that would have needed one ends the process
// here, with a message, instead of in std::terminate. (None is exported: a C++ program's own
// exceptions use its libstdc++.so.)
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

void *__cxa_allocate_exception(size_t size);
void __cxa_free_exception(void *exception);
void *__cxa_allocate_dependent_exception(void);
void __cxa_free_dependent_exception(void *exception);

__attribute__((noreturn, cold)) static void no_exceptions(void) {
    static const char message[] = "buddy: a C++ exception was thrown inside the allocator library (the Swift "
                                  "runtime's C++); it cannot be caught there; aborting\n";
    (void)!write(2, message, sizeof message - 1);
    abort();
}

void *__cxa_allocate_exception(size_t size) { (void)size; no_exceptions(); }
void __cxa_free_exception(void *exception) { (void)exception; no_exceptions(); }
void *__cxa_allocate_dependent_exception(void) { no_exceptions(); }
void __cxa_free_dependent_exception(void *exception) { (void)exception; no_exceptions(); }
