/*
 * floor.c - the floor bench_http.sh measures coserve against: a raw epoll
 * HTTP responder that makes the system calls a server cannot avoid (one
 * recv per readable socket, one send per batch of answers, epoll_wait) and
 * nothing else: no HTTP parser, no coroutines, no timers but a heap, no
 * allocation per request. Its CPU per request is what the kernel and the
 * bare loop cost on this machine in this run; coserve's CPU per request is
 * read against it ("how far from the raw epoll server"), as well as
 * against nginx's.
 *
 *   bench-floor PORT        (listens on 127.0.0.1:PORT until SIGTERM/INT)
 *
 * Every request head (up to "\r\n\r\n"; only bodiless GETs are expected) is
 * answered as coserve answers GET /hello, except a target starting with
 * /sleep?ms=N, answered as coserve's sleep app does N ms later. The answers
 * have coserve's status line, header set and lengths byte for byte, so both
 * servers pay the same send. One thread, level-triggered epoll.
 */
#include <errno.h>
#include <limits.h>
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

/* Half of coserve's HTTP_BUF_SIZE is plenty for wrk's heads: 16 pipelined
 * GETs are under 1 KiB. */
#define IN_SIZE 8192
/* The shortest head is "\r\n\r\n": the most answers one read can ask for. */
#define MAX_HEADS_PER_READ (IN_SIZE / 4)
#define RESP_MAX 192
#define SLEEP_PREFIX "/sleep?ms="
#define SLEEP_MAX_MS 60000 /* the sleep app's bound */
#define EVENTS 512

/* What coserve sends (curl -si against build/coserve --workers 1 with the
 * hello and sleep apps): same lines, same order, same lengths. */
#define HEAD_FMT                                                               \
    "HTTP/1.1 200 OK\r\nServer: coserve\r\nDate: %s\r\n"                       \
    "Content-Length: %d\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
#define HELLO_BODY "Hello, World!\n"

struct conn {
    char *buf; /* IN_SIZE bytes while the connection is open, else NULL */
    uint32_t len;
    /* Bumped at every close: a heap entry made for an earlier connection
     * on this fd number no longer matches, so it is dropped, never sent to
     * whoever holds the number now. */
    uint32_t gen;
    int32_t sleep_ms; /* the delayed answer it waits for, or -1 */
};

/* A delayed answer. seq breaks ties so equal deadlines go out in the
 * order they were asked for, as in coserve's deadline heap. */
struct entry {
    int64_t due;
    uint64_t seq;
    int fd;
    uint32_t gen;
};

static struct conn *conns;
static int nconns; /* the fd limit: no fd can index past it */
static struct entry *heap;
static int heap_len, heap_cap;
static uint64_t heap_seq;
static int epfd, lfd, accept_paused;
static volatile sig_atomic_t stopping;
static unsigned long short_closes;

static char date[40];
static time_t date_at = -1;
static char hello[RESP_MAX];
static size_t hello_len;
/* The last /sleep answer formatted, for its ms and date: the benchmark
 * asks one N, so one snprintf a second rather than two per answer (what
 * coserve's sleep app does not pay either). */
static char slept[RESP_MAX];
static size_t slept_len;
static int32_t slept_ms = -1;
static time_t slept_at = -1;
/* All the /hello answers of one read, sent in one call as coserve's held
 * batch does: pipelining 16 requests costs one send. */
