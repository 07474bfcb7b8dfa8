/* hang.c — helpers for the hung guest (build-guest.mjs --scenario hung).
   `hang now` prints CLOCK_BOOTTIME in ns (init's timestamps for the writers it starts).
   `hang locker FILE GO_PATH OUT_JSON` builds a chain of tasks blocked on kernel locks behind a frozen fs:
     nf-lock/fault   (thread)  read()s from a pipe into a MAP_SHARED mapping of FILE: pipe_read takes the
                               pipe's mutex, and the copy write-faults on the mapping under the mm's mmap_lock
                               (read), then waits in ext4_page_mkwrite → sb_start_pagefault for the thaw;
     nf-lock-pipewr  (process) write()s to that pipe: waits for the pipe mutex (D, mutex_lock);
     nf-lock/munmap  (thread)  munmap()s the mapping's last page: waits for mmap_lock (write) — or, where the
                               fault holds only the VMA's own lock, holds mmap_lock and waits for that;
     nf-lock-cmdline (process) reads /proc/LOCKER/cmdline: waits for mmap_lock (read), queued behind the writer.
   It waits for GO_PATH (init creates it once the fs is frozen), releases them one by one, checks each is in
   D before releasing the next, and writes what it did (tids, times, pipe inode) as JSON to OUT_JSON.
   After the chain is built the main thread must not fault (its mm's mmap_lock is contended): everything it
   touches later is faulted in and locked first (mlockall), and it only uses static buffers. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAP_BYTES (64 * 1024)
#define PIPE_BYTES 16

static long long boottime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "hang: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ---- the shared state (static: faulted in and locked before anything blocks) ---- */

static char *mapping;                /* MAP_SHARED, FILE */
static int victim[2];                /* the pipe whose mutex nf-lock/fault holds */
static int go_fault[2], go_munmap[2], go_pipewr[2], go_cmdline[2]; /* one-byte release signals */
static volatile pid_t fault_tid, munmap_tid;
static volatile long long fault_at, munmap_at;
static char scratch[8192];
static char json[8192];

static void wait_go(int fd)
{
    char c;
    while (read(fd, &c, 1) < 0 && errno == EINTR)
        ;
}

static void go(int fd) { (void)!write(fd, "g", 1); }

static void *fault_thread(void *arg)
{
    (void)arg;
    prctl(PR_SET_NAME, "nf-lock/fault", 0, 0, 0);
    fault_tid = (pid_t)syscall(SYS_gettid);
    wait_go(go_fault[0]);
    fault_at = boottime_ns();
    /* Copies PIPE_BYTES into the shared mapping while holding the pipe mutex: the write fault needs
       page_mkwrite, which waits for the frozen fs. */
    (void)!read(victim[0], mapping, PIPE_BYTES);
    return NULL;
}

static void *munmap_thread(void *arg)
{
    (void)arg;
    prctl(PR_SET_NAME, "nf-lock/munmap", 0, 0, 0);
    munmap_tid = (pid_t)syscall(SYS_gettid);
    wait_go(go_munmap[0]);
    munmap_at = boottime_ns();
    munmap(mapping + MAP_BYTES - 4096, 4096);
    return NULL;
}

/* A child process released by its go pipe: records its start time in a pipe back to the parent, then blocks. */
static pid_t child(const char *name, int go_fd, int report_fd, void (*block)(pid_t), pid_t locker)
{
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        prctl(PR_SET_NAME, name, 0, 0, 0);
        wait_go(go_fd);
        long long at = boottime_ns();
        (void)!write(report_fd, &at, sizeof at);
        block(locker);
        _exit(0);
    }
    return pid;
}

static void block_pipe_write(pid_t locker)
{
    (void)locker;
    (void)!write(victim[1], "x", 1);
}

static void block_cmdline_read(pid_t locker)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)locker);
    int fd = open(path, O_RDONLY);
    if (fd >= 0)
        (void)!read(fd, buf, sizeof buf);
}

/* The state letter of /proc/PID/task/TID/stat (after the last ')'), read into a static buffer. */
static char task_state(pid_t pid, pid_t tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return '?';
    ssize_t n = read(fd, scratch, sizeof scratch - 1);
    close(fd);
    if (n <= 0)
        return '?';
    scratch[n] = 0;
    char *close_paren = strrchr(scratch, ')');
    return close_paren && close_paren[1] == ' ' ? close_paren[2] : '?';
}

/* Waits up to ~10 s for a task to sleep in D; returns 1 if it did. */
static int wait_for_d(pid_t pid, pid_t tid)
{
    for (int tries = 0; tries < 500; tries++) {
        if (task_state(pid, tid) == 'D')
            return 1;
        usleep(20000);
    }
    return 0;
}

static void touch_stack(void)
{
    volatile char pad[128 * 1024];
    for (size_t i = 0; i < sizeof pad; i += 4096)
        pad[i] = 1;
}

