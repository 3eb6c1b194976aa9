/*
 * echo: a server coroutine echoes what it reads; a client coroutine in the
 * same program sends three lines and reads each answer. Every line printed
 * follows from the one before it (a message must arrive before it is
 * echoed), so the order is fixed: examples/echo.expected, which
 * examples/py/echo.py prints under gevent too.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "coserve.h"
#include "example_net.h"

static void *server(void *arg)
{
    int lfd = *(int *)arg;
    int conn = co_accept(lfd, NULL, NULL, -1);
    if (conn < 0)
        return "accept failed";
    char buf[1024];
    ssize_t n;
    while ((n = co_read(conn, buf, sizeof buf, -1)) > 0) {
        printf("server: echoing '%.*s'\n", (int)strcspn(buf, "\n"), buf);
        if (co_write_all(conn, buf, (size_t)n, -1) < 0)
            break;
    }
    printf("server: the client left\n");
    close(conn);
    return NULL;
}

static void *client(void *arg)
{
    char port[16];
    snprintf(port, sizeof port, "%d", *(int *)arg);
    int fd = co_dial("127.0.0.1", port, -1);
    if (fd < 0)
        return "dial failed";
    static const char *const lines[] = {"hello", "gevent", "in C"};
    for (int i = 0; i < 3; i++) {
        char out[64], in[1024];
        int len = snprintf(out, sizeof out, "%s\n", lines[i]);
        co_write_all(fd, out, (size_t)len, -1);
        printf("client: sent '%s'\n", lines[i]);
        ssize_t n = co_read(fd, in, sizeof in - 1, -1);
        in[n > 0 ? n : 0] = '\0';
        printf("client: got back '%.*s'\n", (int)strcspn(in, "\n"), in);
    }
    close(fd);
    printf("client: done\n");
    return NULL;
}

static void *echo_main(void *unused)
{
    (void)unused;
    int port;
    int lfd = example_listen(&port);
    if (lfd < 0)
        return "listen failed";
    co_t *srv = co_spawn(server, &lfd), *cli = co_spawn(client, &port);
    void *e1 = NULL, *e2 = NULL;
    co_join(cli, &e1, -1);
    co_join(srv, &e2, -1);
    close(lfd);
    if (e1 || e2)
        return e1 ? e1 : e2;
    printf("both finished\n");
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    void *err = NULL;
    if (co_run(echo_main, NULL, &err) < 0 || err) {
        fprintf(stderr, "echo: %s\n", err ? (char *)err : "co_run failed");
        return 1;
    }
    return 0;
}
