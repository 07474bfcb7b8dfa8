/* truth.c — the in-guest ground-truth printer: gathers /proc, statfs, uname, clocks and the kernel log
   into one JSON document, writes it between marker lines to a serial port, then sleeps forever.
   Usage: `truth [OUTPUT_TTY [STATFS_PATH]]` (defaults /dev/ttyS1 and /mnt/root).
   It never forks or execs, so the process list it prints is the one the host will snapshot.
   It stays dumb on purpose: raw texts go out as JSON strings; the host parses them. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* ---- a growable output buffer ---- */

static char *out;
static size_t out_len, out_cap;
static int out_fixed; /* out is a static buffer: never realloc it (the at-end trailer must not move memory) */

static void put_bytes(const char *s, size_t n)
{
    if (out_len + n + 1 > out_cap) {
        if (out_fixed)
            _exit(2); /* a cut trailer would be wrong JSON; the host then times out and says so */
        out_cap = (out_len + n + 1) * 2;
        out = realloc(out, out_cap);
        if (!out)
            _exit(1);
    }
    memcpy(out + out_len, s, n);
    out_len += n;
}

static void put(const char *s) { put_bytes(s, strlen(s)); }

static void putf(const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    put_bytes(tmp, n < (int)sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A JSON string of arbitrary bytes: printable ASCII as is, everything else as \u00XX (one escape per
   byte, so non-ASCII bytes read back as Latin-1 code points; the host maps them back to bytes). */
static void put_json_bytes(const char *s, size_t n)
{
    put("\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"')
            put("\\\"");
        else if (c == '\\')
            put("\\\\");
        else if (c == '\n')
            put("\\n");
        else if (c < 0x20 || c >= 0x7f)
            putf("\\u%04x", c);
        else
            put_bytes((const char *)&c, 1);
    }
    put("\"");
}

static void put_json_str(const char *s) { put_json_bytes(s, strlen(s)); }

/* ---- reading files whose size the kernel does not report ---- */

/* Reads a whole file; returns a malloc'd buffer (NUL-terminated) or NULL, with its length in *len. */
static char *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n + 4096 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *len = n;
    return buf;
}

/* "key": "file contents" (or null when the file cannot be read). */
static void put_file_member(const char *key, const char *path)
{
    size_t n;
    char *text = slurp(path, &n);
    put_json_str(key);
    put(": ");
    if (text)
        put_json_bytes(text, n);
    else
        put("null");
    free(text);
}

/* ---- clocks, uname, statfs ---- */

static void put_clocks(void)
{
    static const struct { const char *name; clockid_t id; } clocks[] = {
        {"boottime_ns", CLOCK_BOOTTIME},
        {"realtime_ns", CLOCK_REALTIME},
        {"monotonic_ns", CLOCK_MONOTONIC},
    };
    put("{");
    for (size_t i = 0; i < sizeof clocks / sizeof clocks[0]; i++) {
        struct timespec ts;
        clock_gettime(clocks[i].id, &ts);
        putf("%s\"%s\": %lld", i ? ", " : "", clocks[i].name,
             (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    }
    put("}");
}

static void put_uname(void)
{
    struct utsname u;
    uname(&u);
    put("{\"sysname\": ");
    put_json_str(u.sysname);
    put(", \"nodename\": ");
    put_json_str(u.nodename);
    put(", \"release\": ");
    put_json_str(u.release);
    put(", \"version\": ");
    put_json_str(u.version);
    put(", \"machine\": ");
    put_json_str(u.machine);
    put(", \"domainname\": ");
    put_json_str(u.domainname);
    put("}");
}

static void put_statfs(const char *path)
{
    struct statfs s;
    if (statfs(path, &s) != 0) {
        put("null");
        return;
    }
    put("{\"path\": ");
    put_json_str(path);
    putf(", \"f_type\": %llu, \"f_bsize\": %llu, \"f_blocks\": %llu, \"f_bfree\": %llu, \"f_bavail\": %llu",
         (unsigned long long)s.f_type, (unsigned long long)s.f_bsize, (unsigned long long)s.f_blocks,
         (unsigned long long)s.f_bfree, (unsigned long long)s.f_bavail);
    putf(", \"f_files\": %llu, \"f_ffree\": %llu, \"f_frsize\": %llu, \"f_namelen\": %llu, \"f_flags\": %llu",
         (unsigned long long)s.f_files, (unsigned long long)s.f_ffree, (unsigned long long)s.f_frsize,
         (unsigned long long)s.f_namelen, (unsigned long long)s.f_flags);
    putf(", \"f_fsid\": [%d, %d]}", s.f_fsid.__val[0], s.f_fsid.__val[1]);
}

/* ---- processes ---- */

static int is_number(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* /proc/PID/cmdline as an array: NUL-separated arguments, the trailing NUL ends the last one. */
static void put_cmdline(const char *path)
{
    size_t n;
    char *raw = slurp(path, &n);
    if (!raw) {
        put("null");
        return;
    }
    put("[");
    size_t start = 0;
    int first = 1;
    for (size_t i = 0; i <= n; i++) {
        if (i == n && start == n)
            break;
        if (i == n || raw[i] == 0) {
            if (!first)
                put(", ");
            put_json_bytes(raw + start, i - start);
            first = 0;
            start = i + 1;
        }
    }
    put("]");
    free(raw);
}

static void put_tasks(const char *pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%s/task", pid);
    DIR *dir = opendir(path);
    put("[");
    if (dir) {
        int first = 1;
        struct dirent *e;
        while ((e = readdir(dir))) {
            if (!is_number(e->d_name))
                continue;
            char stat_path[96];
            snprintf(stat_path, sizeof stat_path, "/proc/%s/task/%s/stat", pid, e->d_name);
            putf("%s{\"tid\": %s, ", first ? "" : ", ", e->d_name);
            put_file_member("stat", stat_path);
            put("}");
            first = 0;
        }
        closedir(dir);
    }
    put("]");
}

static void put_processes(void)
{
    DIR *dir = opendir("/proc");
    put("[");
    int first = 1;
    struct dirent *e;
    while (dir && (e = readdir(dir))) {
        if (!is_number(e->d_name))
            continue;
        char path[64];
        putf("%s\n{\"pid\": %s, ", first ? "" : ",", e->d_name);
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        put_file_member("stat", path);
        put(", ");
        snprintf(path, sizeof path, "/proc/%s/status", e->d_name);
        put_file_member("status", path);
        put(", \"cmdline\": ");
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        put_cmdline(path);
        put(", \"tasks\": ");
        put_tasks(e->d_name);
        put("}");
        first = 0;
    }
    if (dir)
        closedir(dir);
    put("]");
}

/* ---- the kernel log, as /dev/kmsg records ("prio,seq,usec,flags;text\n continuation…") ---- */

#define KMSG_KEEP 200

static void put_kmsg(void)
{
    static char *records[KMSG_KEEP];
    static size_t lengths[KMSG_KEEP];
    size_t count = 0;
    int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        put("null");
        return;
    }
    char buf[16384];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EPIPE)
            continue; /* a record was overwritten while we read: skip to the next one */
        if (r <= 0)
            break;
        size_t slot = count % KMSG_KEEP;
        free(records[slot]);
        records[slot] = malloc((size_t)r);
        memcpy(records[slot], buf, (size_t)r);
        lengths[slot] = (size_t)r;
        count++;
    }
    close(fd);
    put("[");
    size_t kept = count < KMSG_KEEP ? count : KMSG_KEEP;
    for (size_t i = 0; i < kept; i++) {
        size_t slot = (count - kept + i) % KMSG_KEEP;
        if (i)
            put(",\n");
        put_json_bytes(records[slot], lengths[slot]);
    }
    put("]");
}

/* ---- a few kernel symbols' addresses, for checking KASLR and symbol decoding ---- */

static const char *wanted_symbols[] = {
    "_text", "_stext", "_etext", "init_task", "init_top_pgt", "swapper_pg_dir", "page_offset_base",
    "vmalloc_base", "vmemmap_base", "linux_banner", "init_uts_ns", "jiffies_64", "avenrun", "prb",
    "node_data", "mem_section", "vm_zone_stat", "vm_node_stat", "_totalram_pages", "__start_BTF",
    "__stop_BTF", "kallsyms_names", "kallsyms_num_syms", "kallsyms_token_table", "kallsyms_offsets",
    "kallsyms_relative_base", "vmcoreinfo_note", "modules", "phys_base", "contig_page_data",
    "totalreserve_pages", "nr_swap_pages", "boot_command_line", NULL,
};

static int is_wanted(const char *name, size_t len)
{
    for (const char **w = wanted_symbols; *w; w++)
        if (strlen(*w) == len && memcmp(*w, name, len) == 0)
            return 1;
    return 0;
}

/* The lines of /proc/kallsyms ("ADDR TYPE NAME [module]") whose name is wanted, core kernel only. */
static void put_kallsyms(void)
{
    size_t n;
    char *all = slurp("/proc/kallsyms", &n);
    if (!all) {
        put("null");
        return;
    }
    put("\"");
    for (char *line = all; line < all + n;) {
        char *end = memchr(line, '\n', (size_t)(all + n - line));
        if (!end)
            end = all + n;
        char *name = memchr(line, ' ', (size_t)(end - line));
        if (name && name + 3 < end && !memchr(name + 3, '\t', (size_t)(end - name - 3))) {
            name += 3;
            if (is_wanted(name, (size_t)(end - name))) {
                put_bytes(line, (size_t)(end - line));
                put("\\n");
            }
        }
        line = end + 1;
    }
    put("\"");
    free(all);
}

/* ---- the at-end trailer: the fast-moving files re-read after the body crossed the serial port ---- */

static const char *at_end_files[] = {
    "/proc/meminfo", "/proc/buddyinfo", "/proc/loadavg", "/proc/uptime", "/proc/vmstat", NULL,
};
#define AT_END_FILE_MAX 16384
static char at_end_text[sizeof at_end_files / sizeof at_end_files[0]][AT_END_FILE_MAX];
static char at_end_out[65536];

/* Reads a file into a static slot (no malloc, so reading does not change what is read); -1 if unreadable. */
static ssize_t read_static(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    return (ssize_t)n;
}

/* Reads all the files first, then formats into at_end_out; returns the trailer's length. */
static size_t build_at_end(void)
{
    ssize_t got[sizeof at_end_files / sizeof at_end_files[0]];
    for (size_t i = 0; at_end_files[i]; i++)
        got[i] = read_static(at_end_files[i], at_end_text[i], AT_END_FILE_MAX);
    char *saved = out;
    size_t saved_len = out_len, saved_cap = out_cap;
    out = at_end_out;
    out_len = 0;
    out_cap = sizeof at_end_out;
    out_fixed = 1;
    put("{\"clocks\": ");
    put_clocks(); /* right after the files, so uptime and these clocks agree to microseconds */
    put(", \"files\": {");
    for (size_t i = 0; at_end_files[i]; i++) {
        put(i ? ",\n" : "\n");
        put_json_str(at_end_files[i]);
        put(": ");
        if (got[i] >= 0)
            put_json_bytes(at_end_text[i], (size_t)got[i]);
        else
            put("null");
    }
    put("}}\n");
    size_t n = out_len;
    out = saved;
    out_len = saved_len;
    out_cap = saved_cap;
    out_fixed = 0;
    return n;
}

/* ---- writing it out ---- */

static int open_output(const char *path)
{
    int fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct termios t;
    if (tcgetattr(fd, &t) == 0) {
        cfmakeraw(&t); /* no \n -> \r\n, no echo: the bytes arrive as written */
        cfsetospeed(&t, B115200);
        tcsetattr(fd, TCSANOW, &t);
    }
    return fd;
}

static void write_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

int main(int argc, char **argv)
{
    const char *output = argc > 1 ? argv[1] : "/dev/ttyS1";
    const char *statfs_path = argc > 2 ? argv[2] : "/mnt/root";
    static const char *proc_files[] = {
        "/proc/meminfo", "/proc/buddyinfo", "/proc/loadavg", "/proc/uptime", "/proc/vmstat",
        "/proc/zoneinfo", "/proc/modules", "/proc/mounts", "/proc/version", "/proc/cmdline",
        "/proc/stat", "/proc/swaps", "/proc/iomem", "/proc/pagetypeinfo",
        "/proc/sys/kernel/hostname", "/proc/sys/kernel/osrelease", "/proc/sys/kernel/ostype",
        "/proc/sys/kernel/version", "/proc/sys/kernel/random/boot_id", "/proc/sys/kernel/pid_max",
        "/proc/partitions", "/proc/diskstats", "/proc/1/mountinfo", "/proc/sys/kernel/tainted",
        "/proc/sys/vm/min_free_kbytes", "/proc/sys/vm/watermark_scale_factor", "/proc/sys/fs/file-nr",
        "/sys/kernel/vmcoreinfo", "/sys/devices/system/cpu/online", NULL,
    };

    put("{\"format\": \"nf-truth/1\", ");
    putf("\"printer_pid\": %d, ", (int)getpid());
    put("\"clocks_begin\": ");
    put_clocks();
    put(",\n\"uname\": ");
    put_uname();
    put(",\n\"statfs\": ");
    put_statfs(statfs_path);
    put(",\n\"files\": {");
    for (const char **f = proc_files; *f; f++) {
        put(f == proc_files ? "\n" : ",\n");
        put_file_member(*f, *f);
    }
    put("},\n\"processes\": ");
    put_processes();
    put(",\n\"kallsyms\": ");
    put_kallsyms();
    put(",\n\"kmsg\": ");
    put_kmsg();
    put(",\n\"clocks\": ");
    put_clocks();
    put("}\n");

    int fd = open_output(output);
    if (fd < 0) {
        perror("truth: opening output");
        fd = 1;
    }
    static const char begin[] = "\n===NF-TRUTH-BEGIN===\n";
    write_all(fd, begin, sizeof begin - 1);
    write_all(fd, out, out_len);
    /* The END line also says when the body had been handed to the UART (tcdrain), so the host can tell
       how long the document took to cross the serial port after the values were read. */
    tcdrain(fd);
    struct timespec written;
    clock_gettime(CLOCK_BOOTTIME, &written);
    /* The body takes seconds to cross the port while memory and loadavg move; re-read the fast-moving
       files now and send them as a small trailer (milliseconds), so the host pauses right after them. */
    size_t at_end_bytes = build_at_end();
    static const char at_end_marker[] = "===NF-TRUTH-AT-END===\n";
    write_all(fd, at_end_marker, sizeof at_end_marker - 1);
    write_all(fd, at_end_out, at_end_bytes);
    tcdrain(fd);
    char end[128];
    int n = snprintf(end, sizeof end, "===NF-TRUTH-END=== bytes=%zu pid=%d written_boottime_ns=%lld\n", out_len,
                     (int)getpid(), (long long)written.tv_sec * 1000000000LL + written.tv_nsec);
    write_all(fd, end, (size_t)n);
    tcdrain(fd);
    fprintf(stderr, "truth: %zu bytes written to %s\n", out_len, output);

    for (;;)
        pause();
}
