// Where a report goes (buddy_report_support.h, "Report destinations"; README, "The report").
// Everything here runs in the report writer, which also runs in the BUDDY_REPORT_SIGNAL handler:
// no allocation, paths on the stack, and only functions on POSIX's async-signal-safe list
// (open, close, lstat, stat, fstat, readlink, rename, unlink, fcntl, tcgetattr, getpid) or
// system calls of our own (raw_syscall.h). Every function leaves errno as it found it.
#define _GNU_SOURCE
#include "buddy_support.h"
#include "raw_syscall.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

// MARK: - Paths on the stack

/// Copies `from` into `to` (capacity bytes with the NUL); 0, or -1 when it does not fit.
static int path_copy(char *to, size_t capacity, const char *from) {
    size_t i = 0;
    for (; from[i] != 0; i++) {
        if (i + 1 >= capacity) return -1;
        to[i] = from[i];
    }
    to[i] = 0;
    return 0;
}

/// Appends `text` to the NUL-terminated `to`; 0, or -1 when it does not fit.
static int path_append(char *to, size_t capacity, const char *text) {
    size_t n = 0;
    while (to[n] != 0) n++;
    return path_copy(to + n, capacity - n, text);
}

static int path_append_decimal(char *to, size_t capacity, uint64_t value) {
    char digits[24];
    int n = (int)sizeof digits - 1;
    digits[n] = 0;
    do { digits[--n] = (char)('0' + value % 10); value /= 10; } while (value != 0);
    return path_append(to, capacity, digits + n);
}

static int starts_with(const char *s, const char *prefix) {
    while (*prefix) if (*s++ != *prefix++) return 0;
    return 1;
}

/// The descriptor a path names without naming a file: /dev/fd/N, /proc/self/fd/N,
/// /proc/thread-self/fd/N, /dev/stdout, /dev/stderr. -1 for any other path.
static int descriptor_name(const char *path) {
    if (path[0] == '/' && path[1] == 'd' && path[2] == 'e' && path[3] == 'v' && path[4] == '/') {
        const char *rest = path + 5;
        if (starts_with(rest, "stdout") && rest[6] == 0) return 1;
        if (starts_with(rest, "stderr") && rest[6] == 0) return 2;
    }
    const char *digits = NULL;
    if (starts_with(path, "/dev/fd/")) digits = path + 8;
    else if (starts_with(path, "/proc/self/fd/")) digits = path + 14;
    else if (starts_with(path, "/proc/thread-self/fd/")) digits = path + 21;
    if (digits == NULL || *digits == 0) return -1;
    int n = 0;
    for (const char *p = digits; *p; p++) {
        if (*p < '0' || *p > '9' || p - digits >= 9) return -1;
        n = n * 10 + (*p - '0');
    }
    return n;
}

// MARK: - Descriptors

int buddy_os_descriptor_writable(int fd) {
    long flags = buddy_raw_syscall4(SYS_fcntl, fd, F_GETFL, 0, 0);
    if (flags < 0) return 0;
    return (flags & O_ACCMODE) != O_RDONLY;
}

int buddy_os_is_terminal(int fd) {
    int saved = errno;
    struct termios t;
    int yes = tcgetattr(fd, &t) == 0;
    errno = saved;
    return yes;
}

// MARK: - Opening a destination

static int fail(buddy_report_destination *d, int problem, int error) {
    d->fd = -1;
    d->kind = 0;
    d->problem = problem;
    d->error = error;
    return -1;
}

static int use_descriptor(buddy_report_destination *d, int fd) {
    d->descriptor = fd;
    if (!buddy_os_descriptor_writable(fd)) return fail(d, BUDDY_DEST_BAD_DESCRIPTOR, EBADF);
    d->fd = fd;
    d->kind = BUDDY_DEST_DESCRIPTOR;
    return fd;
}

/// Opens a FIFO or character device as named, without waiting for a FIFO's reader.
static int open_in_place(buddy_report_destination *d, const char *named, mode_t expected) {
    int fd = open(named, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int error = errno;
        return fail(d, error == ENXIO && S_ISFIFO(expected) ? BUDDY_DEST_FIFO_NO_READER : BUDDY_DEST_OPEN_FAILED, error);
    }
    // Still what it was when we looked (not swapped for a regular file that O_WRONLY without
    // O_TRUNC would overwrite from its start).
    struct stat st;
    if (fstat(fd, &st) != 0 || (st.st_mode & S_IFMT) != (expected & S_IFMT)) {
        close(fd);
        return fail(d, BUDDY_DEST_CHANGED, EAGAIN);
    }
    // O_NONBLOCK was for the open only (no reader: ENXIO at once, never a wait): the report's
    // writes wait for a slow reader as the program's own writes to it would.
    long flags = buddy_raw_syscall4(SYS_fcntl, fd, F_GETFL, 0, 0);
    if (flags >= 0) buddy_raw_syscall4(SYS_fcntl, fd, F_SETFL, flags & ~O_NONBLOCK, 0);
    d->fd = fd;
    d->kind = BUDDY_DEST_IN_PLACE;
    return fd;
}

