// Definitions behind buddy_report_support.h. Nothing here allocates; everything but the
// backtrace and symbolization functions is async-signal-safe (system calls and atomics only).
#define _GNU_SOURCE
#include "buddy_support.h"
#include "raw_syscall.h"
#include <dlfcn.h>
#include <errno.h>
#include <elf.h>
#include <execinfo.h>
#include <link.h>
#include <sys/auxv.h>
#include <stdio.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

buddy_report_settings buddy_report_config = {
    .format = BUDDY_REPORT_TEXT, .signal = 0, .interval_ns = 0, .profile_sample = 0,
    .latency_mode = BUDDY_LATENCY_SAMPLED, .latency_period = 1024,
};

void *buddy_bad_pointer_log;
void *buddy_profile_table;
int buddy_parent_pid;

void buddy_report_note_parent(void) { buddy_parent_pid = (int)getppid(); }

int buddy_report_parent(void) { return buddy_parent_pid != 0 ? buddy_parent_pid : (int)getppid(); }

// MARK: - Clocks

uint64_t buddy_os_realtime_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

uint64_t buddy_os_precise_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

// MARK: - Memory

uint64_t buddy_os_resident_bytes(const void *base, size_t size) {
    // The signal handler's snapshot comes here: mincore is not on POSIX's async-signal-safe list,
    // so it is our own system call instruction (raw_syscall.h: no errno, no libc), and the page
    // size is the one recorded when the pool was created (getpagesize is not listed either).
    size_t page = __atomic_load_n(&buddy_os_page_bytes, __ATOMIC_RELAXED);
    if (page == 0) return 0;
    unsigned char vector[4096];
    uint64_t resident = 0;
    uintptr_t start = (uintptr_t)base & ~(uintptr_t)(page - 1);
    uintptr_t end = (uintptr_t)base + size;
    while (start < end) {
        size_t pages = (end - start + page - 1) / page;
        if (pages > sizeof vector) pages = sizeof vector;
        if (buddy_raw_syscall4(SYS_mincore, (long)start, (long)(pages * page), (long)vector, 0) != 0) break;
        for (size_t i = 0; i < pages; i++) resident += (vector[i] & 1) ? page : 0;
        start += pages * page;
    }
    return resident;
}

size_t buddy_residency_window_size(void) { return sizeof(buddy_residency_window); }

void buddy_residency_begin(void *w, uintptr_t base, uintptr_t limit) {
    buddy_residency_window *window = w;
    window->first = base;
    window->pages = 0;
    window->limit = limit;
}

uint64_t buddy_residency_bytes(void *w, uintptr_t start, uintptr_t length) {
    buddy_residency_window *window = w;
    size_t page = __atomic_load_n(&buddy_os_page_bytes, __ATOMIC_RELAXED);
    if (page == 0) return 0;
    uint64_t bytes = 0;
    uintptr_t end = start + length;
    if (end > window->limit) end = window->limit;
    for (uintptr_t at = start; at < end;) {
        uintptr_t first = at & ~(uintptr_t)(page - 1);
        if (window->pages == 0 || first < window->first || first >= window->first + window->pages * page) {
            // Load from this page on: the walk goes up, so each page is asked about once.
            size_t pages = (window->limit - first + page - 1) / page;
            if (pages > BUDDY_RESIDENCY_PAGES) pages = BUDDY_RESIDENCY_PAGES;
            if (buddy_raw_syscall4(SYS_mincore, (long)first, (long)(pages * page), (long)window->vector, 0) != 0) {
                memset(window->vector, 0, pages); // not mapped: not resident
            }
            window->first = first;
            window->pages = pages;
        }
        uintptr_t next = first + page;
        uintptr_t stop = end < next ? end : next;
        if (window->vector[(first - window->first) / page] & 1) bytes += stop - at;
        at = stop;
    }
    return bytes;
}

// MARK: - Process and files

uint64_t buddy_os_process_resident(void) {
    // /proc/self/statm: "size resident shared text lib data dt", in pages. open, read and close
    // are async-signal-safe (the signal handler's report comes here).
    size_t page = __atomic_load_n(&buddy_os_page_bytes, __ATOMIC_RELAXED);
    if (page == 0) return 0;
    int saved = errno;
    char text[128];
    ssize_t n = -1;
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, text, sizeof text - 1);
        close(fd);
    }
    errno = saved;
    if (n <= 0) return 0;
    text[n] = 0;
    const char *c = text;
    while (*c >= '0' && *c <= '9') c++;     // size
    while (*c == ' ') c++;
    uint64_t pages = 0;
    while (*c >= '0' && *c <= '9') pages = pages * 10 + (uint64_t)(*c++ - '0');
    return pages * page;
}

