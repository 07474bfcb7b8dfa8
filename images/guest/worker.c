/* worker.c — a named guest process with a known resident set: `worker NAME MiB [threads] [ignored args…]`;
   with NF_MLOCK set in its environment it also mlock()s all it has mapped (VmLck, ps STAT "L"). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#define PAGE 4096UL

static char base_name[16];

/* Each extra thread names itself NAME/k (truncated to the kernel's 15 characters) and sleeps. */
static void *idle_thread(void *arg)
{
    char name[16];
    snprintf(name, sizeof name, "%.10s/%ld", base_name, (long)arg);
    prctl(PR_SET_NAME, name, 0, 0, 0);
    for (;;)
        pause();
    return NULL;
}

/* Write one word into every page so each page is really resident; read it back into a checksum so
   the compiler cannot prove the stores dead. The pattern is mostly zero bytes: it compresses well. */
static unsigned long touch(size_t bytes)
{
    volatile unsigned long *mem = malloc(bytes);
    if (!mem) {
        perror("worker: malloc");
        exit(1);
    }
    size_t pages = bytes / PAGE;
    for (size_t i = 0; i < pages; i++)
        mem[i * (PAGE / sizeof *mem)] = 0x6e66000000000000UL | i;
    unsigned long sum = 0;
    for (size_t i = 0; i < pages; i++)
        sum += mem[i * (PAGE / sizeof *mem)];
    return sum;
}

/* Tell init we are ready by creating /run/nf-ready/NAME. */
static void announce_ready(const char *name)
{
    char path[64];
    snprintf(path, sizeof path, "/run/nf-ready/%s", name);
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    if (fd >= 0)
        close(fd);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: worker NAME MiB [threads] [ignored args...]\n");
        return 2;
    }
    snprintf(base_name, sizeof base_name, "%s", argv[1]);
    prctl(PR_SET_NAME, base_name, 0, 0, 0);

    size_t mib = strtoul(argv[2], NULL, 10);
    long threads = argc > 3 ? strtol(argv[3], NULL, 10) : 0;

    unsigned long sum = mib ? touch(mib << 20) : 0;
    fprintf(stderr, "worker %s: %zu MiB touched, checksum %lx\n", base_name, mib, sum);
    if (getenv("NF_MLOCK") && mlockall(MCL_CURRENT) != 0)
        perror("worker: mlockall");

    for (long k = 1; k <= threads; k++) {
        pthread_t t;
        if (pthread_create(&t, NULL, idle_thread, (void *)k) != 0) {
            perror("worker: pthread_create");
            return 1;
        }
    }
    /* Give the threads a moment to rename themselves before we say we are ready. */
    if (threads)
        usleep(100000);
    announce_ready(base_name);
    for (;;)
        pause();
}
