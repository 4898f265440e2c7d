// first_call_cpp: the program's first allocations come from C++ static initializers (operator
// new, std::string, std::vector, std::map, a std::thread started during static initialization
// whose first operation is operator new), before main. Run by Tests/PreloadTests/StressTests.swift.
//
// Output: "static init: ok, usable(100)=N" and "main: ok"; exit status 0 when every check passed.
// Build with -fno-builtin -fno-allocation-dce (g++ removes new/delete pairs otherwise).
#include <malloc.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

static int g_failures;
static size_t g_usable100;
static void *volatile g_sink;

static void expect(bool ok, const char *what) {
    if (!ok) {
        std::fprintf(stderr, "first_call_cpp: %s\n", what);
        g_failures++;
    }
}

struct FirstAllocation {
    std::vector<std::string> words;
    std::map<int, std::string> table;
    FirstAllocation() {
        // The very first thing: operator new of an odd size.
        char *first = new char[100];
        g_sink = first;
        std::memset(first, 1, 100);
        g_usable100 = malloc_usable_size(first);
        expect(g_usable100 >= 100, "usable size of new char[100] below 100");
        expect(reinterpret_cast<std::uintptr_t>(first) % 16 == 0, "new char[100] not 16-byte aligned");
        delete[] first;

        for (int i = 0; i < 2000; i++) {
            words.push_back(std::string(static_cast<size_t>(i % 97), static_cast<char>('a' + i % 26)) + std::to_string(i));
            table[i * 7919 % 2003] = words.back();
        }
        expect(words.size() == 2000 && table.size() == 2000, "containers lost elements");

        // A thread started during static initialization, whose first operation allocates.
        std::vector<int> *fromThread = nullptr;
        std::thread t([&fromThread] { fromThread = new std::vector<int>(100000, 7); });
        t.join();
        expect(fromThread != nullptr && fromThread->size() == 100000 && (*fromThread)[99999] == 7,
               "vector made by a thread during static initialization is wrong");
        delete fromThread;

        // Large (beyond the 1 MiB largest block) and over-aligned.
        auto *big = new std::vector<char>(3u << 20, 'x');
        expect((*big)[(3u << 20) - 1] == 'x', "3 MiB vector");
        delete big;
        struct alignas(4096) Page { char bytes[4096]; };
        auto *page = new Page;
        expect(reinterpret_cast<std::uintptr_t>(page) % 4096 == 0, "new of an alignas(4096) type is not aligned");
        std::memset(page->bytes, 2, sizeof page->bytes);
        delete page;
    }
};

static FirstAllocation g_first;

int main() {
    std::printf("static init: %s, usable(100)=%zu\n", g_failures ? "FAILED" : "ok", g_usable100);
    size_t total = 0;
    for (auto &w : g_first.words) total += w.size();
    for (auto &kv : g_first.table) total += static_cast<size_t>(kv.first) + kv.second.size();
    expect(total == 2208005, "container contents changed between static initialization and main");
    if (total != 2208005) std::fprintf(stderr, "first_call_cpp: total %zu\n", total);
    std::printf("main: %s\n", g_failures ? "FAILED" : "ok");
    return g_failures == 0 ? 0 : 1;
}
