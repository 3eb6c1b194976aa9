/*
 * ops.c - one round of each blocking op, written the way any C program
 * would: blocking fds, usleep, poll, getaddrinfo, libcurl. The other side
 * of a read is a plain thread (bk_later, bk_peer), never a coroutine API.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <curl/curl.h>

#include "blocking.h"

/* What a round writes before the peer answers: more than any socket or pipe
 * buffer holds, so the write itself has to wait for the peer. */
#define BK_BIG (1024 * 1024)

static struct timespec bk_ts(int ms)
{
    return (struct timespec){ms / 1000, (long)(ms % 1000) * 1000000L};
}

void bk_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* ---- the plain threads on the other side ------------------------------ */

static void *bk_later_main(void *arg)
{
    struct bk_later *l = arg;
    struct timespec ts = bk_ts(l->ms);
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    errno = 0;
    l->rc = write(l->fd, l->data, l->len);
    l->err = errno;
    return NULL;
}

int bk_later_start(struct bk_later *l, int fd, const void *data, size_t len,
                   int ms)
{
    memset(l, 0, sizeof *l);
    l->fd = fd;
    l->ms = ms;
    l->len = len > sizeof l->data ? sizeof l->data : len;
    memcpy(l->data, data, l->len);
    pthread_t th;
    int rc = pthread_create(&th, NULL, bk_later_main, l);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    l->th = (unsigned long)th;
    l->started = 1;
    return 0;
}

void bk_later_join(struct bk_later *l)
{
    if (l->started)
        pthread_join((pthread_t)l->th, NULL);
    l->started = 0;
}

/* The peer of an exchange: reads BK_BIG bytes from in, waits ms, answers
 * "pong" on out. */
struct bk_peer {
    pthread_t th;
    int in, out, ms;
    size_t got;
    long rc;
    int err;
};

static void *bk_peer_main(void *arg)
{
    struct bk_peer *p = arg;
    char *buf = malloc(65536);
    while (buf && p->got < BK_BIG) {
        ssize_t r = read(p->in, buf, 65536);
        if (r <= 0) {
            p->err = r < 0 ? errno : 0;
            break;
        }
        p->got += (size_t)r;
    }
    free(buf);
    struct timespec ts = bk_ts(p->ms);
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    p->rc = write(p->out, "pong", 4);
    return NULL;
}

/* ---- the calls by flavour (via) --------------------------------------- */

static const char *const bk_via_names[] = {"read/write", "readv/writev",
                                           "recv/send", "recvfrom/sendto",
                                           "recvmsg/sendmsg"};

