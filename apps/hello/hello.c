/*
 * hello - the smallest coserve app, and the template for new ones.
 *
 * An app is a shared object built from the .c files in apps/NAME/. It
 * includes only "coserve.h" (plus libc) and exports one descriptor, written
 * with COSERVE_APP at the end of the file. The server calls the handler once
 * per request, in the request's own coroutine: blocking-looking calls from
 * coserve.h (co_sleep, co_read, co_offload, ...) wait without blocking the
 * other requests.
 *
 *   curl http://127.0.0.1:8080/hello      -> Hello, World!
 */
#include <string.h>

#include "coserve.h"

static int hello(co_request_t *req, co_response_t *res)
{
    /* The path below the mount: "" for /hello, "/x" for /hello/x. */
    const char *rest = co_req_path_info(req);
    if (rest[0] != '\0' && strcmp(rest, "/") != 0) {
        static const char missing[] = "404 not found\n";
        return co_res_send(res, 404, "text/plain; charset=utf-8", missing,
                           sizeof missing - 1);
    }

    /* Only GET and HEAD make sense here; say which methods do. */
    const char *method = co_req_method(req);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        static const char refused[] = "405 method not allowed\n";
        if (co_res_header(res, "Allow", "GET, HEAD") < 0)
            return -1;
        return co_res_send(res, 405, "text/plain; charset=utf-8", refused,
                           sizeof refused - 1);
    }

    /* Status, type and body in one call; for HEAD the server drops the body
     * but keeps its Content-Length. A -1 (the client left) is passed on. */
    static const char body[] = "Hello, World!\n";
    return co_res_send(res, 200, "text/plain; charset=utf-8", body,
                       sizeof body - 1);
}

/* The descriptor the server looks up: its name in logs, the URL prefix it
 * answers (every path under it, longest mount wins), and the handler.
 * Optional .init/.fini run once per worker process. */
COSERVE_APP(.name = "hello", .mount = "/hello", .handler = hello);