/// Creates the temporary beside d->final_path: "FINAL.tmp.PID" (then ".1" ... ".7" after it when
/// that name is taken), always a new file (O_EXCL: an existing file or symlink of that name is
/// never opened, followed or replaced).
static int create_temporary(buddy_report_destination *d, int replaces, mode_t mode) {
    for (int attempt = 0; attempt < 8; attempt++) {
        d->temporary[0] = 0;
        if (path_append(d->temporary, sizeof d->temporary, d->final_path) != 0
            || path_append(d->temporary, sizeof d->temporary, ".tmp.") != 0
            || path_append_decimal(d->temporary, sizeof d->temporary, (uint64_t)getpid()) != 0
            || (attempt > 0 && (path_append(d->temporary, sizeof d->temporary, ".") != 0
                                || path_append_decimal(d->temporary, sizeof d->temporary, (uint64_t)attempt) != 0))) {
            return fail(d, BUDDY_DEST_TOO_LONG, ENAMETOOLONG);
        }
        int fd = open(d->temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0644);
        if (fd >= 0) {
            // The replacement keeps the permissions of the file it replaces.
            if (replaces) fchmod(fd, mode & 0777);
            d->fd = fd;
            d->kind = BUDDY_DEST_RENAME;
            return fd;
        }
        int error = errno;
        if (error == EEXIST) continue;
        d->temporary[0] = 0;
        if (error == ENOENT || error == ENOTDIR) return fail(d, BUDDY_DEST_NO_FOLDER, error);
        if (error == EACCES || error == EPERM || error == EROFS) return fail(d, BUDDY_DEST_NOT_WRITABLE, error);
        return fail(d, BUDDY_DEST_OPEN_FAILED, error);
    }
    d->temporary[0] = 0;
    return fail(d, BUDDY_DEST_TEMPORARY_TAKEN, EEXIST);
}

static int open_destination(const char *named, int options, buddy_report_destination *d) {
    if (path_copy(d->final_path, sizeof d->final_path, named) != 0) return fail(d, BUDDY_DEST_TOO_LONG, ENAMETOOLONG);
    int n = descriptor_name(named);
    if (n >= 0) return use_descriptor(d, n);
    struct stat st;
    if (options & BUDDY_DEST_NO_FOLLOW) {
        // The fallback file: its name is replaced, whatever it is, never followed.
        if (lstat(named, &st) != 0) {
            if (errno != ENOENT) return fail(d, BUDDY_DEST_OPEN_FAILED, errno);
            return create_temporary(d, 0, 0);
        }
        if (!S_ISREG(st.st_mode)) return fail(d, BUDDY_DEST_NOT_REGULAR, EEXIST);
        return create_temporary(d, 1, st.st_mode);
    }
    // First let the kernel walk the whole path as open(2) would: permissions, loops, and
    // fs.protected_symlinks (a symlink in a sticky world-writable folder that its owner may not
    // have us follow) are its verdicts, not ours.
    if (stat(named, &st) != 0 && errno != ENOENT) return fail(d, BUDDY_DEST_OPEN_FAILED, errno);
    // Then follow the last component's symlinks ourselves, to find the name a rename must
    // replace (rename(2) replaces a symlink, never its target). A relative target is relative
    // to the folder of the link.
    for (int hops = 0;; hops++) {
        if (hops > 40) return fail(d, BUDDY_DEST_OPEN_FAILED, ELOOP);
        if (lstat(d->final_path, &st) != 0) {
            if (errno != ENOENT) return fail(d, BUDDY_DEST_OPEN_FAILED, errno);
            if (starts_with(d->final_path, "/proc/")) return fail(d, BUDDY_DEST_PROC, EINVAL);
            return create_temporary(d, 0, 0);   // a new file (or a dangling symlink's target)
        }
        if (!S_ISLNK(st.st_mode)) break;
        char link[sizeof d->final_path];
        ssize_t length = readlink(d->final_path, link, sizeof link);
        if (length < 0) return fail(d, BUDDY_DEST_OPEN_FAILED, errno);
        if ((size_t)length >= sizeof link) return fail(d, BUDDY_DEST_TOO_LONG, ENAMETOOLONG);
        link[length] = 0;
        if (link[0] == '/') {
            if (path_copy(d->final_path, sizeof d->final_path, link) != 0) return fail(d, BUDDY_DEST_TOO_LONG, ENAMETOOLONG);
        } else {
            size_t cut = 0;
            for (size_t i = 0; d->final_path[i] != 0; i++) if (d->final_path[i] == '/') cut = i + 1;
            d->final_path[cut] = 0;
            if (path_append(d->final_path, sizeof d->final_path, link) != 0) return fail(d, BUDDY_DEST_TOO_LONG, ENAMETOOLONG);
        }
        n = descriptor_name(d->final_path);
        if (n >= 0) return use_descriptor(d, n);
        // Other links into /proc are magic (a file of another process, "pipe:[...]"): not a
        // name a rename may replace, nor one to read further.
        if (starts_with(d->final_path, "/proc/")) return fail(d, BUDDY_DEST_PROC, EINVAL);
    }
    // /proc's files are not files a report may replace (nor create: /proc/self/report).
    if (starts_with(d->final_path, "/proc/")) return fail(d, BUDDY_DEST_PROC, EINVAL);
    switch (st.st_mode & S_IFMT) {
    case S_IFREG: return create_temporary(d, 1, st.st_mode);
    case S_IFDIR: return fail(d, BUDDY_DEST_DIRECTORY, EISDIR);
    case S_IFIFO:
    case S_IFCHR: return open_in_place(d, named, st.st_mode);
    case S_IFBLK: return fail(d, BUDDY_DEST_BLOCK_DEVICE, EINVAL);
    case S_IFSOCK: return fail(d, BUDDY_DEST_SOCKET, ENXIO);
    default: return fail(d, BUDDY_DEST_OPEN_FAILED, EINVAL);
    }
}

