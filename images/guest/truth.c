/* truth.c — the in-guest ground-truth printer: gathers /proc, /sys, statfs, uname, clocks and the kernel log
   into one JSON document, writes it between marker lines to a serial port, then sleeps forever.
   Usage: `truth [OUTPUT_TTY [STATFS_PATH [then-crash]]]` (defaults /dev/ttyS1 and /mnt/root); with
   `then-crash` it raises the console loglevel and writes 'c' to /proc/sysrq-trigger after the END line; with
   `then-churn` it starts /bin/churn (fork/exit, alloc/free and /dev/kmsg writes) after the END line.
   It never forks or execs, so the process list it prints is the one the host will snapshot.
   It stays dumb on purpose: raw texts go out as JSON strings; the host parses them. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/stat.h>
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

/* Processes whose mm's mmap_lock is known to be contended (the hung scenario's nf-locker): reading their
   cmdline, environ or maps would block the printer too, so those reads are skipped (one pid per line in
   /run/nf-scenario/mm-locked-pids, written by images/guest/hang.c). */
#define MM_LOCKED_MAX 16
static long mm_locked[MM_LOCKED_MAX];
static size_t mm_locked_count;

static void load_mm_locked(void)
{
    size_t n;
    char *text = slurp("/run/nf-scenario/mm-locked-pids", &n);
    for (char *p = text; p && *p && mm_locked_count < MM_LOCKED_MAX;) {
        char *end;
        long pid = strtol(p, &end, 10);
        if (end == p)
            break;
        mm_locked[mm_locked_count++] = pid;
        p = end + strspn(end, " \n");
    }
    free(text);
}

static int is_mm_locked(const char *pid)
{
    long value = strtol(pid, NULL, 10);
    for (size_t i = 0; i < mm_locked_count; i++)
        if (mm_locked[i] == value)
            return 1;
    return 0;
}

/* Field N (proc(5) numbering) of a /proc/PID/stat text; comm may hold spaces and ')', so count from the last ')'. */
static const char *stat_field(const char *stat, int n)
{
    const char *p = strrchr(stat, ')');
    if (!p || n < 3)
        return NULL;
    p += 2;
    for (int i = 3; i < n && p; i++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    return p;
}

#define PF_KTHREAD 0x00200000UL

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

/* "key": readlink(path) (or null). */
static void put_link_member(const char *key, const char *path)
{
    char target[4096];
    ssize_t n = readlink(path, target, sizeof target);
    put_json_str(key);
    put(": ");
    if (n >= 0)
        put_json_bytes(target, (size_t)n);
    else
        put("null");
}

/* Every open fd: its number, what /proc/PID/fd/N links to, and /proc/PID/fdinfo/N (pos, flags, mnt_id, ino, …). */
static void put_fds(const char *pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%s/fd", pid);
    DIR *dir = opendir(path);
    if (!dir) {
        put("null");
        return;
    }
    put("[");
    int first = 1;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (!is_number(e->d_name))
            continue;
        char link[96], info[96];
        snprintf(link, sizeof link, "/proc/%s/fd/%s", pid, e->d_name);
        snprintf(info, sizeof info, "/proc/%s/fdinfo/%s", pid, e->d_name);
        putf("%s\n {\"fd\": %s, ", first ? "" : ",", e->d_name);
        put_link_member("target", link);
        put(", ");
        put_file_member("fdinfo", info);
        put("}");
        first = 0;
    }
    closedir(dir);
    put("]");
}

