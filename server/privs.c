/* The socket's owner and the privilege drop (see privs.h). */
#include "privs.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

/* A name from the user database, or a number (a uid with no passwd entry
 * is legitimate, as in containers). */
static int privs_uid(const char *name, uid_t *uid, gid_t *gid, char *real,
                     size_t reallen)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(name, &end, 10);
    struct passwd *pw = NULL;
    if (*name && !*end && !errno) {
        pw = getpwuid((uid_t)n);
        *uid = (uid_t)n;
        *gid = pw ? pw->pw_gid : (gid_t)n;
    } else {
        if (!(pw = getpwnam(name)))
            return -1;
        *uid = pw->pw_uid;
        *gid = pw->pw_gid;
    }
    if (real)
        snprintf(real, reallen, "%s", pw ? pw->pw_name : "");
    return 0;
}

static int privs_gid(const char *name, gid_t *gid)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(name, &end, 10);
    if (*name && !*end && !errno) {
        *gid = (gid_t)n;
        return 0;
    }
    struct group *gr = getgrnam(name);
    if (!gr)
        return -1;
    *gid = gr->gr_gid;
    return 0;
}

int privs__resolve(struct privs *p, char *err, size_t errlen)
{
    p->sock_uid = (uid_t)-1;
    p->sock_gid = (gid_t)-1;
    p->uid = (uid_t)-1;
    p->gid = (gid_t)-1;
    p->user_name[0] = '\0';
    gid_t primary;
    if (p->socket_owner) {
        char user[256];
        snprintf(user, sizeof user, "%s", p->socket_owner);
        char *colon = strchr(user, ':');
        if (colon)
            *colon++ = '\0';
        if (privs_uid(user, &p->sock_uid, &primary, NULL, 0) < 0) {
            snprintf(err, errlen, "--socket-owner: no such user '%s'", user);
            return -1;
        }
        if (colon && *colon && privs_gid(colon, &p->sock_gid) < 0) {
            snprintf(err, errlen, "--socket-owner: no such group '%s'", colon);
            return -1;
        }
    }
    /* --socket-group wins over a group in --socket-owner */
    if (p->socket_group && privs_gid(p->socket_group, &p->sock_gid) < 0) {
        snprintf(err, errlen, "--socket-group: no such group '%s'",
                 p->socket_group);
        return -1;
    }
    if (p->user) {
        if (privs_uid(p->user, &p->uid, &primary, p->user_name,
                      sizeof p->user_name) < 0) {
            snprintf(err, errlen, "--user: no such user '%s'", p->user);
            return -1;
        }
        p->gid = primary; /* the user's own group, unless --group */
    }
    if (p->group && privs_gid(p->group, &p->gid) < 0) {
        snprintf(err, errlen, "--group: no such group '%s'", p->group);
        return -1;
    }
    return 0;
}

int privs__chown_socket(const struct privs *p, const char *path, char *err,
                        size_t errlen)
{
    if (p->sock_uid == (uid_t)-1 && p->sock_gid == (gid_t)-1)
        return 0;
    /* lchown: the socket file itself, never what a symlink put in its
     * place would point at */
    if (lchown(path, p->sock_uid, p->sock_gid) < 0) {
        snprintf(err, errlen,
                 "cannot give %s its owner/group (--socket-owner, "
                 "--socket-group): %s%s",
                 path, strerror(errno),
                 errno == EPERM ? " (only root may give a file to another "
                                  "user, or to a group it is not in)"
                                : "");
        return -1;
    }
    return 0;
}

int privs__drop(const struct privs *p, char *err, size_t errlen)
{
    if (p->uid == (uid_t)-1 && p->gid == (gid_t)-1) {
        if (geteuid() == 0)
            log_warn("running as root: apps run with root's privileges (give "
                     "--user and --group to drop them after binding)");
        return 0;
    }
    uid_t uid = p->uid == (uid_t)-1 ? geteuid() : p->uid;
    gid_t gid = p->gid == (gid_t)-1 ? getegid() : p->gid;
    if (geteuid() != 0) {
        /* nothing to drop; being asked to stay who we are is fine */
        if (uid == geteuid() && gid == getegid())
            return 0;
        snprintf(err, errlen,
                 "--user/--group: only root can change to another user or "
                 "group (running as uid %d)",
                 (int)geteuid());
        return -1;
    }
    /* supplementary groups first, while still root: --user's own, or none
     * (root's would otherwise stay, group 0 among them) */
    int rc = p->user_name[0] && p->uid != (uid_t)-1
                 ? initgroups(p->user_name, gid)
                 : setgroups(1, &gid);
    if (rc < 0) {
        snprintf(err, errlen, "--user/--group: setting groups: %s",
                 strerror(errno));
        return -1;
    }
    if (setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
        snprintf(err, errlen, "--user/--group: cannot become uid %d gid %d: %s",
                 (int)uid, (int)gid, strerror(errno));
        return -1;
    }
    if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        snprintf(err, errlen, "--user: root could be regained after the drop");
        return -1;
    }
    log_info("running as uid %d gid %d", (int)uid, (int)gid);
    return 0;
}
