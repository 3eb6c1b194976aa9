/*
 * Starting a worker's stream apps (see app.h): which address each one
 * gets, the socket from the master, the listener in the hub.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "app/app.h"
#include "core/log.h"
#include "stream/stream.h"

int app__streams_check(const char *entry)
{
    const char *eq = strchr(entry, '=');
    return eq && eq > entry && eq[1] ? 0 : -1;
}

/* Whether entry ("NAME=...") names app; returns what follows '=' or NULL. */
static const char *streams_match(const char *entry, const struct app *app)
{
    const char *eq = strchr(entry, '=');
    if (!eq)
        return NULL;
    size_t n = (size_t)(eq - entry);
    const char *names[] = {app->route.name, app->file_name};
    for (size_t i = 0; i < 2; i++)
        if (names[i] && strlen(names[i]) == n &&
            strncmp(names[i], entry, n) == 0)
            return eq + 1;
    return NULL;
}

/* The address the operator gave this app, else its descriptor's; NULL if
 * neither. */
static const char *streams_address(const struct app *app,
                                   const struct app_stream_opts *opts)
{
    const char *addr = app->listen;
    for (size_t i = 0; i < opts->nlisten; i++) {
        const char *a = streams_match(opts->listen[i], app);
        if (a)
            addr = a;
    }
    return addr;
}

int app__streams_start(struct app_table *table, struct stream_set *set,
                       const struct app_stream_opts *opts)
{
    int refused = 0;
    for (size_t i = 0; i < table->count; i++) {
        struct app *app = &table->apps[i];
        if (!app->stream || !app->initialized)
            continue;
        const char *addr = streams_address(app, opts);
        if (addr && strcmp(addr, "off") == 0) {
            log_info("app %s: stream off (--stream-listen)", app->route.name);
            continue;
        }
        char err[300];
        int fd = -1;
        if (!addr)
            snprintf(err, sizeof err,
                     "no address (give .listen, or --stream-listen %s=ADDR)",
                     app->route.name);
        else
            fd = opts->ask(opts->ask_ctx, addr, err, sizeof err);
        struct stream_config cfg = {.name = app->route.name,
                                    .handler = app->stream,
                                    .max_conns = opts->max_conns,
                                    .write_timeout_ms = opts->write_timeout_ms};
        if (fd < 0 || stream__listen(set, fd, &cfg) < 0) {
            log_error("app %s: stream refused: %s", app->route.name,
                      fd < 0 ? err : strerror(errno));
            refused++;
            continue;
        }
        log_info("app %s: stream serving on %s", app->route.name, addr);
    }
    return refused;
}