/* Each task (thread) of a process: its stat, kernel stack, wchan and syscall; /proc/…/sched (the scheduler's
   timestamps, e.g. se.exec_start = when it last ran) for tasks asleep in D. */
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
            char task[96], file[128];
            snprintf(task, sizeof task, "/proc/%s/task/%s", pid, e->d_name);
            putf("%s{\"tid\": %s, ", first ? "" : ",\n  ", e->d_name);
            snprintf(file, sizeof file, "%s/stat", task);
            size_t n;
            char *stat = slurp(file, &n);
            put("\"stat\": ");
            if (stat)
                put_json_bytes(stat, n);
            else
                put("null");
            static const char *per_task[] = {"stack", "wchan", "syscall", NULL};
            for (const char **f = per_task; *f; f++) {
                snprintf(file, sizeof file, "%s/%s", task, *f);
                put(", ");
                put_file_member(*f, file);
            }
            const char *state = stat ? stat_field(stat, 3) : NULL;
            if (state && *state == 'D') {
                snprintf(file, sizeof file, "%s/sched", task);
                put(", ");
                put_file_member("sched", file);
            }
            free(stat);
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
        size_t n;
        char *stat = slurp(path, &n);
        put("\"stat\": ");
        if (stat)
            put_json_bytes(stat, n);
        else
            put("null");
        const char *flags = stat ? stat_field(stat, 9) : NULL;
        int kthread = flags && (strtoul(flags, NULL, 10) & PF_KTHREAD);
        free(stat);
        put(", ");
        snprintf(path, sizeof path, "/proc/%s/status", e->d_name);
        put_file_member("status", path);
        int skip_mm = is_mm_locked(e->d_name);
        putf(", \"mm_skipped\": %s", skip_mm ? "true" : "false");
        put(", \"cmdline\": ");
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        if (skip_mm)
            put("null");
        else
            put_cmdline(path);
        put(", ");
        snprintf(path, sizeof path, "/proc/%s/cgroup", e->d_name);
        put_file_member("cgroup", path);
        if (!kthread && !skip_mm) {
            /* User processes only: a kernel thread has no mm (empty environ, no maps). */
            put(", ");
            snprintf(path, sizeof path, "/proc/%s/environ", e->d_name);
            put_file_member("environ", path);
            put(", ");
            snprintf(path, sizeof path, "/proc/%s/maps", e->d_name);
            put_file_member("maps", path);
        }
        put(", \"fds\": ");
        put_fds(e->d_name);
        put(",\n \"tasks\": ");
        put_tasks(e->d_name);
        put("}");
        first = 0;
    }
    if (dir)
        closedir(dir);
    put("]");
}

/* ---- network interfaces: /sys/class/net/IF attributes and the addresses getifaddrs reports ---- */

