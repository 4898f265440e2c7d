/* spawn: many short-lived processes, each with the allocator preloaded.
 *
 * Models a shell script or a build (make, gcc's driver, git's hooks): most
 * processes live for a millisecond, so what an allocator costs every process
 * at start (loading it, its constructors, its first segments and the pages
 * they touch) is most of what it costs. The parent runs its own binary as
 * each child (the children inherit LD_PRELOAD from the environment), one at
 * a time, and waits for it; a child allocates `allocs` blocks of 16 B..4 KiB
 * (log-uniform), stamps each, checks and frees every other one, and exits
 * holding the rest, as short programs do. The parent fails when a child
 * fails (its exit status, or 2 when it was killed).
 *
 * usage: spawn [children=400] [allocs=200] [seed=1]
 */
#include "common.h"
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

static int child(long allocs, uint64_t seed)
{
    rng_t r;
    rng_seed(&r, seed);
    void **p = xcalloc((size_t)allocs, sizeof *p);
    size_t *n = xcalloc((size_t)allocs, sizeof *n);
    for (long i = 0; i < allocs; i++) {
        n[i] = rng_log_uniform(&r, 16, 4096);
        p[i] = xmalloc(n[i]);
        pat_fill(p[i], n[i], seed + (uint64_t)i);
    }
    for (long i = 0; i < allocs; i += 2) {
        pat_check(p[i], n[i], seed + (uint64_t)i);
        free(p[i]);
    }
    return 0;
}

int main(int argc, char **argv)
{
    bench_name = "spawn";
    if (argc > 1 && strcmp(argv[1], "child") == 0)
        return child(arg_long(argc, argv, 2, 200), (uint64_t)arg_long(argc, argv, 3, 1));
    long children = arg_long(argc, argv, 1, 400);
    long allocs = arg_long(argc, argv, 2, 200);
    long seed = arg_long(argc, argv, 3, 1);
    char count[32], tag[32];
    snprintf(count, sizeof count, "%ld", allocs);
    for (long i = 0; i < children; i++) {
        snprintf(tag, sizeof tag, "%ld", seed + i);
        char *args[] = {argv[0], "child", count, tag, NULL};
        pid_t pid;
        int rc = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, args, environ);
        if (rc != 0) {
            fprintf(stderr, "spawn: posix_spawn: %s\n", strerror(rc));
            return 1;
        }
        int status;
        if (waitpid(pid, &status, 0) < 0) {
            perror("spawn: waitpid");
            return 1;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "spawn: child %ld %s %d\n", i, WIFEXITED(status) ? "exited with" : "killed by signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
        }
    }
    printf("spawn ok children=%ld allocs=%ld\n", children, allocs);
    return 0;
}