size_t buddy_os_program_name(char *out, size_t capacity) {
    if (capacity == 0) return 0;
    out[0] = 0;
    int saved = errno;
    int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
    size_t length = 0;
    if (fd >= 0) {
        ssize_t n = read(fd, out, capacity - 1);
        if (n > 0) length = (size_t)n;
        close(fd);
    }
    while (length > 0 && (out[length - 1] == '\n' || out[length - 1] == 0)) length--;
    out[length] = 0;
    errno = saved;
    return length;
}

void buddy_os_nap(uint64_t ns) {
    // The signal handler naps while another thread holds the pool lock. nanosleep is not on
    // POSIX's async-signal-safe list (sleep is, but counts whole seconds): our own system call.
    struct timespec t = { .tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u) };
    while (buddy_raw_syscall4(SYS_nanosleep, (long)&t, (long)&t, 0, 0) == -EINTR) {}
}

// MARK: - Report writers' coordination

static int writer_busy;
static uint32_t pending_reports;
static uint64_t report_sequence;
static int shutting_down;

int buddy_report_try_begin(void) { return __atomic_exchange_n(&writer_busy, 1, __ATOMIC_ACQUIRE) == 0; }
void buddy_report_end(void) { __atomic_store_n(&writer_busy, 0, __ATOMIC_RELEASE); }
uint32_t buddy_report_pending(void) { return __atomic_load_n(&pending_reports, __ATOMIC_RELAXED); }
void buddy_report_add_pending(void) { __atomic_fetch_add(&pending_reports, 1, __ATOMIC_RELAXED); }
uint32_t buddy_report_take_pending(void) { return __atomic_exchange_n(&pending_reports, 0, __ATOMIC_ACQUIRE); }
uint64_t buddy_report_next_sequence(void) { return __atomic_fetch_add(&report_sequence, 1, __ATOMIC_RELAXED); }
int buddy_report_is_shutting_down(void) { return __atomic_load_n(&shutting_down, __ATOMIC_ACQUIRE); }
void buddy_report_set_shutting_down(void) { __atomic_store_n(&shutting_down, 1, __ATOMIC_RELEASE); }

void buddy_report_reset_after_fork(void) {
    writer_busy = 0;
    pending_reports = 0;
    report_sequence = 0;
}

// MARK: - Backtraces

typedef int (*unw_backtrace_fn)(void **buffer, int size);
typedef int (*glibc_backtrace_fn)(void **buffer, int size);
static unw_backtrace_fn unwind_backtrace;   // NULL until loaded
static int unwind_state;                    // 0 not tried, 1 libunwind, 2 glibc's backtrace

static void load_unwinder(void) {
    // RTLD_LOCAL: libunwind.so.8 also defines _Unwind_RaiseException and friends; in the global
    // scope they would take the place of libgcc_s's for the host's C++ exceptions.
    void *handle = dlopen("libunwind.so.8", RTLD_LAZY | RTLD_LOCAL);
    unw_backtrace_fn fn = handle ? (unw_backtrace_fn)dlsym(handle, "unw_backtrace") : NULL;
    if (fn != NULL) {
        __atomic_store_n(&unwind_backtrace, fn, __ATOMIC_RELEASE);
        __atomic_store_n(&unwind_state, 1, __ATOMIC_RELEASE);
    } else {
        __atomic_store_n(&unwind_state, 2, __ATOMIC_RELEASE);
    }
}

/// The module holding `address`, found with glibc's _dl_find_object (2.35+): a lookup by address
/// in the loader's sorted table, without dladdr's linear search of the module's symbols (which
/// cost cc1plus, 31,115 dynamic symbols, a third of its time at BUDDY_PROFILE_SAMPLE=1M:
/// docs/comparison.md). Its mapping's start and end, and its name as dladdr gives it (the
/// program itself: its argv[0]). 1, or 0 when no module holds the address.
static int find_module(uintptr_t address, uintptr_t *start, uintptr_t *end, const char **name) {
    struct dl_find_object found;
    if (_dl_find_object((void *)address, &found) != 0) return 0;
    *start = (uintptr_t)found.dlfo_map_start;
    *end = (uintptr_t)found.dlfo_map_end;
    const char *n = found.dlfo_link_map != NULL ? found.dlfo_link_map->l_name : NULL;
    if (n == NULL || n[0] == 0) n = program_invocation_name;
    *name = n != NULL && n[0] != 0 ? n : "?";
    return 1;
}

/// The object (library or executable) this code was loaded from, [start, end): frames inside it
/// are the allocator's own and are skipped.
static void own_object_range(uintptr_t *start, uintptr_t *end) {
    static uintptr_t own_start, own_end;
    uintptr_t s = __atomic_load_n(&own_start, __ATOMIC_ACQUIRE);
    if (s == 0) {
        const char *name;
        uintptr_t e = 0;
        if (find_module((uintptr_t)&own_object_range, &s, &e, &name)) {
            __atomic_store_n(&own_end, e, __ATOMIC_RELAXED);
            __atomic_store_n(&own_start, s, __ATOMIC_RELEASE);
        }
    }
    *start = s;
    *end = __atomic_load_n(&own_end, __ATOMIC_RELAXED);
}

