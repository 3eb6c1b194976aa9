/*
 * fanout - GET /fanout?n=N makes N outbound HTTP requests at once (1..100,
 * default 10) and reports each one: "i status bytes ms", then "total N ms".
 *
 * Each request runs in its own child coroutine (co_spawn) that dials, writes
 * and reads with the cooperative socket calls, so the N requests overlap:
 * n=10 against /sleep?ms=100 takes about 100 ms, not a second. The target is
 * this server's own /sleep?ms=100 unless one is given:
 *
 *   /fanout?n=20&host=example.com&port=80&path=/      ('&' in the path
 *                                                      written as %26)
 *   COSERVE_FANOUT_TARGET=host:port/path              (the default target)
 *
 * "bytes" counts the body as received (chunk framing included). A demo: it
 * fetches whatever host it is told to, so do not expose it; a request from a
 * fanout (its User-Agent) gets 508, so fanout cannot call itself.
 *
 * The children share one heap record with a reference count instead of the
 * handler's stack: if the handler stops waiting (it is cancelled), children
 * still finishing must not write into a stack frame that is gone.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coserve.h"

#define FANOUT_TEXT "text/plain; charset=utf-8"
#define FANOUT_MAX 100
#define FANOUT_DEFAULT 10
#define FANOUT_TIMEOUT_MS 5000
#define FANOUT_DEFAULT_PATH "/sleep?ms=100"
#define FANOUT_AGENT "coserve-fanout"

struct fanout_target {
    char host[256];
    char port[8];
    char path[1024];
};

struct fanout;

/* One outbound request and what came of it. */
struct fanout_call {
    struct fanout *run;
    int status;      /* from the status line; 0 if none arrived */
    long long bytes; /* body bytes received */
    long long ms;
    int err; /* 0, or the errno that ended the request */
};

/* Everything the children touch. All of them run on the handler's hub
 * thread, one at a time, so the count needs no atomics. */
struct fanout {
    int refs; /* the handler and each child still running */
    int64_t deadline;
    struct fanout_target to;
    char request[1400];
    size_t request_len;
    struct fanout_call calls[FANOUT_MAX];
};

static void fanout_release(struct fanout *f)
{
    if (--f->refs == 0)
        free(f);
}

/* ---- one outbound request --------------------------------------------- */

/* Is line's header name `name` (any case)? Returns the value's start or
 * NULL. Plain C on purpose: this file builds without _GNU_SOURCE. */
static const char *fanout_header(const char *line, const char *name)
{
    for (; *name; line++, name++)
        if (tolower((unsigned char)*line) != *name)
            return NULL;
    return *line == ':' ? line + 1 : NULL;
}

/* The "\r\n\r\n" ending the head within buf[0..have), or NULL. */
static char *fanout_blank_line(char *buf, size_t have)
{
    for (size_t i = 3; i < have; i++)
        if (buf[i - 3] == '\r' && buf[i - 2] == '\n' && buf[i - 1] == '\r' &&
            buf[i] == '\n')
            return buf + i - 3;
    return NULL;
}

/* Parses the head in buf (NUL-terminated, without the blank line): the
 * status, and the body length (-1: read to end of file). */
