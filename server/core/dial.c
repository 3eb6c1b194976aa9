/*
 * co_dial: name resolution on the offload pool, then a connect with a
 * deadline to each address in turn. getaddrinfo() may block for seconds on a
 * slow resolver, which is exactly what must never run on the hub.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/coro.h"

struct dial_lookup {
    char *host, *port;
    struct addrinfo *res;
    int rc;
};

static void dial_resolve(void *p)
{
    struct dial_lookup *l = p;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    l->rc = getaddrinfo(l->host, l->port, &hints, &l->res);
}

/* Frees a lookup whose coroutine stopped waiting (or finished with it). */
static void dial_lookup_free(void *p)
{
    struct dial_lookup *l = p;
    if (l->rc == 0 && l->res)
        freeaddrinfo(l->res);
    free(l->host);
    free(l->port);
    free(l);
}

int co_dial(const char *host, const char *port, int64_t deadline)
{
    coro__self("co_dial");
    struct dial_lookup *l = calloc(1, sizeof *l);
    if (!l || !(l->host = strdup(host)) || !(l->port = strdup(port))) {
        if (l)
            dial_lookup_free(l);
        errno = ENOMEM;
        return -1;
    }
    l->rc = EAI_FAIL;
    if (co_offload(dial_resolve, l, dial_lookup_free, deadline) < 0)
        return -1; /* the lookup is freed when it finishes */
    if (l->rc != 0) {
        dial_lookup_free(l);
        errno = EADDRNOTAVAIL;
        return -1;
    }
    int err = EADDRNOTAVAIL;
    for (struct addrinfo *ai = l->res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family,
                        ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (co_connect(fd, ai->ai_addr, ai->ai_addrlen, deadline) == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            dial_lookup_free(l);
            return fd;
        }
        err = errno;
        close(fd);
        if (err == ETIMEDOUT || err == ECANCELED)
            break;
    }
    dial_lookup_free(l);
    errno = err;
    return -1;
}
