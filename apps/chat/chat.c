/* chat - each line a client sends goes to every client of its worker (one
 * room per worker); a client too slow to take a line at once is dropped. */
#include <string.h>
#include <sys/socket.h>

#include "coserve.h"

#define CHAT_MAX 1024
static int chat_fds[CHAT_MAX]; /* this worker's clients, as fd + 1 */

static void chat_say(const char *line, size_t n)
{
    for (int i = 0; i < CHAT_MAX; i++)
        if (chat_fds[i] && send(chat_fds[i] - 1, line, n,
                                MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)n)
            shutdown(chat_fds[i] - 1, SHUT_RDWR); /* its recv ends it */
}

static int chat(int fd, const struct sockaddr *peer, socklen_t len)
{
    int me = 0;
    while (me < CHAT_MAX && chat_fds[me])
        me++;
    if ((void)peer, (void)len, me == CHAT_MAX)
        return 0; /* the room is full */
    chat_fds[me] = fd + 1;
    char line[1024], *nl;
    size_t have = 0, one;
    ssize_t n;
    while ((n = recv(fd, line + have, sizeof line - have, 0)) > 0)
        for (have += (size_t)n; /* a line too long goes in parts */
             (nl = memchr(line, '\n', have)) || have == sizeof line;
             memmove(line, line + one, have -= one))
            chat_say(line, one = nl ? (size_t)(nl - line) + 1 : have);
    chat_fds[me] = 0;
    return 0;
}

COSERVE_APP(.name = "chat", .listen = "127.0.0.1:9001", .stream = chat);