static uintptr_t keep_start, keep_end;

void buddy_backtrace_keep_frames(const void *start, const void *end) {
    __atomic_store_n(&keep_end, (uintptr_t)end, __ATOMIC_RELAXED);
    __atomic_store_n(&keep_start, (uintptr_t)start, __ATOMIC_RELEASE);
}

/// The first return address outside this object on the frame-pointer chain from here: the
/// program's call into the allocator; NULL when there is none. For glibc's backtrace(), which
/// stops at the first frame without an .eh_frame entry, and the library's Swift functions have
/// none (Embedded Swift marks them nounwind), while every function of the library keeps its
/// frame pointer (SwiftPM builds with -fno-omit-frame-pointer). The chain is followed through
/// this object's frames only: a program's function may use the register for anything.
/// (libunwind steps through such frames by their frame pointers itself.)
__attribute__((noinline)) static void *own_frames_exit(uintptr_t own_start, uintptr_t own_end) {
    uintptr_t *fp = __builtin_frame_address(0);
    for (int depth = 0; fp != NULL && depth < 64; depth++) {
        uintptr_t ret = fp[1];
        if (ret - own_start >= own_end - own_start) return (void *)ret;
        uintptr_t *next = (uintptr_t *)fp[0];
        if (next <= fp || ((uintptr_t)next & 7) != 0) return NULL;
        fp = next;
    }
    return NULL;
}

int buddy_backtrace(void **frames, int max) {
    if (max <= 0) return 0;
    int saved = errno;
    if (__atomic_load_n(&unwind_state, __ATOMIC_ACQUIRE) == 0) load_unwinder();
    void *raw[96];
    int n;
    unw_backtrace_fn fn = __atomic_load_n(&unwind_backtrace, __ATOMIC_ACQUIRE);
    if (fn != NULL) n = fn(raw, (int)(sizeof raw / sizeof raw[0]));
    else n = backtrace(raw, (int)(sizeof raw / sizeof raw[0]));
    // Skip the leading frames inside this object (the allocator itself, the unwinder's caller).
    uintptr_t own_start, own_end;
    own_object_range(&own_start, &own_end);
    int first = 0;
    while (first < n && (uintptr_t)raw[first] - own_start < own_end - own_start) first++;
    if (first == n && fn == NULL && n < (int)(sizeof raw / sizeof raw[0])) {
        // glibc's backtrace() stopped inside this object: its program frame, from the chain.
        void *exit = own_frames_exit(own_start, own_end);
        if (exit != NULL) {
            raw[n] = exit;
            n++;
        }
    }
    if (first == n) first = 0;  // a stack entirely inside this object (a test binary): keep it
    // The library's own operator new (buddy_backtrace_keep_frames) stands where libstdc++'s
    // did: the program called it, so its frame is kept ("via operator new").
    else if (first > 0) {
        uintptr_t start = __atomic_load_n(&keep_start, __ATOMIC_ACQUIRE);
        if ((uintptr_t)raw[first - 1] - start < __atomic_load_n(&keep_end, __ATOMIC_RELAXED) - start) first--;
    }
    int count = 0;
    for (int i = first; i < n && count < max; i++) frames[count++] = raw[i];
    errno = saved;
    return count;
}

static size_t append(char *out, size_t capacity, size_t at, const char *text) {
    while (*text && at + 1 < capacity) out[at++] = *text++;
    out[at < capacity ? at : capacity - 1] = 0;
    return at;
}

static size_t append_hex(char *out, size_t capacity, size_t at, uintptr_t value) {
    char digits[2 + 2 * sizeof value + 1];
    int n = 0;
    char reversed[2 * sizeof value];
    do { reversed[n++] = "0123456789abcdef"[value & 15]; value >>= 4; } while (value != 0);
    int k = 0;
    digits[k++] = '0';
    digits[k++] = 'x';
    while (n > 0) digits[k++] = reversed[--n];
    digits[k] = 0;
    return append(out, capacity, at, digits);
}

