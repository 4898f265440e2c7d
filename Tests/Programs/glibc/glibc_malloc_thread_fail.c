// The shape of glibc's malloc/tst-malloc-thread-fail.c: in a process with a small address-space
// limit (RLIMIT_AS), nine threads (eight plus the main thread) allocate until the allocator
// fails, then free everything. Each entry point is run on its own in a fresh child process:
// malloc, realloc (of a 16-byte block), valloc, pvalloc and calloc with sizes 144 and one page;
// aligned_alloc, memalign and posix_memalign with alignment 128 and sizes 512, one page and 17
// pages. Checked for every block: the alignment (max_align_t's, the page's, or the asked one),
// and calloc's zeroes; for every failure: the result is NULL (posix_memalign: returns ENOMEM)
// and errno is ENOMEM (posix_memalign sets it too, as glibc's does). A child that crashes,
// hangs (watchdog) or finds a wrong result fails the program, naming the entry point and size.
//
// Changed from the original: the limit is the child's address space at its start plus 128 MiB,
// not 200 MiB in all: an allocator (or a Swift runtime inside it) may reserve address space
// before main, and each allocator gets the same headroom to exhaust. `glibc_malloc_thread_fail
// MIB` sets the original's kind of fixed limit instead (MIB = 200 is the original's).
// Left out: mallopt(M_ARENA_MAX, 2), which keeps glibc's per-thread arenas (64 MiB of address
// space each) within the limit; it is called, for glibc's sake, and its result not checked.
#include "glibc_test.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdalign.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/wait.h>

enum function { with_malloc, with_realloc, with_aligned_alloc, with_memalign, with_posix_memalign, with_valloc,
                with_pvalloc, with_calloc, function_count };
static const char *const names[function_count] = {"malloc", "realloc", "aligned_alloc", "memalign",
                                                   "posix_memalign", "valloc", "pvalloc", "calloc"};
static const int takes_alignment[function_count] = {[with_aligned_alloc] = 1, [with_memalign] = 1,
                                                    [with_posix_memalign] = 1};
enum { thread_count = 8 };
static const size_t headroom = 128 << 20;
static size_t absolute_limit;   // argv[1] in MiB: the original's fixed limit instead (200)

static enum function function;
static size_t size, alignment, page;
static pthread_barrier_t start_barrier, end_barrier;

/// In the child: say what went wrong, with no allocation, and end the child.
static void child_fail(const char *what, int error) {
    char text[256];
    int n = snprintf(text, sizeof text, "FAIL %s: %s(size %zu, alignment %zu): %s (errno %d)\n", test_name,
                     names[function], size, alignment, what, error);
    if (n > 0) { ssize_t ignored = write(STDOUT_FILENO, text, (size_t)n); (void)ignored; }
    _exit(1);
}

__attribute__((noinline)) static void *zeroed(size_t n) { return calloc(1, n); }

/// One allocation with the current parameters: the block, or NULL once memory is exhausted.
static void *allocate(void) {
    void *p = NULL;
    size_t want = alignof(max_align_t);
    errno = 0;
    switch (function) {
    case with_malloc: p = malloc(size); break;
    case with_realloc: {
        void *small = realloc(NULL, 16);
        if (small == NULL) break;
        p = realloc(small, size);
        if (p == NULL) {
            int saved = errno;
            free(small);
            errno = saved;
        }
        break;
    }
    case with_aligned_alloc: p = aligned_alloc(alignment, size); want = alignment; break;
    case with_memalign: p = memalign(alignment, size); want = alignment; break;
    case with_posix_memalign: {
        int ret = posix_memalign(&p, alignment, size);
        want = alignment;
        if (ret != 0) {
            if (ret != ENOMEM) child_fail("posix_memalign returned an error other than ENOMEM", ret);
            if (errno != ENOMEM) child_fail("posix_memalign returned ENOMEM but errno is not ENOMEM", errno);
            if (p != NULL) child_fail("posix_memalign failed but set the pointer", 0);
            return NULL;
        }
        break;
    }
    case with_valloc: p = valloc(size); want = page; break;
    case with_pvalloc: p = pvalloc(size); want = page; break;
    case with_calloc: {
        unsigned char *z = zeroed(size);
        for (size_t i = 0; z && i < size; i++) if (z[i] != 0) child_fail("calloc gave a block with a non-zero byte", 0);
        p = z;
        break;
    }
    default: break;
    }
    if (p == NULL) {
        if (errno != ENOMEM) child_fail("failed without setting errno to ENOMEM", errno);
        return NULL;
    }
    if (((uintptr_t)p & (want - 1)) != 0) child_fail("gave a misaligned block", 0);
    return p;
}

