"""The rules: which functions are forbidden on the allocator's path, which are async-signal-safe,
and the short, justified lists of exceptions."""

# Swift modules of this project: their symbols are ours (their callees are still checked).
PROJECT_MODULES = ("BuddyEngine", "BuddyMallocCore", "BuddyMallocEmbedded", "CBuddySupport", "BuddyMallocAPI",
                   "BuddyMallocExports")

# Mangled Swift names: `$s` (Swift), `$e` (Embedded Swift, the shared library's build), with or
# without the leading underscore some tools print.
SWIFT_PREFIXES = ("$s", "_$s", "$e", "_$e")

# Forbidden external (PLT/GOT) names besides the prefix rules: they allocate or lock inside
# runtimes that call back into malloc.
FORBIDDEN_EXTERNAL_PREFIXES = ("swift_", "_swift_", "__swift", "_Z", "__cxa_guard", "__cxa_allocate") + SWIFT_PREFIXES

# Allowed exceptions: function name -> reason. Keep this short and justified.
ALLOWED_FUNCTIONS = {
    # (none: no Swift runtime function is allowed on the allocator's path)
}

# C++ names the library defines itself (Sources/BuddyMallocExports/cxx_operators.c: operator new
# and delete forwarding to the allocator). Allowed as the library's own definitions only: a call
# to another library's operator new (through the PLT or GOT) is still forbidden.
OWN_CXX_OPERATORS = frozenset("""
    _Znwm _Znam _ZnwmRKSt9nothrow_t _ZnamRKSt9nothrow_t _ZnwmSt11align_val_t _ZnamSt11align_val_t
    _ZnwmSt11align_val_tRKSt9nothrow_t _ZnamSt11align_val_tRKSt9nothrow_t
    _ZdlPv _ZdaPv _ZdlPvm _ZdaPvm _ZdlPvRKSt9nothrow_t _ZdaPvRKSt9nothrow_t
    _ZdlPvSt11align_val_t _ZdaPvSt11align_val_t _ZdlPvmSt11align_val_t _ZdaPvmSt11align_val_t
    _ZdlPvSt11align_val_tRKSt9nothrow_t _ZdaPvSt11align_val_tRKSt9nothrow_t
""".split())

# Async-signal-safe functions: the table of signal-safety(7) (man-pages 6.03), which is POSIX.1's
# list (XSH 2.4.3) up to POSIX.1-2008 TC2. Not listed there, so not here: nanosleep, getpagesize,
# mincore, round, pthread_mutex_*, and of course every allocator function.
ASYNC_SIGNAL_SAFE = frozenset("""
    abort accept access aio_error aio_return aio_suspend alarm bind cfgetispeed cfgetospeed
    cfsetispeed cfsetospeed chdir chmod chown clock_gettime close connect creat dup dup2 execl
    execle execv execve _exit _Exit faccessat fchdir fchmod fchmodat fchown fchownat fcntl
    fdatasync fexecve ffs fork fstat fstatat fsync ftruncate futimens getegid geteuid getgid
    getgroups getpeername getpgrp getpid getppid getsockname getsockopt getuid htonl htons kill
    link linkat listen longjmp lseek lstat memccpy memchr memcmp memcpy memmove memset mkdir
    mkdirat mkfifo mkfifoat mknod mknodat ntohl ntohs open openat pause pipe poll
    posix_trace_event pselect pthread_kill pthread_self pthread_sigmask raise read readlink
    readlinkat recv recvfrom recvmsg rename renameat rmdir select sem_post send sendmsg sendto
    setgid setpgid setsid setsockopt setuid shutdown sigaction sigaddset sigdelset sigemptyset
    sigfillset sigismember siglongjmp signal sigpause sigpending sigprocmask sigqueue sigset
    sigsuspend sleep sockatmark socket socketpair stat stpcpy stpncpy strcat strchr strcmp strcpy
    strcspn strlen strncat strncmp strncpy strnlen strpbrk strrchr strspn strstr strtok_r symlink
    symlinkat tcdrain tcflow tcflush tcgetattr tcgetpgrp tcsendbreak tcsetattr tcsetpgrp time
    timer_getoverrun timer_gettime timer_settime times umask uname unlink unlinkat utime
    utimensat utimes wait waitpid wcpcpy wcpncpy wcscat wcschr wcscmp wcscpy wcscspn wcslen
    wcsncat wcsncmp wcsncpy wcsnlen wcspbrk wcsrchr wcsspn wcsstr wcstok wmemchr wmemcmp wmemcpy
    wmemmove wmemset write
""".split())

# Not on the list, yet safe in a signal handler: name -> reason. Keep this short and justified.
SIGNAL_SAFE_EXTRA = {
    "__errno_location":
        "how C reads and writes errno, which a handler must save and restore (signal-safety(7), 'errno'): "
        "the address of a thread-local variable",
    "__stack_chk_fail":
        "the stack protector's failure exit: reached only when the stack is already corrupt, and ends the process",
}

# Functions whose indirect calls are known and harmless: name -> reason.
ALLOWED_INDIRECT_CALLERS = {
    "buddy_system_usable_size":
        "calls glibc's malloc_usable_size through the pointer dlsym(RTLD_NEXT) returned (a libc function)",
    "system_mallinfo2":
        "calls glibc's mallinfo2 through the pointer dlsym(RTLD_NEXT) returned (a libc function)",
    "buddy_backtrace":
        "calls libunwind's unw_backtrace through the pointer dlsym returned (libunwind.so.8, loaded RTLD_LOCAL)",
    "buddy_call_corruption_hook":
        "calls a pool's EngineHooks.corruption; every hook is installed by a function the walk reaches, "
        "whose taking of the hook's address makes the hook's body part of the check",
    "buddy_call_segment_hook":
        "calls a pool's EngineHooks.segmentRemoved (installed and checked as the corruption hook is)",
    "retry_new":
        "after the pool failed, calls the next operator new (libstdc++'s, dlsym(RTLD_NEXT)): the standard's "
        "new_handler loop and std::bad_alloc, around malloc (this library's)",
    "retry_new_nothrow": "as retry_new, for the nothrow forms",
    "retry_new_aligned": "as retry_new, for the std::align_val_t forms",
    "retry_new_aligned_nothrow": "as retry_new, for the nothrow std::align_val_t forms",
    "buddy_report_chain_previous":
        "calls the signal handler the program installed before the library's (chained, as sigaction's contract asks)",
}


def is_project_swift_symbol(name):
    body = name[1:] if name.startswith(("_$s", "_$e")) else name
    if not body.startswith(("$s", "$e")):
        return False
    return any(f"{len(m)}{m}" in body for m in PROJECT_MODULES)


def forbidden_reason(name, external=False):
    """Why `name` must not be reachable, or None."""
    if name in ALLOWED_FUNCTIONS:
        return None
    if name.startswith(("swift_", "_swift_", "__swift")):
        return "Swift runtime entry"
    if name.startswith(SWIFT_PREFIXES) and not is_project_swift_symbol(name):
        return "Swift standard library / runtime code (not one of the project's modules)"
    if name.startswith("_Z") and not (name in OWN_CXX_OPERATORS and not external):
        return "C++ code (Swift runtime internals, operator new, ...)"
    if external and name.startswith(FORBIDDEN_EXTERNAL_PREFIXES):
        return "allocating runtime entry"
    return None
