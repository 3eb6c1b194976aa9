/*
 * chat: a chat server (a coroutine per member, every line relayed to the
 * others) and three scripted members who join one after another and speak
 * in turn, each once the line before has reached them. The server reports
 * as it relays; each member's transcript is printed at the end. The same
 * program in gevent is examples/py/chat.py; both print
 * examples/chat.expected.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "coserve.h"
#include "example_net.h"

#define MAX_MEMBERS 8
#define LAST "carol: hey both"

/* A connection read line by line. */
struct lines {
    int fd;
    char buf[4096];
    size_t len;
};

/* Reads one line (without its \n) into out. Returns 0, or -1 at the end. */
static int read_line(struct lines *in, char *out, size_t size)
{
    for (;;) {
        char *nl = memchr(in->buf, '\n', in->len);
        if (nl) {
            size_t n = (size_t)(nl - in->buf);
            snprintf(out, size, "%.*s", (int)n, in->buf);
            in->len -= n + 1;
            memmove(in->buf, nl + 1, in->len);
            return 0;
        }
        if (in->len == sizeof in->buf)
            return -1;
        ssize_t got =
            co_read(in->fd, in->buf + in->len, sizeof in->buf - in->len, -1);
        if (got <= 0)
            return -1;
        in->len += (size_t)got;
    }
}

static int send_line(int fd, const char *a, const char *b)
{
    char line[600];
    int n = snprintf(line, sizeof line, "%s%s\n", a, b);
    return co_write_all(fd, line, (size_t)n, -1);
}

/* ---- the server ------------------------------------------------------- */

static struct member {
    char name[64];
    int fd;
} members[MAX_MEMBERS];
static int nmembers;

static void relay(const char *sender, const char *a, const char *b)
{
    for (int i = 0; i < nmembers; i++)
        if (strcmp(members[i].name, sender) != 0)
            send_line(members[i].fd, a, b);
}

static void relay_joined(const char *name)
{
    char line[100];
    snprintf(line, sizeof line, "* %s joined", name);
    relay(name, line, "");
}

static void *member_session(void *arg)
{
    struct lines in = {.fd = (int)(intptr_t)arg};
    char name[64], line[512], from[80];
    if (read_line(&in, name, sizeof name) == 0 && nmembers < MAX_MEMBERS) {
        printf("server: %s joined\n", name);
        send_line(in.fd, "welcome ", name);
        relay_joined(name);
        struct member *me = &members[nmembers++];
        snprintf(me->name, sizeof me->name, "%s", name);
        me->fd = in.fd;
        snprintf(from, sizeof from, "%s: ", name);
        while (read_line(&in, line, sizeof line) == 0) {
            printf("server: %s says '%s'\n", name, line);
            relay(name, from, line);
        }
        *me = members[--nmembers]; /* leave */
    }
    close(in.fd);
    return NULL;
}

static void *serve(void *arg)
{
    int lfd = *(int *)arg, conn;
    while ((conn = co_accept(lfd, NULL, NULL, -1)) >= 0) {
        co_t *s = co_spawn(member_session, (void *)(intptr_t)conn);
        if (s)
            co_detach(s);
        else
            close(conn);
    }
    return NULL; /* cancelled */
}

/* ---- the members ------------------------------------------------------ */

struct script {
    const char *name, *cue, *says;
    int port;
    co_event_t *welcomed;
    char seen[1024]; /* the transcript, " | " between lines */
};

static void *member(void *arg)
{
    struct script *s = arg;
    char port[16], line[512], mine[600];
    snprintf(port, sizeof port, "%d", s->port);
    snprintf(mine, sizeof mine, "%s: %s", s->name, s->says);
    struct lines in = {.fd = co_dial("127.0.0.1", port, -1)};
    if (in.fd < 0)
        return "dial failed";
    send_line(in.fd, s->name, "");
    while (read_line(&in, line, sizeof line) == 0) {
        size_t used = strlen(s->seen);
        snprintf(s->seen + used, sizeof s->seen - used, "%s%s",
                 used ? " | " : "", line);
        if (strncmp(line, "welcome", 7) == 0)
            co_event_set(s->welcomed);
        if (strcmp(line, s->cue) == 0) {
            send_line(in.fd, s->says, "");
            if (strcmp(mine, LAST) == 0)
                break;
        }
        if (strcmp(line, LAST) == 0)
            break;
    }
    close(in.fd);
    return NULL;
}

static void *chat_main(void *unused)
{
    (void)unused;
    int port;
    int lfd = example_listen(&port);
    if (lfd < 0)
        return "listen failed";
    co_t *server = co_spawn(serve, &lfd);
    struct script script[3] = {
        {.name = "alice", .cue = "* carol joined", .says = "hello all"},
        {.name = "bob", .cue = "alice: hello all", .says = "hi alice"},
        {.name = "carol", .cue = "bob: hi alice", .says = "hey both"}};
    co_t *talkers[3];
    for (int i = 0; i < 3; i++) {
        script[i].port = port;
        script[i].welcomed = co_event_new();
        talkers[i] = co_spawn(member, &script[i]);
        /* the next one joins after this one is in */
        co_event_wait(script[i].welcomed, -1);
    }
    void *err = NULL;
    for (int i = 0; i < 3; i++) {
        void *e = NULL;
        co_join(talkers[i], &e, -1);
        err = err ? err : e;
        co_event_free(script[i].welcomed);
    }
    for (int i = 0; i < 3 && !err; i++)
        printf("%s saw: %s\n", script[i].name, script[i].seen);
    co_cancel(server);
    co_join(server, NULL, -1);
    close(lfd);
    return err;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    void *err = NULL;
    if (co_run(chat_main, NULL, &err) < 0 || err) {
        fprintf(stderr, "chat: %s\n", err ? (char *)err : "co_run failed");
        return 1;
    }
    return 0;
}