static ssize_t bk_write_via(int fd, const char *buf, size_t n, int via)
{
    struct iovec iov[2] = {{(void *)buf, n / 2},
                           {(void *)(buf + n / 2), n - n / 2}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
    switch (via) {
    case 1:
        return writev(fd, iov, 2);
    case 2:
        return send(fd, buf, n, 0);
    case 3:
        return sendto(fd, buf, n, 0, NULL, 0);
    case 4:
        return sendmsg(fd, &mh, 0);
    default:
        return write(fd, buf, n);
    }
}

static ssize_t bk_read_via(int fd, char *buf, size_t n, int via)
{
    struct iovec iov[2] = {{buf, n / 2}, {buf + n / 2, n - n / 2}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = n > 1 ? 2 : 1};
    if (n <= 1)
        iov[0].iov_len = n;
    struct sockaddr_storage from;
    socklen_t fromlen = sizeof from;
    switch (via) {
    case 1:
        return readv(fd, iov, n > 1 ? 2 : 1);
    case 2:
        return recv(fd, buf, n, 0);
    case 3:
        return recvfrom(fd, buf, n, 0, (struct sockaddr *)&from, &fromlen);
    case 4:
        return recvmsg(fd, &mh, 0);
    default:
        return read(fd, buf, n);
    }
}

/* Writes BK_BIG bytes on wfd (one blocking call: it must write them all),
 * then reads "pong" from rfd, the peer thread being on the other ends. */
static int bk_exchange(const char *what, int *wfdp, int rfd, int peer_in,
                       int peer_out, int via, int ms, struct bk_out *o)
{
    int wfd = *wfdp;
    struct bk_peer p = {.in = peer_in, .out = peer_out, .ms = ms};
    int rc = pthread_create(&p.th, NULL, bk_peer_main, &p);
    if (rc != 0) {
        bk_fail(o, "%s: pthread_create: %s", what, bk_errname(rc));
        return -1;
    }
    int ok = 0;
    char *big = malloc(BK_BIG);
    memset(big, 'z', BK_BIG);
    errno = 0;
    ssize_t w = bk_write_via(wfd, big, BK_BIG, via);
    int err = errno;
    free(big);
    if (w != BK_BIG) {
        bk_fail(o,
                "%s %s: a blocking write of %d bytes returned %zd errno=%s "
                "(it must write them all)",
                what, bk_via_names[via], BK_BIG, w, bk_errname(err));
        /* let the peer finish: it waits for bytes that will not come */
        if (wfd == rfd)
            shutdown(wfd, SHUT_WR);
        else
            bk_close(wfdp);
        goto out;
    }
    char pong[8];
    size_t got = 0;
    while (got < 4) {
        errno = 0;
        ssize_t r = bk_read_via(rfd, pong + got, 4 - got, via);
        if (r <= 0) {
            bk_fail(o, "%s %s: a blocking read returned %zd errno=%s", what,
                    bk_via_names[via], r, bk_errname(errno));
            goto out;
        }
        got += (size_t)r;
    }
    if (memcmp(pong, "pong", 4) != 0) {
        bk_fail(o, "%s %s: read '%.4s', not 'pong'", what, bk_via_names[via],
                pong);
        goto out;
    }
    int fl = fcntl(rfd, F_GETFL);
    if (fl < 0 || (fl & O_NONBLOCK)) {
        bk_fail(o, "%s: F_GETFL says 0x%x: O_NONBLOCK the user never set", what,
                fl);
        goto out;
    }
    ok = 1;
out:
    pthread_join(p.th, NULL);
    if (ok && (p.got != BK_BIG || p.rc != 4)) {
        bk_fail(o, "%s: the peer read %zu of %d bytes (errno %s)", what, p.got,
                BK_BIG, bk_errname(p.err));
        ok = 0;
    }
    return ok ? 0 : -1;
}

/* A connected loopback TCP pair from a blocking listen/connect/accept. */
static int bk_tcp_pair(int sv[2], struct bk_out *o)
{
    sv[0] = sv[1] = -1;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(l, 4) < 0 || getsockname(l, (struct sockaddr *)&sa, &len) < 0 ||
        (sv[0] = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        connect(sv[0], (struct sockaddr *)&sa, len) < 0 ||
        (sv[1] = accept(l, NULL, NULL)) < 0) {
        bk_fail(o, "tcp pair: %s", bk_errname(errno));
        if (l >= 0)
            close(l);
        bk_close(&sv[0]);
        bk_close(&sv[1]);
        return -1;
    }
    close(l);
    return 0;
}

/* ---- the ops ----------------------------------------------------------- */

static int op_usleep(const struct bk_args *a, struct bk_out *o)
{
    errno = 0;
    int rc = usleep((useconds_t)a->ms * 1000U);
    if (rc != 0) {
        bk_fail(o, "usleep(%d ms) = %d errno=%s", a->ms, rc, bk_errname(errno));
        return -1;
    }
    return 0;
}

static int op_nanosleep(const struct bk_args *a, struct bk_out *o)
{
    struct timespec ts = bk_ts(a->ms), rem = {-1, -1};
    errno = 0;
    int rc = nanosleep(&ts, &rem);
    if (rc != 0) {
        bk_fail(o, "nanosleep(%d ms) = %d errno=%s", a->ms, rc,
                bk_errname(errno));
        return -1;
    }
    return 0;
}

static int op_clock_nanosleep(const struct bk_args *a, struct bk_out *o)
{
    struct timespec ts = bk_ts(a->ms);
    int rc = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
    if (rc != 0) {
        bk_fail(o, "clock_nanosleep(relative %d ms) = %d", a->ms, rc);
        return -1;
    }
    return 0;
}

static int op_clock_nanosleep_abs(const struct bk_args *a, struct bk_out *o)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    int64_t target = (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec +
                     (int64_t)a->ms * 1000000LL;
    t.tv_sec = (time_t)(target / 1000000000LL);
    t.tv_nsec = (long)(target % 1000000000LL);
    int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
    int64_t now = bk_now_ns();
    if (rc != 0 || now < target) {
        bk_fail(o,
                "clock_nanosleep(TIMER_ABSTIME, +%d ms) = %d, woke %lld ns "
                "before its deadline",
                a->ms, rc, (long long)(target - now));
        return -1;
    }
    return 0;
}

static int op_sleep(const struct bk_args *a, struct bk_out *o)
{
    (void)a;
    unsigned left = sleep(1);
    if (left != 0) {
        bk_fail(o, "sleep(1) = %u", left);
        return -1;
    }
    return 0;
}

/* poll/ppoll/select/pselect on fds that never become ready: a pipe's read
 * end and one end of a socket pair; each call times out and returns 0. */
static int bk_wait_none(const struct bk_args *a, struct bk_out *o, int kind)
{
    int p[2] = {-1, -1}, sv[2] = {-1, -1};
    if (pipe(p) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        bk_fail(o, "pipe/socketpair: %s", bk_errname(errno));
        return -1;
    }
    int rc = -2, err = 0, dirty = 0;
    struct timespec ts = bk_ts(a->ms);
    if (kind < 2) {
        struct pollfd pf[2] = {{p[0], POLLIN, 0}, {sv[0], POLLIN, 0}};
        errno = 0;
        rc = kind == 0 ? poll(pf, 2, a->ms) : ppoll(pf, 2, &ts, NULL);
        err = errno;
        dirty = pf[0].revents || pf[1].revents;
    } else {
        fd_set rs;
        FD_ZERO(&rs);
        FD_SET(p[0], &rs);
        FD_SET(sv[0], &rs);
        int nfds = (p[0] > sv[0] ? p[0] : sv[0]) + 1;
        struct timeval tv = {a->ms / 1000, (a->ms % 1000) * 1000};
        errno = 0;
        rc = kind == 2 ? select(nfds, &rs, NULL, NULL, &tv)
                       : pselect(nfds, &rs, NULL, NULL, &ts, NULL);
        err = errno;
        dirty = FD_ISSET(p[0], &rs) || FD_ISSET(sv[0], &rs);
    }
    static const char *const names[] = {"poll", "ppoll", "select", "pselect"};
    bk_close(&p[0]);
    bk_close(&p[1]);
    bk_close(&sv[0]);
    bk_close(&sv[1]);
    if (rc != 0 || dirty) {
        bk_fail(o, "%s on fds never ready, %d ms: %d errno=%s%s", names[kind],
                a->ms, rc, bk_errname(err), dirty ? " (fds marked ready)" : "");
        return -1;
    }
    return 0;
}

static int op_poll(const struct bk_args *a, struct bk_out *o)
{
    return bk_wait_none(a, o, 0);
}

static int op_ppoll(const struct bk_args *a, struct bk_out *o)
{
    return bk_wait_none(a, o, 1);
}

static int op_select(const struct bk_args *a, struct bk_out *o)
{
    return bk_wait_none(a, o, 2);
}

static int op_pselect(const struct bk_args *a, struct bk_out *o)
{
    return bk_wait_none(a, o, 3);
}

/* A socket pair: BK_BIG bytes one way, "pong" back (via picks the calls). */
static int op_sock(const struct bk_args *a, struct bk_out *o)
{
    int sv[2];
    if (a->via < 0 || a->via > 4) {
        bk_fail(o, "via %d", a->via);
        return -1;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        bk_fail(o, "socketpair: %s", bk_errname(errno));
        return -1;
    }
    int rc = bk_exchange("unix socket", &sv[0], sv[0], sv[1], sv[1], a->via,
                         a->ms, o);
    bk_close(&sv[0]);
    bk_close(&sv[1]);
    return rc;
}

static int op_tcp(const struct bk_args *a, struct bk_out *o)
{
    int sv[2];
    if (a->via < 0 || a->via > 4) {
        bk_fail(o, "via %d", a->via);
        return -1;
    }
    if (bk_tcp_pair(sv, o) < 0)
        return -1;
    int rc = bk_exchange("tcp socket", &sv[0], sv[0], sv[1], sv[1], a->via,
                         a->ms, o);
    bk_close(&sv[0]);
    bk_close(&sv[1]);
    return rc;
}

/* Two pipes: BK_BIG bytes into one, "pong" back on the other. */
static int op_pipe(const struct bk_args *a, struct bk_out *o)
{
    int to[2] = {-1, -1}, back[2] = {-1, -1};
    if (a->via < 0 || a->via > 1) {
        bk_fail(o, "via %d (pipes: 0 read/write, 1 readv/writev)", a->via);
        return -1;
    }
    if (pipe(to) < 0 || pipe(back) < 0) {
        bk_fail(o, "pipe: %s", bk_errname(errno));
        return -1;
    }
    int rc =
        bk_exchange("pipe", &to[1], back[0], to[0], back[1], a->via, a->ms, o);
    bk_close(&to[0]);
    bk_close(&to[1]);
    bk_close(&back[0]);
    bk_close(&back[1]);
    return rc;
}

/* poll with no timeout until a thread writes to the pipe, then read. */
static int op_pipe_poll(const struct bk_args *a, struct bk_out *o)
{
    int p[2];
    if (pipe(p) < 0) {
        bk_fail(o, "pipe: %s", bk_errname(errno));
        return -1;
    }
    struct bk_later l;
    if (bk_later_start(&l, p[1], "x", 1, a->ms) < 0) {
        bk_fail(o, "thread: %s", bk_errname(errno));
        return -1;
    }
    struct pollfd pf = {p[0], POLLIN, 0};
    errno = 0;
    int rc = poll(&pf, 1, -1);
    int err = errno;
    char c = 0;
    ssize_t r = rc == 1 ? read(p[0], &c, 1) : -2;
    bk_later_join(&l);
    bk_close(&p[0]);
    bk_close(&p[1]);
    if (rc != 1 || pf.revents != POLLIN || r != 1 || c != 'x') {
        bk_fail(o,
                "poll(-1) on a pipe a thread writes to: %d errno=%s "
                "revents=0x%x, then read %zd",
                rc, bk_errname(err), pf.revents, r);
        return -1;
    }
    return 0;
}

/* A blocking eventfd read until a thread adds 1. */
static int op_eventfd(const struct bk_args *a, struct bk_out *o)
{
    int fd = eventfd(0, 0);
    if (fd < 0) {
        bk_fail(o, "eventfd: %s", bk_errname(errno));
        return -1;
    }
    uint64_t one = 1, v = 0;
    struct bk_later l;
    if (bk_later_start(&l, fd, &one, sizeof one, a->ms) < 0) {
        bk_fail(o, "thread: %s", bk_errname(errno));
        close(fd);
        return -1;
    }
    errno = 0;
    ssize_t r = read(fd, &v, sizeof v);
    int err = errno;
    bk_later_join(&l);
    close(fd);
    if (r != 8 || v != 1) {
        bk_fail(o, "eventfd read: %zd errno=%s value=%llu", r, bk_errname(err),
                (unsigned long long)v);
        return -1;
    }
    return 0;
}

/* A thread that connects after ms, sends "hi", and waits for "bye". */
struct bk_dialer {
    pthread_t th;
    struct sockaddr_in sa;
    int ms;
    int ok;
};

static void *bk_dialer_main(void *arg)
{
    struct bk_dialer *d = arg;
    struct timespec ts = bk_ts(d->ms);
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char buf[4];
    if (fd >= 0 && connect(fd, (struct sockaddr *)&d->sa, sizeof d->sa) == 0 &&
        write(fd, "hi", 2) == 2 && read(fd, buf, 3) == 3)
        d->ok = memcmp(buf, "bye", 3) == 0;
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* accept (via 0) or accept4 (via 1) on a blocking listener a thread
 * connects to later; the accepted socket is blocking. */
static int op_accept(const struct bk_args *a, struct bk_out *o)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct bk_dialer d = {.sa = {.sin_family = AF_INET,
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)},
                          .ms = a->ms};
    socklen_t len = sizeof d.sa;
    if (l < 0 || bind(l, (struct sockaddr *)&d.sa, sizeof d.sa) < 0 ||
        listen(l, 4) < 0 || getsockname(l, (struct sockaddr *)&d.sa, &len)) {
        bk_fail(o, "listener: %s", bk_errname(errno));
        if (l >= 0)
            close(l);
        return -1;
    }
    if (pthread_create(&d.th, NULL, bk_dialer_main, &d) != 0) {
        bk_fail(o, "pthread_create");
        close(l);
        return -1;
    }
    struct sockaddr_in peer;
    socklen_t plen = sizeof peer;
    errno = 0;
    int fd = a->via == 1
                 ? accept4(l, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC)
                 : accept(l, (struct sockaddr *)&peer, &plen);
    int err = errno, ok = 0;
    char buf[4];
    if (fd < 0) {
        bk_fail(o, "%s: -1 errno=%s", a->via == 1 ? "accept4" : "accept",
                bk_errname(err));
    } else if (plen != sizeof peer || peer.sin_family != AF_INET) {
        bk_fail(o, "accept: peer address len %u family %d", plen,
                peer.sin_family);
    } else if (fcntl(fd, F_GETFL) & O_NONBLOCK) {
        bk_fail(o, "the accepted socket says O_NONBLOCK");
    } else if (read(fd, buf, 2) != 2 || memcmp(buf, "hi", 2) != 0) {
        bk_fail(o, "read 'hi' from the accepted socket: %s", bk_errname(errno));
    } else if (write(fd, "bye", 3) != 3) {
        bk_fail(o, "write 'bye': %s", bk_errname(errno));
    } else {
        ok = 1;
    }
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR); /* a failed round must not hang the dialer */
    pthread_join(d.th, NULL);
    if (fd >= 0)
        close(fd);
    close(l);
    if (ok && !d.ok) {
        bk_fail(o, "the dialer thread did not get 'bye'");
        ok = 0;
    }
    return ok ? 0 : -1;
}