struct node { struct node *next; };

static void *exhaust(void *arg) {
    (void)arg;
    int ret = pthread_barrier_wait(&start_barrier);
    if (ret != 0 && ret != PTHREAD_BARRIER_SERIAL_THREAD) child_fail("pthread_barrier_wait failed", ret);
    struct node *head = NULL;
    for (;;) {
        struct node *n = allocate();
        if (n == NULL) break;
        n->next = head;
        head = n;
    }
    ret = pthread_barrier_wait(&end_barrier);
    if (ret != 0 && ret != PTHREAD_BARRIER_SERIAL_THREAD) child_fail("pthread_barrier_wait failed", ret);
    while (head) {
        struct node *next = head->next;
        free(head);
        head = next;
    }
    return NULL;
}

static size_t address_space(void) {
    char text[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) return 0;
    text[n] = 0;
    const char *line = strstr(text, "VmSize:");
    return line ? (size_t)strtoull(line + 7, NULL, 10) * 1024 : 0;
}

static void child(void) {
    alarm(20);
    struct rlimit limit;
    if (getrlimit(RLIMIT_AS, &limit) != 0) child_fail("getrlimit failed", errno);
    size_t target = absolute_limit ? absolute_limit : address_space() + headroom;
    if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur > target) {
        limit.rlim_cur = target;
        if (setrlimit(RLIMIT_AS, &limit) != 0) child_fail("setrlimit failed", errno);
    }
    pthread_attr_t small_stack;
    pthread_attr_init(&small_stack);
    size_t stack = (256 * 1024 / page) * page;
    pthread_attr_setstacksize(&small_stack, stack < 4 * page ? 8 * page : stack);
    pthread_t ids[thread_count];
    for (int i = 0; i < thread_count; i++) {
        int ret = pthread_create(&ids[i], &small_stack, exhaust, NULL);
        if (ret != 0) child_fail("pthread_create failed", ret);
    }
    exhaust(NULL);
    for (int i = 0; i < thread_count; i++) pthread_join(ids[i], NULL);
    _exit(0);
}

static void run(void) {
    fflush(stdout);
    pid_t pid = fork();
    REQUIRE(pid >= 0, "fork failed: %s", strerror(errno));
    if (pid == 0) child();
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid, "waitpid failed: %s", strerror(errno));
    const char *how = WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ? " (the child's watchdog: a hang)" : "";
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s(size %zu, alignment %zu): child status %#x%s%s",
          names[function], size, alignment, status, WIFSIGNALED(status) ? ", signal " : "",
          WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "");
    if (*how) printf("%s\n", how);
}

static void run_functions(void) {
    for (int f = 0; f < function_count; f++) {
        if (takes_alignment[f] != (alignment != 0)) continue;
        function = (enum function)f;
        run();
    }
}

int main(int argc, char **argv) {
    test_start("glibc_malloc_thread_fail", 120);
    if (argc > 1) absolute_limit = (size_t)atol(argv[1]) << 20;
    mallopt(M_ARENA_MAX, 2);
    page = (size_t)sysconf(_SC_PAGESIZE);
    pthread_barrier_init(&start_barrier, NULL, thread_count + 1);
    pthread_barrier_init(&end_barrier, NULL, thread_count + 1);

    alignment = 0;
    size = 144;
    run_functions();
    size = page;
    run_functions();
    alignment = 128;
    size = 512;
    run_functions();
    size = page;
    run_functions();
    size = 17 * page;
    run_functions();
    return test_finish();
}
