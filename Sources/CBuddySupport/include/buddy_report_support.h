// C support for statistics and reports (Report.swift, Stats*.swift, ReportTriggers.swift):
// clocks, residency, files, the report writers' coordination flags, and backtraces. Every
// function here is allocation-free and async-signal-safe unless its comment says otherwise.
#ifndef BUDDY_REPORT_SUPPORT_H
#define BUDDY_REPORT_SUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include "buddy_support.h"

// The public statistics layout has one definition, in the library's public header.
#include "buddy_stats.h"

// MARK: - Clocks (vDSO: no system call)
/// Wall-clock time in nanoseconds since the epoch (CLOCK_REALTIME).
uint64_t buddy_os_realtime_ns(void);
/// A precise monotonic clock in nanoseconds (CLOCK_MONOTONIC), for latency samples.
uint64_t buddy_os_precise_ns(void);

// MARK: - Memory
/// Bytes of [base, base + size) resident in RAM (mincore, in chunks from a stack vector, by a
/// raw system call); 0 for memory that is not mapped. Leaves errno alone.
uint64_t buddy_os_resident_bytes(const void *base, size_t size);

/// A window of mincore's answers for the residency walk (Engine+Residency.swift), which asks
/// about a segment's blocks in address order: one system call per BUDDY_RESIDENCY_PAGES pages.
/// Its storage is the caller's (the pool's state mapping), used under the pool lock.
#define BUDDY_RESIDENCY_PAGES 4096
typedef struct buddy_residency_window {
    uintptr_t first;    ///< the first page's address
    uintptr_t pages;    ///< pages loaded (0: none)
    uintptr_t limit;    ///< the end of the mapping being walked: never asked about beyond it
    unsigned char vector[BUDDY_RESIDENCY_PAGES];
} buddy_residency_window;
/// Bytes of the window's storage.
size_t buddy_residency_window_size(void);
/// Starts a walk of the mapping [base, limit) (forgets what the window held).
void buddy_residency_begin(void *window, uintptr_t base, uintptr_t limit);
/// Bytes of [start, start + length) that lie in resident pages, exactly (a block of 64 bytes
/// in a resident page counts 64). Loads the window as the range moves on. Leaves errno alone.
uint64_t buddy_residency_bytes(void *window, uintptr_t start, uintptr_t length);
/// The process's resident set in bytes (/proc/self/statm), 0 when unknown. Preserves errno.
uint64_t buddy_os_process_resident(void);

// MARK: - Process and files
/// Copies the process's name (/proc/self/comm, without its newline) into `out`, NUL-terminated;
/// returns its length (0 when unknown). Preserves errno.
size_t buddy_os_program_name(char *out, size_t capacity);

// MARK: - Report destinations (report_destination.c)
// BUDDY_REPORT=PATH names what the report is written to, the way open(2) would read the name,
// but a regular file is never written in place: readers see the old report or the new one.
//
//   a regular file, or nothing     a new temporary beside it (FINAL.tmp.PID, O_EXCL), renamed
//                                  over it when complete (it keeps the replaced file's mode)
//   a symlink (chains, relative)   followed to its target, which is then one of these cases;
//                                  the symlink itself is never replaced
//   /dev/fd/N, /proc/self/fd/N,    descriptor N of the process, written where it stands (shared
//   /dev/stdout, /dev/stderr       offset, as the shell's >&N), never opened anew or closed
//   a FIFO, a character device     opened as named, O_WRONLY without O_CREAT or O_TRUNC; a FIFO
//                                  without a reader is refused at once (O_NONBLOCK open: ENXIO)
//   a directory, a block device,   refused (problem below): nothing is created or written
//   a socket, a path in /proc
typedef enum buddy_report_destination_kind {
    BUDDY_DEST_RENAME = 1,      ///< fd: the temporary; finish renames it over final_path
    BUDDY_DEST_IN_PLACE = 2,    ///< fd: the FIFO or device, opened by us; finish closes it
    BUDDY_DEST_DESCRIPTOR = 3,  ///< fd: the program's own descriptor; finish leaves it open
} buddy_report_destination_kind;

