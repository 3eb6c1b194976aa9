/* The master's metrics responder (see metrics_http.h). */
#include "metrics_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct metrics_http_conn {
    int fd; /* -1: a free place */
    int writing;
    int64_t since;    /* accepted: the oldest reading one is evicted */
    int64_t deadline; /* closed then, whatever it is doing */
    size_t len;       /* request bytes so far */
    char req[METRICS_HTTP_REQ];
    struct metrics_buf out;
    size_t sent;
};

static struct {
    int listen_fd;
    metrics_http_render_fn render;
    void *ctx;
    struct metrics_http_conn conns[METRICS_HTTP_CONNS];
} mh = {.listen_fd = -1};

void metrics_http__start(int listen_fd, metrics_http_render_fn render,
                         void *ctx)
{
    mh.listen_fd = listen_fd;
    mh.render = render;
    mh.ctx = ctx;
    for (int i = 0; i < METRICS_HTTP_CONNS; i++)
        mh.conns[i].fd = -1;
}

static void metrics_http_close(struct metrics_http_conn *c)
{
    close(c->fd);
    free(c->out.p);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

/* A place for a new connection: a free one, else the oldest still
 * reading its request (closed for it), else NULL. */
static struct metrics_http_conn *metrics_http_place(void)
{
    struct metrics_http_conn *oldest = NULL;
    for (int i = 0; i < METRICS_HTTP_CONNS; i++) {
        struct metrics_http_conn *c = &mh.conns[i];
        if (c->fd < 0)
            return c;
        if (!c->writing && (!oldest || c->since < oldest->since))
            oldest = c;
    }
    if (oldest)
        metrics_http_close(oldest);
    return oldest;
}

/* Whether a new connection would find a place (free or evictable). */
static int metrics_http_room(void)
{
    for (int i = 0; i < METRICS_HTTP_CONNS; i++)
        if (mh.conns[i].fd < 0 || !mh.conns[i].writing)
            return 1;
    return 0;
}

static void metrics_http_accept(int64_t now)
{
    while (metrics_http_room()) {
        int fd =
            accept4(mh.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or out of fds: the backlog keeps them */
        struct metrics_http_conn *c = metrics_http_place();
        c->fd = fd;
        c->since = now;
        c->deadline = now + METRICS_HTTP_READ_MS;
    }
}

/* Sends what the kernel takes now; closes once all is out (or on error). */
static void metrics_http_send(struct metrics_http_conn *c)
{
    while (c->sent < c->out.len) {
        ssize_t w = send(c->fd, c->out.p + c->sent, c->out.len - c->sent,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (w <= 0)
            break;
        c->sent += (size_t)w;
    }
    shutdown(c->fd, SHUT_WR);
    metrics_http_close(c);
}

/* Queues a response and starts sending it: one per connection, then
 * close. head_only: HEAD, the length without the body. */
static void metrics_http_respond(struct metrics_http_conn *c, int64_t now,
                                 const char *status, const char *type,
                                 const char *body, size_t len, int head_only)
{
    metrics__printf(&c->out,
                    "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: "
                    "%zu\r\nCache-Control: no-store\r\nConnection: "
                    "close\r\n\r\n%.*s",
                    status, type, len, head_only ? 0 : (int)len, body);
    c->writing = 1;
    c->deadline = now + METRICS_HTTP_WRITE_MS;
    if (c->out.failed) { /* out of memory: nothing sensible to send */
        metrics_http_close(c);
        return;
    }
    metrics_http_send(c);
}

static void metrics_http_error(struct metrics_http_conn *c, int64_t now,
                               const char *status)
{
    char body[80];
    int n = snprintf(body, sizeof body, "%s\n", status);
    metrics_http_respond(c, now, status, "text/plain; charset=utf-8", body,
                         (size_t)n, 0);
}

/* A whole head is in c->req: "METHOD SP TARGET SP HTTP/1.x". Headers are
 * not needed and not read; the query string is ignored. */
static void metrics_http_request(struct metrics_http_conn *c, int64_t now)
{
    char *line_end = strstr(c->req, "\r\n");
    *line_end = '\0';
    char *sp1 = strchr(c->req, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || sp1 == c->req || sp2 == sp1 + 1 ||
        strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || sp1[1] != '/') {
        metrics_http_error(c, now, "400 Bad Request");
        return;
    }
    *sp1 = *sp2 = '\0';
    char *target = sp1 + 1;
    target[strcspn(target, "?")] = '\0';
    enum metrics_http_page page;
    if (strcmp(target, "/metrics") == 0)
        page = METRICS_PAGE_METRICS;
    else if (strcmp(target, "/status") == 0)
        page = METRICS_PAGE_STATUS;
    else {
        metrics_http_error(c, now, "404 Not Found");
        return;
    }
    int head = strcmp(c->req, "HEAD") == 0;
    if (!head && strcmp(c->req, "GET") != 0) {
        metrics_http_error(c, now, "405 Method Not Allowed");
        return;
    }
    struct metrics_buf body = {0};
    mh.render(mh.ctx, page, &body);
    if (body.failed)
        metrics_http_error(c, now, "500 Internal Server Error");
    else
        metrics_http_respond(c, now, "200 OK",
                             page == METRICS_PAGE_METRICS
                                 ? "text/plain; version=0.0.4; charset=utf-8"
                                 : "application/json",
                             body.p ? body.p : "", body.len, head);
    free(body.p);
}

/* Reads what came; answers once the head is whole, or too big. */
static void metrics_http_read(struct metrics_http_conn *c, int64_t now)
{
    for (;;) {
        size_t room = sizeof c->req - 1 - c->len;
        if (!room) {
            metrics_http_error(c, now, "431 Request Header Fields Too Large");
            return;
        }
        ssize_t r = recv(c->fd, c->req + c->len, room, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) {
            metrics_http_close(c);
            return;
        }
        c->len += (size_t)r;
        c->req[c->len] = '\0';
        if (memchr(c->req, '\0', c->len)) { /* a NUL in a head: garbage */
            metrics_http_error(c, now, "400 Bad Request");
            return;
        }
        if (strstr(c->req, "\r\n\r\n")) {
            metrics_http_request(c, now);
            return;
        }
    }
}

int metrics_http__pollfds(struct pollfd *pfd, int64_t now, int64_t *wake)
{
    (void)now;
    if (mh.listen_fd < 0)
        return 0;
    int n = 0;
    for (int i = 0; i < METRICS_HTTP_CONNS; i++) {
        struct metrics_http_conn *c = &mh.conns[i];
        if (c->fd < 0)
            continue;
        pfd[n++] = (struct pollfd){.fd = c->fd,
                                   .events = c->writing ? POLLOUT : POLLIN};
        if (*wake < 0 || c->deadline < *wake)
            *wake = c->deadline;
    }
    if (metrics_http_room())
        pfd[n++] = (struct pollfd){.fd = mh.listen_fd, .events = POLLIN};
    return n;
}

void metrics_http__serve(const struct pollfd *pfd, int n, int64_t now)
{
    for (int k = 0; k < n; k++) {
        if (!pfd[k].revents)
            continue;
        if (pfd[k].fd == mh.listen_fd) {
            metrics_http_accept(now);
            continue;
        }
        for (int i = 0; i < METRICS_HTTP_CONNS; i++) {
            struct metrics_http_conn *c = &mh.conns[i];
            if (c->fd != pfd[k].fd)
                continue;
            if (c->writing)
                metrics_http_send(c);
            else
                metrics_http_read(c, now);
            break;
        }
    }
    for (int i = 0; i < METRICS_HTTP_CONNS; i++)
        if (mh.conns[i].fd >= 0 && now >= mh.conns[i].deadline)
            metrics_http_close(&mh.conns[i]);
}

void metrics_http__close_inherited(void)
{
    if (mh.listen_fd < 0)
        return;
    close(mh.listen_fd);
    for (int i = 0; i < METRICS_HTTP_CONNS; i++)
        if (mh.conns[i].fd >= 0)
            close(mh.conns[i].fd);
}

void metrics_http__stop(void)
{
    if (mh.listen_fd < 0)
        return;
    for (int i = 0; i < METRICS_HTTP_CONNS; i++)
        if (mh.conns[i].fd >= 0)
            metrics_http_close(&mh.conns[i]);
    close(mh.listen_fd);
    mh.listen_fd = -1;
}
