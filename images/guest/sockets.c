/* sockets.c — the guest's socket workload, in two processes so that socket owners differ:
   `sockets server NAME` (root) listens on TCP v4/v6, binds UDP v4/v6 and unix sockets and accepts one
   connection each; `sockets client NAME` (run as uid 1000) connects to them and moves a known amount of
   data, some of which the server leaves unread. Both then sleep forever. Ports and paths are fixed
   (see images/README.md); each side creates /run/nf-ready/NAME when its part is done. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define TCP4_PORT 7001      /* 127.0.0.1, one connection accepted */
#define TCP6_PORT 7002      /* ::1, one connection accepted */
#define UDP4_PORT 7003      /* 127.0.0.1 */
#define UDP6_PORT 7004      /* ::1 */
#define TCP4_ANY_PORT 7005  /* 0.0.0.0, listening, never connected */
#define UNIX_STREAM_PATH "/run/nf-stream.sock"
#define UNIX_DGRAM_PATH "/run/nf-dgram.sock"
#define UNIX_ABSTRACT "nf-abstract"  /* "@nf-abstract" in /proc/net/unix */

#define SENT_PER_STREAM 3000   /* the client sends this much on each stream connection */
#define READ_PER_STREAM 1000   /* the server reads only this much: the rest stays in its receive queue */
#define UDP4_DATAGRAMS 3       /* sent to the v4 UDP socket; the server reads one */
#define UDP6_DATAGRAMS 2       /* sent to the v6 UDP socket; the server reads none */
#define DATAGRAM_BYTES 100
#define SERVER_LISTENING "/run/nf-ready/nf-net-srv.listening" /* the server runs as `sockets server nf-net-srv` */

static void die(const char *what)
{
    fprintf(stderr, "sockets: %s: %s\n", what, strerror(errno));
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

static void wait_for(const char *path)
{
    for (int tries = 0; tries < 1200 && access(path, F_OK) != 0; tries++)
        usleep(50000);
}

static void read_exactly(int fd, size_t n)
{
    char buf[512];
    while (n) {
        ssize_t r = read(fd, buf, n < sizeof buf ? n : sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            die("read");
        n -= (size_t)r;
    }
}

static void write_all(int fd, const char *s, size_t n)
{
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

static void send_pattern(int fd, size_t n)
{
    char buf[SENT_PER_STREAM];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (char)('a' + i % 26);
    write_all(fd, buf, n < sizeof buf ? n : sizeof buf);
}

static struct sockaddr_in v4(const char *ip, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

static struct sockaddr_in6 v6(const char *ip, int port)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((unsigned short)port)};
    inet_pton(AF_INET6, ip, &a.sin6_addr);
    return a;
}

static struct sockaddr_un unix_path(const char *path, socklen_t *len)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
    return a;
}

static struct sockaddr_un unix_abstract(const char *name, socklen_t *len)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path + 1, name, strlen(name)); /* leading NUL: the abstract namespace */
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
    return a;
}

static int listener(int family, const struct sockaddr *addr, socklen_t len)
{
    int s = socket(family, SOCK_STREAM, 0);
    if (s < 0)
        die("socket");
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6)
        setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(s, addr, len) != 0)
        die("bind");
    if (listen(s, 8) != 0)
        die("listen");
    return s;
}

static int bound_datagram(int family, const struct sockaddr *addr, socklen_t len)
{
    int s = socket(family, SOCK_DGRAM, 0);
    if (s < 0)
        die("socket");
    if (bind(s, addr, len) != 0)
        die("bind");
    return s;
}

static void server(const char *name)
{
    struct sockaddr_in a4 = v4("127.0.0.1", TCP4_PORT), any4 = v4("0.0.0.0", TCP4_ANY_PORT), u4 = v4("127.0.0.1", UDP4_PORT);
    struct sockaddr_in6 a6 = v6("::1", TCP6_PORT), u6 = v6("::1", UDP6_PORT);
    socklen_t stream_len, dgram_len, abstract_len;
    struct sockaddr_un stream = unix_path(UNIX_STREAM_PATH, &stream_len);
    struct sockaddr_un dgram = unix_path(UNIX_DGRAM_PATH, &dgram_len);
    struct sockaddr_un abstract = unix_abstract(UNIX_ABSTRACT, &abstract_len);

    unlink(UNIX_STREAM_PATH);
    unlink(UNIX_DGRAM_PATH);
    int tcp4 = listener(AF_INET, (struct sockaddr *)&a4, sizeof a4);
    int tcp6 = listener(AF_INET6, (struct sockaddr *)&a6, sizeof a6);
    int tcp_any = listener(AF_INET, (struct sockaddr *)&any4, sizeof any4);
    int ux = listener(AF_UNIX, (struct sockaddr *)&stream, stream_len);
    chmod(UNIX_STREAM_PATH, 0666); /* the client runs as uid 1000 */
    int udp4 = bound_datagram(AF_INET, (struct sockaddr *)&u4, sizeof u4);
    int udp6 = bound_datagram(AF_INET6, (struct sockaddr *)&u6, sizeof u6);
    int uxd = bound_datagram(AF_UNIX, (struct sockaddr *)&dgram, dgram_len);
    chmod(UNIX_DGRAM_PATH, 0666);
    int uxa = bound_datagram(AF_UNIX, (struct sockaddr *)&abstract, abstract_len);
    (void)tcp_any;
    (void)uxa;

    char listening[64];
    snprintf(listening, sizeof listening, "%s.listening", name);
    announce_ready(listening);

    /* Accept in the order the client connects; read part of what it sends; answer "ok". */
    int conns[3] = {accept(tcp4, NULL, NULL), accept(tcp6, NULL, NULL), accept(ux, NULL, NULL)};
    for (int i = 0; i < 3; i++) {
        if (conns[i] < 0)
            die("accept");
        read_exactly(conns[i], READ_PER_STREAM);
        write_all(conns[i], "ok\n", 3);
    }
    /* One of the v4 datagrams is read; the others, the v6 ones and the unix one stay queued. */
    char buf[DATAGRAM_BYTES];
    if (recv(udp4, buf, sizeof buf, 0) < 0)
        die("recv udp4");
    (void)udp6;
    (void)uxd;
    announce_ready(name);
    for (;;)
        pause();
}