int buddy_os_report_open(const char *named, int options, buddy_report_destination *d) {
    int saved = errno;
    d->fd = -1;
    d->kind = 0;
    d->problem = BUDDY_DEST_OK;
    d->error = 0;
    d->descriptor = -1;
    d->final_path[0] = 0;
    d->temporary[0] = 0;
    int fd = open_destination(named, options, d);
    errno = saved;
    return fd;
}

int buddy_os_report_finish(buddy_report_destination *d) {
    int saved = errno;
    int error = 0;
    switch (d->kind) {
    case BUDDY_DEST_RENAME:
        if (close(d->fd) != 0 && errno != EINTR) error = errno;
        if (error == 0 && rename(d->temporary, d->final_path) != 0) error = errno;
        if (error != 0) unlink(d->temporary);
        break;
    case BUDDY_DEST_IN_PLACE:
        close(d->fd);
        break;
    default: // a descriptor of the program's: it stays open
        break;
    }
    d->fd = -1;
    d->kind = 0;
    errno = saved;
    return error;
}

// MARK: - One document at a time on a shared stream

// A POSIX record lock on one byte at the very end of the offset range. Such locks belong to the
// process (not to the open file description, as flock(2) and F_OFD_SETLK locks do): a parent and
// the children it forked, which share their stderr's open file description, still exclude each
// other, and so do unrelated processes writing to the same pipe, terminal or file. The kernel
// drops a process's locks when it exits (or is killed). The byte is far past any data, so the
// lock never stands in the way of a program's own locks on its data.
#define BUDDY_STREAM_LOCK_BYTE 0x7ffffffffffffffeLL

static long stream_lock(int fd, short type) {
    struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = BUDDY_STREAM_LOCK_BYTE, .l_len = 1 };
    return buddy_raw_syscall4(SYS_fcntl, fd, F_SETLK, (long)&fl, 0);
}

int buddy_os_stream_lock(int fd, uint64_t timeout_ns) {
    // F_SETLK (never F_SETLKW): a holder that is stopped (SIGSTOP, a debugger) must not hold the
    // others forever. Try, nap 1 ms, try again until the time is up; then write unlocked.
    uint64_t waited = 0;
    for (;;) {
        long result = stream_lock(fd, F_WRLCK);
        if (result == 0) return 1;
        // Held by another process: EAGAIN (or EACCES, which POSIX also allows). Anything else
        // (ENOLCK, EINVAL: a file that takes no locks) ends the wait at once. (A bit test, not
        // comparisons the compiler turns into a jump table check-malloc-path.py cannot follow.)
        unsigned long error = (unsigned long)-result;
        const unsigned long retry = (1UL << EAGAIN) | (1UL << EACCES) | (1UL << EINTR);
        int held = error < 64 && ((1UL << error) & retry) != 0;
        if (!held || waited >= timeout_ns) return 0;
        buddy_os_nap(1000000);
        waited += 1000000;
    }
}

void buddy_os_stream_unlock(int fd) { (void)stream_lock(fd, F_UNLCK); }