static char out[MAX_HEADS_PER_READ * RESP_MAX];

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Once a second, like servers do (coserve's date.c): strftime per answer
 * would be a cost coserve does not pay. */
static void date_refresh(void)
{
    time_t now = time(NULL);
    if (now == date_at)
        return;
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    int n = snprintf(hello, sizeof hello, HEAD_FMT HELLO_BODY, date,
                     (int)(sizeof HELLO_BODY - 1));
    hello_len = (size_t)n;
    date_at = now;
}

static int entry_before(const struct entry *a, const struct entry *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_down(int i)
{
    for (;;) {
        int l = 2 * i + 1, m = i;
        if (l < heap_len && entry_before(&heap[l], &heap[m]))
            m = l;
        if (l + 1 < heap_len && entry_before(&heap[l + 1], &heap[m]))
            m = l + 1;
        if (m == i)
            return;
        struct entry t = heap[i];
        heap[i] = heap[m];
        heap[m] = t;
        i = m;
    }
}

static int entry_live(const struct entry *e)
{
    const struct conn *c = &conns[e->fd];
    return c->buf && c->gen == e->gen && c->sleep_ms >= 0;
}

static void heap_push(struct entry e)
{
    /* Entries of closed connections stay until due; when they fill the
     * heap, dropping them leaves at most one per open connection, which
     * fits: the heap never grows past the connection count. */
    if (heap_len == heap_cap) {
        int k = 0;
        for (int i = 0; i < heap_len; i++)
            if (entry_live(&heap[i]))
                heap[k++] = heap[i];
        heap_len = k;
        for (int i = heap_len / 2 - 1; i >= 0; i--)
            heap_down(i);
    }
    int i = heap_len++;
    heap[i] = e;
    while (i > 0 && entry_before(&heap[i], &heap[(i - 1) / 2])) {
        struct entry t = heap[i];
        heap[i] = heap[(i - 1) / 2];
        heap[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static struct entry heap_pop(void)
{
    struct entry top = heap[0];
    heap[0] = heap[--heap_len];
    heap_down(0);
    return top;
}

static void conn_close(int fd)
{
    struct conn *c = &conns[fd];
    close(fd); /* the last reference: epoll forgets it, no EPOLL_CTL_DEL */
    free(c->buf);
    c->buf = NULL;
    c->len = 0;
    c->gen++;
    c->sleep_ms = -1;
    if (accept_paused) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) == 0)
            accept_paused = 0;
    }
}

/* Whole or not at all: wrk reads everything it is sent, so a short send
 * means a client that stopped reading; keeping its rest would be a write
 * queue this floor has no use for. */
static int send_all(int fd, const char *p, size_t n)
{
    if (send(fd, p, n, MSG_NOSIGNAL) == (ssize_t)n)
        return 0;
    short_closes++;
    conn_close(fd);
    return -1;
}

static int sleep_target(const char *head, size_t n, int32_t *ms)
{
    const char *sp = memchr(head, ' ', n);
    if (!sp)
        return 0;
    size_t off = (size_t)(sp + 1 - head);
    size_t plen = sizeof SLEEP_PREFIX - 1;
    if (n - off < plen || memcmp(sp + 1, SLEEP_PREFIX, plen) != 0)
        return 0;
    /* Digits up to the first non-digit, capped: this floor answers, it
     * does not validate (coserve's app would say 400 to a bad N). */
    int32_t v = 0;
    for (size_t i = off + plen; i < n && head[i] >= '0' && head[i] <= '9';
         i++) {
        v = v * 10 + (head[i] - '0');
        if (v > SLEEP_MAX_MS)
            v = SLEEP_MAX_MS;
    }
    *ms = v;
    return 1;
}

/* Answers the complete heads in fd's buffer. A /sleep head stops the scan:
 * what follows it waits in the buffer until its answer has gone, so a
 * connection's answers keep their order and it has one heap entry at most. */
static void conn_serve(int fd)
{
    struct conn *c = &conns[fd];
    size_t done = 0, outn = 0;
    while (c->sleep_ms < 0) {
        char *h = c->buf + done;
        char *end = memmem(h, c->len - done, "\r\n\r\n", 4);
        if (!end)
            break;
        size_t n = (size_t)(end + 4 - h);
        int32_t ms;
        if (sleep_target(h, n, &ms)) {
            c->sleep_ms = ms;
            heap_push((struct entry){now_ms() + ms, heap_seq++, fd, c->gen});
        } else {
            memcpy(out + outn, hello, hello_len);
            outn += hello_len;
        }
        done += n;
    }
    if (done) {
        c->len -= (uint32_t)done;
        memmove(c->buf, c->buf + done, c->len);
    }
    if (outn && send_all(fd, out, outn) < 0)
        return;
    if (c->len == IN_SIZE && c->sleep_ms < 0)
        conn_close(fd); /* a full buffer and no head: not a GET of ours */
}

static void conn_readable(int fd)
{
    struct conn *c = &conns[fd];
    if (c->len == IN_SIZE) { /* held behind a pending /sleep, and full */
        conn_close(fd);
        return;
    }
    ssize_t r = recv(fd, c->buf + c->len, IN_SIZE - c->len, 0);
    if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        conn_close(fd); /* the client left (maybe mid-sleep), or reset */
        return;
    }
    c->len += (uint32_t)r;
    conn_serve(fd);
}

static void send_due(int64_t now)
{
    while (heap_len && heap[0].due <= now) {
        struct entry e = heap_pop();
        if (!entry_live(&e))
            continue;
        struct conn *c = &conns[e.fd];
        if (c->sleep_ms != slept_ms || date_at != slept_at) {
            char body[32];
            int bn =
                snprintf(body, sizeof body, "slept %d ms\n", (int)c->sleep_ms);
            slept_len = (size_t)snprintf(slept, sizeof slept, HEAD_FMT "%s",
                                         date, bn, body);
            slept_ms = c->sleep_ms;
            slept_at = date_at;
        }
        c->sleep_ms = -1;
        if (send_all(e.fd, slept, slept_len) == 0)
            conn_serve(e.fd); /* what came in behind it */
    }
}

static void accept_all(void)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM) {
                /* Level-triggered: a listener left in the set would wake
                 * every turn. It comes back at the next close. */
                if (epoll_ctl(epfd, EPOLL_CTL_DEL, lfd, NULL) == 0)
                    accept_paused = 1;
            }
            return;
        }
        char *buf = fd < nconns ? malloc(IN_SIZE) : NULL;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (!buf || epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            free(buf);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conns[fd].buf = buf;
        conns[fd].len = 0;
        conns[fd].sleep_ms = -1;
    }
}

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