typedef enum buddy_report_destination_problem {
    BUDDY_DEST_OK = 0,
    BUDDY_DEST_TOO_LONG,          ///< the path (or a symlink's target) is longer than the buffers
    BUDDY_DEST_DIRECTORY,
    BUDDY_DEST_NO_FOLDER,         ///< the final file's folder does not exist
    BUDDY_DEST_NOT_WRITABLE,      ///< no new file may be created in that folder
    BUDDY_DEST_FIFO_NO_READER,
    BUDDY_DEST_BLOCK_DEVICE,
    BUDDY_DEST_SOCKET,
    BUDDY_DEST_BAD_DESCRIPTOR,    ///< /dev/fd/N: N is not open for writing (`descriptor`)
    BUDDY_DEST_PROC,              ///< a path in /proc (or a symlink there) other than our descriptors
    BUDDY_DEST_TEMPORARY_TAKEN,   ///< eight temporary names exist already
    BUDDY_DEST_NOT_REGULAR,       ///< (BUDDY_DEST_NO_FOLLOW) the name exists and is not a regular file
    BUDDY_DEST_CHANGED,           ///< the file changed kind between the look and the open
    BUDDY_DEST_OPEN_FAILED,       ///< another error: `error` is errno
} buddy_report_destination_problem;

/// Option: replace the name itself, never follow a symlink there, refuse anything but a regular
/// file (the fallback file of a closed stderr, in a shared folder).
#define BUDDY_DEST_NO_FOLLOW 1

typedef struct buddy_report_destination {
    int32_t fd;
    int32_t kind;          ///< buddy_report_destination_kind; 0 when opening failed
    int32_t problem;       ///< buddy_report_destination_problem
    int32_t error;         ///< errno of the call that failed
    int32_t descriptor;    ///< the N of /dev/fd/N, or -1
    int32_t reserved;
    char final_path[1024]; ///< the file renamed over (symlinks resolved), or the path opened
    char temporary[1024];  ///< BUDDY_DEST_RENAME: the temporary's name
} buddy_report_destination;

/// Opens what `path` names for one report (see above); returns the descriptor to write, or -1
/// with d->problem and d->error set. Preserves errno.
int buddy_os_report_open(const char *path, int options, buddy_report_destination *d);
/// After the report: closes what buddy_os_report_open opened and renames the temporary into
/// place (removing it when that fails). 0, or the errno of the close or rename that failed.
int buddy_os_report_finish(buddy_report_destination *d);
/// 1 when `fd` is open for writing (fcntl F_GETFL: not closed, not read-only).
int buddy_os_descriptor_writable(int fd);
/// 1 when `fd` is a terminal (tcgetattr). Preserves errno.
int buddy_os_is_terminal(int fd);
/// Serializes the writers of whole documents on a shared stream (stderr, a FIFO, a terminal,
/// /dev/fd/N) across processes: a POSIX record lock of this process on the stream's file. 1 when
/// taken (release it with buddy_os_stream_unlock), 0 when the file takes no locks or another
/// process held it for `timeout_ns` (the caller writes anyway: never a wait without end).
int buddy_os_stream_lock(int fd, uint64_t timeout_ns);
void buddy_os_stream_unlock(int fd);
/// Sleeps for `ns` nanoseconds (the nanosleep system call, issued directly). Leaves errno alone.
void buddy_os_nap(uint64_t ns);

// MARK: - Report settings (read with the other options at the first call; see Options.swift)
typedef struct buddy_report_settings {
    int32_t format;            ///< enum buddy_report_format
    int32_t signal;            ///< the signal that asks for a report; 0: none
    uint64_t interval_ns;      ///< periodic reports; 0: none
    uint64_t profile_sample;   ///< allocation-site profile: one sample per this many bytes; 0: off
    int32_t latency_mode;      ///< enum buddy_latency_mode
    int32_t latency_period;    ///< sampled mode: one call in this many is timed
} buddy_report_settings;

extern buddy_report_settings buddy_report_config;
static inline buddy_report_settings *buddy_report_settings_get(void) { return &buddy_report_config; }

// MARK: - Report writers' coordination (atomics, so a signal handler may use them)
/// Takes the writer's flag (one report at a time: they share the sequence number and the file
/// names); 1 when taken, 0 when another writer holds it.
int buddy_report_try_begin(void);
void buddy_report_end(void);
/// Reports asked for (by the signal) but not written yet.
uint32_t buddy_report_pending(void);
void buddy_report_add_pending(void);
/// Takes every pending request at once; returns how many there were.
uint32_t buddy_report_take_pending(void);
/// The number of the next report this process writes: 0, 1, 2...
uint64_t buddy_report_next_sequence(void);
/// Set by the exit report: the interval thread stops.
int buddy_report_is_shutting_down(void);
void buddy_report_set_shutting_down(void);
/// In a forked child: nobody is writing, nothing is pending, the numbering restarts.
void buddy_report_reset_after_fork(void);

