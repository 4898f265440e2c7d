// glibc's introspection calls, answered from the pool's statistics (buddy_stats_get) in glibc's
// shapes: mallinfo2 / mallinfo (the struct), malloc_stats (stderr), malloc_info (XML). The README
// ("glibc's introspection") maps each field. Formatting uses snprintf into stack buffers with the
// allocator's depth raised, so that anything libc allocates (a FILE's buffer) goes to glibc.
#define _GNU_SOURCE
#include "buddy_exports.h"
#include "buddy_stats.h"
#include "buddy_support.h"
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

/// glibc's own mallinfo2: its mmapped chunks (blocks it served before the pool existed, or in
/// re-entrant calls); the pool's oversize blocks are added to them.
__attribute__((noinline)) static struct mallinfo2 system_mallinfo2(void) {
    struct mallinfo2 none;
    memset(&none, 0, sizeof none);
    typedef struct mallinfo2 (*fn)(void);
    fn f = (fn)dlsym(RTLD_NEXT, "mallinfo2");
    return f ? f() : none;
}

static int snapshot(struct buddy_stats *s) {
    memset(s, 0, sizeof *s);
    s->size = sizeof *s;
    return buddy_stats_get(s);
}

static uint64_t free_blocks(const struct buddy_stats *s, int cached) {
    uint64_t n = 0;
    for (uint32_t k = 0; k < s->order_count && k < BUDDY_STATS_MAX_ORDERS; k++) n += cached ? s->orders[k].cached : s->orders[k].free;
    return n;
}

struct mallinfo2 buddy_mallinfo2(void) {
    struct mallinfo2 m;
    memset(&m, 0, sizeof m);
    struct buddy_stats s;
    // The snapshot first, at the caller's depth: from the program it waits for the pool lock
    // (inside the allocator, a signal handler's call, it only tries). Raised first, it only
    // tried, and a busy pool answered glibc's figures or zeros.
    int ok = snapshot(&s) == 0;
    buddy_thread_enter();
    struct mallinfo2 system = system_mallinfo2();
    buddy_thread_leave();
    if (!ok) return system;
    m.arena = s.reserved;               // bytes in segments
    m.ordblks = free_blocks(&s, 0);     // free blocks
    m.smblks = free_blocks(&s, 1);      // blocks in thread caches (glibc: fastbin chunks)
    m.hblks = system.hblks + s.oversize_blocks;     // mapped blocks: oversize ones, and glibc's own
    m.hblkhd = system.hblkhd + s.oversize_bytes;
    m.usmblks = 0;                      // always 0, as in glibc
    m.fsmblks = s.cached;               // bytes in thread caches
    m.uordblks = s.used;                // bytes the program holds
    m.fordblks = s.free + s.cached;     // free to the program: arena = uordblks + fordblks
    m.keepcost = s.largest_free_block;  // the largest block malloc_trim could give back whole
    return m;
}

struct mallinfo buddy_mallinfo(void) {
    struct mallinfo2 m2 = buddy_mallinfo2();
    struct mallinfo m;
    m.arena = (int)m2.arena;
    m.ordblks = (int)m2.ordblks;
    m.smblks = (int)m2.smblks;
    m.hblks = (int)m2.hblks;
    m.hblkhd = (int)m2.hblkhd;
    m.usmblks = (int)m2.usmblks;
    m.fsmblks = (int)m2.fsmblks;
    m.uordblks = (int)m2.uordblks;
    m.fordblks = (int)m2.fordblks;
    m.keepcost = (int)m2.keepcost;
    return m;
}

