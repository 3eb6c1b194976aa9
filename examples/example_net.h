/*
 * example_net.h - what the network examples share: a non-blocking
 * listener on 127.0.0.1 at a port the kernel picks, so two runs (or a run
 * and the test suite) never collide.
 */
#ifndef COSERVE_EXAMPLE_NET_H
#define COSERVE_EXAMPLE_NET_H

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* Returns the listening fd and stores its port in *port, or -1. */
static inline int example_listen(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
        listen(fd, 64) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(sin.sin_port);
    return fd;
}

#endif
