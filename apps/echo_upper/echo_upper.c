/*
 * echo_upper - gevent's StreamServer tutorial: an echo server answering in
 * upper case. `nc 127.0.0.1 9000` (or --stream-listen echo_upper=ADDR);
 * a read starting with "quit" ends the session. Plain blocking calls: the
 * server's hooks make them wait in this connection's coroutine only.
 */
#include <ctype.h>
#include <string.h>
#include <unistd.h>

#include "coserve.h"

static int echo_upper(int fd, const struct sockaddr *peer, socklen_t len)
{
    (void)peer;
    (void)len;
    static const char hi[] =
        "Welcome to the echo server! Type quit to exit.\r\n";
    if (write(fd, hi, sizeof hi - 1) < 0)
        return -1;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        if (n >= 4 && memcmp(buf, "quit", 4) == 0)
            return 0;
        for (ssize_t i = 0; i < n; i++)
            buf[i] = (char)toupper((unsigned char)buf[i]);
        if (write(fd, buf, (size_t)n) != n) /* a partial one timed out */
            return -1;
    }
    return n < 0 ? -1 : 0;
}

COSERVE_APP(.name = "echo_upper", .listen = "127.0.0.1:9000",
            .stream = echo_upper);
