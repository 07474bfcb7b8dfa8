/* zombie.c — a parent that never reaps its exited child, leaving a task in state Z: `zombie PARENT_NAME CHILD_NAME`. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *parent_name = argc > 1 ? argv[1] : "nf-zparent";
    const char *child_name = argc > 2 ? argv[2] : "nf-zombie";
    prctl(PR_SET_NAME, parent_name, 0, 0, 0);

    pid_t child = fork();
    if (child == 0) {
        prctl(PR_SET_NAME, child_name, 0, 0, 0);
        _exit(7);
    }
    if (child < 0) {
        perror("zombie: fork");
        return 1;
    }
    /* Wait until the child has exited without reaping it (WNOWAIT leaves it a zombie). */
    siginfo_t info;
    waitid(P_PID, child, &info, WEXITED | WNOWAIT);

    char path[64];
    snprintf(path, sizeof path, "/run/nf-ready/%s", parent_name);
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    if (fd >= 0)
        close(fd);
    for (;;)
        pause();
}