size_t buddy_symbolize(const void *address, char *out, size_t capacity) {
    if (capacity == 0) return 0;
    out[0] = 0;
    int saved = errno;
    Dl_info info;
    size_t at = 0;
    // A return address points after its call: look up the byte before, so that a call at the
    // very end of a function is not attributed to the next one.
    uintptr_t lookup = (uintptr_t)address > 0 ? (uintptr_t)address - 1 : 0;
    if (dladdr((void *)lookup, &info) != 0 && info.dli_fname != NULL) {
        if (info.dli_sname != NULL && info.dli_saddr != NULL) {
            at = append(out, capacity, at, info.dli_sname);
            at = append(out, capacity, at, "+");
            at = append_hex(out, capacity, at, (uintptr_t)address - (uintptr_t)info.dli_saddr);
            at = append(out, capacity, at, " (");
            at = append(out, capacity, at, info.dli_fname[0] ? info.dli_fname : "?");
            at = append(out, capacity, at, ")");
        } else {
            at = append(out, capacity, at, info.dli_fname[0] ? info.dli_fname : "?");
            at = append(out, capacity, at, "+");
            at = append_hex(out, capacity, at, (uintptr_t)address - (uintptr_t)info.dli_fbase);
        }
    } else {
        at = append_hex(out, capacity, at, (uintptr_t)address);
    }
    errno = saved;
    return at;
}

size_t buddy_locate(const void *address, char *out, size_t capacity) {
    if (capacity == 0) return 0;
    out[0] = 0;
    int saved = errno;
    uintptr_t lookup = (uintptr_t)address > 0 ? (uintptr_t)address - 1 : 0;
    uintptr_t start, end;
    const char *name;
    size_t at = 0;
    if (find_module(lookup, &start, &end, &name)) {
        at = append(out, capacity, at, name);
        at = append(out, capacity, at, "+");
        at = append_hex(out, capacity, at, (uintptr_t)address - start);
    } else {
        at = append_hex(out, capacity, at, (uintptr_t)address);
    }
    errno = saved;
    return at;
}

uintptr_t buddy_module_base(const void *address) {
    uintptr_t lookup = (uintptr_t)address > 0 ? (uintptr_t)address - 1 : 0;
    uintptr_t start, end;
    const char *name;
    return find_module(lookup, &start, &end, &name) ? start : 0;
}

// The GNU build-id note of the module mapped at `base`, from its program headers in memory (the
// loader maps them with the first page): hex into out. A shared object or PIE executable
// (ET_DYN) has its segments at base + p_vaddr; a fixed executable (ET_EXEC) at p_vaddr.
static size_t build_id_of(uintptr_t base, char *out, size_t capacity) {
    const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)base;
    if (capacity == 0) return 0;
    out[0] = 0;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_phentsize != sizeof(ElfW(Phdr))) return 0;
    uintptr_t bias = eh->e_type == ET_DYN ? base : 0;
    const ElfW(Phdr) *ph = (const ElfW(Phdr) *)(base + eh->e_phoff);
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type != PT_NOTE) continue;
        const unsigned char *note = (const unsigned char *)(bias + ph[i].p_vaddr);
        const unsigned char *end = note + ph[i].p_memsz;
        while (note + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)note;
            const unsigned char *name = note + sizeof(ElfW(Nhdr));
            const unsigned char *desc = name + ((nh->n_namesz + 3) & ~3u);
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && memcmp(name, "GNU", 4) == 0
                && desc + nh->n_descsz <= end && nh->n_descsz * 2 + 1 <= capacity) {
                static const char digits[] = "0123456789abcdef";
                for (size_t k = 0; k < nh->n_descsz; k++) {
                    out[2 * k] = digits[desc[k] >> 4];
                    out[2 * k + 1] = digits[desc[k] & 15];
                }
                out[2 * nh->n_descsz] = 0;
                return 2 * nh->n_descsz;
            }
            note = desc + ((nh->n_descsz + 3) & ~3u);
        }
    }
    return 0;
}

int buddy_module_of(const void *address, uintptr_t *base, char *name, size_t name_capacity, char *path,
                    size_t path_capacity, char *build_id, size_t build_id_capacity) {
    int saved = errno;
    Dl_info info;
    uintptr_t lookup = (uintptr_t)address > 0 ? (uintptr_t)address - 1 : 0;
    int found = dladdr((void *)lookup, &info) != 0 && info.dli_fbase != NULL;
    if (found) {
        *base = (uintptr_t)info.dli_fbase;
        append(name, name_capacity, 0, info.dli_fname && info.dli_fname[0] ? info.dli_fname : "?");
        // The program itself: the loader names it as it was started (argv[0], maybe relative or
        // a bare name); its own file is /proc/self/exe. It is the module whose program headers
        // the kernel handed over (AT_PHDR).
        const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)info.dli_fbase;
        ssize_t length = -1;
        if (path_capacity > 1 && getauxval(AT_PHDR) == (uintptr_t)info.dli_fbase + eh->e_phoff) {
            length = readlink("/proc/self/exe", path, path_capacity - 1);
        }
        if (length > 0) path[length] = 0;
        else append(path, path_capacity, 0, info.dli_fname && info.dli_fname[0] ? info.dli_fname : "?");
        build_id_of((uintptr_t)info.dli_fbase, build_id, build_id_capacity);
    }
    errno = saved;
    return found;
}
