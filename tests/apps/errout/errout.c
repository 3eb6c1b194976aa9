/*
 * errout - a test app that writes to stderr, mounted at /errout: its lines
 * must reach the error log with the time, the level and the app's name.
 *
 *   init            fprintf(stderr, "errout init\n") outside any request:
 *                   the source is "stderr"
 *   /errout/fprintf fprintf(stderr, ...)
 *   /errout/partial "part one, " then "part two\n": one line
 *   /errout/perror  perror() with errno ENOENT
 *   /errout/write   write(2, ...), two lines in one call
 *   /errout/child   a child coroutine writes: it works for the request
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "coserve.h"

static int errout_init(void)
{
    fprintf(stderr, "errout init\n");
    return 0;
}

static void *errout_child(void *arg)
{
    (void)arg;
    fprintf(stderr, "errout child line\n");
    return NULL;
}

static int errout_handler(co_request_t *req, co_response_t *res)
{
    const char *info = co_req_path_info(req);
    if (strcmp(info, "/fprintf") == 0) {
        fprintf(stderr, "errout fprintf line %d\n", 42);
    } else if (strcmp(info, "/partial") == 0) {
        fprintf(stderr, "errout part one, ");
        fputs("part two\n", stderr);
    } else if (strcmp(info, "/perror") == 0) {
        errno = ENOENT;
        perror("errout perror line");
    } else if (strcmp(info, "/write") == 0) {
        static const char two[] = "errout write one\nerrout write two\n";
        if (write(2, two, sizeof two - 1) != (ssize_t)(sizeof two - 1))
            return -1;
    } else if (strcmp(info, "/child") == 0) {
        co_t *c = co_spawn(errout_child, NULL);
        if (!c)
            return -1;
        co_join(c, NULL, -1);
    }
    return co_res_send(res, 200, "text/plain", "ok\n", 3);
}

COSERVE_APP(.name = "errout", .mount = "/errout", .init = errout_init,
            .handler = errout_handler);
