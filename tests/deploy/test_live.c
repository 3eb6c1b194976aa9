/*
 * Live updates across workers (apps/webchat, apps/notes' /notes/events,
 * both on the bus of apps/webchat/bus.c): a real server with two workers.
 * Which worker takes a connection is the kernel's choice, so the tests
 * stop the other worker (SIGSTOP) while connecting: the connection then
 * can only be accepted by the one left running, and the chat's hello
 * names the worker, so the placement is checked, not assumed.
 */
#include "deploy_util.h"

#include "../http/ws_client.h"

struct live {
    struct du_coserve s;
    pid_t w[2];
};

static void live_up(struct live *l)
{
    du_setup();
    char *db = h_fmt("COSERVE_NOTES_DB=%s", du_path("notes.db"));
    du_coserve_start(&l->s, "live", 0, 2, NULL, NULL, DU_ARGS(db));
    free(db);
    h_srv.port = l->s.port; /* for ws_client.h and h_connect */
    cr_assert_eq(du_workers(&l->s, l->w, 2), 2, "two workers");
}

/* Opens a chat with worker `i` alone taking connections (the other is
 * stopped until the handshake is answered). */
static struct h_conn *live_chat_on(struct live *l, int i)
{
    kill(l->w[1 - i], SIGSTOP);
    struct h_conn *c = wsc_open("/chat/ws", NULL);
    kill(l->w[1 - i], SIGCONT);
    return c;
}

/* The next chat message, as text (malloc'd). */
static char *live_chat_next(struct h_conn *c)
{
    struct wsc_frame f;
    cr_assert_eq(wsc_read(c, &f), 1, "the chat closed");
    cr_assert_eq(f.opcode, 1, "a text message, not opcode %d", f.opcode);
    return (char *)f.data;
}

TestSuite(live, .fini = du_teardown, .timeout = 60);

Test(live, chat_messages_reach_clients_on_every_worker)
{
    struct live l;
    live_up(&l);
    struct h_conn *c[2];
    for (int i = 0; i < 2; i++) {
        c[i] = live_chat_on(&l, i);
        char *hello = live_chat_next(c[i]);
        char *want = h_fmt("{\"type\":\"hello\",\"worker\":%d}", (int)l.w[i]);
        cr_assert_str_eq(hello, want, "connection %d is on worker %d", i,
                         (int)l.w[i]);
        free(hello);
        free(want);
    }
    for (int from = 0; from < 2; from++) {
        char *text = h_fmt("hello \"from\" worker %d \xc3\xa9", from);
        wsc_send(c[from], 1, text, strlen(text));
        char *want = h_fmt("{\"type\":\"msg\",\"worker\":%d,\"text\":\"hello "
                           "\\\"from\\\" worker %d \xc3\xa9\"}",
                           (int)l.w[from], from);
        for (int to = 0; to < 2; to++) {
            char *got = live_chat_next(c[to]);
            cr_assert_str_eq(got, want, "client %d got the message of %d", to,
                             from);
            free(got);
        }
        free(text);
        free(want);
    }
    for (int i = 0; i < 2; i++) {
        wsc_send(c[i], 8, "\x03\xe8", 2);
        cr_assert_eq(wsc_expect_close(c[i]), 1000);
        h_close(c[i]);
    }
    du_coserve_stop(&l.s);
}

/* Reads the event stream until an event whose data is `data`; returns its
 * id line's value (malloc'd). */
static char *live_event(struct h_conn *c, const char *data)
{
    char *needle = h_fmt("data: %s\n", data);
    int64_t end = h_now_ms() + H_GUARD_MS;
    const char *at;
    while (!(at = c->buf ? h_memmem(c->buf, c->len, needle) : NULL))
        cr_assert_eq(h_fill(c, end), 1, "no event with %s; got:\n%.*s", needle,
                     (int)c->len, c->buf ? c->buf : "");
    /* the id line comes before the data line, in the same event */
    const char *id = at;
    while (id > c->buf && memcmp(id, "\nid: ", 5) != 0)
        id--;
    cr_assert(id > c->buf, "an event without an id");
    id += 5;
    char *out = strndup(id, strcspn(id, "\n"));
    size_t used = (size_t)(at - c->buf) + strlen(needle);
    memmove(c->buf, c->buf + used, c->len - used);
    c->len -= used;
    free(needle);
    return out;
}

Test(live, notes_changes_reach_an_event_stream_on_another_worker)
{
    struct live l;
    live_up(&l);
    kill(l.w[1], SIGSTOP);
    struct h_conn *ev = h_connect();
    h_sends(ev, "GET /notes/events HTTP/1.1\r\nHost: t\r\n\r\n");
    int64_t end = h_now_ms() + H_GUARD_MS;
    while (!ev->buf || !h_memmem(ev->buf, ev->len, "retry: 1000\n"))
        cr_assert_eq(h_fill(ev, end), 1, "no event stream");
    cr_assert(h_memmem(ev->buf, ev->len, "text/event-stream"));
    kill(l.w[1], SIGCONT);

    /* with worker 0 stopped, worker 1 makes every change */
    kill(l.w[0], SIGSTOP);
    struct h_resp *r =
        h_request("POST /notes HTTP/1.1\r\nHost: t\r\nContent-Type: "
                  "application/json\r\nContent-Length: 13\r\n\r\n"
                  "{\"text\":\"a\"}\n",
                  0, 201);
    const char *id = strstr(r->body, "\"id\":");
    cr_assert_not_null(id, "no id in %s", r->body);
    int note = atoi(id + 5);
    h_resp_free(r);
    char *put = h_fmt("PUT /notes/%d HTTP/1.1\r\nHost: t\r\nContent-Type: "
                      "application/json\r\nContent-Length: 12\r\n\r\n"
                      "{\"text\":\"b\"}",
                      note);
    r = h_request(put, 0, 200);
    h_resp_free(r);
    free(put);
    char *del = h_fmt("DELETE /notes/%d HTTP/1.1\r\nHost: t\r\n\r\n", note);
    r = h_request(del, 0, 204);
    h_resp_free(r);
    free(del);
    kill(l.w[0], SIGCONT);

    const char *ops[] = {"created", "updated", "deleted"};
    for (int i = 0; i < 3; i++) {
        char *data = h_fmt("{\"op\":\"%s\",\"id\":%d}", ops[i], note);
        char *got = live_event(ev, data);
        char *want = h_fmt("%d-%d", (int)l.w[0], i); /* worker 0's stream */
        cr_assert_str_eq(got, want, "event %s", ops[i]);
        free(data);
        free(got);
        free(want);
    }
    h_close(ev);
    du_coserve_stop(&l.s);
}
