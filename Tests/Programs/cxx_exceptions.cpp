// The library's exception-object allocation (Sources/BuddyMallocExports/cxx_exceptions.c),
// compiled into this program: its definitions take the place of libstdc++'s for the program's
// throws, as they do for the C++ code linked into the library. Checks the header sizes it
// assumes against this system's libstdc++, then throws, catches, rethrows and nests exceptions
// through them (a header of the wrong size would write outside the block: glibc's malloc and
// the library both abort on that). Prints "exceptions: ok" and exits 0.
#include <cxxabi.h>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <typeinfo>

extern "C" {
#include "../../Sources/BuddyMallocExports/cxx_exceptions.c"
}

static int fail(const char *what) {
    std::printf("FAIL: %s\n", what);
    return 1;
}

int main() {
    // The header: libstdc++ finds it at object - sizeof(__cxa_refcounted_exception).
    void *object = __cxa_allocate_exception(sizeof(int));
    void *header = __cxxabiv1::__cxa_init_primary_exception(object, const_cast<std::type_info *>(&typeid(int)), nullptr);
    long offset = (char *)object - (char *)header;
    std::printf("header=%ld\n", offset);
    if (offset != BUDDY_CXA_REFCOUNTED_HEADER) return fail("sizeof(__cxa_refcounted_exception) differs");
    __cxa_free_exception(object);

    long caught = 0, rethrown = 0, nested = 0;
    for (int i = 0; i < 20000; i++) {
        try {
            throw std::runtime_error(std::string(i % 200, 'x'));
        } catch (const std::runtime_error &e) {
            if (std::string(e.what()).size() != (size_t)(i % 200)) return fail("message");
            caught++;
        }
        // A rethrown exception_ptr is a dependent exception.
        std::exception_ptr saved;
        try {
            throw i;
        } catch (...) {
            saved = std::current_exception();
        }
        try {
            std::rethrow_exception(saved);
        } catch (int value) {
            if (value != i) return fail("rethrown value");
            rethrown++;
        }
        try {
            try {
                throw std::logic_error("inner");
            } catch (...) {
                std::throw_with_nested(std::runtime_error("outer"));
            }
        } catch (const std::runtime_error &outer) {
            try {
                std::rethrow_if_nested(outer);
            } catch (const std::logic_error &inner) {
                nested++;
            }
        }
    }
    std::printf("caught=%ld rethrown=%ld nested=%ld\n", caught, rethrown, nested);
    if (caught != 20000 || rethrown != 20000 || nested != 20000) return fail("counts");
    std::printf("exceptions: ok\n");
    return 0;
}
