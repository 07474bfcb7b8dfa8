/* churn.c — a moving target for live reads (scenario churn): started by truth after its END line, it keeps
   forking short-lived children (fork/exit), allocating and freeing memory (malloc+touch/free, mmap/munmap) and
   writing to the kernel log (/dev/kmsg) until the guest is killed. Usage: `churn` (names itself nf-churn). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void nap(long usec)
{
    struct timespec ts = { usec / 1000000, (usec % 1000000) * 1000 };
    nanosleep(&ts, NULL);
}

/* Children that live a few ms each, some with threads of their own ending as zombies for a moment. */
static void fork_loop(void)
{
    prctl(PR_SET_NAME, "nf-churn-fork", 0, 0, 0);
    for (unsigned long i = 0;; i++) {
        pid_t c = fork();
        if (c == 0) {
            prctl(PR_SET_NAME, (i & 1) ? "nf-churn-kid" : "nf-churn-kid2", 0, 0, 0);
            if (i % 3 == 0)
                nap(2000);
            _exit(0);
        }
        /* reap every other child late, so zombies come and go as well */
        if (i & 1)
            while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
        if (i % 64 == 0)
            nap(1000);
    }
}

static void alloc_loop(void)
{
    prctl(PR_SET_NAME, "nf-churn-mem", 0, 0, 0);
    for (unsigned long i = 0;; i++) {
        size_t len = (size_t)(1 + i % 8) << 20;
        char *p = malloc(len);
        if (p) {
            memset(p, (int)i, len);
            free(p);
        }
        void *m = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) {
            memset(m, 1, 4 << 20);
            munmap(m, 4 << 20);
        }
        if (i % 16 == 0)
            nap(1000);
    }
}

static void kmsg_loop(void)
{
    prctl(PR_SET_NAME, "nf-churn-kmsg", 0, 0, 0);
    int fd = open("/dev/kmsg", O_WRONLY);
    if (fd < 0)
        _exit(1);
    char line[160];
    for (unsigned long i = 0;; i++) {
        int n = snprintf(line, sizeof line, "<6>nf-churn: message %lu %.*s\n", i, (int)(i % 80), "................................................................................");
        (void)!write(fd, line, (size_t)n);
        if (i % 8 == 0)
            nap(500);
    }
}

int main(void)
{
    prctl(PR_SET_NAME, "nf-churn", 0, 0, 0);
    signal(SIGCHLD, SIG_DFL);
    void (*loops[])(void) = { fork_loop, alloc_loop, kmsg_loop };
    for (size_t i = 0; i < sizeof loops / sizeof loops[0]; i++)
        if (fork() == 0) {
            loops[i]();
            _exit(0);
        }
    for (;;)
        pause();
}
