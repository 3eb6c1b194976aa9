/* The HTTP listeners (see listeners.h). */
#include "listeners.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "http/listen.h"

static unsigned listeners_mode = 0660;
static const struct privs *listeners_privs;

int listeners__bind(const char *spec, char *err, size_t errlen)
{
    int fd = listen__open(spec, err, errlen);
    if (fd < 0 || strncmp(spec, "unix:", 5) != 0)
        return fd;
    if (chmod(spec + 5, (mode_t)listeners_mode) < 0) {
        snprintf(err, errlen, "--socket-mode: chmod %s: %s", spec + 5,
                 strerror(errno));
        close(fd);
        return -1;
    }
    /* after the drop only a group of --user's is possible: the error says
     * so */
    if (listeners_privs &&
        privs__chown_socket(listeners_privs, spec + 5, err, errlen) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* systemd socket activation: LISTEN_PID is us and LISTEN_FDS = n means fds
 * 3..3+n-1 are listening sockets made for us, every one served. */
static int listeners_activated(struct listeners *l)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    if (!pid || !fds || atoi(pid) != (int)getpid() || atoi(fds) < 1)
        return 0;
    int n = atoi(fds);
    if (n > OPTIONS_LIST_MAX)
        n = OPTIONS_LIST_MAX;
    for (int i = 0; i < n; i++) {
        int fd = 3 + i;
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        l->fds[l->count] = fd;
        l->specs[l->count++] = NULL;
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    l->activated = 1;
    return 1;
}

int listeners__open(struct listeners *l, const struct options_list *specs,
                    unsigned mode, const struct privs *privs, char *err,
                    size_t errlen)
{
    memset(l, 0, sizeof *l);
    listeners_mode = mode;
    listeners_privs = privs;
    if (listeners_activated(l))
        return 0;
    for (size_t i = 0; i < specs->count; i++) {
        int fd = listeners__bind(specs->items[i], err, errlen);
        if (fd < 0) {
            listeners__unlink(l);
            for (unsigned k = 0; k < l->count; k++)
                close(l->fds[k]);
            l->count = 0;
            return -1;
        }
        l->fds[l->count] = fd;
        l->specs[l->count++] = specs->items[i];
    }
    return 0;
}

/* A socket from systemd is known only by its fd: its name, as a spec. */
static int listeners_name(int fd, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char host[NI_MAXHOST], port[NI_MAXSERV];
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return -1;
    if (ss.ss_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)&ss;
        if (sl <= offsetof(struct sockaddr_un, sun_path) || !un->sun_path[0])
            return -1; /* unnamed or abstract: no path to give */
        snprintf(buf, len, "unix:%.*s",
                 (int)(sl - offsetof(struct sockaddr_un, sun_path)),
                 un->sun_path);
        return 0;
    }
    if (getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, port,
                    sizeof port, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        return -1;
    int v6 = strchr(host, ':') != NULL;
    snprintf(buf, len, "%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port);
    return 0;
}

/* A request on a unix socket carries no address an app could dial: the
 * listener's own address is the way back to this server. */
void listeners__export(const struct listeners *l)
{
    char buf[NI_MAXHOST + NI_MAXSERV + 8];
    if (!l->count)
        return;
    const char *spec = l->specs[0];
    if (!spec && listeners_name(l->fds[0], buf, sizeof buf) == 0)
        spec = buf;
    if (spec)
        setenv("COSERVE_LISTEN", spec, 1);
}

void listeners__unlink(const struct listeners *l)
{
    for (unsigned i = 0; i < l->count; i++)
        if (l->specs[i] && strncmp(l->specs[i], "unix:", 5) == 0)
            unlink(l->specs[i] + 5);
}
