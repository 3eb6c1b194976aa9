/* The stream apps' sockets, held by the master (see sockets.h). */
#include "sockets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/log.h"

#define SOCKETS_MAX 64
#define SOCKETS_SPEC_MAX 512
#define SOCKETS_ASK_S 10 /* a worker waits this long for an answer */

struct sockets_entry {
    char spec[SOCKETS_SPEC_MAX]; /* "" while the slot is free */
    int fd;
    unsigned generation; /* the newest generation that asked for it */
};

static struct sockets_entry sockets_table[SOCKETS_MAX];
static int sockets_stopped; /* a stop began: nothing is bound any more */

static void sockets_close(struct sockets_entry *e, int unlink_file)
{
    if (!e->spec[0])
        return;
    close(e->fd);
    if (unlink_file && strncmp(e->spec, "unix:", 5) == 0)
        unlink(e->spec + 5);
    e->spec[0] = '\0';
    e->fd = -1;
}

/* The socket for spec: the one bound earlier, else a new one. Returns its
 * entry, or NULL with a message in err. */
static struct sockets_entry *sockets_get(const char *spec, unsigned gen,
                                         sockets_listen_fn listen, char *err,
                                         size_t errlen)
{
    struct sockets_entry *free_slot = NULL;
    if (sockets_stopped || gen == 0) {
        snprintf(err, errlen, "the server is stopping");
        return NULL;
    }
    for (int i = 0; i < SOCKETS_MAX; i++) {
        struct sockets_entry *e = &sockets_table[i];
        if (e->spec[0] && strcmp(e->spec, spec) == 0) {
            if (gen > e->generation)
                e->generation = gen;
            return e;
        }
        if (!e->spec[0] && !free_slot)
            free_slot = e;
    }
    if (!free_slot || strlen(spec) >= SOCKETS_SPEC_MAX) {
        snprintf(err, errlen, "%s",
                 free_slot ? "address too long" : "too many stream listeners");
        return NULL;
    }
    int fd = listen(spec, err, errlen);
    if (fd < 0)
        return NULL;
    snprintf(free_slot->spec, sizeof free_slot->spec, "%s", spec);
    free_slot->fd = fd;
    free_slot->generation = gen;
    log_info("master: stream listener %s bound", spec);
    return free_slot;
}

int sockets__answer(int ctl, const char *spec, unsigned generation,
                    sockets_listen_fn listen)
{
    char err[300];
    struct sockets_entry *e =
        sockets_get(spec, generation, listen, err + 1, sizeof err - 1);
    if (!e) {
        err[0] = 'E';
        return send(ctl, err, strlen(err), MSG_NOSIGNAL) < 0 ? -1 : 0;
    }
    char ok = '0';
    struct iovec iov = {.iov_base = &ok, .iov_len = 1};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctrl;
    memset(&ctrl, 0, sizeof ctrl);
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = ctrl.buf,
                        .msg_controllen = sizeof ctrl.buf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &e->fd, sizeof(int));
    return sendmsg(ctl, &mh, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

void sockets__prune(unsigned generation)
{
    for (int i = 0; i < SOCKETS_MAX; i++) {
        struct sockets_entry *e = &sockets_table[i];
        if (e->spec[0] && e->generation < generation) {
            log_info("master: stream listener %s closed (no app of "
                     "generation %u wants it)",
                     e->spec, generation);
            sockets_close(e, 1);
        }
    }
}

void sockets__close_all(void)
{
    sockets_stopped = 1;
    for (int i = 0; i < SOCKETS_MAX; i++)
        sockets_close(&sockets_table[i], 1);
}

void sockets__close_inherited(void)
{
    for (int i = 0; i < SOCKETS_MAX; i++)
        sockets_close(&sockets_table[i], 0);
}

int sockets__ask(int ctl, const char *spec, char *err, size_t errlen)
{
    char req[1 + SOCKETS_SPEC_MAX];
    int n = snprintf(req, sizeof req, "%c%s", SOCKETS_ASK, spec);
    if (n < 0 || (size_t)n >= sizeof req) {
        snprintf(err, errlen, "address too long");
        return -1;
    }
    /* the master answers at once; this only bounds a bug's cost */
    struct timeval tv = {.tv_sec = SOCKETS_ASK_S};
    setsockopt(ctl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (send(ctl, req, (size_t)n, MSG_NOSIGNAL) < 0) {
        snprintf(err, errlen, "asking the master: %s", strerror(errno));
        return -1;
    }
    char reply[300];
    struct iovec iov = {.iov_base = reply, .iov_len = sizeof reply - 1};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctrl;
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = ctrl.buf,
                        .msg_controllen = sizeof ctrl.buf};
    ssize_t r;
    do
        r = recvmsg(ctl, &mh, MSG_CMSG_CLOEXEC);
    while (r < 0 && errno == EINTR);
    if (r <= 0) {
        snprintf(err, errlen, "no answer from the master: %s",
                 r < 0 ? strerror(errno) : "it closed");
        return -1;
    }
    reply[r] = '\0';
    int fd = -1;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
        memcpy(&fd, CMSG_DATA(cm), sizeof fd);
    if (reply[0] == '0' && fd >= 0)
        return fd;
    if (fd >= 0)
        close(fd);
    snprintf(err, errlen, "%s", reply[0] == 'E' ? reply + 1 : "bad answer");
    return -1;
}
