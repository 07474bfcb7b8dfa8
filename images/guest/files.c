/* files.c — a guest process holding known kinds of open files: `files NAME EXT4_DIR TMPFS_DIR`.
   It opens (and keeps open) a file it then deletes on the ext4 rootfs and one on tmpfs, a file read to a
   known offset, an O_APPEND log, a directory, a memfd, an eventfd watched by an epoll, and a pipe whose read
   end belongs to a child (comm nf-pipe-rd) that read the first line and now waits in read() for more.
   Must run before the rootfs is synced and frozen (it writes there). Creates /run/nf-ready/NAME when done. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#define PIPE_READER "nf-pipe-rd"
#define DELETED_EXT4_BYTES (64 * 1024)  /* written, then unlinked while open: its blocks stay in use */
#define DELETED_EXT4_POS 12345          /* the fd's offset after a final lseek */
#define READ_POS 100                    /* bytes read from data/lines.txt */
#define PIPE_FIRST "first line through the pipe\n"  /* the reader reads exactly this, then waits for more */

static void die(const char *what)
{
    fprintf(stderr, "files: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void announce_ready(const char *name)
{
    char path[96];
    snprintf(path, sizeof path, "/run/nf-ready/%s", name);
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    if (fd >= 0)
        close(fd);
}

static void write_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("write");
        s += w;
        n -= (size_t)w;
    }
}

static int open_or_die(const char *path, int flags)
{
    int fd = open(path, flags, 0644);
    if (fd < 0)
        die(path);
    return fd;
}

/* The child: keeps only the pipe's read end, reads the first line, then waits in read() for more. */
static void pipe_reader(int rfd)
{
    prctl(PR_SET_NAME, PIPE_READER, 0, 0, 0);
    for (int fd = 3; fd < 64; fd++)
        if (fd != rfd)
            close(fd);
    char buf[sizeof PIPE_FIRST - 1];
    size_t got = 0;
    while (got < sizeof buf) {
        ssize_t r = read(rfd, buf + got, sizeof buf - got);
        if (r <= 0)
            _exit(1);
        got += (size_t)r;
    }
    announce_ready(PIPE_READER);
    /* Sleeps in pipe_read: the parent never writes again and keeps the write end open. */
    for (;;)
        if (read(rfd, buf, sizeof buf) <= 0)
            pause();
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: files NAME EXT4_DIR TMPFS_DIR\n");
        return 2;
    }
    prctl(PR_SET_NAME, argv[1], 0, 0, 0);
    const char *ext4 = argv[2], *tmpfs = argv[3];
    char path[256];

    /* Deleted but open, on ext4: 64 KiB of a known pattern, then the offset moved. */
    snprintf(path, sizeof path, "%s/var/nf/deleted-on-ext4.bin", ext4);
    int deleted_ext4 = open_or_die(path, O_RDWR | O_CREAT | O_TRUNC);
    static char block[DELETED_EXT4_BYTES];
    for (size_t i = 0; i < sizeof block; i++)
        block[i] = (char)(i * 7);
    write_all(deleted_ext4, block, sizeof block);
    fsync(deleted_ext4);
    if (unlink(path) != 0)
        die("unlink ext4 file");
    lseek(deleted_ext4, DELETED_EXT4_POS, SEEK_SET);

    /* Deleted but open, on tmpfs. */
    snprintf(path, sizeof path, "%s/nf-deleted-on-tmpfs.txt", tmpfs);
    int deleted_tmpfs = open_or_die(path, O_RDWR | O_CREAT | O_TRUNC);
    write_all(deleted_tmpfs, "a tmpfs file deleted while open\n", 32);
    if (unlink(path) != 0)
        die("unlink tmpfs file");

    /* A file read to a known offset, an append-only log, a directory. */
    snprintf(path, sizeof path, "%s/data/lines.txt", ext4);
    int lines = open_or_die(path, O_RDONLY);
    char buf[READ_POS];
    if (read(lines, buf, sizeof buf) != (ssize_t)sizeof buf)
        die("read lines.txt");
    snprintf(path, sizeof path, "%s/var/nf/append.log", ext4);
    int append = open_or_die(path, O_WRONLY | O_CREAT | O_APPEND);
    write_all(append, "opened with O_APPEND\n", 21);
    snprintf(path, sizeof path, "%s/data", ext4);
    int dir = open_or_die(path, O_RDONLY | O_DIRECTORY);

    /* A memfd (its link reads "/memfd:nf-memfd (deleted)"), an eventfd with a count, an epoll watching it. */
    int memfd = memfd_create("nf-memfd", 0);
    if (memfd < 0)
        die("memfd_create");
    write_all(memfd, block, 8192);
    int efd = eventfd(7, 0);
    if (efd < 0)
        die("eventfd");
    int epfd = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x6e66};
    if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &ev) != 0)
        die("epoll");

    /* A pipe to a child, which reads the first line and waits for more. */
    int p[2];
    if (pipe(p) != 0)
        die("pipe");
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        close(p[1]);
        pipe_reader(p[0]);
    }
    close(p[0]);
    write_all(p[1], PIPE_FIRST, sizeof PIPE_FIRST - 1);

    (void)deleted_tmpfs;
    (void)append;
    (void)dir;
    announce_ready(argv[1]);
    for (;;)
        pause();
}
