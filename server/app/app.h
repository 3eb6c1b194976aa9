/*
 * app.h - turning a folder of .so files into the http layer's router.
 *
 * loader.c opens every NAME.so of a folder (RTLD_NOW | RTLD_LOCAL), checks
 * its descriptor and mount, and (once the worker's hub runs) its init; a
 * module that fails any of these is refused with one log line naming the file
 * and the reason, and the others keep serving. router.c picks an app by longest
 * mount prefix.
 */
#ifndef COSERVE_APP_APP_H
#define COSERVE_APP_APP_H

#include <stddef.h>

#include "coserve.h"
#include "http/http.h"

#define APP_MOUNT_MAX 256

struct app {
    char *file; /* path of the .so */
    /* The file's name without ".so" (heap, like file): the name of an app
     * whose descriptor has none, which route.name then points to. */
    char *file_name;
    void *dl;
    const struct co_app *desc;
    /* the descriptor's stream fields (NULL for ABI 1, which has none) */
    co_stream_fn stream;
    const char *listen;
    char mount[APP_MOUNT_MAX]; /* "" for "/", else "/x" with no trailing / */
    struct http_route route;
    int initialized;
};

struct app_table {
    struct app *apps; /* sorted by mount length, longest first */
    size_t count;
};

/* Loads every .so in dir (in name order) and checks its descriptor and
 * mount. Returns how many were refused, or -1 with errno if dir cannot be
 * read. */
int app__load_dir(struct app_table *table, const char *dir);

/* Runs each app's init, in the worker's hub (inside a coroutine, so init
 * may use the cooperative API); an app whose init fails is refused and
 * dropped. Returns how many were refused. */
int app__init_all(struct app_table *table);

/* Runs every fini, in reverse order, in the hub. */
void app__fini_all(struct app_table *table);

/* Runs fini where not yet done and closes the modules. */
void app__unload_all(struct app_table *table);

/* How a worker starts its stream apps (streams.c). */
struct app_stream_opts {
    /* "NAME=ADDR" or "NAME=off", by app name or file name; a later one
     * wins over an earlier one and over the descriptor's .listen */
    const char *const *listen;
    size_t nlisten;
    /* gets a listening socket for spec (from the master): the fd, or -1
     * with a message in err */
    int (*ask)(void *ctx, const char *spec, char *err, size_t errlen);
    void *ask_ctx;
    unsigned max_conns;       /* per listener */
    int64_t write_timeout_ms; /* SO_SNDTIMEO of every connection */
};

struct stream_set;

/* In the worker's hub, after app__init_all: for every app with a stream,
 * finds its address, asks for the socket, and starts accepting in set. An
 * app whose socket cannot be had keeps its HTTP side; its stream is
 * refused with a log line naming the app and the reason. Returns how many
 * were refused. */
int app__streams_start(struct app_table *table, struct stream_set *set,
                       const struct app_stream_opts *opts);

/* Checks one "NAME=ADDR" / "NAME=off" entry. Returns 0 or -1. */
int app__streams_check(const char *entry);

/* The http router: the app whose mount is the longest prefix of path (on a
 * segment boundary), or NULL. ctx is the struct app_table. */
const struct http_route *app__route(void *ctx, const char *path);

#endif