static _Noreturn void locker(const char *file, const char *go_path, const char *out_json)
{
    prctl(PR_SET_NAME, "nf-locker", 0, 0, 0);
    pid_t self = getpid();

    int fd = open(file, O_RDWR);
    if (fd < 0)
        die(file);
    mapping = mmap(NULL, MAP_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mapping == MAP_FAILED)
        die("mmap");
    if (pipe(victim) || pipe(go_fault) || pipe(go_munmap) || pipe(go_pipewr) || pipe(go_cmdline))
        die("pipe");
    int reports[2];
    if (pipe(reports))
        die("pipe");
    struct stat st;
    fstat(victim[0], &st);
    unsigned long pipe_ino = (unsigned long)st.st_ino;

    /* Processes and threads first: fork and pthread_create take mmap_lock for write. */
    pid_t pipewr = child("nf-lock-pipewr", go_pipewr[0], reports[1], block_pipe_write, self);
    pid_t cmdline = child("nf-lock-cmdline", go_cmdline[0], reports[1], block_cmdline_read, self);
    pthread_t a, b;
    if (pthread_create(&a, NULL, fault_thread, NULL) || pthread_create(&b, NULL, munmap_thread, NULL))
        die("pthread_create");
    while (!fault_tid || !munmap_tid)
        usleep(10000);
    touch_stack();
    (void)boottime_ns();
    (void)task_state(self, self);
    if (mlockall(MCL_CURRENT) != 0)
        fprintf(stderr, "hang: mlockall: %s (continuing)\n", strerror(errno));

    char ready[96];
    snprintf(ready, sizeof ready, "/run/nf-ready/nf-locker");
    close(open(ready, O_CREAT | O_WRONLY, 0644));
    for (int tries = 0; access(go_path, F_OK) != 0; tries++) {
        if (tries > 6000)
            die("waiting for the frozen fs");
        usleep(20000);
    }

    /* Data for the reader, then the chain, one link at a time. */
    (void)!write(victim[1], "0123456789abcdef", PIPE_BYTES);
    go(go_fault[1]);
    int ok_fault = wait_for_d(self, fault_tid);
    long long pipewr_at = 0, cmdline_at = 0;
    go(go_pipewr[1]);
    (void)!read(reports[0], &pipewr_at, sizeof pipewr_at);
    int ok_pipewr = wait_for_d(pipewr, pipewr);
    go(go_munmap[1]);
    int ok_munmap = wait_for_d(self, munmap_tid);
    go(go_cmdline[1]);
    (void)!read(reports[0], &cmdline_at, sizeof cmdline_at);
    int ok_cmdline = wait_for_d(cmdline, cmdline);

    int n = snprintf(json, sizeof json,
        "{\"locker_pid\": %d, \"mapped_file\": \"%s\", \"pipe_ino\": %lu, \"all_in_d\": %s,\n"
        " \"tasks\": [\n"
        "  {\"role\": \"fault\", \"pid\": %d, \"tid\": %d, \"comm\": \"nf-lock/fault\", \"blocked_at_boottime_ns\": %lld, \"in_d\": %s,"
        " \"syscall\": \"read(pipe) into a MAP_SHARED page of the mapped file\", \"holds\": [\"pipe_mutex\", \"mmap_lock:read\"],"
        " \"waits_for\": \"sb_freeze\", \"held_by_tid\": null},\n"
        "  {\"role\": \"pipe_writer\", \"pid\": %d, \"tid\": %d, \"comm\": \"nf-lock-pipewr\", \"blocked_at_boottime_ns\": %lld, \"in_d\": %s,"
        " \"syscall\": \"write(pipe)\", \"holds\": [], \"waits_for\": \"pipe_mutex\", \"held_by_tid\": %d},\n"
        "  {\"role\": \"mmap_writer\", \"pid\": %d, \"tid\": %d, \"comm\": \"nf-lock/munmap\", \"blocked_at_boottime_ns\": %lld, \"in_d\": %s,"
        " \"syscall\": \"munmap(the last page of the mapped file)\", \"holds\": [], \"waits_for\": \"mmap_lock:write\", \"held_by_tid\": %d},\n"
        "  {\"role\": \"mmap_reader\", \"pid\": %d, \"tid\": %d, \"comm\": \"nf-lock-cmdline\", \"blocked_at_boottime_ns\": %lld, \"in_d\": %s,"
        " \"syscall\": \"read(/proc/%d/cmdline)\", \"holds\": [], \"waits_for\": \"mmap_lock:read\", \"held_by_tid\": %d, \"queued_behind_tid\": %d}\n"
        " ]}\n",
        (int)self, file, pipe_ino, ok_fault && ok_pipewr && ok_munmap && ok_cmdline ? "true" : "false",
        (int)self, (int)fault_tid, fault_at, ok_fault ? "true" : "false",
        (int)pipewr, (int)pipewr, pipewr_at, ok_pipewr ? "true" : "false", (int)fault_tid,
        (int)self, (int)munmap_tid, munmap_at, ok_munmap ? "true" : "false", (int)fault_tid,
        (int)cmdline, (int)cmdline, cmdline_at, ok_cmdline ? "true" : "false", (int)self, (int)fault_tid, (int)munmap_tid);
    int out = open(out_json, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (out >= 0 && n > 0) {
        (void)!write(out, json, (size_t)n < sizeof json ? (size_t)n : sizeof json - 1);
        close(out);
    }
    close(open("/run/nf-ready/nf-locker.blocked", O_CREAT | O_WRONLY, 0644));
    for (;;)
        pause();
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "now") == 0) {
        printf("%lld\n", boottime_ns());
        return 0;
    }
    if (argc >= 5 && strcmp(argv[1], "locker") == 0)
        locker(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: hang now | hang locker FILE GO_PATH OUT_JSON\n");
    return 2;
}
