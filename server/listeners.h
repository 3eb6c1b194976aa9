/*
 * listeners.h - the HTTP listening sockets the master holds for its
 * workers: every --listen address, or every socket systemd passed
 * (LISTEN_FDS), which win. Unix sockets get --socket-mode and
 * --socket-owner/--socket-group. The same binding serves the stream apps'
 * and the metrics listeners (listeners__bind), so every unix socket
 * coserve makes has the same mode and owner.
 */
#ifndef COSERVE_LISTENERS_H
#define COSERVE_LISTENERS_H

#include <stddef.h>

#include "options.h"
#include "privs.h"

struct listeners {
    int fds[OPTIONS_LIST_MAX];
    const char *specs[OPTIONS_LIST_MAX]; /* as given (NULL: from systemd) */
    unsigned count;
    int activated; /* from systemd: never closed for good nor unlinked */
};

/* Binds every spec, or takes systemd's sockets. Returns 0, or -1 with one
 * line in err (the sockets bound so far are closed). mode and privs are
 * kept for listeners__bind. */
int listeners__open(struct listeners *l, const struct options_list *specs,
                    unsigned mode, const struct privs *privs, char *err,
                    size_t errlen);

/* Binds one more listener as listeners__open would (unix sockets get the
 * mode and owner): the master's callback for stream apps (sockets.h). */
int listeners__bind(const char *spec, char *err, size_t errlen);

/* COSERVE_LISTEN: the first listener's address, for apps that call the
 * server itself (fanout). */
void listeners__export(const struct listeners *l);

/* Removes the unix sockets it made (systemd's stay: they are systemd's). */
void listeners__unlink(const struct listeners *l);

#endif
