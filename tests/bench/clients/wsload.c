/*
 * wsload.c - WebSocket load for tests/bench/bench_ws.sh: many idle
 * connections, or echo round trips, from one thread (one epoll), so the
 * client costs little next to the server it measures.
 *
 *   wsload idle HOST PORT PATH COUNT [-s ADDR,...] [-c N] [-o FILE]
 *       opens COUNT WebSockets (handshake, no extension offered), then
 *       holds them open and silent, answering the server's pings
 *   wsload echo HOST PORT PATH CONNS SECONDS [-m BYTES]
 *       opens CONNS WebSockets, then on each: send a masked text message
 *       of BYTES (16), wait for its echo whole, check it, send the next;
 *       for SECONDS, then prints one line:
 *       "conns N messages M seconds S rate R p50_us P p99_us Q errors E"
 *
 * options:
 *   -s ADDR[,ADDR...]  bind to these source addresses in turn (loopback
 *             has ~28,000 ephemeral ports per source address)
 *   -c N      at most N handshakes in flight at once (256)
 *   -o FILE   idle: status, rewritten every 200 ms:
 *             "open N ready 0|1 connects N closed N errors N"
 *             ready is 1 once COUNT handshakes got their 101
 *
 * idle runs until SIGTERM/SIGINT, then prints its status line on stdout.
 * Raises its soft RLIMIT_NOFILE to the hard one.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum { ST_FREE, ST_CONNECTING, ST_SHAKING, ST_OPEN, ST_DEAD };

/* What one connection keeps: small, so 10,000 cost the client little. */
struct wconn {
    int fd;
    uint8_t state;
    uint8_t matched; /* bytes of "\r\n\r\n" matched in the 101 */
    uint16_t got;    /* echo: bytes of the current echo received */
    int64_t sent_ns; /* echo: when the current message left */
};

static volatile sig_atomic_t stop;
static void on_stop(int sig)
{
    (void)sig;
    stop = 1;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct {
    long open, connects, closed, errors, ready;
} st;

static const char *status_path;

static void write_status(void)
{
    char line[256];
    int n = snprintf(line, sizeof line,
                     "open %ld ready %d connects %ld closed %ld errors %ld\n",
                     st.open, st.ready > 0, st.connects, st.closed, st.errors);
    if (!status_path) {
        fputs(line, stdout);
        return;
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", status_path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fwrite(line, 1, (size_t)n, f);
    fclose(f);
    rename(tmp, status_path);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: wsload idle HOST PORT PATH COUNT [-s ADDR,...] [-c N] "
            "[-o FILE]\n"
            "       wsload echo HOST PORT PATH CONNS SECONDS [-m BYTES]\n");
    exit(2);
}

/* A masked client frame (RFC 6455 5.2) of payload p[0..n), n < 65536,
 * into out; returns its length. The mask is fixed: the server unmasks
 * whatever it is, and the bench wants no random numbers on its path. */
static size_t ws_frame(uint8_t *out, int opcode, const uint8_t *p, size_t n)
{
    static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t h = 0;
    out[h++] = (uint8_t)(0x80 | opcode);
    if (n < 126) {
        out[h++] = (uint8_t)(0x80 | n);
    } else {
        out[h++] = 0x80 | 126;
        out[h++] = (uint8_t)(n >> 8);
        out[h++] = (uint8_t)n;
    }
    memcpy(out + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < n; i++)
        out[h + i] = p[i] ^ mask[i & 3];
    return h + n;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 6)
        usage();
    int echo = strcmp(argv[1], "echo") == 0;
    if (!echo && strcmp(argv[1], "idle") != 0)
        usage();
    if (echo && argc < 7)
        usage();
    struct sockaddr_in dst = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, argv[2], &dst.sin_addr) != 1)
        usage();
    dst.sin_port = htons((uint16_t)atoi(argv[3]));
    const char *path = argv[4];
    long count = atol(argv[5]);
    double seconds = echo ? atof(argv[6]) : 0;
    if (count <= 0 || (echo && seconds <= 0))
        usage();
    const char *src = NULL;
    long inflight_max = 256;
    size_t msg_len = 16;
    optind = echo ? 7 : 6;
    for (int o; (o = getopt(argc, argv, "s:c:o:m:")) != -1;) {
        switch (o) {
        case 's':
            src = optarg;
            break;
        case 'c':
            inflight_max = atol(optarg);
            break;
        case 'o':
            status_path = optarg;
            break;
        case 'm':
            msg_len = (size_t)atol(optarg);
            break;
        default:
            usage();
        }
    }
    if (msg_len < 1 || msg_len > 60000)
        usage();
    struct sockaddr_in srcaddr[64];
    int nsrc = 0;
    for (char *list = src ? strdup(src) : NULL, *a; list;) {
        a = strsep(&list, ",");
        if (nsrc == 64)
            usage();
        srcaddr[nsrc] = (struct sockaddr_in){.sin_family = AF_INET};
        if (inet_pton(AF_INET, a, &srcaddr[nsrc++].sin_addr) != 1)
            usage();
    }

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if ((long)rl.rlim_cur < count + 16) {
            fprintf(stderr,
                    "wsload: %ld connections need %ld fds; the "
                    "limit is %ld\n",
                    count, count + 16, (long)rl.rlim_cur);
            return 1;
        }
    }

    char req[1024];
    int reqlen = snprintf(req, sizeof req,
                          "GET %s HTTP/1.1\r\nHost: %s:%s\r\n"
                          "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "Sec-WebSocket-Version: 13\r\n\r\n",
                          path, argv[2], argv[3]);

    /* the echo's message, text, and its frame (the same on every send) */
    uint8_t *payload = malloc(msg_len);
    uint8_t *frame = malloc(msg_len + 8);
    for (size_t i = 0; i < msg_len; i++)
        payload[i] = (uint8_t)('a' + i % 26);
    size_t frame_len = ws_frame(frame, 0x1, payload, msg_len);
    size_t echo_len = msg_len + (msg_len < 126 ? 2 : 4); /* unmasked */

    struct wconn *c = calloc((size_t)count, sizeof *c);
    struct epoll_event *evs = calloc(1024, sizeof *evs);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    /* echo latencies, one per round trip, for the percentiles */
    size_t lat_cap = echo ? 1 << 20 : 0, nlat = 0;
    int64_t *lat = echo ? malloc(lat_cap * sizeof *lat) : NULL;
    if (!c || !evs || ep < 0 || !payload || !frame || (echo && !lat)) {
        perror("wsload");
        return 1;
    }
    signal(SIGTERM, on_stop);
    signal(SIGINT, on_stop);
    signal(SIGPIPE, SIG_IGN);

    long inflight = 0, next_free = 0, opened = 0;
    int64_t last_status = 0, t_start = 0, t_end = 0;
    long messages = 0;
    static uint8_t buf[65536];