static int fanout_parse_head(char *buf, int *status, long long *length)
{
    if (strncmp(buf, "HTTP/1.", 7) != 0 || buf[7] < '0' || buf[7] > '9' ||
        buf[8] != ' ' || buf[9] < '1' || buf[9] > '9' || buf[10] < '0' ||
        buf[10] > '9' || buf[11] < '0' || buf[11] > '9')
        return -1;
    *status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    *length = -1;
    if (*status < 200 || *status == 204 || *status == 304)
        *length = 0;
    for (char *line = strstr(buf, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        const char *value;
        if (fanout_header(line, "transfer-encoding")) {
            *length = -1; /* chunked: counted as sent, framing included */
        } else if ((value = fanout_header(line, "content-length")) &&
                   *length != 0) {
            char *end;
            long long v = strtoll(value, &end, 10);
            if (v < 0 || end == value)
                return -1;
            *length = v;
        }
    }
    return 0;
}

/* Dials, sends the request and reads the answer. Returns 0 or an errno. */
static int fanout_fetch(struct fanout *f, struct fanout_call *c)
{
    int fd = co_dial(f->to.host, f->to.port, f->deadline);
    if (fd < 0)
        return errno;
    int err = 0;
    char buf[8192];
    size_t have = 0;
    char *blank = NULL;
    if (co_write_all(fd, f->request, f->request_len, f->deadline) < 0) {
        err = errno;
        goto out;
    }
    while (!(blank = fanout_blank_line(buf, have))) {
        if (have == sizeof buf - 1) {
            err = EMSGSIZE; /* a head this large is not worth reading */
            goto out;
        }
        ssize_t n = co_read(fd, buf + have, sizeof buf - 1 - have, f->deadline);
        if (n <= 0) {
            err = n < 0 ? errno : EPROTO;
            goto out;
        }
        have += (size_t)n;
    }
    *blank = '\0';
    long long length;
    if (fanout_parse_head(buf, &c->status, &length) < 0) {
        err = EPROTO;
        goto out;
    }
    c->bytes = (long long)(have - (size_t)(blank + 4 - buf));
    while (length < 0 || c->bytes < length) {
        ssize_t n = co_read(fd, buf, sizeof buf, f->deadline);
        if (n < 0) {
            err = errno;
            break;
        }
        if (n == 0) {
            err = length < 0 ? 0 : EPROTO; /* EOF before Content-Length */
            break;
        }
        c->bytes += n;
    }
out:
    close(fd);
    return err;
}

/* A child coroutine's body. */
static void *fanout_call_run(void *arg)
{
    struct fanout_call *c = arg;
    int64_t start = co_now();
    c->err = fanout_fetch(c->run, c);
    c->ms = co_now() - start;
    fanout_release(c->run);
    return NULL;
}

/* ---- the target ------------------------------------------------------- */

/* Fills to from "host:port/path" ("[v6]:port/path", "http://" allowed in
 * front; port 80 and path "/" when left out). Returns 0 or -1. */
static int fanout_parse_target(const char *s, struct fanout_target *to)
{
    if (strncmp(s, "http://", 7) == 0)
        s += 7;
    const char *host = s, *host_end;
    if (*s == '[') {
        host = s + 1;
        host_end = strchr(host, ']');
        if (!host_end)
            return -1;
        s = host_end + 1;
    } else {
        host_end = s + strcspn(s, ":/");
        s = host_end;
    }
    const char *port = "80";
    size_t port_len = 2;
    if (*s == ':') {
        port = s + 1;
        port_len = strcspn(port, "/");
        s = port + port_len;
    }
    const char *path = *s ? s : "/";
    size_t host_len = (size_t)(host_end - host);
    if (host_len >= sizeof to->host || port_len >= sizeof to->port ||
        strlen(path) >= sizeof to->path || (*s && *s != '/'))
        return -1;
    memcpy(to->host, host, host_len);
    to->host[host_len] = '\0';
    memcpy(to->port, port, port_len);
    to->port[port_len] = '\0';
    strcpy(to->path, path);
    return 0;
}

/* Says what is wrong with the target, or NULL. It goes into a request line
 * and a Host header, so only plain characters pass. */
static const char *fanout_check_target(const struct fanout_target *to)
{
    if (!to->host[0] ||
        strspn(to->host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                         "0123456789.-_:") != strlen(to->host))
        return "bad host";
    char *end;
    long port = strtol(to->port, &end, 10);
    if (!to->port[0] || *end || port < 1 || port > 65535)
        return "bad port (1..65535)";
    if (to->path[0] != '/')
        return "bad path (must start with '/')";
    for (const char *p = to->path; *p; p++)
        if (*p <= ' ' || *p >= 127)
            return "bad path (no spaces or control characters)";
    return NULL;
}

/* Copies query parameter name into buf if present. Returns 0, or -1 when it
 * does not fit. */
static int fanout_param(const co_request_t *req, const char *name, char *buf,
                        size_t size)
{
    char tmp[1024];
    ssize_t n = co_req_query_param(req, name, tmp, sizeof tmp);
    if (n < 0)
        return errno == ENOENT ? 0 : -1;
    if ((size_t)n >= size)
        return -1;
    memcpy(buf, tmp, (size_t)n + 1);
    return 0;
}

/* The target: this server's /sleep, then COSERVE_FANOUT_TARGET, then the
 * host, port and path parameters. Returns NULL or what is wrong. */
static const char *fanout_target(const co_request_t *req,
                                 struct fanout_target *to)
{
    strcpy(to->host, "127.0.0.1");
    snprintf(to->port, sizeof to->port, "%d", co_req_local_port(req));
    strcpy(to->path, FANOUT_DEFAULT_PATH);
    const char *env = getenv("COSERVE_FANOUT_TARGET");
    if (env && *env && fanout_parse_target(env, to) < 0)
        return "bad COSERVE_FANOUT_TARGET (host:port/path)";
    if (fanout_param(req, "host", to->host, sizeof to->host) < 0 ||
        fanout_param(req, "port", to->port, sizeof to->port) < 0 ||
        fanout_param(req, "path", to->path, sizeof to->path) < 0)
        return "host, port or path too long";
    return fanout_check_target(to);
}

/* ---- the handler ------------------------------------------------------ */

static int fanout_answer(co_response_t *res, int status, const char *why)
{
    char body[160];
    int n = snprintf(body, sizeof body, "%d %s\n", status, why);
    return co_res_send(res, status, FANOUT_TEXT, body, (size_t)n);
}

/* The n parameter: 1..FANOUT_MAX, FANOUT_DEFAULT when absent, else -1. */
static int fanout_count(const co_request_t *req)
{
    char buf[8];
    ssize_t len = co_req_query_param(req, "n", buf, sizeof buf);
    if (len < 0)
        return errno == ENOENT ? FANOUT_DEFAULT : -1;
    if (len == 0 || strspn(buf, "0123456789") != (size_t)len)
        return -1;
    int n = atoi(buf);
    return n >= 1 && n <= FANOUT_MAX ? n : -1;
}

/* Writes the report: one line per call, then the total. */
static int fanout_report(co_response_t *res, const struct fanout *f, int n,
                         long long total_ms)
{
    if (co_res_header(res, "Content-Type", FANOUT_TEXT) < 0)
        return -1;
    char line[160];
    for (int i = 0; i < n; i++) {
        const struct fanout_call *c = &f->calls[i];
        int len = snprintf(line, sizeof line, "%d %d %lld %lld%s%s\n", i,
                           c->status, c->bytes, c->ms, c->err ? " error: " : "",
                           c->err ? strerror(c->err) : "");
        if (len >= (int)sizeof line)
            len = (int)sizeof line - 1;
        if (co_res_write(res, line, (size_t)len) < 0)
            return -1;
    }
    int len = snprintf(line, sizeof line, "total %lld ms\n", total_ms);
    return co_res_write(res, line, (size_t)len);
}

static int fanout_handler(co_request_t *req, co_response_t *res)
{
    const char *method = co_req_method(req);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        if (co_res_header(res, "Allow", "GET, HEAD") < 0)
            return -1;
        return fanout_answer(res, 405, "method not allowed");
    }
    /* Our own User-Agent: a fanout told to fetch /fanout would multiply. */
    const char *agent = co_req_header(req, "User-Agent");
    if (agent && strcmp(agent, FANOUT_AGENT) == 0)
        return fanout_answer(res, 508, "loop detected: fanout calling fanout");
    int n = fanout_count(req);
    if (n < 0)
        return fanout_answer(res, 400, "n must be an integer from 1 to 100");

    struct fanout *f = calloc(1, sizeof *f);
    if (!f)
        return -1; /* errno is ENOMEM: the server answers 500 */
    const char *why = fanout_target(req, &f->to);
    if (why) {
        free(f);
        return fanout_answer(res, 400, why);
    }
    int len =
        snprintf(f->request, sizeof f->request,
                 "GET %s HTTP/1.1\r\nHost: %s%s%s:%s\r\n"
                 "User-Agent: " FANOUT_AGENT "\r\nConnection: close\r\n\r\n",
                 f->to.path, strchr(f->to.host, ':') ? "[" : "", f->to.host,
                 strchr(f->to.host, ':') ? "]" : "", f->to.port);
    if (len < 0 || (size_t)len >= sizeof f->request) {
        free(f);
        return fanout_answer(res, 400, "target too long");
    }
    f->request_len = (size_t)len;
    f->refs = 1;
    f->deadline = co_deadline(FANOUT_TIMEOUT_MS);

    /* Spawn all, then wait for all: the children first run when we wait. */
    co_t *cos[FANOUT_MAX] = {0};
    int64_t start = co_now();
    for (int i = 0; i < n; i++) {
        f->calls[i].run = f;
        f->refs++;
        cos[i] = co_spawn(fanout_call_run, &f->calls[i]);
        if (!cos[i]) {
            f->refs--;
            f->calls[i].err = errno;
        }
    }
    /* Every child's waits end by f->deadline, so no deadline is needed here;
     * a failure means we were cancelled: stop the children and leave. */
    if (co_join_all(cos, (size_t)n, -1) < 0) {
        int err = errno;
        for (int i = 0; i < n; i++) {
            if (cos[i]) {
                co_cancel(cos[i]);
                co_detach(cos[i]);
            }
        }
        fanout_release(f);
        errno = err;
        return -1;
    }
    int rc = fanout_report(res, f, n, co_now() - start);
    fanout_release(f);
    return rc;
}

COSERVE_APP(.name = "fanout", .mount = "/fanout", .handler = fanout_handler);
