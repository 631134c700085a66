// What each syscall of a safe ownership change costs on this machine, one thread, warm cache,
// per file of a scripts/bench-migrate tree (ROOT/tNNNN/dNNNNNN/fN): the budget behind the
// engine's ratio to `chown -R`. Prints a Markdown table. Built and run by bench-migrate.
// Usage: bench-syscalls ROOT FILES UID   (as root; every file owned by UID:UID, left so)
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_listxattrat
#define SYS_listxattrat 465
#endif
#define CHUNK 8000 /* pins held at once: under a 20,000-descriptor limit */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

enum { STAT_NAME, LIST_NAME, OPENAT2, OPENAT, STAT_FD, LIST_PROC, CHOWN_FD, CLOSE, CHOWN_NAME, NOP, KINDS };
static const char *what[KINDS] = {
    "statx by name", "listxattrat by name", "openat2 O_PATH (pin)", "openat O_PATH (pin)",
    "statx of the pin", "listxattr of the pin (/proc/self/fd/N)", "fchownat of the pin",
    "close of the pin", "fchownat by name (what chown -R makes)", "getppid (a syscall's floor)",
};

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s ROOT FILES UID\n", argv[0]);
        return 2;
    }
    int want = atoi(argv[2]), uid = atoi(argv[3]), n = 0;
    int *dirs = malloc(want * sizeof(int)), *pins = malloc(want * sizeof(int));
    char(*names)[32] = malloc(want * 32);
    DIR *top = opendir(argv[1]);
    if (!top) { perror(argv[1]); return 1; }
    struct dirent *t, *m, *l;
    while (n < want && (t = readdir(top))) {
        if (t->d_name[0] != 't') continue;
        int tfd = openat(dirfd(top), t->d_name, O_RDONLY | O_DIRECTORY);
        DIR *mid = fdopendir(tfd);
        while (n < want && (m = readdir(mid))) {
            if (m->d_name[0] != 'd') continue;
            int dfd = openat(dirfd(mid), m->d_name, O_RDONLY | O_DIRECTORY);
            DIR *leaf = fdopendir(dup(dfd));
            while (n < want && (l = readdir(leaf))) {
                if (l->d_name[0] != 'f') continue;
                dirs[n] = dfd;
                snprintf(names[n], 32, "%.31s", l->d_name);
                n++;
            }
            closedir(leaf);
        }
        closedir(mid);
    }
    struct statx sx;
    struct open_how how = {.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV};
    double sum[KINDS] = {0}, t0;
    char proc[64];
#define TIME(kind, body) do { t0 = now(); for (int i = c; i < e; i++) { body; } sum[kind] += now() - t0; } while (0)
    // Warm the caches first: the table is about the syscalls, not the disk.
    for (int i = 0; i < n; i++) {
        statx(dirs[i], names[i], AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME, &sx);
        syscall(SYS_listxattrat, dirs[i], names[i], AT_SYMLINK_NOFOLLOW, NULL, 0);
    }
    for (int c = 0; c < n; c += CHUNK) {
        int e = c + CHUNK < n ? c + CHUNK : n;
        TIME(STAT_NAME, statx(dirs[i], names[i], AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME, &sx));
        TIME(LIST_NAME, syscall(SYS_listxattrat, dirs[i], names[i], AT_SYMLINK_NOFOLLOW, NULL, 0));
        TIME(OPENAT2, pins[i] = syscall(SYS_openat2, dirs[i], names[i], &how, sizeof how));
        TIME(CLOSE, close(pins[i]));
        TIME(OPENAT, pins[i] = openat(dirs[i], names[i], O_PATH | O_NOFOLLOW | O_CLOEXEC));
        TIME(STAT_FD, statx(pins[i], "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME, &sx));
        TIME(LIST_PROC, snprintf(proc, sizeof proc, "/proc/self/fd/%d", pins[i]); listxattr(proc, NULL, 0));
        TIME(CHOWN_FD, if (fchownat(pins[i], "", uid + 100000, uid + 100000, AT_EMPTY_PATH)) { perror("fchownat"); return 1; });
        for (int i = c; i < e; i++) close(pins[i]);
        TIME(CHOWN_NAME, if (fchownat(dirs[i], names[i], uid, uid, AT_SYMLINK_NOFOLLOW)) { perror("fchownat"); return 1; });
        TIME(NOP, getppid());
    }
    printf("| syscall (%d files, one thread, warm) | microseconds per file |\n| --- | --- |\n", n);
    for (int k = 0; k < KINDS; k++) printf("| %s | %.2f |\n", what[k], sum[k] / n * 1e6);
    return 0;
}
