/*
 * co_dial: name resolution on the name-lookup pool (offload.h), then a
 * connect with a deadline to each address in turn. getaddrinfo() may block
 * for seconds on a slow resolver, which is exactly what must never run on
 * the hub, nor wait behind an app's slow offloaded work.
 *
 * A failure also leaves a line for co_dial_error(), in a per-thread buffer:
 * the hub's coroutines take turns, so it stays the caller's until it next
 * waits.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/coro.h"
#include "core/offload.h"

struct dial_lookup {
    char *host, *port;
    struct addrinfo *res;
    int rc, err; /* getaddrinfo's result, and errno for EAI_SYSTEM */
};

static __thread char dial_error[320];

static void dial_resolve(void *p)
{
    struct dial_lookup *l = p;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    l->rc = getaddrinfo(l->host, l->port, &hints, &l->res);
    l->err = errno;
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

/* Linux has no errno for "no such host": co_dial says ENXIO ("No such
 * device or address"), which connect() never returns for TCP, so it can
 * only mean the name; EHOSTUNREACH would be mistaken for a missing route
 * and ENOENT reads "No such file". A resolver that cannot answer now is
 * EAGAIN: asking again later may work. */
static int dial_lookup_errno(const struct dial_lookup *l)
{
    switch (l->rc) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
        return ENXIO;
    case EAI_AGAIN:
        return EAGAIN;
    case EAI_MEMORY:
        return ENOMEM;
    case EAI_SYSTEM:
        return l->err ? l->err : EIO;
    case EAI_SERVICE:
    case EAI_SOCKTYPE:
    case EAI_FAMILY:
    case EAI_BADFLAGS:
        return EINVAL;
    default:
        return EIO;
    }
}

const char *co_dial_error(void)
{
    return dial_error;
}

int co_dial(const char *host, const char *port, int64_t deadline)
{
    coro__self("co_dial");
    dial_error[0] = '\0';
    struct dial_lookup *l = calloc(1, sizeof *l);
    if (!l || !(l->host = strdup(host)) || !(l->port = strdup(port))) {
        if (l)
            dial_lookup_free(l);
        snprintf(dial_error, sizeof dial_error, "%s:%s: out of memory", host,
                 port);
        errno = ENOMEM;
        return -1;
    }
    l->rc = EAI_FAIL;
    if (offload__run(OFFLOAD_NAMES, "co_dial", dial_resolve, l,
                     dial_lookup_free, deadline) < 0) {
        int err = errno; /* the lookup is freed when it finishes */
        snprintf(dial_error, sizeof dial_error, "%s: lookup: %s", host,
                 strerror(err));
        errno = err;
        return -1;
    }
    if (l->rc != 0) {
        int err = dial_lookup_errno(l);
        if (err == ENXIO)
            snprintf(dial_error, sizeof dial_error, "no such host: %s", host);
        else
            snprintf(dial_error, sizeof dial_error, "%s:%s: %s", host, port,
                     l->rc == EAI_SYSTEM ? strerror(err) : gai_strerror(l->rc));
        dial_lookup_free(l);
        errno = err;
        return -1;
    }
    int err = ENXIO; /* no address at all: as good as no such host */
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
    snprintf(dial_error, sizeof dial_error, "%s:%s: %s", host, port,
             err == ENXIO ? "no address" : strerror(err));
    errno = err;
    return -1;
}
