// fork() while one thread flushes every stream and another reads lines (the shape of glibc's
// tst-malloc-fork-deadlock, glibc bug 19431, written for this project).
//
//   fork_stdio SECONDS
//
// A reader thread calls getline on a file, which holds the FILE's lock while it calls malloc
// and realloc; a flusher thread calls fflush(NULL), which holds the stream list's lock while it
// waits for each FILE's lock; the main thread forks. An allocator whose fork handler takes its
// lock before fork takes the stream list's lock closes a cycle: fork waits for the list, the
// flusher for the FILE, the reader (in realloc) for the allocator. A deadlock shows as a hang:
// the caller's time-out. Exit 0 and "fork_stdio: ok N" (forks) on success. The file is made in
// $TMPDIR (else /tmp) and unlinked as soon as the reader's stream is open, so a run killed by its
// time-out leaves no file behind.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile int stop;
static void *reader(void *arg) {
    FILE *f = arg;
    void *keep[64] = {0};
    unsigned k = 0;
    while (!stop) {
        char *line = NULL;
        size_t n = 0;
        // A fresh buffer each time: getline mallocs, then reallocs as the line grows, all while
        // holding f's lock.
        if (getline(&line, &n, f) < 0) rewind(f);
        // Keep some lines alive a while, so that the pool's caches overflow and refill (the
        // paths that take its lock).
        free(keep[k % 64]);
        keep[k++ % 64] = line;
    }
    for (int i = 0; i < 64; i++) free(keep[i]);
    fclose(f);
    return NULL;
}

static void *flusher(void *arg) {
    (void)arg;
    while (!stop) fflush(NULL);
    return NULL;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    const char *tmp = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/fork_stdio.XXXXXX", tmp != NULL && *tmp != 0 ? tmp : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) { perror("mkstemp"); return 2; }
    FILE *w = fdopen(fd, "w");
    // Lines of 1 B to 256 KiB: getline's buffer grows through every size class.
    unsigned state = 1;
    for (int i = 0; i < 400; i++) {
        state = state * 1103515245u + 12345u;
        size_t length = 1 + (state >> 8) % ((size_t)1 << (i % 19));
        for (size_t j = 0; j < length; j++) fputc('a' + (int)(j % 26), w);
        fputc('\n', w);
    }
    fclose(w);
    FILE *in = fopen(path, "r");
    unlink(path);
    if (in == NULL) { perror("fopen"); return 2; }

    pthread_t r, f;
    pthread_create(&r, NULL, reader, in);
    pthread_create(&f, NULL, flusher, NULL);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    long forks = 0;
    for (;;) {
        pid_t pid = fork();
        if (pid == 0) _exit(0);
        if (pid < 0) { perror("fork"); return 2; }
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        forks++;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) * 1e-9 > seconds) break;
    }
    stop = 1;
    pthread_join(r, NULL);
    pthread_join(f, NULL);
    printf("fork_stdio: ok %ld\n", forks);
    return 0;
}
