/* asuser.c — run a program as another uid/gid with no supplementary groups: `asuser UID GID PROGRAM [ARGS…]`. */
#define _GNU_SOURCE
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: asuser UID GID PROGRAM [ARGS...]\n");
        return 2;
    }
    uid_t uid = (uid_t)strtoul(argv[1], NULL, 10);
    gid_t gid = (gid_t)strtoul(argv[2], NULL, 10);
    if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
        perror("asuser: dropping privileges");
        return 1;
    }
    execv(argv[3], argv + 3);
    perror("asuser: exec");
    return 127;
}
