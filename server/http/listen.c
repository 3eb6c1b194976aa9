/*
 * The front end's listening sockets: opening one, its local address, and
 * starting or stopping the accept watchers (whose callback server.c sets).
 */
#include "http/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/hub.h"
#include "core/log.h"
#include "http/http.h"

int listen__open(const char *spec, char *err, size_t errlen)
{
    int fd = -1;
    if (strncmp(spec, "unix:", 5) == 0) {
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        const char *path = spec + 5;
        if (!*path || strlen(path) >= sizeof un.sun_path) {
            snprintf(err, errlen, "bad unix socket path in '%s'", spec);
            return -1;
        }
        strcpy(un.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
            unlink(path); /* a stale socket from an earlier run */
        if (fd < 0 || bind(fd, (struct sockaddr *)&un, sizeof un) < 0 ||
            listen(fd, SOMAXCONN) < 0) {
            snprintf(err, errlen, "cannot listen on %s: %s", spec,
                     strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
        return fd;
    }
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || !colon[1] ||
        (size_t)(colon - spec) >= sizeof host) {
        snprintf(err, errlen, "--listen wants HOST:PORT or unix:PATH, not '%s'",
                 spec);
        return -1;
    }
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    int rc = getaddrinfo(*host ? host : NULL, colon + 1, &hints, &res);
    if (rc) {
        snprintf(err, errlen, "cannot resolve '%s': %s", spec,
                 gai_strerror(rc));
        return -1;
    }
    int saved = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            listen(fd, SOMAXCONN) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, errlen, "cannot listen on %s: %s", spec,
                 strerror(saved ? saved : EADDRNOTAVAIL));
    return fd;
}

void listen__local_addr(struct http_listener *l)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    snprintf(l->addr, sizeof l->addr, "unix");
    l->port = 0;
    l->family = AF_UNIX;
    if (getsockname(l->fd, (struct sockaddr *)&ss, &len) < 0)
        return;
    l->family = ss.ss_family;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (void *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, l->addr, sizeof l->addr);
        l->port = ntohs(in->sin_port);
    } else if (ss.ss_family == AF_UNIX) {
        struct sockaddr_un *un = (void *)&ss;
        snprintf(l->addr, sizeof l->addr, "%.*s", (int)(sizeof l->addr - 1),
                 un->sun_path);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (void *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, l->addr, sizeof l->addr);
        l->port = ntohs(in6->sin6_port);
    }
}

/* "http://127.0.0.1:8080, unix:/run/coserve.sock": one "serving on" line
 * per worker, whatever the number of listeners. */
void listen__log_serving(const struct http_server *srv)
{
    char text[1024];
    size_t n = 0;
    for (unsigned i = 0; i < srv->nlisteners && n < sizeof text; i++) {
        const struct http_listener *l = &srv->listeners[i];
        const char *sep = i ? ", " : "";
        int v6 = l->family == AF_INET6;
        if (l->family == AF_UNIX)
            n += (size_t)snprintf(text + n, sizeof text - n, "%sunix:%s", sep,
                                  l->addr);
        else
            n += (size_t)snprintf(text + n, sizeof text - n,
                                  "%shttp://%s%s%s:%d", sep, v6 ? "[" : "",
                                  l->addr, v6 ? "]" : "", l->port);
    }
    log_info("serving on %s", n ? text : "(no listener)");
}

/* Starts or stops every listener's accept watcher. */
void listen__accepting(struct http_server *srv, int on)
{
    for (unsigned i = 0; i < srv->nlisteners; i++) {
        struct http_listener *l = &srv->listeners[i];
        if (l->fd < 0)
            continue;
        if (on)
            ev_io_start(srv->hub->loop, &l->io);
        else
            ev_io_stop(srv->hub->loop, &l->io);
    }
    srv->accepting = on;
}

void listen__resume(struct http_server *srv)
{
    if (!srv->accepting && !srv->draining && srv->nlisteners)
        listen__accepting(srv, 1);
}