static int connected(int family, int type, const struct sockaddr *addr, socklen_t len)
{
    int s = socket(family, type, 0);
    if (s < 0)
        die("socket");
    if (connect(s, addr, len) != 0)
        die("connect");
    return s;
}

static void client(const char *name)
{
    wait_for(SERVER_LISTENING);
    struct sockaddr_in a4 = v4("127.0.0.1", TCP4_PORT), u4 = v4("127.0.0.1", UDP4_PORT);
    struct sockaddr_in6 a6 = v6("::1", TCP6_PORT), u6 = v6("::1", UDP6_PORT), lo6 = v6("::1", 0);
    socklen_t stream_len, dgram_len;
    struct sockaddr_un stream = unix_path(UNIX_STREAM_PATH, &stream_len);
    struct sockaddr_un dgram = unix_path(UNIX_DGRAM_PATH, &dgram_len);

    int conns[3] = {
        connected(AF_INET, SOCK_STREAM, (struct sockaddr *)&a4, sizeof a4),
        connected(AF_INET6, SOCK_STREAM, (struct sockaddr *)&a6, sizeof a6),
        connected(AF_UNIX, SOCK_STREAM, (struct sockaddr *)&stream, stream_len),
    };
    for (int i = 0; i < 3; i++) {
        int one = 1;
        if (i < 2)
            setsockopt(conns[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        send_pattern(conns[i], SENT_PER_STREAM);
        read_exactly(conns[i], 3); /* "ok\n": the server has read its part */
    }

    /* UDP v4 connected (so /proc/net/udp shows a remote address); v6 unconnected, bound to ::1. */
    char datagram[DATAGRAM_BYTES];
    memset(datagram, 'u', sizeof datagram);
    int udp4 = connected(AF_INET, SOCK_DGRAM, (struct sockaddr *)&u4, sizeof u4);
    for (int i = 0; i < UDP4_DATAGRAMS; i++)
        if (send(udp4, datagram, sizeof datagram, 0) < 0)
            die("send udp4");
    int udp6 = bound_datagram(AF_INET6, (struct sockaddr *)&lo6, sizeof lo6);
    for (int i = 0; i < UDP6_DATAGRAMS; i++)
        if (sendto(udp6, datagram, sizeof datagram, 0, (struct sockaddr *)&u6, sizeof u6) < 0)
            die("sendto udp6");
    int uxd = connected(AF_UNIX, SOCK_DGRAM, (struct sockaddr *)&dgram, dgram_len);
    if (send(uxd, "unix datagram\n", 14, 0) < 0)
        die("send unix dgram");

    /* One datagram out of the dummy interface (nf0, 10.42.0.1/24; nothing answers): its tx counters move. */
    struct sockaddr_in away = v4("10.42.0.2", 9);
    int out = socket(AF_INET, SOCK_DGRAM, 0);
    if (out >= 0) {
        (void)!sendto(out, datagram, sizeof datagram, 0, (struct sockaddr *)&away, sizeof away);
        close(out);
    }

    /* An unnamed connected pair inside this process. */
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0)
        die("socketpair");
    write_all(pair[0], "pair\n", 5);

    announce_ready(name);
    for (;;)
        pause();
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "server") != 0 && strcmp(argv[1], "client") != 0)) {
        fprintf(stderr, "usage: sockets server|client NAME\n");
        return 2;
    }
    prctl(PR_SET_NAME, argv[2], 0, 0, 0);
    if (strcmp(argv[1], "server") == 0)
        server(argv[2]);
    else
        client(argv[2]);
    return 0;
}
