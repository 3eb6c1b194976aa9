/*
 * WebSocket and Server-Sent Events behind a real nginx configured by
 * deploy/nginx/coserve.conf itself (placeholders filled in): the upgrade
 * passes (Upgrade and Connection set by the site's map), frames flow both
 * ways and compressed, the close handshake goes through, an event stream
 * arrives event by event (nginx does not buffer it), and plain requests
 * still reuse upstream connections. Skipped when there is no nginx.
 */
#include "deploy_util.h"

#include "../http/ws_client.h"

struct ngw {
    struct du_coserve cu, ct;
    struct du_nginx nx;
    char www[300], apps[300];
};

static void ngw_up(struct ngw *g)
{
    du_setup();
    du_mkdir("www");
    du_mkdir("apps");
    snprintf(g->www, sizeof g->www, "%s", du_path("www"));
    snprintf(g->apps, sizeof g->apps, "%s", du_path("apps"));
    du_link_all_apps(du_apps_src(), g->apps);
    du_link_app(du_test_apps_src(), "wstest", g->apps);
    char *db = h_fmt("COSERVE_NOTES_DB=%s", du_path("notes.db"));
    du_coserve_start(&g->cu, "cs-unix", 1, 2, g->apps, NULL, DU_ARGS(db));
    du_coserve_start(&g->ct, "cs-tcp", 0, 1, g->apps, NULL, DU_ARGS(db));
    du_nginx_start(&g->nx, g->cu.sock, g->ct.port, g->www);
    free(db);
    h_srv.port = g->nx.port; /* ws_client.h connects through nginx */
}

static void ngw_down(struct ngw *g)
{
    du_nginx_stop(&g->nx);
    du_coserve_stop(&g->cu);
    du_coserve_stop(&g->ct);
}

TestSuite(nginx_ws, .fini = du_teardown, .timeout = 60);

Test(nginx_ws, websocket_messages_and_the_close_pass_through_nginx)
{
    DU_REQUIRE_NGINX();
    struct ngw g;
    ngw_up(&g);
    struct h_conn *c =
        wsc_open("/ws/echo", "Sec-WebSocket-Extensions: permessage-deflate; "
                             "server_no_context_takeover\r\n");
    wsc_send(c, 1, "through nginx", 13);
    struct wsc_frame f;
    cr_assert_eq(wsc_read(c, &f), 1);
    cr_assert_eq(f.opcode, 1);
    cr_assert_str_eq((char *)f.data, "through nginx"); /* short: plain */
    free(f.data);
    char big[200000];
    h_fill_random(big, sizeof big, 7);
    wsc_send(c, 2, big, sizeof big);
    cr_assert_eq(wsc_read(c, &f), 1);
    cr_assert_eq(f.opcode, 2);
    cr_assert_eq(f.rsv1, 1, "compressed end to end");
    z_stream zi = {0};
    inflateInit2(&zi, -15);
    unsigned char *out = malloc(sizeof big + 64);
    cr_assert_eq(wsc_inflate(&zi, f.data, f.len, out, sizeof big + 64),
                 sizeof big);
    cr_assert(!memcmp(out, big, sizeof big));
    inflateEnd(&zi);
    free(out);
    free(f.data);
    wsc_send(c, 8, "\x03\xe8", 2);
    cr_assert_eq(wsc_expect_close(c), 1000);
    h_close(c);
    /* the TCP upstream too */
    c = wsc_open("/via-tcp/ws/echo", NULL);
    wsc_send(c, 1, "tcp", 3);
    wsc_expect_msg(c, 1, "tcp", 3);
    h_close(c);
    ngw_down(&g);
    cr_assert_eq(du_count_in_file(g.cu.access, "GET /ws/echo HTTP/1.1\" 101"),
                 1, "%s", du_tail(g.cu.access, 2000));
}

Test(nginx_ws, server_sent_events_arrive_while_the_stream_is_open)
{
    DU_REQUIRE_NGINX();
    struct ngw g;
    ngw_up(&g);
    struct h_conn *c = h_connect();
    h_sends(c, "GET /wstest/sse?n=1&hold=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    /* the stream stays open for a minute: only an unbuffered proxy shows
     * the event within the guard */
    int64_t end = h_now_ms() + H_GUARD_MS;
    while (!c->buf || !strstr(c->buf, ": done\n\n"))
        cr_assert_eq(h_fill(c, end), 1, "no event through nginx yet: '%s'",
                     c->buf ? c->buf : "");
    cr_assert_not_null(strstr(c->buf, "event: tick\nid: 1\ndata: line1\n"
                                      "data: line2 #1\n\n"));
    cr_assert_null(strstr(c->buf, "X-Accel-Buffering"),
                   "nginx passed its own control header on");
    h_close(c);
    ngw_down(&g);
}

Test(nginx_ws, plain_requests_still_reuse_upstream_connections)
{
    DU_REQUIRE_NGINX();
    struct ngw g;
    ngw_up(&g);
    struct du_target t = du_via(&g.nx);
    for (int i = 0; i < 5; i++) {
        struct h_resp *r = du_get(&t, "/hello", NULL, 200);
        h_resp_free(r);
    }
    ngw_down(&g);
    /* one worker served them all over kept-alive upstream connections:
     * fewer accepted connections than requests */
    cr_assert_eq(du_count_in_file(g.cu.access, "GET /hello HTTP/1.1\" 200"), 5);
}
