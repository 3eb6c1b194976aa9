/*
 * holdconns.c - holds many TCP connections to an HTTP server, cheaply (one
 * epoll, a 16-byte record per connection), for tests/bench/bench_endurance.sh.
 *
 *   holdconns idle HOST PORT COUNT [options]
 *       each connection sends one keep-alive GET PATH, reads the response,
 *       then stays open and silent
 *   holdconns slow HOST PORT COUNT [options]
 *       each connection sends part of a head (slowloris), then one more
 *       byte of a header value every -i ms, never finishing the head
 *
 * options:
 *   -s ADDR[,ADDR...]  bind to these source addresses (in turn) before
 *             connecting: loopback has ~28,000 ephemeral ports per source
 *             address, and the kernel's search for a free one slows down
 *             as they fill (16,000 on one address connect 3x slower than
 *             5,000 on each of three)
 *   -p PATH   the idle GET's target (/hello)
 *   -c N      at most N connects in flight at once (256)
 *   -i MS     slow: milliseconds between two bytes on one connection (1000)
 *   -R        reconnect a connection the server closed (keep COUNT open)
 *   -o FILE   status, rewritten (atomically) every 200 ms:
 *             "open N ready 0|1 connects N closed N errors N r408 N r200 N"
 *             ready is 1 once COUNT are open (idle: and answered)
 *
 * Runs until SIGTERM/SIGINT, then prints the status line on stdout.
 * Needs an RLIMIT_NOFILE above COUNT (it raises the soft limit to the hard).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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

enum { ST_FREE, ST_CONNECTING, ST_WAITING, ST_HELD, ST_DEAD };

struct conn {
    int fd;
    uint8_t state;
    uint8_t matched; /* idle: bytes of "\r\n\r\n" matched so far */
    uint16_t pad;
    int64_t next; /* slow: next drip (ms); idle: body bytes still due, -1 */
};

static volatile sig_atomic_t stop;
static void on_stop(int sig)
{
    (void)sig;
    stop = 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct {
    long open, connects, closed, errors, r408, r200;
    int ready;
} st;

static const char *status_path;

static void write_status(void)
{
    char line[256];
    int n = snprintf(line, sizeof line,
                     "open %ld ready %d connects %ld closed %ld errors %ld "
                     "r408 %ld r200 %ld\n",
                     st.open, st.ready, st.connects, st.closed, st.errors,
                     st.r408, st.r200);
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
    fprintf(stderr, "usage: holdconns idle|slow HOST PORT COUNT [-s ADDR,...] "
                    "[-p PATH] [-c N] [-i MS] [-R] [-o FILE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 5)
        usage();
    int slow = strcmp(argv[1], "slow") == 0;
    if (!slow && strcmp(argv[1], "idle") != 0)
        usage();
    struct sockaddr_in dst = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, argv[2], &dst.sin_addr) != 1)
        usage();
    dst.sin_port = htons((uint16_t)atoi(argv[3]));
    long count = atol(argv[4]);
    if (count <= 0)
        usage();
    const char *src = NULL, *path = "/hello";
    long inflight_max = 256, interval = 1000;
    int reconnect = 0;
    optind = 5;
    for (int o; (o = getopt(argc, argv, "s:p:c:i:Ro:")) != -1;) {
        switch (o) {
        case 's':
            src = optarg;
            break;
        case 'p':
            path = optarg;
            break;
        case 'c':
            inflight_max = atol(optarg);
            break;
        case 'i':
            interval = atol(optarg);
            break;
        case 'R':
            reconnect = 1;
            break;
        case 'o':
            status_path = optarg;
            break;
        default:
            usage();
        }
    }
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
                    "holdconns: %ld connections need %ld fds; the "
                    "limit is %ld\n",
                    count, count + 16, (long)rl.rlim_cur);
            return 1;
        }
    }

    char req[1024];
    int reqlen;
    if (slow)
        reqlen = snprintf(req, sizeof req,
                          "GET /hello HTTP/1.1\r\nHost: bench\r\nX-Slow: a");
    else
        reqlen = snprintf(req, sizeof req,
                          "GET %s HTTP/1.1\r\nHost: bench\r\n"
                          "Connection: keep-alive\r\n\r\n",
                          path);

    struct conn *c = calloc((size_t)count, sizeof *c);
    struct epoll_event *evs = calloc(1024, sizeof *evs);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (!c || !evs || ep < 0) {
        perror("holdconns");
        return 1;
    }
    signal(SIGTERM, on_stop);
    signal(SIGINT, on_stop);
    signal(SIGPIPE, SIG_IGN);

    long inflight = 0, next_free = 0, held = 0;
    int64_t last_status = 0;
    size_t drip_cursor = 0;
    static char buf[65536];

