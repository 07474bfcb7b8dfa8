/* spinner.c — a guest process that is always runnable (state R) so the load average is not zero: `spinner NAME`. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "nf-spin";
    prctl(PR_SET_NAME, name, 0, 0, 0);

    char path[64];
    snprintf(path, sizeof path, "/run/nf-ready/%s", name);
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    if (fd >= 0)
        close(fd);

    volatile unsigned long counter = 0;
    for (;;)
        counter++;
}