static void put_interfaces(void)
{
    static const char *attrs[] = {
        "ifindex", "iflink", "address", "broadcast", "addr_len", "mtu", "flags", "operstate", "type",
        "tx_queue_len", "carrier", NULL,
    };
    DIR *dir = opendir("/sys/class/net");
    put("[");
    int first = 1;
    struct dirent *e;
    while (dir && (e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        putf("%s\n{\"name\": ", first ? "" : ",");
        put_json_str(e->d_name);
        put(", \"sysfs\": {");
        for (const char **a = attrs; *a; a++) {
            char path[256];
            snprintf(path, sizeof path, "/sys/class/net/%s/%s", e->d_name, *a);
            put(a == attrs ? "" : ", ");
            put_file_member(*a, path);
        }
        put("}}");
        first = 0;
    }
    if (dir)
        closedir(dir);
    put("]");
}

static void put_sockaddr(const struct sockaddr *sa)
{
    char text[INET6_ADDRSTRLEN];
    const void *addr = NULL;
    if (sa && sa->sa_family == AF_INET)
        addr = &((const struct sockaddr_in *)sa)->sin_addr;
    else if (sa && sa->sa_family == AF_INET6)
        addr = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (addr && inet_ntop(sa->sa_family, addr, text, sizeof text))
        put_json_str(text);
    else
        put("null");
}

static void put_ifaddrs(void)
{
    struct ifaddrs *all;
    if (getifaddrs(&all) != 0) {
        put("null");
        return;
    }
    put("[");
    int first = 1;
    for (struct ifaddrs *a = all; a; a = a->ifa_next) {
        if (!a->ifa_addr || (a->ifa_addr->sa_family != AF_INET && a->ifa_addr->sa_family != AF_INET6))
            continue;
        putf("%s\n{\"name\": ", first ? "" : ",");
        put_json_str(a->ifa_name);
        putf(", \"family\": \"%s\", \"flags\": %u, \"address\": ", a->ifa_addr->sa_family == AF_INET ? "inet" : "inet6", a->ifa_flags);
        put_sockaddr(a->ifa_addr);
        put(", \"netmask\": ");
        put_sockaddr(a->ifa_netmask);
        put(", \"broadcast\": ");
        put_sockaddr((a->ifa_flags & IFF_BROADCAST) ? a->ifa_broadaddr : NULL);
        if (a->ifa_addr->sa_family == AF_INET6)
            putf(", \"scope_id\": %u", ((const struct sockaddr_in6 *)a->ifa_addr)->sin6_scope_id);
        put("}");
        first = 0;
    }
    put("]");
    freeifaddrs(all);
}

/* ---- cgroup v2: every cgroup under /sys/fs/cgroup (bounded), its processes and resource files ---- */

#define CGROUP_MAX 32
#define CGROUP_PATH_MAX 160
static char cgroup_dirs[CGROUP_MAX][CGROUP_PATH_MAX]; /* remembered for the at-end re-read */
static size_t cgroup_count;

static void put_cgroup(const char *dir, const char *rel, int depth, int *first)
{
    static const char *files[] = {
        "cgroup.procs", "cgroup.threads", "cgroup.controllers", "cgroup.subtree_control", "cgroup.type",
        "memory.current", "memory.max", "memory.peak", "memory.stat", "cpu.stat", "cpu.weight", "cpu.max",
        "pids.current", "pids.max", NULL,
    };
    if (cgroup_count >= CGROUP_MAX)
        return;
    snprintf(cgroup_dirs[cgroup_count++], CGROUP_PATH_MAX, "%s", dir);
    put(*first ? "\n{\"path\": " : ",\n{\"path\": ");
    *first = 0;
    put_json_str(*rel ? rel : "/");
    put(", \"files\": {");
    for (const char **f = files; *f; f++) {
        char path[CGROUP_PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s", dir, *f);
        put(f == files ? "" : ", ");
        put_file_member(*f, path);
    }
    put("}}");
    if (depth >= 4)
        return;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.' || e->d_type != DT_DIR)
            continue;
        char child[CGROUP_PATH_MAX], child_rel[CGROUP_PATH_MAX];
        snprintf(child, sizeof child, "%s/%s", dir, e->d_name);
        snprintf(child_rel, sizeof child_rel, "%s/%s", rel, e->d_name);
        put_cgroup(child, child_rel, depth + 1, first);
    }
    if (d)
        closedir(d);
}

static void put_cgroups(const char *root)
{
    struct statfs s;
    if (statfs(root, &s) != 0 || s.f_type != 0x63677270 /* CGROUP2_SUPER_MAGIC */) {
        put("null");
        return;
    }
    put("[");
    int first = 1;
    put_cgroup(root, "", 0, &first);
    put("]");
}

/* ---- what the scenario helpers left in /run/nf-scenario (small JSON and text files), verbatim ---- */

static void put_dir_files(const char *dirname)
{
    DIR *dir = opendir(dirname);
    if (!dir) {
        put("null");
        return;
    }
    put("{");
    int first = 1;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        char path[256];
        snprintf(path, sizeof path, "%s/%s", dirname, e->d_name);
        put(first ? "\n" : ",\n");
        put_file_member(e->d_name, path);
        first = 0;
    }
    closedir(dir);
    put("}");
}

/* ---- the kernel log, as /dev/kmsg records ("prio,seq,usec,flags;text\n continuation…") ---- */

#define KMSG_KEEP 4000 /* the whole log of these guests (~400 records at boot, ~550 with hung-task reports) */

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

static void write_sysctl(const char *path, const char *value)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)!write(fd, value, strlen(value));
        close(fd);
    }
}

static const char *at_end_files[] = {
    "/proc/meminfo", "/proc/buddyinfo", "/proc/loadavg", "/proc/uptime", "/proc/vmstat", "/proc/net/dev", NULL,
};
#define AT_END_FILES (sizeof at_end_files / sizeof at_end_files[0] - 1)
#define AT_END_FILE_MAX 16384
/* Per cgroup found in the body: memory.current and cpu.stat (the ones that move while idle, if anything). */
static const char *at_end_cgroup_files[] = {"memory.current", "cpu.stat", NULL};
#define AT_END_CGROUP_FILES 2
#define AT_END_CGROUP_FILE_MAX 2048
static char at_end_text[AT_END_FILES][AT_END_FILE_MAX];
static char at_end_cgroup_text[CGROUP_MAX][AT_END_CGROUP_FILES][AT_END_CGROUP_FILE_MAX];
static char at_end_cgroup_path[CGROUP_MAX][AT_END_CGROUP_FILES][CGROUP_PATH_MAX + 32];
static char at_end_out[262144];