#define CLOSE(i, counter)                                                      \
    do {                                                                       \
        if (c[i].state == ST_CONNECTING || c[i].state == ST_SHAKING)           \
            inflight--;                                                        \
        if (c[i].state == ST_OPEN)                                             \
            opened--;                                                          \
        close(c[i].fd);                                                        \
        st.open--;                                                             \
        counter++;                                                             \
        c[i].state = ST_DEAD;                                                  \
    } while (0)

    while (!stop) {
        while (inflight < inflight_max && next_free < count) {
            long i = next_free;
            int fd =
                socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0) {
                st.errors++;
                break;
            }
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (src) {
                setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                           sizeof one);
                struct sockaddr_in *sa = &srcaddr[st.connects % nsrc];
                if (bind(fd, (struct sockaddr *)sa, sizeof *sa) < 0) {
                    close(fd);
                    st.errors++;
                    break;
                }
            }
            st.connects++;
            if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0 &&
                errno != EINPROGRESS) {
                close(fd);
                st.errors++;
                next_free++;
                continue;
            }
            c[i].fd = fd;
            c[i].state = ST_CONNECTING;
            st.open++;
            inflight++;
            struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP,
                                     .data.u64 = (uint64_t)i};
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
            next_free++;
        }

        int n = epoll_wait(ep, evs, 1024, 100);
        int64_t now = now_ns();
        for (int k = 0; k < n; k++) {
            long i = (long)evs[k].data.u64;
            if (c[i].state == ST_FREE || c[i].state == ST_DEAD)
                continue;
            if (c[i].state == ST_CONNECTING) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c[i].fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err || (evs[k].events & (EPOLLERR | EPOLLHUP))) {
                    CLOSE(i, st.errors);
                    continue;
                }
                if (!(evs[k].events & EPOLLOUT))
                    continue;
                if (send(c[i].fd, req, (size_t)reqlen, MSG_NOSIGNAL) !=
                    reqlen) {
                    CLOSE(i, st.errors);
                    continue;
                }
                struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP,
                                         .data.u64 = (uint64_t)i};
                epoll_ctl(ep, EPOLL_CTL_MOD, c[i].fd, &ev);
                c[i].state = ST_SHAKING;
                continue;
            }
            ssize_t r = recv(c[i].fd, buf, sizeof buf, 0);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                CLOSE(i, st.closed);
                continue;
            }
            if (r < 0)
                continue;
            ssize_t off = 0;
            if (c[i].state == ST_SHAKING) {
                /* the 101's head: its status, then up to its blank line
                 * (the server sends nothing after it unasked) */
                if (c[i].matched == 0 &&
                    (r < 12 || memcmp(buf, "HTTP/1.1 101", 12) != 0)) {
                    CLOSE(i, st.errors);
                    continue;
                }
                static const char end[] = "\r\n\r\n";
                for (; off < r && c[i].matched < 4; off++)
                    c[i].matched = buf[off] == end[c[i].matched]
                                       ? c[i].matched + 1
                                       : (buf[off] == '\r' ? 1 : 0);
                if (c[i].matched < 4)
                    continue;
                c[i].state = ST_OPEN;
                inflight--;
                opened++;
                if (opened == count && !st.ready) {
                    st.ready = 1;
                    if (echo) { /* all open: the clock starts */
                        t_start = now_ns();
                        t_end = t_start + (int64_t)(seconds * 1e9);
                        for (long j = 0; j < count; j++) {
                            if (c[j].state != ST_OPEN)
                                continue;
                            c[j].sent_ns = now_ns();
                            if (send(c[j].fd, frame, frame_len, MSG_NOSIGNAL) !=
                                (ssize_t)frame_len)
                                CLOSE(j, st.errors);
                        }
                    }
                }
                if (off == r)
                    continue;
            }
            if (!echo) {
                /* held: answer a ping that came whole in this read */
                uint8_t *p = buf + off;
                size_t left = (size_t)(r - off);
                if (left >= 2 && p[0] == 0x89 && p[1] < 126 &&
                    left >= 2u + p[1]) {
                    uint8_t pong[136];
                    size_t pl = ws_frame(pong, 0xA, p + 2, p[1]);
                    send(c[i].fd, pong, pl, MSG_NOSIGNAL | MSG_DONTWAIT);
                }
                continue;
            }
            if (!st.ready)
                continue; /* an echo client sends only once all are open */
            /* the echo, unmasked: checked whole, then the next message */
            uint8_t *p = buf + off;
            size_t left = (size_t)(r - off);
            if (c[i].got + left > echo_len) {
                fprintf(stderr, "wsload: %zu unexpected bytes (opcode %#x)\n",
                        c[i].got + left - echo_len, p[0]);
                CLOSE(i, st.errors);
                continue;
            }
            /* checked when it comes in one read, as it does on loopback */
            if (c[i].got == 0 &&
                (p[0] != 0x81 ||
                 (left == echo_len &&
                  memcmp(p + echo_len - msg_len, payload, msg_len) != 0))) {
                fprintf(stderr, "wsload: not the echo (opcode %#x)\n", p[0]);
                CLOSE(i, st.errors);
                continue;
            }
            c[i].got = (uint16_t)(c[i].got + left);
            if (c[i].got < echo_len)
                continue;
            c[i].got = 0;
            messages++;
            if (nlat < lat_cap)
                lat[nlat++] = now - c[i].sent_ns;
            if (now >= t_end)
                continue; /* time is up: this connection rests */
            c[i].sent_ns = now_ns();
            if (send(c[i].fd, frame, frame_len, MSG_NOSIGNAL) !=
                (ssize_t)frame_len)
                CLOSE(i, st.errors);
        }
        if (echo && st.ready && now >= t_end)
            break;
        if (echo && next_free == count && opened + inflight == 0)
            break; /* everything failed */
        if (!echo && now - last_status >= 200000000) {
            write_status();
            last_status = now;
        }
    }
    if (!echo) {
        write_status();
        status_path = NULL;
        write_status();
        return 0;
    }
    if (!st.ready) {
        fprintf(stderr,
                "wsload: only %ld of %ld connections opened (%ld "
                "errors, %ld closed)\n",
                opened, count, st.errors, st.closed);
        return 1;
    }
    double secs = (double)(now_ns() - t_start) / 1e9;
    qsort(lat, nlat, sizeof *lat, cmp_i64);
    printf("conns %ld messages %ld seconds %.3f rate %.0f p50_us %.1f p99_us "
           "%.1f errors %ld\n",
           count, messages, secs, (double)messages / secs,
           nlat ? (double)lat[nlat / 2] / 1e3 : 0.0,
           nlat ? (double)lat[nlat * 99 / 100] / 1e3 : 0.0,
           st.errors + st.closed);
    return 0;
}
