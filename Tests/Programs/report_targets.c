// report_targets: BUDDY_REPORT naming a symlink, a FIFO or a character device (run by
// tools/adversarial.sh).
//
//   report_targets symlink|fifo|device
//
// Makes the target in a fresh folder, runs itself (the preload is inherited) with BUDDY_REPORT
// set to it, and checks afterwards that the target is still what it was (the report went
// through it, as open(2) of the path would), not replaced by a regular file:
//   symlink: PATH -> report.txt; PATH stays a symlink and report.txt holds the exit report;
//   fifo:    this process reads the FIFO while the child runs and must receive the report;
//   device:  a private node of /dev/null (mknod c 1 3, as root); it stays a character device.
// Exit 0 and "report_targets: ok MODE" on success; 1 with "report_targets: FAIL ..." otherwise.
// The folder is made in $TMPDIR (else /tmp) and removed on every way out.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(const char *mode, const char *what) {
    printf("report_targets: FAIL %s: %s\n", mode, what);
    return 1;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--child") == 0) {
        for (int i = 0; i < 100; i++) free(malloc((size_t)i * 10 + 1));
        return 0; // the exit report goes to BUDDY_REPORT
    }
    if (argc != 2) { fprintf(stderr, "usage: report_targets symlink|fifo|device\n"); return 2; }
    const char *mode = argv[1];
    if (strcmp(mode, "symlink") != 0 && strcmp(mode, "fifo") != 0 && strcmp(mode, "device") != 0) return 2;
    const char *tmp = getenv("TMPDIR");
    char dir[256];
    snprintf(dir, sizeof dir, "%s/buddy-report-targets.XXXXXX", tmp != NULL && *tmp != 0 ? tmp : "/tmp");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 2; }
    char path[512], target[512];
    snprintf(path, sizeof path, "%s/report", dir);
    snprintf(target, sizeof target, "%s/report.txt", dir);
    int fifo = -1;
    int rc = 0;
    if (strcmp(mode, "symlink") == 0) {
        if (symlink("report.txt", path) != 0) { perror("symlink"); rc = 2; goto out; }
    } else if (strcmp(mode, "fifo") == 0) {
        if (mkfifo(path, 0600) != 0) { perror("mkfifo"); rc = 2; goto out; }
        fifo = open(path, O_RDONLY | O_NONBLOCK);
        if (fifo < 0) { perror("open fifo"); rc = 2; goto out; }
    } else {
        if (mknod(path, S_IFCHR | 0600, makedev(1, 3)) != 0) {
            printf("report_targets: ok device (not checked: mknod: %s)\n", strerror(errno));
            goto out;
        }
    }
    setenv("BUDDY_REPORT", path, 1);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", argv[0], "--child", mode, (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    unsetenv("BUDDY_REPORT");
    char buf[65536];
    ssize_t got = 0;
    struct stat st;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) { rc = fail(mode, "the child failed"); goto out; }
    if (lstat(path, &st) != 0) { rc = fail(mode, "the target is gone"); goto out; }
    if (strcmp(mode, "symlink") == 0) {
        if (!S_ISLNK(st.st_mode)) { rc = fail(mode, "the symlink was replaced by another file"); goto out; }
        int fd = open(target, O_RDONLY);
        if (fd >= 0) { got = read(fd, buf, sizeof buf - 1); close(fd); }
        if (got <= 0 || strncmp(buf, "BuddyMalloc report", 18) != 0) { rc = fail(mode, "the symlink's target holds no report"); goto out; }
    } else if (strcmp(mode, "fifo") == 0) {
        if (!S_ISFIFO(st.st_mode)) { rc = fail(mode, "the FIFO was replaced by another file"); goto out; }
        got = read(fifo, buf, sizeof buf - 1);
        if (got <= 0 || strncmp(buf, "BuddyMalloc report", 18) != 0) { rc = fail(mode, "no report came through the FIFO"); goto out; }
    } else {
        if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) { rc = fail(mode, "the device node was replaced by another file"); goto out; }
    }
    printf("report_targets: ok %s\n", mode);
out:
    if (fifo >= 0) close(fifo);
    unlink(path);
    unlink(target);
    snprintf(path, sizeof path, "%s/report.tmp", dir);
    unlink(path);
    rmdir(dir);
    return rc;
}
