/*
 * libFuzzer target for the request front end: the real head parser, body
 * decoder, response writer and connection loop, fed through a socketpair.
 *
 * Each input is one client's byte stream. A hub serves it on one end of a
 * socketpair with an app that reads the whole body and echoes it; the
 * other end sends the input, half-closes, and reads until the server
 * closes. Anything that crashes, leaks, hangs or trips a sanitizer is a
 * finding. Run by `make fuzz` (and briefly by `make test`).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/conn.h"
#include "http/server.h"

static int fuzz_echo(co_request_t *req, co_response_t *res)
{
    char buf[4096];
    ssize_t n;
    co_req_header(req, "content-type");
    co_req_query(req);
    co_req_remote_addr(req);
    while ((n = co_req_read(req, buf, sizeof buf, co_deadline(1000))) > 0)
        if (co_res_write(res, buf, (size_t)n) < 0)
            return -1;
    return n < 0 ? -1 : 0;
}

static const struct http_route fuzz_route = {"fuzz", "", fuzz_echo};

static const struct http_route *fuzz_router(void *ctx, const char *path)
{
    (void)ctx;
    return path[1] == 'x' ? NULL : &fuzz_route; /* "/x..." gets the 404 */
}

struct fuzz_input {
    const uint8_t *data;
    size_t size;
};

static void *fuzz_main(void *arg)
{
    struct fuzz_input *in = arg;
    struct http_config cfg;
    http__config_defaults(&cfg);
    cfg.routing.route = fuzz_router;
    cfg.limits.max_body = 4096;
    cfg.limits.header_timeout_ms = 1000;
    cfg.limits.body_timeout_ms = 1000;
    struct http_server srv;
    http__server_init(&srv, &cfg, NULL, 0);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) <
        0)
        return NULL;
    struct sockaddr peer = {.sa_family = AF_UNIX};
    conn__accept(&srv, sv[0], &peer, sizeof peer);
    /* send everything, reading responses as we go so neither side stalls */
    size_t off = 0;
    char sink[65536];
    int64_t deadline = co_deadline(5000);
    while (off < in->size) {
        ssize_t w = write(sv[1], in->data + off, in->size - off);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN)
            break;
        if (co_read(sv[1], sink, sizeof sink, deadline) <= 0)
            break;
    }
    shutdown(sv[1], SHUT_WR);
    while (co_read(sv[1], sink, sizeof sink, deadline) > 0)
        ;
    close(sv[1]);
    while (srv.open > 0 && co_sleep(co_deadline(1)) == 0)
        ;
    http__server_fini(&srv);
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = {data, size};
    co_run(fuzz_main, &in, NULL);
    return 0;
}
