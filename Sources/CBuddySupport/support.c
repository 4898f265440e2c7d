// Definitions behind buddy_support.h. Nothing here may allocate: it runs inside malloc.
#define _GNU_SOURCE
#include "buddy_support.h"
#include "raw_syscall.h"
#include <dlfcn.h>
#include <linux/futex.h>
#include <pthread.h>
#include <fcntl.h>
#include <time.h>
#include <signal.h>
#include <string.h>
#include <sys/auxv.h>

/// Spins (each a load and a pause, about 40 ns on this machine) before a contended lock sleeps.
#ifndef BUDDY_LOCK_SPINS
#define BUDDY_LOCK_SPINS 200
#endif
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

__thread buddy_thread_state buddy_thread __attribute__((tls_model("initial-exec")));

void *buddy_segment_map_storage[1 << 15];

static void *segment_table_free_list;
void **buddy_segment_table_free_list(void) { return &segment_table_free_list; }
static void *segment_table_fresh[2];
void **buddy_segment_table_fresh(void) { return segment_table_fresh; }

buddy_mutex buddy_init_lock;
buddy_mutex buddy_process_init_lock;
void *buddy_process_pool;
int buddy_process_pool_failed;
const char *buddy_report_target;
static char report_target_copy[1024];

void buddy_report_target_set(const char *v) {
    if (v == NULL) { buddy_report_target = NULL; return; }
    size_t i = 0;
    for (; v[i] != 0 && i < sizeof report_target_copy - 1; i++) report_target_copy[i] = v[i];
    report_target_copy[i] = 0;
    buddy_report_target = report_target_copy;
}
__thread int buddy_os_fail_map_countdown __attribute__((tls_model("initial-exec")));

// MARK: - The lock's contended halves (buddy_support.h)
// FUTEX_*_PRIVATE: the word is never shared with another process (a forked child re-initialises
// its copy), so the kernel may key it by address alone. A wait that returns early (EINTR, EAGAIN
// because the word changed) is harmless: the loop swaps again.

