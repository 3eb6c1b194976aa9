/*
 * webchat - one chat room for every browser, whichever worker holds its
 * WebSocket. The page is www/chat.html; the socket is /chat/ws:
 *
 *   the server sends  {"type":"hello","worker":PID}  once, then
 *                     {"type":"msg","worker":PID,"text":"..."} per message
 *   the client sends  a text message: the line to say (up to CHAT_TEXT_MAX)
 *
 * Messages cross workers on the bus (bus.c): the handler publishes what
 * its client says, and a second coroutine per connection follows the
 * worker's ring and sends each message on, so a slow client only delays
 * itself. "worker" is the pid of the worker that took the message in.
 * (apps/chat is the same room for plain TCP clients, one per worker.)
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bus.h"
#include "coserve.h"

#define CHAT_TEXT_MAX 2000
/* Longest a client that stopped reading holds its follower. */
#define CHAT_SEND_MS 10000

/* Appends s[0..n) to out as a JSON string body (no quotes); out has room
 * for 6 bytes per input byte. The server checked the text is UTF-8, so
 * only quotes, backslashes and control bytes need escaping. */
static size_t chat_escape(char *out, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[k++] = '\\';
            out[k++] = (char)c;
        } else if (c < 0x20) {
            k += (size_t)sprintf(out + k, "\\u%04x", c);
        } else {
            out[k++] = (char)c;
        }
    }
    return k;
}

/* The follower: every message of the bus from `start` on, to one client. */
static void *chat_follow(void *arg)
{
    co_ws_t *ws = ((void **)arg)[0];
    uint64_t seq = *(uint64_t *)((void **)arg)[1];
    for (;;) {
        if (bus_wait(seq, -1) < 0)
            return NULL; /* cancelled: the client left */
        const char *data;
        ssize_t n = bus_get(seq, &data);
        if (n < 0) { /* fell a ring behind: skip to what is kept */
            seq = bus_next() - BUS_RING;
            continue;
        }
        if (co_ws_send(ws, CO_WS_TEXT, data, (size_t)n,
                       co_deadline(CHAT_SEND_MS)) < 0)
            return NULL;
        seq++;
    }
}

/* Publishes what the client said, with this worker's pid. */
static int chat_say(const char *text, size_t n)
{
    static char msg[CHAT_TEXT_MAX * 6 + 64];
    int k = snprintf(msg, sizeof msg,
                     "{\"type\":\"msg\",\"worker\":%ld,"
                     "\"text\":\"",
                     (long)getpid());
    size_t len = (size_t)k + chat_escape(msg + k, text, n);
    memcpy(msg + len, "\"}", 2);
    return bus_publish(msg, len + 2);
}

static int webchat(co_request_t *req, co_response_t *res)
{
    if (strcmp(co_req_path_info(req), "/ws") != 0) {
        if (co_res_header(res, "Location", "/chat.html") < 0)
            return -1;
        return co_res_send(res, 302, "text/plain", "see /chat.html\n", 15);
    }
    co_ws_t *ws = co_ws_accept(req, res, NULL, 0);
    if (!ws) /* not a handshake: the server's 400 or 426 is ready */
        return errno == EPROTO ? 0 : -1;
    if (bus_start() < 0)
        return co_ws_close(ws, 1011, "no bus", co_deadline(CHAT_SEND_MS)), 0;
    char hello[64];
    int n = snprintf(hello, sizeof hello, "{\"type\":\"hello\",\"worker\":%ld}",
                     (long)getpid());
    if (co_ws_send(ws, CO_WS_TEXT, hello, (size_t)n,
                   co_deadline(CHAT_SEND_MS)) < 0)
        return 0;
    uint64_t start = bus_next(); /* what comes after the hello */
    void *args[2] = {ws, &start};
    co_t *follower = co_spawn(chat_follow, args);
    if (!follower)
        return -1;
    for (;;) {
        void *data;
        int type;
        ssize_t got = co_ws_recv(ws, &data, &type, -1);
        if (got < 0)
            break; /* closed, or the server closed it and says why */
        if (type != CO_WS_TEXT || got == 0)
            continue;
        const unsigned char *b = data;
        if (got > CHAT_TEXT_MAX) /* cut at a character's start */
            for (got = CHAT_TEXT_MAX; got > 0 && (b[got] & 0xC0) == 0x80;)
                got--;
        if (chat_say(data, (size_t)got) < 0 && errno == ECANCELED)
            break;
    }
    co_cancel(follower);
    co_join(follower, NULL, -1);
    return 0;
}

static int webchat_init(void)
{
    return bus_init("chat");
}

COSERVE_APP(.name = "webchat", .mount = "/chat", .init = webchat_init,
            .fini = bus_fini, .handler = webchat);