/* A blocking HTTP client: getaddrinfo("localhost") + socket + connect +
 * send + recv, asking this very server for /hello. */
static int op_client(const struct bk_args *a, struct bk_out *o)
{
    char port[16];
    snprintf(port, sizeof port, "%d", a->port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo("localhost", port, &hints, &res);
    if (rc != 0) {
        bk_fail(o, "getaddrinfo(localhost, %s) = %d (%s)", port, rc,
                gai_strerror(rc));
        return -1;
    }
    int fd = -1, last = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        last = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        bk_fail(o, "connect to localhost:%s: %s", port, bk_errname(last));
        return -1;
    }
    /* a polite client bounds its reads (and --no-hooks would deadlock) */
    struct timeval tv = {20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    static const char req[] = "GET /hello HTTP/1.0\r\nHost: localhost\r\n\r\n";
    size_t off = 0;
    while (off < sizeof req - 1) {
        ssize_t w = send(fd, req + off, sizeof req - 1 - off, MSG_NOSIGNAL);
        if (w <= 0) {
            bk_fail(o, "send: %s", bk_errname(errno));
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    char buf[2048];
    size_t got = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (r == 0)
            break;
        if (r < 0) {
            bk_fail(o, "recv after %zu bytes: %s", got, bk_errname(errno));
            close(fd);
            return -1;
        }
        got += (size_t)r;
        if (got == sizeof buf - 1)
            break;
    }
    close(fd);
    buf[got] = '\0';
    if (strncmp(buf, "HTTP/1.", 7) != 0 || strncmp(buf + 8, " 200", 4) != 0 ||
        !strstr(buf, "Hello, World!")) {
        bk_fail(o, "GET /hello answered: %.200s", buf);
        return -1;
    }
    return 0;
}

static size_t bk_curl_write(char *data, size_t size, size_t n, void *arg)
{
    bk_say(arg, "%.*s", (int)(size * n), data);
    return size * n;
}

/* libcurl's easy interface, unchanged, asking this server for /hello. */
static int op_curl(const struct bk_args *a, struct bk_out *o)
{
    CURL *h = curl_easy_init();
    if (!h) {
        bk_fail(o, "curl_easy_init");
        return -1;
    }
    char url[64];
    snprintf(url, sizeof url, "http://localhost:%d/hello", a->port);
    struct bk_out body = {0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, bk_curl_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    int ok = rc == CURLE_OK && status == 200 && body.buf && body.len == 14 &&
             memcmp(body.buf, "Hello, World!\n", 14) == 0;
    if (!ok)
        bk_fail(o, "curl %s: %d (%s), status %ld, body '%.*s'", url, rc,
                curl_easy_strerror(rc), status, (int)body.len,
                body.buf ? body.buf : "");
    free(body.buf);
    return ok ? 0 : -1;
}

/* SO_RCVTIMEO of ms on a socket nobody writes to: recv (via 0), read (1)
 * or recvmsg (2) gives -1 EAGAIN after it, as Linux does. */
static int op_rcvtimeo(const struct bk_args *a, struct bk_out *o)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        bk_fail(o, "socketpair: %s", bk_errname(errno));
        return -1;
    }
    struct timeval tv = {a->ms / 1000, (a->ms % 1000) * 1000};
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[8];
    struct iovec iov = {buf, sizeof buf};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    errno = 0;
    ssize_t r = a->via == 1   ? read(sv[0], buf, sizeof buf)
                : a->via == 2 ? recvmsg(sv[0], &mh, 0)
                              : recv(sv[0], buf, sizeof buf, 0);
    int err = errno;
    close(sv[0]);
    close(sv[1]);
    if (r != -1 || (err != EAGAIN && err != EWOULDBLOCK)) {
        bk_fail(o,
                "SO_RCVTIMEO %d ms, nothing sent: %s = %zd errno=%s "
                "(want -1 EAGAIN)",
                a->ms,
                a->via == 1   ? "read"
                : a->via == 2 ? "recvmsg"
                              : "recv",
                r, bk_errname(err));
        return -1;
    }
    return 0;
}

/* SO_SNDTIMEO of ms on a socket whose peer never reads: a big blocking
 * send returns what fit after the timeout, the next one -1 EAGAIN. */
static int op_sndtimeo(const struct bk_args *a, struct bk_out *o)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        bk_fail(o, "socketpair: %s", bk_errname(errno));
        return -1;
    }
    struct timeval tv = {a->ms / 1000, (a->ms % 1000) * 1000};
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    char *big = calloc(1, BK_BIG);
    errno = 0;
    ssize_t w1 = send(sv[0], big, BK_BIG, MSG_NOSIGNAL);
    int err1 = errno;
    errno = 0;
    ssize_t w2 = send(sv[0], big, BK_BIG, MSG_NOSIGNAL);
    int err2 = errno;
    free(big);
    close(sv[0]);
    close(sv[1]);
    if (w1 <= 0 || w1 >= BK_BIG || w2 != -1 ||
        (err2 != EAGAIN && err2 != EWOULDBLOCK)) {
        bk_fail(o,
                "SO_SNDTIMEO %d ms, peer not reading: send = %zd errno=%s "
                "(want part of %d), then %zd errno=%s (want -1 EAGAIN)",
                a->ms, w1, bk_errname(err1), BK_BIG, w2, bk_errname(err2));
        return -1;
    }
    return 0;
}

