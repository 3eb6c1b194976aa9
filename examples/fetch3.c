/*
 * fetch3: three URLs fetched at once. The program serves them itself (a
 * coroutine per connection, each page slower than the last) so it needs no
 * network; the fetches are spawned slowest first and finish fastest first.
 * examples/py/fetch3.py is the same program in gevent (with urllib); both
 * print examples/fetch3.expected.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coserve.h"
#include "example_net.h"

/* ---- the server: GET /fast, /medium, /slow ---------------------------- */

static int64_t page_delay_ms(const char *path)
{
    return !strcmp(path, "/fast")     ? 100
           : !strcmp(path, "/medium") ? 200
           : !strcmp(path, "/slow")   ? 300
                                      : 0;
}

static void *handle(void *arg)
{
    int conn = (int)(intptr_t)arg;
    char head[4096];
    size_t len = 0;
    while (len < sizeof head - 1) {
        ssize_t n = co_read(conn, head + len, sizeof head - 1 - len, -1);
        if (n <= 0)
            break;
        len += (size_t)n;
        head[len] = '\0';
        if (strstr(head, "\r\n\r\n"))
            break;
    }
    head[len] = '\0';
    char path[256] = "/";
    sscanf(head, "%*s %255s", path);
    co_sleep(co_deadline(page_delay_ms(path)));
    char out[512];
    char body[300];
    int blen = snprintf(body, sizeof body, "page %s\n", path);
    int olen =
        snprintf(out, sizeof out,
                 "HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s", blen, body);
    co_write_all(conn, out, (size_t)olen, -1);
    close(conn);
    return NULL;
}

static void *serve(void *arg)
{
    int lfd = *(int *)arg;
    int conn;
    while ((conn = co_accept(lfd, NULL, NULL, -1)) >= 0) {
        co_t *h = co_spawn(handle, (void *)(intptr_t)conn);
        if (h)
            co_detach(h);
        else
            close(conn);
    }
    return NULL; /* cancelled */
}

/* ---- the client ------------------------------------------------------- */

struct fetch {
    int port;
    const char *path;
};

static void *fetch(void *arg)
{
    struct fetch *f = arg;
    char port[16], req[512], resp[4096];
    snprintf(port, sizeof port, "%d", f->port);
    int fd = co_dial("127.0.0.1", port, -1);
    if (fd < 0)
        return "dial failed";
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n\r\n", f->path,
                     f->port);
    size_t len = 0;
    ssize_t got = 0;
    if (co_write_all(fd, req, (size_t)n, -1) == 0)
        while (len < sizeof resp - 1 &&
               (got = co_read(fd, resp + len, sizeof resp - 1 - len, -1)) > 0)
            len += (size_t)got;
    close(fd);
    resp[len] = '\0';
    int status = 0;
    const char *body = strstr(resp, "\r\n\r\n");
    if (got < 0 || !body || sscanf(resp, "HTTP/%*s %d", &status) != 1)
        return "bad response";
    printf("fetched %s: %d, %zu bytes\n", f->path, status, strlen(body + 4));
    return NULL;
}

static void *fetch3_main(void *unused)
{
    (void)unused;
    int port;
    int lfd = example_listen(&port);
    if (lfd < 0)
        return "listen failed";
    co_t *server = co_spawn(serve, &lfd);
    struct fetch f[3] = {{port, "/slow"}, {port, "/medium"}, {port, "/fast"}};
    co_t *fetchers[3];
    for (int i = 0; i < 3; i++)
        fetchers[i] = co_spawn(fetch, &f[i]);
    void *err = NULL;
    for (int i = 0; i < 3; i++) {
        void *e = NULL;
        co_join(fetchers[i], &e, -1);
        err = err ? err : e;
    }
    if (!err)
        printf("all three fetched\n");
    co_cancel(server);
    co_join(server, NULL, -1);
    close(lfd);
    return err;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    void *err = NULL;
    if (co_run(fetch3_main, NULL, &err) < 0 || err) {
        fprintf(stderr, "fetch3: %s\n", err ? (char *)err : "co_run failed");
        return 1;
    }
    return 0;
}
