// The allocator must not install signal handlers in its host (the Swift runtime's crash
// backtracer would, with the dynamic stdlib): after the library has initialised and served
// allocations, every fatal signal still has its default disposition.
//
//   signals [--any] [--install-control]
//
// Prints one line per signal ("SIGSEGV default" or "SIGSEGV HANDLED by 0x...") and exits 0 when
// all are default, 1 otherwise, 3 when BuddyMalloc is not the process's malloc (unless --any).
// --install-control installs a SIGSEGV handler first: the check must then fail (exit 1),
// which proves it can see a handler.
#define _GNU_SOURCE
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void handler(int sig) { (void)sig; }

int main(int argc, char **argv) {
    int any = 0, control = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--any") == 0) any = 1;
        else if (strcmp(argv[i], "--install-control") == 0) control = 1;
    }
    // Exercise the allocator first: its lazy initialisation (options, pool, atfork) has run.
    void *blocks[64];
    for (int i = 0; i < 64; i++) blocks[i] = malloc((size_t)(i * 97 + 1));
    for (int i = 0; i < 64; i++) free(blocks[i]);
    free(malloc(3 * 1024 * 1024));
    void *probe = malloc(100);
    size_t usable = malloc_usable_size(probe);
    free(probe);
    if (!any && usable != 128) {
        printf("not running under BuddyMalloc (malloc_usable_size(malloc(100)) = %zu)\n", usable);
        return 3;
    }
    if (control) signal(SIGSEGV, handler);

    static const struct { int sig; const char *name; } signals[] = {
        {SIGSEGV, "SIGSEGV"}, {SIGBUS, "SIGBUS"}, {SIGILL, "SIGILL"},
        {SIGABRT, "SIGABRT"}, {SIGFPE, "SIGFPE"}, {SIGTRAP, "SIGTRAP"},
    };
    int handled = 0;
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        struct sigaction current;
        memset(&current, 0, sizeof current);
        if (sigaction(signals[i].sig, NULL, &current) != 0) {
            printf("%s sigaction failed\n", signals[i].name);
            handled++;
            continue;
        }
        int is_default = !(current.sa_flags & SA_SIGINFO) && current.sa_handler == SIG_DFL;
        if (is_default) {
            printf("%s default\n", signals[i].name);
        } else {
            handled++;
            void *fn = (current.sa_flags & SA_SIGINFO) ? (void *)current.sa_sigaction : (void *)current.sa_handler;
            printf("%s HANDLED by %p (flags 0x%x)\n", signals[i].name, fn, (unsigned)current.sa_flags);
        }
    }
    // An alternate signal stack is how crash handlers prepare for stack overflows.
    stack_t alt;
    if (sigaltstack(NULL, &alt) == 0 && !(alt.ss_flags & SS_DISABLE)) {
        printf("sigaltstack INSTALLED (%zu bytes)\n", alt.ss_size);
        handled++;
    } else {
        printf("sigaltstack none\n");
    }
    return handled ? 1 : 0;
}
