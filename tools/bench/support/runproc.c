/* runproc: run one program and report its exit status, wall time and rusage.
 *
 * bench.py starts every measured program through this small helper instead
 * of forking it directly: on Linux a child's ru_maxrss includes the RSS of
 * the process it was forked from (the mm that exec replaced), which for a
 * Python parent is ~40 MB and would swamp the numbers. Forking from this
 * tiny process keeps that floor at ~1 MB.
 *
 * usage: runproc RESULT_FILE PROGRAM [ARGS...]
 *
 * If BENCH_PRELOAD is set, it is removed and becomes LD_PRELOAD for PROGRAM
 * only (runproc itself never runs under the allocator being measured).
 * Right after the fork, the child's pid is written to RESULT_FILE.pid.
 * When the child has exited, RESULT_FILE receives one line:
 *   exit <code> signal <sig> maxrss_kb <n> wall_s <s> utime_s <s> stime_s <s>
 * runproc exits 0 when it could report, 125 on an internal error, 127 if
 * PROGRAM could not be executed (also reported as exit 127).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double tv(struct timeval t)
{
    return (double)t.tv_sec + (double)t.tv_usec * 1e-6;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: runproc RESULT_FILE PROGRAM [ARGS...]\n");
        return 125;
    }
    const char *result = argv[1];
    char pidfile[4096];
    snprintf(pidfile, sizeof pidfile, "%s.pid", result);

    double t0 = now();
    pid_t pid = fork();
    if (pid < 0) {
        perror("runproc: fork");
        return 125;
    }
    if (pid == 0) {
        const char *pre = getenv("BENCH_PRELOAD");
        if (pre) {
            if (*pre) setenv("LD_PRELOAD", pre, 1);
            unsetenv("BENCH_PRELOAD");
        }
        execvp(argv[2], argv + 2);
        fprintf(stderr, "runproc: cannot execute %s: %s\n", argv[2],
                strerror(errno));
        _exit(127);
    }
    FILE *pf = fopen(pidfile, "w");
    if (pf) {
        fprintf(pf, "%d\n", (int)pid);
        fclose(pf);
    }
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("runproc: wait4");
            return 125;
        }
    }
    double wall = now() - t0;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    FILE *f = fopen(result, "w");
    if (!f) {
        perror("runproc: result file");
        return 125;
    }
    fprintf(f, "exit %d signal %d maxrss_kb %ld wall_s %.6f utime_s %.6f "
               "stime_s %.6f\n",
            code, sig, ru.ru_maxrss, wall, tv(ru.ru_utime), tv(ru.ru_stime));
    if (fclose(f) != 0) return 125;
    return 0;
}