int main(int argc, char **argv)
{
    char *end;
    long port = argc == 2 ? strtol(argv[1], &end, 10) : 0;
    if (argc != 2 || *end || port < 1 || port > 65535) {
        fprintf(stderr, "usage: bench-floor PORT\n");
        return 2;
    }

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur > INT_MAX)
        rl.rlim_cur = 65536;
    nconns = (int)rl.rlim_cur;
    heap_cap = nconns;
    conns = calloc((size_t)nconns, sizeof *conns);
    heap = calloc((size_t)heap_cap, sizeof *heap);
    if (!conns || !heap) {
        perror("bench-floor: calloc");
        return 1;
    }

    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (lfd < 0 ||
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(lfd, 4096) < 0) {
        perror("bench-floor: listen");
        return 1;
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd};
    if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) < 0) {
        perror("bench-floor: epoll");
        return 1;
    }

    /* No SA_RESTART: epoll_wait returns EINTR and the loop sees the flag. */
    struct sigaction act = {.sa_handler = on_signal};
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);

    date_refresh();
    struct epoll_event evs[EVENTS];
    while (!stopping) {
        int timeout = -1;
        if (heap_len) {
            int64_t wait = heap[0].due - now_ms();
            timeout = wait < 0 ? 0 : wait > INT_MAX ? INT_MAX : (int)wait;
        }
        int n = epoll_wait(epfd, evs, EVENTS, timeout);
        if (n < 0 && errno != EINTR) {
            perror("bench-floor: epoll_wait");
            return 1;
        }
        date_refresh();
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd)
                accept_all();
            else if (conns[fd].buf)
                conn_readable(fd);
        }
        if (heap_len)
            send_due(now_ms());
    }
    if (short_closes)
        fprintf(stderr, "bench-floor: %lu connections closed on a short send\n",
                short_closes);
    return 0;
}