/* Writes every page of the static buffers the trailer uses, at start: the trailer then faults in no page
   (a fault between re-reading /proc/meminfo and the pause would move the counters it just read). */
static void prefault_at_end_buffers(void)
{
    static const struct { volatile char *p; size_t n; } buffers[] = {
        {(volatile char *)at_end_text, sizeof at_end_text},
        {(volatile char *)at_end_cgroup_text, sizeof at_end_cgroup_text},
        {(volatile char *)at_end_cgroup_path, sizeof at_end_cgroup_path},
        {(volatile char *)at_end_out, sizeof at_end_out},
    };
    for (size_t b = 0; b < sizeof buffers / sizeof buffers[0]; b++)
        for (size_t i = 0; i < buffers[b].n; i += 4096)
            buffers[b].p[i] = 0;
}

/* The same for the stack the trailer and the END line will use (deeper than the body's deepest frames). */
static void __attribute__((noinline)) prefault_stack(void)
{
    volatile char pad[64 * 1024];
    for (size_t i = 0; i < sizeof pad; i += 4096)
        pad[i] = 0;
}

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

static void put_at_end_member(const char *key, const char *text, ssize_t n)
{
    put_json_str(key);
    put(": ");
    if (n >= 0)
        put_json_bytes(text, (size_t)n);
    else
        put("null");
}

/* Reads all the files first, then formats into at_end_out; returns the trailer's length. */
static size_t build_at_end(void)
{
    ssize_t got[AT_END_FILES];
    ssize_t got_cgroup[CGROUP_MAX][AT_END_CGROUP_FILES];
    /* Fold every CPU's pending counter deltas into the global counters first: deltas left over from the body's
       work would otherwise be folded whenever a later small change tips a CPU over its threshold, after the
       re-read. (stat_refresh runs refresh_vm_stats on each CPU and waits for it.) */
    write_sysctl("/proc/sys/vm/stat_refresh", "1\n");
    /* Twice, keeping the second: the first pass makes the kernel allocate what reading these files needs
       (struct file, seq_file buffers: new slab pages, pages moved to the per-CPU lists), the second reuses
       it, so reading the later files does not move the counters the earlier ones just returned. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < AT_END_FILES; i++)
            got[i] = read_static(at_end_files[i], at_end_text[i], AT_END_FILE_MAX);
        for (size_t c = 0; c < cgroup_count; c++)
            for (size_t f = 0; f < AT_END_CGROUP_FILES; f++) {
                snprintf(at_end_cgroup_path[c][f], sizeof at_end_cgroup_path[c][f], "%s/%s", cgroup_dirs[c], at_end_cgroup_files[f]);
                got_cgroup[c][f] = read_static(at_end_cgroup_path[c][f], at_end_cgroup_text[c][f], AT_END_CGROUP_FILE_MAX);
            }
    }
    char *saved = out;
    size_t saved_len = out_len, saved_cap = out_cap;
    out = at_end_out;
    out_len = 0;
    out_cap = sizeof at_end_out;
    out_fixed = 1;
    put("{\"clocks\": ");
    put_clocks(); /* right after the files, so uptime and these clocks agree to microseconds */
    put(", \"files\": {");
    for (size_t i = 0; i < AT_END_FILES; i++) {
        put(i ? ",\n" : "\n");
        put_at_end_member(at_end_files[i], at_end_text[i], got[i]);
    }
    for (size_t c = 0; c < cgroup_count; c++)
        for (size_t f = 0; f < AT_END_CGROUP_FILES; f++) {
            put(",\n");
            put_at_end_member(at_end_cgroup_path[c][f], at_end_cgroup_text[c][f], got_cgroup[c][f]);
        }
    put("}}\n");
    size_t n = out_len;
    out = saved;
    out_len = saved_len;
    out_cap = saved_cap;
    out_fixed = 0;
    return n;
}

/* The kernel folds per-CPU counter deltas into the global counters, and (6.7+) shrinks the per-CPU free page
   lists, from vmstat_update every vm.stat_interval seconds (1). Either moves MemFree, AnonPages … in the
   milliseconds between the at-end re-read and the pause; a long interval keeps the global counters still
   (the one update already queued runs while the body is gathered). /proc/meminfo and nearfield both read the
   global counters, so nothing is lost. */
