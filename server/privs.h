/*
 * privs.h - who owns the unix socket, and whom the server runs as.
 *
 * The master binds its listener (and writes --pid-file) with the
 * privileges it was started with, gives the unix socket its owner and
 * group (--socket-owner USER[:GROUP], --socket-group GROUP), then drops to
 * --user / --group before it forks a worker: workers inherit the
 * credentials, and no app code ever runs with more. Debian's nginx runs as
 * www-data, so a socket of group www-data with mode 0660 is one nginx can
 * connect to while other local users cannot.
 *
 * Names or numbers are accepted everywhere; they are looked up once, at
 * start, before the drop (after it /etc/passwd may be unreadable).
 */
#ifndef COSERVE_PRIVS_H
#define COSERVE_PRIVS_H

#include <stddef.h>
#include <sys/types.h>

struct privs {
    /* as given on the command line (NULL: not given) */
    const char *socket_owner; /* USER or USER:GROUP */
    const char *socket_group;
    const char *user;
    const char *group;
    /* filled by privs__resolve; (uid_t)-1 / (gid_t)-1: leave as is */
    uid_t sock_uid;
    gid_t sock_gid;
    uid_t uid;
    gid_t gid;
    char user_name[64]; /* --user's name, for its supplementary groups */
};

/* Looks up every name given. Returns 0, or -1 with a message in err. */
int privs__resolve(struct privs *p, char *err, size_t errlen);

/* Gives the unix socket at path the owner and group asked for (nothing if
 * none was). Returns 0, or -1 with a message in err. */
int privs__chown_socket(const struct privs *p, const char *path, char *err,
                        size_t errlen);

/* Becomes --user / --group for good (real, effective and saved ids, and
 * --user's supplementary groups), and checks root cannot be regained.
 * Without them, a master running as root only warns: apps then run as
 * root, which the operator asked for. Returns 0, or -1 with a message in
 * err. */
int privs__drop(const struct privs *p, char *err, size_t errlen);

#endif
