/*
 * WebSockets across a reload (HUP) and a stop (TERM) of a real master with
 * two workers: every open WebSocket gets a close frame with 1001 (going
 * away) while the grace period still runs, whether it sat idle in receive
 * or was in the middle of a conversation (messages exchanged, the first
 * fragment of the next one sent). After a reload a new connection is
 * served by the new workers.
 *
 * The grace period is set far longer than the guard of every read
 * (H_GUARD_MS): a 1001 sent only when the grace ran out would fail the
 * read, and the log must not say the grace ran out.
 */
#include "deploy_util.h"

#include "../http/ws_client.h"

#define WG_GRACE "60s"

struct wg {
    struct du_coserve s;
    pid_t old[2];
};

static void wg_up(struct wg *g)
{
    du_setup();
    char *db = h_fmt("COSERVE_NOTES_DB=%s", du_path("notes.db"));
    du_coserve_start(&g->s, "wg", 0, 2, NULL,
                     DU_ARGS("--graceful-timeout", WG_GRACE), DU_ARGS(db));
    free(db);
    h_srv.port = g->s.port; /* for ws_client.h */
    cr_assert_eq(du_workers(&g->s, g->old, 2), 2, "two workers");
}

/* The worker named in a chat's hello, {"type":"hello","worker":PID}. */
static pid_t wg_chat_hello(struct h_conn *c)
{
    struct wsc_frame f;
    cr_assert_eq(wsc_read(c, &f), 1, "the chat closed before its hello");
    int pid = 0;
    cr_assert_eq(
        sscanf((char *)f.data, "{\"type\":\"hello\",\"worker\":%d}", &pid), 1,
        "not a hello: %s", f.data);
    free(f.data);
    return (pid_t)pid;
}

/* The connections a stop finds: idle ones (an echo and a chat, waiting in
 * receive) and one mid-conversation. */
struct wg_conns {
    struct h_conn *idle, *chat, *busy;
};

static void wg_open(struct wg_conns *k)
{
    k->idle = wsc_open("/ws/echo", NULL);
    k->chat = wsc_open("/chat/ws", NULL);
    wg_chat_hello(k->chat);
    k->busy = wsc_open("/ws/echo", NULL);
    for (int i = 0; i < 3; i++) {
        char msg[32];
        int n = snprintf(msg, sizeof msg, "message %d", i);
        wsc_send(k->busy, 1, msg, (size_t)n);
        wsc_expect_msg(k->busy, 1, msg, (size_t)n);
    }
    /* the first fragment of a text message: the rest never comes */
    wsc_send_raw(k->busy, 0x01, "half of a", 9);
    /* a ping answered: the idle echo's handler is in receive */
    wsc_send(k->idle, 9, "p", 1);
    struct wsc_frame f;
    cr_assert_eq(wsc_read(k->idle, &f), 1);
    cr_assert_eq(f.opcode, 0xA, "a pong, not opcode %d", f.opcode);
    free(f.data);
}

/* Each connection gets 1001 and then its end. The idle echo answers the
 * close (the handshake completes); the others do not (the server closes
 * after its short wait for the answer). */
static void wg_expect_going_away(struct wg_conns *k)
{
    struct wsc_frame f;
    cr_assert_eq(wsc_read(k->idle, &f), 1, "idle: ended with no close");
    cr_assert_eq(f.opcode, 8, "idle: opcode %d, not a close", f.opcode);
    cr_assert_geq(f.len, 2, "idle: a close without a code");
    cr_assert_eq(f.data[0] << 8 | f.data[1], 1001, "idle: close code %d",
                 f.data[0] << 8 | f.data[1]);
    free(f.data);
    wsc_send(k->idle, 8, "\x03\xe9", 2);
    cr_assert_eq(h_wait_eof(k->idle, H_GUARD_MS), 1,
                 "idle: the server kept the connection after the close");
    cr_assert_eq(wsc_expect_close(k->chat), 1001, "chat: not 1001");
    /* no echo of the half message: its close is the next frame */
    cr_assert_eq(wsc_expect_close(k->busy), 1001, "mid-conversation: not 1001");
    h_close(k->idle);
    h_close(k->chat);
    h_close(k->busy);
}

TestSuite(ws_graceful, .fini = du_teardown, .timeout = 90);

Test(ws_graceful, a_reload_closes_websockets_with_1001_and_new_workers_serve)
{
    struct wg g;
    wg_up(&g);
    struct wg_conns k;
    wg_open(&k);
    kill(g.s.pid, SIGHUP);
    wg_expect_going_away(&k);

    /* the old workers leave once their WebSockets closed: well within the
     * grace (nothing else held them) */
    int64_t end = h_now_ms() + DU_START_MS;
    pid_t now[8];
    int n;
    for (;;) {
        n = du_workers(&g.s, now, 8);
        int replaced = n == 2;
        for (int i = 0; i < n; i++)
            replaced &= !du_pid_in(now[i], g.old, 2);
        if (replaced)
            break;
        cr_assert_leq(h_now_ms(), end, "the old workers stayed:\n%s",
                      du_tail(g.s.err, 3000));
        h_sleep_ms(10);
    }
    cr_assert_eq(du_count_in_file(g.s.err, "grace period over"), 0,
                 "a WebSocket held the reload to the end of the grace:\n%s",
                 du_tail(g.s.err, 3000));

    /* new connections: the chat's hello names a new worker; echo works */
    struct h_conn *c = wsc_open("/chat/ws", NULL);
    pid_t w = wg_chat_hello(c);
    cr_assert(du_pid_in(w, now, n), "hello from worker %d, not a new one",
              (int)w);
    wsc_send(c, 1, "after the reload", 16);
    struct wsc_frame f;
    cr_assert_eq(wsc_read(c, &f), 1);
    cr_assert_not_null(strstr((char *)f.data, "\"text\":\"after the reload\""),
                       "the chat did not pass the message on: %s", f.data);
    free(f.data);
    struct h_conn *e = wsc_open("/ws/echo", NULL);
    wsc_send(e, 2, "\x00\x01\x02", 3);
    wsc_expect_msg(e, 2, "\x00\x01\x02", 3);
    wsc_send(e, 8, "\x03\xe8", 2);
    cr_assert_eq(wsc_expect_close(e), 1000);
    h_close(e);
    wsc_send(c, 8, "\x03\xe8", 2);
    cr_assert_eq(wsc_expect_close(c), 1000);
    h_close(c);
    du_coserve_stop(&g.s);
}

Test(ws_graceful, a_stop_closes_websockets_with_1001_within_the_grace)
{
    struct wg g;
    wg_up(&g);
    struct wg_conns k;
    wg_open(&k);
    kill(g.s.pid, SIGTERM);
    wg_expect_going_away(&k);
    /* exit status 0, a clean log; the guard is shorter than the grace */
    du_coserve_wait_stopped(&g.s, DU_STOP_MS, 0);
    cr_assert_eq(du_count_in_file(g.s.err, "grace period over"), 0,
                 "a WebSocket held the stop to the end of the grace:\n%s",
                 du_tail(g.s.err, 3000));
}