static void quiet_vmstat_updates(void)
{
    write_sysctl("/proc/sys/vm/stat_interval", "3600\n");
    /* kcompactd's proactive compaction (every 500 ms) migrates pages: buddy lists and counters move. */
    write_sysctl("/proc/sys/vm/compaction_proactiveness", "0\n");
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
    int then_crash = argc > 3 && strcmp(argv[3], "then-crash") == 0;
    int then_churn = argc > 3 && strcmp(argv[3], "then-churn") == 0;
    static const char *proc_files[] = {
        "/proc/meminfo", "/proc/buddyinfo", "/proc/loadavg", "/proc/uptime", "/proc/vmstat",
        "/proc/zoneinfo", "/proc/modules", "/proc/mounts", "/proc/version", "/proc/cmdline",
        "/proc/stat", "/proc/swaps", "/proc/iomem", "/proc/pagetypeinfo",
        "/proc/sys/kernel/hostname", "/proc/sys/kernel/osrelease", "/proc/sys/kernel/ostype",
        "/proc/sys/kernel/version", "/proc/sys/kernel/random/boot_id", "/proc/sys/kernel/pid_max",
        "/proc/partitions", "/proc/diskstats", "/proc/1/mountinfo", "/proc/sys/kernel/tainted",
        "/proc/sys/vm/min_free_kbytes", "/proc/sys/vm/watermark_scale_factor", "/proc/sys/fs/file-nr",
        "/sys/kernel/vmcoreinfo", "/sys/devices/system/cpu/online",
        /* sysctls the triage and inventory commands report */
        "/proc/sys/kernel/domainname", "/proc/sys/kernel/hung_task_timeout_secs",
        "/proc/sys/kernel/hung_task_warnings", "/proc/sys/kernel/hung_task_check_interval_secs",
        "/proc/sys/kernel/hung_task_panic", "/proc/sys/kernel/panic", "/proc/sys/kernel/panic_on_oops",
        "/proc/sys/kernel/sysrq", "/proc/sys/kernel/printk", "/proc/sys/vm/overcommit_memory",
        "/proc/sys/vm/swappiness", "/proc/sys/vm/stat_interval", "/proc/sys/vm/compaction_proactiveness",
        /* sockets and interfaces (read before getifaddrs opens its own netlink socket) */
        "/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp", "/proc/net/udp6", "/proc/net/unix",
        "/proc/net/dev", "/proc/net/if_inet6", "/proc/net/sockstat", "/proc/net/sockstat6", "/proc/net/route",
        NULL,
    };
    prefault_at_end_buffers();
    prefault_stack();
    load_mm_locked();
    quiet_vmstat_updates();

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
    put("},\n\"interfaces\": ");
    put_interfaces();
    put(",\n\"ifaddrs\": ");
    put_ifaddrs();
    put(",\n\"cgroups\": ");
    put_cgroups("/sys/fs/cgroup");
    put(",\n\"scenario_files\": ");
    put_dir_files("/run/nf-scenario");
    put(",\n\"processes\": ");
    put_processes();
    put(",\n\"kallsyms\": ");
    put_kallsyms();
    put(",\n\"kmsg\": ");
    put_kmsg();
    put(",\n\"clocks\": ");
    put_clocks();
    put("}\n");

    /* Said before sending, not after: console writes (tty buffers) and printf's 8 KiB stack buffer allocate. */
    fprintf(stderr, "truth: sending %zu bytes to %s\n", out_len, output);
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

    if (then_crash) {
        /* The panicked-guest scenario: let the oops and "Kernel panic - not syncing" reach the console
           (init muted it), then crash the kernel from this task. panic=0 keeps the dead guest up. */
        klogctl(8 /* SYSLOG_ACTION_CONSOLE_LEVEL */, NULL, 8);
        int sysrq = open("/proc/sysrq-trigger", O_WRONLY);
        if (sysrq >= 0)
            (void)!write(sysrq, "c", 1);
        perror("truth: the sysrq crash returned");
    }
    if (then_churn && fork() == 0) {
        /* The churn scenario: a moving target for live reads, started only once the truth is out. */
        execl("/bin/churn", "churn", (char *)NULL);
        _exit(127);
    }
    for (;;)
        pause();
}