// MARK: - More atomics (every access names its ordering)
static inline void buddy_atomic_max_u64_relaxed(uint64_t *p, uint64_t v) {
    uint64_t seen = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (v > seen && !__atomic_compare_exchange_n(p, &seen, v, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
}
static inline void buddy_atomic_store_u64_relaxed(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline uint64_t buddy_atomic_load_u64_acquire(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void buddy_atomic_store_u64_release(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint64_t buddy_atomic_fetch_add_u64_relaxed(uint64_t *p, uint64_t v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
static inline int buddy_atomic_exchange_int_acquire(int *p, int v) { return __atomic_exchange_n(p, v, __ATOMIC_ACQUIRE); }
static inline void buddy_atomic_store_int_release(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

// MARK: - Tables in mapped memory, created on first use and never unmapped
/// The bad-pointer log and the allocation-site profile (Stats+BadPointers.swift,
/// Stats+Profile.swift): NULL until published; publishing is a compare-and-swap, so two threads
/// that map one at once agree on the winner (the loser unmaps its own).
extern void *buddy_bad_pointer_log;
extern void *buddy_profile_table;
// The process's parent as it was when the process pool was created, or in a forked child when
// it was forked (the report's "ppid": at exit an orphan's parent is init). Async-signal-safe.
void buddy_report_note_parent(void);
int buddy_report_parent(void);
static inline void *buddy_bad_pointer_log_get(void) { return __atomic_load_n(&buddy_bad_pointer_log, __ATOMIC_ACQUIRE); }
static inline int buddy_bad_pointer_log_publish(void *p) {
    void *expected = NULL;
    return __atomic_compare_exchange_n(&buddy_bad_pointer_log, &expected, p, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
static inline void *buddy_profile_table_get(void) { return __atomic_load_n(&buddy_profile_table, __ATOMIC_ACQUIRE); }
static inline int buddy_profile_table_publish(void *p) {
    void *expected = NULL;
    return __atomic_compare_exchange_n(&buddy_profile_table, &expected, p, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
/// A spin lock on a word of mapped memory (the profile's stripes): never held across a call
/// that could allocate or wait.
static inline void buddy_spin_lock(uint32_t *word) {
    while (__atomic_exchange_n(word, 1, __ATOMIC_ACQUIRE) != 0) {
        while (__atomic_load_n(word, __ATOMIC_RELAXED) != 0) buddy_cpu_relax();
    }
}
static inline void buddy_spin_unlock(uint32_t *word) { __atomic_store_n(word, 0, __ATOMIC_RELEASE); }

// MARK: - Backtraces (bad pointers, the allocation-site profile)
/// Fills `frames` with up to `max` return addresses of the calling thread, innermost first,
/// skipping the frames inside this library; returns how many. Uses libunwind's unw_backtrace
/// (libunwind.so.8, dlopen'ed RTLD_LOCAL on first use so that its _Unwind_* names never
/// interpose on the host's C++ runtime), else glibc's backtrace(). NOT async-signal-safe (the
/// first call loads a library); call it with the allocator's depth raised, so that whatever it
/// allocates goes to glibc. libunwind's unw_backtrace itself allocates nothing (see the README).
int buddy_backtrace(void **frames, int max);
/// Code in [start, end) is the program's entry into the library (the library's own operator new,
/// set by BuddyMallocExports at load): buddy_backtrace keeps its frame, the outermost of the
/// library's, where it skips the others.
void buddy_backtrace_keep_frames(const void *start, const void *end);
/// Writes "symbol+0xoffset (object path)" for a code address (or "object+0xoffset" without a
/// symbol) into `out`, NUL-terminated, at most `capacity` bytes; returns its length. dladdr
/// (takes the loader's lock: never call it with a pool lock or report flag held).
size_t buddy_symbolize(const void *address, char *out, size_t capacity);
/// Writes "object+0xoffset" for a code address (the offset from the object's mapping, as
/// buddy_symbolize writes a frame without a symbol), with no symbol lookup: _dl_find_object, not
/// dladdr. The profile's frames (buddy-report names them offline). Never allocates.
size_t buddy_locate(const void *address, char *out, size_t capacity);
/// The start of the mapping of the module holding the return address `address` (0: none), the
/// `base` buddy_module_of gives, found without dladdr.
uintptr_t buddy_module_base(const void *address);
// The module (executable or shared object) holding the return address `address`: its load
// base, its name as the loader knows it and frames show it (buddy_symbolize), its file's path
// (/proc/self/exe's target for the program itself, whose name may be relative), and its GNU
// build-id in hex (capacity >= 2 * 32 + 1; "" when it has none); each NUL-terminated, cut at its
// capacity. 0 when no module holds the address. Not async-signal-safe (dladdr): called when a
// profile site is created.
int buddy_module_of(const void *address, uintptr_t *base, char *name, size_t name_capacity, char *path,
                    size_t path_capacity, char *build_id, size_t build_id_capacity);

#endif