void buddy_lock_wait(buddy_mutex *m, uint32_t id) {
    // The compare-and-swap 0 -> id failed. The pool's critical sections are short (a refill or
    // flush of a few blocks), so while no one sleeps on the lock, first watch it for a moment:
    // a holder running on another core lets go sooner than a futex sleep and wake-up take (the
    // `threads` benchmark, 8 threads on 2 cores: thousands of sleeps per second without this).
    for (int i = 0; i < BUDDY_LOCK_SPINS; i++) {
        uint32_t word = __atomic_load_n(&m->word, __ATOMIC_RELAXED);
        if (word & BUDDY_LOCK_WAITERS) break; // others sleep already: queue behind them
        uint32_t expected = 0;
        if (word == 0 && __atomic_compare_exchange_n(&m->word, &expected, id, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return;
        buddy_cpu_relax();
    }
    // Set the waiters bit before sleeping, so that the holder's unlock wakes someone. A lock
    // taken from 0 here is taken with the bit set (its unlock may wake nobody, the price of not
    // counting waiters).
    for (;;) {
        uint32_t word = __atomic_load_n(&m->word, __ATOMIC_RELAXED);
        if (word == 0) {
            if (__atomic_compare_exchange_n(&m->word, &word, id | BUDDY_LOCK_WAITERS, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return;
            continue;
        }
        if (!(word & BUDDY_LOCK_WAITERS) &&
            !__atomic_compare_exchange_n(&m->word, &word, word | BUDDY_LOCK_WAITERS, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) continue;
        buddy_raw_syscall4(SYS_futex, (long)&m->word, FUTEX_WAIT_PRIVATE, (long)(word | BUDDY_LOCK_WAITERS), 0);
    }
}

void buddy_lock_wake(buddy_mutex *m) {
    buddy_raw_syscall4(SYS_futex, (long)&m->word, FUTEX_WAKE_PRIVATE, 1, 0);
}

static uint32_t lock_ids;

uint32_t buddy_lock_assign_id(void) {
    uint32_t id;
    do { id = (__atomic_add_fetch(&lock_ids, 1, __ATOMIC_RELAXED)) & ~BUDDY_LOCK_WAITERS; } while (id == 0);
    buddy_thread.lock_id = id;
    return id;
}

int buddy_fork_take(buddy_mutex *m) {
    if (buddy_lock_is_mine(m)) return 0;
    buddy_lock(m);
    return 1;
}

// glibc's stream-list lock (exported since 2.2.5, declared in no public header).
extern void _IO_list_lock(void);
extern void _IO_list_unlock(void);
extern void _IO_list_resetlock(void);

int buddy_fork_take_stdio(void) {
    if (buddy_process_is_single_threaded()) return 0;
    _IO_list_lock();
    return 1;
}

void buddy_fork_release_stdio(int child) {
    if (child) _IO_list_resetlock();
    else _IO_list_unlock();
}

int buddy_register_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void)) {
    return pthread_atfork(prepare, parent, child);
}

static pthread_key_t cache_key;

int buddy_thread_key_create(void (*destructor)(void *)) {
    return pthread_key_create(&cache_key, destructor);
}

void buddy_thread_key_set(void *cache) { pthread_setspecific(cache_key, cache); }

typedef size_t (*usable_size_fn)(void *);
static usable_size_fn system_usable_size;

size_t buddy_system_usable_size(void *ptr) {
    usable_size_fn fn = __atomic_load_n(&system_usable_size, __ATOMIC_ACQUIRE);
    if (fn == NULL) {
        fn = (usable_size_fn)dlsym(RTLD_NEXT, "malloc_usable_size");
        if (fn == NULL) fn = (usable_size_fn)dlsym(RTLD_DEFAULT, "__malloc_usable_size");
        if (fn == NULL) return 0;
        __atomic_store_n(&system_usable_size, fn, __ATOMIC_RELEASE);
    }
    return fn(ptr);
}

static void *map_anonymous(void *hint, size_t size) {
    void *p = mmap(hint, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void *buddy_os_map_aligned(size_t size, size_t alignment) {
    if (buddy_os_fail_map_countdown > 0 && --buddy_os_fail_map_countdown == 0) return NULL;
    int saved = errno;
    // The exact size first: over-mapping by the alignment would need twice the address space
    // (a 256 MiB segment a 512 MiB span), which a bounded one (ulimit -v) refuses long before
    // it is used up. A page-aligned request, or a lucky placement, is done at once.
    char *raw = map_anonymous(NULL, size);
    if (raw == NULL) return NULL;
    if (((uintptr_t)raw & (alignment - 1)) == 0) { errno = saved; return raw; }
    munmap(raw, size);
    // The kernel hands out addresses top-down, so the aligned address below that one is usually
    // free: as a hint (no MAP_FIXED) it is taken only if the whole range is free.
    char *below = (char *)((uintptr_t)raw & ~(uintptr_t)(alignment - 1));
    char *hinted = map_anonymous(below, size);
    if (hinted == below) { errno = saved; return hinted; }
    if (hinted) munmap(hinted, size);
    // Else over-map by the alignment and trim both ends: mmap only promises page alignment.
    size_t span = size + alignment;
    if (span < size) return NULL;
    raw = map_anonymous(NULL, span);
    if (raw == NULL) return NULL;
    uintptr_t start = ((uintptr_t)raw + alignment - 1) & ~(uintptr_t)(alignment - 1);
    size_t head = start - (uintptr_t)raw;
    size_t tail = span - head - size;
    if (head) munmap(raw, head);
    if (tail) munmap((char *)start + size, tail);
    errno = saved;
    return (void *)start;
}

void buddy_os_unmap(void *base, size_t size) {
    int saved = errno;
    munmap(base, size);
    errno = saved;
}

void buddy_os_release_pages(void *base, size_t size) {
    int saved = errno;
    madvise(base, size, MADV_DONTNEED);
    errno = saved;
}

uint64_t buddy_os_monotonic_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

void buddy_os_close(int fd) { int saved = errno; close(fd); errno = saved; }
int buddy_os_getpid(void) { return (int)getpid(); }

void buddy_os_write(int fd, const void *buf, size_t len) {
    int saved = errno;
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) { if (errno == EINTR) continue; break; }
        p += n; len -= (size_t)n;
    }
    errno = saved;
}

size_t buddy_os_page_bytes;

size_t buddy_os_page_size(void) {
    size_t page = (size_t)getpagesize();
    __atomic_store_n(&buddy_os_page_bytes, page, __ATOMIC_RELAXED);
    return page;
}

static long buddy_max_map_count_value;

long buddy_os_max_map_count(void) {
    long value = __atomic_load_n(&buddy_max_map_count_value, __ATOMIC_RELAXED);
    if (value != 0) return value;
    // Read once: open/read/close allocate nothing (no stdio). The kernel's default if unreadable.
    value = 65530;
    int saved = errno;
    int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char text[32];
        ssize_t n = read(fd, text, sizeof text - 1);
        close(fd);
        long parsed = 0;
        for (ssize_t i = 0; i < n && text[i] >= '0' && text[i] <= '9'; i++) parsed = parsed * 10 + (text[i] - '0');
        if (parsed > 0) value = parsed;
    }
    errno = saved;
    __atomic_store_n(&buddy_max_map_count_value, value, __ATOMIC_RELAXED);
    return value;
}

extern char **__environ;
const char *buddy_os_getenv(const char *name) {
    // getenv does not allocate, but guard against the very first calls before libc set __environ.
    if (__environ == NULL) return NULL;
    return getenv(name);
}

char *const *buddy_os_environ(void) { return __environ; }

int buddy_options_warned;

void buddy_options_mark_warned(void) {
    if (buddy_options_warned && getenv("BUDDY_WARNED") == NULL) setenv("BUDDY_WARNED", "1", 0);
}

uint64_t buddy_os_random_key(void) {
    uint64_t key = 0;
    const unsigned char *bytes = (const unsigned char *)getauxval(AT_RANDOM);
    if (bytes != NULL) memcpy(&key, bytes + 8, sizeof key); // the first 8 are glibc's stack guard
    if (key == 0) key = (uint64_t)(uintptr_t)&key * 0x9e3779b97f4a7c15u ^ buddy_os_monotonic_ns();
    return key | 1;
}

void buddy_os_abort(void) {
    // abort() raises SIGABRT like glibc's own "free(): invalid pointer"; _exit if a handler returns.
    abort();
}

void buddy_call_corruption_hook(buddy_corruption_hook hook, void *state, const void *block, uint8_t cause) {
    hook(state, block, cause);
}

void buddy_call_segment_hook(buddy_segment_hook hook, void *state, uintptr_t base) {
    hook(state, base);
}
