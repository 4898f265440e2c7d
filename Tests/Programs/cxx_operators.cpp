// C++'s operator new and delete under the library (Sources/BuddyMallocExports/cxx_operators.c),
// run by Tests/PreloadTests/CxxOperatorTests.swift with and without the preload:
//   which   the module whose operator new and delete the program's calls bind to
//   usable  malloc_usable_size of new char[100] (the pool's 128, glibc's 104)
//   every form of new and delete: bytes written and read back, alignments of the
//           std::align_val_t forms (up to 4096), sized and aligned deletes
//   nothrow new of 2^62 bytes returns nullptr; new of 2^62 throws std::bad_alloc, after the
//           program's new_handler ran (three times: it removes itself on its third call);
//           the same for new[] and the aligned forms
//   errno   delete keeps errno, as free does
// Prints "which=<module>" and "usable=<n>", then "cxx: ok", or "cxx: FAIL <what>" and exits 1.
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <malloc.h>
#include <new>

static int failures;
#define CHECK(cond, ...)                                \
    do {                                                \
        if (!(cond)) {                                  \
            std::printf("cxx: FAIL " __VA_ARGS__);      \
            std::printf("\n");                          \
            failures++;                                 \
        }                                               \
    } while (0)

static int handler_calls;
static void handler() {
    if (++handler_calls == 3) std::set_new_handler(nullptr);
}

static const char *module_of(const char *symbol) {
    void *address = dlsym(RTLD_DEFAULT, symbol);
    Dl_info info;
    if (address == nullptr || dladdr(address, &info) == 0 || info.dli_fname == nullptr) return "?";
    return info.dli_fname;
}

static void fill_and_check(unsigned char *p, size_t n, unsigned char seed, const char *what) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed + i);
    for (size_t i = 0; i < n; i++) {
        if (p[i] != (unsigned char)(seed + i)) {
            CHECK(false, "%s: byte %zu of %zu changed", what, i, n);
            return;
        }
    }
}

int main() {
    std::printf("which=%s\n", module_of("_Znwm"));
    std::printf("which-delete=%s\n", module_of("_ZdlPv"));
    char *hundred = new char[100];
    std::printf("usable=%zu\n", malloc_usable_size(hundred));
    delete[] hundred;

    // Every form, at sizes from 0 to beyond the largest block.
    const size_t sizes[] = {0, 1, 8, 24, 100, 1000, 5000, 70000, 1 << 20, 20 << 20};
    for (size_t n : sizes) {
        unsigned char *a = static_cast<unsigned char *>(::operator new(n));
        fill_and_check(a, n, 1, "operator new");
        ::operator delete(a);
        unsigned char *b = static_cast<unsigned char *>(::operator new[](n));
        fill_and_check(b, n, 2, "operator new[]");
        ::operator delete[](b, n);
        unsigned char *c = static_cast<unsigned char *>(::operator new(n, std::nothrow));
        CHECK(c != nullptr, "nothrow new of %zu returned nullptr", n);
        if (c) fill_and_check(c, n, 3, "nothrow new");
        ::operator delete(c, std::nothrow);
        unsigned char *d = static_cast<unsigned char *>(::operator new[](n, std::nothrow));
        CHECK(d != nullptr, "nothrow new[] of %zu returned nullptr", n);
        if (d) fill_and_check(d, n, 4, "nothrow new[]");
        ::operator delete[](d, std::nothrow);
        ::operator delete(::operator new(n), n);
        for (size_t alignment = 16; alignment <= 4096; alignment *= 4) {
            std::align_val_t al{alignment};
            unsigned char *e = static_cast<unsigned char *>(::operator new(n, al));
            CHECK((uintptr_t)e % alignment == 0, "new(%zu, align %zu) = %p", n, alignment, (void *)e);
            fill_and_check(e, n, 5, "aligned new");
            ::operator delete(e, al);
            unsigned char *f = static_cast<unsigned char *>(::operator new[](n, al));
            CHECK((uintptr_t)f % alignment == 0, "new[](%zu, align %zu) = %p", n, alignment, (void *)f);
            ::operator delete[](f, n, al);
            unsigned char *g = static_cast<unsigned char *>(::operator new(n, al, std::nothrow));
            CHECK(g != nullptr && (uintptr_t)g % alignment == 0, "nothrow new(%zu, align %zu) = %p", n, alignment, (void *)g);
            ::operator delete(g, al, std::nothrow);
            unsigned char *h = static_cast<unsigned char *>(::operator new[](n, al, std::nothrow));
            CHECK(h != nullptr && (uintptr_t)h % alignment == 0, "nothrow new[](%zu, align %zu) = %p", n, alignment, (void *)h);
            ::operator delete[](h, al, std::nothrow);
            ::operator delete(::operator new(n, al), n, al);
        }
    }

    // Out of memory: nullptr from the nothrow forms, std::bad_alloc after the new_handler.
    const size_t huge = (size_t)1 << 62;
    CHECK(::operator new(huge, std::nothrow) == nullptr, "nothrow new of 2^62 bytes succeeded");
    CHECK(::operator new[](huge, std::nothrow) == nullptr, "nothrow new[] of 2^62 bytes succeeded");
    CHECK(::operator new(huge, std::align_val_t{64}, std::nothrow) == nullptr, "aligned nothrow new of 2^62 bytes succeeded");
    struct Throwing {
        const char *what;
        void *(*call)(size_t);
    } throwing[] = {
        {"new", [](size_t n) { return ::operator new(n); }},
        {"new[]", [](size_t n) { return ::operator new[](n); }},
        {"aligned new", [](size_t n) { return ::operator new(n, std::align_val_t{256}); }},
        {"aligned new[]", [](size_t n) { return ::operator new[](n, std::align_val_t{256}); }},
    };
    for (const Throwing &t : throwing) {
        handler_calls = 0;
        std::set_new_handler(handler);
        bool thrown = false;
        try {
            void *p = t.call(huge);
            CHECK(false, "%s of 2^62 bytes returned %p", t.what, p);
        } catch (const std::bad_alloc &) {
            thrown = true;
        }
        CHECK(thrown, "%s of 2^62 bytes did not throw std::bad_alloc", t.what);
        CHECK(handler_calls == 3, "%s of 2^62 bytes: the new_handler ran %d times, not 3", t.what, handler_calls);
    }
    std::set_new_handler(nullptr);

    // delete keeps errno, as free does.
    int *kept = new int(7);
    errno = 1234;
    delete kept;
    CHECK(errno == 1234, "delete changed errno to %d", errno);

    if (failures) return 1;
    std::printf("cxx: ok\n");
    return 0;
}