/* Name lookups, which run whole on threads: each one parks the caller. */
static int op_names(const struct bk_args *a, struct bk_out *o)
{
    (void)a;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM},
                    *res = NULL;
    int rc = getaddrinfo("localhost", "80", &hints, &res);
    char host[64] = "", serv[16] = "";
    if (rc == 0) {
        struct sockaddr_in *sin = (struct sockaddr_in *)res->ai_addr;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        rc = getnameinfo(res->ai_addr, res->ai_addrlen, host, sizeof host, serv,
                         sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV);
        freeaddrinfo(res);
    }
    if (rc != 0 || strcmp(host, "127.0.0.1") != 0 || strcmp(serv, "80") != 0) {
        bk_fail(o, "getaddrinfo/getnameinfo localhost: %d (%s) '%s' '%s'", rc,
                gai_strerror(rc), host, serv);
        return -1;
    }
    struct hostent he, *hp = NULL;
    char buf[2048];
    int herr = 0;
    rc = gethostbyname_r("localhost", &he, buf, sizeof buf, &hp, &herr);
    if (rc != 0 || !hp || hp->h_addrtype != AF_INET) {
        bk_fail(o, "gethostbyname_r(localhost) = %d, h_errno %d", rc, herr);
        return -1;
    }
    return 0;
}

static const struct {
    const char *name;
    bk_op_fn fn;
} bk_ops[] = {
    {"usleep", op_usleep},
    {"nanosleep", op_nanosleep},
    {"clock_nanosleep", op_clock_nanosleep},
    {"clock_nanosleep_abs", op_clock_nanosleep_abs},
    {"sleep", op_sleep},
    {"poll", op_poll},
    {"ppoll", op_ppoll},
    {"select", op_select},
    {"pselect", op_pselect},
    {"sock", op_sock},
    {"tcp", op_tcp},
    {"pipe", op_pipe},
    {"pipe_poll", op_pipe_poll},
    {"eventfd", op_eventfd},
    {"accept", op_accept},
    {"client", op_client},
    {"curl", op_curl},
    {"rcvtimeo", op_rcvtimeo},
    {"sndtimeo", op_sndtimeo},
    {"names", op_names},
};

bk_op_fn bk_op_find(const char *name)
{
    for (size_t i = 0; i < sizeof bk_ops / sizeof bk_ops[0]; i++)
        if (strcmp(bk_ops[i].name, name) == 0)
            return bk_ops[i].fn;
    return NULL;
}
