/*
 * bus - one topic's messages to every worker (see bus.h for the design).
 * All of it runs on the worker's hub: the ring and the reader are plain
 * statics, touched only by this worker's coroutines.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "bus.h"
#include "coserve.h"

/* A peer's queue is short (net.unix.max_dgram_qlen, often 10): a publish
 * that finds it full waits a millisecond and tries again, this often,
 * before it gives that peer up. Its reader drains it at hub speed. */
#define BUS_SEND_TRIES 2000

static struct {
    char dir[160];  /* TMPDIR/coserve-bus-MASTERPID */
    char topic[32]; /* the file prefix: TOPIC. */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int fd;              /* this worker's socket, -1 until bus_start */
    int failed;          /* the reader stopped: bus_start tries again */
    co_event_t *arrived; /* set and cleared at once: wakes every waiter */
    uint64_t next;       /* the sequence number of the next message */
    char *data[BUS_RING];
    size_t len[BUS_RING];
} bus = {.fd = -1};

int bus_init(const char *topic)
{
    const char *tmp = getenv("TMPDIR");
    /* Every worker's parent is the master: its pid names this server's
     * bus, so two servers on one machine never hear each other. */
    int n = snprintf(bus.dir, sizeof bus.dir, "%s/coserve-bus-%ld",
                     tmp && *tmp ? tmp : "/tmp", (long)getppid());
    int m = snprintf(bus.topic, sizeof bus.topic, "%s.", topic);
    int k = snprintf(bus.path, sizeof bus.path, "%s/%s%ld", bus.dir, bus.topic,
                     (long)getpid());
    if (n >= (int)sizeof bus.dir || m >= (int)sizeof bus.topic ||
        k >= (int)sizeof bus.path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* Keeps message n (a copy) in the ring and wakes the clients. */
static void bus_store(const char *buf, size_t n)
{
    char *copy = malloc(n ? n : 1);
    if (!copy)
        return; /* dropped, as a full peer's would be */
    memcpy(copy, buf, n);
    size_t slot = bus.next % BUS_RING;
    free(bus.data[slot]);
    bus.data[slot] = copy;
    bus.len[slot] = n;
    bus.next++;
    co_event_set(bus.arrived);
    co_event_clear(bus.arrived);
}

/* The worker's one reader: every message any worker published. */
static void *bus_reader(void *arg)
{
    (void)arg;
    static char buf[BUS_MSG_MAX];
    for (;;) {
        ssize_t n = co_recv(bus.fd, buf, sizeof buf, 0, -1);
        if (n >= 0) {
            bus_store(buf, (size_t)n);
        } else if (errno != EINTR) {
            bus.failed = 1; /* ECANCELED at the worker's end */
            return NULL;
        }
    }
}

int bus_start(void)
{
    if (bus.fd >= 0 && !bus.failed)
        return 0;
    if (!bus.arrived && !(bus.arrived = co_event_new()))
        return -1;
    if (bus.fd < 0) {
        if (mkdir(bus.dir, 0700) < 0 && errno != EEXIST)
            return -1;
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        memcpy(un.sun_path, bus.path, strlen(bus.path) + 1);
        unlink(bus.path); /* a dead process's, with our pid */
        if (bind(fd, (struct sockaddr *)&un, sizeof un) < 0) {
            int err = errno;
            close(fd);
            errno = err;
            return -1;
        }
        bus.fd = fd;
    }
    co_t *reader = co_spawn(bus_reader, NULL);
    if (!reader)
        return -1;
    co_set_name(reader, "bus-reader");
    co_detach(reader); /* outlives the request; cancelled at the end */
    bus.failed = 0;
    return 0;
}

/* Sends one datagram to the peer at path, waiting while its queue is
 * full. Returns 0, or -1 with errno (ECANCELED stops the publish). */
static int bus_send_to(const char *path, const void *data, size_t len)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof un.sun_path)
        return 0; /* not one of ours */
    memcpy(un.sun_path, path, strlen(path) + 1);
    for (int tries = 0;; tries++) {
        if (sendto(bus.fd, data, len, MSG_NOSIGNAL, (struct sockaddr *)&un,
                   sizeof un) >= 0)
            return 0;
        if (errno == ECONNREFUSED || errno == ENOENT) {
            unlink(path); /* its worker is gone */
            return 0;
        }
        if (errno != EAGAIN || tries == BUS_SEND_TRIES)
            return 0; /* best effort: that worker misses this one */
        if (co_sleep(co_deadline(1)) < 0)
            return -1;
    }
}

int bus_publish(const void *data, size_t len)
{
    if (len > BUS_MSG_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    if (bus_start() < 0)
        return -1;
    /* A handful of entries in a directory just written: the page cache
     * answers, so reading it on the hub is cheap. */
    DIR *d = opendir(bus.dir);
    if (!d)
        return -1;
    size_t plen = strlen(bus.topic);
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (strncmp(e->d_name, bus.topic, plen) != 0)
            continue;
        char path[sizeof bus.dir + sizeof e->d_name + 1];
        snprintf(path, sizeof path, "%s/%s", bus.dir, e->d_name);
        rc = bus_send_to(path, data, len);
    }
    int err = errno;
    closedir(d);
    errno = err;
    return rc;
}

uint64_t bus_next(void)
{
    return bus.next;
}

ssize_t bus_get(uint64_t seq, const char **data)
{
    if (seq >= bus.next) {
        errno = EAGAIN;
        return -1;
    }
    if (bus.next - seq > BUS_RING) {
        errno = ENOENT;
        return -1;
    }
    *data = bus.data[seq % BUS_RING];
    return (ssize_t)bus.len[seq % BUS_RING];
}

int bus_wait(uint64_t seq, int64_t deadline)
{
    while (bus.next <= seq)
        if (co_event_wait(bus.arrived, deadline) < 0)
            return -1;
    return 0;
}

void bus_fini(void)
{
    if (bus.fd >= 0) {
        unlink(bus.path);
        close(bus.fd);
        rmdir(bus.dir); /* the last worker out removes it (else ENOTEMPTY) */
        bus.fd = -1;
    }
    for (size_t i = 0; i < BUS_RING; i++) {
        free(bus.data[i]);
        bus.data[i] = NULL;
    }
    /* fini runs after the hub's end, which cancelled and joined every
     * coroutine (the reader and the clients): nobody waits on it now. */
    co_event_free(bus.arrived);
    bus.arrived = NULL;
}