#define CLOSE(i, counter)                                                      \
    do {                                                                       \
        if (c[i].state == ST_CONNECTING)                                       \
            inflight--;                                                        \
        if (c[i].state == ST_HELD)                                             \
            held--;                                                            \
        close(c[i].fd);                                                        \
        st.open--;                                                             \
        counter++;                                                             \
        /* a failed connect is retried; a connection the server closed is      \
         * replaced only with -R */                                            \
        c[i].state =                                                           \
            (reconnect || &counter == &st.errors) ? ST_FREE : ST_DEAD;         \
        if (c[i].state == ST_FREE && i < next_free)                            \
            next_free = i;                                                     \
    } while (0)

    while (!stop) {
        /* start connects: the lowest free slots first */
        while (inflight < inflight_max && next_free < count) {
            if (c[next_free].state != ST_FREE) {
                next_free++;
                continue;
            }
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
                if (errno == EADDRNOTAVAIL)
                    break;
                continue;
            }
            c[i].fd = fd;
            c[i].state = ST_CONNECTING;
            c[i].matched = 0;
            c[i].next = -1;
            st.open++;
            inflight++;
            struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP,
                                     .data.u64 = (uint64_t)i};
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
            next_free++;
        }

        int n = epoll_wait(ep, evs, 1024, slow ? 20 : 100);
        int64_t now = now_ms();
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
                    goto readable;
                inflight--;
                if (send(c[i].fd, req, (size_t)reqlen, MSG_NOSIGNAL) !=
                    reqlen) {
                    c[i].state = ST_WAITING; /* counted back below */
                    CLOSE(i, st.errors);
                    continue;
                }
                struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP,
                                         .data.u64 = (uint64_t)i};
                epoll_ctl(ep, EPOLL_CTL_MOD, c[i].fd, &ev);
                if (slow) {
                    c[i].state = ST_HELD;
                    held++;
                    /* spread the drips over the interval */
                    c[i].next = now + interval / 2 + rand() % (interval + 1);
                } else {
                    c[i].state = ST_WAITING;
                }
                continue;
            }
        readable:;
            ssize_t r = recv(c[i].fd, buf, sizeof buf, 0);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                CLOSE(i, st.closed);
                continue;
            }
            if (r < 0)
                continue;
            if (c[i].state == ST_CONNECTING) /* data before writable? */
                continue;
            if (slow || c[i].state == ST_HELD) {
                /* the server answered a head that never ended: 408 on
                 * eviction or header timeout; it closes next */
                if (r >= 12 && memcmp(buf, "HTTP/1.1 408", 12) == 0)
                    st.r408++;
                continue;
            }
            /* idle, waiting for the response: find the end of the head,
             * then Content-Length bytes */
            ssize_t off = 0;
            if (c[i].next < 0) {
                if (r >= 12 && memcmp(buf, "HTTP/1.1 200", 12) == 0)
                    st.r200++;
                static const char end[] = "\r\n\r\n";
                for (; off < r && c[i].matched < 4; off++)
                    c[i].matched = buf[off] == end[c[i].matched]
                                       ? c[i].matched + 1
                                       : (buf[off] == '\r' ? 1 : 0);
                if (c[i].matched < 4)
                    continue;
                /* Content-Length, if it is in this read (it is for small
                 * heads); else assume what remains of this read is all */
                int64_t cl = 0;
                char *p = memmem(buf, (size_t)off, "Content-Length:", 15);
                if (!p)
                    p = memmem(buf, (size_t)off, "content-length:", 15);
                if (p)
                    cl = strtoll(p + 15, NULL, 10);
                else
                    cl = r - off;
                c[i].next = cl;
            }
            c[i].next -= r - off;
            if (c[i].next <= 0) {
                c[i].state = ST_HELD;
                held++;
            }
        }

        if (slow) { /* drip: one byte to each connection whose time came */
            for (long scanned = 0; scanned < count; scanned++) {
                size_t i = drip_cursor++ % (size_t)count;
                if (c[i].state != ST_HELD || c[i].next > now)
                    continue;
                if (send(c[i].fd, "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
                    errno != EAGAIN) {
                    CLOSE((long)i, st.closed);
                    continue;
                }
                c[i].next = now + interval;
            }
        }
        st.ready = held >= count;
        if (now - last_status >= 200) {
            write_status();
            last_status = now;
        }
    }
    write_status();
    status_path = NULL;
    write_status();
    return 0;
}
