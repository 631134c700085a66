// The floor of an ownership change: a minimal walker that makes only the syscalls no safe
// walk can avoid, statx (AT_SYMLINK_NOFOLLOW) and fchownat by name, relative to each
// directory's descriptor, one thread, no checks at all. scripts/bench-migrate times it
// against `chown -R` on the same tree (the "floor" row), so the table shows how close the
// engine comes to the kernel work it cannot avoid.
// Usage: bench-floor ROOT UID GID   (as root; every entry, ROOT included, becomes UID:GID)
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned uid, gid;
static unsigned long entries;

static void walk(int dir) {
    DIR *d = fdopendir(dir);
    if (!d) {
        perror("fdopendir");
        exit(1);
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        struct statx st;
        if (statx(dirfd(d), e->d_name, AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_UID | STATX_GID, &st)) {
            perror(e->d_name);
            exit(1);
        }
        if (fchownat(dirfd(d), e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW)) {
            perror(e->d_name);
            exit(1);
        }
        entries++;
        if (S_ISDIR(st.stx_mode)) {
            int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                perror(e->d_name);
                exit(1);
            }
            walk(sub);
        }
    }
    closedir(d);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s ROOT UID GID\n", argv[0]);
        return 2;
    }
    uid = strtoul(argv[2], 0, 10);
    gid = strtoul(argv[3], 0, 10);
    int root = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0 || fchownat(root, "", uid, gid, AT_EMPTY_PATH)) {
        perror(argv[1]);
        return 1;
    }
    walk(root);
    printf("%lu entries\n", entries + 1);
    return 0;
}
