/*
 * wsecho - a WebSocket echo at /ws/echo: every message comes back as it
 * came, text as text, binary as binary, up to the server's message limit
 * (--ws-max-message). The server keeps the protocol (masking, fragments,
 * pings, UTF-8, close codes); the app only moves messages.
 *
 *   /usr/bin/python3 -m websockets ws://127.0.0.1:8080/ws/echo
 */
#include <errno.h>

#include "coserve.h"

/* Longest a peer that stopped reading may hold an echo. */
#define WSECHO_SEND_MS 30000

static int wsecho(co_request_t *req, co_response_t *res)
{
    co_ws_t *ws = co_ws_accept(req, res, NULL, 0);
    if (!ws) /* not a handshake: the server's 400 or 426 is ready */
        return errno == EPROTO ? 0 : -1;
    for (;;) {
        void *data;
        int type;
        ssize_t n = co_ws_recv(ws, &data, &type, -1);
        if (n < 0) /* closed, or the server closed it and says why */
            return 0;
        if (co_ws_send(ws, type, data, (size_t)n, co_deadline(WSECHO_SEND_MS)) <
            0)
            return 0;
    }
}

COSERVE_APP(.name = "wsecho", .mount = "/ws/echo", .handler = wsecho);