void buddy_malloc_stats(void) {
    struct buddy_stats s;
    char text[512];
    // The snapshot first, at the caller's depth: from the program it waits for the pool lock
    // (inside the allocator, a signal handler's call, it only tries). Raised first, it only
    // tried, and a busy pool answered glibc's figures or zeros.
    int ok = snapshot(&s) == 0;
    buddy_thread_enter();
    struct mallinfo2 system = system_mallinfo2();
    if (!ok) memset(&s, 0, sizeof s);
    system.hblks += s.oversize_blocks;  // mapped blocks: oversize ones, and glibc's own
    system.hblkhd += s.oversize_bytes;
    int n = snprintf(text, sizeof text,
                     "Arena 0:\n"
                     "system bytes     = %10u\n"
                     "in use bytes     = %10u\n"
                     "Total (incl. mmap):\n"
                     "system bytes     = %10u\n"
                     "in use bytes     = %10u\n"
                     "max mmap regions = %10u\n"
                     "max mmap bytes   = %10lu\n",
                     (unsigned)s.reserved, (unsigned)s.used,
                     (unsigned)(s.reserved + system.hblkhd), (unsigned)(s.used + system.hblkhd),
                     (unsigned)system.hblks, (unsigned long)system.hblkhd);
    if (n > 0) buddy_os_write(2, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
    buddy_thread_leave();
}

static void put(FILE *fp, const char *text, int n, size_t capacity) {
    if (n > 0) fwrite(text, 1, (size_t)n < capacity ? (size_t)n : capacity - 1, fp);
}

int buddy_malloc_info(int options, FILE *fp) {
    if (options != 0) {
        errno = EINVAL;
        return -1;
    }
    if (fp == NULL) return -1;
    struct buddy_stats s;
    char line[256];
    int n;
    if (snapshot(&s) != 0) memset(&s, 0, sizeof s); // (before the depth is raised: see mallinfo2)
    buddy_thread_enter();
    struct mallinfo2 system = system_mallinfo2();
    system.hblks += s.oversize_blocks;  // mapped blocks: oversize ones, and glibc's own
    system.hblkhd += s.oversize_bytes;
    uint64_t cached_blocks = free_blocks(&s, 1), free_count = free_blocks(&s, 0);
    n = snprintf(line, sizeof line, "<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n");
    put(fp, line, n, sizeof line);
    for (uint32_t k = 0; k < s.order_count && k < BUDDY_STATS_MAX_ORDERS; k++) {
        const struct buddy_order_stats *o = &s.orders[k];
        if (o->free == 0) continue;
        n = snprintf(line, sizeof line, "  <size from=\"%llu\" to=\"%llu\" total=\"%llu\" count=\"%llu\"/>\n",
                     (unsigned long long)o->block_size, (unsigned long long)o->block_size,
                     (unsigned long long)(o->block_size * o->free), (unsigned long long)o->free);
        put(fp, line, n, sizeof line);
    }
    n = snprintf(line, sizeof line,
                 "</sizes>\n<total type=\"fast\" count=\"%llu\" size=\"%llu\"/>\n"
                 "<total type=\"rest\" count=\"%llu\" size=\"%llu\"/>\n",
                 (unsigned long long)cached_blocks, (unsigned long long)s.cached,
                 (unsigned long long)free_count, (unsigned long long)s.free);
    put(fp, line, n, sizeof line);
    n = snprintf(line, sizeof line,
                 "<system type=\"current\" size=\"%llu\"/>\n<system type=\"max\" size=\"%llu\"/>\n"
                 "<aspace type=\"total\" size=\"%llu\"/>\n<aspace type=\"mprotect\" size=\"%llu\"/>\n</heap>\n",
                 (unsigned long long)s.reserved, (unsigned long long)s.reserved,
                 (unsigned long long)s.reserved, (unsigned long long)s.reserved);
    put(fp, line, n, sizeof line);
    n = snprintf(line, sizeof line,
                 "<total type=\"fast\" count=\"%llu\" size=\"%llu\"/>\n"
                 "<total type=\"rest\" count=\"%llu\" size=\"%llu\"/>\n"
                 "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n",
                 (unsigned long long)cached_blocks, (unsigned long long)s.cached,
                 (unsigned long long)free_count, (unsigned long long)s.free, system.hblks, system.hblkhd);
    put(fp, line, n, sizeof line);
    n = snprintf(line, sizeof line,
                 "<system type=\"current\" size=\"%llu\"/>\n<system type=\"max\" size=\"%llu\"/>\n"
                 "<aspace type=\"total\" size=\"%llu\"/>\n<aspace type=\"mprotect\" size=\"%llu\"/>\n</malloc>\n",
                 (unsigned long long)(s.reserved + system.hblkhd), (unsigned long long)(s.reserved + system.hblkhd),
                 (unsigned long long)(s.reserved + system.hblkhd), (unsigned long long)(s.reserved + system.hblkhd));
    put(fp, line, n, sizeof line);
    buddy_thread_leave();
    return 0;
}
