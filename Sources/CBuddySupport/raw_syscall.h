// System calls issued by the library's own instructions, not through libc's wrappers.
//
// Why: the report signal handler may run on top of any code, and whatever it reaches must be
// async-signal-safe. A libc function is only as safe as its documentation says (POSIX's list,
// signal-safety(7)); a system call instruction is safe by construction: no lock, no allocation,
// no errno (the kernel's -errno comes back as the result). tools/check-malloc-path.py
// --signal-safe sees no call here, only the instruction. Private to CBuddySupport (not in
// include/): Swift never issues system calls itself.
#ifndef BUDDY_RAW_SYSCALL_H
#define BUDDY_RAW_SYSCALL_H

#include <sys/syscall.h>

#if defined(__x86_64__)
// The x86-64 Linux convention: number in rax, arguments in rdi, rsi, rdx, r10; the instruction
// clobbers rcx (return address) and r11 (flags).
__attribute__((always_inline)) static inline long buddy_raw_syscall4(long number, long a, long b, long c, long d) {
    long result;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall"
                     : "=a"(result)
                     : "a"(number), "D"(a), "S"(b), "d"(c), "r"(r10)
                     : "rcx", "r11", "memory");
    return result;
}
#elif defined(__aarch64__)
// The AArch64 Linux convention: number in x8, arguments and result in x0..x3.
__attribute__((always_inline)) static inline long buddy_raw_syscall4(long number, long a, long b, long c, long d) {
    register long x8 __asm__("x8") = number;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
    return x0;
}
#else
// Elsewhere, libc's syscall(2): a thin wrapper, but it sets errno, so give the caller the same
// -errno result as the instruction would (and leave errno as it was).
#include <errno.h>
#include <unistd.h>
__attribute__((always_inline)) static inline long buddy_raw_syscall4(long number, long a, long b, long c, long d) {
    int saved = errno;
    long result = syscall(number, a, b, c, d);
    if (result == -1) result = -errno;
    errno = saved;
    return result;
}
#endif

#endif
