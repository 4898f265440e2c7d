// Definitions behind buddy_oversize_support.h. Nothing here may allocate: it runs inside malloc.
#define _GNU_SOURCE
#include "buddy_oversize_support.h"
#include <sys/mman.h>
#include <unistd.h>

buddy_oversize_table buddy_oversize;

int buddy_oversize_fork_prepare(void) { return buddy_fork_take(&buddy_oversize.lock); }
void buddy_oversize_fork_parent(void) { buddy_unlock(&buddy_oversize.lock); }
void buddy_oversize_fork_child(void) { buddy_lock_init(&buddy_oversize.lock); }

void *buddy_os_map_fresh(size_t size, size_t alignment) {
    size_t page = (size_t)getpagesize();
    size_t span = size + (alignment > page ? alignment - page : 0);
    if (span < size) { errno = ENOMEM; return NULL; }
    char *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) { errno = ENOMEM; return NULL; }
    if (alignment <= page) return raw;
    uintptr_t start = ((uintptr_t)raw + alignment - 1) & ~(uintptr_t)(alignment - 1);
    size_t head = start - (uintptr_t)raw;
    size_t tail = span - head - size;
    int saved = errno;
    if (head) munmap(raw, head);
    if (tail) munmap((char *)start + size, tail);
    errno = saved;
    return (void *)start;
}

void *buddy_os_remap(void *base, size_t old_size, size_t new_size, int may_move) {
    int saved = errno;
    void *p = mremap(base, old_size, new_size, may_move ? MREMAP_MAYMOVE : 0);
    errno = saved;
    return p == MAP_FAILED ? NULL : p;
}

int buddy_os_is_mapped(const void *address) {
    int saved = errno;
    size_t page = (size_t)getpagesize();
    unsigned char vec;
    int r = mincore((void *)((uintptr_t)address & ~(uintptr_t)(page - 1)), 1, &vec);
    int mapped = r == 0 || errno != ENOMEM;
    errno = saved;
    return mapped;
}

int buddy_os_protect(void *base, size_t size, int writable) {
    int saved = errno;
    int r = mprotect(base, size, writable ? PROT_READ | PROT_WRITE : PROT_NONE);
    errno = saved;
    return r;
}

void *buddy_os_reserve(size_t size) {
    int saved = errno;
    void *p = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    errno = saved;
    return p == MAP_FAILED ? NULL : p;
}

int buddy_os_move(void *from, size_t size, void *to) {
    int saved = errno;
    void *p = mremap(from, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, to);
    errno = saved;
    return p == to ? 0 : -1;
}

int buddy_os_tombstone(void *at, size_t size) {
    int saved = errno;
    void *p = mmap(at, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    // (A kernel older than 4.17 takes the flag for a hint and may map elsewhere.)
    if (p != MAP_FAILED && p != at) munmap(p, size);
    errno = saved;
    return p == at ? 0 : -1;
}
